//! The Security Lake destination: staged objects into OCSF Parquet files, in batches.
//!
//! Security Lake wants a custom source's files no more often than every five minutes, so this
//! destination does not send events one call at a time: an [`OcsfBatch`] gathers the records of
//! many objects (up to a count of events, a size and an age: [`BatchLimits`]), spooling their
//! OCSF events to disk, then writes one Parquet file per (class, day) and puts it where its
//! class's custom source reads: `<location>/region=<region>/accountId=<account>/eventDay=<day>/`,
//! in S3 or in a local directory. Records the mapping rejects go to the failure sink, as for the
//! other destinations.
//!
//! Exactly once: the caller acknowledges an object only after [`OcsfBatch::flush`] returned, so
//! every record of it is in a written file or in the failure sink. A file's name is made of its
//! class, the batch (a hash of the objects and byte ranges it read) and its first and last
//! event's UID, so a batch written again after a crash replaces its files instead of adding
//! copies; a batch regrouped differently is a duplicate that `metadata.uid` recognises (the
//! README gives the query that drops it).
//!
//! Here: the batch, the layout of keys and where files go. Beside it, `queue`: the SQS worker
//! and the Lambda batch handler, which acknowledge messages only after their batch was written;
//! and `redrive`: the failure queue's records mapped again into a batch.

pub mod queue;
pub mod redrive;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aztrail_ocsf::{Class, OcsfMapper, Options};
use aztrail_securitylake::{partition_key, FileSettings, Spool, SpoolError, SpoolMark};
use aztrail_transform::framing::Framer;
use aztrail_transform::{Record, Source};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::failure::{FailureMessage, FailureSink, FailureSinkError, Location};

/// When a batch closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Events at most.
    pub max_events: u64,
    /// Bytes of records read at most.
    pub max_bytes: u64,
    /// Age at most, from the first object added.
    pub max_age: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_events: 2_000_000,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(300),
        }
    }
}

/// Where the files go and how their keys are made.
#[derive(Debug, Clone)]
pub struct LakeLayout {
    /// The location prefix of each class's custom source (`ext/azure_api_activity/1.0`).
    pub locations: BTreeMap<Class, String>,
    /// The `region=` partition value.
    pub region: String,
    /// The `accountId=` partition value.
    pub account: String,
}

impl LakeLayout {
    /// The default location of a class's custom source: `ext/aztrail_<class>/`.
    pub fn default_location(class: Class) -> String {
        format!("ext/aztrail_{}", class.slug())
    }

    /// A layout with the default locations, overridden by `CLASS=PREFIX` items.
    pub fn new(
        overrides: &[String],
        region: &str,
        account: &str,
    ) -> Result<LakeLayout, LayoutError> {
        let mut locations: BTreeMap<Class, String> = Class::ALL
            .into_iter()
            .map(|c| (c, Self::default_location(c)))
            .collect();
        for item in overrides.iter().flat_map(|s| s.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (class, prefix) = item
                .split_once('=')
                .ok_or_else(|| LayoutError::Location(item.to_string()))?;
            let class = Class::parse(class.trim())
                .ok_or_else(|| LayoutError::Location(item.to_string()))?;
            // Terraform outputs s3://bucket/prefix/: the key prefix is what follows the bucket.
            let prefix = prefix.trim();
            let prefix = match prefix.strip_prefix("s3://") {
                Some(rest) => rest.split_once('/').map_or("", |(_, p)| p),
                None => prefix,
            };
            locations.insert(class, prefix.trim_matches('/').to_string());
        }
        Ok(LakeLayout {
            locations,
            region: region.to_string(),
            account: account.to_string(),
        })
    }

    /// The key of a written file.
    pub fn key(&self, class: Class, day: u32, name: &str) -> String {
        let location = self
            .locations
            .get(&class)
            .cloned()
            .unwrap_or_else(|| Self::default_location(class));
        partition_key(&location, &self.region, &self.account, day, name)
    }
}

/// A layout setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Not `CLASS=PREFIX` with a known class.
    #[error(
        "--securitylake-location {0:?}: expected CLASS=PREFIX, CLASS one of api_activity, \
         authentication, account_change, entity_management"
    )]
    Location(String),
}

