//! End-to-end load throughput: staged objects (in memory) through `aztrail_load::loader::load` and
//! the official SDK into an in-process lake.
//!
//! 1. `load/no-quota`: faults off, no quota, 8 calls in flight: what one event costs in CPU,
//!    loader and lake together on this machine (criterion; also printed as CPU µs per event).
//! 2. `load/null-sink`: the loader alone (a sink that accepts at once): its own CPU cost.
//! 3. The account's real limits: the lake answers after 50 ms and throttles beyond 100 calls/s;
//!    the loader sends under one 100 calls/s limiter. Printed: sustained events/s over a 60,000
//!    event run (the limiter's initial burst is spent before the clock starts, so the figure is
//!    the steady state), and how many ThrottlingExceptions the lake answered (target: none).
//!
//! 4. The real worker path, as deployed: objects staged in S3, their notifications in an SQS
//!    queue, checkpoints in S3, the worker holding several messages and sharing calls across
//!    objects, into the lake at 100 calls/s and 50 ms. The same 10,000 records staged as 1 object
//!    of 10,000, 100 of 100 and 1,000 of 10; printed: events/s and events per call for each.
//!    First with S3 and SQS from `aztrail_testkit::standin` (in process, microseconds a call:
//!    what the worker itself sustains), then on moto (milliseconds a call: moto's own ceiling).
//!
//! 5. CloudWatch Logs: the same loader with the CloudWatch sink (PutLogEvents, calls of up to
//!    10,000 events) against the stand-in's CloudWatch Logs, which checks the batch rules and
//!    answers at once: CPU µs per event and events per second on one core (`load/cloudwatch`),
//!    and the worker path's three shapes at 800 calls/s (PutLogEvents' lowest regional quota).
//!
//! Run: `cargo bench --bench load`, or one part: `cargo bench --bench load -- worker/StandIn/Lake`
//! (parts whose name holds the text). Under `cargo test` each part runs once, small.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN, LOCAL_ACCOUNT};
use aztrail_load::checkpoint::{Checkpoint, NoProgress};
use aztrail_load::cloudtrail::CloudTrailSink;
use aztrail_load::loader::{load, Destination, LoadConfig, MemoryFailures, Summary};
use aztrail_load::rate::RateLimiter;
use aztrail_load::sink::{CallError, EventSink, OutEvent, PutResult};
use aztrail_transform::{synth, Source};
use criterion::{Criterion, Throughput};

// The allocator `aztrail` itself uses (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sink(lake: &Lake) -> Arc<CloudTrailSink> {
    Arc::new(CloudTrailSink::for_endpoint(
        &lake.url(),
        DEFAULT_CHANNEL_ARN,
    ))
}

/// Accepts every event at once.
struct NullSink;

impl EventSink for NullSink {
    async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
        Ok(PutResult {
            successful: events.iter().map(|e| e.id.clone()).collect(),
            failed: Vec::new(),
        })
    }
}

async fn run<S: EventSink>(
    object: &[u8],
    sink: &Arc<S>,
    limiter: &Arc<RateLimiter>,
    concurrency: usize,
) -> Summary {
    let failures = MemoryFailures::default();
    let dest = Destination {
        sink,
        limiter,
        failures: &failures,
    };
    let config = LoadConfig {
        account: LOCAL_ACCOUNT.into(),
        concurrency,
        ..LoadConfig::default()
    };
    let source = Source {
        bucket: Some("staging".into()),
        key: "bench/PT1H.json".into(),
    };
    let summary = load(
        &source,
        object,
        &Checkpoint::default(),
        &dest,
        &NoProgress,
        &config,
    )
    .await
    .expect("load");
    assert!(summary.balanced() && summary.failed == 0, "{summary:?}");
    summary
}

/// This process's CPU time (user + system), from /proc (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn cpu_cost(c: &mut Criterion, rt: &tokio::runtime::Runtime, events: usize) {
    let object = synth::generate(events, 5).into_bytes();
    let lake = rt
        .block_on(Lake::start(LakeConfig {
            faults: FaultConfig::none(),
            ..LakeConfig::in_memory()
        }))
        .expect("lake");
    let to_lake = sink(&lake);
    let unlimited = Arc::new(RateLimiter::new(1e9));
    let mut group = c.benchmark_group("load");
    // Flat sampling: ten samples of equal size, not 1 + 2 + … + 10 iterations; the in-memory
    // lake keeps every event of every iteration, and SQLite's memdb holds at most 1 GiB.
    group.sample_size(10);
    group.sampling_mode(criterion::SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(events as u64));
    let (cpu0, wall0, done) = (cpu_time(), Instant::now(), AtomicU64::new(0));
    group.bench_function("no-quota", |b| {
        b.to_async(rt).iter(|| async {
            let accepted = run(&object, &to_lake, &unlimited, 8).await.accepted;
            done.fetch_add(accepted, Ordering::Relaxed);
        })
    });
    let done = done.load(Ordering::Relaxed);
    if let (Some(a), Some(b)) = (cpu0, cpu_time()) {
        println!(
            "load/no-quota: {:.1} CPU µs per event (loader and lake), {:.0} events per wall second",
            (b - a).as_secs_f64() * 1e6 / done.max(1) as f64,
            done as f64 / wall0.elapsed().as_secs_f64()
        );
    }
    let null = Arc::new(NullSink);
    group.bench_function("null-sink", |b| {
        b.to_async(rt)
            .iter(|| async { run(&object, &null, &unlimited, 8).await })
    });
    group.finish();
    rt.block_on(lake.stop());
}

