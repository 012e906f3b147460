//! One limit on the requests a pass has in flight, shared by listing, state and copying, so that
//! a pass over thousands of roots runs many requests at once without flooding Azure or S3; and
//! the counts a benchmark or a progress line reads (in flight now, the most at once, in all).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;

/// The default limit: enough to hide 30 ms of latency behind a few hundred requests a second,
/// well under what a storage account or an S3 prefix serves.
pub const DEFAULT_REQUESTS_IN_FLIGHT: usize = 32;

/// The largest limit accepted.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 1024;

/// At most `limit` operations at once.
#[derive(Debug)]
pub struct Gate {
    permits: Semaphore,
    in_flight: AtomicU64,
    peak: AtomicU64,
    total: AtomicU64,
}

impl Gate {
    /// A gate letting `limit` operations through at once (at least one).
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Semaphore::new(limit.clamp(1, MAX_REQUESTS_IN_FLIGHT)),
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// Runs `op` once a place is free.
    pub async fn run<F: Future>(&self, op: F) -> F::Output {
        // The semaphore is never closed, so acquiring fails never; were it to, running without
        // a permit is still correct (only less polite).
        let _permit = self.permits.acquire().await.ok();
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        let out = op.await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        out
    }

    /// The most operations that were in flight at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Operations run so far.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn no_more_than_the_limit_run_at_once() {
        let gate = Arc::new(Gate::new(3));
        let running = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let tasks = (0..20).map(|_| {
            let (gate, running, most) = (gate.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                gate.run(async {
                    let n = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await;
            })
        });
        for t in tasks.collect::<Vec<_>>() {
            t.await.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(gate.peak(), most.load(Ordering::SeqCst));
        assert_eq!(gate.total(), 20);
    }
}
