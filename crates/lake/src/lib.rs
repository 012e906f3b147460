//! aztrail-lake: a local stand-in for AWS CloudTrail Lake.
//!
//! CloudTrail Lake has no emulator (moto and LocalStack lack `cloudtrail-data`) and is closed to
//! new AWS customers, so tests, benchmarks and the embedded default load into this instead. It
//! speaks PutAuditEvents as the official SDKs expect ([`endpoint`]) on connections it bounds and
//! times out ([`connections`]), checks every event against the documented limits ([`validate`]), injects faults on demand ([`faults`]), keeps accepted events
//! in SQLite ([`store`]) and answers CloudTrail Lake style SQL over them ([`query`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), aztrail_lake::LakeError> {
//! use aztrail_lake::{Lake, LakeConfig};
//! let lake = Lake::start(LakeConfig::in_memory()).await?;
//! println!("PutAuditEvents at {}, channel {}", lake.url(), lake.default_channel_arn());
//! let rows = lake.query("SELECT eventData.uid FROM store").await?;
//! # let _ = rows; lake.stop().await; Ok(()) }
//! ```

pub mod connections;
pub mod endpoint;
pub mod faults;
pub mod query;
pub mod raw_client;
pub mod store;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use faults::FaultConfig;
pub use query::QueryResult;
pub use store::{Stats, Store, Sync};

/// The account of the default channel.
pub const LOCAL_ACCOUNT: &str = "000000000000";
/// The default channel, owned by [`LOCAL_ACCOUNT`].
pub const DEFAULT_CHANNEL_ARN: &str =
    "arn:aws:cloudtrail:us-east-1:000000000000:channel/aztrail-local";

/// What can go wrong running the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The store could not be opened.
    #[error("opening the event store {path}")]
    Store {
        /// Where.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// A statement on the store failed.
    #[error("event store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A query could not be understood or run.
    #[error("query")]
    Query(#[from] query::QueryError),
    /// A configured channel ARN is not one.
    #[error(
        "{0:?} is not a CloudTrail channel ARN (arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID)"
    )]
    BadChannel(String),
    /// The listening socket could not be opened.
    #[error("listening on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A background task (a query on the blocking pool) panicked or was cancelled.
    #[error("lake task")]
    Task(#[source] tokio::task::JoinError),
    /// The stop signals could not be listened for.
    #[error("listening for SIGTERM")]
    Signal(#[source] std::io::Error),
}

/// A channel the lake accepts events on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Its ARN.
    pub arn: String,
    /// The account that owns it (events must name it as `recipientAccountId`).
    pub account: String,
}

impl Channel {
    /// A channel from its ARN (`arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID`).
    pub fn from_arn(arn: &str) -> Result<Self, LakeError> {
        let parsed = aztrail_channel::ChannelArn::parse(arn)
            .ok_or_else(|| LakeError::BadChannel(arn.to_string()))?;
        Ok(Self {
            arn: arn.to_string(),
            account: parsed.account.to_string(),
        })
    }
}

/// Where the events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file.
    File(PathBuf),
    /// Memory only, gone when the lake stops.
    Memory,
}

/// How to run the lake.
#[derive(Debug, Clone)]
pub struct LakeConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// The store.
    pub db: Db,
    /// Channels accepted, besides the default one.
    pub channels: Vec<String>,
    /// Faults to inject.
    pub faults: FaultConfig,
    /// How hard commits wait for the disk.
    pub sync: Sync,
    /// Connections served at once and how long a client may take.
    pub limits: connections::ConnLimits,
}

impl LakeConfig {
    /// On a free loopback port, in memory, with the default quota and no other faults.
    pub fn in_memory() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: Db::Memory,
            channels: Vec::new(),
            faults: FaultConfig::default(),
            sync: Sync::default(),
            limits: connections::ConnLimits::default(),
        }
    }

    /// Like [`LakeConfig::in_memory`] but keeping events in the SQLite file `path`.
    pub fn with_file(path: impl Into<PathBuf>) -> Self {
        Self {
            db: Db::File(path.into()),
            ..Self::in_memory()
        }
    }
}

/// A running lake.
pub struct Lake {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    /// Events accepted in answered calls since the start.
    answered: tokio::sync::watch::Receiver<u64>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl Lake {
    /// Starts the lake on the current tokio runtime.
    pub async fn start(config: LakeConfig) -> Result<Self, LakeError> {
        let mut channels = vec![Channel::from_arn(DEFAULT_CHANNEL_ARN)?];
        for arn in &config.channels {
            let c = Channel::from_arn(arn)?;
            if !channels.contains(&c) {
                channels.push(c);
            }
        }
        let store = match &config.db {
            Db::File(path) => Store::open_with(path, config.sync)?,
            Db::Memory => Store::in_memory()?,
        };
        let store = Arc::new(Mutex::new(store));
        let id_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()) << 32;
        let (answered_tx, answered) = tokio::sync::watch::channel(0);
        let shared = Arc::new(endpoint::Shared {
            channels,
            faults: Mutex::new(faults::Faults::new(config.faults.clone())),
            store: Arc::clone(&store),
            ids: Mutex::new(fastrand::Rng::with_seed(id_seed)),
            body_timeout: config.limits.body_timeout,
            // At least one largest body always fits.
            body_budget: Arc::new(tokio::sync::Semaphore::new(
                config.limits.body_budget.div_ceil(1024).max(1024),
            )),
            answered: answered_tx,
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| LakeError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| LakeError::Listen {
            addr: config.listen,
            source,
        })?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let app = endpoint::router(shared);
        let task = tokio::spawn(connections::serve(listener, app, config.limits, rx));
        Ok(Self {
            addr,
            store,
            answered,
            shutdown: Some(tx),
            task,
        })
    }

    /// The endpoint URL (`http://127.0.0.1:PORT`), for an SDK's `endpoint_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The default channel's ARN.
    pub fn default_channel_arn(&self) -> &'static str {
        DEFAULT_CHANNEL_ARN
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, LakeError> + Send + 'static,
    ) -> Result<T, LakeError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(LakeError::Task)?
    }

    /// Runs a CloudTrail Lake style query.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, LakeError> {
        let sql = sql.to_string();
        self.with_store(move |s| s.query(&sql)).await
    }

    /// Counts over the store.
    pub async fn stats(&self) -> Result<Stats, LakeError> {
        self.with_store(|s| s.stats()).await
    }

    /// Number of stored events.
    pub async fn count(&self) -> Result<u64, LakeError> {
        self.with_store(|s| s.count()).await
    }

    /// Waits until the calls answered since the lake started have accepted at least `events`
    /// events in all: the moment a client has heard that its last event is in, without polling
    /// (benchmarks time a load to it).
    pub async fn until_answered(&self, events: u64) {
        let mut answered = self.answered.clone();
        // The sender lives as long as the server; if it is gone, nothing more will be answered.
        let _ = answered.wait_for(|n| *n >= events).await;
    }

    /// Stops serving, after the calls in flight are answered.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        let _ = (&mut self.task).await;
    }

    /// Serves until the process is asked to stop (Ctrl-C or SIGTERM).
    pub async fn serve_until_signal(self) -> Result<(), LakeError> {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(LakeError::Signal)?;
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        self.stop().await;
        Ok(())
    }
}
