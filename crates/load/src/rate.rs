//! One rate limit for all the PutAuditEvents calls of a process.
//!
//! CloudTrail Lake allows 100 calls per second per account and region, and throttles beyond. A
//! token bucket shared by every worker of a process keeps its calls under its share: each call
//! waits for a token; tokens refill at `per_second` up to a burst of one second's worth.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket shared by all workers.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    state: Mutex<State>,
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
        }
    }

    /// The configured rate.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Waits until a call may be made, and takes its token.
    pub async fn acquire(&self) {
        loop {
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
            tokio::time::sleep(wait).await;
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
}
