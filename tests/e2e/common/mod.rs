//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

pub mod lossless;
pub mod schema;

use std::path::{Path, PathBuf};

/// `../shared/corpus`, read in place (never copied into the repository).
pub fn corpus_dir() -> PathBuf {
    aztrail_testkit::corpus_dir()
}

/// Every record file of the corpus (`*.json`, `*.jsonl`), sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    aztrail_testkit::corpus_files().unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (is ../shared/corpus there?)",
            corpus_dir().display()
        )
    })
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
