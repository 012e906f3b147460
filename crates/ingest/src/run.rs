//! One ingest pass over the configured containers: discover the blobs of the window, claim the new
//! ranges in their day shards, copy them to the staging bucket, commit. Every request goes
//! through one [`Gate`], so a pass over thousands of roots keeps many requests in flight (32 by
//! default) and no more.
//!
//! Per container (see [`crate::checkpoint`] for the documents):
//! 1. The roots: a directory walk, level by level, kept in `roots.json` for
//!    `rediscover_seconds` (when it is walked again, day shards older than the window are
//!    deleted). A container still in the one-document form is carried over first
//!    ([`crate::migrate`]).
//! 2. List the day directories of the window under every root, many at once (`--full-scan` lists
//!    the whole container).
//! 3. Group the blobs by day shard (root and day). A shard whose blobs were all last modified
//!    before the last pass's [`Mark`], and which that pass did not ask to revisit, has nothing
//!    new: it is not read.
//! 4. For each other shard, many at once: read it. A fresh claim by another run means that run is
//!    copying: leave it. For each blob the new range is `[committed, length)`; a blob replaced
//!    (created anew, or shorter than what was committed) starts again from 0 (a warning). With
//!    `settle`, a blob is taken only once its hour is over and its length did not change since
//!    the previous run. Claim the ranges (conditional write), copy each up to its last complete
//!    line (a partial last line waits) into `{prefix}{account}/{container}/{blob}.{start}-{end}`,
//!    conditional on absence, and commit (conditional on the claim). A copy that fails is
//!    counted, kept in the shard's retry list, and does not stop the others.
//! 5. Write the new mark: the pass's start, and the shards it did not finish.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aztrail_state::Write;
use futures::StreamExt;
use tracing::Instrument;

use crate::auth::AzureAuth;
use crate::azure::{AzureError, BlobInfo, Container};
use crate::checkpoint::{
    day_name, CheckpointError, CheckpointStore, Claim, Keys, Mark, PendingRange, Remembered, Roots,
    ShardCheckpoint, ShardId, StateIo, States, MARK_SKEW_SECONDS,
};
use crate::fanout::WorkShard;
use crate::gate::{Gate, DEFAULT_REQUESTS_IN_FLIGHT};
use crate::layout::{complete_prefix, day_prefixes, is_date_dir, root_of, staged_key};
use crate::source::{BlobSource, S3Staging, Staging};
use crate::stage::{SourceMeta, StageError, Staged, Stager};

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Containers to read (Activity Log, Entra ID, ...).
    pub containers: Vec<String>,
    /// The staging bucket.
    pub bucket: String,
    /// Key prefix of staged objects (the bucket notification's filter).
    pub staging_prefix: String,
    /// How far back to look, in seconds.
    pub lookback_seconds: i64,
    /// List the whole container instead of the window (a first backfill).
    pub full_scan: bool,
    /// Copy an hour's blob only once it stopped growing.
    pub settle: bool,
    /// With `settle`, how long after its hour a blob may still grow, in seconds.
    pub settle_grace_seconds: i64,
    /// How long a claim holds before another run may take it over, in seconds.
    pub claim_lease_seconds: i64,
    /// How long the walked roots are trusted, in seconds.
    pub rediscover_seconds: i64,
    /// Bytes per S3 part.
    pub part_size: usize,
    /// Requests in flight at once (listing, state, copies), for the whole pass.
    pub requests_in_flight: usize,
    /// How far Azure's clock may be behind ours, in seconds (see [`Mark`]).
    pub mark_skew_seconds: i64,
    /// This run's id (in claims).
    pub run_id: String,
    /// Stop after copying, before committing, as if the process died there (crash tests).
    pub stop_before_commit: bool,
    /// Counters for a progress display.
    pub live: Option<Arc<IngestLive>>,
    /// Documents kept between the passes of a process (shared by clones of this config).
    pub remembered: Arc<Remembered>,
    /// Asked to stop (SIGTERM, Ctrl-C, a deadline): the copies under way are finished, the ranges
    /// finished are committed and the claims released, so the next run need not wait out the
    /// lease.
    pub stop: aztrail_state::Stop,
}

/// Counters a progress display reads while a pass runs.
#[derive(Debug, Default)]
pub struct IngestLive {
    /// Azure list requests so far.
    pub list_calls: Arc<AtomicU64>,
    /// Blobs found so far.
    pub blobs: AtomicU64,
    /// Bytes staged so far.
    pub bytes: AtomicU64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            containers: vec!["insights-activity-logs".into()],
            bucket: String::new(),
            staging_prefix: "staged/".into(),
            lookback_seconds: 48 * 3600,
            full_scan: false,
            settle: false,
            settle_grace_seconds: 15 * 60,
            claim_lease_seconds: 15 * 60,
            rediscover_seconds: 6 * 3600,
            part_size: 8 * 1024 * 1024,
            requests_in_flight: DEFAULT_REQUESTS_IN_FLIGHT,
            mark_skew_seconds: MARK_SKEW_SECONDS,
            run_id: "run".into(),
            stop_before_commit: false,
            live: None,
            remembered: Arc::default(),
            stop: aztrail_state::Stop::default(),
        }
    }
}

