//! The two sides of a pass, as traits: where blobs are read ([`BlobSource`]: an Azure container,
//! or a local directory laid out like one) and where they are staged ([`Staging`]: the S3 staging
//! bucket, or a local directory with an in-process queue). The pass in [`crate::run`] is written
//! once against them, so the embedded default runs the same code as the deployed pipeline.

use std::future::Future;

use bytes::Bytes;
use futures::stream::BoxStream;

use crate::azure::{AzureError, BlobInfo, Container};
use aztrail_state::Write;

use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::stage::{SourceMeta, StageError, Staged, Stager};

/// A container of log blobs.
pub trait BlobSource: Send + Sync {
    /// The container's name.
    fn name(&self) -> &str;
    /// Every blob whose name starts with `prefix`.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<BlobInfo>, AzureError>> + Send;
    /// The directory levels directly under `prefix` (names ending in `/`).
    fn list_dirs(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, AzureError>> + Send;
    /// Bytes `[start, end)` of `blob`, as a stream of chunks.
    fn read_range(
        &self,
        blob: &str,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<BoxStream<'_, Result<Bytes, AzureError>>, AzureError>> + Send;
    /// What the listings since the last call passed over, and why (for the pass's warnings).
    fn take_warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A state document's bytes and its ETag.
pub type StateDoc = (Vec<u8>, String);

/// Where staged objects and checkpoints go.
pub trait Staging: Send + Sync {
    /// The state document at `key` and its ETag (`None`: there is none).
    fn get_state(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, String)>, CheckpointError>> + Send;
    /// The state document at `key` unless it is still version `etag`: `None` when unchanged,
    /// otherwise what [`Staging::get_state`] gives. (S3 answers a conditional GET without the
    /// body; the default reads it and compares.)
    fn get_state_if_changed(
        &self,
        key: &str,
        etag: &str,
    ) -> impl Future<Output = Result<Option<Option<StateDoc>>, CheckpointError>> + Send {
        async move {
            Ok(match self.get_state(key).await? {
                Some((_, now)) if now == etag => None,
                other => Some(other),
            })
        }
    }
    /// Writes the state document `body` at `key` under `write`'s condition; returns the new ETag,
    /// or [`CheckpointError::Conflict`].
    fn put_state(
        &self,
        key: &str,
        body: Vec<u8>,
        write: Write<'_>,
    ) -> impl Future<Output = Result<String, CheckpointError>> + Send;
    /// Deletes the day shards under `days` of days before `first_day` (`YYYY-MM-DD`); returns
    /// how many documents went.
    fn prune_days(
        &self,
        days: &str,
        first_day: &str,
    ) -> impl Future<Output = Result<u64, CheckpointError>> + Send;
    /// Writes `len` bytes from `source` as `key`, unless `key` exists.
    fn write(
        &self,
        key: &str,
        len: u64,
        meta: &SourceMeta,
        source: BoxStream<'_, Result<Bytes, AzureError>>,
    ) -> impl Future<Output = Result<Staged, StageError>> + Send;
}

impl BlobSource for Container {
    fn name(&self) -> &str {
        Container::name(self)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>, AzureError> {
        Container::list(self, prefix).await
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, AzureError> {
        Container::list_dirs(self, prefix).await
    }

    async fn read_range(
        &self,
        blob: &str,
        start: u64,
        end: u64,
    ) -> Result<BoxStream<'_, Result<Bytes, AzureError>>, AzureError> {
        use futures::StreamExt;
        Ok(Container::read_range(self, blob, start, end).await?.boxed())
    }
}

/// The S3 staging bucket: checkpoints and staged objects.
#[derive(Debug, Clone)]
pub struct S3Staging {
    /// Checkpoints.
    pub checkpoints: CheckpointStore,
    /// Staged objects.
    pub stager: Stager,
}

impl Staging for S3Staging {
    async fn get_state(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, CheckpointError> {
        self.checkpoints.get(key).await
    }

    async fn get_state_if_changed(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<Option<Option<StateDoc>>, CheckpointError> {
        self.checkpoints.get_if_changed(key, etag).await
    }

    async fn put_state(
        &self,
        key: &str,
        body: Vec<u8>,
        write: Write<'_>,
    ) -> Result<String, CheckpointError> {
        self.checkpoints.put(key, body, write).await
    }

    async fn prune_days(&self, days: &str, first_day: &str) -> Result<u64, CheckpointError> {
        self.checkpoints.prune_days(days, first_day).await
    }

    async fn write(
        &self,
        key: &str,
        len: u64,
        meta: &SourceMeta,
        source: BoxStream<'_, Result<Bytes, AzureError>>,
    ) -> Result<Staged, StageError> {
        self.stager.write(key, len, meta, source).await
    }
}
