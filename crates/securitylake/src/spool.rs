//! A batch of OCSF events on its way to Parquet, in bounded memory.
//!
//! Security Lake wants few, large files, sorted by time, so a batch spans many staged objects
//! (up to a gigabyte of records). Holding it in memory would cost several times that; instead
//! each event's JSON is appended to a spool file of its (class, day), and memory keeps only a
//! 24-byte entry per event (time, UID prefix, where the line is). When the batch closes, each
//! (class, day) is read back in time order, decoded by `arrow-json` into the class's fixed schema
//! a few thousand rows at a time, and written by `parquet`'s `ArrowWriter`, which holds at most
//! one row group.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_json::reader::ReaderBuilder;
use aztrail_ocsf::{Class, OcsfEvent};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::WriterProperties;

use crate::schema::schema;

/// Why a batch could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool or the output could not be written or read.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An event does not fit its class's schema (a mapping bug: the event is named).
    #[error("event {uid} does not fit the {class} schema: {source}")]
    Schema {
        /// The class.
        class: &'static str,
        /// The first event of the rows that failed.
        uid: String,
        /// What arrow-json said.
        source: arrow_schema::ArrowError,
    },
    /// The Parquet writer failed.
    #[error("writing {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
}

/// How files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSettings {
    /// Rows per row group at most.
    pub row_group_rows: usize,
    /// Encoded bytes per row group at most (Security Lake: ≤ 256 MB).
    pub row_group_bytes: usize,
    /// Bytes per data page at most (Security Lake: ≤ 1 MB).
    pub page_bytes: usize,
    /// zstd level.
    pub zstd_level: i32,
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            row_group_rows: 100_000,
            row_group_bytes: 64 << 20,
            page_bytes: 1 << 20,
            zstd_level: 3,
        }
    }
}

/// Where one event's JSON line is in its spool, and what orders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    time_ms: i64,
    uid_prefix: u64,
    at: u64,
    len: u32,
}

struct Group {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
    entries: Vec<Entry>,
}

/// One written Parquet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The class of its events.
    pub class: Class,
    /// Their UTC day, `YYYYMMDD`.
    pub day: u32,
    /// How many events.
    pub rows: u64,
    /// The file's name: `<class>-<batch>-<first UID>-<last UID>.parquet`, with 16 hex digits
    /// of each UID (the first and last in time order).
    pub name: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
}

/// Where a spool stood, to go back to if what followed must not be written.
#[derive(Debug, Clone, Default)]
pub struct SpoolMark {
    entries: Vec<((Class, u32), usize)>,
    events: u64,
    bytes: u64,
}

/// The events of one batch, spooled by (class, day).
pub struct Spool {
    dir: tempfile::TempDir,
    groups: BTreeMap<(Class, u32), Group>,
    events: u64,
    bytes: u64,
    line: Vec<u8>,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |source| SpoolError::Io { what, path, source }
}

impl Spool {
    /// A spool in a new directory under `parent` (removed when the spool is dropped).
    pub fn new(parent: &Path) -> Result<Spool, SpoolError> {
        let dir = tempfile::Builder::new()
            .prefix("aztrail-ocsf-")
            .tempdir_in(parent)
            .map_err(io("creating a spool directory in", parent))?;
        Ok(Spool {
            dir,
            groups: BTreeMap::new(),
            events: 0,
            bytes: 0,
            line: Vec::new(),
        })
    }

    /// Events spooled.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes of JSON spooled.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Where the spool stands now.
    pub fn mark(&self) -> SpoolMark {
        SpoolMark {
            entries: self
                .groups
                .iter()
                .map(|(k, g)| (*k, g.entries.len()))
                .collect(),
            events: self.events,
            bytes: self.bytes,
        }
    }

    /// Forgets every event pushed since `mark` (their lines stay in the spool files, unread).
    pub fn rollback(&mut self, mark: &SpoolMark) {
        for (key, g) in self.groups.iter_mut() {
            let keep = mark
                .entries
                .iter()
                .find(|(k, _)| k == key)
                .map_or(0, |(_, n)| *n);
            g.entries.truncate(keep);
        }
        self.events = mark.events;
        self.bytes = mark.bytes;
    }

