//! The Security Lake destination fed by SQS, on moto (S3, SQS, S3→SQS notifications): the queue
//! worker gathers every notified object into one batch, puts one Parquet file per (class, day)
//! under each class's location in the lake bucket, sends rejected records to the failure queue
//! and deletes the messages only then; an object notified again replaces its files instead of
//! adding copies; the Lambda handler lists as failures only the messages it could not read.
//!
//! moto is started here (`aztrail-testkit`) and stopped by PID.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_s3::primitives::ByteStream;
use aztrail_load::failure::{FailureMessage, SqsFailures};
use aztrail_load::securitylake::queue::{handle_lambda_batch, LambdaTarget, QueueWorker};
use aztrail_load::securitylake::{BatchLimits, LakeLayout, OcsfBatch, Output};
use aztrail_ocsf::Options;
use aztrail_securitylake::FileSettings;
use aztrail_testkit::{Moto, Staging};

const LAKE: &str = "aws-security-data-lake-us-east-1-test";

async fn stack() -> (Moto, Staging) {
    let moto = Moto::start();
    let staging = Staging::create(&moto).await;
    staging
        .s3
        .create_bucket()
        .bucket(LAKE)
        .send()
        .await
        .expect("lake bucket");
    (moto, staging)
}

fn batch(dir: &std::path::Path) -> OcsfBatch {
    OcsfBatch::new(
        dir,
        BatchLimits {
            max_age: Duration::from_secs(30),
            ..BatchLimits::default()
        },
        FileSettings::default(),
        Options::default(),
    )
    .expect("batch")
}

