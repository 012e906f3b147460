//! How far each blob has been staged, kept in the staging bucket as small JSON documents written
//! only with conditional PUTs, sharded so that a pass reads and writes what changed.
//!
//! Layout under `_aztrail/ingest/{account}/{container}/`:
//! - `days/{YYYY-MM-DD}/{root hash}.json` ([`ShardCheckpoint`]): the blobs of one root (one
//!   subscription, one tenant) on one day, at most 24 for hourly blobs, and the claim of the run
//!   copying them. A pass where one blob grew reads and writes this one document (about 1 KiB).
//! - `roots.json` ([`Roots`]): the roots the last directory walk found, and when.
//! - `marks/{scope}.json` ([`Mark`]): the watermark of the last pass over a set of roots (the
//!   whole container, or one shard of the fan-out). A blob last modified before it, in a day
//!   shard the pass did not ask to revisit, has nothing new: its document is not read.
//!
//! A run reads a day shard and its ETag, *claims* the ranges it is about to copy by writing them
//! into the shard with `If-Match` (a second run that read the same version loses that race and
//! leaves the shard alone), copies, and commits with `If-Match` on its own claim. A run that dies
//! after copying leaves its claim behind; once the claim is older than the lease, the next run
//! re-copies exactly the claimed ranges (same keys, `If-None-Match`, so nothing is staged or
//! notified twice) and commits them. A copy that failed is kept in the shard's `retry` list and
//! copied as claimed (same range, same key) before anything else of its blob.
//!
//! Earlier versions kept a container's whole state in one document (`{container}.json`,
//! [`LegacyCheckpoint`]); [`crate::migrate`] carries it over once.

use std::collections::BTreeMap;

use std::sync::atomic::Ordering;

use aztrail_state::{S3Json, Write};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::gate::Gate;
use crate::source::{Staging, StateDoc};

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

/// The one document of a container's whole state, as versions before sharding kept it (read
/// once by [`crate::migrate`], then left holding a claim no run of any version takes over).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCheckpoint {
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

/// The blobs of one root on one day, and the claim of the run copying them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardCheckpoint {
    /// The root (for a reader: the key names only its hash).
    pub root: String,
    /// The day, `YYYY-MM-DD` (or `undated` for blobs outside the layout).
    pub day: String,
    /// Progress per blob name.
    pub blobs: BTreeMap<String, BlobState>,
    /// Ranges being copied by a run, until it commits.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub claim: Option<Claim>,
    /// Ranges whose copy failed (it may or may not have been created): copied again exactly as
    /// claimed, so that a retry has the same key.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub retry: Vec<PendingRange>,
}

impl ShardCheckpoint {
    /// The document of `id` before anything was copied.
    pub fn empty(id: &ShardId) -> Self {
        Self {
            root: id.root.clone(),
            day: id.day.clone(),
            ..Self::default()
        }
    }
}

/// The roots the last directory walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Roots {
    /// Directories whose children are date directories (see `layout`).
    pub roots: Vec<String>,
    /// When they were walked (seconds since the epoch).
    pub at: i64,
}

/// What the last pass over a set of roots leaves to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    /// When that pass started (seconds since the epoch).
    pub pass_at: i64,
    /// Blobs last modified before this (the pass's start less [`MARK_SKEW_SECONDS`]) were seen by
    /// that pass at their present length, and their shards finished.
    pub before: i64,
    /// Day shards ([`ShardId::id`]) that pass did not finish (failed, contended, stopped) or that
    /// wait for time rather than new bytes (`--settle`): read by the next pass whatever their
    /// blobs' times.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub revisit: std::collections::BTreeSet<String>,
}

/// How far Azure's clock may be behind ours: a blob modified this long before a pass started may
/// not yet have been seen by it.
pub const MARK_SKEW_SECONDS: i64 = 300;

/// The name of a claim that is never taken over: left in a legacy checkpoint once it has been
/// carried over, so that no run of an older version copies from it again.
pub const MIGRATED: &str = "migrated-to-day-shards";

