//! Faults on demand: latency, the per-account call quota, and seeded random failures.
//!
//! The real service allows 100 PutAuditEvents calls per second per account and region and answers
//! `ThrottlingException` beyond that; a token bucket per account does the same here. The random
//! faults (per-event Throttling and InternalFailure, whole-call 500s) draw from one seeded
//! generator, so a test or benchmark sees the same faults on every run with the same calls.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What to inject.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// How long a call takes: it is answered this long after its body arrived, or when its
    /// work (checks, store) is done if that takes longer.
    pub latency: Duration,
    /// Calls per second per account beyond which calls are throttled (0: no limit).
    pub tps: u32,
    /// Fraction of events answered `Throttling`.
    pub throttle_rate: f64,
    /// Fraction of events answered `InternalFailure`.
    pub fail_rate: f64,
    /// Fraction of calls answered HTTP 500.
    pub error_rate: f64,
    /// Seed of the random faults.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            tps: 100,
            throttle_rate: 0.0,
            fail_rate: 0.0,
            error_rate: 0.0,
            seed: 1,
        }
    }
}

impl FaultConfig {
    /// No faults and no quota: the stand-in as fast as it goes.
    pub fn none() -> Self {
        Self {
            tps: 0,
            ..Self::default()
        }
    }
}

/// The per-event fault drawn for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFault {
    /// Answer `Throttling`.
    Throttle,
    /// Answer `InternalFailure`.
    Fail,
}

/// The running state of the faults.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    rng: fastrand::Rng,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Faults {
    /// Faults as configured.
    pub fn new(config: FaultConfig) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            buckets: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    fn draw(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.f64() < rate
    }

    /// Whether this call is answered with an HTTP 500.
    pub fn call_errors(&mut self) -> bool {
        let rate = self.config.error_rate;
        self.draw(rate)
    }

    /// Takes one call from the account's quota; false when the call is over it.
    pub fn admit(&mut self, account: &str, now: Instant) -> bool {
        let tps = f64::from(self.config.tps);
        if tps <= 0.0 {
            return true;
        }
        let bucket = self.buckets.entry(account.to_string()).or_insert(Bucket {
            tokens: tps,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * tps).min(tps);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The fault, if any, for the next event.
    pub fn event_fault(&mut self) -> Option<EventFault> {
        let (t, f) = (self.config.throttle_rate, self.config.fail_rate);
        if self.draw(t) {
            Some(EventFault::Throttle)
        } else if self.draw(f) {
            Some(EventFault::Fail)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_admits_tps_calls_per_second_per_account() {
        let mut f = Faults::new(FaultConfig {
            tps: 10,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        let admitted = (0..25).filter(|_| f.admit("a", t0)).count();
        assert_eq!(admitted, 10);
        assert!(f.admit("b", t0), "accounts have their own quota");
        let later = t0 + Duration::from_millis(500);
        assert_eq!((0..25).filter(|_| f.admit("a", later)).count(), 5);
    }

    #[test]
    fn random_faults_are_seeded_and_near_their_rates() {
        let config = FaultConfig {
            throttle_rate: 0.3,
            fail_rate: 0.05,
            ..FaultConfig::none()
        };
        let draws = |c: &FaultConfig| {
            let mut f = Faults::new(c.clone());
            (0..10_000).map(|_| f.event_fault()).collect::<Vec<_>>()
        };
        let a = draws(&config);
        assert_eq!(a, draws(&config));
        let throttled = a
            .iter()
            .filter(|x| **x == Some(EventFault::Throttle))
            .count();
        let failed = a.iter().filter(|x| **x == Some(EventFault::Fail)).count();
        assert!((2_700..3_300).contains(&throttled), "{throttled}");
        assert!((200..500).contains(&failed), "{failed}");
    }
}
