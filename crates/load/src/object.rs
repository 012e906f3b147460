//! The per-object step: one staged object taken from its checkpoint to fully accounted for.
//!
//! Every consumer loads objects through [`Step::load`]: the SQS worker and the Lambda handler
//! (objects named by S3 notifications), `aztrail load` over paths and `s3://` URIs, and
//! `aztrail run`'s in-process queue of staged files ([`drain`]). The step reads the object's
//! checkpoint, skips an object already loaded, opens it ([`ObjectReader`]: S3 or a directory),
//! streams it through [`crate::loader::load`] (whose batches go to the process's one pool of
//! calls when the config has one) and says how it ended ([`Loaded`]). Only what differs between
//! consumers stays with them: receiving, heartbeats and deleting messages for SQS, printing for
//! the command line.

use std::future::Future;
use std::path::PathBuf;

use futures::stream::{FuturesUnordered, Stream, StreamExt};
use tokio::io::AsyncRead;
use tracing::Instrument;

use aztrail_transform::Source;

use crate::checkpoint::{Checkpoint, CheckpointStore, ObjectProgress};
use crate::failure::{FailureMessage, Location};
use crate::loader::{load, Destination, FailureSink, LoadConfig, LoadError, Summary};
use crate::notification::ObjectRef;
use crate::sink::EventSink;

/// A staged object opened for streaming.
pub type ObjectBody = Box<dyn AsyncRead + Send + Unpin>;

/// Why an object could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// GetObject failed.
    #[error(transparent)]
    S3(#[from] crate::s3::OpenError),
    /// The file could not be opened.
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
}

/// Where staged objects are read from.
pub trait ObjectReader: Send + Sync {
    /// Opens `object` for streaming (gunzipped when its key ends in `.gz`).
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<ObjectBody, OpenError>> + Send;

    /// Where its records come from, as events and failure messages name it.
    fn source(&self, object: &ObjectRef) -> Source;
}

/// Objects in S3, each in its own bucket.
#[derive(Debug, Clone)]
pub struct S3Objects(pub aws_sdk_s3::Client);

impl ObjectReader for S3Objects {
    async fn open(&self, object: &ObjectRef) -> Result<ObjectBody, OpenError> {
        Ok(crate::s3::open(&self.0, &object.bucket, &object.key).await?)
    }

    fn source(&self, object: &ObjectRef) -> Source {
        Source {
            bucket: Some(object.bucket.clone()),
            key: object.key.clone(),
        }
    }
}

/// Files on disk: an object's key is a path under `root` (the embedded default's staging
/// directory), or, with no root, a path of its own (files named on the command line).
#[derive(Debug, Clone, Default)]
pub struct LocalObjects {
    /// The directory keys are relative to.
    pub root: Option<PathBuf>,
}

impl LocalObjects {
    fn path(&self, object: &ObjectRef) -> PathBuf {
        match &self.root {
            Some(root) => root.join(&object.key),
            None => PathBuf::from(&object.key),
        }
    }
}

impl ObjectReader for LocalObjects {
    async fn open(&self, object: &ObjectRef) -> Result<ObjectBody, OpenError> {
        Ok(crate::local::open_file(&self.path(object)).await?)
    }

    fn source(&self, object: &ObjectRef) -> Source {
        Source {
            bucket: None,
            key: object.key.clone(),
        }
    }
}

/// What to do when an object cannot be read to its end (a corrupt gzip trailer, a dropped
/// connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadErrors {
    /// Leave the object unfinished, to be read again (a queue redelivers it; S3's errors pass).
    Retry,
    /// Report the unread rest to the failure sink as `UnreadableObject` and finish the object (a
    /// local file will not read better next time).
    Report,
}

/// How one object's load ended.
#[derive(Debug)]
pub enum Loaded {
    /// Its checkpoint says it was loaded already.
    AlreadyLoaded,
    /// Every record is accounted for. `unreadable` says why the object could not be read to its
    /// end, when its unread rest was reported instead (see [`ReadErrors::Report`]).
    Done {
        /// What was done.
        summary: Summary,
        /// Why the rest could not be read.
        unreadable: Option<String>,
    },
    /// A stop (SIGTERM, a deadline) came first: the calls in flight finished and the checkpoint
    /// says where to resume.
    Stopped {
        /// What was done before stopping.
        summary: Summary,
        /// Every record below this offset is accounted for.
        offset: u64,
    },
    /// Not finished, for a reason that may pass (a checkpoint, the object or the failure sink
    /// could not be reached): loading it again resumes from its checkpoint.
    Unfinished {
        /// What was done before it (part of the object may be accounted for).
        summary: Summary,
        /// Why.
        why: String,
    },
}

