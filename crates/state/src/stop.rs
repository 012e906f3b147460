//! The one way a long run is asked to stop (SIGTERM, Ctrl-C, a Lambda invocation's deadline), for
//! ingest passes, loaders and workers alike: a flag that is checked between steps and a
//! notification that is awaited while idle. Clones share it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A stop request shared by a process's passes, loaders and workers.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<(AtomicBool, tokio::sync::Notify)>);

impl Stop {
    /// Asks everything that shares this to stop.
    pub fn set(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.0 .0.load(Ordering::SeqCst)
    }

    /// Returns once a stop is asked for.
    pub async fn wait(&self) {
        loop {
            let notified = self.0 .1.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    /// Sets this after `after` (a deadline less its margin), unless the returned handle is
    /// aborted first.
    pub fn set_after(&self, after: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let stop = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            stop.set();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_when_a_clone_is_set() {
        let stop = Stop::default();
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.wait().await })
        };
        assert!(!stop.is_set());
        stop.clone().set();
        waiter.await.unwrap();
        assert!(stop.is_set());
        // Set before anyone waits: the wait returns at once.
        stop.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn set_after_sets_it_at_the_deadline() {
        let stop = Stop::default();
        let _timer = stop.set_after(std::time::Duration::from_secs(30));
        tokio::time::sleep(std::time::Duration::from_secs(29)).await;
        assert!(!stop.is_set());
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert!(stop.is_set());
    }
}
