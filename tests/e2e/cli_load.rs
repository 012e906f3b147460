//! `aztrail load` on local files and directories as a user runs it, into the local lake: every
//! record accepted or in the failure file, the summary balanced, the exit status documented.

use crate::common;

use std::process::Command;

use aztrail_lake::{Lake, LakeConfig, DEFAULT_CHANNEL_ARN};
use aztrail_transform::synth;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_loads_with_every_record_accounted_for() {
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-cli-load-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
    let _ = std::fs::remove_dir_all(&dir);
    let container = dir.join("container/resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=27");
    std::fs::create_dir_all(container.join("h=10/m=00")).unwrap();
    std::fs::create_dir_all(container.join("h=11/m=00")).unwrap();
    std::fs::write(
        container.join("h=10/m=00/PT1H.json"),
        synth::generate(120, 1),
    )
    .unwrap();
    let mut second = synth::generate(80, 2).into_bytes();
    second.extend_from_slice(b"{\"broken\": \n");
    std::fs::write(container.join("h=11/m=00/PT1H.json"), &second).unwrap();
    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();
    let failures = dir.join("failures.jsonl");

    let out = common::load_into_lake(&lake.url(), &failures, &dir.join("container"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "one record failed: {stdout}");
    // JSON Lines: one line per file (as each ends: files load side by side), then the total.
    let mut lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = lines.pop().unwrap();
    let per_file = lines;
    assert_eq!(per_file.len(), 2);
    assert!(per_file
        .iter()
        .any(|f| f["object"].as_str().unwrap().contains("h=10")));
    assert_eq!(total["balanced"], true);
    assert_eq!(total["total"]["records"], 201);
    assert_eq!(total["total"]["accepted"], 200);
    assert_eq!(total["total"]["failed"], 1);
    assert_eq!(lake.stats().await.unwrap().events, 200);
    let lines: Vec<Value> = std::fs::read_to_string(&failures)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["errorCode"], "InvalidJson");
    assert!(lines[0]["source"]["key"]
        .as_str()
        .unwrap()
        .ends_with("h=11/m=00/PT1H.json"));
    assert_eq!(lines[0]["record"], "{\"broken\":");

    // A path that does not exist is a fatal error with a message, before anything is sent.
    let out = Command::new(env!("CARGO_BIN_EXE_aztrail"))
        .args(["load", "--channel-arn", DEFAULT_CHANNEL_ARN])
        .arg(dir.join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    lake.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A missing path is named with its cause, once.
#[test]
fn a_missing_path_says_why_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aztrail"))
        .args([
            "load",
            "/nonexistent/aztrail",
            "--channel-arn",
            "arn:aws:cloudtrail:us-east-1:000000000000:channel/aztrail-local",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/aztrail"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// No AWS credentials in the environment: against the local lake the load goes ahead with
/// placeholders; against AWS it stops before loading anything, saying how to set them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_a_local_load_works_and_a_real_one_says_why() {
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-cli-nocreds-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("PT1H.json");
    std::fs::write(&file, synth::generate(30, 8)).unwrap();
    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();
    let bare = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aztrail"));
        c.arg("load")
            .arg(&file)
            .args(["--channel-arn", DEFAULT_CHANNEL_ARN])
            .args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        // No shared credential files, and no instance metadata service to ask.
        c.env("HOME", &dir).env("AWS_EC2_METADATA_DISABLED", "true");
        c.output().unwrap()
    };
    let out = bare(&["--cloudtrail-endpoint", &lake.url()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lake.stats().await.unwrap().distinct_uids, 30);
    let out = bare(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no AWS credentials") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    assert!(!err.contains("unhandled error"), "{err}");
    lake.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Hostile round 2, item 5 (and 9): `aztrail load FILE` stopped by SIGTERM, at the slowest rate,
/// stops without waiting for a rate token, prints its summary, exits 3, and the same command
/// then resumes without sending a record twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_local_load_reports_and_resumes_without_resending() {
    let tmp = tempfile::Builder::new()
        .prefix("aztrail-stop-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp.path().to_path_buf();
    let file = dir.join("PT1H.json");
    std::fs::write(&file, aztrail_transform::synth::generate(1000, 21)).unwrap();
    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();
    let load = |rate: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aztrail"));
        c.arg("load")
            .arg(&file)
            .args(["--channel-arn", DEFAULT_CHANNEL_ARN])
            .args(["--cloudtrail-endpoint", &lake.url()])
            .args(["--max-calls-per-second", rate, "--checkpoint-every", "1"])
            .arg("--failure-file")
            .arg(dir.join("failures.jsonl"))
            .env("AZTRAIL_STATE_DIR", dir.join("state"))
            .env("AWS_ACCESS_KEY_ID", "a")
            .env("AWS_SECRET_ACCESS_KEY", "b")
            .env("AWS_REGION", "us-east-1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    // One call every ten seconds: the first goes at once, the second waits for its token.
    let child = load("0.1").spawn().unwrap();
    lake.until_answered(100).await;
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = lines.last().unwrap();
    assert_eq!(total["stopped"], true, "{stdout}");
    let sent_first = lake.stats().await.unwrap().events;
    assert!(sent_first < 1000, "stopped early: {sent_first}");
    assert_eq!(total["total"]["accepted"], sent_first);

    // The same command again resumes: every record once, none twice.
    let out = load("100").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = lake.stats().await.unwrap();
    assert_eq!(stats.distinct_uids, 1000);
    assert_eq!(stats.duplicate_events, 0, "nothing was sent twice");
    // A third run of the unchanged file sends nothing; --from-start sends it all again.
    let out = load("100").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lake.stats().await.unwrap().events, 1000);
    let out = load("100").arg("--from-start").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lake.stats().await.unwrap().events, 2000);
    lake.stop().await;
}

/// Hostile round 2, items 7 to 9: durations, counts and rates that cannot work are refused with a
/// clear error (exit 2), before anything is read, listed or allocated.
#[test]
fn impossible_flags_are_refused_with_a_clear_error() {
    let arn = DEFAULT_CHANNEL_ARN;
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "--lookback", "300000000000000d"], "1s to 400d"),
        (
            vec!["run", "--lookback", "9223372036854775808s"],
            "1s to 400d",
        ),
        (
            vec!["run", "--lookback", "18446744073709551615s"],
            "1s to 400d",
        ),
        (vec!["run", "--lookback", "213503982334601d"], "1s to 400d"),
        (vec!["run", "--lookback", "48"], "unit"),
        (
            vec![
                "ingest",
                "--container",
                "c",
                "--staging-bucket",
                "b",
                "--lookback",
                "401d",
            ],
            "1s to 400d",
        ),
        (
            vec!["run", "--example-records", "18446744073709551615"],
            "example-records",
        ),
        (
            vec!["run", "--example-records", "1000000000000"],
            "example-records",
        ),
        (
            vec!["run", "--example-records", "3000000000"],
            "example-records",
        ),
        (
            vec![
                "load",
                "x",
                "--channel-arn",
                arn,
                "--max-calls-per-second",
                "0.0001",
            ],
            "max-calls-per-second",
        ),
        (
            vec![
                "load",
                "x",
                "--channel-arn",
                arn,
                "--max-calls-per-second",
                "1e-300",
            ],
            "max-calls-per-second",
        ),
        (
            vec!["load", "x", "--channel-arn", arn, "--max-record-bytes", "0"],
            "max-record-bytes",
        ),
        (
            vec![
                "load",
                "x",
                "--channel-arn",
                arn,
                "--concurrency",
                "1000000000000",
            ],
            "concurrency",
        ),
    ];
    for (args, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_aztrail"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    }
}

/// #22 item 10: a destination that cannot be reached at all stops the load at once, with one
/// clear error (exit 2), before any record is read: no record is tried or reported.
#[test]
fn an_unreachable_destination_stops_the_load_before_it_starts() {
    let tmp = tempfile::Builder::new()
        .prefix("aztrail-unreachable-")
        .tempdir()
        .expect("a temporary directory");
    let file = tmp.path().join("PT1H.json");
    std::fs::write(&file, synth::generate(50, 3)).unwrap();
    let failures = tmp.path().join("failures.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_aztrail"))
        .arg("load")
        .arg(&file)
        .args(["--channel-arn", DEFAULT_CHANNEL_ARN])
        .args(["--cloudtrail-endpoint", "http://127.0.0.1:9"])
        .arg("--failure-file")
        .arg(&failures)
        .env("AZTRAIL_STATE_DIR", tmp.path().join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot use CloudTrail Lake channel"), "{err}");
    assert!(err.contains("nothing was loaded"), "{err}");
    assert!(out.stdout.is_empty(), "no summary of records never read");
    assert!(!failures.exists() || std::fs::read(&failures).unwrap().is_empty());
}
