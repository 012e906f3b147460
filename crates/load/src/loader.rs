//! Loading one object: bytes in, every record accounted for.
//!
//! The object is read as a stream of chunks and framed, mapped and batched as it arrives
//! (`aztrail-transform`), so memory stays flat whatever its size. Full batches are sent with at
//! most `concurrency` calls in flight, all under the process's rate limit. Records the transform
//! rejects and events the service does not accept go to the failure sink, one message each, so
//! that at the end `records = skipped + accepted + failed`, which the summary states.
//!
//! Every few batches the loader saves a checkpoint: the byte offset below which every record is
//! accounted for (the start of the oldest batch still in flight). A load resumed from a checkpoint
//! skips the records below it; a load that runs out of time stops starting batches, waits for
//! those in flight, saves its checkpoint and says so.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aztrail_transform::{Framer, Mapper, Source};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::batch::{Batch, Batches};
use crate::checkpoint::{Checkpoint, Progress};
use crate::failure::{FailureMessage, Location};
use crate::pool::CallPool;
use crate::rate::RateLimiter;
use crate::retry::Backoff;
use crate::sender::{send_batch, SendPolicy, Sent};
use crate::sink::{EventSink, Wire};

pub use crate::failure::{FailureSink, FailureSinkError, MemoryFailures};

/// Counters a progress display reads while loads run (shared by all of a process's loads).
#[derive(Debug, Default)]
pub struct Live {
    /// Bytes read.
    pub bytes: AtomicU64,
    /// Records framed.
    pub records: AtomicU64,
    /// Events accepted.
    pub accepted: AtomicU64,
    /// Records sent to the failure sink.
    pub failed: AtomicU64,
    /// Objects finished.
    pub objects: AtomicU64,
}

impl Live {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Where a load sends what it reads.
pub struct Destination<'a, S, F> {
    /// PutAuditEvents.
    pub sink: &'a Arc<S>,
    /// The process's rate limit.
    pub limiter: &'a Arc<RateLimiter>,
    /// The failure queue.
    pub failures: &'a F,
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
    /// Save a checkpoint each time this many batches have been settled (a crash re-sends at
    /// most this many batches, plus those in flight).
    pub checkpoint_every: u32,
    /// Start no batch after this instant (a Lambda's remaining time).
    pub stop_at: Option<Instant>,
    /// Counters for a progress display.
    pub live: Option<Arc<Live>>,
    /// Records longer than this are passed over unread and reported as `RecordTooLarge`.
    pub max_record_len: usize,
    /// The process's shared calls (see [`crate::pool`]): batches of several objects share a
    /// call. Without one, each batch is a call of its own, sent by this loader.
    pub pool: Option<CallPool>,
    /// Asked to stop (SIGTERM, Ctrl-C): like `stop_at`, no batch starts after it, those in
    /// flight finish and the checkpoint is saved.
    pub stop: Option<Stop>,
    /// How long a pool's call that is not full waits for more batches (see [`crate::pool`]).
    pub call_linger: std::time::Duration,
    /// Whether each CloudTrail Lake event carries `eventDataChecksum` (see
    /// [`aztrail_transform::Mapper::with_checksum`]).
    pub event_data_checksum: bool,
}

/// A stop request shared by a process's passes, loaders and workers (one type for all).
pub use aztrail_state::Stop;

impl LoadConfig {
    /// This config with a pool of calls of its own for `sink` (unless it has one): what every
    /// consumer loads with, so that the batches of all its objects share calls.
    pub fn pooled<S: EventSink>(&self, sink: &Arc<S>, limiter: &Arc<RateLimiter>) -> LoadConfig {
        let mut config = self.clone();
        if config.pool.is_none() {
            config.pool = Some(CallPool::start_lingering(
                Arc::clone(sink),
                Arc::clone(limiter),
                config.concurrency,
                config.call_linger,
            ));
        }
        config
    }

