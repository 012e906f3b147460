//! Reliability under faults and crashes, with figures printed for the record:
//! - faults: `aztrail run` against a lake answering 30% Throttling, 5% InternalFailure, 2% whole
//!   call 500s and 50 ms latency: nothing lost (every record accepted or in the failure file with
//!   its reason), nothing duplicated;
//! - crashes: `aztrail load` workers killed with SIGKILL at seeded random moments in 20 trials;
//!   after redelivery nothing is lost, and the duplicates (same UID twice) of each trial stay within
//!   one checkpoint interval plus the batches in flight.

use std::process::{Command, Stdio};
use std::time::Duration;

use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN};
use aztrail_testkit::{Moto, Staging};
use aztrail_transform::synth::{self, Rng};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_and_duplicate_nothing() {
    let dir = std::env::temp_dir().join(format!("aztrail-faults-{}", std::process::id()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_loaders_lose_nothing_after_redelivery() {
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
    let mut rng = Rng::new(2026);
    let per_trial = 1000u64;
    let bound = (checkpoint_every + concurrency) * 100;
    let (mut total_dup, mut worst) = (0u64, 0u64);
    let mut killed_mid_object = 0;
    for trial in 0..20u64 {
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
        let delay = 150 + rng.below(1200);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mid = lake.stats().await.unwrap().distinct_uids - before.distinct_uids;
        if mid > 0 && mid < per_trial {
            killed_mid_object += 1;
        }
        // Redelivery after the visibility timeout, to a fresh worker (SQS may hand the message
        // to a poll a little late: a worker that finds the queue empty too early runs again).
        tokio::time::sleep(Duration::from_millis(2500)).await;
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
            "trial {trial} (killed after {delay} ms): nothing lost"
        );
        assert!(dup <= bound, "trial {trial}: {dup} duplicates > {bound}");
        total_dup += dup;
        worst = worst.max(dup);
    }
    println!(
        "crashes: 20 trials of {per_trial} events, killed mid-object in {killed_mid_object}; lost 0; duplicated {total_dup} in all, at most {worst} in one trial (bound {bound})"
    );
    assert!(killed_mid_object > 0, "some kills landed mid-object");
    lake.stop().await;
}
