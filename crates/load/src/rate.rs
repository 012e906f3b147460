//! One rate limit for all the PutAuditEvents calls of a process.
//!
//! CloudTrail Lake allows 100 calls per second per account and region, and throttles beyond. A
//! token bucket shared by every worker of a process keeps its calls under its share: each call
//! waits for a token; tokens refill at `per_second` up to a burst of one second's worth. Once a
//! stop is asked for ([`RateLimiter::give_way_on`]), nothing waits for a token any more: the
//! calls already formed go out at once, so a stop never waits on the limiter.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket shared by all workers.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    state: Mutex<State>,
    /// Once this is set, no call waits for a token.
    stop: std::sync::OnceLock<crate::loader::Stop>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// At most `per_second` calls per second (and at most that many at once after a pause).
    pub fn new(per_second: f64) -> Self {
        let per_second = per_second.max(0.001);
        Self {
            per_second,
            state: Mutex::new(State {
                tokens: per_second.max(1.0),
                last: Instant::now(),
            }),
            stop: std::sync::OnceLock::new(),
        }
    }

    /// From the moment `stop` is set, [`RateLimiter::acquire`] returns at once: a stopping
    /// process sends what it has formed and ends, whatever the rate. (Only the first stop given
    /// counts.)
    pub fn give_way_on(&self, stop: &crate::loader::Stop) {
        let _ = self.stop.set(stop.clone());
    }

    /// The configured rate.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Waits until a call may be made, and takes its token.
    pub async fn acquire(&self) {
        let stop = self.stop.get();
        loop {
            if stop.is_some_and(crate::loader::Stop::is_set) {
                return;
            }
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
                s.tokens = (s.tokens + elapsed * self.per_second).min(self.per_second.max(1.0));
                s.last = now;
                if s.tokens >= 1.0 {
                    s.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - s.tokens) / self.per_second)
            };
            match stop {
                Some(stop) => tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.wait() => return,
                },
                None => tokio::time::sleep(wait).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_calls_to_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(50.0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..50 {
                    l.acquire().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 200 calls at 50/s with a burst of 50: 150 wait for refills, 3 s of (virtual) time.
        let took = start.elapsed().as_secs_f64();
        assert!((2.9..3.2).contains(&took), "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_never_waits_for_a_token() {
        // Hostile round 2, item 9: at the slowest rate a call waits ten seconds for its token;
        // a stop must release it without any of that (virtual, paused) time passing.
        let limiter = std::sync::Arc::new(RateLimiter::new(0.1));
        let stop = crate::loader::Stop::default();
        limiter.give_way_on(&stop);
        limiter.acquire().await; // the burst's one token
        let waiting = {
            let l = std::sync::Arc::clone(&limiter);
            tokio::spawn(async move { l.acquire().await })
        };
        tokio::task::yield_now().await;
        let start = Instant::now();
        stop.set();
        waiting.await.unwrap();
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the stop waited on the limiter"
        );
        // And nothing waits after it.
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
