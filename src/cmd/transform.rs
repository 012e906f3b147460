//! `aztrail transform`: Azure records in, PutAuditEvents entries out, one JSON line each.
//!
//! It streams: files are read in chunks through the incremental framer, so memory stays flat
//! whatever the file size. Each event goes to standard output exactly as PutAuditEvents takes it;
//! each rejected record goes to standard error as a JSON line that says where it was and why.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use aztrail_transform::{Framer, Mapper, Source};

use super::{account_of_channel_arn, check_account_id, EXIT_REJECTED};

const CHUNK: usize = 1 << 20;

/// Convert Azure log records (PT1H.json) into CloudTrail Lake PutAuditEvents entries.
///
/// Reads each FILE (standard input when none is given, or for "-"), in JSON Lines, the legacy
/// {"records":[...]} form, a JSON array, or Activity Log REST API pages ({"value":[...],
/// "nextLink":...}, what `az monitor activity-log list` and the API return, for a backfill).
/// Writes one line per event to standard output: {"id":…,"eventData":…} (with
/// "eventDataChecksum" when asked), exactly as PutAuditEvents takes it. Writes one JSON line per
/// rejected record to standard error: {"file","offset","length","code","reason"}.
///
/// Exit status: 0 when every record converted; 1 when the run finished but at least one record
/// was rejected; 2 on a fatal error (a file that could not be read, whose records were
/// not all converted, or bad arguments; the other files are still converted).
#[derive(clap::Args)]
pub struct Args {
    /// Files to read; standard input when none (or "-").
    files: Vec<PathBuf>,
    /// The AWS account that owns the channel (recipientAccountId).
    #[arg(long, env = "AZTRAIL_ACCOUNT_ID", conflicts_with = "channel_arn")]
    account_id: Option<String>,
    /// The CloudTrail Lake channel ARN; recipientAccountId is its account.
    #[arg(long, env = "AZTRAIL_CHANNEL_ARN")]
    channel_arn: Option<String>,
    /// Name this bucket as the records' source in additionalEventData (with the file path as key).
    #[arg(long)]
    source_bucket: Option<String>,
    /// Records longer than this many bytes are passed over unread and reported (RecordTooLarge),
    /// so memory stays bounded whatever the input.
    #[arg(long, env = "AZTRAIL_MAX_RECORD_BYTES", default_value_t = aztrail_transform::framing::DEFAULT_MAX_RECORD_LEN,
          value_parser = aztrail_load::settings::parse_max_record_bytes)]
    max_record_bytes: usize,
    /// Print no summary on a terminal.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// What each event is written as: cloudtrail (PutAuditEvents entries) or ocsf (OCSF 1.1.0
    /// events as JSON, one per line: what --destination securitylake writes as Parquet).
    #[arg(long, value_enum, default_value_t = Format::Cloudtrail)]
    format: Format,
    /// Give each PutAuditEvents entry its eventDataChecksum (base64 SHA-256 of eventData), as
    /// `load --event-data-checksum` sends it.
    #[arg(long, env = "AZTRAIL_EVENT_DATA_CHECKSUM")]
    event_data_checksum: bool,
}

/// The output of `aztrail transform`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// PutAuditEvents entries.
    Cloudtrail,
    /// OCSF 1.1.0 events.
    Ocsf,
}

/// The mapping chosen by --format.
enum Mapping {
    CloudTrail(Box<Mapper>),
    Ocsf(aztrail_ocsf::OcsfMapper),
}

impl Mapping {
    fn set_source(&mut self, source: &Source) {
        match self {
            Mapping::CloudTrail(m) => m.set_source(source),
            Mapping::Ocsf(m) => m.set_source(source),
        }
    }

    /// Appends the event's line to `line`, or says why the record cannot be one.
    fn write(
        &mut self,
        rec: aztrail_transform::Record<'_>,
        line: &mut Vec<u8>,
    ) -> Result<(), aztrail_transform::Rejection> {
        match self {
            Mapping::CloudTrail(m) => m.map(rec).map(|ev| ev.write_entry(line)),
            Mapping::Ocsf(m) => m.map(rec).map(|ev| {
                // Writing a Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *line, &ev.json);
            }),
        }
    }
}

