//! In-memory stand-ins for an Azure container and the S3 staging bucket that answer every request
//! after a fixed latency and count the requests in flight: to measure how a pass behaves over a
//! slow link with thousands of roots (`benches/ingest.rs`) and to test its concurrency, never to
//! test behaviour against the real services (Azurite and moto do that). Conditional state writes
//! are kept (a claim must still be able to lose), nothing else is checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aztrail_state::Write;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::azure::{AzureError, BlobInfo};
use crate::checkpoint::CheckpointError;
use crate::source::{BlobSource, Staging};
use crate::stage::{SourceMeta, StageError, Staged};

/// Requests seen by the stand-ins sharing it.
#[derive(Debug, Default)]
pub struct Meter {
    in_flight: AtomicU64,
    peak: AtomicU64,
    requests: AtomicU64,
}

impl Meter {
    /// The most requests that were in flight at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Forgets the peak (between measured passes).
    pub fn reset_peak(&self) {
        self.peak.store(0, Ordering::Relaxed);
    }

    /// One request: counted in flight for `latency`.
    async fn request(&self, latency: Duration) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
struct Blob {
    bytes: Vec<u8>,
    modified: i64,
    created: String,
}

/// An Azure container in memory.
#[derive(Debug)]
pub struct SlowContainer {
    name: String,
    blobs: Mutex<BTreeMap<String, Blob>>,
    latency: Duration,
    meter: Arc<Meter>,
}

impl SlowContainer {
    /// An empty container answering after `latency`, counted by `meter`.
    pub fn new(name: &str, latency: Duration, meter: Arc<Meter>) -> Self {
        Self {
            name: name.into(),
            blobs: Mutex::default(),
            latency,
            meter,
        }
    }

    /// Appends `bytes` to `blob` (created if absent), as modified at `at` (seconds).
    pub fn append(&self, blob: &str, bytes: &[u8], at: i64) {
        if let Ok(mut blobs) = self.blobs.lock() {
            let b = blobs.entry(blob.to_string()).or_insert_with(|| Blob {
                bytes: Vec::new(),
                modified: at,
                created: at.to_string(),
            });
            b.bytes.extend_from_slice(bytes);
            b.modified = at;
        }
    }

    /// The bytes of `blob`.
    pub fn bytes(&self, blob: &str) -> Vec<u8> {
        self.blobs
            .lock()
            .ok()
            .and_then(|b| b.get(blob).map(|b| b.bytes.clone()))
            .unwrap_or_default()
    }

    fn under(&self, prefix: &str) -> Vec<(String, Blob)> {
        self.blobs.lock().map_or_else(
            |_| Vec::new(),
            |blobs| {
                blobs
                    .range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            },
        )
    }
}

impl BlobSource for SlowContainer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>, AzureError> {
        self.meter.request(self.latency).await;
        Ok(self
            .under(prefix)
            .into_iter()
            .map(|(name, b)| BlobInfo {
                name,
                length: b.bytes.len() as u64,
                etag: format!("\"{}-{}\"", b.bytes.len(), b.modified),
                last_modified: Some(b.modified.to_string()),
                modified: Some(b.modified),
                created: Some(b.created),
            })
            .collect())
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, AzureError> {
        self.meter.request(self.latency).await;
        let dirs: BTreeSet<String> = self
            .under(prefix)
            .into_iter()
            .filter_map(|(name, _)| {
                let rest = &name[prefix.len()..];
                rest.find('/').map(|i| format!("{prefix}{}", &rest[..=i]))
            })
            .collect();
        Ok(dirs.into_iter().collect())
    }

    async fn read_range(
        &self,
        blob: &str,
        start: u64,
        end: u64,
    ) -> Result<BoxStream<'_, Result<Bytes, AzureError>>, AzureError> {
        self.meter.request(self.latency).await;
        let bytes = self.bytes(blob);
        let (start, end) = (start as usize, (end as usize).min(bytes.len()));
        let chunk = Bytes::copy_from_slice(bytes.get(start..end).unwrap_or_default());
        Ok(futures::stream::iter([Ok(chunk)]).boxed())
    }
}