fn with_quota(rt: &tokio::runtime::Runtime, events: usize) {
    let object = synth::generate(events, 6).into_bytes();
    let lake = rt
        .block_on(Lake::start(LakeConfig {
            faults: FaultConfig {
                latency: Duration::from_millis(50),
                tps: 100,
                ..FaultConfig::none()
            },
            ..LakeConfig::in_memory()
        }))
        .expect("lake");
    let to_lake = sink(&lake);
    let summary = rt.block_on(async {
        let limiter = Arc::new(RateLimiter::new(100.0));
        // Spend the limiter's initial one-second burst, so the clock measures the steady state.
        for _ in 0..100 {
            limiter.acquire().await;
        }
        let started = Instant::now();
        let summary = run(&object, &to_lake, &limiter, 8).await;
        (summary, started.elapsed())
    });
    let (summary, elapsed) = summary;
    println!(
        "load/quota-100-latency-50ms: {} events in {:.2} s = {:.0} events/s sustained, {} calls ({:.1} calls/s), {} throttled",
        summary.accepted,
        elapsed.as_secs_f64(),
        summary.accepted as f64 / elapsed.as_secs_f64(),
        summary.calls,
        summary.calls as f64 / elapsed.as_secs_f64(),
        summary.throttled
    );
    rt.block_on(lake.stop());
}

/// The CloudWatch sink of the stand-in at `url`.
fn cloudwatch_sink(staging: &aztrail_testkit::Staging) -> aztrail_load::cloudwatch::CloudWatchSink {
    aztrail_load::cloudwatch::CloudWatchSink::new(
        aws_sdk_cloudwatchlogs::Client::new(&staging.config),
        "/aztrail/bench",
        "aztrail/bench",
    )
}

/// The loader alone into CloudWatch Logs (the stand-in), no rate limit: its CPU cost per event.
fn cloudwatch_cpu(rt: &tokio::runtime::Runtime, events: usize) {
    let object = synth::generate(events, 7).into_bytes();
    rt.block_on(async {
        let (standin, staging) = aztrail_testkit::standin::AwsStandIn::start().await;
        let sink = Arc::new(cloudwatch_sink(&staging));
        let unlimited = Arc::new(RateLimiter::new(1e9));
        // Once to warm up (connections, the stream), then measured.
        run(&object, &sink, &unlimited, 8).await;
        let (cpu0, started) = (cpu_time(), Instant::now());
        let summary = run(&object, &sink, &unlimited, 8).await;
        let elapsed = started.elapsed();
        assert_eq!(standin.log_events(), 2 * events as u64);
        if let (Some(a), Some(b)) = (cpu0, cpu_time()) {
            let per_event = (b - a).as_secs_f64() / summary.accepted.max(1) as f64;
            println!(
                "load/cloudwatch: {} events in {:.2} s ({:.0} events/s), {} calls ({:.0} events per call); {:.1} CPU µs per event (loader, SDK and stand-in) = {:.0} events/s per core",
                summary.accepted,
                elapsed.as_secs_f64(),
                summary.accepted as f64 / elapsed.as_secs_f64(),
                summary.calls,
                summary.accepted as f64 / summary.calls.max(1) as f64,
                per_event * 1e6,
                1.0 / per_event
            );
        }
    });
}

/// Where the worker path's S3 and SQS are.
#[derive(Debug, Clone, Copy)]
enum Aws {
    Moto,
    StandIn,
}

/// Where the worker path sends.
#[derive(Debug, Clone, Copy)]
enum To {
    /// The lake at 100 calls/s and 50 ms a call.
    Lake,
    /// The stand-in's CloudWatch Logs at 800 calls/s.
    CloudWatch,
}

