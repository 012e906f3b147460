//! The local directory source: files on disk loaded like staged objects (for the embedded
//! default and for loading an exported container by hand), and a failure file in place of the
//! failure queue.
//!
//! A directory is walked recursively in name order, skipping hidden entries (`.name`), so a run
//! over the same tree always loads the same files in the same order. `.gz` files are
//! decompressed on the fly.

use std::path::{Path, PathBuf};

use tokio::io::AsyncRead;

use crate::checkpoint::{
    checkpoint_key, Checkpoint, CheckpointError, CheckpointStore, STATE_PREFIX,
};
use crate::notification::ObjectRef;

/// Why local files could not be listed or opened.
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
pub struct LocalError {
    /// The file or directory.
    pub path: PathBuf,
    /// What the system said.
    pub source: std::io::Error,
}

/// The files under `path` (itself, when it is a file), hidden entries skipped, in name order.
pub fn list_files(path: &Path) -> Result<Vec<PathBuf>, LocalError> {
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| LocalError { path: p, source }
    };
    let meta = std::fs::metadata(path).map_err(err(path))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(err(path))?
        .collect::<Result<_, _>>()
        .map_err(err(path))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        out.extend(list_files(&e.path())?);
    }
    Ok(out)
}

/// Opens a local file for streaming (gunzipping `.gz`).
pub async fn open_file(path: &Path) -> Result<Box<dyn AsyncRead + Send + Unpin>, LocalError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| LocalError {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(crate::s3::decompressed(&path.to_string_lossy(), file))
}

/// Load checkpoints as JSON files in a directory: the embedded default's staging directory, under
/// `_aztrail/load/` beside the objects, as in the staging bucket. Each is replaced whole
/// (written beside, then renamed), so a kill never leaves half a checkpoint.
#[derive(Debug, Clone)]
pub struct DirCheckpoints {
    dir: PathBuf,
}

impl DirCheckpoints {
    /// Checkpoints of the objects staged in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The object staged in the directory under `key`. Objects there are created once and
    /// never replaced, so one identity serves every load of them.
    pub fn object(key: &str) -> ObjectRef {
        ObjectRef {
            etag: Some("local".into()),
            ..ObjectRef::new("", key)
        }
    }

    /// The keys of the objects staged in the directory whose load has not finished (no
    /// checkpoint, or one that is not complete), in name order: what a run that was stopped
    /// left to load. aztrail's own state, hidden and partial files are not objects.
    pub async fn unfinished(&self) -> Result<Vec<String>, CheckpointError> {
        let files = match list_files(&self.dir) {
            Ok(f) => f,
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(CheckpointError::store(
                    self.dir.display().to_string(),
                    e.source,
                ))
            }
        };
        let mut out = Vec::new();
        for f in files {
            let Ok(rel) = f.strip_prefix(&self.dir) else {
                continue;
            };
            let Some(key) = rel.to_str() else { continue };
            if key.starts_with(STATE_PREFIX) {
                continue;
            }
            let done = self
                .get(&Self::object(key))
                .await?
                .is_some_and(|c| c.complete);
            if !done {
                out.push(key.to_string());
            }
        }
        Ok(out)
    }
}

impl CheckpointStore for DirCheckpoints {
    async fn get(&self, object: &ObjectRef) -> Result<Option<Checkpoint>, CheckpointError> {
        let key = checkpoint_key(object);
        match tokio::fs::read(self.dir.join(&key)).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CheckpointError::corrupt(key, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CheckpointError::store(key, e)),
        }
    }

    async fn put(
        &self,
        object: &ObjectRef,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        let key = checkpoint_key(object);
        let path = self.dir.join(&key);
        let body =
            serde_json::to_vec(checkpoint).map_err(|e| CheckpointError::corrupt(key.clone(), e))?;
        // One trip to the blocking pool for the directory, the write and the rename.
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if let Err(e) = std::fs::write(&tmp, &body) {
                // The first checkpoint of a directory: make it (not a mkdir for every write).
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e);
                }
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&tmp, &body)?;
            }
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| CheckpointError::store(key.clone(), e))?
        .map_err(|e| CheckpointError::store(key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_walked_in_name_order_without_hidden_entries() {
        let tmp_dir = tempfile::Builder::new()
            .prefix("aztrail-local-")
            .tempdir()
            .expect("a temporary directory");
        let dir = tmp_dir.path().to_path_buf();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b/h=01")).unwrap();
        std::fs::create_dir_all(dir.join(".state")).unwrap();
        for f in ["b/h=01/PT1H.json", "a.json", ".state/x", "b/0.json"] {
            std::fs::write(dir.join(f), b"{}").unwrap();
        }
        let files = list_files(&dir).unwrap();
        let rel: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(rel, ["a.json", "b/0.json", "b/h=01/PT1H.json"]);
        assert!(list_files(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn unfinished_objects_are_those_without_a_complete_checkpoint() {
        let tmp_dir = tempfile::Builder::new()
            .prefix("aztrail-local-cp-")
            .tempdir()
            .expect("a temporary directory");
        let dir = tmp_dir.path().to_path_buf();
        let _ = std::fs::remove_dir_all(&dir);
        for f in ["staged/a.0-10", "staged/b.0-10", "staged/c.0-10"] {
            std::fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
            std::fs::write(dir.join(f), b"{}").unwrap();
        }
        let store = DirCheckpoints::new(&dir);
        let done = Checkpoint {
            offset: 10,
            complete: true,
            accepted: 1,
            failed: 0,
        };
        let half = Checkpoint {
            complete: false,
            offset: 4,
            ..done.clone()
        };
        store
            .put(&DirCheckpoints::object("staged/a.0-10"), &done)
            .await
            .unwrap();
        store
            .put(&DirCheckpoints::object("staged/b.0-10"), &half)
            .await
            .unwrap();
        assert_eq!(
            store.unfinished().await.unwrap(),
            ["staged/b.0-10", "staged/c.0-10"]
        );
        assert_eq!(
            store
                .get(&DirCheckpoints::object("staged/b.0-10"))
                .await
                .unwrap(),
            Some(half)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