/// A day shard: one root on one day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId {
    /// `YYYY-MM-DD`, or `undated`.
    pub day: String,
    /// The root (for blobs outside the layout: their directory).
    pub root: String,
}

impl ShardId {
    /// The shard of `blob`.
    pub fn of(blob: &str) -> Self {
        let root = crate::layout::root_of(blob).map_or_else(
            || blob.rfind('/').map_or("", |i| &blob[..=i]).to_string(),
            str::to_string,
        );
        Self {
            day: day_of(blob).unwrap_or_else(|| "undated".into()),
            root,
        }
    }

    /// Its stable name: `{day}/{hash of the root}`.
    pub fn id(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.root.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{}/{hex}", self.day)
    }
}

/// The day of a blob in Azure's layout, `YYYY-MM-DD`.
pub fn day_of(blob: &str) -> Option<String> {
    let hour = aztrail_transform::time::blob_path_hour(blob)?;
    Some(day_name(hour.0))
}

/// The day of `seconds` since the epoch, `YYYY-MM-DD`.
pub fn day_name(seconds: i64) -> String {
    let (y, m, d) = aztrail_transform::time::civil_from_days(seconds.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The keys of one container's state.
#[derive(Debug, Clone)]
pub struct Keys {
    base: String,
}

impl Keys {
    /// The state of `container` in storage account `account`.
    pub fn new(account: &str, container: &str) -> Self {
        Self {
            base: format!("{INGEST_PREFIX}{account}/{container}"),
        }
    }

    /// The one document of versions before sharding.
    pub fn legacy(&self) -> String {
        format!("{}.json", self.base)
    }

    /// The roots of the last walk.
    pub fn roots(&self) -> String {
        format!("{}/roots.json", self.base)
    }

    /// The mark of a set of roots (`all`, or a fan-out shard's name).
    pub fn mark(&self, scope: &str) -> String {
        format!("{}/marks/{scope}.json", self.base)
    }

    /// Where the day shards are: `{days}{YYYY-MM-DD}/`.
    pub fn days(&self) -> String {
        format!("{}/days/", self.base)
    }

    /// A day shard.
    pub fn shard(&self, id: &ShardId) -> String {
        format!("{}{}.json", self.days(), id.id())
    }
}

/// The checkpoint key of a container in versions before sharding.
pub fn checkpoint_key(account: &str, container: &str) -> String {
    Keys::new(account, container).legacy()
}

/// Why the checkpoint could not be read or written (the one state-object error of aztrail;
/// `Conflict` when another run wrote it since it was read).
pub use aztrail_state::StateError as CheckpointError;

/// Reads and writes of state documents in a pass: how many, and how many bytes.
#[derive(Debug, Default)]
pub struct StateIo {
    /// Documents read (including ones that did not exist).
    pub reads: std::sync::atomic::AtomicU64,
    /// Bytes read.
    pub read_bytes: std::sync::atomic::AtomicU64,
    /// Documents written.
    pub writes: std::sync::atomic::AtomicU64,
    /// Bytes written.
    pub written_bytes: std::sync::atomic::AtomicU64,
}

/// Documents a process keeps between passes (`roots.json`, which changes every few hours but
/// grows with the tenant), read again only when their ETag changed.
#[derive(Debug, Default)]
pub struct Remembered(std::sync::Mutex<std::collections::HashMap<String, (Vec<u8>, String)>>);

impl Remembered {
    fn get(&self, key: &str) -> Option<(Vec<u8>, String)> {
        self.0.lock().ok()?.get(key).cloned()
    }

    fn set(&self, key: &str, doc: Option<(Vec<u8>, String)>) {
        if let Ok(mut m) = self.0.lock() {
            match doc {
                Some(doc) => m.insert(key.to_string(), doc),
                None => m.remove(key),
            };
        }
    }
}

/// Typed state documents over a [`Staging`], each request through the pass's gate and counted.
pub struct States<'a, T> {
    staging: &'a T,
    io: &'a StateIo,
    gate: &'a Gate,
    remembered: Option<&'a Remembered>,
}

impl<'a, T: Staging> States<'a, T> {
    /// Documents in `staging`, counted in `io`, requests through `gate`.
    pub fn new(staging: &'a T, io: &'a StateIo, gate: &'a Gate) -> Self {
        Self {
            staging,
            io,
            gate,
            remembered: None,
        }
    }

    /// These documents, with [`States::get_remembered`] keeping what it read in `remembered`.
    pub fn remembering(self, remembered: &'a Remembered) -> Self {
        Self {
            remembered: Some(remembered),
            ..self
        }
    }

    /// The document at `key`, as [`States::get`], but from what was remembered when S3 says it
    /// did not change (a conditional GET: no body).
    pub async fn get_remembered<D: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(D, String)>, CheckpointError> {
        let Some(remembered) = self.remembered else {
            return self.get(key).await;
        };
        let got = match remembered.get(key) {
            Some((body, etag)) => {
                match self
                    .gate
                    .run(self.staging.get_state_if_changed(key, &etag))
                    .await?
                {
                    None => Some((body, etag)),
                    Some(changed) => {
                        self.count_read(changed.as_ref());
                        changed
                    }
                }
            }
            None => {
                let got = self.gate.run(self.staging.get_state(key)).await?;
                self.count_read(got.as_ref());
                got
            }
        };
        self.io.reads.fetch_add(1, Ordering::Relaxed);
        remembered.set(key, got.clone());
        let Some((body, etag)) = got else {
            return Ok(None);
        };
        let doc = serde_json::from_slice(&body).map_err(|e| CheckpointError::corrupt(key, e))?;
        Ok(Some((doc, etag)))
    }

    fn count_read(&self, got: Option<&(Vec<u8>, String)>) {
        if let Some((body, _)) = got {
            self.io
                .read_bytes
                .fetch_add(body.len() as u64, Ordering::Relaxed);
        }
    }

    /// The document at `key` and its ETag (`None`: there is none).
    pub async fn get<D: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(D, String)>, CheckpointError> {
        let got = self.gate.run(self.staging.get_state(key)).await?;
        self.io.reads.fetch_add(1, Ordering::Relaxed);
        let Some((body, etag)) = got else {
            return Ok(None);
        };
        self.io
            .read_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let doc = serde_json::from_slice(&body).map_err(|e| CheckpointError::corrupt(key, e))?;
        Ok(Some((doc, etag)))
    }

    /// Writes `doc` at `key` under `write`'s condition; returns the new ETag.
    pub async fn put<D: Serialize>(
        &self,
        key: &str,
        doc: &D,
        write: Write<'_>,
    ) -> Result<String, CheckpointError> {
        let body = serde_json::to_vec(doc).map_err(|e| CheckpointError::corrupt(key, e))?;
        let len = body.len() as u64;
        let etag = self
            .gate
            .run(self.staging.put_state(key, body, write))
            .await?;
        self.io.writes.fetch_add(1, Ordering::Relaxed);
        self.io.written_bytes.fetch_add(len, Ordering::Relaxed);
        Ok(etag)
    }
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
    /// The document at `key` and its ETag (none yet: `None`).
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, CheckpointError> {
        let got = S3Json::new(self.s3.clone())
            .get_bytes(&self.bucket, key)
            .await?;
        Ok(got.map(|(body, etag)| (body, etag.unwrap_or_default())))
    }

    /// The document at `key` unless it is still version `etag` (`None`: unchanged, and S3 sent
    /// no body).
    pub async fn get_if_changed(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<Option<Option<StateDoc>>, CheckpointError> {
        let got = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match(etag)
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => {
                return Ok(None)
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(Some(None))
            }
            Err(e) => return Err(CheckpointError::store(key, e)),
        };
        let etag = out.e_tag.clone().unwrap_or_default();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| CheckpointError::store(key, e))?
            .into_bytes()
            .to_vec();
        Ok(Some(Some((body, etag))))
    }

    /// Writes `body` under `write`'s condition; returns the new ETag.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        write: Write<'_>,
    ) -> Result<String, CheckpointError> {
        S3Json::new(self.s3.clone())
            .put_bytes(&self.bucket, key, body, write)
            .await
    }

    /// Deletes the day shards under `days` (a [`Keys::days`]) of days before `first_day`;
    /// returns how many documents went.
    pub async fn prune_days(&self, days: &str, first_day: &str) -> Result<u64, CheckpointError> {
        let store = |e: aztrail_state::BoxError| CheckpointError::store(days, e);
        let mut old_days = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(days)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store(e.into()))?;
            for p in page.common_prefixes() {
                let Some(prefix) = p.prefix() else { continue };
                let day = prefix[days.len()..].trim_end_matches('/');
                if day.len() == 10 && day < first_day {
                    old_days.push(prefix.to_string());
                }
            }
        }
        let mut deleted = 0;
        for prefix in old_days {
            let mut keys = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            while let Some(page) = keys.next().await {
                let page = page.map_err(|e| store(e.into()))?;
                let objects = page
                    .contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter_map(|k| {
                        aws_sdk_s3::types::ObjectIdentifier::builder()
                            .key(k)
                            .build()
                            .ok()
                    })
                    .collect::<Vec<_>>();
                if objects.is_empty() {
                    continue;
                }
                let n = objects.len() as u64;
                let delete = aws_sdk_s3::types::Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| store(e.into()))?;
                self.s3
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| store(e.into()))?;
                deleted += n;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_belongs_to_the_shard_of_its_root_and_day() {
        let a = ShardId::of("resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=30/h=22/m=00/PT1H.json");
        assert_eq!(a.day, "2026-11-30");
        assert_eq!(a.root, "resourceId=/SUBSCRIPTIONS/S/");
        let b = ShardId::of("resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=30/h=03/m=00/PT1H.json");
        assert_eq!(a.id(), b.id());
        let other = ShardId::of("resourceId=/SUBSCRIPTIONS/T/y=2026/m=11/d=30/h=03/m=00/PT1H.json");
        assert_ne!(a.id(), other.id());
        let next = ShardId::of("resourceId=/SUBSCRIPTIONS/S/y=2026/m=12/d=01/h=00/m=00/PT1H.json");
        assert_eq!(next.day, "2026-12-01");
        let loose = ShardId::of("exports/odd.json");
        assert_eq!(
            (loose.day.as_str(), loose.root.as_str()),
            ("undated", "exports/")
        );
        let keys = Keys::new("acct", "insights-activity-logs");
        assert!(keys.shard(&a).starts_with(&keys.days()));
        assert!(keys
            .shard(&a)
            .starts_with("_aztrail/ingest/acct/insights-activity-logs/days/2026-11-30/"));
        assert_eq!(
            keys.legacy(),
            checkpoint_key("acct", "insights-activity-logs")
        );
    }

    #[test]
    fn documents_read_back_what_was_written() {
        let mut shard = ShardCheckpoint {
            root: "r/".into(),
            day: "2026-11-30".into(),
            ..ShardCheckpoint::default()
        };
        shard.blobs.insert(
            "r/y=2026/m=11/d=30/h=10/m=00/PT1H.json".into(),
            BlobState::default(),
        );
        let json = serde_json::to_string(&shard).unwrap();
        assert!(!json.contains("claim") && !json.contains("retry"), "{json}");
        assert_eq!(
            serde_json::from_str::<ShardCheckpoint>(&json).unwrap(),
            shard
        );
        let mark = Mark {
            pass_at: 10,
            before: 5,
            revisit: ["2026-11-30/ab".to_string()].into(),
        };
        let json = serde_json::to_string(&mark).unwrap();
        assert_eq!(serde_json::from_str::<Mark>(&json).unwrap(), mark);
    }
}
