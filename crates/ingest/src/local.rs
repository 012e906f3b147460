//! Local stand-ins for the embedded default (`aztrail run` on one machine): a directory laid out
//! like an Azure container as the source, and a directory as the staging bucket whose new objects
//! are announced on an in-process queue, as S3 notifications would be.
//!
//! They keep the guarantees the real parts give ingest: an object is created only if absent (a
//! hard link onto the final name fails if it exists), and the checkpoint is replaced only if it is
//! still the version read (its ETag is a hash of its content, compared under a process-wide lock).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use sha2::Digest;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, Mutex};

use crate::azure::{AzureError, BlobInfo};
use aztrail_state::Write;

use crate::checkpoint::CheckpointError;
use crate::source::{BlobSource, Staging};
use crate::stage::{SourceMeta, StageError, Staged};

/// A directory as an Azure container: `{root}/{blob path}`.
///
/// Blob names are Unicode, like Azure's: a file whose name is not UTF-8 is not read, and is
/// reported. Symbolic links are followed while they stay inside the container's directory (a
/// link is measured and read as its target); a link that leads outside it, a broken link and a
/// directory loop are not followed, and are reported. Reports are handed to the pass through
/// [`BlobSource::take_warnings`].
#[derive(Debug, Clone)]
pub struct LocalContainer {
    name: String,
    dir: PathBuf,
    /// `dir` resolved, once.
    resolved: Arc<std::sync::OnceLock<PathBuf>>,
    refused: Arc<StdMutex<Vec<String>>>,
}

impl LocalContainer {
    /// The container `name` in directory `account_dir/name`.
    pub fn new(account_dir: &Path, name: &str) -> Self {
        Self {
            name: name.to_string(),
            dir: account_dir.join(name),
            resolved: Arc::default(),
            refused: Arc::default(),
        }
    }

    fn err(&self, what: String, e: impl Into<aztrail_state::BoxError>) -> AzureError {
        AzureError::Request {
            container: self.name.clone(),
            what,
            source: e.into(),
        }
    }

    fn refuse(&self, why: String) {
        if let Ok(mut r) = self.refused.lock() {
            r.push(format!("{}: {why}", self.name));
        }
    }

    /// The container directory, resolved (links and `..` taken out).
    fn root(&self) -> std::io::Result<PathBuf> {
        if let Some(root) = self.resolved.get() {
            return Ok(root.clone());
        }
        let root = std::fs::canonicalize(&self.dir)?;
        Ok(self.resolved.get_or_init(|| root).clone())
    }

    /// What a directory entry is, following a link that stays inside `root`; `None` (and a
    /// report) for what is not read.
    fn classify(&self, root: &Path, e: &std::fs::DirEntry, rel: &str) -> Option<Entry> {
        let os_name = e.file_name();
        let Some(name) = os_name.to_str() else {
            self.refuse(format!(
                "{}: the file name is not UTF-8 (Azure blob names are Unicode); not read",
                e.path().display()
            ));
            return None;
        };
        if name.starts_with('.') {
            return None;
        }
        let path = format!("{rel}{name}");
        let resolved = match std::fs::canonicalize(e.path()) {
            Ok(p) => p,
            Err(err) => {
                self.refuse(format!("{path}: cannot be resolved ({err}); not read"));
                return None;
            }
        };
        if !resolved.starts_with(root) {
            self.refuse(format!(
                "{path}: a link to {}, outside the source directory; not followed",
                resolved.display()
            ));
            return None;
        }
        match std::fs::metadata(&resolved) {
            Ok(meta) if meta.is_dir() => Some(Entry::Dir(path, resolved)),
            Ok(meta) if meta.is_file() => Some(Entry::File(path, meta)),
            Ok(_) => None,
            Err(err) => {
                self.refuse(format!("{path}: {err}; not read"));
                None
            }
        }
    }