    /// Adds an event.
    pub fn push(&mut self, ev: &OcsfEvent) -> Result<(), SpoolError> {
        self.line.clear();
        // Writing a Value to a Vec cannot fail.
        serde_json::to_writer(&mut self.line, &ev.json).map_err(|e| SpoolError::Io {
            what: "encoding an event for",
            path: self.dir.path().to_path_buf(),
            source: e.into(),
        })?;
        self.line.push(b'\n');
        let key = (ev.class, ev.day);
        if !self.groups.contains_key(&key) {
            let path = self
                .dir
                .path()
                .join(format!("{}-{}.jsonl", ev.class.slug(), ev.day));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io("creating", &path))?;
            self.groups.insert(
                key,
                Group {
                    path,
                    out: BufWriter::with_capacity(1 << 16, file),
                    len: 0,
                    entries: Vec::new(),
                },
            );
        }
        let Some(g) = self.groups.get_mut(&key) else {
            return Ok(());
        };
        g.out
            .write_all(&self.line)
            .map_err(io("writing", &g.path))?;
        g.entries.push(Entry {
            time_ms: ev.time_ms,
            uid_prefix: u64::from_str_radix(ev.uid.get(..16).unwrap_or("0"), 16).unwrap_or(0),
            at: g.len,
            len: self.line.len() as u32,
        });
        g.len += self.line.len() as u64;
        self.events += 1;
        self.bytes += self.line.len() as u64;
        Ok(())
    }

    /// Writes one Parquet file per (class, day) into `out_dir`, named for `batch` (a short,
    /// deterministic label of the batch's input) and its first and last event.
    pub fn finish(
        self,
        batch: &str,
        out_dir: &Path,
        settings: &FileSettings,
    ) -> Result<Vec<Written>, SpoolError> {
        let mut written = Vec::new();
        for ((class, day), mut g) in self.groups {
            g.out.flush().map_err(io("writing", &g.path))?;
            let file = g.out.into_inner().map_err(|e| SpoolError::Io {
                what: "writing",
                path: g.path.clone(),
                source: e.into_error(),
            })?;
            g.entries.sort_unstable();
            let (Some(first), Some(last)) = (g.entries.first(), g.entries.last()) else {
                continue;
            };
            let name = format!(
                "{}-{batch}-{:016x}-{:016x}.parquet",
                class.slug(),
                first.uid_prefix,
                last.uid_prefix
            );
            let path = out_dir.join(&name);
            write_file(class, &file, &g.path, &g.entries, &path, settings)?;
            let bytes = std::fs::metadata(&path)
                .map_err(io("reading", &path))?
                .len();
            written.push(Written {
                class,
                day,
                rows: g.entries.len() as u64,
                name,
                path,
                bytes,
            });
        }
        Ok(written)
    }
}

/// The largest chunk of JSON decoded into one record batch.
const DECODE_BYTES: usize = 8 << 20;

fn write_file(
    class: Class,
    spool: &File,
    spool_path: &Path,
    entries: &[Entry],
    path: &Path,
    settings: &FileSettings,
) -> Result<(), SpoolError> {
    let schema = schema(class);
    let time_column = schema.index_of("time").unwrap_or(0) as i32;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(settings.zstd_level).unwrap_or_default(),
        ))
        .set_data_page_size_limit(settings.page_bytes)
        .set_max_row_group_row_count(Some(settings.row_group_rows.max(1)))
        .set_max_row_group_bytes(Some(settings.row_group_bytes.max(1)))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: time_column,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("aztrail {}", env!("CARGO_PKG_VERSION")))
        .build();
    let out = File::create(path).map_err(io("creating", path))?;
    let parquet_err = |source| SpoolError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(out, Arc::clone(&schema), Some(props)).map_err(parquet_err)?;
    let mut decoder = ReaderBuilder::new(Arc::clone(&schema))
        .with_strict_mode(true)
        .with_batch_size(8192)
        .build_decoder()
        .map_err(|source| SpoolError::Schema {
            class: class.slug(),
            uid: String::new(),
            source,
        })?;
    let mut buf: Vec<u8> = Vec::with_capacity(DECODE_BYTES.min(1 << 20));
    let mut start = 0;
    while start < entries.len() {
        buf.clear();
        let mut end = start;
        while end < entries.len()
            && (end == start || buf.len() < DECODE_BYTES)
            && end - start < 8192
        {
            let e = entries[end];
            let from = buf.len();
            buf.resize(from + e.len as usize, 0);
            spool
                .read_exact_at(&mut buf[from..], e.at)
                .map_err(io("reading", spool_path))?;
            end += 1;
        }
        let schema_err = |source| SpoolError::Schema {
            class: class.slug(),
            uid: format!("{:016x}…", entries[start].uid_prefix),
            source,
        };
        let mut fed = 0;
        while fed < buf.len() {
            let n = decoder.decode(&buf[fed..]).map_err(schema_err)?;
            fed += n;
            if let Some(batch) = decoder.flush().map_err(schema_err)? {
                writer.write(&batch).map_err(parquet_err)?;
            }
            if n == 0 {
                break;
            }
        }
        if let Some(batch) = decoder.flush().map_err(schema_err)? {
            writer.write(&batch).map_err(parquet_err)?;
        }
        start = end;
    }
    writer.close().map_err(parquet_err)?;
    Ok(())
}

