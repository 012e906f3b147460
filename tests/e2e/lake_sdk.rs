//! The local lake, driven by the official `aws-sdk-cloudtraildata` client pointed at it: batches
//! are accepted and queryable, every whole-call and per-event error reaches the SDK as the SDK's
//! own error, the quota throttles, faults are injected, a call's latency is its whole round trip,
//! and events survive a restart.

use aws_sdk_cloudtraildata::config::retry::RetryConfig;
use aws_sdk_cloudtraildata::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudtraildata::error::ProvideErrorMetadata;
use aws_sdk_cloudtraildata::operation::put_audit_events::PutAuditEventsError;
use aws_sdk_cloudtraildata::types::AuditEvent;
use aws_sdk_cloudtraildata::Client;
use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN, LOCAL_ACCOUNT};
use aztrail_transform::{frame_all, synth, Mapper};
use base64::Engine as _;
use sha2::{Digest, Sha256};

fn client(lake: &Lake) -> Client {
    let config = aws_sdk_cloudtraildata::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDLOCAL", "secret", None, None, "test"))
        .endpoint_url(lake.url())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// `n` mapped events from generated records, for `account`, with their checksums (which the
/// local lake checks).
fn events(n: usize, seed: u64, account: &str) -> Vec<AuditEvent> {
    let data = synth::generate(n, seed);
    let mut mapper = Mapper::new(account).with_checksum(true);
    let mut out = Vec::new();
    frame_all(data.as_bytes(), |r| {
        let ev = mapper.map(r).expect("generated records map");
        out.push(
            AuditEvent::builder()
                .id(ev.id)
                .event_data(ev.event_data())
                .set_event_data_checksum(ev.checksum.map(str::to_string))
                .build()
                .unwrap(),
        );
    });
    out
}

fn with_data(id: &str, data: serde_json::Value) -> AuditEvent {
    let s = data.to_string();
    let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&s));
    AuditEvent::builder()
        .id(id)
        .event_data(s)
        .event_data_checksum(sum)
        .build()
        .unwrap()
}

fn valid_data() -> serde_json::Value {
    serde_json::json!({"version": "1.0", "userIdentity": {"type": "User", "principalId": "p"},
        "eventSource": "MICROSOFT.STORAGE", "eventName": "MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE",
        "eventTime": "2026-11-01T00:00:00Z", "UID": "u", "recipientAccountId": LOCAL_ACCOUNT})
}