async fn put(s: &Staging, key: &str, body: Vec<u8>) {
    s.s3.put_object()
        .bucket(&s.bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("put");
}

async fn lake_keys(s: &Staging) -> BTreeSet<String> {
    aztrail_testkit::keys(&s.s3, LAKE, "")
        .await
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_writes_each_batch_once_and_deletes_its_messages_after() {
    let (_moto, s) = stack().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let signins = std::fs::read(
        aztrail_testkit::corpus_dir().join("elastic-beats/signinlogs/signinlogs.jsonl"),
    )
    .expect("corpus file");
    put(&s, "staged/a/PT1H.json.0-100", signins).await;
    let mut generated = aztrail_transform::synth::generate(2000, 9).into_bytes();
    generated.extend_from_slice(b"{\"broken\n");
    put(&s, "staged/b/PT1H.json.0-200", generated.clone()).await;
    let failures = SqsFailures::new(s.sqs.clone(), s.failures.clone());
    let layout = LakeLayout::new(
        &["api_activity=s3://aws-security-data-lake-us-east-1-test/ext/azure_api/1.0/".into()],
        "us-east-1",
        "123456789012",
    )
    .expect("layout");
    let output = Output::S3 {
        client: s.s3.clone(),
        bucket: LAKE.into(),
    };
    let worker = QueueWorker {
        s3: &s.s3,
        sqs: &s.sqs,
        queue_url: &s.work,
        failures: &failures,
        layout: &layout,
        output: &output,
    };
    let summary = worker
        .run(|| Ok(batch(tmp.path())), true, None)
        .await
        .expect("worker");
    // Two notifications, and the test event S3 sends when the notification is set up.
    assert_eq!(summary.messages, 3, "{summary:?}");
    assert_eq!(summary.deleted, 3);
    assert_eq!(summary.left, 0);
    let b = &summary.batches;
    assert_eq!(b.objects, 2);
    assert_eq!(b.events + b.rejected, b.records);
    assert!(b.events > 2000, "{b:?}");
    let rejected: Vec<FailureMessage> = s
        .drain(&s.failures)
        .await
        .iter()
        .map(|m| serde_json::from_str(m).expect("failure message"))
        .collect();
    assert_eq!(rejected.len() as u64, b.rejected);
    assert!(rejected.iter().any(|m| m.error_code == "InvalidJson"));
    let keys = lake_keys(&s).await;
    assert_eq!(keys.len() as u64, b.files);
    for k in &keys {
        assert!(
            k.starts_with("ext/azure_api/1.0/region=us-east-1/accountId=123456789012/eventDay=")
                || k.starts_with(
                    "ext/aztrail_authentication/region=us-east-1/accountId=123456789012/eventDay="
                )
                || k.starts_with("ext/aztrail_account_change/")
                || k.starts_with("ext/aztrail_entity_management/"),
            "{k}"
        );
        assert!(k.ends_with(".parquet"));
    }
    assert!(s.drain(&s.work).await.is_empty(), "every message deleted");

    // The same object notified again, alone: the same batch name and UIDs, so its files are
    // replaced, not added to.
    let only_b = worker
        .run(|| Ok(batch(tmp.path())), true, None)
        .await
        .expect("worker");
    assert_eq!(only_b.messages, 0);
    put(&s, "staged/b/PT1H.json.0-200", generated.clone()).await;
    let first = worker
        .run(|| Ok(batch(tmp.path())), true, None)
        .await
        .expect("worker");
    let after_first = lake_keys(&s).await;
    put(&s, "staged/b/PT1H.json.0-200", generated).await;
    let second = worker
        .run(|| Ok(batch(tmp.path())), true, None)
        .await
        .expect("worker");
    assert_eq!(first.batches.events, second.batches.events);
    assert_eq!(
        lake_keys(&s).await,
        after_first,
        "files replaced, not added"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_handler_returns_only_the_messages_it_could_not_read() {
    let (_moto, s) = stack().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    put(
        &s,
        "staged/c/PT1H.json.0-1",
        aztrail_transform::synth::generate(300, 4).into_bytes(),
    )
    .await;
    // The notifications the queue holds, and one for a bucket that does not exist.
    let mut bodies: Vec<String> = s
        .drain(&s.work)
        .await
        .into_iter()
        .filter(|b| b.contains("\"Records\""))
        .collect();
    assert_eq!(bodies.len(), 1);
    bodies.push(bodies[0].replace("\"staging\"", "\"no-such-bucket\""));
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(b.clone());
            m
        })
        .collect();
    let failures = SqsFailures::new(s.sqs.clone(), s.failures.clone());
    let layout = LakeLayout::new(&[], "us-east-1", "123456789012").expect("layout");
    let output = Output::S3 {
        client: s.s3.clone(),
        bucket: LAKE.into(),
    };
    let target = LambdaTarget {
        s3: &s.s3,
        failures: &failures,
        layout: &layout,
        output: &output,
        stop_reading_at: tokio::time::Instant::now() + Duration::from_secs(600),
    };
    // Past the deadline, no message is started: all go back, nothing is written.
    let late = LambdaTarget {
        stop_reading_at: tokio::time::Instant::now(),
        ..target
    };
    let (response, summary) = handle_lambda_batch(batch(tmp.path()), &late, event.clone()).await;
    assert_eq!(response.batch_item_failures.len(), 2);
    assert_eq!(summary.objects, 0);
    assert!(lake_keys(&s).await.is_empty());
    let target = LambdaTarget {
        stop_reading_at: tokio::time::Instant::now() + Duration::from_secs(600),
        ..late
    };
    let (response, summary) = handle_lambda_batch(batch(tmp.path()), &target, event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec!["m1".to_string()]);
    assert_eq!(summary.objects, 1);
    assert_eq!(summary.events, 300);
    assert_eq!(lake_keys(&s).await.len() as u64, summary.files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_writes_the_records_that_map_now_and_keeps_the_others() {
    use aws_sdk_sqs::types::QueueAttributeName;
    use aztrail_load::failure::Location;
    use aztrail_load::securitylake::redrive::LakeRedriver;
    let (_moto, s) = stack().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = aztrail_transform::synth::generate(1, 8);
    let at = |offset| Location {
        bucket: Some(s.bucket.clone()),
        key: "staged/d/PT1H.json.0-1".into(),
        offset,
        length: 10,
    };
    for (offset, raw) in [(0, good.trim().as_bytes()), (100, &b"{\"broken"[..])] {
        let m = FailureMessage::new("ThrottlingException", "slow down", at(offset), 8, raw);
        s.sqs
            .send_message()
            .queue_url(&s.failures)
            .message_body(m.to_json())
            .send()
            .await
            .expect("send");
    }
    let layout = LakeLayout::new(&[], "us-east-1", "123456789012").expect("layout");
    let output = Output::S3 {
        client: s.s3.clone(),
        bucket: LAKE.into(),
    };
    let redriver = LakeRedriver {
        s3: &s.s3,
        sqs: &s.sqs,
        queue_url: &s.failures,
        layout: &layout,
        output: &output,
        max_record_len: 1 << 20,
        visibility_timeout: 600,
        dry_run: false,
    };
    let (summary, written) = redriver.run(batch(tmp.path())).await.expect("redrive");
    assert_eq!(summary.messages, 2);
    assert_eq!(summary.redriven, 1);
    assert_eq!(summary.still_failing.get("InvalidJson"), Some(&1));
    assert_eq!(written.events, 1);
    assert_eq!(lake_keys(&s).await.len(), 1);
    // The redriven message is gone; the other is still there (in flight until its timeout).
    let attrs = s
        .sqs
        .get_queue_attributes()
        .queue_url(&s.failures)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let n = |a: QueueAttributeName| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        1
    );
}
