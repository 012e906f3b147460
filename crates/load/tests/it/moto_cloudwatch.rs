//! The worker with CloudWatch Logs as its destination, on moto (S3, SQS, S3→SQS notifications and
//! CloudWatch Logs): a corpus object and a generated 10,000-record object reach the log group,
//! read back with GetLogEvents, one log event per accepted record, each message the record's
//! event, its time stamp the record's time in milliseconds, in time order; a record older than
//! 14 days goes to the failure queue with the service's reason; a redelivered message sends
//! nothing again (its checkpoint), a re-dropped object is sent again in full.
//!
//! moto enforces the age window and time order (a call out of order fails whole), not batch
//! sizes. The records' times are moved to the last hour, since CloudWatch Logs takes nothing
//! older than 14 days; everything else in them is as written.
//!
//! moto is started here (`aztrail-testkit`) and stopped by PID.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aztrail_load::checkpoint::S3Checkpoints;
use aztrail_load::cloudwatch::CloudWatchSink;
use aztrail_load::failure::FailureMessage;
use aztrail_load::failure::SqsFailures;
use aztrail_load::loader::LoadConfig;
use aztrail_load::rate::RateLimiter;
use aztrail_load::sqs::Worker;
use aztrail_testkit::{Moto, Staging};
use aztrail_transform::{frame_all, synth, Mapper, Source};
use serde_json::Value;

const ACCOUNT: &str = "123456789012";
const GROUP: &str = "/aztrail/events";
const STREAM: &str = "aztrail/test/writer-1";

