//! One ingest pass over the configured containers: discover the blobs of the window, claim the new
//! ranges in the checkpoint, copy them to the staging bucket, commit.
//!
//! Per container:
//! 1. Read the checkpoint. A fresh claim by another run means that run is copying: stop.
//! 2. Find the roots (a directory walk, cached in the checkpoint for `rediscover_seconds`), then
//!    list only the day directories of the window under each root (`--full-scan` lists all).
//! 3. For each blob, the new range is `[committed, length)`; a blob shorter than what was
//!    committed was replaced and starts again from 0 (a warning). With `settle`, a blob is taken
//!    only once its hour is over and its length did not change since the previous run.
//! 4. Claim the ranges (conditional write); losing the race stops the container's pass.
//! 5. Copy each range up to its last complete line (a partial last line waits for the next run)
//!    into `{prefix}{account}/{container}/{blob}.{start}-{end}`, conditional on absence.
//! 6. Commit the new lengths and drop the claim (conditional on the claim), pruning entries older
//!    than the window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use tracing::Instrument;

use crate::auth::AzureAuth;
use crate::azure::{AzureError, BlobInfo, Container};
use crate::checkpoint::{
    checkpoint_key, CheckpointError, CheckpointStore, Claim, ContainerCheckpoint, PendingRange,
};
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
    /// This run's id (in claims).
    pub run_id: String,
    /// Stop after copying, before committing, as if the process died there (crash tests).
    pub stop_before_commit: bool,
    /// Counters for a progress display.
    pub live: Option<Arc<IngestLive>>,
    /// Asked to stop (SIGTERM, Ctrl-C): the range being copied is finished, the ranges finished
    /// are committed and the claim released, so the next run need not wait out the lease.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
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
            run_id: "run".into(),
            stop_before_commit: false,
            live: None,
            stop: None,
        }
    }
}

impl IngestConfig {
    /// Whether a stop was asked for.
    pub fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
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
    /// Warnings (replaced blobs, taken-over claims, refused entries).
    pub warnings: Vec<String>,
    /// The pass was asked to stop: what it finished is committed, the rest is left for the next.
    pub stopped: bool,
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
    let staging = S3Staging {
        checkpoints: CheckpointStore {
            s3: s3.clone(),
            bucket: config.bucket.clone(),
        },
        stager: Stager {
            s3: s3.clone(),
            bucket: config.bucket.clone(),
            part_size: config.part_size,
        },
    };
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
    let mut summary = IngestSummary::default();
    for container in sources {
        if config.stopping() {
            summary.stopped = true;
            break;
        }
        let name = container.name();
        let key = checkpoint_key(account, name);
        let pass = Pass {
            container,
            account,
            config,
            now,
            staging,
            key: &key,
        };
        let warned = summary.warnings.len();
        let span = tracing::info_span!("container", name);
        let passed = pass.run(&mut summary).instrument(span).await;
        match passed {
            Ok(()) => summary.containers += 1,
            Err(IngestError::Checkpoint(CheckpointError::Conflict { .. })) => {
                summary.contended += 1;
                summary.warnings.push(format!(
                    "{name}: another run wrote the checkpoint first; skipped"
                ));
            }
            Err(e) => return Err(e),
        }
        for w in &summary.warnings[warned..] {
            tracing::warn!(warning = %w, "ingest");
        }
    }
    Ok(summary)
}

struct Pass<'a, B, T> {
    container: &'a B,
    account: &'a str,
    config: &'a IngestConfig,
    now: i64,
    staging: &'a T,
    key: &'a str,
}

