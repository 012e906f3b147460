//! Issue 23, item 3: many ingest workers for one container. A scheduler pass (`aztrail ingest
//! --fan-out-to`) sends 500 subscriptions' roots as 4 work shards to an SQS queue (moto); four
//! `aztrail ingest --work-queue` processes take them, blobs in Azurite, staged objects in moto's
//! S3. One worker is SIGKILLed mid-shard: its message reappears after the visibility timeout,
//! another worker takes over its claims once their lease is out, and every blob's staged bytes
//! equal its appended bytes, each byte once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aztrail_testkit::{azurite_account_sas, hour_path, Azurite, Moto, Staging, AZURITE_ACCOUNT};
use aztrail_transform::synth;
use azure_core::http::{RequestContent, Url};
use azure_storage_blob::BlobContainerClient;
use futures::StreamExt;

const CONTAINER: &str = "insights-activity-logs";

fn aztrail(moto: &Moto, azurite: &Azurite, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aztrail"));
    c.args([
        "ingest",
        "--container",
        CONTAINER,
        "--staging-bucket",
        "staging",
        "--s3-path-style",
    ])
    .args(args)
    .env("AWS_ENDPOINT_URL", &moto.url)
    .env("AWS_ACCESS_KEY_ID", "t")
    .env("AWS_SECRET_ACCESS_KEY", "t")
    .env("AWS_REGION", "us-east-1")
    .env(
        "AZTRAIL_AZURE_CREDENTIALS",
        format!("{}/?{}", azurite.account_url, azurite_account_sas("rl")),
    );
    c
}

async fn staged_count(s3: &aws_sdk_s3::Client) -> usize {
    aztrail_testkit::keys(s3, "staging", "staged/").await.len()
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_one_killed_stage_each_byte_once() {
    let azurite = Azurite::start();
    let moto = Moto::start();
    let staging = Staging::create(&moto).await;
    let container = BlobContainerClient::new(
        Url::parse(&format!(
            "{}/{CONTAINER}?{}",
            azurite.account_url,
            azurite_account_sas("racwdl")
        ))
        .unwrap(),
        None,
        None,
    )
    .unwrap();
    container.create(None).await.unwrap();
    let blobs: Vec<(String, Vec<u8>)> = (0..500)
        .map(|s| {
            (
                hour_path(&format!("resourceId=/SUBSCRIPTIONS/SUB{s:04}/"), 0),
                synth::generate(2, s).into_bytes(),
            )
        })
        .collect();
    futures::stream::iter(&blobs)
        .for_each_concurrent(16, |(name, body)| {
            let append = container.blob_client(name).append_blob_client();
            async move {
                append.create(None).await.unwrap();
                append
                    .append_block(RequestContent::from(body.clone()), body.len() as u64, None)
                    .await
                    .unwrap();
            }
        })
        .await;
    let work_queue = staging
        .sqs
        .create_queue()
        .queue_name("ingest-work")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    let out = aztrail(
        &moto,
        &azurite,
        &["--fan-out-to", &work_queue, "--work-shards", "4"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (sent["roots"].as_u64(), sent["messages"].as_u64()),
        (Some(500), Some(4)),
        "{sent}"
    );

    let logs = tempfile::tempdir().unwrap();
    let mut workers: Vec<Child> = (0..4)
        .map(|i| {
            let log = std::fs::File::create(logs.path().join(format!("worker{i}.jsonl"))).unwrap();
            aztrail(
                &moto,
                &azurite,
                &[
                    "--work-queue",
                    &work_queue,
                    "--work-visibility",
                    "5s",
                    "--claim-lease",
                    "3s",
                    // Slow enough that the kill finds the worker mid-shard.
                    "--requests-in-flight",
                    "2",
                ],
            )
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    // Once some objects are staged, worker 0 dies mid-shard (each shard is ~125 blobs).
    let deadline = Instant::now() + Duration::from_secs(120);
    while staged_count(&staging.s3).await < 40 {
        assert!(Instant::now() < deadline, "the workers stage nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    let killed_at = staged_count(&staging.s3).await;
    assert!(killed_at < 500, "killed before the end: {killed_at}");
    // The others finish everything, the dead worker's shard included.
    let deadline = Instant::now() + Duration::from_secs(300);
    while staged_count(&staging.s3).await < 500 {
        assert!(
            Instant::now() < deadline,
            "only {} of 500 staged",
            staged_count(&staging.s3).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every message is done and deleted (the last worker deletes after its commit).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attrs = staging
            .sqs
            .get_queue_attributes()
            .queue_url(&work_queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )
            .send()
            .await
            .unwrap();
        let left: u64 = attrs
            .attributes()
            .unwrap()
            .values()
            .map(|v| v.parse::<u64>().unwrap())
            .sum();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} work message(s) never finished"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for w in workers.iter_mut().skip(1) {
        terminate(w);
    }

    let staged = aztrail_testkit::staged_ranges(&staging.s3, "staging", "staged/").await;
    let prefix = format!("staged/{AZURITE_ACCOUNT}/{CONTAINER}/");
    for (name, body) in &blobs {
        let joined = aztrail_testkit::concatenated(&staged[&format!("{prefix}{name}")]);
        assert_eq!(&joined, body, "{name}: staged bytes == appended bytes");
    }
    let notified = staging.drain(&staging.work).await;
    assert_eq!(
        notified
            .iter()
            .filter(|b| b.contains("ObjectCreated"))
            .count(),
        500,
        "one notification per staged object"
    );
    let passes = (0..4)
        .map(|i| std::fs::read_to_string(logs.path().join(format!("worker{i}.jsonl"))).unwrap())
        .collect::<String>();
    // Whether the kill left a claim (it may fall between two shards) shows here.
    println!("{passes}");
}
