//! The loader against the local lake with the faults of the real world: throttled and failed
//! events, whole-call 500s, latency. Every record ends accepted exactly once or in the failure
//! sink with its reason and location.

use std::sync::Arc;
use std::time::Duration;

use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN, LOCAL_ACCOUNT};
use aztrail_load::checkpoint::{Checkpoint, NoProgress};
use aztrail_load::cloudtrail::CloudTrailSink;
use aztrail_load::loader::{load, Destination, LoadConfig, MemoryFailures};
use aztrail_load::rate::RateLimiter;
use aztrail_load::sender::SendPolicy;
use aztrail_transform::{synth, Source};

fn sink(lake: &Lake) -> Arc<CloudTrailSink> {
    Arc::new(CloudTrailSink::for_endpoint(
        &lake.url(),
        DEFAULT_CHANNEL_ARN,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_duplicated_under_faults() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig {
            latency: Duration::from_millis(50),
            tps: 100,
            throttle_rate: 0.3,
            fail_rate: 0.05,
            error_rate: 0.02,
            seed: 11,
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let good = 1500;
    let mut object = synth::generate(good, 17).into_bytes();
    // Bad input between the good records: each must be reported with its location.
    let bad: [&[u8]; 5] = [
        b"{\"time\":\"2026-11-01T00:00:00Z\",\"category\":\"Administrative\"",
        b"{\"time\":\"2026-11-01T00:00:00Z\",\"operationName\":\"\xff\xfe\"}",
        b"{\"a\":\"nul \x00 inside\"}",
        b"[1,2,3]",
        b"{\"category\":\"Administrative\"}",
    ];
    let mut bad_offsets = Vec::new();
    for b in bad {
        bad_offsets.push(object.len() as u64);
        object.extend_from_slice(b);
        object.push(b'\n');
    }
    object.extend_from_slice(synth::generate(20, 18).as_bytes());
    let failures = MemoryFailures::default();
    let config = LoadConfig {
        account: LOCAL_ACCOUNT.into(),
        concurrency: 8,
        policy: SendPolicy {
            max_attempts: 30,
            ..SendPolicy::default()
        },
        chunk_size: 64 * 1024,
        // With checksums, which the lake checks: a wrong one would fail its event.
        event_data_checksum: true,
        ..LoadConfig::default()
    };
    let source = Source {
        bucket: Some("staging".into()),
        key: "obj".into(),
    };
    let dest = Destination {
        sink: &sink(&lake),
        limiter: &Arc::new(RateLimiter::new(90.0)),
        failures: &failures,
    };
    let summary = load(
        &source,
        &object[..],
        &Checkpoint::default(),
        &dest,
        &NoProgress,
        &config,
    )
    .await
    .unwrap();
    println!("{summary:?}");
    assert!(summary.balanced(), "{summary:?}");
    assert_eq!(summary.records, (good + 20 + bad.len()) as u64);
    assert_eq!(summary.accepted, (good + 20) as u64, "{summary:?}");
    assert_eq!(summary.failed, bad.len() as u64);
    assert!(
        summary.retried > 0 && summary.throttled > 0,
        "the faults were exercised"
    );
    let failed = failures.0.lock().unwrap().clone();
    let mut offsets: Vec<u64> = failed.iter().map(|f| f.source.offset).collect();
    offsets.sort();
    assert_eq!(offsets, bad_offsets);
    for f in &failed {
        assert!(!f.error_message.is_empty());
        assert_eq!(f.source.key, "obj");
        let raw = f.raw_record().unwrap();
        let at = f.source.offset as usize;
        assert_eq!(&object[at..at + raw.len()], &raw[..]);
    }
    let stats = lake.stats().await.unwrap();
    assert_eq!(
        stats.events, summary.accepted,
        "every accepted event stored once"
    );
    assert_eq!(stats.duplicate_events, 0);
    lake.stop().await;
}

#[tokio::test]
async fn events_the_service_refuses_reach_the_failure_sink_with_their_record() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let object = synth::generate(30, 4);
    let failures = MemoryFailures::default();
    // Mapped for another account than the channel's: the lake answers InvalidRecipient.
    let config = LoadConfig {
        account: "123456789012".into(),
        ..LoadConfig::default()
    };
    let dest = Destination {
        sink: &sink(&lake),
        limiter: &Arc::new(RateLimiter::new(100.0)),
        failures: &failures,
    };
    let summary = load(
        &Source {
            bucket: None,
            key: "local".into(),
        },
        object.as_bytes(),
        &Checkpoint::default(),
        &dest,
        &NoProgress,
        &config,
    )
    .await
    .unwrap();
    assert_eq!(
        (summary.records, summary.accepted, summary.failed),
        (30, 0, 30)
    );
    assert_eq!(summary.failed_by_code.get("InvalidRecipient"), Some(&30));
    let failed = failures.0.lock().unwrap().clone();
    assert!(failed.iter().all(|f| f.attempts == 1 && f.record.is_some()));
    lake.stop().await;
}

/// Unlucky inputs that once lost records silently: a leading empty array, a record repeated
/// within one call's reach (the whole call used to fail with DuplicatedAuditEventId), and a
/// record over the maximum length. Every record ends accepted or reported.
#[tokio::test]
async fn repeated_and_oversized_records_and_a_leading_empty_array_lose_nothing() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let records = synth::generate(40, 9);
    let mut object = b"[]\n".to_vec();
    object.extend_from_slice(records.as_bytes());
    object.extend_from_slice(records.as_bytes()); // every record twice
    let big_at = object.len() as u64;
    object.extend_from_slice(b"{\"pad\":\"");
    object.extend(std::iter::repeat_n(b'x', 300_000));
    object.extend_from_slice(b"\"}\n");
    object.extend_from_slice(synth::generate(3, 10).as_bytes());
    let failures = MemoryFailures::default();
    let config = LoadConfig {
        account: LOCAL_ACCOUNT.into(),
        max_record_len: 100_000,
        ..LoadConfig::default()
    };
    let dest = Destination {
        sink: &sink(&lake),
        limiter: &Arc::new(RateLimiter::new(1000.0)),
        failures: &failures,
    };
    let source = Source {
        bucket: Some("staging".into()),
        key: "obj".into(),
    };
    let summary = load(
        &source,
        &object[..],
        &Checkpoint::default(),
        &dest,
        &NoProgress,
        &config,
    )
    .await
    .unwrap();
    assert!(summary.balanced(), "{summary:?}");
    assert_eq!(
        (summary.records, summary.accepted, summary.failed),
        (84, 83, 1),
        "{summary:?}"
    );
    let failed = failures.0.lock().unwrap().clone();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error_code, "RecordTooLarge");
    assert_eq!(
        (failed[0].source.offset, failed[0].source.length),
        (big_at, 300_010)
    );
    let stats = lake.stats().await.unwrap();
    assert_eq!((stats.events, stats.distinct_uids), (83, 43));
    lake.stop().await;
}

