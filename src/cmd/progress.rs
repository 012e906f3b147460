//! A one-line progress display on standard error, redrawn every second while a long run goes on,
//! shown only when standard error is a terminal (logs and pipes stay clean).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aztrail_load::loader::Live;

/// Draws `live` until dropped.
pub struct ProgressLine {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressLine {
    /// Starts drawing (on a terminal only).
    pub fn start(live: &Arc<Live>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { task: None };
        }
        let live = Arc::clone(live);
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let accepted = live.accepted.load(Ordering::Relaxed);
                let now = Instant::now();
                let rate = (accepted - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                last = (now, accepted);
                eprint!(
                    "\r\x1b[2K{:>5.0}s  objects {}  records {}  accepted {} ({:.0} events/s)  failed {}",
                    started.elapsed().as_secs_f64(),
                    live.objects.load(Ordering::Relaxed),
                    live.records.load(Ordering::Relaxed),
                    accepted,
                    rate,
                    live.failed.load(Ordering::Relaxed),
                );
                let _ = std::io::stderr().flush();
            }
        });
        Self { task: Some(task) }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            eprint!("\r\x1b[2K");
        }
    }
}
