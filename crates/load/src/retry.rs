//! What to retry and when: exponential backoff with full jitter, up to a deadline.
//!
//! Only what can succeed later is retried: per-event `Throttling` and `InternalFailure`, whole-call
//! throttling, 5xx answers and timeouts. Each retry waits a random time between zero and
//! `base * 2^attempt` (capped), so throttled workers spread out instead of retrying together.

use std::time::Duration;

/// Per-event error codes worth another try.
pub fn retryable_event_error(code: &str) -> bool {
    matches!(code, "Throttling" | "InternalFailure")
}

/// Whole-call failures worth another try: throttling, server errors, timeouts.
pub fn retryable_call(status: Option<u16>, error_type: Option<&str>) -> bool {
    matches!(
        error_type,
        Some(
            "ThrottlingException"
                | "Throttling"
                | "RequestTimeout"
                | "InternalFailure"
                | "ServiceUnavailable"
        )
    ) || status.is_some_and(|s| s >= 500 || s == 429)
        // No answer (a dropped connection) may succeed later; a request that could not even be
        // built (no credentials) never will.
        || (status.is_none() && error_type != Some("ConstructionFailure"))
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// Waits of up to `base * 2^attempt`, never more than `cap`; `seed` makes them repeatable.
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Self {
            base,
            cap,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX))
            .min(self.cap);
        let fraction = self.rng.f64();
        ceiling.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_are_capped_and_jittered() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 3);
        for attempt in 0..12 {
            let ceiling = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(5));
            let waits: Vec<Duration> = (0..200).map(|_| b.delay(attempt)).collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "attempt {attempt}");
            let max = waits.iter().max().copied().unwrap_or_default();
            assert!(
                max > ceiling.mul_f64(0.8),
                "jitter spans the range at attempt {attempt}"
            );
            assert!(waits.iter().min().copied().unwrap_or_default() < ceiling.mul_f64(0.2));
        }
        let mut again = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 3);
        assert_eq!(
            again.delay(0),
            Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 3).delay(0)
        );
        assert!(again.delay(200) <= Duration::from_secs(5));
    }

    #[test]
    fn only_what_can_succeed_later_is_retried() {
        assert!(retryable_event_error("Throttling") && retryable_event_error("InternalFailure"));
        for code in [
            "InvalidChecksum",
            "FieldTooLong",
            "FieldNotFound",
            "InvalidData",
            "InvalidRecipient",
        ] {
            assert!(!retryable_event_error(code), "{code}");
        }
        assert!(retryable_call(Some(400), Some("ThrottlingException")));
        assert!(retryable_call(Some(500), Some("InternalFailure")));
        assert!(retryable_call(Some(503), None));
        assert!(
            retryable_call(None, None),
            "no answer at all: a timeout or a broken connection"
        );
        assert!(!retryable_call(Some(400), Some("ChannelNotFound")));
        assert!(!retryable_call(None, Some("ConstructionFailure")));
        assert!(!retryable_call(Some(403), Some("AccessDeniedException")));
        assert!(!retryable_call(
            Some(413),
            Some("RequestEntityTooLargeException")
        ));
    }
}