/// Objects smaller than a call, loaded side by side through one pool, share calls under the
/// rate limit; each object's summary is exactly its own, as if loaded alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_share_calls_and_keep_their_own_accounts() {
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let sink = sink(&lake);
    // Two calls a second (a burst of two): 40 calls of their own would take 20 s.
    let limiter = Arc::new(RateLimiter::new(2.0));
    let failures = MemoryFailures::default();
    let config = LoadConfig {
        account: LOCAL_ACCOUNT.into(),
        pool: Some(aztrail_load::pool::CallPool::start(
            Arc::clone(&sink),
            Arc::clone(&limiter),
            4,
        )),
        policy: SendPolicy {
            max_attempts: 30,
            ..SendPolicy::default()
        },
        ..LoadConfig::default()
    };
    let objects: Vec<(Source, Vec<u8>)> = (0..40)
        .map(|i| {
            let mut body = synth::generate(7, 100 + i).into_bytes();
            if i % 10 == 0 {
                body.extend_from_slice(b"{\"not\":\"a record\"}\n");
            }
            (
                Source {
                    bucket: Some("staging".into()),
                    key: format!("obj-{i}"),
                },
                body,
            )
        })
        .collect();
    let dest = Destination {
        sink: &sink,
        limiter: &limiter,
        failures: &failures,
    };
    let resume = Checkpoint::default();
    let summaries = futures::future::join_all(
        objects
            .iter()
            .map(|(source, body)| load(source, &body[..], &resume, &dest, &NoProgress, &config)),
    )
    .await;
    let mut calls = 0;
    for (i, s) in summaries.into_iter().enumerate() {
        let s = s.unwrap();
        let bad = u64::from(i % 10 == 0);
        assert_eq!(
            (s.records, s.accepted, s.failed),
            (7 + bad, 7, bad),
            "object {i}: {s:?}"
        );
        calls += s.calls;
    }
    let stats = lake.stats().await.unwrap();
    assert_eq!((stats.events, stats.distinct_uids), (280, 280));
    println!("40 objects of 7 records: {calls} calls");
    // The first two calls leave at once (the burst); the rest wait for tokens and fill up.
    assert!(
        calls <= 6,
        "{calls} calls for 40 objects of 7: calls are shared"
    );
    let failed = failures.0.lock().unwrap().clone();
    assert_eq!(failed.len(), 4);
    assert!(
        failed
            .iter()
            .all(|f| f.source.key.ends_with("0") && f.source.offset > 0),
        "{failed:?}"
    );
    lake.stop().await;
}
