//! `aztrail lake`: the local CloudTrail Lake — serve PutAuditEvents, query and count the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aztrail_lake::{Db, FaultConfig, Lake, LakeConfig, Store, Sync, DEFAULT_CHANNEL_ARN};

/// A local stand-in for AWS CloudTrail Lake (PutAuditEvents, SQL queries, statistics).
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Serve(ServeArgs),
    Query(QueryArgs),
    Stats(StatsArgs),
}

/// Serve PutAuditEvents over HTTP until Ctrl-C or SIGTERM.
///
/// Point an SDK's endpoint URL at it (any credentials; the SigV4 header's form is checked, not
/// its signature). The first line on standard output is the URL it listens on. A channel for
/// the local account 000000000000 always exists:
/// arn:aws:cloudtrail:us-east-1:000000000000:channel/aztrail-local.
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8687")]
    listen: SocketAddr,
    /// SQLite file that keeps the accepted events.
    #[arg(long, default_value = "aztrail-lake.db")]
    db: PathBuf,
    /// Another channel to accept (repeatable): arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID.
    #[arg(long = "channel")]
    channels: Vec<String>,
    /// How long every call takes, in milliseconds: it is answered this long after its body
    /// arrived (or when its work is done, if that takes longer).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Calls per second per account beyond which calls get ThrottlingException (0: no limit).
    #[arg(long, default_value_t = 100)]
    tps: u32,
    /// Fraction (0 to 1) of events answered with the per-event Throttling error.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    throttle_rate: f64,
    /// Fraction of events answered with the per-event InternalFailure error.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    fail_rate: f64,
    /// Fraction of whole calls answered with HTTP 500.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    error_rate: f64,
    /// Seed of the random faults (the same seed and calls give the same faults).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Flush every call's events to disk before answering (survives power loss, not only a crash
    /// of this process; several times slower).
    #[arg(long)]
    fsync: bool,
}

/// Run a CloudTrail Lake style SQL query over the store.
///
/// Name any event data store after FROM; field names after `eventData.` are case-insensitive,
/// as in CloudTrail Lake. Example:
/// SELECT eventData.uid, eventData.eventName FROM store WHERE eventData.eventSource = 'MICROSOFT.STORAGE'
#[derive(clap::Args)]
struct QueryArgs {
    /// SQLite file of the lake.
    #[arg(long, default_value = "aztrail-lake.db")]
    db: PathBuf,
    /// How to print the rows.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The query.
    sql: String,
}

/// Counts by eventSource, eventName and day, and duplicates by UID.
#[derive(clap::Args)]
struct StatsArgs {
    /// SQLite file of the lake.
    #[arg(long, default_value = "aztrail-lake.db")]
    db: PathBuf,
    /// How to print the counts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

fn fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("{f} is not between 0 and 1"))
    }
}

fn open_existing(db: &std::path::Path) -> anyhow::Result<Store> {
    anyhow::ensure!(
        db.exists(),
        "no lake at {} (start one with `aztrail lake serve --db {}`)",
        db.display(),
        db.display()
    );
    // Queries and counts never write: the store is opened read-only.
    Ok(Store::open_read_only(db)?)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve(a) => serve(a),
        Command::Query(a) => {
            let store = open_existing(&a.db)?;
            let result = store.query(&a.sql)?;
            super::emit(&match a.format {
                Format::Table => result.to_table(),
                Format::Json => result.to_json() + "\n",
                Format::Csv => result.to_csv(),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats(a) => {
            let stats = open_existing(&a.db)?.stats()?;
            super::emit(&match a.format {
                Format::Json => serde_json::to_string_pretty(&stats)? + "\n",
                Format::Table | Format::Csv => stats_table(&stats),
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn stats_table(s: &aztrail_lake::Stats) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "events: {}  distinct UIDs: {}  duplicate events: {}\n",
        s.events, s.distinct_uids, s.duplicate_events
    );
    let mut section = |title: &str, rows: &[(String, u64)]| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{title}");
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, n) in rows {
            let _ = writeln!(out, "  {k:<w$}  {n:>9}");
        }
    };
    section("duplicated UIDs", &s.duplicated_uids);
    section("by eventSource", &s.by_event_source);
    section("by eventName (top 20)", &s.by_event_name);
    section("by day", &s.by_day);
    out
}

fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = LakeConfig {
        listen: a.listen,
        db: Db::File(a.db.clone()),
        channels: a.channels,
        faults: FaultConfig {
            latency: Duration::from_millis(a.latency_ms),
            tps: a.tps,
            throttle_rate: a.throttle_rate,
            fail_rate: a.fail_rate,
            error_rate: a.error_rate,
            seed: a.seed,
        },
        sync: if a.fsync { Sync::Full } else { Sync::Process },
        limits: aztrail_lake::connections::ConnLimits::default(),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let lake = Lake::start(config).await?;
        println!("{}", lake.url());
        eprintln!(
            "aztrail lake: PutAuditEvents at {} (store {}, default channel {DEFAULT_CHANNEL_ARN}); Ctrl-C stops",
            lake.url(),
            a.db.display()
        );
        use std::io::Write;
        std::io::stdout().flush().ok();
        lake.serve_until_signal().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
