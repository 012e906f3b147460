//! The event store: accepted events in SQLite, one transaction per PutAuditEvents call.
//!
//! Each row keeps the event as CloudTrail Lake shows it — `eventData` plus the fields the service
//! adds (`eventID`, `eventCategory`, `eventType`, `ingestionTime`, `channelARN`) — as one JSON
//! document, with a few columns pulled out for indexes and statistics. Each call's events are one
//! transaction in WAL mode, so a crash never leaves half a call behind, and an event is durable
//! once the call's answer says it was accepted: against a crash of the lake process always (the
//! commit has reached the operating system), and against power loss too with [`Sync::Full`]
//! (an fsync per call, several times slower on most disks).

use std::path::Path;

use rusqlite::{params, Connection};

use crate::query::{self, QueryResult};
use crate::LakeError;

/// One accepted event, ready to store.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The id CloudTrail assigns (`eventID`).
    pub event_id: String,
    /// The caller's id for the event (`id`, the `UID` in our events).
    pub uid: String,
    /// `eventData.eventSource`.
    pub event_source: String,
    /// `eventData.eventName`.
    pub event_name: String,
    /// `eventData.eventTime`.
    pub event_time: String,
    /// The channel the event came through.
    pub channel_arn: String,
    /// When it was accepted (UTC, `yyyy-MM-ddTHH:mm:ssZ`).
    pub ingestion_time: String,
    /// The whole stored record as JSON.
    pub record: String,
}

/// Counts over the store, for `aztrail lake stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Events stored.
    pub events: u64,
    /// Distinct UIDs.
    pub distinct_uids: u64,
    /// Events beyond the first for each UID (0 when nothing was stored twice).
    pub duplicate_events: u64,
    /// The UIDs stored more than once, with their counts (at most 20).
    pub duplicated_uids: Vec<(String, u64)>,
    /// Events by eventSource.
    pub by_event_source: Vec<(String, u64)>,
    /// Events by eventName (the 20 most frequent).
    pub by_event_name: Vec<(String, u64)>,
    /// Events by day of eventTime.
    pub by_day: Vec<(String, u64)>,
}

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sync {
    /// Committed to the operating system: survives a crash of the process.
    #[default]
    Process,
    /// Flushed to the disk (fsync): survives power loss too.
    Full,
}

/// An open store.
pub struct Store {
    conn: Connection,
    /// Rows stored, kept by the one writer (counted once at open, then per commit), so that
    /// polling the count (tests and benchmarks wait on it) does not walk the table each time.
    /// `None` for a read-only store, which another process may be writing.
    rows: Option<u64>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, LakeError> {
        Self::open_with(path, Sync::default())
    }