/// An in-memory lake with these faults.
async fn lake_with(faults: FaultConfig) -> Lake {
    Lake::start(LakeConfig {
        faults,
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap()
}

async fn no_faults() -> Lake {
    lake_with(FaultConfig::none()).await
}

#[tokio::test]
async fn valid_batches_are_accepted_and_queryable() {
    let lake = no_faults().await;
    let c = client(&lake);
    let evs = events(250, 1, LOCAL_ACCOUNT);
    let mut accepted = 0;
    for chunk in evs.chunks(100) {
        let out = c
            .put_audit_events()
            .channel_arn(DEFAULT_CHANNEL_ARN)
            .set_audit_events(Some(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        assert!(out.failed().is_empty(), "{:?}", out.failed());
        assert_eq!(out.successful().len(), chunk.len());
        for (s, e) in out.successful().iter().zip(chunk) {
            assert_eq!(s.id(), e.id());
            assert_eq!(s.event_id().len(), 36);
        }
        accepted += out.successful().len();
    }
    assert_eq!(accepted, 250);
    assert_eq!(lake.count().await.unwrap(), 250);
    // The original sample's validation query, as written, with any store name.
    let rows = lake
        .query("SELECT eventData.uid, eventData.eventName, eventData.sourceipaddress, eventData.recipientaccountid, eventData.eventtime FROM a1b2c3d4-5678-90ab-cdef-EXAMPLE11111 WHERE eventData.eventSource = 'MICROSOFT.STORAGE' AND eventData.eventName LIKE 'MICROSOFT.STORAGE/STORAGEACCOUNTS%' AND eventData.uid IS NOT NULL")
        .await
        .unwrap();
    assert_eq!(
        rows.columns,
        [
            "uid",
            "eventName",
            "sourceipaddress",
            "recipientaccountid",
            "eventtime"
        ]
    );
    let storage_events = evs
        .iter()
        .filter(|e| {
            let d: serde_json::Value = serde_json::from_str(e.event_data()).unwrap();
            d["eventSource"] == "MICROSOFT.STORAGE"
                && d["eventName"]
                    .as_str()
                    .unwrap()
                    .starts_with("MICROSOFT.STORAGE/STORAGEACCOUNTS")
        })
        .count();
    assert!(storage_events > 0);
    assert_eq!(rows.rows.len(), storage_events);
    for r in &rows.rows {
        assert_eq!(r[3], LOCAL_ACCOUNT);
        assert!(r[0].as_str().unwrap().len() == 64);
    }
    // Fields CloudTrail adds are stored too, and LIKE is case-sensitive as in CloudTrail Lake.
    let added = lake
        .query("SELECT eventCategory, eventType, channelARN, count(*) AS n FROM s GROUP BY 1, 2, 3")
        .await
        .unwrap();
    assert_eq!(
        added.rows,
        vec![vec![
            serde_json::json!("ActivityAuditLog"),
            serde_json::json!("ActivityLog"),
            serde_json::json!(DEFAULT_CHANNEL_ARN),
            serde_json::json!(250)
        ]]
    );
    let lower = lake
        .query("SELECT count(*) FROM s WHERE eventData.eventName LIKE 'microsoft.storage%'")
        .await
        .unwrap();
    assert_eq!(lower.rows[0][0], 0);
    lake.stop().await;
}

#[tokio::test]
async fn whole_call_errors_are_the_sdks_own() {
    let lake = no_faults().await;
    let c = client(&lake);
    let one = vec![with_data("a", valid_data())];
    let call = |arn: &str, evs: Vec<AuditEvent>| {
        c.put_audit_events()
            .channel_arn(arn)
            .set_audit_events(Some(evs))
            .send()
    };

    let e = call(
        "arn:aws:cloudtrail:us-east-1:000000000000:channel/nope",
        one.clone(),
    )
    .await
    .unwrap_err();
    assert!(matches!(
        e.into_service_error(),
        PutAuditEventsError::ChannelNotFound(_)
    ));

    let e = call("arn:aws:s3:::not-a-channel", one.clone())
        .await
        .unwrap_err();
    assert!(matches!(
        e.into_service_error(),
        PutAuditEventsError::InvalidChannelArn(_)
    ));

    let dup = vec![
        with_data("same", valid_data()),
        with_data("same", valid_data()),
    ];
    let e = call(DEFAULT_CHANNEL_ARN, dup).await.unwrap_err();
    assert!(matches!(
        e.into_service_error(),
        PutAuditEventsError::DuplicatedAuditEventId(_)
    ));

    let many: Vec<AuditEvent> = (0..101)
        .map(|i| with_data(&format!("e{i}"), valid_data()))
        .collect();
    let e = call(DEFAULT_CHANNEL_ARN, many).await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert_eq!(e.into_service_error().code(), Some("ValidationException"));

    let mut big = valid_data();
    big["additionalEventData"] = serde_json::json!({"pad": "x".repeat(20_000)});
    let heavy: Vec<AuditEvent> = (0..60)
        .map(|i| with_data(&format!("h{i}"), big.clone()))
        .collect();
    let e = call(DEFAULT_CHANNEL_ARN, heavy).await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(413));
    assert_eq!(
        e.into_service_error().code(),
        Some("RequestEntityTooLargeException")
    );

    let bad_id = vec![with_data("not a valid id!", valid_data())];
    let e = call(DEFAULT_CHANNEL_ARN, bad_id).await.unwrap_err();
    assert_eq!(e.into_service_error().code(), Some("ValidationException"));

    // A channel id (the ARN's suffix) is accepted like the ARN.
    let ok = call("aztrail-local", one).await.unwrap();
    assert_eq!(ok.successful().len(), 1);
    assert_eq!(
        lake.count().await.unwrap(),
        1,
        "failed calls stored nothing"
    );
    lake.stop().await;
}

#[tokio::test]
async fn per_event_errors_carry_the_documented_codes() {
    let lake = no_faults().await;
    let c = client(&lake);
    let mut cases: Vec<(AuditEvent, &str)> = Vec::new();
    let bad_sum = AuditEvent::builder()
        .id("checksum")
        .event_data(valid_data().to_string())
        .event_data_checksum("AAAA")
        .build()
        .unwrap();
    cases.push((bad_sum, "InvalidChecksum"));
    let mut d = valid_data();
    d.as_object_mut().unwrap().remove("eventName");
    cases.push((with_data("missing", d), "FieldNotFound"));
    let mut d = valid_data();
    d["userAgent"] = serde_json::json!("u".repeat(1025));
    cases.push((with_data("long", d), "FieldTooLong"));
    let mut d = valid_data();
    d["eventTime"] = serde_json::json!("2026-11-01 00:00:00");
    cases.push((with_data("time", d), "InvalidData"));
    let mut d = valid_data();
    d["sourceIPAddress"] = serde_json::json!("999.1.1.1");
    cases.push((with_data("ip", d), "InvalidData"));
    let mut d = valid_data();
    d["recipientAccountId"] = serde_json::json!("123456789012");
    cases.push((with_data("recipient", d), "InvalidRecipient"));
    cases.push((with_data("fine", valid_data()), ""));

    let out = c
        .put_audit_events()
        .channel_arn(DEFAULT_CHANNEL_ARN)
        .set_audit_events(Some(cases.iter().map(|(e, _)| e.clone()).collect()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.successful().len(), 1);
    assert_eq!(out.successful()[0].id(), "fine");
    for (e, code) in cases.iter().filter(|(_, c)| !c.is_empty()) {
        let f = out
            .failed()
            .iter()
            .find(|f| f.id() == e.id())
            .unwrap_or_else(|| panic!("{}", e.id()));
        assert_eq!(f.error_code(), *code, "{}: {}", e.id(), f.error_message());
        assert!(!f.error_message().is_empty());
    }
    assert_eq!(lake.count().await.unwrap(), 1);
    lake.stop().await;
}

#[tokio::test]
async fn calls_over_the_quota_are_throttled() {
    // Measured from before the lake starts, so the refill below is never underestimated.
    let started = std::time::Instant::now();
    let lake = lake_with(FaultConfig {
        tps: 2,
        ..FaultConfig::default()
    })
    .await;
    let c = client(&lake);
    let (mut ok, mut throttled) = (0, 0);
    for i in 0..12 {
        let r = c
            .put_audit_events()
            .channel_arn(DEFAULT_CHANNEL_ARN)
            .audit_events(with_data(&format!("t{i}"), valid_data()))
            .send()
            .await;
        match r {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
                assert_eq!(e.into_service_error().code(), Some("ThrottlingException"));
                throttled += 1;
            }
        }
    }
    // A full bucket of 2, plus 2 per second of however long the 12 calls took.
    let refilled = (started.elapsed().as_secs_f64() * 2.0).floor() as usize;
    assert!(
        ok >= 2 && ok <= 2 + refilled,
        "{ok} accepted, {refilled} refilled"
    );
    assert!(throttled >= 1);
    assert_eq!(ok + throttled, 12);
    lake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_the_round_trip_and_the_work_happens_within_it() {
    // Long enough that storing 100 events ends long before the answer is due.
    let lake = lake_with(FaultConfig {
        latency: std::time::Duration::from_secs(3),
        ..FaultConfig::none()
    })
    .await;
    let c = client(&lake);
    let batch = events(100, 41, LOCAL_ACCOUNT);
    // Taken before the call leaves, so the lower bound below holds however the tasks run.
    let sent = std::time::Instant::now();
    let call = tokio::spawn(
        c.put_audit_events()
            .channel_arn(DEFAULT_CHANNEL_ARN)
            .set_audit_events(Some(batch))
            .send(),
    );
    // The events are stored while the call is in flight, as the service stores before it
    // answers, and `until_answered` returns once the answer is out.
    lake.until_answered(100).await;
    let out = call.await.unwrap().expect("accepted");
    assert_eq!(out.successful().len(), 100);
    assert_eq!(lake.count().await.unwrap(), 100);
    // No answer comes before the latency (a lower bound: a slow machine only adds to it).
    assert!(sent.elapsed() >= std::time::Duration::from_secs(3));
    lake.stop().await;
}

#[tokio::test]
async fn injected_faults_are_reported_per_event_and_per_call() {
    let lake = lake_with(FaultConfig {
        throttle_rate: 0.3,
        fail_rate: 0.1,
        error_rate: 0.2,
        seed: 7,
        ..FaultConfig::none()
    })
    .await;
    let c = client(&lake);
    let evs = events(400, 3, LOCAL_ACCOUNT);
    let (mut ok, mut throttled, mut failed, mut errors) = (0, 0, 0, 0);
    for chunk in evs.chunks(20) {
        match c
            .put_audit_events()
            .channel_arn(DEFAULT_CHANNEL_ARN)
            .set_audit_events(Some(chunk.to_vec()))
            .send()
            .await
        {
            Ok(out) => {
                ok += out.successful().len();
                for f in out.failed() {
                    match f.error_code() {
                        "Throttling" => throttled += 1,
                        "InternalFailure" => failed += 1,
                        other => panic!("unexpected {other}: {}", f.error_message()),
                    }
                }
            }
            Err(e) => {
                assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(500));
                errors += 1;
            }
        }
    }
    // 20 calls at a 20% whole-call error rate (seeded: the same draws every run).
    assert!(
        (1..=12).contains(&errors),
        "{errors} of 20 calls failed whole"
    );
    assert!(throttled > 0 && failed > 0 && ok > 0);
    assert_eq!(lake.count().await.unwrap() as usize, ok);
    lake.stop().await;
}

#[tokio::test]
async fn accepted_events_survive_a_restart() {
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-lake-restart-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("lake.db");
    let _ = std::fs::remove_file(&db);
    let config = || LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::with_file(&db)
    };
    let lake = Lake::start(config()).await.unwrap();
    let out = client(&lake)
        .put_audit_events()
        .channel_arn(DEFAULT_CHANNEL_ARN)
        .set_audit_events(Some(events(40, 9, LOCAL_ACCOUNT)))
        .send()
        .await
        .unwrap();
    assert_eq!(out.successful().len(), 40);
    lake.stop().await;

    let lake = Lake::start(config()).await.unwrap();
    assert_eq!(lake.count().await.unwrap(), 40);
    let stats = lake.stats().await.unwrap();
    assert_eq!(stats.duplicate_events, 0);
    // Sending the same events again stores them again: duplicates are visible by UID.
    client(&lake)
        .put_audit_events()
        .channel_arn(DEFAULT_CHANNEL_ARN)
        .set_audit_events(Some(events(40, 9, LOCAL_ACCOUNT)))
        .send()
        .await
        .unwrap();
    let stats = lake.stats().await.unwrap();
    assert_eq!(
        (stats.events, stats.distinct_uids, stats.duplicate_events),
        (80, 40, 40)
    );
    lake.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
