//! How many events per second the local lake accepts, in process, with faults off: it must never
//! be the bottleneck of a loader benchmark. Each iteration sends 20 calls of 100 mapped events
//! through the official SDK client, one call at a time; the lake runs on a one-worker runtime.
//!
//! Beside it, the same events as pre-built request bodies (as `aztrail-transform`'s batcher makes
//! them) over one keep-alive HTTP/1.1 connection: the lake's own cost, without the SDK's
//! serializing and signing on the same core.
//!
//! Run: `cargo bench --bench lake`.

use aws_sdk_cloudtraildata::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudtraildata::types::AuditEvent;
use aws_sdk_cloudtraildata::Client;
use aztrail_lake::raw_client::RawClient;
use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN, LOCAL_ACCOUNT};
use aztrail_transform::{frame_all, synth, Mapper};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

// The allocator `aztrail` itself uses (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 2,000 mapped events as SDK calls of 100.
fn batches() -> Vec<Vec<AuditEvent>> {
    let data = synth::generate(2000, 21);
    let mut mapper = Mapper::new(LOCAL_ACCOUNT);
    let mut events = Vec::new();
    frame_all(data.as_bytes(), |r| {
        if let Ok(ev) = mapper.map(r) {
            if let Ok(e) = AuditEvent::builder()
                .id(ev.id)
                .event_data(ev.event_data())
                .set_event_data_checksum(ev.checksum.map(str::to_string))
                .build()
            {
                events.push(e);
            }
        }
    });
    events.chunks(100).map(<[AuditEvent]>::to_vec).collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let batches = batches();
    let events: usize = batches.iter().map(Vec::len).sum();
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-bench-lake-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
    let _ = std::fs::create_dir_all(&dir);
    let mut group = c.benchmark_group("lake/accept");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events as u64));
    for (name, config) in [
        ("memory", LakeConfig::in_memory()),
        ("sqlite-file", LakeConfig::with_file(dir.join("bench.db"))),
    ] {
        let lake = rt
            .block_on(Lake::start(LakeConfig {
                faults: FaultConfig::none(),
                ..config
            }))
            .expect("lake");
        let client = Client::from_conf(
            aws_sdk_cloudtraildata::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("AKID", "secret", None, None, "bench"))
                .endpoint_url(lake.url())
                .build(),
        );
        group.bench_function(BenchmarkId::new("sdk-calls-of-100", name), |b| {
            b.to_async(&rt).iter(|| async {
                for batch in &batches {
                    let out = client
                        .put_audit_events()
                        .channel_arn(DEFAULT_CHANNEL_ARN)
                        .set_audit_events(Some(batch.clone()))
                        .send()
                        .await
                        .expect("accepted");
                    assert_eq!(out.successful().len(), batch.len());
                }
            })
        });
        let bodies = aztrail_load::sink::request_bodies(2000, 21, LOCAL_ACCOUNT);
        let mut conn = rt
            .block_on(RawClient::connect(lake.addr()))
            .expect("connect");
        group.bench_function(BenchmarkId::new("raw-bodies-of-100", name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for body in &bodies {
                        let (status, resp) = conn.put("aztrail-local", body).await.expect("call");
                        assert!(status == 200 && resp.starts_with(b"{\"failed\":[]"));
                    }
                })
            })
        });
        drop(conn);
        rt.block_on(lake.stop());
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