    /// Opens the store at `path` with the given commit durability.
    pub fn open_with(path: &Path, sync: Sync) -> Result<Self, LakeError> {
        let conn = Connection::open(path).map_err(|e| LakeError::Store {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::init(conn, path, sync)
    }

    /// Opens the existing store at `path` for queries only: the connection itself cannot write,
    /// whatever a query asks.
    pub fn open_read_only(path: &Path) -> Result<Self, LakeError> {
        let wrap = |e| LakeError::Store {
            path: path.display().to_string(),
            source: e,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(wrap)?;
        conn.pragma_update(None, "case_sensitive_like", true)
            .map_err(wrap)?;
        Ok(Self { conn, rows: None })
    }

    /// A store that lives in memory only (tests and benchmarks).
    ///
    /// It is a database of SQLite's `memdb` file system (one private name per store), not
    /// `:memory:`: an in-memory pager walks its whole page cache at every commit, so each call
    /// cost more than the last as the store grew, where `memdb` keeps a call's cost flat.
    pub fn in_memory() -> Result<Self, LakeError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "file:/aztrail-lake-{}-{}?vfs=memdb",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let conn = Connection::open_with_flags(
            &name,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
                | rusqlite::OpenFlags::SQLITE_OPEN_URI
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| LakeError::Store {
            path: name.clone(),
            source: e,
        })?;
        Self::init(conn, Path::new(&name), Sync::Process)
    }

    fn init(conn: Connection, path: &Path, sync: Sync) -> Result<Self, LakeError> {
        let wrap = |e| LakeError::Store {
            path: path.display().to_string(),
            source: e,
        };
        // Events are about 3 kB: 16 kB pages hold several, where 4 kB pages hold one and waste
        // the rest (only takes effect when the file is created).
        conn.pragma_update(None, "page_size", 16384).map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        let level = match sync {
            Sync::Process => "NORMAL",
            Sync::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", level)
            .map_err(wrap)?;
        // Fewer, larger checkpoints: each event is written to the WAL and once more into the
        // database; checkpointing every 4,000 pages instead of 1,000 cuts the syscalls.
        conn.pragma_update(None, "wal_autocheckpoint", 4000)
            .map_err(wrap)?;
        conn.pragma_update(None, "case_sensitive_like", true)
            .map_err(wrap)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                event_id TEXT PRIMARY KEY,
                uid TEXT NOT NULL,
                event_source TEXT NOT NULL,
                event_name TEXT NOT NULL,
                event_time TEXT NOT NULL,
                channel_arn TEXT NOT NULL,
                ingestion_time TEXT NOT NULL,
                record TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS events_uid ON events(uid);
            CREATE INDEX IF NOT EXISTS events_source ON events(event_source, event_name);",
        )
        .map_err(wrap)?;
        let mut store = Self { conn, rows: None };
        store.rows = Some(store.count()?);
        Ok(store)
    }

    /// Stores the events of one call, all or none.
    pub fn insert(&mut self, events: &[StoredEvent]) -> Result<(), LakeError> {
        let tx = self.conn.transaction().map_err(LakeError::Sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO events (event_id, uid, event_source, event_name, event_time,
                     channel_arn, ingestion_time, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(LakeError::Sql)?;
            for e in events {
                stmt.execute(params![
                    e.event_id,
                    e.uid,
                    e.event_source,
                    e.event_name,
                    e.event_time,
                    e.channel_arn,
                    e.ingestion_time,
                    e.record
                ])
                .map_err(LakeError::Sql)?;
            }
        }
        tx.commit().map_err(LakeError::Sql)?;
        if let Some(rows) = &mut self.rows {
            *rows += events.len() as u64;
        }
        Ok(())
    }

    /// Number of stored events.
    pub fn count(&self) -> Result<u64, LakeError> {
        if let Some(rows) = self.rows {
            return Ok(rows);
        }
        self.conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(LakeError::Sql)
    }

    /// Runs a CloudTrail Lake style query (see [`crate::query`]).
    pub fn query(&self, sql: &str) -> Result<QueryResult, LakeError> {
        query::run(&self.conn, sql)
    }

    /// Counts by source, name and day, and duplicates by UID.
    pub fn stats(&self) -> Result<Stats, LakeError> {
        let pairs = |sql: &str| -> Result<Vec<(String, u64)>, LakeError> {
            let mut stmt = self.conn.prepare(sql).map_err(LakeError::Sql)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .map_err(LakeError::Sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(LakeError::Sql)
        };
        let events = self.count()?;
        let distinct_uids = self
            .conn
            .query_row("SELECT COUNT(DISTINCT uid) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(LakeError::Sql)? as u64;
        Ok(Stats {
            events,
            distinct_uids,
            duplicate_events: events - distinct_uids,
            duplicated_uids: pairs(
                "SELECT uid, COUNT(*) c FROM events GROUP BY uid HAVING c > 1 ORDER BY c DESC, uid LIMIT 20",
            )?,
            by_event_source: pairs(
                "SELECT event_source, COUNT(*) c FROM events GROUP BY event_source ORDER BY c DESC, event_source",
            )?,
            by_event_name: pairs(
                "SELECT event_name, COUNT(*) c FROM events GROUP BY event_name ORDER BY c DESC, event_name LIMIT 20",
            )?,
            by_day: pairs(
                "SELECT substr(event_time, 1, 10) d, COUNT(*) FROM events GROUP BY d ORDER BY d",
            )?,
        })
    }
}
