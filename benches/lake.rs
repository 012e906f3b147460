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
use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN, LOCAL_ACCOUNT};
use aztrail_transform::Batcher;
use aztrail_transform::{frame_all, synth, Mapper};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/cloudtrail-data/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The same records as PutAuditEvents bodies of at most 100 events.
fn bodies() -> Vec<Vec<u8>> {
    let data = synth::generate(2000, 21);
    let mut mapper = Mapper::new(LOCAL_ACCOUNT);
    let mut batcher = Batcher::new();
    let mut out = Vec::new();
    let mut entry = Vec::new();
    frame_all(data.as_bytes(), |r| {
        if let Ok(ev) = mapper.map(r) {
            entry.clear();
            ev.write_entry(&mut entry);
            if let Ok(Some(done)) = batcher.push(&entry, ()) {
                out.push(done.body);
            }
        }
    });
    out.extend(batcher.take().map(|b| b.body));
    out
}

/// POSTs `body` on a kept-alive connection; returns the response body.
async fn post(conn: &mut BufReader<TcpStream>, host: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST /PutAuditEvents?channelArn=aztrail-local HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let s = conn.get_mut();
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await.expect("read");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut resp = vec![0; len];
    conn.read_exact(&mut resp).await.expect("read body");
    resp
}

fn batches() -> Vec<Vec<AuditEvent>> {
    let data = synth::generate(2000, 21);
    let mut mapper = Mapper::new(LOCAL_ACCOUNT);
    let mut events = Vec::new();
    frame_all(data.as_bytes(), |r| {
        if let Ok(ev) = mapper.map(r) {
            if let Ok(e) = AuditEvent::builder()
                .id(ev.id)
                .event_data(ev.event_data)
                .event_data_checksum(ev.checksum)
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
    let dir = std::env::temp_dir().join(format!("aztrail-bench-lake-{}", std::process::id()));
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
        let bodies = bodies();
        let host = lake.addr().to_string();
        let mut conn = BufReader::new(
            rt.block_on(TcpStream::connect(lake.addr()))
                .expect("connect"),
        );
        group.bench_function(BenchmarkId::new("raw-bodies-of-100", name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for body in &bodies {
                        let resp = post(&mut conn, &host, body).await;
                        assert!(
                            resp.starts_with(b"{\"failed\":[]"),
                            "{}",
                            String::from_utf8_lossy(&resp)
                        );
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