/// Where the files are put.
#[derive(Debug, Clone)]
pub enum Output {
    /// Under a local directory (the same tree as in the bucket).
    Dir(PathBuf),
    /// In an S3 bucket.
    S3 {
        /// The client.
        client: aws_sdk_s3::Client,
        /// The bucket (Security Lake's, or any).
        bucket: String,
    },
}

impl Output {
    /// Where a key ends up, for messages.
    pub fn describe(&self, key: &str) -> String {
        match self {
            Output::Dir(d) => d.join(key).display().to_string(),
            Output::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
        }
    }

    async fn put(&self, key: &str, file: &Path) -> Result<(), BatchError> {
        match self {
            Output::Dir(dir) => {
                let to = dir.join(key);
                let parent = to.parent().unwrap_or(dir);
                let put_err = |source| BatchError::Put {
                    to: to.display().to_string(),
                    source: Box::new(source),
                };
                tokio::fs::create_dir_all(parent).await.map_err(put_err)?;
                // Copied beside and renamed: a reader never sees half a file.
                let partial = to.with_extension("parquet.partial");
                tokio::fs::copy(file, &partial).await.map_err(put_err)?;
                tokio::fs::rename(&partial, &to).await.map_err(put_err)?;
                Ok(())
            }
            Output::S3 { client, bucket } => {
                let body = aws_sdk_s3::primitives::ByteStream::from_path(file)
                    .await
                    .map_err(|e| BatchError::Put {
                        to: format!("s3://{bucket}/{key}"),
                        source: Box::new(e),
                    })?;
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("application/vnd.apache.parquet")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| BatchError::Put {
                        to: format!("s3://{bucket}/{key}"),
                        source: Box::new(e),
                    })?;
                Ok(())
            }
        }
    }
}

/// Why a batch failed (its objects are then not acknowledged: they are read again).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Reading a staged object failed.
    #[error("reading {key}: {source}")]
    Read {
        /// The object.
        key: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The spool or a Parquet file could not be written.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A file could not be put where it goes.
    #[error("putting {to}: {}", crate::error_chain(source.as_ref()))]
    Put {
        /// Where.
        to: String,
        /// The cause.
        source: aztrail_state::BoxError,
    },
    /// A failure message could not be stored.
    #[error(transparent)]
    Failures(#[from] FailureSinkError),
}

/// What a flushed batch wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchSummary {
    /// Objects read.
    pub objects: u64,
    /// Records read.
    pub records: u64,
    /// Events written to files.
    pub events: u64,
    /// Records the mapping rejected (in the failure sink).
    pub rejected: u64,
    /// Bytes of records read.
    pub record_bytes: u64,
    /// Files written.
    pub files: u64,
    /// Bytes of Parquet written.
    pub file_bytes: u64,
    /// The keys written.
    pub keys: Vec<String>,
}

impl BatchSummary {
    /// Adds another batch's figures.
    pub fn add(&mut self, o: &BatchSummary) {
        self.objects += o.objects;
        self.records += o.records;
        self.events += o.events;
        self.rejected += o.rejected;
        self.record_bytes += o.record_bytes;
        self.files += o.files;
        self.file_bytes += o.file_bytes;
        self.keys.extend(o.keys.iter().cloned());
    }
}

/// Where a batch stood, to go back to when a message's objects cannot all be read.
#[derive(Debug, Clone)]
pub struct BatchMark {
    spool: SpoolMark,
    label: u64,
    summary: BatchSummary,
}

/// One batch being gathered.
pub struct OcsfBatch {
    mapper: OcsfMapper,
    spool: Spool,
    spool_parent: PathBuf,
    limits: BatchLimits,
    files: FileSettings,
    opened: Option<Instant>,
    /// The sum of an FNV-1a hash of each object read (its bucket, key and length): the batch's
    /// name, the same whatever order the same objects were read in.
    label: u64,
    summary: BatchSummary,
}