impl<B: BlobSource, T: Staging> Pass<'_, B, T> {
    async fn run(&self, summary: &mut IngestSummary) -> Result<(), IngestError> {
        let name = self.container.name();
        let (mut cp, mut etag) = self.staging.get_checkpoint(self.key).await?;
        let mut pending: Vec<PendingRange> = Vec::new();
        if let Some(claim) = &cp.claim {
            if claim.run_id != self.config.run_id
                && self.now - claim.at < self.config.claim_lease_seconds
            {
                summary.contended += 1;
                summary.warnings.push(format!(
                    "{name}: run {} is copying (claimed {} s ago); skipped",
                    claim.run_id,
                    self.now - claim.at
                ));
                return Ok(());
            }
            summary.warnings.push(format!(
                "{name}: resuming {} range(s) claimed by run {} that did not commit",
                claim.ranges.len(),
                claim.run_id
            ));
            pending.clone_from(&claim.ranges);
        }
        let blobs = self.discover(&mut cp).await?;
        let refused = self.container.take_warnings();
        summary.refused += refused.len() as u64;
        summary.warnings.extend(refused);
        summary.blobs_seen += blobs.len() as u64;
        if let Some(l) = &self.config.live {
            l.blobs.fetch_add(blobs.len() as u64, Ordering::Relaxed);
        }
        for blob in &blobs {
            if pending.iter().any(|p| p.blob == blob.name) {
                continue;
            }
            match self.plan(blob, &mut cp, summary) {
                Some(range) => pending.push(range),
                None => summary.skipped += 1,
            }
        }
        if pending.is_empty() {
            cp.claim = None;
            self.prune(&mut cp);
            self.staging
                .put_checkpoint(self.key, &cp, etag.as_deref())
                .await?;
            return Ok(());
        }
        // Claim, so that no other run copies these ranges.
        cp.claim = Some(Claim {
            run_id: self.config.run_id.clone(),
            at: self.now,
            ranges: pending.clone(),
        });
        etag = Some(
            self.staging
                .put_checkpoint(self.key, &cp, etag.as_deref())
                .await?,
        );
        for range in &pending {
            if self.config.stopping() {
                summary.stopped = true;
                break;
            }
            let end = self.copy(range, summary).await?;
            let state = cp.blobs.entry(range.blob.clone()).or_default();
            state.committed = state.committed.max(end);
            if end == range.start {
                summary.skipped += 1;
            }
        }
        if self.config.stop_before_commit {
            return Ok(());
        }
        cp.claim = None;
        self.prune(&mut cp);
        self.staging
            .put_checkpoint(self.key, &cp, etag.as_deref())
            .await?;
        Ok(())
    }

    /// Drops entries older than the window (not after a full scan, whose entries are the
    /// backfill's record until the next windowed run).
    fn prune(&self, cp: &mut ContainerCheckpoint) {
        if !self.config.full_scan {
            cp.prune(self.now - self.config.lookback_seconds);
        }
    }

    /// The blobs of the window (or of the whole container with `full_scan`).
    /// What to copy of `blob` (the range from what was committed to its length, when it grew
    /// and, with `settle`, its hour is over), updating its state in `cp`: a blob replaced since
    /// (created anew, or shorter than what was copied) starts over from 0, with a warning.
    fn plan(
        &self,
        blob: &BlobInfo,
        cp: &mut ContainerCheckpoint,
        summary: &mut IngestSummary,
    ) -> Option<PendingRange> {
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
        (grown && settled).then(|| PendingRange {
            blob: blob.name.clone(),
            etag: blob.etag.clone(),
            last_modified: blob.last_modified.clone(),
            start: state.committed,
            limit: blob.length,
            generation: state.generation,
        })
    }

    async fn discover(&self, cp: &mut ContainerCheckpoint) -> Result<Vec<BlobInfo>, IngestError> {
        let is_log = |b: &BlobInfo| b.name.ends_with(".json");
        if self.config.full_scan {
            let all = self.container.list("").await?;
            return Ok(all.into_iter().filter(is_log).collect());
        }
        if cp.roots.is_empty() || self.now - cp.roots_at >= self.config.rediscover_seconds {
            cp.roots = self.walk_roots().await?;
            cp.roots_at = self.now;
        }
        let from = self.now - self.config.lookback_seconds;
        let mut out = Vec::new();
        for root in &cp.roots {
            for prefix in day_prefixes(root, from, self.now) {
                for b in self.container.list(&prefix).await? {
                    let in_window = aztrail_transform::time::blob_path_hour(&b.name)
                        .is_none_or(|h| h.0 + 3600 > from);
                    if is_log(&b) && in_window && root_of(&b.name) == Some(root.as_str()) {
                        out.push(b);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The roots: directories whose children are date directories (`y=`), found by walking the
    /// hierarchy with a delimiter from the top.
    async fn walk_roots(&self) -> Result<Vec<String>, IngestError> {
        let mut roots = Vec::new();
        let mut queue = vec![String::new()];
        while let Some(dir) = queue.pop() {
            let children = self.container.list_dirs(&dir).await?;
            if children.iter().any(|c| is_date_dir(c)) {
                roots.push(dir);
                continue;
            }
            queue.extend(children);
        }
        roots.sort();
        Ok(roots)
    }

    /// Copies `range` up to its last complete line; returns the new committed length.
    async fn copy(
        &self,
        range: &PendingRange,
        summary: &mut IngestSummary,
    ) -> Result<u64, IngestError> {
        let end = self.last_line_end(range).await?;
        if end <= range.start {
            return Ok(range.start);
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
        let source = self
            .container
            .read_range(&range.blob, range.start, end)
            .await?;
        match self
            .staging
            .write(&key, end - range.start, &meta, source)
            .await?
        {
            Staged::Created => {
                summary.objects_written += 1;
                summary.new_bytes += end - range.start;
                if let Some(l) = &self.config.live {
                    l.bytes.fetch_add(end - range.start, Ordering::Relaxed);
                }
            }
            Staged::Existed => summary.objects_existing += 1,
        }
        Ok(end)
    }

    /// The end of the last complete line in `[start, limit)`: read backwards from `limit` in
    /// growing windows until a line end is found (usually the last byte).
    async fn last_line_end(&self, range: &PendingRange) -> Result<u64, IngestError> {
        let mut window = 64 * 1024u64;
        let mut hi = range.limit;
        while hi > range.start {
            let lo = hi.saturating_sub(window).max(range.start);
            let mut stream = self.container.read_range(&range.blob, lo, hi).await?;
            let mut bytes = Vec::with_capacity((hi - lo) as usize);
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk?);
            }
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
        ],
        timestamp_ms,
    )
}
