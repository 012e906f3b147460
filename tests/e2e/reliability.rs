//! Reliability under faults and crashes, with figures printed for the record:
//! - faults: `aztrail run` against a lake answering 30% Throttling, 5% InternalFailure, 2% whole
//!   call 500s and 50 ms latency: nothing lost (every record accepted or in the failure file with
//!   its reason), nothing duplicated;
//! - `aztrail run` (the embedded default) killed with SIGKILL in the middle of loading: the next
//!   run loads what was staged and not finished, from its checkpoint, and takes over the dead
//!   run's ingest claim at once;
//! - crashes: `aztrail load` workers killed with SIGKILL at seeded random moments in 20 trials;
//!   after redelivery nothing is lost, and the duplicates (same UID twice) of each trial stay within
//!   one checkpoint interval plus the batches in flight.

use std::process::{Command, Stdio};
use std::time::Duration;

use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN};
use aztrail_testkit::{Moto, Staging};
use aztrail_transform::synth;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_and_duplicate_nothing() {
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-faults-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
    let _ = std::fs::remove_dir_all(&dir);
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig {
            latency: Duration::from_millis(50),
            tps: 100,
            throttle_rate: 0.30,
            fail_rate: 0.05,
            error_rate: 0.02,
            seed: 7,
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aztrail"))
        .args([
            "run",
            "--example-records",
            "500",
            "--channel-arn",
            DEFAULT_CHANNEL_ARN,
        ])
        .arg("--dir")
        .arg(&dir)
        .args(["--cloudtrail-endpoint", &lake.url()])
        .env("AWS_ACCESS_KEY_ID", "a")
        .env("AWS_SECRET_ACCESS_KEY", "b")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let load = &s["load"];
    let (records, accepted, failed) = (
        load["records"].as_u64().unwrap(),
        load["accepted"].as_u64().unwrap(),
        load["failed"].as_u64().unwrap(),
    );
    let failure_lines = std::fs::read_to_string(dir.join("failures.jsonl"))
        .unwrap_or_default()
        .lines()
        .count() as u64;
    let stats = lake.stats().await.unwrap();
    let lost = records - stats.distinct_uids - failure_lines;
    println!(
        "faults: events in {records}, accepted {accepted}, failed with reason {failed} ({:?}), lost {lost}, duplicated {}, retried {}, throttled {}, calls {}",
        load["failedByCode"], stats.duplicate_events, load["retried"], load["throttled"], load["calls"]
    );
    assert_eq!(records, 3000);
    assert_eq!(stats.distinct_uids, accepted);
    assert_eq!(failed, failure_lines, "every failure reported");
    assert_eq!(lost, 0);
    assert_eq!(stats.duplicate_events, 0);
    assert!(
        load["throttled"].as_u64().unwrap() > 0,
        "the faults were exercised"
    );
    lake.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

// Twenty kill trials in two tests of ten, each with its own moto and lake, so that the two halves
// run side by side (the trials wait mostly on SQS's visibility timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_loaders_lose_nothing_after_redelivery_trials_0_to_9() {
    kill_trials(0..10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_loaders_lose_nothing_after_redelivery_trials_10_to_19() {
    kill_trials(10..20).await;
}

/// SIGKILLs a loader mid-object in each trial (at a different number of events each time),
/// then lets a fresh one take the redelivered message: nothing lost, duplicates bounded.
async fn kill_trials(trials: std::ops::Range<u64>) {
    let moto = Moto::start();
    let staging = Staging::create(&moto).await;
    let (s3, urls) = (
        &staging.s3,
        [staging.work.clone(), staging.failures.clone()],
    );
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig {
            latency: Duration::from_millis(30),
            tps: 0,
            ..FaultConfig::none()
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let (checkpoint_every, concurrency) = (1u64, 2u64);
    let loader = |until_empty: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aztrail"));
        c.args([
            "load",
            "--queue-url",
            &urls[0],
            "--failure-queue-url",
            &urls[1],
            "--channel-arn",
            DEFAULT_CHANNEL_ARN,
            "--cloudtrail-endpoint",
            &lake.url(),
            "--s3-path-style",
            "--visibility-timeout",
            "2",
            "--checkpoint-every",
            &checkpoint_every.to_string(),
            "--concurrency",
            &concurrency.to_string(),
            "--max-calls-per-second",
            "100",
        ])
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "t")
        .env("AWS_SECRET_ACCESS_KEY", "t")
        .env("AWS_REGION", "us-east-1")
        .stderr(Stdio::null());
        if until_empty {
            c.arg("--until-empty");
        }
        c
    };
    let per_trial = 1000u64;
    let bound = (checkpoint_every + concurrency) * 100;
    let (mut total_dup, mut worst) = (0u64, 0u64);
    let mut killed_mid_object = 0;
    let count = trials.end - trials.start;
    for trial in trials {
        let before = lake.stats().await.unwrap();
        s3.put_object()
            .bucket("staging")
            .key(format!("staged/trial-{trial}/PT1H.json"))
            .body(
                synth::generate(per_trial as usize, 100 + trial)
                    .into_bytes()
                    .into(),
            )
            .send()
            .await
            .unwrap();
        let mut child = loader(false).stdout(Stdio::null()).spawn().unwrap();
        // The kill point is a number of this trial's events in the lake (100 to 700, a
        // different one each trial), not a time: mid-object on any machine.
        let kill_at = 100 + (trial * 37) % 600;
        let started = std::time::Instant::now();
        while lake.stats().await.unwrap().distinct_uids - before.distinct_uids < kill_at {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "trial {trial}: {kill_at} events never arrived"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mid = lake.stats().await.unwrap().distinct_uids - before.distinct_uids;
        if mid > 0 && mid < per_trial {
            killed_mid_object += 1;
        }
        // Redelivery after the visibility timeout, to a fresh worker: once SQS counts the
        // killed worker's message visible again (SQS may still hand it to a poll a little late:
        // a worker that finds the queue empty too early runs again).
        visible_again(&staging.sqs, &urls[0]).await;
        let mut outputs: Vec<String> = Vec::new();
        for _ in 0..5 {
            let out = loader(true).output().unwrap();
            assert!(out.status.success(), "trial {trial}");
            outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
            if lake.stats().await.unwrap().distinct_uids - before.distinct_uids >= per_trial {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        if outputs.len() > 1 {
            println!(
                "trial {trial}: the message came back to poll {} (an earlier poll came too early)",
                outputs.len()
            );
        }
        let after = lake.stats().await.unwrap();
        let new = after.distinct_uids - before.distinct_uids;
        let dup = after.duplicate_events - before.duplicate_events;
        assert_eq!(
            new, per_trial,
            "trial {trial} (killed at {kill_at} events): nothing lost"
        );
        assert!(dup <= bound, "trial {trial}: {dup} duplicates > {bound}");
        total_dup += dup;
        worst = worst.max(dup);
    }
    println!(
        "crashes: {count} trials of {per_trial} events, killed mid-object in {killed_mid_object}; lost 0; duplicated {total_dup} in all, at most {worst} in one trial (bound {bound})"
    );
    assert!(
        killed_mid_object * 4 >= count * 3,
        "kills land mid-object ({killed_mid_object} of {count})"
    );
    lake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_finished_by_the_next() {
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-killed-run-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
    let _ = std::fs::remove_dir_all(&dir);
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    let run = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aztrail"));
        c.args([
            "run",
            "--example-records",
            "500",
            "--channel-arn",
            DEFAULT_CHANNEL_ARN,
        ])
        .arg("--dir")
        .arg(&dir)
        .args(["--cloudtrail-endpoint", &lake.url()])
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", "a")
        .env("AWS_SECRET_ACCESS_KEY", "b")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    };
    // Slowed to 5 calls/s (3,000 events take 6 s) and killed once some events are in the lake:
    // objects are staged, some loaded, some half loaded.
    let mut first = run(&["--max-calls-per-second", "5"]).spawn().unwrap();
    let mut waited = 0;
    while lake.count().await.unwrap() < 300 {
        assert!(waited < 6000, "the first run never loaded 300 events");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let before = lake.count().await.unwrap();
    assert!(before < 3000, "killed mid-load ({before} events)");

    let out = run(&[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("did not finish loading"), "{err}");
    let stats = lake.stats().await.unwrap();
    println!(
        "killed run: {before} events before the kill; after the rerun {} events, {} distinct, {} duplicates",
        stats.events, stats.distinct_uids, stats.duplicate_events
    );
    assert_eq!(stats.distinct_uids, 3000, "every record loaded");
    // Re-sent at most one checkpoint interval (10 calls) plus the calls in flight (8) per object
    // that was loading.
    assert!(stats.duplicate_events <= 6 * 18 * 100);

    // A claim left by a killed ingest is taken over at once, not after the 15-minute lease: one
    // planted in the day shard of the blob that grows.
    let container = dir.join("source/insights-activity-logs");
    let newest = newest_blob(&container);
    let blob = newest
        .strip_prefix(&container)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let shard = aztrail_ingest::checkpoint::Keys::new("local", "insights-activity-logs")
        .shard(&aztrail_ingest::checkpoint::ShardId::of(&blob));
    let cp_path = dir.join("staging").join(&shard);
    let mut cp: Value = serde_json::from_slice(&std::fs::read(&cp_path).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    cp["claim"] = serde_json::json!({"runId": "killed", "at": now, "ranges": []});
    std::fs::write(&cp_path, serde_json::to_vec(&cp).unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    std::io::Write::write_all(&mut f, synth::generate(1, 77).as_bytes()).unwrap();
    let out = run(&[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lake.stats().await.unwrap().distinct_uids, 3001);
    lake.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The last PT1H.json under `dir`, in path order (the newest hour).
fn newest_blob(dir: &std::path::Path) -> std::path::PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with("PT1H.json") {
                found.push(p);
            }
        }
    }
    found.sort();
    found.pop().unwrap()
}

/// SIGTERM to `aztrail load --queue-url`: calls in flight finish, checkpoints are saved, held
/// messages are released at once, the summary is printed and the exit status is 0; the next
/// worker resumes from the checkpoints and sends no event twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_loader_hands_over_without_resending() {
    let moto = aztrail_testkit::Moto::start();
    let staging = Staging::create(&moto).await;
    let lake = Lake::start(LakeConfig {
        faults: FaultConfig {
            latency: Duration::from_millis(20),
            ..FaultConfig::none()
        },
        ..LakeConfig::in_memory()
    })
    .await
    .unwrap();
    for i in 0..2 {
        staging
            .s3
            .put_object()
            .bucket(&staging.bucket)
            .key(format!("staged/stop-{i}/PT1H.json"))
            .body(synth::generate(1500, 300 + i).into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let loader = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aztrail"));
        c.args([
            "load",
            "--queue-url",
            &staging.work,
            "--failure-queue-url",
            &staging.failures,
        ])
        .args([
            "--channel-arn",
            DEFAULT_CHANNEL_ARN,
            "--cloudtrail-endpoint",
            &lake.url(),
        ])
        .args(["--s3-path-style", "--checkpoint-every", "1"])
        .args(extra)
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "t")
        .env("AWS_SECRET_ACCESS_KEY", "t")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    };
    // Ten calls a second: 3,000 events take three seconds; stopped once 300 are in.
    let child = loader(&["--max-calls-per-second", "10"]).spawn().unwrap();
    let mut waited = 0;
    while lake.count().await.unwrap() < 300 {
        assert!(waited < 3000, "the loader never loaded 300 events");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["released"].as_u64().unwrap() >= 1, "{summary}");
    let loaded = lake.count().await.unwrap();
    assert!(loaded < 3000, "stopped mid-load ({loaded} events)");

    let out = loader(&["--until-empty"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = lake.stats().await.unwrap();
    println!(
        "stopped loader: {loaded} events before the stop; after the rerun {} events, {} duplicates",
        stats.events, stats.duplicate_events
    );
    assert_eq!(stats.distinct_uids, 3000);
    assert_eq!(stats.duplicate_events, 0, "no event sent twice");
    lake.stop().await;
}

/// Returns once the queue counts a message visible (the killed worker's, its visibility timeout
/// over): a condition polled, not a sleep standing in for it.
async fn visible_again(sqs: &aws_sdk_sqs::Client, queue_url: &str) {
    use aws_sdk_sqs::types::QueueAttributeName;
    loop {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("GetQueueAttributes");
        let visible = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if visible > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
