//! `aztrail run --destination cloudwatch` against moto's CloudWatch Logs: the embedded example
//! (local source, local staging and queue) loads into a log group, one log event per record, the
//! account asked of STS; a second run finds nothing new and sends nothing; a missing log group is
//! a clear error before anything is sent, and the default destination is still the local lake.
//!
//! moto is started here (`aztrail-testkit`) and stopped by PID.

use std::process::{Command, Output};

use aztrail_testkit::{Moto, Staging};
use serde_json::Value;

const GROUP: &str = "/aztrail/run";

fn run(moto: &Moto, dir: &std::path::Path, group: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aztrail"))
        .args([
            "run",
            "--example-records",
            "200",
            "--destination",
            "cloudwatch",
        ])
        .args(["--log-group", group, "--logs-endpoint", &moto.url])
        .arg("--dir")
        .arg(dir)
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "t")
        .env("AWS_SECRET_ACCESS_KEY", "t")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("aztrail runs")
}

async fn events_in(logs: &aws_sdk_cloudwatchlogs::Client) -> Vec<Value> {
    let streams = logs
        .describe_log_streams()
        .log_group_name(GROUP)
        .send()
        .await
        .expect("streams");
    let mut out = Vec::new();
    for s in streams.log_streams() {
        let name = s.log_stream_name().unwrap_or_default();
        assert!(name.starts_with("aztrail/"), "{name}");
        let mut token: Option<String> = None;
        loop {
            let page = logs
                .get_log_events()
                .log_group_name(GROUP)
                .log_stream_name(name)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .expect("events");
            for e in page.events() {
                out.push(serde_json::from_str(e.message().unwrap_or_default()).expect("JSON"));
            }
            let next = page.next_forward_token().map(str::to_string);
            if page.events().is_empty() || next == token {
                break;
            }
            token = next;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_run_loads_into_cloudwatch_logs_once() {
    let moto = Moto::start();
    let config = Staging::clients(&moto.url, "", "", "").await.config;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-cw-run-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
    let _ = std::fs::remove_dir_all(&dir);

    // No log group yet: a clear error, exit 2, nothing loaded.
    let missing = run(&moto, &dir, "/aztrail/missing");
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("/aztrail/missing") && stderr.contains("does not exist"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    logs.create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .expect("log group");
    let first = run(&moto, &dir, GROUP);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let summary: Value = serde_json::from_slice(&first.stdout).expect("summary");
    // Two containers, three hourly blobs each, 200 records per blob.
    assert_eq!(summary["load"]["accepted"], 1200, "{summary}");
    assert_eq!(summary["balanced"], true);
    let events = events_in(&logs).await;
    assert_eq!(events.len(), 1200);
    let uids: std::collections::HashSet<&str> =
        events.iter().filter_map(|e| e["UID"].as_str()).collect();
    assert_eq!(uids.len(), 1200, "one event per record");
    assert!(events
        .iter()
        .all(|e| e["recipientAccountId"] == "123456789012"));

    // Again: nothing new, nothing sent.
    let second = run(&moto, &dir, GROUP);
    assert!(second.status.success());
    let summary: Value = serde_json::from_slice(&second.stdout).expect("summary");
    assert_eq!(summary["load"]["accepted"], 0, "{summary}");
    assert_eq!(events_in(&logs).await.len(), 1200);
    let _ = std::fs::remove_dir_all(&dir);
}
