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

/// Why the checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Another run wrote the checkpoint since it was read.
    #[error("checkpoint {key} changed since it was read (another run)")]
    Conflict {
        /// The key.
        key: String,
    },
    /// S3 failed.
    #[error("checkpoint {key}: {message}")]
    Store {
        /// The key.
        key: String,
        /// What S3 said.
        message: String,
    },
    /// Not one of ours.
    #[error("checkpoint {key} is unreadable: {message}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
}

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
        let store = |message: String| CheckpointError::Store {
            key: key.to_string(),
            message,
        };
        let got = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok((ContainerCheckpoint::default(), None))
            }
            Err(e) => return Err(store(aws_sdk_s3::error::DisplayErrorContext(e).to_string())),
        };
        let etag = out.e_tag.clone();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| store(e.to_string()))?
            .into_bytes();
        let cp = serde_json::from_slice(&body).map_err(|e| CheckpointError::Corrupt {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        Ok((cp, etag))
    }

    /// Writes `cp` if the stored version is still `etag` (or, with `None`, if there is none yet).
    /// Returns the new ETag.
    pub async fn put(
        &self,
        key: &str,
        cp: &ContainerCheckpoint,
        etag: Option<&str>,
    ) -> Result<String, CheckpointError> {
        let body = serde_json::to_vec(cp).map_err(|e| CheckpointError::Corrupt {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into());
        put = match etag {
            Some(e) => put.if_match(e),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(out) => Ok(out.e_tag.unwrap_or_default()),
            Err(e) if is_precondition_failed(&e) => Err(CheckpointError::Conflict {
                key: key.to_string(),
            }),
            Err(e) => Err(CheckpointError::Store {
                key: key.to_string(),
                message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            }),
        }
    }
}

/// Whether S3 answered 412 Precondition Failed (or 409 ConditionalRequestConflict).
pub fn is_precondition_failed<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> bool
where
    R: HttpStatus,
{
    e.raw_response()
        .is_some_and(|r| matches!(r.status_code(), 412 | 409))
}

/// The status of a raw HTTP response (so [`is_precondition_failed`] stays generic).
pub trait HttpStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
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
