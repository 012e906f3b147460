//! The local directory source: files on disk loaded like staged objects (for the embedded
//! default and for loading an exported container by hand), and a failure file in place of the
//! failure queue.
//!
//! A directory is walked recursively in name order, skipping hidden entries (`.name`), so a run
//! over the same tree always loads the same files in the same order. `.gz` files are
//! decompressed on the fly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::io::AsyncRead;

use crate::failure::FailureMessage;
use crate::loader::FailureSink;

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

/// Failure messages appended to a file as JSON lines.
#[derive(Debug)]
pub struct FileFailures(Mutex<std::fs::File>);

impl FileFailures {
    /// Appends to `path`, creating it.
    pub fn create(path: &Path) -> Result<Self, LocalError> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(|f| Self(Mutex::new(f)))
            .map_err(|source| LocalError {
                path: path.to_path_buf(),
                source,
            })
    }
}

impl FailureSink for FileFailures {
    async fn send(&self, message: FailureMessage) -> Result<(), String> {
        let mut line = message.to_json();
        line.push('\n');
        let mut f = self.0.lock().map_err(|e| e.to_string())?;
        f.write_all(line.as_bytes()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_walked_in_name_order_without_hidden_entries() {
        let dir = std::env::temp_dir().join(format!("aztrail-local-{}", std::process::id()));
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
}