    /// How many objects a consumer loads at once: enough small objects side by side (each
    /// waiting on its reads and on its calls) to keep every call slot busy with full calls.
    /// Their batches wait in the pool's bounded queue, so memory stays bounded.
    pub fn objects_held(&self) -> usize {
        (self.concurrency.max(1) * 16).max(10)
    }
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            account: "000000000000".into(),
            concurrency: 4,
            policy: SendPolicy::default(),
            chunk_size: 256 * 1024,
            checkpoint_every: 10,
            stop_at: None,
            live: None,
            max_record_len: aztrail_transform::framing::DEFAULT_MAX_RECORD_LEN,
            pool: None,
            stop: None,
            call_linger: crate::pool::DEFAULT_CALL_LINGER,
            event_data_checksum: false,
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
    /// Records skipped because an earlier delivery accounted for them (from its checkpoint).
    pub skipped: u64,
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
    /// The largest delay, in seconds, from an accepted event's `eventTime` to its acceptance.
    pub max_lag_seconds: u64,
    /// Checkpoints that could not be saved (the load goes on; a redelivery re-sends more).
    pub checkpoint_errors: u64,
}

impl Summary {
    /// Whether every record read was accepted or reported as failed.
    pub fn balanced(&self) -> bool {
        self.records == self.skipped + self.accepted + self.failed
    }

    /// Adds another summary's counts to this one.
    pub fn add(&mut self, s: &Summary) {
        self.bytes += s.bytes;
        self.records += s.records;
        self.skipped += s.skipped;
        self.accepted += s.accepted;
        self.failed += s.failed;
        self.calls += s.calls;
        self.retried += s.retried;
        self.throttled += s.throttled;
        self.max_lag_seconds = self.max_lag_seconds.max(s.max_lag_seconds);
        self.checkpoint_errors += s.checkpoint_errors;
        for (code, n) in &s.failed_by_code {
            *self.failed_by_code.entry(code.clone()).or_default() += n;
        }
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
    #[error("reading {key} at byte {offset}")]
    Read {
        /// The object.
        key: String,
        /// Why.
        source: std::io::Error,
        /// Every record below this offset is accounted for; the bytes from here to where reading
        /// failed (`summary.bytes`) were not framed.
        offset: u64,
        /// What was done with the records read before the error (all accounted for).
        summary: Box<Summary>,
    },
    /// A failure message could not be stored.
    #[error("writing to the failure queue")]
    FailureSink(#[from] FailureSinkError),
    /// The load stopped at its deadline; its checkpoint says where to resume.
    #[error("out of time at byte {offset}; resumes there on redelivery")]
    OutOfTime {
        /// Every record below this offset is accounted for.
        offset: u64,
        /// What was done before stopping.
        summary: Box<Summary>,
    },
}

/// What the loader keeps about each event in flight: where its record is, the record itself for
/// the failure message should the service not accept it, and its time for the lag metric.
struct Tag {
    at: Location,
    raw: Vec<u8>,
    event_time: i64,
}

/// A settled batch: its number and how it ended.
type Settled = (u64, Sent<Tag>);

/// Which offsets are accounted for: everything below the first record of the oldest unsettled
/// batch, of the batch being filled, or, when none, below the end of the last record framed.
#[derive(Debug, Default)]
struct Watermark {
    /// Batch number → offset of its first record, for batches made but not settled.
    pending: BTreeMap<u64, u64>,
    /// The first record's offset of the batch being filled.
    open_first: Option<u64>,
    /// The end of the last record framed.
    framed_end: u64,
}

impl Watermark {
    fn offset(&self) -> u64 {
        let mut w = self.framed_end;
        if let Some((_, &first)) = self.pending.first_key_value() {
            w = w.min(first);
        }
        if let Some(first) = self.open_first {
            w = w.min(first);
        }
        w
    }
}

/// One object's records on their way into batches: everything the framer's callback updates
/// for each record (counts, the watermark, the batch being filled, what is waiting to be
/// reported or sent).
struct Records<'s> {
    source: &'s Source,
    /// Records starting below this offset were accounted for by an earlier delivery.
    skip_below: u64,
    mapper: Mapper,
    wire: Wire,
    batches: Batches<Tag>,
    batch_no: u64,
    summary: Summary,
    mark: Watermark,
    /// Records rejected by the transform, with their raw bytes, waiting to be reported.
    rejected: Vec<(Location, String, String, Vec<u8>)>,
    /// Batches closed, waiting to be sent.
    closed: Vec<(u64, Batch<Tag>)>,
}

impl<'s> Records<'s> {
    fn new(source: &'s Source, resume: &Checkpoint, wire: Wire, config: &LoadConfig) -> Self {
        let mut mapper = Mapper::new(&config.account).with_checksum(config.event_data_checksum);
        mapper.set_source(source);
        Self {
            source,
            skip_below: resume.offset,
            mapper,
            wire,
            batches: Batches::new(wire),
            batch_no: 0,
            summary: Summary::default(),
            mark: Watermark {
                framed_end: resume.offset,
                ..Watermark::default()
            },
            rejected: Vec::new(),
            closed: Vec::new(),
        }
    }