/// The S3 key (or relative path) of a file: `<location>/region=<region>/accountId=<account>/
/// eventDay=YYYYMMDD/<name>`, as Security Lake lays out a custom source.
pub fn partition_key(location: &str, region: &str, account: &str, day: u32, name: &str) -> String {
    let location = location.trim_end_matches('/');
    let prefix = if location.is_empty() {
        String::new()
    } else {
        format!("{location}/")
    };
    format!("{prefix}region={region}/accountId={account}/eventDay={day:08}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, TimestampMillisecondArray};
    use aztrail_ocsf::{OcsfMapper, Options};
    use aztrail_transform::{frame_all, Source};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// Every corpus event (`../shared/corpus`, read in place) and many generated ones.
    fn events() -> Vec<OcsfEvent> {
        let mut m = OcsfMapper::new(Options::default());
        let mut out = Vec::new();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("corpus").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
                    let bytes = std::fs::read(&p).expect("corpus file");
                    m.set_source(&Source {
                        bucket: None,
                        key: p.display().to_string(),
                    });
                    frame_all(&bytes, |r| out.extend(m.map(r).ok()));
                }
            }
        }
        let generated = aztrail_transform::synth::generate(3000, 7);
        frame_all(generated.as_bytes(), |r| out.extend(m.map(r).ok()));
        out
    }

    #[test]
    fn a_batch_becomes_one_sorted_file_per_class_and_day_with_every_event_once() {
        let events = events();
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::new(tmp.path()).expect("spool");
        for ev in events.iter().rev() {
            spool.push(ev).expect("spooled");
        }
        let mut groups: BTreeMap<(Class, u32), Vec<&OcsfEvent>> = BTreeMap::new();
        for ev in &events {
            groups.entry((ev.class, ev.day)).or_default().push(ev);
        }
        let settings = FileSettings {
            row_group_rows: 500,
            ..FileSettings::default()
        };
        let written = spool.finish("b1", tmp.path(), &settings).expect("written");
        assert_eq!(written.len(), groups.len());
        for w in &written {
            let want = &groups[&(w.class, w.day)];
            assert_eq!(w.rows as usize, want.len());
            let file = File::open(&w.path).expect("file");
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .expect("parquet")
                .build()
                .expect("reader");
            let mut times = Vec::new();
            for batch in reader {
                let batch = batch.expect("batch");
                let col = batch
                    .column_by_name("time")
                    .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
                    .expect("time in ms");
                times.extend((0..col.len()).map(|i| col.value(i)));
            }
            assert_eq!(times.len(), want.len());
            assert!(times.windows(2).all(|p| p[0] <= p[1]), "sorted by time");
            let mut want_times: Vec<i64> = want.iter().map(|e| e.time_ms).collect();
            want_times.sort_unstable();
            assert_eq!(times, want_times);
            assert!(w.name.starts_with(&format!("{}-b1-", w.class.slug())));
        }
        // Deterministic names: the same events in another order give the same files.
        let mut again = Spool::new(tmp.path()).expect("spool");
        for ev in &events {
            again.push(ev).expect("spooled");
        }
        let out2 = tmp.path().join("again");
        std::fs::create_dir(&out2).expect("dir");
        let names2: Vec<String> = again
            .finish("b1", &out2, &settings)
            .expect("written")
            .into_iter()
            .map(|w| w.name)
            .collect();
        let names1: Vec<String> = written.into_iter().map(|w| w.name).collect();
        assert_eq!(names1, names2);
    }

    #[test]
    fn a_rollback_forgets_what_followed_the_mark() {
        let events = events();
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::new(tmp.path()).expect("spool");
        let (kept, dropped) = events.split_at(events.len() / 2);
        for ev in kept {
            spool.push(ev).expect("spooled");
        }
        let mark = spool.mark();
        for ev in dropped {
            spool.push(ev).expect("spooled");
        }
        spool.rollback(&mark);
        assert_eq!(spool.events(), kept.len() as u64);
        let written = spool
            .finish("b", tmp.path(), &FileSettings::default())
            .expect("written");
        assert_eq!(
            written.iter().map(|w| w.rows).sum::<u64>(),
            kept.len() as u64
        );
    }

    #[test]
    fn keys_follow_security_lakes_layout() {
        assert_eq!(
            partition_key(
                "ext/azure_api/1.0/",
                "us-east-1",
                "123456789012",
                20240102,
                "f.parquet"
            ),
            "ext/azure_api/1.0/region=us-east-1/accountId=123456789012/eventDay=20240102/f.parquet"
        );
    }
}