struct Stack {
    _moto: Moto,
    staging: Staging,
    logs: aws_sdk_cloudwatchlogs::Client,
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start();
        let staging = Staging::create(&moto).await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&staging.config);
        logs.create_log_group()
            .log_group_name(GROUP)
            .send()
            .await
            .expect("log group");
        Self {
            _moto: moto,
            staging,
            logs,
        }
    }

    fn worker(&self) -> Worker<CloudWatchSink, S3Checkpoints> {
        let s = &self.staging;
        Worker {
            s3: s.s3.clone(),
            sqs: s.sqs.clone(),
            queue_url: s.work.clone(),
            failures: SqsFailures::new(s.sqs.clone(), s.failures.clone()),
            checkpoints: S3Checkpoints::new(s.s3.clone(), None),
            sink: Arc::new(CloudWatchSink::new(self.logs.clone(), GROUP, STREAM)),
            limiter: Arc::new(RateLimiter::new(100.0)),
            config: LoadConfig {
                account: ACCOUNT.into(),
                concurrency: 4,
                ..LoadConfig::default()
            },
            visibility_timeout: 60,
        }
    }

    async fn put(&self, key: &str, body: &[u8]) {
        self.staging
            .s3
            .put_object()
            .bucket(&self.staging.bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("put");
    }

    /// Every event of the stream, oldest first, as GetLogEvents pages them.
    async fn events(&self) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .logs
                .get_log_events()
                .log_group_name(GROUP)
                .log_stream_name(STREAM)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .expect("get log events");
            let n = page.events().len();
            for e in page.events() {
                out.push((
                    e.timestamp().unwrap_or_default(),
                    e.message().unwrap_or_default().to_string(),
                ));
            }
            let next = page.next_forward_token().map(str::to_string);
            if n == 0 || next == token {
                return out;
            }
            token = next;
        }
    }

    async fn failures(&self) -> Vec<FailureMessage> {
        self.staging
            .drain(&self.staging.failures)
            .await
            .iter()
            .map(|b| serde_json::from_str(b).expect("failure message"))
            .collect()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `2026-12-02T10:11:12.345Z` for `ms` since the epoch.
fn iso_ms(ms: i64) -> String {
    let secs = aztrail_transform::time::UtcSeconds(ms.div_euclid(1000)).to_iso();
    format!("{}.{:03}Z", &secs[..19], ms.rem_euclid(1000))
}

/// The records of `bytes` as JSON lines, each object's `time` set to a moment of the last hour
/// (from `start_ms`, a few milliseconds apart, so that the times also test the order); records
/// that are not JSON objects are kept as written.
fn recent(bytes: &[u8], start_ms: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0i64;
    frame_all(bytes, |rec| {
        match serde_json::from_slice::<Value>(rec.bytes) {
            Ok(Value::Object(mut o)) => {
                // Later records get earlier times for every third one: out of order on purpose.
                let ms = start_ms + if i % 3 == 0 { -i * 7 } else { i * 5 };
                o.insert("time".into(), Value::String(iso_ms(ms)));
                out.extend_from_slice(Value::Object(o).to_string().as_bytes());
            }
            _ => out.extend_from_slice(rec.bytes),
        }
        out.push(b'\n');
        i += 1;
    });
    out
}

/// What the mapping makes of `object` at `key`: UID → (time stamp in ms, eventData), and the
/// number of records it rejects.
fn expected(object: &[u8], key: &str) -> (HashMap<String, (i64, Value)>, usize) {
    let mut mapper = Mapper::new(ACCOUNT);
    mapper.set_source(&Source {
        bucket: Some("staging".into()),
        key: key.into(),
    });
    let (mut events, mut rejected) = (HashMap::new(), 0);
    frame_all(object, |rec| match mapper.map(rec) {
        Ok(ev) => {
            let data: Value = serde_json::from_str(&ev.event_data()).expect("eventData");
            events.insert(ev.id.to_string(), (ev.event_time_ms, data));
        }
        Err(_) => rejected += 1,
    });
    (events, rejected)
}

fn corpus_object() -> Vec<u8> {
    let files = aztrail_testkit::corpus_files().unwrap_or_else(|e| {
        panic!(
            "{}: {e} (is ../shared/corpus there?)",
            aztrail_testkit::corpus_dir().display()
        )
    });
    assert!(files.len() >= 40, "the corpus looks incomplete");
    let mut all = Vec::new();
    for f in files {
        all.extend(std::fs::read(&f).expect("corpus file"));
        all.push(b'\n');
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_and_generated_objects_reach_the_log_group_as_their_events_in_time_order() {
    let stack = Stack::start().await;
    let start = now_ms() - 3_000_000;
    let corpus = recent(&corpus_object(), start);
    let generated = recent(synth::generate(10_000, 21).as_bytes(), start + 1);
    let (corpus_key, generated_key) = ("staged/corpus/PT1H.json", "staged/gen/PT1H.json");
    let (mut want, corpus_rejected) = expected(&corpus, corpus_key);
    let (gen_want, gen_rejected) = expected(&generated, generated_key);
    assert_eq!(gen_rejected, 0);
    assert!(want.len() > 100, "the corpus maps to {} events", want.len());
    want.extend(gen_want);
    stack.put(corpus_key, &corpus).await;
    stack.put(generated_key, &generated).await;

    let summary = stack.worker().run(true).await.expect("worker");
    assert_eq!(summary.objects, 2, "{summary:?}");
    assert!(summary.load.balanced(), "{:?}", summary.load);
    assert_eq!(summary.load.accepted as usize, want.len());
    assert_eq!(summary.load.failed as usize, corpus_rejected);
    // 10,000 events fill few calls: the generated object alone needs at least one per 10,000.
    assert!(
        summary.load.calls < 100,
        "{} calls for {} events",
        summary.load.calls,
        want.len()
    );

    let got = stack.events().await;
    assert_eq!(got.len(), want.len(), "one log event per accepted record");
    let mut seen = std::collections::HashSet::new();
    for (k, (ts, message)) in got.iter().enumerate() {
        let event: Value = serde_json::from_str(message).expect("each message is JSON");
        let uid = event["UID"].as_str().expect("UID").to_string();
        let (time, data) = want.get(&uid).expect("an expected event");
        assert_eq!(&event, data, "the message is the event, whole");
        assert_eq!(ts, time, "the time stamp is the record's, in milliseconds");
        assert!(seen.insert(uid), "no event twice");
        if k > 0 {
            assert!(got[k - 1].0 <= *ts, "time order");
        }
    }
    assert!(
        got.iter().any(|(t, _)| t % 1000 != 0),
        "milliseconds are kept"
    );
    assert_eq!(stack.failures().await.len(), corpus_rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_record_is_refused_with_its_reason_and_redelivery_and_redrop_behave() {
    let stack = Stack::start().await;
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    let lines = synth::generate(6, 5);
    let mut object = Vec::new();
    let (hour, minute) = (3600 * 1000, 60 * 1000);
    // Two in time, one too old, three too new (2h12m to 3h ahead: moto reports the last
    // too-new index, and none of the three may be counted accepted).
    for (line, ms) in lines.lines().zip([
        now - 60_000,
        now - 20 * day,
        now - 30_000,
        now + 2 * hour + 12 * minute,
        now + 2 * hour + 40 * minute,
        now + 3 * hour,
    ]) {
        let mut v: Value = serde_json::from_str(line).expect("generated JSON");
        v["time"] = Value::String(iso_ms(ms));
        object.extend_from_slice(v.to_string().as_bytes());
        object.push(b'\n');
    }
    let key = "staged/old/PT1H.json";
    stack.put(key, &object).await;

    // Keep the object's notification (not moto's s3:TestEvent), to deliver it again later.
    let mut notification = None;
    for _ in 0..10 {
        if notification.is_some() {
            break;
        }
        let r = stack
            .staging
            .sqs
            .receive_message()
            .queue_url(&stack.staging.work)
            .max_number_of_messages(10)
            .wait_time_seconds(5)
            .send()
            .await
            .expect("receive");
        for m in r.messages() {
            let b = m.body().unwrap_or_default();
            if b.contains("ObjectCreated") {
                notification = Some(b.to_string());
            }
            stack
                .staging
                .sqs
                .change_message_visibility()
                .queue_url(&stack.staging.work)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await
                .expect("release");
        }
    }
    let notification = notification.expect("the object's notification");

    let worker = stack.worker();
    let first = worker.run(true).await.expect("worker");
    assert_eq!(
        (first.load.accepted, first.load.failed),
        (2, 4),
        "{first:?}"
    );
    assert_eq!(first.load.failed_by_code.get("TooOldLogEvent"), Some(&1));
    assert_eq!(first.load.failed_by_code.get("TooNewLogEvent"), Some(&3));
    let mut failures = stack.failures().await;
    assert_eq!(failures.len(), 4);
    failures.sort_by_key(|f| f.error_code != "TooOldLogEvent");
    assert_eq!(failures[0].error_code, "TooOldLogEvent");
    assert!(
        failures[0].error_message.contains("14 days"),
        "{}",
        failures[0].error_message
    );
    assert_eq!(failures[0].source.key, key);
    assert!(
        failures[0]
            .record
            .as_deref()
            .is_some_and(|r| r.contains(&iso_ms(now - 20 * day))),
        "the failure carries the record"
    );
    assert_eq!(stack.events().await.len(), 2);

    // The same notification again: the checkpoint says the object is done; nothing is sent.
    stack
        .staging
        .sqs
        .send_message()
        .queue_url(&stack.staging.work)
        .message_body(&notification)
        .send()
        .await
        .expect("send");
    let again = worker.run(true).await.expect("worker");
    assert_eq!((again.already_loaded, again.objects), (1, 0), "{again:?}");
    assert_eq!(stack.events().await.len(), 2);
    assert!(stack.failures().await.is_empty(), "no failure twice");

    // A re-drop (a new PUT of the same bytes) is sent again in full.
    stack.put(key, &object).await;
    let redrop = worker.run(true).await.expect("worker");
    assert_eq!(
        (redrop.objects, redrop.load.skipped, redrop.load.accepted),
        (1, 0, 2)
    );
    assert_eq!(stack.events().await.len(), 4);
    assert_eq!(stack.failures().await.len(), 4);
}