    /// One framed record: skipped, mapped into the open batch, or rejected with its reason.
    fn record(&mut self, rec: aztrail_transform::Record<'_>) {
        self.summary.records += 1;
        if rec.offset < self.skip_below {
            self.summary.skipped += 1;
            return;
        }
        let end = rec.offset + rec.len();
        self.mark.framed_end = self.mark.framed_end.max(end);
        let at = Location {
            bucket: self.source.bucket.clone(),
            key: self.source.key.clone(),
            offset: rec.offset,
            length: rec.len(),
        };
        let ev = match self.mapper.map(rec) {
            Ok(ev) => ev,
            Err(rejection) => {
                let (code, why) = (rejection.code().to_string(), rejection.to_string());
                self.rejected.push((at, code, why, rec.bytes.to_vec()));
                return;
            }
        };
        let out = self.wire.encode(&ev);
        if !self.batches.sendable(&out) {
            // Cannot happen (the transform caps every field), but must not be lost.
            let why = format!("an event of {} bytes fits no call", out.size);
            self.rejected
                .push((at, "EntryTooLarge".into(), why, rec.bytes.to_vec()));
            return;
        }
        let tag = Tag {
            at,
            raw: rec.bytes.to_vec(),
            event_time: ev.event_time.0,
        };
        if let Some(done) = self.batches.push(tag, out) {
            self.close(done);
        }
        // The open batches' first records (one batch, or one per day).
        self.mark.open_first = self.batches.open_heads().map(|t| t.at.offset).min();
    }

    /// Hands out a closed batch, remembering where its first record starts.
    fn close(&mut self, done: Batch<Tag>) {
        self.batch_no += 1;
        if let Some((first, _)) = done.items.first() {
            self.mark.pending.insert(self.batch_no, first.at.offset);
        }
        self.closed.push((self.batch_no, done));
    }

    /// At the end of the input: the open batches are closed too.
    fn close_open(&mut self) {
        while let Some(done) = self.batches.take() {
            self.close(done);
        }
        self.mark.open_first = None;
    }
}

/// Reports every record the transform rejected since the last call, one failure message each.
async fn report_rejected<F: FailureSink>(
    recs: &mut Records<'_>,
    failures: &F,
    live: Option<&Live>,
) -> Result<(), LoadError> {
    for (at, code, message, raw) in recs.rejected.drain(..) {
        recs.summary.add_failure(&code);
        if let Some(l) = live {
            Live::add(&l.failed, 1);
        }
        failures
            .send(FailureMessage::new(&code, &message, at, 0, &raw))
            .await?;
    }
    Ok(())
}

/// The sending of batch `no`: through the process's pool of calls, or as calls of its own.
fn send<S: EventSink>(
    dest_sink: &Arc<S>,
    limiter: &Arc<RateLimiter>,
    config: &LoadConfig,
    no: u64,
    batch: Batch<Tag>,
) -> impl Future<Output = Settled> + Send + 'static {
    let sink = Arc::clone(dest_sink);
    let limiter = Arc::clone(limiter);
    let policy = config.policy.clone();
    let pool = config.pool.clone();
    async move {
        let sent = match pool {
            Some(pool) => pool.send(batch, &policy).await,
            None => {
                let mut backoff = Backoff::new(policy.backoff_base, policy.backoff_cap, no);
                send_batch(sink.as_ref(), &limiter, &mut backoff, &policy, batch.items).await
            }
        };
        (no, sent)
    }
}

/// Whether the load must start no more batches (deadline, or a stop was asked for).
fn must_stop(config: &LoadConfig) -> bool {
    config.stop_at.is_some_and(|t| Instant::now() >= t)
        || config.stop.as_ref().is_some_and(Stop::is_set)
}

