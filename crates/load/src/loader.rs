//! Loading one object: bytes in, every record accounted for.
//!
//! The object is read as a stream of chunks and framed, mapped and batched as it arrives
//! (`aztrail-transform`), so memory stays flat whatever its size. Full batches are sent with at
//! most `concurrency` calls in flight, all under the process's rate limit. Records the transform
//! rejects and events the service does not accept go to the failure sink, one message each, so
//! that at the end `records = accepted + failed`, which the summary states.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use aztrail_transform::{Batch, Batcher, Framer, Mapper, Source};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::failure::{FailureMessage, Location};
use crate::rate::RateLimiter;
use crate::retry::Backoff;
use crate::sender::{send_batch, SendPolicy, Sent};
use crate::sink::{AuditSink, OutEvent};

/// Where failure messages go (the failure queue, or a list in tests).
pub trait FailureSink: Send + Sync {
    /// Stores one message; an error stops the load (the object is then not acknowledged).
    fn send(&self, message: FailureMessage) -> impl Future<Output = Result<(), String>> + Send;
}

/// Failure messages kept in memory.
#[derive(Debug, Default)]
pub struct MemoryFailures(pub std::sync::Mutex<Vec<FailureMessage>>);

impl FailureSink for MemoryFailures {
    async fn send(&self, message: FailureMessage) -> Result<(), String> {
        self.0.lock().map_err(|e| e.to_string())?.push(message);
        Ok(())
    }
}

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The channel owner's account (`recipientAccountId`).
    pub account: String,
    /// Calls in flight at most.
    pub concurrency: usize,
    /// Retries.
    pub policy: SendPolicy,
    /// Bytes read at a time.
    pub chunk_size: usize,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            account: "000000000000".into(),
            concurrency: 4,
            policy: SendPolicy::default(),
            chunk_size: 256 * 1024,
        }
    }
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Bytes read.
    pub bytes: u64,
    /// Records framed.
    pub records: u64,
    /// Events accepted by the service.
    pub accepted: u64,
    /// Records sent to the failure sink (rejected by the transform or by the service).
    pub failed: u64,
    /// Failures by error code.
    pub failed_by_code: BTreeMap<String, u64>,
    /// PutAuditEvents calls made.
    pub calls: u64,
    /// Events sent again after a retryable answer.
    pub retried: u64,
    /// Throttling answers.
    pub throttled: u64,
}

impl Summary {
    /// Whether every record read was accepted or reported as failed.
    pub fn balanced(&self) -> bool {
        self.records == self.accepted + self.failed
    }

    fn add_failure(&mut self, code: &str) {
        self.failed += 1;
        *self.failed_by_code.entry(code.to_string()).or_default() += 1;
    }
}

/// Why a load stopped before accounting for every record.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The object could not be read.
    #[error("reading {key}: {source}")]
    Read {
        /// The object.
        key: String,
        /// Why.
        source: std::io::Error,
    },
    /// A failure message could not be stored.
    #[error("writing to the failure queue: {0}")]
    FailureSink(String),
}

/// What the loader keeps about each event in flight: where its record is, and the record itself
/// for the failure message should the service not accept it.
struct Tag {
    at: Location,
    raw: Vec<u8>,
}