impl OcsfBatch {
    /// An empty batch spooling under `spool_parent`.
    pub fn new(
        spool_parent: &Path,
        limits: BatchLimits,
        files: FileSettings,
        options: Options,
    ) -> Result<OcsfBatch, BatchError> {
        Ok(OcsfBatch {
            mapper: OcsfMapper::new(options),
            spool: Spool::new(spool_parent)?,
            spool_parent: spool_parent.to_path_buf(),
            limits,
            files,
            opened: None,
            label: 0,
            summary: BatchSummary::default(),
        })
    }

    /// Whether the batch has reached a limit (and should be flushed before more is added).
    pub fn is_full(&self) -> bool {
        self.spool.events() >= self.limits.max_events
            || self.summary.record_bytes >= self.limits.max_bytes
            || self
                .opened
                .is_some_and(|t| t.elapsed() >= self.limits.max_age)
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.summary.objects == 0
    }

    /// Where the batch stands now.
    pub fn mark(&self) -> BatchMark {
        BatchMark {
            spool: self.spool.mark(),
            label: self.label,
            summary: self.summary.clone(),
        }
    }

    /// Forgets every object added since `mark`: its events are not written. (Its rejected
    /// records are already in the failure sink: they are sent again when the object is read
    /// again, as the same messages.)
    pub fn rollback(&mut self, mark: &BatchMark) {
        self.spool.rollback(&mark.spool);
        self.label = mark.label;
        self.summary = mark.summary.clone();
    }

    fn mix(&mut self, bytes: &[u8]) {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.label = self.label.wrapping_add(h);
    }

    /// Reads one staged object to its end: each record mapped and spooled, or sent to
    /// `failures` with the reason. If the object cannot be read to its end, none of its events
    /// is kept.
    pub async fn add<R: AsyncRead + Unpin, F: FailureSink>(
        &mut self,
        source: &Source,
        body: R,
        failures: &F,
    ) -> Result<(), BatchError> {
        let mark = self.mark();
        let result = self.add_unmarked(source, body, failures).await;
        if result.is_err() {
            self.rollback(&mark);
        }
        result
    }