    fn walk(
        &self,
        root: &Path,
        dir: &Path,
        rel: &str,
        visited: &mut HashSet<PathBuf>,
        out: &mut Vec<(String, std::fs::Metadata)>,
    ) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            match self.classify(root, &e, rel) {
                Some(Entry::Dir(path, resolved)) => {
                    if visited.insert(resolved.clone()) {
                        self.walk(root, &resolved, &format!("{path}/"), visited, out)?;
                    } else {
                        self.refuse(format!(
                            "{path}: a directory seen already (a link loop?); not read again"
                        ));
                    }
                }
                Some(Entry::File(path, meta)) => out.push((path, meta)),
                None => {}
            }
        }
        Ok(())
    }
}

/// A directory entry that is read: a directory (with its resolved path) or a file.
enum Entry {
    Dir(String, PathBuf),
    File(String, std::fs::Metadata),
}

/// What identifies a file across appends but not across a replacement: its inode and its birth
/// time (where the filesystem records one). A file rewritten in place keeps both; replaced by a
/// new file (written beside it and renamed over it, as editors and `cp` over a link do not
/// always), it gets new ones.
fn file_identity(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let born = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}-{born}", meta.ino())
}

impl BlobSource for LocalContainer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>, AzureError> {
        // The deepest directory the prefix names fully, walked and filtered.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..=i]);
        let start = self.dir.join(dir_part);
        let mut found = Vec::new();
        if start.is_dir() {
            let list_err = |e| self.err(format!("list {prefix}"), e);
            let root = self.root().map_err(list_err)?;
            let start = std::fs::canonicalize(&start).map_err(list_err)?;
            if !start.starts_with(&root) {
                self.refuse(format!(
                    "{dir_part}: leads to {}, outside the source directory; not read",
                    start.display()
                ));
                return Ok(Vec::new());
            }
            let mut visited = HashSet::from([start.clone()]);
            self.walk(&root, &start, dir_part, &mut visited, &mut found)
                .map_err(list_err)?;
        }
        Ok(found
            .into_iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, meta)| {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                BlobInfo {
                    name,
                    length: meta.len(),
                    etag: format!("\"{:x}-{:x}\"", meta.len(), mtime),
                    last_modified: Some(mtime.to_string()),
                    modified: i64::try_from(mtime / 1_000_000_000).ok(),
                    created: Some(file_identity(&meta)),
                }
            })
            .collect())
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, AzureError> {
        let dir = self.dir.join(prefix);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let list_err = |e| self.err(format!("list {prefix}"), e);
        let root = self.root().map_err(list_err)?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(list_err)? {
            let e = e.map_err(list_err)?;
            if let Some(Entry::Dir(path, _)) = self.classify(&root, &e, prefix) {
                out.push(format!("{path}/"));
            }
        }
        out.sort();
        Ok(out)
    }

    fn take_warnings(&self) -> Vec<String> {
        self.refused
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    async fn read_range(
        &self,
        blob: &str,
        start: u64,
        end: u64,
    ) -> Result<BoxStream<'_, Result<Bytes, AzureError>>, AzureError> {
        let what = format!("read {blob} [{start}, {end})");
        let root = self.root().map_err(|e| self.err(what.clone(), e))?;
        let blob_path = self.dir.join(blob);
        let len = end.saturating_sub(start);
        // One trip to the blocking pool: resolve, check, open, seek and, for a range of up to
        // 1 MiB (most are a few lines), read it whole.
        let opened = tokio::task::spawn_blocking(move || -> std::io::Result<Opened> {
            use std::io::{Read, Seek};
            let path = std::fs::canonicalize(blob_path)?;
            if !path.starts_with(root) {
                return Ok(Opened::Outside);
            }
            let mut file = std::fs::File::open(&path)?;
            file.seek(std::io::SeekFrom::Start(start))?;
            if len <= SMALL_READ {
                let mut buf = Vec::with_capacity(len as usize);
                file.take(len).read_to_end(&mut buf)?;
                return Ok(Opened::Whole(buf));
            }
            Ok(Opened::File(file))
        })
        .await
        .map_err(|e| self.err(what.clone(), e))?
        .map_err(|e| self.err(what.clone(), e))?;
        let file = match opened {
            Opened::Outside => {
                return Err(self.err(what, "it leads outside the source directory"));
            }
            Opened::Whole(bytes) => {
                return Ok(futures::stream::iter([Ok(Bytes::from(bytes))]).boxed());
            }
            Opened::File(file) => tokio::fs::File::from_std(file),
        };
        let reader = file.take(len);
        let stream = futures::stream::unfold(Some(reader), move |reader| {
            let what = what.clone();
            async move {
                let mut reader = reader?;
                // A chunk of at most 1 MiB, and no larger than what is left.
                let left = usize::try_from(reader.limit()).unwrap_or(usize::MAX);
                let mut buf = vec![0u8; left.clamp(1, 1 << 20)];
                match reader.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), Some(reader)))
                    }
                    Err(e) => Some((Err(self.err(what, e)), None)),
                }
            }
        });
        Ok(stream.boxed())
    }
}