#[derive(Default)]
struct Totals {
    bytes: u64,
    records: u64,
    events: u64,
    rejected: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let account = match (&args.account_id, &args.channel_arn) {
        (Some(id), _) => check_account_id(id)?,
        (None, Some(arn)) => account_of_channel_arn(arn)?,
        (None, None) => "000000000000".to_string(),
    };
    let mut mapper = match args.format {
        Format::Cloudtrail => Mapping::CloudTrail(Box::new(
            Mapper::new(&account).with_checksum(args.event_data_checksum),
        )),
        Format::Ocsf => Mapping::Ocsf(aztrail_ocsf::OcsfMapper::new(Default::default())),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(CHUNK, stdout.lock());
    let stderr = std::io::stderr();
    let mut err = std::io::BufWriter::new(stderr.lock());
    let show_summary = !args.quiet && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut totals = Totals::default();
    let files = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    let mut unreadable = 0;
    for path in &files {
        let name = path.display().to_string();
        let reader: Box<dyn Read> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            match std::fs::File::open(path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    // The other files are still converted; the exit status says this one was not.
                    eprintln!("aztrail: error: opening {name}: {e}");
                    unreadable += 1;
                    continue;
                }
            }
        };
        mapper.set_source(&Source {
            bucket: args.source_bucket.clone(),
            key: if name == "-" {
                "stdin".into()
            } else {
                name.clone()
            },
        });
        let framer = Framer::new()
            .with_max_record_len(args.max_record_bytes)
            .with_digests();
        if let Err(e) = convert(
            reader,
            framer,
            &name,
            &mut mapper,
            &mut out,
            &mut err,
            &mut totals,
        ) {
            if e.downcast_ref::<OutputError>().is_some() {
                return Err(e);
            }
            eprintln!("aztrail: error: {e:#}");
            unreadable += 1;
        }
    }
    out.flush().context("writing events")?;
    err.flush().ok();
    if show_summary {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "aztrail transform: {} records, {} events, {} rejected, {:.1} MB in {:.2}s ({:.0} events/s, {:.1} MB/s)",
            totals.records,
            totals.events,
            totals.rejected,
            totals.bytes as f64 / 1e6,
            secs,
            totals.events as f64 / secs,
            totals.bytes as f64 / 1e6 / secs
        );
    }
    Ok(if unreadable > 0 {
        ExitCode::from(super::EXIT_FATAL)
    } else if totals.rejected > 0 {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}

fn convert(
    mut reader: impl Read,
    mut framer: Framer,
    name: &str,
    mapper: &mut Mapping,
    out: &mut impl Write,
    err: &mut impl Write,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let mut chunk = vec![0u8; CHUNK];
    let mut line = Vec::with_capacity(16 * 1024);
    let io_error = std::cell::RefCell::new(None);
    let mut handle = |rec: aztrail_transform::Record<'_>| {
        if io_error.borrow().is_some() {
            return;
        }
        totals.records += 1;
        line.clear();
        let result = match mapper.write(rec, &mut line) {
            Ok(()) => {
                totals.events += 1;
                line.push(b'\n');
                out.write_all(&line)
            }
            Err(rejection) => {
                totals.rejected += 1;
                let report = serde_json::json!({
                    "file": name,
                    "offset": rec.offset,
                    "length": rec.len(),
                    "code": rejection.code(),
                    "reason": rejection.to_string(),
                });
                writeln!(err, "{report}")
            }
        };
        if let Err(e) = result {
            *io_error.borrow_mut() = Some(e);
        }
    };
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {name}")),
        };
        totals.bytes += n as u64;
        framer.feed(&chunk[..n], &mut handle);
        if io_error.borrow().is_some() {
            break;
        }
    }
    framer.finish(&mut handle);
    match io_error.into_inner() {
        Some(e) => Err(OutputError(e).into()),
        None => Ok(()),
    }
}

/// Standard output or standard error could not be written: nothing more can be done.
#[derive(Debug, thiserror::Error)]
#[error("writing output")]
struct OutputError(#[source] std::io::Error);
