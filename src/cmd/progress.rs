//! One progress display for the long commands (`ingest`, `load`, `run`): a spinner line on
//! standard error, redrawn every second from the run's live counters, drawn only when standard
//! error is a terminal (indicatif hides it otherwise, so logs and pipes stay clean).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aztrail_ingest::run::IngestLive;
use aztrail_load::loader::Live;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws a line until dropped, then clears it.
pub struct Progress {
    bar: ProgressBar,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Redraws `render()` every second (on a terminal only).
    pub fn start(mut render: impl FnMut() -> String + Send + 'static) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if bar.is_hidden() {
            return Self { bar, task: None };
        }
        if let Ok(style) = ProgressStyle::with_template("{elapsed:>4} {spinner} {msg}") {
            bar.set_style(style);
        }
        let drawn = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                drawn.set_message(render());
            }
        });
        Self {
            bar,
            task: Some(task),
        }
    }

    /// Objects, records, accepted (with events/s over the last second) and failed, of loads.
    pub fn load(live: &Arc<Live>) -> Self {
        let live = Arc::clone(live);
        let mut last = (Instant::now(), 0u64);
        Self::start(move || {
            let accepted = live.accepted.load(Ordering::Relaxed);
            let now = Instant::now();
            let rate = (accepted - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, accepted);
            format!(
                "objects {}  records {}  accepted {} ({:.0} events/s)  failed {}",
                live.objects.load(Ordering::Relaxed),
                live.records.load(Ordering::Relaxed),
                accepted,
                rate,
                live.failed.load(Ordering::Relaxed),
            )
        })
    }

    /// List calls, blobs found and bytes staged, of an ingest pass.
    pub fn ingest(live: &Arc<IngestLive>) -> Self {
        let live = Arc::clone(live);
        Self::start(move || {
            format!(
                "{} list calls, {} blobs found, {:.1} MB staged",
                live.list_calls.load(Ordering::Relaxed),
                live.blobs.load(Ordering::Relaxed),
                live.bytes.load(Ordering::Relaxed) as f64 / 1e6
            )
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.bar.finish_and_clear();
    }
}
