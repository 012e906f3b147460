//! How far each blob of a container has been staged, kept in the staging bucket as one JSON
//! object per container and written only with conditional PUTs.
//!
//! A run reads the checkpoint and its ETag, then *claims* the ranges it is about to copy by
//! writing them into the checkpoint with `If-Match` (a second run that read the same version
//! loses that race and stops without copying), copies, and commits with `If-Match` on its own
//! claim. A run that dies after copying leaves its claim behind; once the claim is older than the
//! lease, the next run re-copies exactly the claimed ranges (their keys are the same, and the
//! copies are `If-None-Match`, so nothing is staged or notified twice) and commits them.

use std::collections::BTreeMap;

use aztrail_state::{S3Json, Write};
use serde::{Deserialize, Serialize};

/// Where ingest checkpoints live in the staging bucket.
pub const INGEST_PREFIX: &str = "_aztrail/ingest/";

/// One blob's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobState {
    /// Bytes staged: everything below this offset is in staged objects.
    pub committed: u64,
    /// The blob's ETag when last seen.
    pub etag: String,
    /// The blob's length when last seen (for `--settle`).
    pub seen_length: u64,
    /// When the blob was last seen growing (seconds since the epoch).
    pub changed_at: i64,
    /// The blob's creation time when last seen (a new one means it was replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// How many times the blob was replaced: its staged keys name it after the first, so a
    /// replacement's ranges never collide with the keys of what it replaced.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A range a run is about to copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRange {
    /// The blob.
    pub blob: String,
    /// Its ETag when claimed.
    pub etag: String,
    /// Its last-modified time when claimed.
    pub last_modified: Option<String>,
    /// The first byte to copy.
    pub start: u64,
    /// The blob's length when claimed: the copy ends at the last line end below it.
    pub limit: u64,
    /// The blob's generation (see [`BlobState::generation`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
}

/// A run's claim on the ranges it copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// The run that claimed.
    pub run_id: String,
    /// When (seconds since the epoch).
    pub at: i64,
    /// What it copies.
    pub ranges: Vec<PendingRange>,
}

/// One container's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCheckpoint {
    /// Progress per blob name.
    pub blobs: BTreeMap<String, BlobState>,
    /// The roots found by the last directory walk (see `layout`).
    pub roots: Vec<String>,
    /// When the roots were walked (seconds since the epoch).
    pub roots_at: i64,
    /// Ranges being copied by a run, until it commits.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub claim: Option<Claim>,
}

impl ContainerCheckpoint {
    /// Drops the entries of blobs whose hour ended before `oldest` (seconds since the epoch), so
    /// the checkpoint stays the size of the window. Blobs outside the layout are kept.
    pub fn prune(&mut self, oldest: i64) {
        self.blobs.retain(|name, _| {
            aztrail_transform::time::blob_path_hour(name).is_none_or(|h| h.0 + 3600 >= oldest)
        });
    }
}

/// The checkpoint key of a container.
pub fn checkpoint_key(account: &str, container: &str) -> String {
    format!("{INGEST_PREFIX}{account}/{container}.json")
}

/// Why the checkpoint could not be read or written (the one state-object error of aztrail;
/// `Conflict` when another run wrote it since it was read).
pub use aztrail_state::StateError as CheckpointError;

/// Checkpoints in the staging bucket.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    /// The client.
    pub s3: aws_sdk_s3::Client,
    /// The staging bucket.
    pub bucket: String,
}

impl CheckpointStore {
    /// The checkpoint at `key` and its ETag (none yet: default and `None`).
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<(ContainerCheckpoint, Option<String>), CheckpointError> {
        let got = S3Json::new(self.s3.clone()).get(&self.bucket, key).await?;
        Ok(got.unwrap_or_default())
    }

    /// Writes `cp` if the stored version is still `etag` (or, with `None`, if there is none yet).
    /// Returns the new ETag.
    pub async fn put(
        &self,
        key: &str,
        cp: &ContainerCheckpoint,
        etag: Option<&str>,
    ) -> Result<String, CheckpointError> {
        let write = etag.map_or(Write::IfAbsent, Write::IfMatch);
        S3Json::new(self.s3.clone())
            .put(&self.bucket, key, cp, write)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_window() {
        let mut cp = ContainerCheckpoint::default();
        for name in [
            "resourceId=/S/y=2026/m=11/d=20/h=10/m=00/PT1H.json",
            "resourceId=/S/y=2026/m=11/d=27/h=10/m=00/PT1H.json",
            "elsewhere.json",
        ] {
            cp.blobs.insert(name.into(), BlobState::default());
        }
        // 2026-11-26T00:00:00Z
        cp.prune(1_795_651_200);
        let left: Vec<_> = cp.blobs.keys().map(String::as_str).collect();
        assert_eq!(
            left,
            [
                "elsewhere.json",
                "resourceId=/S/y=2026/m=11/d=27/h=10/m=00/PT1H.json"
            ]
        );
        let json = serde_json::to_string(&cp).unwrap();
        assert!(!json.contains("claim"));
        assert_eq!(
            serde_json::from_str::<ContainerCheckpoint>(&json).unwrap(),
            cp
        );
    }
}
