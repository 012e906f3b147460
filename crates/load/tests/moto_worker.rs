//! The worker against moto (S3, SQS, S3→SQS notifications) and the local lake: staged objects go
//! from notification to lake with every record accounted for, gzip objects are read on the fly,
//! a poison message reaches the failure queue, and the work queue ends empty.
//!
//! moto is started here (from `target/venv-test`, which `scripts/test` fills, or `MOTO_SERVER`)
//! and stopped by PID.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN, LOCAL_ACCOUNT};
use aztrail_load::failure::FailureMessage;
use aztrail_load::loader::LoadConfig;
use aztrail_load::rate::RateLimiter;
use aztrail_load::sink::CloudTrailSink;
use aztrail_load::sqs::{SqsFailures, Worker};
use aztrail_transform::synth;

/// A moto server on a free port, killed when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Self {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| {
            format!(
                "{}/../../target/venv-test/bin/moto_server",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        assert!(
            std::path::Path::new(&bin).exists(),
            "moto_server not found at {bin}: run ./scripts/test once (it installs moto[server] into target/venv-test) or set MOTO_SERVER"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn creds() -> aws_sdk_s3::config::Credentials {
    aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_to_lake_with_every_record_accounted_for() {
    let moto = Moto::start();
    let region = aws_sdk_s3::config::Region::new("us-east-1");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(creds())
            .endpoint_url(&moto.url)
            .force_path_style(true)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .endpoint_url(&moto.url)
            .build(),
    );
    s3.create_bucket().bucket("staging").send().await.unwrap();
    let work = sqs
        .create_queue()
        .queue_name("work")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let failq = sqs
        .create_queue()
        .queue_name("failures")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&work)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let work_arn = attrs.attributes.unwrap()[&QueueAttributeName::QueueArn].clone();
    s3.put_bucket_notification_configuration()
        .bucket("staging")
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(work_arn)
                        .events(Event::S3ObjectCreated)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let mut plain = synth::generate(300, 1).into_bytes();
    plain.extend_from_slice(b"{\"truncated\":\n");
    let compressed = synth::generate(200, 2);
    let key_a = "staged/acct/insights-activity-logs/resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=27/h=10/m=00/PT1H.json.0-1000";
    for (key, body) in [
        (key_a.to_string(), plain.clone()),
        (
            "staged/b c/PT1H.json.gz".to_string(),
            gzip(compressed.as_bytes()),
        ),
    ] {
        s3.put_object()
            .bucket("staging")
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
    sqs.send_message()
        .queue_url(&work)
        .message_body("this is not an S3 event")
        .send()
        .await
        .unwrap();

    let lake = Lake::start(LakeConfig {
        faults: FaultConfig {
            throttle_rate: 0.2,
            ..FaultConfig::none()
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let ct = aws_sdk_cloudtraildata::Client::from_conf(
        aws_sdk_cloudtraildata::Config::builder()
            .behavior_version(aws_sdk_cloudtraildata::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudtraildata::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudtraildata::config::Credentials::new(
                "a", "b", None, None, "t",
            ))
            .endpoint_url(lake.url())
            .retry_config(aws_sdk_cloudtraildata::config::retry::RetryConfig::disabled())
            .build(),
    );
    let worker = Worker {
        s3,
        sqs: sqs.clone(),
        queue_url: work.clone(),
        failures: SqsFailures::new(sqs.clone(), failq.clone()),
        sink: Arc::new(CloudTrailSink::new(ct, DEFAULT_CHANNEL_ARN)),
        limiter: Arc::new(RateLimiter::new(100.0)),
        config: LoadConfig {
            account: LOCAL_ACCOUNT.into(),
            ..LoadConfig::default()
        },
        visibility_timeout: 60,
    };
    let summary = worker.run(true).await.unwrap();
    println!("{}", serde_json::to_string(&summary).unwrap());
    assert_eq!(summary.objects, 2);
    assert_eq!(summary.poison, 1);
    assert_eq!(summary.left, 0);
    assert_eq!(summary.load.records, 501);
    assert_eq!(summary.load.accepted, 500);
    assert!(summary.load.records == summary.load.accepted + summary.load.failed);
    assert_eq!(lake.stats().await.unwrap().events, 500);
    assert_eq!(lake.stats().await.unwrap().duplicate_events, 0);

    // The failure queue: the truncated record (with its location) and the poison message.
    let mut failures = Vec::new();
    loop {
        let r = sqs
            .receive_message()
            .queue_url(&failq)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let msgs = r.messages.unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            failures.push(serde_json::from_str::<FailureMessage>(m.body().unwrap()).unwrap());
        }
    }
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
    let left = sqs
        .receive_message()
        .queue_url(&work)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(left.messages.unwrap_or_default().is_empty());
    lake.stop().await;
}