    async fn add_unmarked<R: AsyncRead + Unpin, F: FailureSink>(
        &mut self,
        source: &Source,
        mut body: R,
        failures: &F,
    ) -> Result<(), BatchError> {
        self.opened.get_or_insert_with(Instant::now);
        self.mapper.set_source(source);
        let mut framer = Framer::new().with_digests();
        let mut buf = vec![0u8; 1 << 20];
        let mut rejected: Vec<FailureMessage> = Vec::new();
        let mut spool_error = None;
        let mut read = 0u64;
        loop {
            let n = body.read(&mut buf).await.map_err(|e| BatchError::Read {
                key: source.key.clone(),
                source: e,
            })?;
            let chunk = &buf[..n];
            read += n as u64;
            let mut emit = |rec: Record<'_>| {
                self.summary.records += 1;
                match self.mapper.map(rec) {
                    Ok(ev) => {
                        if spool_error.is_none() {
                            if let Err(e) = self.spool.push(&ev) {
                                spool_error = Some(e);
                            }
                        }
                    }
                    Err(why) => rejected.push(FailureMessage::new(
                        why.code(),
                        &why.to_string(),
                        Location {
                            bucket: source.bucket.clone(),
                            key: source.key.clone(),
                            offset: rec.offset,
                            length: rec.len(),
                        },
                        0,
                        rec.bytes,
                    )),
                }
            };
            if n == 0 {
                framer.finish(&mut emit);
            } else {
                framer.feed(chunk, &mut emit);
            }
            if let Some(e) = spool_error.take() {
                return Err(e.into());
            }
            for m in rejected.drain(..) {
                self.summary.rejected += 1;
                failures.send(m).await?;
            }
            if n == 0 {
                break;
            }
        }
        let label = format!(
            "{}/{}\n{read}\n",
            source.bucket.as_deref().unwrap_or(""),
            source.key
        );
        self.mix(label.as_bytes());
        self.summary.objects += 1;
        self.summary.record_bytes += read;
        Ok(())
    }

    /// Adds one event mapped elsewhere (a redriven record); `label` names where it came from, for
    /// the batch's name.
    pub fn add_event(
        &mut self,
        ev: &aztrail_ocsf::OcsfEvent,
        label: &str,
    ) -> Result<(), BatchError> {
        self.opened.get_or_insert_with(Instant::now);
        self.spool.push(ev)?;
        self.mix(label.as_bytes());
        self.summary.objects += 1;
        self.summary.records += 1;
        Ok(())
    }

    /// Writes the batch's files and puts them where they go; returns what was written and
    /// leaves the batch empty.
    pub async fn flush(
        &mut self,
        layout: &LakeLayout,
        output: &Output,
    ) -> Result<BatchSummary, BatchError> {
        let fresh = Spool::new(&self.spool_parent)?;
        let spool = std::mem::replace(&mut self.spool, fresh);
        let mut summary = std::mem::take(&mut self.summary);
        self.opened = None;
        let label = format!("{:016x}", self.label);
        self.label = 0;
        summary.events = spool.events();
        let out_dir = tempfile::Builder::new()
            .prefix("aztrail-parquet-")
            .tempdir_in(&self.spool_parent)
            .map_err(|source| SpoolError::Io {
                what: "creating a directory in",
                path: self.spool_parent.clone(),
                source,
            })?;
        let files = self.files;
        let out_path = out_dir.path().to_path_buf();
        let written = tokio::task::spawn_blocking(move || spool.finish(&label, &out_path, &files))
            .await
            .map_err(|e| BatchError::Put {
                to: "the Parquet writer".into(),
                source: Box::new(e),
            })??;
        for w in written {
            let key = layout.key(w.class, w.day, &w.name);
            output.put(&key, &w.path).await?;
            summary.files += 1;
            summary.file_bytes += w.bytes;
            summary.keys.push(output.describe(&key));
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::MemoryFailures;

    #[test]
    fn locations_take_terraform_outputs_and_class_names() {
        let l = LakeLayout::new(
            &[
                "api_activity=s3://aws-security-data-lake-x/ext/azure_api/1.0/,3002=ext/auth"
                    .into(),
            ],
            "us-east-1",
            "123456789012",
        )
        .expect("valid");
        assert_eq!(
            l.key(Class::ApiActivity, 20240102, "f.parquet"),
            "ext/azure_api/1.0/region=us-east-1/accountId=123456789012/eventDay=20240102/f.parquet"
        );
        assert!(l
            .key(Class::Authentication, 20240102, "f")
            .starts_with("ext/auth/region="));
        assert!(l
            .key(Class::AccountChange, 20240102, "f")
            .starts_with("ext/aztrail_account_change/"));
        assert!(LakeLayout::new(&["nope=x".into()], "r", "a").is_err());
    }

    #[tokio::test]
    async fn a_batch_writes_files_and_sends_rejections_to_the_failure_sink() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut batch = OcsfBatch::new(
            tmp.path(),
            BatchLimits::default(),
            FileSettings::default(),
            Options::default(),
        )
        .expect("batch");
        let mut data = aztrail_transform::synth::generate(200, 3);
        data.push_str("{\"not\":\"a record\"}\n{broken\n");
        let failures = MemoryFailures::default();
        let source = Source {
            bucket: None,
            key: "a/PT1H.json".into(),
        };
        batch
            .add(&source, data.as_bytes(), &failures)
            .await
            .expect("added");
        assert!(!batch.is_full());
        let out = tmp.path().join("lake");
        let layout = LakeLayout::new(&[], "us-east-1", "123456789012").expect("layout");
        let s = batch
            .flush(&layout, &Output::Dir(out.clone()))
            .await
            .expect("flushed");
        assert_eq!(s.records, 202);
        assert_eq!(s.events + s.rejected, s.records);
        assert_eq!(s.rejected, 2);
        assert_eq!(failures.0.lock().map(|m| m.len()).unwrap_or(0), 2);
        assert!(s.files >= 2, "{s:?}");
        for k in &s.keys {
            assert!(std::path::Path::new(k).is_file(), "{k}");
            assert!(k.contains("/region=us-east-1/accountId=123456789012/eventDay="));
        }
        assert!(batch.is_empty());
    }
}