/// The worker path: `objects` objects of `records` records each, staged and notified, then
/// loaded by one worker until the queue is empty.
fn through_worker(aws: Aws, to: To, objects: usize, records: usize) {
    use aztrail_load::checkpoint::S3Checkpoints;
    use aztrail_load::destination::Sink;
    use aztrail_load::failure::SqsFailures;
    use aztrail_load::sqs::Worker;
    use futures::StreamExt;
    // A runtime of its own, as a fresh `aztrail load` process has: what earlier parts left
    // behind (idle connections, timers, a grown blocking pool) is not measured here.
    let rt = runtime();
    let (summary, elapsed) = rt.block_on(async {
        let (_moto, _standin, staging) = match aws {
            Aws::Moto => {
                let moto = aztrail_testkit::Moto::start();
                let staging = aztrail_testkit::Staging::create(&moto).await;
                (Some(moto), None, staging)
            }
            Aws::StandIn => {
                let (standin, staging) = aztrail_testkit::standin::AwsStandIn::start().await;
                (None, Some(standin), staging)
            }
        };
        let bodies: Vec<Vec<u8>> = (0..objects)
            .map(|i| synth::generate(records, 1000 + i as u64).into_bytes())
            .collect();
        futures::stream::iter(bodies.into_iter().enumerate())
            .for_each_concurrent(16, |(i, body)| {
                let s3 = staging.s3.clone();
                let bucket = staging.bucket.clone();
                async move {
                    s3.put_object()
                        .bucket(bucket)
                        .key(format!("staged/bench/{i:05}/PT1H.json.0-{}", body.len()))
                        .body(body.into())
                        .send()
                        .await
                        .expect("put");
                }
            })
            .await;
        let lake = Lake::start(LakeConfig {
            faults: FaultConfig {
                latency: Duration::from_millis(50),
                tps: 100,
                ..FaultConfig::none()
            },
            ..LakeConfig::in_memory()
        })
        .await
        .expect("lake");
        let (sink, calls_per_second) = match to {
            To::Lake => (
                Sink::CloudTrail(CloudTrailSink::for_endpoint(
                    &lake.url(),
                    DEFAULT_CHANNEL_ARN,
                )),
                100,
            ),
            To::CloudWatch => (Sink::CloudWatch(cloudwatch_sink(&staging)), 800),
        };
        let limiter = Arc::new(RateLimiter::new(f64::from(calls_per_second)));
        for _ in 0..calls_per_second {
            limiter.acquire().await;
        }
        let worker = Worker {
            s3: staging.s3.clone(),
            sqs: staging.sqs.clone(),
            queue_url: staging.work.clone(),
            failures: SqsFailures::new(staging.sqs.clone(), &staging.failures),
            checkpoints: S3Checkpoints::new(staging.s3.clone(), None),
            sink: Arc::new(sink),
            limiter,
            config: LoadConfig {
                account: LOCAL_ACCOUNT.into(),
                concurrency: 8,
                ..LoadConfig::default()
            },
            visibility_timeout: 120,
        };
        // Timed until the lake has answered the call of the last event (the stand-in's
        // CloudWatch Logs, which answers at once: until it holds every event): the worker's last
        // empty poll (a second, to be sure the queue is drained) is not loading time.
        let started = Instant::now();
        let cpu0 = cpu_time();
        let total = (objects * records) as u64;
        // The worker runs on the runtime's two threads, as in `aztrail load`, not on this one.
        let running = tokio::spawn(async move { worker.run(true).await });
        match (to, &_standin) {
            (To::CloudWatch, Some(s)) => {
                while s.log_events() < total {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            _ => lake.until_answered(total).await,
        }
        let elapsed = started.elapsed();
        if let (Some(a), Some(b)) = (cpu0, cpu_time()) {
            println!(
                "  (this process: {:.2} CPU s in {:.2} s)",
                (b - a).as_secs_f64(),
                elapsed.as_secs_f64()
            );
        }
        let summary = running.await.expect("worker task");
        lake.stop().await;
        (summary.expect("worker"), elapsed)
    });
    let load = &summary.load;
    assert!(
        load.balanced() && load.accepted == (objects * records) as u64,
        "{summary:?}"
    );
    println!(
        "load/worker/{aws:?}/{to:?}/{objects}x{records} ({objects} object(s) of {records}): {} events in {:.2} s = {:.0} events/s, {} calls = {:.1} events per call, {} throttled",
        load.accepted,
        elapsed.as_secs_f64(),
        load.accepted as f64 / elapsed.as_secs_f64(),
        load.calls,
        load.accepted as f64 / load.calls.max(1) as f64,
        load.throttled
    );
}

/// A runtime with two worker threads, as `aztrail` has on a 2-core machine.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rt = runtime();
    let mut c = Criterion::default().configure_from_args();
    // The first argument that is not a flag picks parts by name, as criterion's filter does.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wanted("load/no-quota") || wanted("load/null-sink") {
        cpu_cost(&mut c, &rt, if benching { 5000 } else { 300 });
    }
    if wanted("load/quota-100-latency-50ms") {
        with_quota(&rt, if benching { 60_000 } else { 1000 });
    }
    let shapes: &[(usize, usize)] = if benching {
        &[(1, 10_000), (100, 100), (1000, 10)]
    } else {
        &[(1, 100), (10, 10)]
    };
    if wanted("load/cloudwatch") {
        cloudwatch_cpu(&rt, if benching { 50_000 } else { 500 });
    }
    for (aws, to) in [
        (Aws::StandIn, To::Lake),
        (Aws::StandIn, To::CloudWatch),
        (Aws::Moto, To::Lake),
    ] {
        for &(objects, records) in shapes {
            if wanted(&format!("load/worker/{aws:?}/{to:?}/{objects}x{records}")) {
                through_worker(aws, to, objects, records);
            }
        }
    }
    c.final_summary();
}