/// The per-object step, with everything an object's load needs.
pub struct Step<'a, S, F, C, R> {
    /// Where events and failures go.
    pub dest: Destination<'a, S, F>,
    /// Where progress is kept.
    pub checkpoints: &'a C,
    /// Where objects are read.
    pub objects: &'a R,
    /// How to load (with the process's pool of calls, so small objects share calls).
    pub config: &'a LoadConfig,
    /// What a read error does.
    pub read_errors: ReadErrors,
    /// Ignore saved progress: load every record again.
    pub from_start: bool,
}

impl<S, F, C, R> Step<'_, S, F, C, R>
where
    S: EventSink,
    F: FailureSink,
    C: CheckpointStore,
    R: ObjectReader,
{
    /// Loads `object` from its checkpoint to its end (or to a stop), saving progress as it goes.
    pub async fn load(&self, object: &ObjectRef) -> Loaded {
        let span = tracing::info_span!("object", bucket = %object.bucket, key = %object.key);
        self.load_in_span(object).instrument(span).await
    }

    async fn load_in_span(&self, object: &ObjectRef) -> Loaded {
        let unfinished = |why: String| Loaded::Unfinished {
            summary: Summary::default(),
            why,
        };
        let resume = if self.from_start {
            Checkpoint::default()
        } else {
            match self.checkpoints.get(object).await {
                Ok(Some(c)) if c.complete => return Loaded::AlreadyLoaded,
                Ok(c) => c.unwrap_or_default(),
                Err(e) => return unfinished(crate::error_chain(&e)),
            }
        };
        let reader = match self.objects.open(object).await {
            Ok(r) => r,
            Err(e) => return unfinished(crate::error_chain(&e)),
        };
        let source = self.objects.source(object);
        let progress = ObjectProgress {
            store: self.checkpoints,
            object,
        };
        match load(&source, reader, &resume, &self.dest, &progress, self.config).await {
            Ok(summary) => Loaded::Done {
                summary,
                unreadable: None,
            },
            Err(LoadError::OutOfTime { offset, summary }) => Loaded::Stopped {
                summary: *summary,
                offset,
            },
            Err(LoadError::Read {
                source: e,
                offset,
                summary,
                ..
            }) if self.read_errors == ReadErrors::Report => {
                let at = Location {
                    bucket: source.bucket.clone(),
                    key: source.key.clone(),
                    offset,
                    length: summary.bytes.saturating_sub(offset),
                };
                let why = crate::error_chain(&e);
                match self
                    .dest
                    .failures
                    .send(FailureMessage::unreadable(at, &why))
                    .await
                {
                    Ok(()) => Loaded::Done {
                        summary: *summary,
                        unreadable: Some(why),
                    },
                    Err(e) => Loaded::Unfinished {
                        summary: *summary,
                        why: crate::error_chain(&e),
                    },
                }
            }
            Err(LoadError::Read { summary, .. }) => Loaded::Unfinished {
                why: format!("reading {}: the rest is read again next time", source.key),
                summary: *summary,
            },
            Err(e @ LoadError::FailureSink(_)) => unfinished(crate::error_chain(&e)),
        }
    }
}

/// Loads every object `objects` yields through `step`, up to `held` at once (their batches
/// share the pool's calls), and hands each outcome to `each` as it ends. Stops taking new
/// objects once the config's stop is set; the objects not taken are returned.
pub async fn drain<S, F, C, R, St>(
    step: &Step<'_, S, F, C, R>,
    objects: St,
    held: usize,
    mut each: impl FnMut(ObjectRef, Loaded),
) -> Vec<ObjectRef>
where
    S: EventSink,
    F: FailureSink,
    C: CheckpointStore,
    R: ObjectReader,
    St: Stream<Item = ObjectRef>,
{
    let stopped = || {
        step.config
            .stop
            .as_ref()
            .is_some_and(crate::loader::Stop::is_set)
    };
    let mut objects = std::pin::pin!(objects);
    let mut running = FuturesUnordered::new();
    let mut ended = false;
    let mut left = Vec::new();
    loop {
        tokio::select! {
            next = objects.next(), if !ended && running.len() < held.max(1) => match next {
                Some(object) if stopped() => left.push(object),
                Some(object) => running.push(async move {
                    let loaded = step.load(&object).await;
                    (object, loaded)
                }),
                None => ended = true,
            },
            Some((object, loaded)) = running.next(), if !running.is_empty() => each(object, loaded),
            else => break,
        }
    }
    left
}
