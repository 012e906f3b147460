//! The worker against moto (S3, SQS, S3→SQS notifications) and the local lake: staged objects go
//! from notification to lake with every record accounted for, gzip objects are read on the fly,
//! a poison message reaches the failure queue, and the work queue ends empty; a worker that
//! crashes mid-object is resumed from its checkpoint on redelivery without re-sending accepted
//! batches; a redelivered finished message sends nothing; a re-dropped object is loaded again in
//! full; redrive empties the failure queue, re-reading pointers from S3; the visibility heartbeat
//! keeps a long object's message from other consumers; the Lambda handler lists only unfinished
//! messages.
//!
//! moto is started here (`aztrail-testkit`) and stopped by PID.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;
use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN, LOCAL_ACCOUNT};
use aztrail_load::checkpoint::{checkpoint_key, CheckpointStore, S3Checkpoints};
use aztrail_load::cloudtrail::CloudTrailSink;
use aztrail_load::failure::FailureMessage;
use aztrail_load::failure::SqsFailures;
use aztrail_load::loader::LoadConfig;
use aztrail_load::notification::{parse, Notification};
use aztrail_load::rate::RateLimiter;
use aztrail_load::redrive::Redriver;
use aztrail_load::sender::SendPolicy;
use aztrail_load::sink::{CallError, EventSink, OutEvent, PutResult};
use aztrail_load::sqs::Worker;
use aztrail_testkit::{Moto, Staging};
use aztrail_transform::synth;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// moto with a staging bucket whose `staged/` objects notify a work queue, and a failure queue.
struct Stack {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    work: String,
    failq: String,
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start();
        let staging = Staging::create(&moto).await;
        Self {
            moto,
            s3: staging.s3,
            sqs: staging.sqs,
            work: staging.work,
            failq: staging.failures,
        }
    }

    /// The records accepted according to the load checkpoints in the staging bucket (summed).
    async fn checkpointed(&self) -> u64 {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket("staging")
            .prefix(aztrail_load::checkpoint::CHECKPOINT_PREFIX)
            .send()
            .await
            .unwrap();
        let mut accepted = 0;
        for object in listed.contents() {
            let Some(key) = object.key() else { continue };
            let got = self.s3.get_object().bucket("staging").key(key).send().await;
            let Ok(got) = got else { continue };
            let bytes = got.body.collect().await.unwrap().into_bytes();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            accepted += v["accepted"].as_u64().unwrap_or(0);
        }
        accepted
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket("staging")
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }

    fn worker<S: EventSink>(
        &self,
        sink: Arc<S>,
        visibility_timeout: i32,
    ) -> Worker<S, S3Checkpoints> {
        Worker {
            s3: self.s3.clone(),
            sqs: self.sqs.clone(),
            queue_url: self.work.clone(),
            failures: SqsFailures::new(self.sqs.clone(), self.failq.clone()),
            checkpoints: S3Checkpoints::new(self.s3.clone(), None),
            sink,
            limiter: Arc::new(RateLimiter::new(100.0)),
            config: LoadConfig {
                account: LOCAL_ACCOUNT.into(),
                checkpoint_every: 2,
                concurrency: 2,
                ..LoadConfig::default()
            },
            visibility_timeout,
        }
    }

    /// Every message of `queue`, received and deleted.
    async fn drain(&self, queue: &str) -> Vec<String> {
        aztrail_testkit::drain(&self.sqs, queue).await
    }

    /// The bodies of the messages now in `queue`, left there (made visible again at once).
    async fn peek(&self, queue: &str) -> Vec<String> {
        let r = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .visibility_timeout(30)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for m in r.messages.unwrap_or_default() {
            out.push(m.body().unwrap_or_default().to_string());
            self.sqs
                .change_message_visibility()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
        out
    }
}