impl IngestConfig {
    /// Whether a stop was asked for.
    pub fn stopping(&self) -> bool {
        self.stop.is_set()
    }
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestSummary {
    /// Containers processed.
    pub containers: u64,
    /// Blobs seen in the window.
    pub blobs_seen: u64,
    /// Bytes staged (new bytes copied).
    pub new_bytes: u64,
    /// Staged objects created.
    pub objects_written: u64,
    /// Staged objects that already existed (a retried copy after a crash).
    pub objects_existing: u64,
    /// Blobs with nothing new (or only a partial line), or not settled yet.
    pub skipped: u64,
    /// Blobs that shrank or were replaced, copied again from 0.
    pub replaced: u64,
    /// Containers skipped because another run held or won the checkpoint.
    pub contended: u64,
    /// Azure list requests made.
    pub list_calls: u64,
    /// Entries of a local source that were not read (names that are not UTF-8, links that
    /// leave the source directory), each also in `warnings`.
    pub refused: u64,
    /// Day shards read (the others had nothing new since the last pass).
    pub shards_read: u64,
    /// Day shards or listings that failed (each also in `warnings`): the next pass retries them.
    pub failed: u64,
    /// State documents read and written, and their bytes.
    pub state_reads: u64,
    /// Bytes of state read.
    pub state_read_bytes: u64,
    /// State documents written.
    pub state_writes: u64,
    /// Bytes of state written.
    pub state_written_bytes: u64,
    /// Requests made (Azure and S3, each counted once).
    pub requests: u64,
    /// The most requests that were in flight at once.
    pub peak_in_flight: u64,
    /// Warnings (replaced blobs, taken-over claims, refused entries, failures).
    pub warnings: Vec<String>,
    /// The pass was asked to stop: what it finished is committed, the rest is left for the next.
    pub stopped: bool,
}

impl IngestSummary {
    /// Adds what another part of the pass (or another pass) did.
    pub fn add(&mut self, o: IngestSummary) {
        self.containers += o.containers;
        self.blobs_seen += o.blobs_seen;
        self.new_bytes += o.new_bytes;
        self.objects_written += o.objects_written;
        self.objects_existing += o.objects_existing;
        self.skipped += o.skipped;
        self.replaced += o.replaced;
        self.contended += o.contended;
        self.list_calls += o.list_calls;
        self.refused += o.refused;
        self.shards_read += o.shards_read;
        self.failed += o.failed;
        self.warnings.extend(o.warnings);
        self.stopped |= o.stopped;
    }
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Azure could not be read.
    #[error(transparent)]
    Azure(#[from] AzureError),
    /// The checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A staged object could not be written.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// A work shard names a container this worker does not read.
    #[error("the work shard names container {0:?}, which this worker does not read")]
    UnknownContainer(String),
}

/// Runs one pass at `now` (seconds since the epoch) over Azure and the S3 staging bucket.
pub async fn ingest(
    auth: &AzureAuth,
    s3: &aws_sdk_s3::Client,
    config: &IngestConfig,
    now: i64,
) -> Result<IngestSummary, IngestError> {
    let list_calls = config.live.as_ref().map_or_else(
        || Arc::new(AtomicU64::new(0)),
        |l| Arc::clone(&l.list_calls),
    );
    let before = list_calls.load(Ordering::Relaxed);
    let containers = config
        .containers
        .iter()
        .map(|name| Container::new(auth, name, now, 3600, Arc::clone(&list_calls)))
        .collect::<Result<Vec<_>, _>>()?;
    let staging = s3_staging(s3, config);
    let mut summary = ingest_with(&containers, &staging, &auth.account_name(), config, now).await?;
    summary.list_calls = list_calls.load(Ordering::Relaxed) - before;
    Ok(summary)
}

/// Runs one pass at `now` over `sources` (the containers of storage account `account`) into
/// `staging`.
pub async fn ingest_with<B: BlobSource, T: Staging>(
    sources: &[B],
    staging: &T,
    account: &str,
    config: &IngestConfig,
    now: i64,
) -> Result<IngestSummary, IngestError> {
    let all: Vec<(&B, Option<&WorkShard>)> = sources.iter().map(|s| (s, None)).collect();
    passes(&all, staging, account, config, now).await
}

/// Runs one pass at `now` over the roots of `work` only (a fan-out worker's message), in the
/// container of `sources` it names.
pub async fn ingest_work_with<B: BlobSource, T: Staging>(
    sources: &[B],
    staging: &T,
    account: &str,
    config: &IngestConfig,
    now: i64,
    work: &WorkShard,
) -> Result<IngestSummary, IngestError> {
    let Some(source) = sources.iter().find(|s| s.name() == work.container) else {
        return Err(IngestError::UnknownContainer(work.container.clone()));
    };
    passes(&[(source, Some(work))], staging, account, config, now).await
}

/// Runs one pass at `now` over the roots of `work` in Azure.
pub async fn ingest_work(
    auth: &AzureAuth,
    s3: &aws_sdk_s3::Client,
    config: &IngestConfig,
    now: i64,
    work: &WorkShard,
) -> Result<IngestSummary, IngestError> {
    let list_calls = Arc::new(AtomicU64::new(0));
    let container = Container::new(auth, &work.container, now, 3600, Arc::clone(&list_calls))?;
    let staging = s3_staging(s3, config);
    let mut summary = ingest_work_with(
        std::slice::from_ref(&container),
        &staging,
        &auth.account_name(),
        config,
        now,
        work,
    )
    .await?;
    summary.list_calls = list_calls.load(Ordering::Relaxed);
    Ok(summary)
}

/// The roots of `source`'s container (walked again when `roots.json` is older than
/// `rediscover_seconds`, a one-document checkpoint carried over first): what a fan-out scheduler
/// splits into work shards. `None`: an earlier version's run is copying (a warning in `summary`).
pub async fn find_roots_with<B: BlobSource, T: Staging>(
    source: &B,
    staging: &T,
    account: &str,
    config: &IngestConfig,
    now: i64,
    summary: &mut IngestSummary,
) -> Result<Option<Vec<String>>, IngestError> {
    let gate = Gate::new(config.requests_in_flight);
    let io = StateIo::default();
    let pass = Pass {
        container: source,
        account,
        config,
        now,
        staging,
        state: States::new(staging, &io, &gate).remembering(&config.remembered),
        keys: Keys::new(account, source.name()),
        gate: &gate,
        work: None,
    };
    pass.roots(summary).await
}

/// The roots of `container` in Azure (see [`find_roots_with`]).
pub async fn find_roots(
    auth: &AzureAuth,
    s3: &aws_sdk_s3::Client,
    config: &IngestConfig,
    now: i64,
    container: &str,
    summary: &mut IngestSummary,
) -> Result<Option<Vec<String>>, IngestError> {
    let list_calls = Arc::new(AtomicU64::new(0));
    let source = Container::new(auth, container, now, 3600, Arc::clone(&list_calls))?;
    let staging = s3_staging(s3, config);
    let found = find_roots_with(
        &source,
        &staging,
        &auth.account_name(),
        config,
        now,
        summary,
    )
    .await;
    summary.list_calls += list_calls.load(Ordering::Relaxed);
    found
}

/// What a fan-out sent for one container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FannedOut {
    /// The container.
    pub container: String,
    /// Its roots.
    pub roots: u64,
    /// Work shards sent.
    pub messages: u64,
    /// Azure list requests made finding the roots.
    pub list_calls: u64,
    /// Why it was skipped (an earlier version's run is copying), or other warnings.
    pub warnings: Vec<String>,
}

/// Why a fan-out failed.
#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    /// The roots could not be found.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The work shards could not be sent.
    #[error(transparent)]
    Queue(#[from] crate::fanout::WorkQueueError),
}

/// The fan-out scheduler's pass: each container's roots, split into `shards` work shards, onto
/// `queue` (for `aztrail ingest --fan-out-to` and the ingest Lambda's scheduled invocation).
pub async fn fan_out(
    auth: &AzureAuth,
    s3: &aws_sdk_s3::Client,
    config: &IngestConfig,
    queue: &crate::fanout::WorkQueue,
    shards: usize,
    now: i64,
) -> Result<Vec<FannedOut>, FanOutError> {
    let mut out = Vec::new();
    for container in &config.containers {
        let mut summary = IngestSummary::default();
        let roots = find_roots(auth, s3, config, now, container, &mut summary).await?;
        for w in &summary.warnings {
            tracing::warn!(warning = %w, "ingest");
        }
        let (roots, messages) = match roots {
            Some(roots) => {
                let work = crate::fanout::partition(container, &roots, shards);
                (roots.len() as u64, queue.send(&work).await?)
            }
            None => (0, 0),
        };
        out.push(FannedOut {
            container: container.clone(),
            roots,
            messages,
            list_calls: summary.list_calls,
            warnings: summary.warnings,
        });
    }
    Ok(out)
}

fn s3_staging(s3: &aws_sdk_s3::Client, config: &IngestConfig) -> S3Staging {
    S3Staging {
        checkpoints: CheckpointStore {
            s3: s3.clone(),
            bucket: config.bucket.clone(),
        },
        stager: Stager {
            s3: s3.clone(),
            bucket: config.bucket.clone(),
            part_size: config.part_size,
        },
    }
}

async fn passes<B: BlobSource, T: Staging>(
    sources: &[(&B, Option<&WorkShard>)],
    staging: &T,
    account: &str,
    config: &IngestConfig,
    now: i64,
) -> Result<IngestSummary, IngestError> {
    let gate = Gate::new(config.requests_in_flight);
    let io = StateIo::default();
    let mut summary = IngestSummary::default();
    for &(container, work) in sources {
        if config.stopping() {
            summary.stopped = true;
            break;
        }
        let name = container.name();
        let pass = Pass {
            container,
            account,
            config,
            now,
            staging,
            state: States::new(staging, &io, &gate).remembering(&config.remembered),
            keys: Keys::new(account, name),
            gate: &gate,
            work,
        };
        let span = tracing::info_span!("container", name);
        let passed = pass.run().instrument(span).await;
        let part = match passed {
            Ok(part) => IngestSummary {
                containers: 1,
                ..part
            },
            Err(IngestError::Checkpoint(CheckpointError::Conflict { .. })) => IngestSummary {
                contended: 1,
                warnings: vec![format!(
                    "{name}: another run wrote its state first; skipped"
                )],
                ..IngestSummary::default()
            },
            Err(e) => return Err(e),
        };
        for w in &part.warnings {
            tracing::warn!(warning = %w, "ingest");
        }
        summary.add(part);
    }
    summary.state_reads = io.reads.load(Ordering::Relaxed);
    summary.state_read_bytes = io.read_bytes.load(Ordering::Relaxed);
    summary.state_writes = io.writes.load(Ordering::Relaxed);
    summary.state_written_bytes = io.written_bytes.load(Ordering::Relaxed);
    summary.requests = gate.total();
    summary.peak_in_flight = gate.peak();
    Ok(summary)
}

/// The scope of the mark of a pass over a whole container.
const WHOLE_CONTAINER: &str = "all";

struct Pass<'a, B, T> {
    container: &'a B,
    account: &'a str,
    config: &'a IngestConfig,
    now: i64,
    staging: &'a T,
    state: States<'a, T>,
    keys: Keys,
    gate: &'a Gate,
    /// A fan-out worker's roots (otherwise the container's).
    work: Option<&'a WorkShard>,
}