/// Loads the records of `reader` (the object `source`) into `dest`, skipping those below
/// `resume.offset`, and saving progress through `progress`.
pub async fn load<S, F, R, P>(
    source: &Source,
    mut reader: R,
    resume: &Checkpoint,
    dest: &Destination<'_, S, F>,
    progress: &P,
    config: &LoadConfig,
) -> Result<Summary, LoadError>
where
    S: EventSink,
    F: FailureSink,
    R: AsyncRead + Unpin,
    P: Progress,
{
    let live = config.live.as_deref();
    let mut framer = Framer::new()
        .with_max_record_len(config.max_record_len)
        .with_digests();
    let mut recs = Records::new(source, resume, dest.sink.wire(), config);
    let mut in_flight = FuturesUnordered::new();
    // The read buffer starts small and doubles while reads fill it, up to `chunk_size`: a
    // process loading a hundred small objects at once holds a hundred small buffers.
    let most = config.chunk_size.max(4096);
    let mut chunk = vec![0u8; most.min(16 * 1024)];
    let mut settled_since_save = 0u32;
    let (mut eof, mut out_of_time) = (false, false);
    let mut read_error: Option<std::io::Error> = None;
    while !eof && !out_of_time {
        // A read error ends the input like its end would (the records before it are sent and
        // accounted for), then is returned with the summary.
        let n = reader.read(&mut chunk).await.unwrap_or_else(|e| {
            read_error = Some(e);
            0
        });
        recs.summary.bytes += n as u64;
        if n == chunk.len() && chunk.len() < most {
            chunk.resize((chunk.len() * 2).min(most), 0);
        }
        let records_before = recs.summary.records;
        if n > 0 {
            framer.feed(&chunk[..n], |rec| recs.record(rec));
        } else {
            // After a read error the bytes since the last complete record are not a record:
            // they are reported by the caller (from `offset`), or re-read on redelivery.
            if read_error.is_none() {
                framer.finish(|rec| recs.record(rec));
            }
            recs.close_open();
            eof = true;
        }
        if let Some(l) = live {
            Live::add(&l.bytes, n as u64);
            Live::add(&l.records, recs.summary.records - records_before);
        }
        report_rejected(&mut recs, dest.failures, live).await?;
        for (no, batch) in std::mem::take(&mut recs.closed) {
            while in_flight.len() >= config.concurrency.max(1) {
                let Some(done) = in_flight.next().await else {
                    break;
                };
                settle(done, &mut recs.summary, &mut recs.mark, dest.failures, live).await?;
                settled_since_save += 1;
                if settled_since_save >= config.checkpoint_every.max(1) {
                    settled_since_save = 0;
                    save(progress, resume, &recs.mark, &mut recs.summary, false).await;
                }
            }
            if must_stop(config) {
                // The batches not started stay unsettled: the checkpoint stops before them.
                out_of_time = true;
                break;
            }
            in_flight.push(send(dest.sink, dest.limiter, config, no, batch));
        }
    }
    while let Some(done) = in_flight.next().await {
        settle(done, &mut recs.summary, &mut recs.mark, dest.failures, live).await?;
    }
    let Records {
        mut summary, mark, ..
    } = recs;
    if out_of_time {
        save(progress, resume, &mark, &mut summary, false).await;
        return Err(LoadError::OutOfTime {
            offset: mark.offset(),
            summary: Box::new(summary),
        });
    }
    if let Some(e) = read_error {
        // Not complete: a redelivery reads the object again (the checkpoint skips what is done).
        save(progress, resume, &mark, &mut summary, false).await;
        return Err(LoadError::Read {
            key: source.key.clone(),
            source: e,
            offset: mark.framed_end,
            summary: Box::new(summary),
        });
    }
    save(progress, resume, &mark, &mut summary, true).await;
    if let Some(l) = live {
        Live::add(&l.objects, 1);
    }
    Ok(summary)
}

async fn save<P: Progress>(
    progress: &P,
    resume: &Checkpoint,
    mark: &Watermark,
    summary: &mut Summary,
    complete: bool,
) {
    let checkpoint = Checkpoint {
        offset: mark.offset(),
        complete,
        accepted: resume.accepted + summary.accepted,
        failed: resume.failed + summary.failed,
    };
    if let Err(e) = progress.save(&checkpoint).await {
        tracing::warn!(
            error = %crate::error_chain(&e),
            offset = checkpoint.offset,
            "checkpoint not saved; the load goes on (a redelivery re-sends more)"
        );
        summary.checkpoint_errors += 1;
    }
}

