//! Load progress per staged object, so that a redelivered message does not re-send what was
//! already accepted.
//!
//! While an object loads, the loader saves the byte offset below which every record is accounted
//! for (accepted or in the failure queue), every few batches and at the end. The checkpoint is
//! keyed by the object and the identity of its PUT (S3's sequencer, or ETag and time): a
//! redelivered notification finds it and skips those records; a re-dropped object is a new PUT,
//! finds none, and is loaded again in full. Checkpoints live in the staging bucket under
//! [`CHECKPOINT_PREFIX`], which the worker never loads as data.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aztrail_state::{S3Json, Write};
use serde::{Deserialize, Serialize};

use crate::notification::ObjectRef;

/// Where aztrail keeps its own state in the staging bucket (never loaded as data).
pub const STATE_PREFIX: &str = "_aztrail/";

/// Where load checkpoints live in the staging bucket.
pub const CHECKPOINT_PREFIX: &str = "_aztrail/load/";

/// How far one PUT of one object has been loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Every record that starts below this byte offset is accounted for.
    pub offset: u64,
    /// The whole object is accounted for.
    pub complete: bool,
    /// Events accepted so far.
    pub accepted: u64,
    /// Records sent to the failure queue so far.
    pub failed: u64,
}

/// Why a checkpoint could not be read or written (the one state-object error of aztrail).
pub use aztrail_state::StateError as CheckpointError;

/// Where checkpoints are kept.
pub trait CheckpointStore: Send + Sync {
    /// The checkpoint of this PUT of `object`, if one was saved.
    fn get(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Checkpoint>, CheckpointError>> + Send;
    /// Saves the checkpoint of this PUT of `object`.
    fn put(
        &self,
        object: &ObjectRef,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send;
}

/// The key of `object`'s checkpoint: the object's key and its PUT identity under
/// [`CHECKPOINT_PREFIX`].
pub fn checkpoint_key(object: &ObjectRef) -> String {
    format!(
        "{CHECKPOINT_PREFIX}{}@{}.json",
        object.key,
        object.put_identity()
    )
}

/// Checkpoints as small JSON objects in S3 (by default in the object's own bucket).
#[derive(Debug, Clone)]
pub struct S3Checkpoints {
    client: aws_sdk_s3::Client,
    bucket: Option<String>,
}

impl S3Checkpoints {
    /// Keeps checkpoints in `bucket`, or, when `None`, in each object's own (staging) bucket.
    pub fn new(client: aws_sdk_s3::Client, bucket: Option<String>) -> Self {
        Self { client, bucket }
    }

    fn bucket<'a>(&'a self, object: &'a ObjectRef) -> &'a str {
        self.bucket.as_deref().unwrap_or(&object.bucket)
    }
}

impl CheckpointStore for S3Checkpoints {
    async fn get(&self, object: &ObjectRef) -> Result<Option<Checkpoint>, CheckpointError> {
        let got = S3Json::new(self.client.clone())
            .get(self.bucket(object), &checkpoint_key(object))
            .await?;
        Ok(got.map(|(checkpoint, _)| checkpoint))
    }

    async fn put(
        &self,
        object: &ObjectRef,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        S3Json::new(self.client.clone())
            .put(
                self.bucket(object),
                &checkpoint_key(object),
                checkpoint,
                Write::Always,
            )
            .await
            .map(drop)
    }
}

/// Checkpoints in memory (tests, and one-shot loads that are never redelivered).
#[derive(Debug, Default)]
pub struct MemoryCheckpoints(Mutex<HashMap<String, Checkpoint>>);

impl MemoryCheckpoints {
    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<String, Checkpoint>>, CheckpointError> {
        self.0
            .lock()
            .map_err(|e| CheckpointError::store("memory", e.to_string()))
    }
}

impl CheckpointStore for MemoryCheckpoints {
    async fn get(&self, object: &ObjectRef) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(self.lock()?.get(&checkpoint_key(object)).cloned())
    }

    async fn put(
        &self,
        object: &ObjectRef,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        self.lock()?
            .insert(checkpoint_key(object), checkpoint.clone());
        Ok(())
    }
}

/// Saves one object's progress as the loader goes (what [`crate::loader::load`] calls).
pub trait Progress: Send + Sync {
    /// Every record below `checkpoint.offset` is accounted for.
    fn save(
        &self,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send;
}

/// No checkpoints (a load that will not be retried).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    async fn save(&self, _: &Checkpoint) -> Result<(), CheckpointError> {
        Ok(())
    }
}

/// One object's checkpoints in a store.
#[derive(Debug)]
pub struct ObjectProgress<'a, C: CheckpointStore> {
    /// The store.
    pub store: &'a C,
    /// The object (and PUT) loading.
    pub object: &'a ObjectRef,
}

impl<C: CheckpointStore> Progress for ObjectProgress<'_, C> {
    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        self.store.put(self.object, checkpoint).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(etag: &str, time: &str) -> ObjectRef {
        ObjectRef {
            bucket: "staging".into(),
            key: "staged/a b/PT1H.json.0-10".into(),
            size: Some(10),
            etag: Some(etag.into()),
            sequencer: None,
            version_id: None,
            event_time: Some(time.into()),
        }
    }

    #[tokio::test]
    async fn a_redelivery_finds_its_checkpoint_and_a_re_drop_does_not() {
        let store = MemoryCheckpoints::default();
        let first = object("e1", "2026-11-27T10:00:00Z");
        let cp = Checkpoint {
            offset: 500,
            complete: false,
            accepted: 3,
            failed: 1,
        };
        store.put(&first, &cp).await.unwrap();
        assert_eq!(store.get(&first.clone()).await.unwrap(), Some(cp));
        let re_dropped = object("e1", "2026-11-27T11:00:00Z");
        assert_eq!(store.get(&re_dropped).await.unwrap(), None);
        assert!(checkpoint_key(&first).starts_with(CHECKPOINT_PREFIX));
        assert!(checkpoint_key(&first).starts_with(STATE_PREFIX));
    }
}