/// What became of one day shard.
struct ShardDone {
    id: String,
    summary: IngestSummary,
    /// The next pass must read it whatever its blobs' times.
    revisit: bool,
}

/// What became of one range.
enum Copied {
    /// Staged up to `end` (`created`: by this copy; otherwise it existed).
    Done { end: u64, created: bool },
    /// Not started: the pass was asked to stop.
    NotStarted,
}

impl<B: BlobSource, T: Staging> Pass<'_, B, T> {
    async fn run(&self) -> Result<IngestSummary, IngestError> {
        let mut summary = IngestSummary::default();
        let roots = match self.work {
            Some(work) => Some(work.roots.clone()),
            None if self.config.full_scan => None,
            None => match self.roots(&mut summary).await? {
                Some(roots) => Some(roots),
                None => return Ok(summary),
            },
        };
        let mark_key = self
            .keys
            .mark(self.work.map_or(WHOLE_CONTAINER, |w| w.scope.as_str()));
        let mark = self.state.get::<Mark>(&mark_key).await?;
        let (blobs, unlisted) = self.discover(roots.as_deref()).await?;
        summary.failed += unlisted.len() as u64;
        summary.warnings.extend(unlisted.values().cloned());
        let unlisted: BTreeSet<String> = unlisted.into_keys().collect();
        let refused = self.container.take_warnings();
        summary.refused += refused.len() as u64;
        summary.warnings.extend(refused);
        summary.blobs_seen += blobs.len() as u64;
        if let Some(l) = &self.config.live {
            l.blobs.fetch_add(blobs.len() as u64, Ordering::Relaxed);
        }
        let mut shards: BTreeMap<ShardId, Vec<BlobInfo>> = BTreeMap::new();
        for blob in blobs {
            shards
                .entry(ShardId::of(&blob.name))
                .or_default()
                .push(blob);
        }
        let quiet = |id: &ShardId, blobs: &[BlobInfo]| match &mark {
            Some((m, _)) if !self.config.full_scan => {
                !m.revisit.contains(&id.id())
                    && blobs
                        .iter()
                        .all(|b| b.modified.is_some_and(|t| t < m.before))
            }
            _ => false,
        };
        let mut work = Vec::new();
        for (id, blobs) in shards {
            if quiet(&id, &blobs) {
                summary.skipped += blobs.len() as u64;
            } else {
                work.push((id, blobs));
            }
        }
        let done: Vec<ShardDone> = futures::stream::iter(work)
            .map(|(id, blobs)| self.shard(id, blobs))
            .buffer_unordered(self.config.requests_in_flight.max(1))
            .collect()
            .await;
        let mut revisit: BTreeSet<String> = unlisted;
        for d in done {
            if d.revisit {
                revisit.insert(d.id);
            }
            summary.add(d.summary);
        }
        if !self.config.stop_before_commit {
            self.advance_mark(&mark_key, mark, revisit, &mut summary)
                .await?;
        }
        Ok(summary)
    }

    /// The container's roots: from `roots.json` while it is fresh, else walked again (and kept);
    /// a one-document checkpoint is carried over first. `None`: an earlier version's run is
    /// copying (a warning in `summary`).
    async fn roots(&self, summary: &mut IngestSummary) -> Result<Option<Vec<String>>, IngestError> {
        let name = self.container.name();
        let mut roots = self
            .state
            .get_remembered::<Roots>(&self.keys.roots())
            .await?;
        if roots.is_none() {
            match crate::migrate::carry_over(
                &self.state,
                &self.keys,
                &self.config.run_id,
                self.now,
                self.config.claim_lease_seconds,
            )
            .await?
            {
                crate::migrate::Carried::Nothing => {}
                crate::migrate::Carried::Roots(r, etag) => {
                    summary.warnings.push(format!(
                        "{name}: carried the one-document checkpoint over to day shards"
                    ));
                    roots = Some((r, etag));
                }
                crate::migrate::Carried::Busy(why) => {
                    summary.contended += 1;
                    summary.warnings.push(format!("{name}: {why}; skipped"));
                    return Ok(None);
                }
            }
        }
        Ok(Some(match roots {
            Some((r, _)) if self.now - r.at < self.config.rediscover_seconds => r.roots,
            read => self.rediscover(read.map(|(_, etag)| etag)).await?,
        }))
    }

    /// Writes the mark of this pass; if another pass wrote one meanwhile, the two are merged
    /// (the earlier time, both sets of shards to revisit), which never skips what either left.
    async fn advance_mark(
        &self,
        key: &str,
        mut read: Option<(Mark, String)>,
        revisit: BTreeSet<String>,
        summary: &mut IngestSummary,
    ) -> Result<(), IngestError> {
        let mut mark = Mark {
            pass_at: self.now,
            before: self.now - self.config.mark_skew_seconds,
            revisit,
        };
        for _ in 0..4 {
            let write = replacing(read.as_ref().map(|(_, etag)| etag.as_str()));
            match self.state.put(key, &mark, write).await {
                Ok(_) => return Ok(()),
                Err(CheckpointError::Conflict { .. }) => {
                    read = self.state.get::<Mark>(key).await?;
                    if let Some((theirs, _)) = &read {
                        mark.before = mark.before.min(theirs.before);
                        mark.revisit.extend(theirs.revisit.iter().cloned());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        summary.warnings.push(format!(
            "{}: other passes kept writing the mark; the next pass reads more shards",
            self.container.name()
        ));
        Ok(())
    }

    /// One day shard, with its failures kept in what it returns.
    async fn shard(&self, id: ShardId, blobs: Vec<BlobInfo>) -> ShardDone {
        let mut done = ShardDone {
            id: id.id(),
            summary: IngestSummary::default(),
            revisit: false,
        };
        if self.config.stopping() {
            done.summary.stopped = true;
            done.revisit = true;
            return done;
        }
        done.summary.shards_read = 1;
        if let Err(e) = self.shard_pass(&id, &blobs, &mut done).await {
            done.revisit = true;
            let name = self.container.name();
            if let IngestError::Checkpoint(CheckpointError::Conflict { .. }) = e {
                done.summary.contended += 1;
                done.summary.warnings.push(format!(
                    "{name}/{}y=… {}: another run wrote the shard first; left to it",
                    id.root, id.day
                ));
            } else {
                done.summary.failed += 1;
                done.summary.warnings.push(format!(
                    "{name}/{}y=… {}: {}",
                    id.root,
                    id.day,
                    aztrail_state::error_chain(&e)
                ));
            }
        }
        done
    }

    async fn shard_pass(
        &self,
        id: &ShardId,
        blobs: &[BlobInfo],
        done: &mut ShardDone,
    ) -> Result<(), IngestError> {
        let name = self.container.name();
        let key = self.keys.shard(id);
        let (mut cp, mut etag) = match self.state.get::<ShardCheckpoint>(&key).await? {
            Some((cp, etag)) => (cp, Some(etag)),
            None => (ShardCheckpoint::empty(id), None),
        };
        let read = cp.clone();
        let summary = &mut done.summary;
        let mut pending: Vec<PendingRange> = Vec::new();
        if let Some(claim) = &cp.claim {
            if claim.run_id != self.config.run_id
                && self.now - claim.at < self.config.claim_lease_seconds
            {
                summary.contended += 1;
                summary.warnings.push(format!(
                    "{name}/{}y=… {}: run {} is copying (claimed {} s ago); left to it",
                    id.root,
                    id.day,
                    claim.run_id,
                    self.now - claim.at
                ));
                done.revisit = true;
                return Ok(());
            }
            summary.warnings.push(format!(
                "{name}/{}y=… {}: resuming {} range(s) claimed by run {} that did not commit",
                id.root,
                id.day,
                claim.ranges.len(),
                claim.run_id
            ));
            pending.clone_from(&claim.ranges);
        }
        for r in std::mem::take(&mut cp.retry) {
            if !pending.iter().any(|p| p.blob == r.blob) {
                pending.push(r);
            }
        }
        for blob in blobs {
            let planned = self.plan(blob, &mut cp, summary);
            if planned.replaced {
                // The bytes a claim or a retry named are gone with the blob they were in.
                pending.retain(|p| p.blob != blob.name);
            }
            if planned.waiting {
                done.revisit = true;
            }
            if pending.iter().any(|p| p.blob == blob.name) {
                continue;
            }
            match planned.range {
                Some(range) => pending.push(range),
                None => summary.skipped += 1,
            }
        }
        if pending.is_empty() {
            cp.claim = None;
            if cp != read {
                self.state
                    .put(&key, &cp, replacing(etag.as_deref()))
                    .await?;
            }
            return Ok(());
        }
        // Claim, so that no other run copies these ranges.
        cp.claim = Some(Claim {
            run_id: self.config.run_id.clone(),
            at: self.now,
            ranges: pending.clone(),
        });
        etag = Some(
            self.state
                .put(&key, &cp, replacing(etag.as_deref()))
                .await?,
        );
        let copies: Vec<(PendingRange, Result<Copied, IngestError>)> =
            futures::stream::iter(pending)
                .map(|range| async move {
                    let copied = self.copy(&range).await;
                    (range, copied)
                })
                .buffer_unordered(self.config.requests_in_flight.max(1))
                .collect()
                .await;
        for (range, copied) in copies {
            match copied {
                Ok(Copied::Done { end, created }) => {
                    let state = cp.blobs.entry(range.blob.clone()).or_default();
                    state.committed = state.committed.max(end);
                    if end == range.start {
                        summary.skipped += 1;
                    } else if created {
                        summary.objects_written += 1;
                        summary.new_bytes += end - range.start;
                    } else {
                        summary.objects_existing += 1;
                    }
                }
                Ok(Copied::NotStarted) => {
                    summary.stopped = true;
                    done.revisit = true;
                }
                Err(e) => {
                    summary.failed += 1;
                    summary.warnings.push(format!(
                        "{name}/{} [{}, {}): {}; copied again by the next pass",
                        range.blob,
                        range.start,
                        range.limit,
                        aztrail_state::error_chain(&e)
                    ));
                    done.revisit = true;
                    cp.retry.push(range);
                }
            }
        }
        if self.config.stop_before_commit {
            return Ok(());
        }
        cp.claim = None;
        self.state
            .put(&key, &cp, replacing(etag.as_deref()))
            .await?;
        Ok(())
    }

    /// What to copy of `blob` (the range from what was committed to its length, when it grew
    /// and, with `settle`, its hour is over), updating its state in `cp`: a blob replaced since
    /// (created anew, or shorter than what was copied) starts over from 0, with a warning.
    fn plan(
        &self,
        blob: &BlobInfo,
        cp: &mut ShardCheckpoint,
        summary: &mut IngestSummary,
    ) -> Planned {
        let name = self.container.name();
        let state = cp.blobs.entry(blob.name.clone()).or_default();
        let recreated = match (&state.created, &blob.created) {
            (Some(was), Some(now)) if was != now => Some(format!(
                "created {now}, was {was}: replaced, copying again from 0"
            )),
            _ => None,
        };
        let why = recreated.or_else(|| {
            (blob.length < state.committed).then(|| {
                format!(
                    "{} bytes, {} were copied: replaced, copying again from 0",
                    blob.length, state.committed
                )
            })
        });
        let replaced = why.is_some();
        if let Some(why) = why {
            summary.replaced += 1;
            summary
                .warnings
                .push(format!("{name}/{}: {why}", blob.name));
            state.committed = 0;
            state.seen_length = 0;
            state.generation += 1;
        }
        if blob.created.is_some() {
            state.created.clone_from(&blob.created);
        }
        if blob.length != state.seen_length {
            state.changed_at = self.now;
        }
        let grown = blob.length > state.committed;
        let settled = !self.config.settle
            || (blob.length == state.seen_length
                && aztrail_transform::time::blob_path_hour(&blob.name)
                    .is_none_or(|h| self.now >= h.0 + 3600 + self.config.settle_grace_seconds));
        state.seen_length = blob.length;
        state.etag.clone_from(&blob.etag);
        Planned {
            range: (grown && settled).then(|| PendingRange {
                blob: blob.name.clone(),
                etag: blob.etag.clone(),
                last_modified: blob.last_modified.clone(),
                start: state.committed,
                limit: blob.length,
                generation: state.generation,
            }),
            replaced,
            waiting: grown && !settled,
        }
    }

    /// The blobs of the window under `roots` (`None`: of the whole container), and the day shards
    /// whose listing failed (to revisit), each with its warning. Fails only when every listing
    /// failed.
    async fn discover(
        &self,
        roots: Option<&[String]>,
    ) -> Result<(Vec<BlobInfo>, BTreeMap<String, String>), IngestError> {
        let is_log = |b: &BlobInfo| b.name.ends_with(".json");
        let Some(roots) = roots else {
            let all = self.gate.run(self.container.list("")).await?;
            return Ok((all.into_iter().filter(is_log).collect(), BTreeMap::new()));
        };
        let from = self.now - self.config.lookback_seconds;
        let prefixes: Vec<(&str, String)> = roots
            .iter()
            .flat_map(|root| {
                day_prefixes(root, from, self.now)
                    .into_iter()
                    .map(move |p| (root.as_str(), p))
            })
            .collect();
        let total = prefixes.len();
        let listed: Vec<_> = futures::stream::iter(prefixes)
            .map(|(root, prefix)| async move {
                let got = self.gate.run(self.container.list(&prefix)).await;
                (root, prefix, got)
            })
            .buffer_unordered(self.config.requests_in_flight.max(1))
            .collect()
            .await;
        let mut out = Vec::new();
        let mut unlisted = BTreeMap::new();
        let mut first_error = None;
        for (root, prefix, got) in listed {
            match got {
                Ok(blobs) => out.extend(blobs.into_iter().filter(|b| {
                    let in_window = aztrail_transform::time::blob_path_hour(&b.name)
                        .is_none_or(|h| h.0 + 3600 > from);
                    is_log(b) && in_window && root_of(&b.name) == Some(root)
                })),
                Err(e) => {
                    let id = ShardId::of(&format!("{prefix}h=00/m=00/PT1H.json"));
                    unlisted.insert(
                        id.id(),
                        format!(
                            "{}: {}; listed again by the next pass",
                            self.container.name(),
                            aztrail_state::error_chain(&e)
                        ),
                    );
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            if unlisted.len() == total {
                return Err(e.into());
            }
        }
        Ok((out, unlisted))
    }

    /// Walks the roots again, keeps them, and deletes the day shards older than the window.
    async fn rediscover(&self, etag: Option<String>) -> Result<Vec<String>, IngestError> {
        let roots = self.walk_roots().await?;
        let doc = Roots {
            roots: roots.clone(),
            at: self.now,
        };
        let write = replacing(etag.as_deref());
        match self.state.put(&self.keys.roots(), &doc, write).await {
            // Another run walked them at the same time: its roots are as good.
            Ok(_) | Err(CheckpointError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let first_day = day_name(self.now - self.config.lookback_seconds);
        let gone = self
            .gate
            .run(self.staging.prune_days(&self.keys.days(), &first_day))
            .await?;
        if gone > 0 {
            tracing::info!(
                container = self.container.name(),
                shards = gone,
                before = first_day,
                "deleted the day shards older than the window"
            );
        }
        Ok(roots)
    }

    /// The roots: directories whose children are date directories (`y=`), found by walking the
    /// hierarchy with a delimiter from the top, one level at a time, each level's directories
    /// listed at once.
    async fn walk_roots(&self) -> Result<Vec<String>, IngestError> {
        let mut roots = Vec::new();
        let mut level = vec![String::new()];
        while !level.is_empty() {
            let listed: Vec<_> = futures::stream::iter(std::mem::take(&mut level))
                .map(|dir| async move {
                    let children = self.gate.run(self.container.list_dirs(&dir)).await;
                    (dir, children)
                })
                .buffer_unordered(self.config.requests_in_flight.max(1))
                .collect()
                .await;
            for (dir, children) in listed {
                let children = children?;
                if children.iter().any(|c| is_date_dir(c)) {
                    roots.push(dir);
                } else {
                    level.extend(children);
                }
            }
        }
        roots.sort();
        Ok(roots)
    }

    /// Copies `range` up to its last complete line.
    async fn copy(&self, range: &PendingRange) -> Result<Copied, IngestError> {
        if self.config.stopping() {
            return Ok(Copied::NotStarted);
        }
        let end = self.last_line_end(range).await?;
        if end <= range.start {
            return Ok(Copied::Done {
                end: range.start,
                created: false,
            });
        }
        let key = staged_key(
            &self.config.staging_prefix,
            self.account,
            self.container.name(),
            &range.blob,
            range.generation,
            range.start,
            end,
        );
        let meta = SourceMeta {
            etag: range.etag.clone(),
            range: format!("{}-{end}", range.start),
            last_modified: range.last_modified.clone(),
        };
        let staged = self
            .gate
            .run(async {
                let source = self
                    .container
                    .read_range(&range.blob, range.start, end)
                    .await?;
                Ok::<_, IngestError>(
                    self.staging
                        .write(&key, end - range.start, &meta, source)
                        .await?,
                )
            })
            .await?;
        let created = staged == Staged::Created;
        if created {
            if let Some(l) = &self.config.live {
                l.bytes.fetch_add(end - range.start, Ordering::Relaxed);
            }
        }
        Ok(Copied::Done { end, created })
    }

    /// The end of the last complete line in `[start, limit)`: read backwards from `limit` in
    /// growing windows until a line end is found (usually the last byte).
    async fn last_line_end(&self, range: &PendingRange) -> Result<u64, IngestError> {
        let mut window = 64 * 1024u64;
        let mut hi = range.limit;
        while hi > range.start {
            let lo = hi.saturating_sub(window).max(range.start);
            let bytes = self
                .gate
                .run(async {
                    let mut stream = self.container.read_range(&range.blob, lo, hi).await?;
                    let mut bytes = Vec::with_capacity((hi - lo) as usize);
                    while let Some(chunk) = stream.next().await {
                        bytes.extend_from_slice(&chunk?);
                    }
                    Ok::<_, AzureError>(bytes)
                })
                .await?;
            let n = complete_prefix(&bytes);
            if n > 0 {
                return Ok(lo + n as u64);
            }
            hi = lo;
            window = window.saturating_mul(4);
        }
        Ok(range.start)
    }
}

/// The condition of a write replacing the version `etag` read (`None`: nothing was there).
fn replacing(etag: Option<&str>) -> Write<'_> {
    etag.map_or(Write::IfAbsent, Write::IfMatch)
}

/// What [`Pass::plan`] decided for one blob.
struct Planned {
    /// The range to copy.
    range: Option<PendingRange>,
    /// The blob was replaced since it was last seen.
    replaced: bool,
    /// It grew, but waits for its hour to settle.
    waiting: bool,
}

/// The ingest function's metrics for one pass, as an embedded-metric-format line.
pub fn metrics_line(function: &str, s: &IngestSummary, timestamp_ms: u64) -> String {
    aztrail_emf::emf_line(
        aztrail_emf::NAMESPACE,
        ("Function", function),
        &[
            ("Containers", "Count", s.containers as f64),
            ("BlobsSeen", "Count", s.blobs_seen as f64),
            ("NewBytes", "Bytes", s.new_bytes as f64),
            ("ObjectsWritten", "Count", s.objects_written as f64),
            ("ObjectsExisting", "Count", s.objects_existing as f64),
            ("Skipped", "Count", s.skipped as f64),
            ("Replaced", "Count", s.replaced as f64),
            ("Contended", "Count", s.contended as f64),
            ("ListCalls", "Count", s.list_calls as f64),
            ("ShardsRead", "Count", s.shards_read as f64),
            ("FailedShards", "Count", s.failed as f64),
            ("StateBytesRead", "Bytes", s.state_read_bytes as f64),
            ("StateBytesWritten", "Bytes", s.state_written_bytes as f64),
            ("PeakInFlight", "Count", s.peak_in_flight as f64),
        ],
        timestamp_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standin::{Meter, SlowContainer, SlowStaging};
    use std::time::Duration;

    /// 2026-12-01T10:30:00Z.
    const T0: i64 = 1_796_121_000;
    const ACTIVITY: &str = "insights-activity-logs";

    fn blob(sub: usize, hours_ago: i64) -> String {
        let root = format!("resourceId=/SUBSCRIPTIONS/{sub:08}/");
        crate::layout::hour_blob(&root, T0 - hours_ago * 3600)
    }

    fn config(limit: usize) -> IngestConfig {
        IngestConfig {
            containers: vec![ACTIVITY.into()],
            requests_in_flight: limit,
            ..IngestConfig::default()
        }
    }

    async fn pass(
        c: &SlowContainer,
        s: &SlowStaging,
        config: &IngestConfig,
        now: i64,
    ) -> IngestSummary {
        ingest_with(std::slice::from_ref(c), s, "acct", config, now)
            .await
            .unwrap()
    }

    /// Every blob's staged objects, concatenated in offset order, equal the blob: each byte once.
    fn assert_each_byte_once(c: &SlowContainer, s: &SlowStaging, blobs: &[String]) {
        let objects = s.objects();
        for b in blobs {
            let mut ranges: Vec<(u64, u64, &Vec<u8>)> = objects
                .iter()
                .filter(|(k, _)| k.contains(b.as_str()))
                .map(|(k, v)| {
                    let (start, end) = crate::layout::range_of_key(k).unwrap();
                    (start, end, v)
                })
                .collect();
            ranges.sort();
            let mut at = 0;
            let mut joined = Vec::new();
            for (start, end, bytes) in ranges {
                assert_eq!(start, at, "{b}: no gap, no overlap");
                joined.extend_from_slice(bytes);
                at = end;
            }
            assert_eq!(joined, c.bytes(b), "{b}");
        }
    }

    #[tokio::test]
    async fn a_pass_keeps_many_requests_in_flight_and_reads_only_what_changed() {
        let meter = std::sync::Arc::new(Meter::default());
        let latency = Duration::from_millis(2);
        let c = SlowContainer::new(ACTIVITY, latency, meter.clone());
        let s = SlowStaging::new(latency, meter.clone());
        let mut blobs = Vec::new();
        for sub in 0..50 {
            for h in [1, 0] {
                let b = blob(sub, h);
                c.append(&b, b"{\"a\":1}\n", T0 - 3000);
                blobs.push(b);
            }
        }
        let s1 = pass(&c, &s, &config(16), T0).await;
        assert_eq!(
            (s1.objects_written, s1.shards_read, s1.failed),
            (100, 50, 0)
        );
        assert!(meter.peak() > 1 && meter.peak() <= 16, "{}", meter.peak());
        assert_eq!(s1.peak_in_flight, meter.peak());
        assert_each_byte_once(&c, &s, &blobs);

        // One blob grows: one shard is read and written (and the mark), a few hundred bytes.
        c.append(&blobs[7], b"{\"b\":2}\n", T0 + 60);
        let s2 = pass(&c, &s, &config(16), T0 + 600).await;
        assert_eq!(
            (s2.objects_written, s2.new_bytes, s2.shards_read),
            (1, 8, 1),
            "{s2:?}"
        );
        assert!(s2.state_read_bytes < 4096, "{s2:?}");
        assert!(s2.state_written_bytes < 4096, "{s2:?}");
        assert!(
            s.state_bytes() > 20 * s2.state_written_bytes,
            "the rest is not rewritten"
        );
        assert_each_byte_once(&c, &s, &blobs);

        // Nothing new: no shard is read.
        let s3 = pass(&c, &s, &config(16), T0 + 1200).await;
        assert_eq!(
            (s3.objects_written, s3.shards_read, s3.skipped),
            (0, 0, 100),
            "{s3:?}"
        );
        // A blob modified within the clock-skew allowance of the last pass is read again.
        c.append(&blobs[9], b"{\"c\":3}\n", T0 + 1190);
        let s4 = pass(&c, &s, &config(16), T0 + 1300).await;
        assert_eq!((s4.objects_written, s4.shards_read), (1, 1), "{s4:?}");
        assert_each_byte_once(&c, &s, &blobs);
    }

    #[tokio::test]
    async fn day_shards_out_of_the_window_are_deleted_when_the_roots_are_walked_again() {
        let meter = std::sync::Arc::new(Meter::default());
        let c = SlowContainer::new(ACTIVITY, Duration::ZERO, meter.clone());
        let s = SlowStaging::new(Duration::ZERO, meter);
        c.append(&blob(0, 0), b"{\"a\":1}\n", T0 - 60);
        pass(&c, &s, &config(4), T0).await;
        let old_day = crate::checkpoint::day_name(T0);
        let day_shard = |k: &String| k.contains(&format!("/days/{old_day}/"));
        assert_eq!(s.state_keys().iter().filter(|k| day_shard(k)).count(), 1);
        // Three days on (the roots are walked again after 6 hours), a blob of the new day: the
        // old day is out of the 48-hour window, and its shard goes.
        let later = T0 + 3 * 86_400;
        c.append(&blob(0, -3 * 24), b"{\"b\":2}\n", later - 60);
        let s2 = pass(&c, &s, &config(4), later).await;
        assert_eq!(s2.objects_written, 1, "{s2:?}");
        let keys = s.state_keys();
        assert!(!keys.iter().any(day_shard), "{keys:?}");
        let new_day = crate::checkpoint::day_name(later);
        assert!(
            keys.iter()
                .any(|k| k.contains(&format!("/days/{new_day}/"))),
            "{keys:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_copy_loses_no_other_progress_and_is_retried_as_claimed() {
        let meter = std::sync::Arc::new(Meter::default());
        let c = SlowContainer::new(ACTIVITY, Duration::ZERO, meter.clone());
        let blobs: Vec<String> = (0..2).map(|h| blob(0, h)).chain([blob(1, 0)]).collect();
        for b in &blobs {
            c.append(b, b"{\"a\":1}\n", T0 - 3000);
        }
        // Copies of the first blob fail until told otherwise.
        let fail = std::sync::atomic::AtomicBool::new(true);
        let failing = blobs[0].clone();
        let s = crate::standin::BeforeWrite {
            inner: SlowStaging::new(Duration::ZERO, meter),
            hook: |key: &str| {
                if key.contains(&failing) && fail.load(Ordering::SeqCst) {
                    return Err(StageError::S3 {
                        bucket: "staging".into(),
                        key: key.into(),
                        source: "SlowDown".into(),
                    });
                }
                Ok(())
            },
        };
        let s1 = ingest_with(std::slice::from_ref(&c), &s, "acct", &config(8), T0)
            .await
            .unwrap();
        assert_eq!((s1.objects_written, s1.failed), (2, 1), "{s1:?}");
        assert!(s1.warnings.iter().any(|w| w.contains("SlowDown")), "{s1:?}");
        // The blob grows meanwhile; the retry copies the range as claimed (the same key), and the
        // pass after it the rest.
        c.append(&blobs[0], b"{\"b\":2}\n", T0 + 10);
        fail.store(false, Ordering::SeqCst);
        let s2 = ingest_with(std::slice::from_ref(&c), &s, "acct", &config(8), T0 + 20)
            .await
            .unwrap();
        assert_eq!((s2.objects_written, s2.failed), (1, 0), "{s2:?}");
        assert!(s
            .inner
            .objects()
            .keys()
            .any(|k| k.ends_with("PT1H.json.0-8") && k.contains(&blobs[0])));
        let s3 = ingest_with(std::slice::from_ref(&c), &s, "acct", &config(8), T0 + 30)
            .await
            .unwrap();
        assert_eq!((s3.objects_written, s3.new_bytes), (1, 8), "{s3:?}");
        assert_each_byte_once(&c, &s.inner, &blobs);
    }
}
