//! `aztrail load` on local files and directories as a user runs it, into the local lake: every
//! record accepted or in the failure file, the summary balanced, the exit status documented.

mod common;

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
    // One line per file, then the total.
    let total_at = stdout.find("{\n").unwrap();
    let per_file: Vec<Value> = stdout[..total_at]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(per_file.len(), 2);
    assert!(per_file[0]["object"].as_str().unwrap().contains("h=10"));
    let total: Value = serde_json::from_str(&stdout[total_at..]).unwrap();
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