fn lake_sink(lake: &Lake) -> Arc<CloudTrailSink> {
    Arc::new(CloudTrailSink::for_endpoint(
        &lake.url(),
        DEFAULT_CHANNEL_ARN,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_to_lake_with_every_record_accounted_for() {
    let stack = Stack::start().await;
    let mut plain = synth::generate(300, 1).into_bytes();
    plain.extend_from_slice(b"{\"truncated\":\n");
    let compressed = synth::generate(200, 2);
    let key_a = "staged/acct/insights-activity-logs/resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=27/h=10/m=00/PT1H.json.0-1000";
    stack.put(key_a, plain.clone()).await;
    stack
        .put("staged/b c/PT1H.json.gz", gzip(compressed.as_bytes()))
        .await;
    stack
        .sqs
        .send_message()
        .queue_url(&stack.work)
        .message_body("this is not an S3 event")
        .send()
        .await
        .unwrap();
    // Keep one notification to deliver it again once it is done.
    let notifications = stack.peek(&stack.work).await;
    let first = notifications
        .iter()
        .find(|b| b.contains("PT1H.json.0-1000"))
        .expect("the notification of key_a")
        .clone();

    let lake = Lake::start(LakeConfig {
        faults: FaultConfig {
            throttle_rate: 0.2,
            ..FaultConfig::none()
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let worker = stack.worker(lake_sink(&lake), 60);
    let summary = worker.run(true).await.unwrap();
    println!("{}", serde_json::to_string(&summary).unwrap());
    assert_eq!(summary.objects, 2);
    assert_eq!(summary.poison, 1);
    assert_eq!(summary.left, 0);
    assert_eq!(summary.load.records, 501);
    assert_eq!(summary.load.accepted, 500);
    assert!(summary.load.balanced());
    assert_eq!(lake.stats().await.unwrap().events, 500);
    assert_eq!(lake.stats().await.unwrap().duplicate_events, 0);

    // Each object's checkpoint says complete; writing it notified nothing (outside staged/).
    let Ok(Notification::Objects { objects, .. }) = parse(&first) else {
        panic!("an S3 notification: {first}")
    };
    let cp = S3Checkpoints::new(stack.s3.clone(), None)
        .get(&objects[0])
        .await
        .unwrap()
        .expect("a checkpoint");
    assert!(
        cp.complete && cp.accepted == 300 && cp.failed == 1,
        "{cp:?}"
    );
    assert!(checkpoint_key(&objects[0]).starts_with("_aztrail/load/staged/"));

    // The failure queue: the truncated record (with its location) and the poison message.
    let mut failures: Vec<FailureMessage> = stack
        .drain(&stack.failq)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    failures.sort_by(|a, b| a.error_code.cmp(&b.error_code));
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0].error_code, "InvalidJson");
    assert_eq!(failures[0].source.key, key_a);
    assert_eq!(
        failures[0].source.offset as usize,
        plain.len() - "{\"truncated\":\n".len()
    );
    assert_eq!(failures[1].error_code, "NotS3Notification");
    assert_eq!(
        failures[1].record.as_deref(),
        Some("this is not an S3 event")
    );
    // Nothing left to do.
    assert!(stack.drain(&stack.work).await.is_empty());

    // The same notification again (SQS delivers at least once): the checkpoint says done.
    stack
        .sqs
        .send_message()
        .queue_url(&stack.work)
        .message_body(&first)
        .send()
        .await
        .unwrap();
    let again = worker.run(true).await.unwrap();
    assert_eq!(
        (again.already_loaded, again.objects, again.deleted),
        (1, 0, 1)
    );
    assert_eq!(lake.stats().await.unwrap().events, 500);
    assert!(
        stack.drain(&stack.failq).await.is_empty(),
        "no failure twice"
    );

    // A re-drop (a new PUT of the same bytes) is loaded again in full. moto's notifications
    // carry no sequencer, so a PUT is told apart by its event time (ms): put again only once the
    // clock is past the first PUT's.
    let first_put = parse(&first)
        .ok()
        .and_then(|n| match n {
            Notification::Objects { objects, .. } => objects.into_iter().next()?.event_time,
            _ => None,
        })
        .and_then(|t| aztrail_transform::time::parse_time_ms(&t))
        .map(|(s, ms)| s.0 * 1000 + i64::from(ms))
        .expect("the first notification's event time");
    while now_ms() <= first_put {
        tokio::task::yield_now().await;
    }
    stack.put(key_a, plain.clone()).await;
    let redrop = worker.run(true).await.unwrap();
    assert_eq!((redrop.objects, redrop.load.skipped), (1, 0));
    assert_eq!(redrop.load.accepted, 300);
    let stats = lake.stats().await.unwrap();
    assert_eq!((stats.events, stats.duplicate_events), (800, 300));
    lake.stop().await;
    drop(stack.moto);
}

/// Passes calls to the lake until `crash_after` calls were made, then never answers again: the
/// process "dies" with calls in flight.
struct Crashing {
    inner: Arc<CloudTrailSink>,
    calls: AtomicU32,
    /// Calls answered (all but the ones that hang).
    answered: AtomicU32,
    crash_after: u32,
}

impl EventSink for Crashing {
    async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.crash_after {
            futures::future::pending::<()>().await;
        }
        let result = self.inner.put(events).await;
        self.answered.fetch_add(1, Ordering::SeqCst);
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_resumes_after_a_crash_without_resending_accepted_batches() {
    let stack = Stack::start().await;
    let records = 3000; // 30 batches of 100
    let body = synth::generate(records, 9).into_bytes();
    stack.put("staged/big/PT1H.json.0-x", body).await;
    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();

    // The first worker dies after 12 calls.
    let visibility = 3;
    let crashing = Arc::new(Crashing {
        inner: lake_sink(&lake),
        calls: AtomicU32::new(0),
        answered: AtomicU32::new(0),
        crash_after: 12,
    });
    let first = stack.worker(Arc::clone(&crashing), visibility);
    let run = tokio::spawn(async move { first.run(false).await });
    let started = Instant::now();
    while crashing.calls.load(Ordering::SeqCst) <= 12 {
        assert!(started.elapsed() < Duration::from_secs(60), "no crash");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Wait until the 12 calls that pass are answered (the 13th never is) and the checkpoint
    // covers what they stored, within the one save interval the loader allows; then kill the
    // worker.
    loop {
        let answered = crashing.answered.load(Ordering::SeqCst);
        let stored = lake.stats().await.unwrap().events;
        let saved = stack.checkpointed().await;
        if answered == 12 && saved + 2 * 100 >= stored {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{answered} calls answered, {stored} stored, {saved} checkpointed"
        );
        // A poll interval, not a wait for something to happen by itself.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.abort();
    let _ = run.await;
    let before = lake.stats().await.unwrap().events;
    assert!(before > 0 && before < records as u64, "{before}");

    // The message comes back after its visibility timeout; a new worker resumes it. Until then
    // the worker finds the queue empty and returns: it polls again.
    let second = stack.worker(lake_sink(&lake), visibility);
    let started = Instant::now();
    let summary = loop {
        let summary = second.run(true).await.unwrap();
        if summary.objects > 0 || summary.left > 0 {
            break summary;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the message never came back"
        );
    };
    println!(
        "first run stored {before}; second: {}",
        serde_json::to_string(&summary).unwrap()
    );
    assert_eq!((summary.objects, summary.left), (1, 0));
    assert!(summary.load.balanced());
    let stats = lake.stats().await.unwrap();
    assert_eq!(stats.distinct_uids, records as u64, "nothing lost");
    // Skipped: every record below the checkpoint, which trails the accepted batches by at most
    // the batches in flight and since the last save (concurrency 2 + checkpoint_every 2).
    assert!(summary.load.skipped > 0 && summary.load.skipped <= before);
    assert!(
        before - summary.load.skipped <= 4 * 100,
        "{before} {}",
        summary.load.skipped
    );
    assert_eq!(stats.duplicate_events, before - summary.load.skipped);
    assert!(stack.drain(&stack.work).await.is_empty());
    lake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_empties_the_failure_queue_reading_pointers_from_s3() {
    let stack = Stack::start().await;
    // A record too large for an SQS message: its failure message is a pointer.
    let big = format!(
        "{{\"time\":\"2026-11-27T10:00:00Z\",\"operationName\":\"MICROSOFT.X/Y/WRITE\",\"category\":\"Administrative\",\"resourceId\":\"/SUBSCRIPTIONS/S\",\"properties\":{{\"blob\":\"{}\"}}}}\n",
        "x".repeat(300_000)
    );
    let mut body = synth::generate(25, 5).into_bytes();
    body.extend_from_slice(big.as_bytes());
    stack.put("staged/r/PT1H.json", body).await;
    // A lake that fails every event: everything reaches the failure queue.
    let broken = Lake::start(LakeConfig {
        faults: FaultConfig {
            fail_rate: 1.0,
            ..FaultConfig::none()
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let mut worker = stack.worker(lake_sink(&broken), 60);
    worker.config.policy = SendPolicy {
        max_attempts: 1,
        ..SendPolicy::default()
    };
    let summary = worker.run(true).await.unwrap();
    assert_eq!((summary.load.records, summary.load.failed), (26, 26));
    broken.stop().await;

    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();
    let redriver = |dry_run| Redriver {
        s3: stack.s3.clone(),
        sqs: stack.sqs.clone(),
        queue_url: stack.failq.clone(),
        sink: lake_sink(&lake),
        limiter: Arc::new(RateLimiter::new(100.0)),
        config: LoadConfig {
            account: LOCAL_ACCOUNT.into(),
            ..LoadConfig::default()
        },
        visibility_timeout: 60,
        dry_run,
    };
    let dry = redriver(true).run().await.unwrap();
    assert_eq!((dry.messages, dry.redriven), (26, 26));
    assert_eq!(
        lake.stats().await.unwrap().events,
        0,
        "a dry run sends nothing"
    );
    let attrs = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.failq)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes.unwrap()[&QueueAttributeName::ApproximateNumberOfMessages],
        "26",
        "a dry run deletes nothing and hands every message back"
    );

    let done = redriver(false).run().await.unwrap();
    assert_eq!((done.messages, done.redriven), (26, 26), "{done:?}");
    assert_eq!(done.reread, 1, "the large record was re-read from S3");
    assert!(done.still_failing.is_empty());
    let stats = lake.stats().await.unwrap();
    assert_eq!((stats.events, stats.duplicate_events), (26, 0));
    assert!(stack.drain(&stack.failq).await.is_empty());
    lake.stop().await;
}

/// An SQS event as Lambda hands it over, built by hand.
fn sqs_event(messages: &[(&str, &str)]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|(id, body)| {
            serde_json::json!({
                "messageId": id, "receiptHandle": format!("receipt-{id}"), "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work", "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_handler_reports_only_unfinished_messages() {
    let stack = Stack::start().await;
    stack
        .put("staged/l/PT1H.json", synth::generate(150, 21).into_bytes())
        .await;
    let bodies = stack.drain(&stack.work).await;
    let notification = bodies
        .iter()
        .find(|b| b.contains("PT1H.json"))
        .unwrap_or_else(|| panic!("no notification in {bodies:?}"))
        .clone();
    let missing = notification.replace("PT1H.json", "gone.json");
    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();
    let mut worker = stack.worker(lake_sink(&lake), 60);
    worker.ensure_pool();
    let event = sqs_event(&[
        ("m-ok", &notification),
        ("m-missing", &missing),
        ("m-poison", "{}"),
    ]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (response, summary) =
        aztrail_load::lambda::handle_batch(&worker, event, deadline, Duration::from_secs(5)).await;
    let listed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(listed, ["m-missing"], "{summary:?}");
    assert_eq!(
        (summary.objects, summary.poison, summary.load.accepted),
        (1, 1, 150)
    );
    assert!(
        summary.errors[0].contains("gone.json"),
        "{:?}",
        summary.errors
    );
    let line = aztrail_load::metrics::load_metrics("aztrail-load", &summary, 0);
    assert!(line.contains("\"Accepted\":150"), "{line}");

    // Out of time before it starts: every message goes back untouched.
    let event = sqs_event(&[("a", &notification), ("b", &notification)]);
    let (response, summary) = aztrail_load::lambda::handle_batch(
        &worker,
        event,
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(response.batch_item_failures.len(), 2);
    assert_eq!((summary.left, summary.load.records), (2, 0));
    assert_eq!(lake.stats().await.unwrap().events, 150);
    lake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_keeps_a_long_object_invisible() {
    let stack = Stack::start().await;
    stack
        .put(
            "staged/slow/PT1H.json",
            synth::generate(1200, 8).into_bytes(),
        )
        .await;
    // 12 calls one at a time, 400 ms each: about 5 s of work against a 2 s visibility timeout.
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig {
            latency: Duration::from_millis(400),
            ..FaultConfig::none()
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let mut worker = stack.worker(lake_sink(&lake), 2);
    worker.config.concurrency = 1;
    let run = tokio::spawn(async move { worker.run(true).await });
    // Once the worker has the message (its first batch is stored), another consumer polls: it
    // must never see the object's message again.
    let started = Instant::now();
    while lake.stats().await.unwrap().events == 0 {
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stolen = 0;
    while !run.is_finished() {
        assert!(started.elapsed() < Duration::from_secs(60));
        let r = stack
            .sqs
            .receive_message()
            .queue_url(&stack.work)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        stolen += r
            .messages
            .unwrap_or_default()
            .iter()
            .filter(|m| m.body().unwrap_or_default().contains("PT1H.json"))
            .count();
    }
    let summary = run.await.unwrap().unwrap();
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the work outlasted the timeout"
    );
    assert_eq!(stolen, 0, "the message stayed invisible while it loaded");
    assert_eq!((summary.objects, summary.load.accepted), (1, 1200));
    assert_eq!(lake.stats().await.unwrap().duplicate_events, 0);
    lake.stop().await;
}

/// A loopback stand-in for an SQS endpoint that fails for a while: its first `failing`
/// connections are answered 500 and closed; after that every connection is passed to moto.
async fn flaky_proxy(upstream: &str, failing: u32) -> (String, Arc<AtomicU32>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let refused = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&refused);
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if counter.load(Ordering::SeqCst) < failing {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = client.read(&mut buf).await;
                    let _ = client
                        .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                });
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (url, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_failing_for_a_while_does_not_stop_the_worker() {
    let stack = Stack::start().await;
    stack
        .put(
            "staged/flaky/PT1H.json.0-1",
            synth::generate(120, 31).into_bytes(),
        )
        .await;
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let (url, refused) = flaky_proxy(&stack.moto.url, 12).await;
    let flaky_sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build(),
    );
    let mut worker = stack.worker(lake_sink(&lake), 60);
    worker.sqs = flaky_sqs;
    let summary = worker.run(true).await.unwrap();
    println!("{}", serde_json::to_string(&summary).unwrap());
    assert_eq!(
        refused.load(Ordering::SeqCst),
        12,
        "the endpoint failed for a while"
    );
    assert!(
        summary
            .errors
            .iter()
            .any(|e| e.contains("retrying") && e.contains("HTTP 500")),
        "{:?}",
        summary.errors
    );
    assert!(
        summary
            .errors
            .iter()
            .all(|e| !e.contains("unhandled error")),
        "{:?}",
        summary.errors
    );
    assert_eq!(summary.load.accepted, 120);
    assert_eq!(lake.stats().await.unwrap().distinct_uids, 120);
    assert!(
        stack.peek(&stack.work).await.is_empty(),
        "the message was deleted"
    );
    lake.stop().await;
}