async fn settle<F: FailureSink>(
    (no, sent): Settled,
    summary: &mut Summary,
    mark: &mut Watermark,
    failures: &F,
    live: Option<&Live>,
) -> Result<(), LoadError> {
    summary.accepted += sent.accepted.len() as u64;
    summary.calls += u64::from(sent.calls);
    summary.retried += u64::from(sent.retried);
    summary.throttled += u64::from(sent.throttled);
    if let Some(oldest) = sent.accepted.iter().map(|t| t.event_time).min() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let lag = u64::try_from(now.saturating_sub(oldest)).unwrap_or(0);
        summary.max_lag_seconds = summary.max_lag_seconds.max(lag);
    }
    if let Some(l) = live {
        Live::add(&l.accepted, sent.accepted.len() as u64);
        Live::add(&l.failed, sent.failed.len() as u64);
    }
    for f in sent.failed {
        summary.add_failure(&f.code);
        let message = FailureMessage::new(&f.code, &f.message, f.tag.at, f.attempts, &f.tag.raw);
        failures.send(message).await?;
    }
    // Only now, with its failures stored, is the batch accounted for.
    mark.pending.remove(&no);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{CheckpointStore, MemoryCheckpoints, ObjectProgress};
    use crate::notification::ObjectRef;
    use crate::sink::{CallError, OutEvent, PutResult};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Accepts everything after a short delay, remembering every id it was sent.
    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);

    impl EventSink for Recording {
        async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
            self.0.lock().unwrap().extend(ids.iter().cloned());
            Ok(PutResult {
                successful: ids,
                failed: Vec::new(),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_load_out_of_time_resumes_from_its_checkpoint_sending_nothing_twice() {
        let mut object = aztrail_transform::synth::generate(1000, 3).into_bytes();
        object.extend_from_slice(b"not json\n");
        object.extend_from_slice(aztrail_transform::synth::generate(50, 4).as_bytes());
        let sink = Arc::new(Recording::default());
        let limiter = Arc::new(RateLimiter::new(1000.0));
        let failures = MemoryFailures::default();
        let dest = Destination {
            sink: &sink,
            limiter: &limiter,
            failures: &failures,
        };
        let store = MemoryCheckpoints::default();
        let object_ref = ObjectRef {
            bucket: "b".into(),
            key: "k".into(),
            size: None,
            etag: Some("e".into()),
            sequencer: None,
            version_id: None,
            event_time: None,
        };
        let progress = ObjectProgress {
            store: &store,
            object: &object_ref,
        };
        let source = Source {
            bucket: Some("b".into()),
            key: "k".into(),
        };
        let mut resume = Checkpoint::default();
        let mut runs = 0;
        let mut skipped_total = 0;
        loop {
            runs += 1;
            let config = LoadConfig {
                concurrency: 2,
                checkpoint_every: 3,
                chunk_size: 16 * 1024,
                stop_at: Some(Instant::now() + Duration::from_millis(12)),
                ..LoadConfig::default()
            };
            match load(&source, &object[..], &resume, &dest, &progress, &config).await {
                Ok(s) => {
                    assert!(s.balanced(), "{s:?}");
                    skipped_total += s.skipped;
                    break;
                }
                Err(LoadError::OutOfTime { offset, summary }) => {
                    let saved = store.get(&object_ref).await.unwrap().unwrap();
                    assert_eq!(saved.offset, offset);
                    assert!(!saved.complete);
                    assert!(offset > resume.offset, "each run gets further");
                    skipped_total += summary.skipped;
                    resume = saved;
                }
                Err(e) => panic!("{e}"),
            }
            assert!(runs < 100);
        }
        assert!(runs > 2, "the deadline cut the load {runs} times");
        let sent = sink.0.lock().unwrap().clone();
        let distinct: std::collections::HashSet<_> = sent.iter().collect();
        assert_eq!(sent.len(), 1050, "every event sent once");
        assert_eq!(distinct.len(), 1050);
        assert_eq!(
            failures.0.lock().unwrap().len(),
            1,
            "the bad line reported once"
        );
        let last = store.get(&object_ref).await.unwrap().unwrap();
        assert!(last.complete);
        assert_eq!((last.accepted, last.failed), (1050, 1));
        assert!(skipped_total > 0);
    }
}
