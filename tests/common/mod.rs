//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

pub mod lossless;
pub mod schema;

use std::path::{Path, PathBuf};

/// `../shared/corpus`, read in place (never copied into the repository).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// Every record file of the corpus (`*.json`, `*.jsonl`), sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![corpus_dir()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "reading {}: {e} (is ../shared/corpus there?)",
                dir.display()
            )
        });
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// `aztrail load PATH --failure-file FAILURES` into the lake at `lake_url` (its default channel),
/// with placeholder AWS settings, run to the end.
pub fn load_into_lake(lake_url: &str, failures: &Path, path: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aztrail"))
        .args(["load", "--channel-arn", aztrail_lake::DEFAULT_CHANNEL_ARN])
        .args(["--cloudtrail-endpoint", lake_url])
        .arg("--failure-file")
        .arg(failures)
        .arg(path)
        .env("AWS_ACCESS_KEY_ID", "a")
        .env("AWS_SECRET_ACCESS_KEY", "b")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("running aztrail load")
}