/// Loads the records of `reader` (the object `source`, starting at byte `start`) into `sink`.
pub async fn load<S, F, R>(
    source: &Source,
    start: u64,
    mut reader: R,
    sink: Arc<S>,
    limiter: Arc<RateLimiter>,
    failures: &F,
    config: &LoadConfig,
) -> Result<Summary, LoadError>
where
    S: AuditSink,
    F: FailureSink,
    R: AsyncRead + Unpin,
{
    let mut summary = Summary::default();
    let mut framer = Framer::with_start_offset(start);
    let mut mapper = Mapper::new(&config.account);
    mapper.set_source(source);
    let mut batcher: Batcher<(Tag, OutEvent)> = Batcher::new();
    let mut in_flight = FuturesUnordered::new();
    let mut chunk = vec![0u8; config.chunk_size.max(4096)];
    let mut entry = Vec::new();
    let mut batch_no = 0u64;
    // Records rejected by the transform, with their raw bytes, waiting to be reported.
    let mut rejected: Vec<(Location, String, String, Vec<u8>)> = Vec::new();
    let mut full: Vec<Batch<(Tag, OutEvent)>> = Vec::new();
    let mut eof = false;
    while !eof {
        let n = reader.read(&mut chunk).await.map_err(|e| LoadError::Read {
            key: source.key.clone(),
            source: e,
        })?;
        summary.bytes += n as u64;
        let mut handle = |rec: aztrail_transform::Record<'_>| {
            summary.records += 1;
            let at = Location {
                bucket: source.bucket.clone(),
                key: source.key.clone(),
                offset: rec.offset,
                length: rec.bytes.len() as u64,
            };
            match mapper.map(rec) {
                Ok(ev) => {
                    entry.clear();
                    ev.write_entry(&mut entry);
                    if entry.len() > batcher.max_entry() {
                        // Cannot happen (the transform caps every field), but must not be lost.
                        rejected.push((
                            at,
                            "EntryTooLarge".into(),
                            format!(
                                "a serialized event of {} bytes fits no request",
                                entry.len()
                            ),
                            rec.bytes.to_vec(),
                        ));
                        return;
                    }
                    let out = OutEvent {
                        id: ev.id.to_string(),
                        event_data: ev.event_data.to_string(),
                        checksum: ev.checksum.to_string(),
                    };
                    let tag = Tag {
                        at,
                        raw: rec.bytes.to_vec(),
                    };
                    if let Ok(Some(done)) = batcher.push(&entry, (tag, out)) {
                        full.push(done);
                    }
                }
                Err(rejection) => rejected.push((
                    at,
                    rejection.code().to_string(),
                    rejection.to_string(),
                    rec.bytes.to_vec(),
                )),
            }
        };
        if n == 0 {
            framer.finish(&mut handle);
            eof = true;
        } else {
            framer.feed(&chunk[..n], &mut handle);
        }
        if eof {
            full.extend(batcher.take());
        }
        for (at, code, message, raw) in rejected.drain(..) {
            summary.add_failure(&code);
            failures
                .send(FailureMessage::new(&code, &message, at, 0, &raw))
                .await
                .map_err(LoadError::FailureSink)?;
        }
        for batch in full.drain(..) {
            while in_flight.len() >= config.concurrency.max(1) {
                if let Some(sent) = in_flight.next().await {
                    settle(sent, &mut summary, failures).await?;
                }
            }
            batch_no += 1;
            let sink = Arc::clone(&sink);
            let limiter = Arc::clone(&limiter);
            let policy = config.policy.clone();
            let mut backoff = Backoff::new(policy.backoff_base, policy.backoff_cap, batch_no);
            let events: Vec<(Tag, OutEvent)> = batch.items.into_iter().map(|(t, _)| t).collect();
            in_flight.push(async move {
                send_batch(sink.as_ref(), &limiter, &mut backoff, &policy, events).await
            });
        }
    }
    while let Some(sent) = in_flight.next().await {
        settle(sent, &mut summary, failures).await?;
    }
    Ok(summary)
}

async fn settle<F: FailureSink>(
    sent: Sent<Tag>,
    summary: &mut Summary,
    failures: &F,
) -> Result<(), LoadError> {
    summary.accepted += sent.accepted.len() as u64;
    summary.calls += u64::from(sent.calls);
    summary.retried += u64::from(sent.retried);
    summary.throttled += u64::from(sent.throttled);
    for f in sent.failed {
        summary.add_failure(&f.code);
        let message = FailureMessage::new(&f.code, &f.message, f.tag.at, f.attempts, &f.tag.raw);
        failures
            .send(message)
            .await
            .map_err(LoadError::FailureSink)?;
    }
    Ok(())
}