/// Ranges up to this size are read (and staged) in one trip to the blocking pool.
const SMALL_READ: u64 = 1 << 20;

/// A source file, opened for a range.
enum Opened {
    /// The path leads outside the source directory.
    Outside,
    /// The whole (small) range.
    Whole(Vec<u8>),
    /// Positioned at the range's start.
    File(std::fs::File),
}

/// A directory as the staging bucket. New objects are announced on `notify` (the in-process
/// queue), as S3 would notify SQS; checkpoints live under `_aztrail/` beside them.
#[derive(Debug)]
pub struct LocalStaging {
    dir: PathBuf,
    notify: Option<mpsc::UnboundedSender<String>>,
    /// Serializes checkpoint compare-and-swap within the process.
    lock: Mutex<()>,
}

impl LocalStaging {
    /// Stages into `dir`, announcing each new key on `notify`.
    pub fn new(dir: &Path, notify: Option<mpsc::UnboundedSender<String>>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            notify,
            lock: Mutex::new(()),
        }
    }

    /// The file of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }
}

/// Runs `op` on `path`; when it fails because `path`'s directory does not exist yet, creates it
/// and runs `op` again (one system call in the common case, not a `mkdir` each time).
fn with_parent<T>(path: &Path, op: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    match op() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            op()
        }
        other => other,
    }
}