/// The staging bucket in memory: staged objects and state documents.
#[derive(Debug, Default)]
pub struct SlowStaging {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    state: Mutex<HashMap<String, (Vec<u8>, u64)>>,
    versions: AtomicU64,
    latency: Duration,
    meter: Arc<Meter>,
}

impl SlowStaging {
    /// An empty bucket answering after `latency`, counted by `meter`.
    pub fn new(latency: Duration, meter: Arc<Meter>) -> Self {
        Self {
            latency,
            meter,
            ..Self::default()
        }
    }

    /// The staged objects, by key.
    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// The keys of the state documents.
    pub fn state_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .state
            .lock()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// The bytes of every state document.
    pub fn state_bytes(&self) -> u64 {
        self.state
            .lock()
            .map(|s| s.values().map(|(b, _)| b.len() as u64).sum())
            .unwrap_or(0)
    }
}

impl Staging for SlowStaging {
    async fn get_state(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, CheckpointError> {
        self.meter.request(self.latency).await;
        let state = self
            .state
            .lock()
            .map_err(|_| CheckpointError::store(key, "a writer panicked"))?;
        Ok(state.get(key).map(|(b, v)| (b.clone(), v.to_string())))
    }

    async fn put_state(
        &self,
        key: &str,
        body: Vec<u8>,
        write: Write<'_>,
    ) -> Result<String, CheckpointError> {
        self.meter.request(self.latency).await;
        let mut state = self
            .state
            .lock()
            .map_err(|_| CheckpointError::store(key, "a writer panicked"))?;
        let current = state.get(key).map(|(_, v)| v.to_string());
        if !write.allows(current.as_deref()) {
            return Err(CheckpointError::Conflict { key: key.into() });
        }
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        state.insert(key.to_string(), (body, version));
        Ok(version.to_string())
    }

    async fn prune_days(&self, days: &str, first_day: &str) -> Result<u64, CheckpointError> {
        self.meter.request(self.latency).await;
        let mut state = self
            .state
            .lock()
            .map_err(|_| CheckpointError::store(days, "a writer panicked"))?;
        let before = state.len();
        state.retain(|k, _| {
            k.strip_prefix(days)
                .is_none_or(|rest| rest.get(..10).is_none_or(|day| day >= first_day))
        });
        Ok((before - state.len()) as u64)
    }

    async fn write(
        &self,
        key: &str,
        len: u64,
        _meta: &SourceMeta,
        source: BoxStream<'_, Result<Bytes, AzureError>>,
    ) -> Result<Staged, StageError> {
        let body = crate::stage::gather(key, len, source).await?;
        self.meter.request(self.latency).await;
        let mut objects = self.objects.lock().map_err(|_| StageError::S3 {
            bucket: "memory".into(),
            key: key.into(),
            source: "a writer panicked".into(),
        })?;
        if objects.contains_key(key) {
            return Ok(Staged::Existed);
        }
        objects.insert(key.to_string(), body);
        Ok(Staged::Created)
    }
}

/// Staging that asks `hook` before each staged write (tests: a write that fails, a stop asked for
/// mid-pass); everything else goes to `inner` as it is.
pub struct BeforeWrite<T, F> {
    /// Where it all goes.
    pub inner: T,
    /// Called with the key before each write: an error fails the write.
    pub hook: F,
}

impl<T, F> Staging for BeforeWrite<T, F>
where
    T: Staging,
    F: Fn(&str) -> Result<(), StageError> + Send + Sync,
{
    async fn get_state(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, CheckpointError> {
        self.inner.get_state(key).await
    }

    async fn put_state(
        &self,
        key: &str,
        body: Vec<u8>,
        write: Write<'_>,
    ) -> Result<String, CheckpointError> {
        self.inner.put_state(key, body, write).await
    }

    async fn prune_days(&self, days: &str, first_day: &str) -> Result<u64, CheckpointError> {
        self.inner.prune_days(days, first_day).await
    }

    async fn write(
        &self,
        key: &str,
        len: u64,
        meta: &SourceMeta,
        source: BoxStream<'_, Result<Bytes, AzureError>>,
    ) -> Result<Staged, StageError> {
        (self.hook)(key)?;
        self.inner.write(key, len, meta, source).await
    }
}
