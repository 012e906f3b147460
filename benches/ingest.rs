//! Ingest passes over a big tenant's container, Azure and S3 behind a fixed per-request latency
//! (`aztrail_ingest::standin`: in memory, 30 ms a request, requests in flight counted by the
//! stand-in itself). For 100, 1,000 and 3,000 subscriptions, each with two hourly blobs in the
//! window (the previous hour and the current one), four passes in a row:
//!
//! 1. `first`: nothing staged yet (every blob copied, every day shard created);
//! 2. `all grown`: every current-hour blob grew, as on a 5-minute schedule;
//! 3. `one grown`: one blob grew;
//! 4. `nothing new`.
//!
//! Printed per pass: wall time, requests, the most in flight at once, state documents' bytes
//! read and written, and day shards read. Then the same `all grown` pass over 200 subscriptions
//! (200 blobs grew) with one request in flight (sequential, as before) beside 32.
//!
//! Run: `cargo bench --bench ingest` (about three minutes after the build). Under `cargo test` it
//! runs once, small. Figures and the sizing they give: `docs/ingest-at-scale.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aztrail_ingest::run::{ingest_with, IngestConfig, IngestSummary};
use aztrail_ingest::standin::{Meter, SlowContainer, SlowStaging};

const CONTAINER: &str = "insights-activity-logs";

/// The bench's clock: 2026-12-01T10:30:00Z, a pass every ten minutes after.
const T0: i64 = 1_796_121_000;

fn blob(sub: usize, hours_ago: i64) -> String {
    let root = format!("resourceId=/SUBSCRIPTIONS/{sub:08X}-0000-4000-8000-000000000000/");
    aztrail_ingest::layout::hour_blob(&root, T0 - hours_ago * 3600)
}

/// One line of about 1 KiB, as an Activity Log record is.
fn line(n: usize) -> Vec<u8> {
    let mut l = format!(
        "{{\"time\":\"2026-12-01T10:{:02}:00Z\",\"n\":{n},\"pad\":\"",
        n % 60
    );
    l.push_str(&"x".repeat(1000));
    l.push_str("\"}\n");
    l.into_bytes()
}

struct Tenant {
    /// One configuration for all the passes, as a long-lived worker keeps it (the roots are
    /// remembered between passes).
    config: IngestConfig,
    container: SlowContainer,
    staging: SlowStaging,
    meter: Arc<Meter>,
    subs: usize,
}

impl Tenant {
    fn new(subs: usize, latency: Duration) -> Self {
        let meter = Arc::new(Meter::default());
        let container = SlowContainer::new(CONTAINER, latency, meter.clone());
        for s in 0..subs {
            for h in [1, 0] {
                container.append(&blob(s, h), &line(s), T0 - 3000);
            }
        }
        Self {
            config: IngestConfig {
                containers: vec![CONTAINER.into()],
                ..IngestConfig::default()
            },
            container,
            staging: SlowStaging::new(latency, meter.clone()),
            meter,
            subs,
        }
    }

    async fn pass(&self, what: &str, limit: usize, now: i64) -> IngestSummary {
        let config = IngestConfig {
            requests_in_flight: limit,
            ..self.config.clone()
        };
        self.meter.reset_peak();
        let before = self.meter.requests();
        let started = Instant::now();
        let s = ingest_with(
            std::slice::from_ref(&self.container),
            &self.staging,
            "bench",
            &config,
            now,
        )
        .await
        .expect("a pass over memory");
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(s.failed, 0, "{s:?}");
        println!(
            "| {:>5} | {:<11} | {:>3} | {:>7.2} | {:>7} | {:>4} | {:>9} | {:>9} | {:>6} | {:>5} |",
            self.subs,
            what,
            limit,
            secs,
            self.meter.requests() - before,
            self.meter.peak(),
            s.state_read_bytes,
            s.state_written_bytes,
            s.shards_read,
            s.objects_written,
        );
        s
    }
}

fn header() {
    println!(
        "| subs  | pass        | max | seconds | requests | peak | state read | state written | shards read | copied |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
}

async fn scale(subs: usize, latency: Duration) {
    let t = Tenant::new(subs, latency);
    let first = t.pass("first", 32, T0).await;
    assert_eq!(first.objects_written as usize, 2 * subs);
    for s in 0..subs {
        t.container.append(&blob(s, 0), &line(s + 1), T0 + 100);
    }
    let all = t.pass("all grown", 32, T0 + 600).await;
    assert_eq!(all.objects_written as usize, subs);
    t.container.append(&blob(subs / 2, 0), &line(7), T0 + 700);
    let one = t.pass("one grown", 32, T0 + 1200).await;
    assert_eq!(one.objects_written, 1);
    let none = t.pass("nothing new", 32, T0 + 1800).await;
    assert_eq!(none.objects_written, 0);
}

async fn sequential_against_concurrent(subs: usize, latency: Duration) {
    for limit in [1, 32] {
        let t = Tenant::new(subs, latency);
        t.pass("first", 32, T0).await;
        for s in 0..subs {
            t.container.append(&blob(s, 0), &line(s + 1), T0 + 100);
        }
        t.pass("all grown", limit, T0 + 600).await;
    }
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (latency, sizes, pair): (_, &[usize], _) = if benching {
        (Duration::from_millis(30), &[100, 1000, 3000], 200)
    } else {
        (Duration::from_millis(1), &[20], 10)
    };
    println!(
        "ingest passes, {} ms a request, {} core(s)",
        latency.as_millis(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    header();
    rt.block_on(async {
        for &subs in sizes {
            scale(subs, latency).await;
        }
        sequential_against_concurrent(pair, latency).await;
    });
}