fn etag_of(bytes: &[u8]) -> String {
    let d = sha2::Sha256::digest(bytes);
    d.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

impl Staging for LocalStaging {
    async fn get_state(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, CheckpointError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => {
                let etag = etag_of(&bytes);
                Ok(Some((bytes, etag)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CheckpointError::store(key, e)),
        }
    }

    async fn put_state(
        &self,
        key: &str,
        body: Vec<u8>,
        write: Write<'_>,
    ) -> Result<String, CheckpointError> {
        let _held = self.lock.lock().await;
        let path = self.path(key);
        // The condition, owned, for the blocking pool: `None` when there is none.
        let condition = match write {
            Write::Always => None,
            Write::IfAbsent => Some(None),
            Write::IfMatch(etag) => Some(Some(etag.to_string())),
        };
        // Compare and replace in one trip to the blocking pool (under the process's lock).
        let put = tokio::task::spawn_blocking(move || -> std::io::Result<Option<String>> {
            if let Some(condition) = &condition {
                let current = match std::fs::read(&path) {
                    Ok(bytes) => Some(etag_of(&bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(e),
                };
                let write = condition.as_deref().map_or(Write::IfAbsent, Write::IfMatch);
                if !write.allows(current.as_deref()) {
                    return Ok(None);
                }
            }
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            with_parent(&tmp, || std::fs::write(&tmp, &body))?;
            std::fs::rename(&tmp, &path)?;
            Ok(Some(etag_of(&body)))
        })
        .await
        .map_err(|e| CheckpointError::store(key, e))?
        .map_err(|e| CheckpointError::store(key, e))?;
        put.ok_or_else(|| CheckpointError::Conflict {
            key: key.to_string(),
        })
    }

    async fn prune_days(&self, days: &str, first_day: &str) -> Result<u64, CheckpointError> {
        let dir = self.path(days);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(CheckpointError::store(days, e)),
        };
        let mut deleted = 0;
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(|e| CheckpointError::store(days, e))?
        {
            let name = e.file_name();
            let Some(day) = name.to_str() else { continue };
            if day.len() == 10 && day < first_day {
                let mut files =
                    std::fs::read_dir(e.path()).map_err(|e| CheckpointError::store(days, e))?;
                deleted += files.by_ref().count() as u64;
                tokio::fs::remove_dir_all(e.path())
                    .await
                    .map_err(|e| CheckpointError::store(days, e))?;
            }
        }
        Ok(deleted)
    }

    async fn write(
        &self,
        key: &str,
        len: u64,
        _meta: &SourceMeta,
        mut source: BoxStream<'_, Result<Bytes, AzureError>>,
    ) -> Result<Staged, StageError> {
        let io = |e: std::io::Error| StageError::S3 {
            bucket: self.dir.display().to_string(),
            key: key.to_string(),
            source: Box::new(e),
        };
        let path = self.path(key);
        let tmp = self.dir.join(format!(
            ".partial-{}-{}",
            std::process::id(),
            etag_of(key.as_bytes())
        ));
        if len <= SMALL_READ {
            // A small range: gathered, then written, linked and announced in one trip to the
            // blocking pool.
            let body = crate::stage::gather(key, len, source).await?;
            let created = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
                if path.exists() {
                    return Ok(false);
                }
                std::fs::write(&tmp, &body)?;
                let linked = with_parent(&path, || std::fs::hard_link(&tmp, &path));
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(|e| io(std::io::Error::other(e)))?
            .map_err(io)?;
            if !created {
                return Ok(Staged::Existed);
            }
            if let Some(n) = &self.notify {
                // A closed queue means nobody loads in this process; the object stays staged.
                let _ = n.send(key.to_string());
            }
            return Ok(Staged::Created);
        }
        if path.exists() {
            return Ok(Staged::Existed);
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut written = 0u64;
        while let Some(chunk) = source.next().await {
            let chunk = chunk.map_err(|e| StageError::Source {
                key: key.to_string(),
                source: Box::new(e),
            })?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(io)?;
            written += chunk.len() as u64;
        }
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(io)?;
        drop(file);
        if written != len {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(StageError::Length {
                key: key.to_string(),
                expected: len,
                got: written,
            });
        }
        // Created only if absent: a hard link fails when the name exists.
        let linked = tokio::fs::hard_link(&tmp, &path).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        match linked {
            Ok(()) => {
                if let Some(n) = &self.notify {
                    // A closed queue means nobody loads in this process; the object stays staged.
                    let _ = n.send(key.to_string());
                }
                Ok(Staged::Created)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Staged::Existed),
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{ingest_with, IngestConfig};
    use aztrail_state::Write;
    use std::io::Write as _;

    #[tokio::test]
    async fn a_local_container_is_staged_once_and_announced() {
        let tmp_base = tempfile::Builder::new()
            .prefix("aztrail-local-ingest-")
            .tempdir()
            .expect("a temporary directory");
        let base = tmp_base.path().to_path_buf();
        let _ = std::fs::remove_dir_all(&base);
        let now = 1_796_076_000 + 1800; // 2026-11-30T22:30:00Z
        let blob = "resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=30/h=22/m=00/PT1H.json";
        let path = base.join("source/insights-activity-logs").join(blob);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":").unwrap();
        let sources = [LocalContainer::new(
            &base.join("source"),
            "insights-activity-logs",
        )];
        let (tx, mut rx) = mpsc::unbounded_channel();
        let staging = LocalStaging::new(&base.join("staging"), Some(tx));
        let config = IngestConfig {
            containers: vec!["insights-activity-logs".into()],
            ..IngestConfig::default()
        };
        let s = ingest_with(&sources, &staging, "local", &config, now)
            .await
            .unwrap();
        assert_eq!((s.objects_written, s.new_bytes), (1, 8));
        let key = rx.try_recv().unwrap();
        assert!(key.ends_with("PT1H.json.0-8"), "{key}");
        assert_eq!(std::fs::read(staging.path(&key)).unwrap(), b"{\"a\":1}\n");
        // The partial line completes; the next pass stages only the new bytes.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"2}\n")
            .unwrap();
        let s = ingest_with(&sources, &staging, "local", &config, now)
            .await
            .unwrap();
        assert_eq!((s.objects_written, s.new_bytes), (1, 8));
        assert!(rx.try_recv().unwrap().ends_with("PT1H.json.8-16"));
        let s = ingest_with(&sources, &staging, "local", &config, now)
            .await
            .unwrap();
        assert_eq!(s.objects_written, 0);
        assert!(rx.try_recv().is_err());
        // The blob's progress is in its day shard, and a stale version of it cannot be written.
        let keys = crate::checkpoint::Keys::new("local", "insights-activity-logs");
        let key = keys.shard(&crate::checkpoint::ShardId::of(blob));
        let (body, etag) = staging.get_state(&key).await.unwrap().unwrap();
        let shard: crate::checkpoint::ShardCheckpoint = serde_json::from_slice(&body).unwrap();
        assert_eq!(shard.blobs[blob].committed, 16);
        assert!(shard.claim.is_none());
        let mut changed = body.clone();
        changed.push(b' ');
        staging
            .put_state(&key, changed.clone(), Write::IfMatch(&etag))
            .await
            .unwrap();
        assert!(matches!(
            staging
                .put_state(&key, body.clone(), Write::IfMatch(&etag))
                .await,
            Err(CheckpointError::Conflict { .. })
        ));
        assert!(matches!(
            staging.put_state(&key, body, Write::IfAbsent).await,
            Err(CheckpointError::Conflict { .. })
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[tokio::test]
    async fn replaced_blobs_odd_names_and_links_are_handled_and_reported() {
        use std::os::unix::ffi::OsStrExt;
        let tmp_base = tempfile::Builder::new()
            .prefix("aztrail-local-odd-")
            .tempdir()
            .expect("a temporary directory");
        let base = tmp_base.path().to_path_buf();
        let _ = std::fs::remove_dir_all(&base);
        let now = 1_796_076_000 + 1800; // 2026-11-30T22:30:00Z
        let hour = "resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=30/h=22/m=00/";
        let container = base.join("source/insights-activity-logs");
        std::fs::create_dir_all(container.join(hour)).unwrap();
        let blob = format!("{hour}PT1H.json");
        std::fs::write(container.join(&blob), b"{\"a\":1}\n").unwrap();
        // A name that is not UTF-8, a link inside the tree and one that leaves it.
        let odd = container
            .join(hour)
            .join(std::ffi::OsStr::from_bytes(b"bad-\xff.json"));
        std::fs::write(&odd, b"{\"odd\":1}\n").unwrap();
        let outside = base.join("secret.json");
        std::fs::write(&outside, b"{\"secret\":1}\n").unwrap();
        std::os::unix::fs::symlink(&outside, container.join(hour).join("leak.json")).unwrap();
        let target = container.join("elsewhere.txt");
        std::fs::write(&target, b"{\"linked\":1}\n").unwrap();
        std::os::unix::fs::symlink(&target, container.join(hour).join("linked.json")).unwrap();

        let sources = [LocalContainer::new(
            &base.join("source"),
            "insights-activity-logs",
        )];
        let (tx, mut rx) = mpsc::unbounded_channel();
        let staging = LocalStaging::new(&base.join("staging"), Some(tx));
        let config = IngestConfig {
            containers: vec!["insights-activity-logs".into()],
            ..IngestConfig::default()
        };
        let s = ingest_with(&sources, &staging, "local", &config, now)
            .await
            .unwrap();
        assert_eq!(s.refused, 2, "{s:?}");
        assert!(s.warnings.iter().any(|w| w.contains("not UTF-8")), "{s:?}");
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("leak.json") && w.contains("outside")),
            "{s:?}"
        );
        let mut keys = Vec::new();
        while let Ok(k) = rx.try_recv() {
            keys.push(k);
        }
        keys.sort();
        assert_eq!(keys.len(), 2, "{keys:?}");
        let linked = keys.iter().find(|k| k.contains("linked.json")).unwrap();
        assert_eq!(
            std::fs::read(staging.path(linked)).unwrap(),
            b"{\"linked\":1}\n",
            "read through the link"
        );
        assert!(keys.iter().all(|k| !k.contains("leak")));

        // Replaced by a file of the same length with other records: copied again, under a new key.
        let fresh = container.join(format!("{hour}.new"));
        std::fs::write(&fresh, b"{\"b\":2}\n").unwrap();
        std::fs::rename(&fresh, container.join(&blob)).unwrap();
        let s = ingest_with(&sources, &staging, "local", &config, now)
            .await
            .unwrap();
        assert_eq!((s.replaced, s.objects_written), (1, 1), "{s:?}");
        let key = rx.try_recv().unwrap();
        assert!(key.ends_with("PT1H.json.g1.0-8"), "{key}");
        assert_eq!(std::fs::read(staging.path(&key)).unwrap(), b"{\"b\":2}\n");
        // Replaced by a longer one: from 0 again, not from the old length.
        let fresh = container.join(format!("{hour}.new"));
        std::fs::write(&fresh, b"{\"c\":3}\n{\"d\":4}\n").unwrap();
        std::fs::rename(&fresh, container.join(&blob)).unwrap();
        let s = ingest_with(&sources, &staging, "local", &config, now)
            .await
            .unwrap();
        assert_eq!(s.replaced, 1, "{s:?}");
        let key = rx.try_recv().unwrap();
        assert!(key.ends_with("PT1H.json.g2.0-16"), "{key}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[tokio::test]
    async fn a_stopped_pass_commits_what_it_finished_and_releases_its_claim() {
        let tmp_base = tempfile::Builder::new()
            .prefix("aztrail-local-stop-")
            .tempdir()
            .expect("a temporary directory");
        let base = tmp_base.path().to_path_buf();
        let _ = std::fs::remove_dir_all(&base);
        let now = 1_796_076_000 + 1800;
        let container = base.join("source/insights-activity-logs");
        for h in ["20", "21", "22"] {
            let blob = container.join(format!(
                "resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=30/h={h}/m=00/PT1H.json"
            ));
            std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
            std::fs::write(&blob, b"{\"a\":1}\n").unwrap();
        }
        let sources = [LocalContainer::new(
            &base.join("source"),
            "insights-activity-logs",
        )];
        // A stop asked for as the first object is written.
        let stop = aztrail_state::Stop::default();
        let staging = crate::standin::BeforeWrite {
            inner: LocalStaging::new(&base.join("staging"), None),
            hook: |_: &str| {
                stop.set();
                Ok(())
            },
        };
        let config = IngestConfig {
            containers: vec!["insights-activity-logs".into()],
            stop: stop.clone(),
            // One copy at a time, so that the stop comes between two of them.
            requests_in_flight: 1,
            ..IngestConfig::default()
        };
        let s = ingest_with(&sources, &staging, "local", &config, now)
            .await
            .unwrap();
        assert!(s.stopped);
        assert_eq!(s.objects_written, 1);
        let keys = crate::checkpoint::Keys::new("local", "insights-activity-logs");
        let key = keys.shard(&crate::checkpoint::ShardId::of(
            "resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=30/h=20/m=00/PT1H.json",
        ));
        let (body, _) = staging.get_state(&key).await.unwrap().unwrap();
        let cp: crate::checkpoint::ShardCheckpoint = serde_json::from_slice(&body).unwrap();
        assert!(cp.claim.is_none(), "the claim is released");
        assert_eq!(cp.blobs.values().filter(|b| b.committed == 8).count(), 1);
        // The next run (another run id, the lease unexpired) goes on at once with the rest.
        let next = IngestConfig {
            containers: vec!["insights-activity-logs".into()],
            run_id: "next".into(),
            ..IngestConfig::default()
        };
        let s = ingest_with(&sources, &staging.inner, "local", &next, now)
            .await
            .unwrap();
        assert_eq!((s.contended, s.objects_written), (0, 2), "{s:?}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
