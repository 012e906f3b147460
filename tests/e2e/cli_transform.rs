//! `aztrail transform` and `aztrail gen` as a user runs them: files and stdin in, events on
//! stdout, rejected records on stderr, and the documented exit statuses.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn aztrail() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aztrail"))
}

/// A path named `name` in a fresh temporary directory, removed when the guard drops.
fn tmp(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("aztrail-cli-")
        .tempdir()
        .expect("a temporary directory");
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn generated_file_converts_completely() {
    let (_dir, file) = tmp("gen.jsonl");
    let st = aztrail()
        .args(["gen", "--records", "500", "--seed", "9", "-o"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(st.success());
    let out = aztrail()
        .args([
            "transform",
            "--channel-arn",
            "arn:aws:cloudtrail:us-east-1:111122223333:channel/abc",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    let lines: Vec<&[u8]> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 500);
    for l in lines {
        if let Err(p) = common::schema::check_entry(l, "111122223333") {
            panic!("{p:?}");
        }
    }
}

#[test]
fn rejected_records_are_reported_with_location_and_the_rest_converts() {
    let (_dir, file) = tmp("mixed.jsonl");
    let good = r#"{"time":"2024-01-01T00:00:00Z","operationName":"Microsoft.Storage/storageAccounts/write","category":"Administrative"}"#;
    let body = format!("{good}\n{{\"truncated\":\n[1,2]\n{good}\r\n");
    std::fs::write(&file, &body).unwrap();
    let out = aztrail()
        .args(["transform", "--account-id", "123456789012"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        out.stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        2
    );
    let reports: Vec<Value> = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["offset"], good.len() + 1);
    assert_eq!(reports[0]["code"], "InvalidJson");
    assert_eq!(reports[0]["length"], "{\"truncated\":".len());
    assert_eq!(reports[1]["code"], "NotAnObject");
    assert_eq!(reports[1]["file"], file.display().to_string());
    let at = reports[1]["offset"].as_u64().unwrap() as usize;
    assert_eq!(&body[at..at + 5], "[1,2]");
}

#[test]
fn reads_standard_input() {
    let mut child = aztrail()
        .args(["transform"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let records = aztrail_transform::synth::generate(20, 3);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(records.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let first: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let ed: Value = serde_json::from_str(first["eventData"].as_str().unwrap()).unwrap();
    assert_eq!(ed["recipientAccountId"], "000000000000");
    assert_eq!(ed["additionalEventData"]["source"]["key"], "stdin");
}

#[test]
fn fatal_errors_exit_2_and_help_documents_the_statuses() {
    let out = aztrail()
        .args(["transform", "/nonexistent/PT1H.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/PT1H.json"));
    let out = aztrail()
        .args(["transform", "--channel-arn", "arn:aws:s3:::bucket"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = aztrail().args(["transform", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("Exit status"), "{help}");
    assert!(help.contains("--channel-arn"));
}

#[test]
fn corpus_legacy_document_through_the_binary() {
    let file = common::corpus_dir()
        .join("msdocs/resourcelogs/resource-logs-blob-format.legacy-wrapped.records.json");
    let out = aztrail().arg("transform").arg(&file).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        2
    );
}

/// A reader that stops early is a normal end, even when standard error goes to the same closed
/// pipe (it used to panic, exit 101).
#[test]
fn a_closed_pipe_is_a_normal_end() {
    for cmd in [
        r#""$0" gen --records 200000 2>&1 | head -1 >/dev/null"#,
        r#""$0" gen --records 20000 | "$0" transform 2>&1 | head -c 10 >/dev/null"#,
    ] {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail; {cmd}"))
            .arg(env!("CARGO_BIN_EXE_aztrail"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Data after a leading empty array, or after a `{"records":[]}` document, is converted.
#[test]
fn records_after_an_empty_document_are_converted() {
    for prefix in ["[]\n", "{\"records\":[]}\n"] {
        let mut child = aztrail()
            .args(["transform", "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(prefix.as_bytes()).unwrap();
            stdin
                .write_all(aztrail_transform::synth::generate(25, 3).as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{prefix:?}");
        assert_eq!(
            out.stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count(),
            25
        );
    }
}
