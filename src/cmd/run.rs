//! `aztrail run`: the whole pipeline, ingest → stage → notify → load → lake, in one command.
//!
//! By default every part is a local stand-in: a directory laid out like an Azure storage account
//! (generated on first run), a staging directory whose new objects are announced on an in-process
//! queue, and the local lake in a SQLite file. Flags swap in the real parts one by one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use aztrail_ingest::azure::Container;
use aztrail_ingest::checkpoint::CheckpointStore;
use aztrail_ingest::local::{LocalContainer, LocalStaging};
use aztrail_ingest::run::{ingest_with, IngestConfig, IngestSummary};
use aztrail_ingest::source::{S3Staging, Staging};
use aztrail_ingest::stage::Stager;
use aztrail_lake::{FaultConfig, Lake, LakeConfig, DEFAULT_CHANNEL_ARN, LOCAL_ACCOUNT};
use aztrail_load::cloudtrail::CloudTrailSink;
use aztrail_load::destination::{writer_name, DestinationSettings, Kind, Sink};
use aztrail_load::failure::FileFailures;
use aztrail_load::loader::{Destination, Live, LoadConfig, Summary};
use aztrail_load::local::DirCheckpoints;
use aztrail_load::object::{drain, Loaded, LocalObjects, ReadErrors, Step};
use aztrail_load::settings::{AwsClients, LoadSettings, Queues};
use aztrail_load::sqs::WorkerSummary;
use aztrail_transform::synth;
use clap::builder::TypedValueParser as _;

use super::progress::Progress;
use super::EXIT_REJECTED;

/// Run the whole pipeline once: Azure logs → staging → queue → loader → CloudTrail Lake (or
/// CloudWatch Logs).
///
/// With no flags everything runs on this machine, under --dir (default ./aztrail-run):
///
///   source/     a directory laid out like an Azure storage account (one directory per
///               container, Azure's resourceId=/…/y=/m=/d=/h=/m=00/PT1H.json paths inside);
///               an example of generated records is written there on first run
///   staging/    the staged objects (and _aztrail/ checkpoints); each new one is announced on an
///               in-process queue, as S3 would notify SQS
///   lake.db     the local CloudTrail Lake, queried at the end
///   failures.jsonl   records that could not be loaded, one JSON line each, with the reason
///
/// Running it again loads only what is new: append to a source blob and run again.
///
/// Swap in real parts with: --source DIR (your own container tree); --azure-secret-arn ARN or
/// --azure (credentials from AZTRAIL_AZURE_CREDENTIALS) for Azure Storage; --staging-bucket with
/// --queue-url and --failure-queue-url for S3 + SQS (the bucket must notify the queue);
/// --channel-arn (with --cloudtrail-endpoint for a stand-in) for CloudTrail Lake; or
/// --destination cloudwatch --log-group NAME (with --logs-endpoint for a stand-in) for
/// CloudWatch Logs; or --destination securitylake for OCSF Parquet files, written under
/// DIR/securitylake/ (the same tree as in Security Lake's bucket; --securitylake-bucket for S3),
/// one file per class and day for each batch of staged objects.
///
/// Prints progress on a terminal, then a JSON summary: what ingest staged, what load did
/// (records = skipped + accepted + failed, where skipped were loaded by an earlier run), the
/// lake's counts by UID and the validation query's rows.
/// Exit status 0 when everything was loaded; 1 when some records failed; 2 on a fatal error.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Working directory of the embedded default.
    #[arg(long, default_value = "aztrail-run")]
    dir: PathBuf,
    /// A local directory laid out like an Azure storage account (default: DIR/source).
    #[arg(long)]
    source: Option<PathBuf>,
    #[command(flatten)]
    ingest: aztrail_ingest::settings::IngestSettings,
    /// Read Azure Storage with the credentials in this Secrets Manager secret.
    #[arg(long)]
    azure_secret_arn: Option<String>,
    /// Read Azure Storage with the credentials in AZTRAIL_AZURE_CREDENTIALS.
    #[arg(long)]
    azure: bool,
    /// Stage into this S3 bucket (needs --queue-url and --failure-queue-url).
    #[arg(long, requires_all = ["queue_url", "failure_queue_url"])]
    staging_bucket: Option<String>,
    /// The SQS queue the staging bucket notifies.
    #[arg(long)]
    queue_url: Option<String>,
    /// The SQS queue for records that could not be loaded.
    #[arg(long)]
    failure_queue_url: Option<String>,
    /// Address S3 with path-style URLs (for S3 emulators such as moto).
    #[arg(long)]
    s3_path_style: bool,
    /// Records per blob in the generated example (1 to 1000000; six blobs in all).
    #[arg(long, default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|n| n as usize))]
    example_records: usize,
    #[command(flatten)]
    settings: LoadSettings,
    /// The validation query run on the local lake at the end.
    #[arg(
        long,
        default_value = "SELECT eventData.eventSource, eventData.eventName, COUNT(*) AS events FROM aztrail GROUP BY eventData.eventSource, eventData.eventName ORDER BY events DESC LIMIT 10"
    )]
    query: String,
}

/// Seconds since the epoch.
fn now() -> i64 {
    super::ingest::now()
}

/// Writes an example storage account under `dir`: for each container, two sources (a
/// subscription, a tenant) with a blob for each of the last three hours.
fn write_example(dir: &Path, containers: &[String], records: usize) -> anyhow::Result<u64> {
    let mut total = 0;
    for (ci, container) in containers.iter().enumerate() {
        let root = if container.contains("auditlogs") || container.contains("signin") {
            "tenantId=72f988bf-86f1-41af-91ab-2d7cd011db47/".to_string()
        } else {
            "resourceId=/SUBSCRIPTIONS/6B1A0F9E-2C4D-4E8F-9A1B-3C5D7E9F1A2B/".to_string()
        };
        for hours_ago in 0..3i64 {
            let iso = aztrail_transform::time::UtcSeconds(now() - hours_ago * 3600).to_iso();
            let blob = format!(
                "{root}y={}/m={}/d={}/h={}/m=00/PT1H.json",
                &iso[0..4],
                &iso[5..7],
                &iso[8..10],
                &iso[11..13]
            );
            let path = dir.join(container).join(&blob);
            std::fs::create_dir_all(path.parent().context("a blob path has a parent")?)
                .with_context(|| format!("creating {}", path.display()))?;
            let seed = (ci as u64) * 100 + hours_ago as u64;
            // The records' times end at the blob's hour's "now", as Azure writes them (and as
            // CloudWatch Logs, which takes nothing older than 14 days, needs them).
            let end = now() - hours_ago * 3600;
            let start = end.saturating_sub(records as i64 * 36 / 100).max(0) as u64;
            // Written record by record: the example's size never sits in memory.
            let written = (|| {
                use std::io::Write;
                let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
                let mut generator = synth::Generator::new(seed).starting_at(start);
                let mut line = String::new();
                for _ in 0..records {
                    line.clear();
                    generator.record(&mut line);
                    line.push('\n');
                    out.write_all(line.as_bytes())?;
                }
                out.flush()
            })();
            written.with_context(|| format!("writing {}", path.display()))?;
            total += records as u64;
        }
    }
    Ok(total)
}

/// Holds `dir/.lock` for the run: the embedded default's directory serves one run at a time.
fn lock_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another aztrail run is using {} (it holds {}); wait for it or use another --dir",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Removes the half-written objects a killed run left in the staging directory (named
/// `.partial-…`; an object only gets its name once complete).
fn remove_partial_objects(staging: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(staging) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", staging.display())),
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(".partial-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

/// Where blobs come from.
enum Sources {
    Local(Vec<LocalContainer>),
    Azure(Vec<Container>, String),
}

impl Sources {
    /// One ingest pass over these sources into `staging`.
    async fn ingest<T: Staging>(
        &self,
        staging: &T,
        config: &IngestConfig,
    ) -> Result<IngestSummary, aztrail_ingest::run::IngestError> {
        match self {
            Sources::Local(v) => ingest_with(v, staging, "local", config, now()).await,
            Sources::Azure(v, account) => ingest_with(v, staging, account, config, now()).await,
        }
    }
}

/// One ingest pass into the local staging directory whose consumer reads `rx`: first the keys of
/// `unfinished` (a killed run's objects, which nothing else would announce again), then each
/// object as it is staged; the channel closes when the pass ends.
fn stage_locally<'a>(
    staging_dir: &Path,
    unfinished: Vec<String>,
    sources: Sources,
    config: &'a IngestConfig,
) -> (
    tokio::sync::mpsc::UnboundedReceiver<String>,
    impl std::future::Future<Output = Result<IngestSummary, aztrail_ingest::run::IngestError>> + 'a,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for key in unfinished {
        let _ = tx.send(key);
    }
    let staging = LocalStaging::new(staging_dir, Some(tx));
    let ingest = async move {
        let s = sources.ingest(&staging, config).await;
        drop(staging); // closes the queue: the consumer ends once it is drained
        s
    };
    (rx, ingest)
}

/// Staging in `bucket`: its objects and its ingest checkpoints.
fn s3_staging(s3: &aws_sdk_s3::Client, bucket: &str) -> S3Staging {
    S3Staging {
        checkpoints: CheckpointStore {
            s3: s3.clone(),
            bucket: bucket.to_string(),
        },
        stager: Stager {
            s3: s3.clone(),
            bucket: bucket.to_string(),
            part_size: 8 * 1024 * 1024,
        },
    }
}

/// Whether the run sends to the embedded local lake: CloudTrail Lake with no channel named.
fn local_lake(dest: &DestinationSettings) -> bool {
    dest.destination == Kind::Cloudtrail && dest.channel_arn.is_none()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.settings.destination.destination == Kind::Securitylake {
        return super::runtime()?.block_on(to_security_lake(args));
    }
    args.settings.check()?;
    if !local_lake(&args.settings.destination) {
        args.settings.destination.check()?;
    }
    let runtime = super::runtime()?;
    runtime.block_on(pipeline(args))
}

/// A line about the run, on standard error.
/// `, see DIR/failures.jsonl` when records failed, for the summary line.
fn failures_hint(dir: &Path, failed: u64) -> String {
    if failed > 0 {
        format!(", see {}", dir.join("failures.jsonl").display())
    } else {
        String::new()
    }
}

fn say(line: impl std::fmt::Display) {
    eprintln!("aztrail run: {line}");
}

async fn pipeline(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // The AWS services this run calls besides its destination.
    let mut services = Vec::new();
    if args.staging_bucket.is_some() {
        services.extend(["S3", "SQS"]);
    }
    if args.azure_secret_arn.is_some() {
        services.push("SECRETS_MANAGER");
    }
    let shared = if local_lake(&args.settings.destination) && services.is_empty() {
        // Nothing here reaches AWS: no credentials or region are looked for.
        super::aws::offline_config().await
    } else {
        super::aws::shared_config(&args.settings.destination, &services).await?
    };
    // The working directory holds the local stand-ins: not needed when every part is real.
    if args.staging_bucket.is_none() || local_lake(&args.settings.destination) {
        std::fs::create_dir_all(&args.dir)
            .with_context(|| format!("creating {}", args.dir.display()))?;
    }
    let sources = open_source(&args, &shared).await?;
    let (lake, sink, account) = open_destination(&args, &shared).await?;
    let sink = Arc::new(sink);
    let live = Arc::new(Live::default());
    let load_config = LoadConfig {
        live: Some(Arc::clone(&live)),
        ..args.settings.config(account)
    };
    let mut ingest_config = args.ingest.config(
        args.staging_bucket.clone().unwrap_or_default(),
        format!("run-{}-{}", std::process::id(), now()),
    );
    // Local staging belongs to the one run that holds the lock: a claim found there is a
    // killed run's, taken over at once instead of after the lease.
    let _lock = match &args.staging_bucket {
        None => {
            ingest_config.claim_lease_seconds = 0;
            Some(lock_dir(&args.dir)?)
        }
        Some(_) => None,
    };
    let progress = Progress::load(&live);
    let load = Load {
        sink,
        limiter: args.settings.limiter(),
        config: load_config,
    };
    let (ingest, load_summary, left) = match &args.staging_bucket {
        None => through_local_staging(&args, sources, &ingest_config, &load).await?,
        Some(bucket) => through_s3(&args, &shared, bucket, sources, &ingest_config, &load).await?,
    };
    drop(progress);
    report(&args, ingest, load_summary, left, lake, started).await
}

/// The source: Azure Storage, or a local directory (the generated example by default).
async fn open_source(args: &Args, shared: &aws_config::SdkConfig) -> anyhow::Result<Sources> {
    if args.azure || args.azure_secret_arn.is_some() {
        let auth = super::ingest::azure_auth(shared, args.azure_secret_arn.as_deref()).await?;
        let list_calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let containers = args
            .ingest
            .containers
            .iter()
            .map(|c| Container::new(&auth, c, now(), 3600, Arc::clone(&list_calls)))
            .collect::<Result<Vec<_>, _>>()?;
        say(format!("source: Azure Storage {}", auth.account_url()));
        return Ok(Sources::Azure(containers, auth.account_name()));
    }
    let dir = args
        .source
        .clone()
        .unwrap_or_else(|| args.dir.join("source"));
    if args.source.is_none() && !dir.exists() {
        // Written aside and renamed: a run killed while writing leaves no half example.
        let partial = args.dir.join(".source.partial");
        let _ = std::fs::remove_dir_all(&partial);
        let n = write_example(&partial, &args.ingest.containers, args.example_records)?;
        std::fs::rename(&partial, &dir)
            .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
        say(format!(
            "wrote an example storage account of {n} generated records to {}",
            dir.display()
        ));
    }
    anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
    say(format!("source: local directory {}", dir.display()));
    Ok(Sources::Local(
        args.ingest
            .containers
            .iter()
            .map(|c| LocalContainer::new(&dir, c))
            .collect(),
    ))
}

/// The destination: the local lake unless one is named; its sink and the account events name.
async fn open_destination(
    args: &Args,
    shared: &aws_config::SdkConfig,
) -> anyhow::Result<(Option<Lake>, Sink, String)> {
    if local_lake(&args.settings.destination) {
        let db = args.dir.join("lake.db");
        let lake = Lake::start(LakeConfig {
            faults: FaultConfig::default(),
            ..LakeConfig::with_file(&db)
        })
        .await
        .with_context(|| format!("starting the local lake on {}", db.display()))?;
        say(format!("lake: {} (store {})", lake.url(), db.display()));
        // The local lake checks the signature's form only; no AWS account is needed.
        let sink = Sink::CloudTrail(CloudTrailSink::for_endpoint(
            &lake.url(),
            DEFAULT_CHANNEL_ARN,
        ));
        return Ok((Some(lake), sink, LOCAL_ACCOUNT.to_string()));
    }
    let dest = &args.settings.destination;
    let sink = dest.sink(shared, &writer_name())?;
    sink.preflight()
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", sink.describe()))?;
    say(format!("destination: {}", sink.describe()));
    Ok((None, sink, dest.account(shared).await?))
}

/// `--destination securitylake` on local staging: ingest as usual, and the staged objects, as
/// they are announced, into OCSF Parquet files in batches. Objects a killed run staged but did
/// not write into files are read again first (the acknowledged ones are listed in
/// DIR/securitylake-acknowledged.txt).
async fn to_security_lake(args: Args) -> anyhow::Result<ExitCode> {
    use super::securitylake::{load_batches, Input, LakeTarget};
    use futures::StreamExt as _;
    let started = Instant::now();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let _lock = lock_dir(&args.dir)?;
    let dest = args.settings.destination.clone();
    let mut services = Vec::new();
    if dest.securitylake.securitylake_bucket.is_some() || args.staging_bucket.is_some() {
        services.push("S3");
    }
    if args.staging_bucket.is_some() {
        services.push("SQS");
    }
    if args.azure_secret_arn.is_some() {
        services.push("SECRETS_MANAGER");
    }
    let shared = if services.is_empty() {
        super::aws::offline_config().await
    } else {
        super::aws::shared_config(&dest, &services).await?
    };
    let s3 = super::aws::s3_client(&shared, args.s3_path_style);
    let target = LakeTarget::open(
        &dest,
        &shared,
        &s3,
        Some(&args.dir.join("securitylake")),
        Some(LOCAL_ACCOUNT),
    )
    .await?;
    say(format!("destination: {}", target.describe()));
    let sources = open_source(&args, &shared).await?;
    if let Some(bucket) = &args.staging_bucket {
        return security_lake_through_s3(&args, &shared, &s3, bucket, sources, &target, started)
            .await;
    }
    let mut ingest_config = args.ingest.config(
        String::new(),
        format!("run-{}-{}", std::process::id(), now()),
    );
    ingest_config.claim_lease_seconds = 0;
    let staging_dir = args.dir.join("staging");
    remove_partial_objects(&staging_dir)?;
    let ledger_path = args.dir.join("securitylake-acknowledged.txt");
    let acknowledged: std::collections::HashSet<String> = std::fs::read_to_string(&ledger_path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let mut unfinished = Vec::new();
    staged_objects(&staging_dir, &staging_dir, &mut unfinished)?;
    unfinished.retain(|k| !acknowledged.contains(k));
    if !unfinished.is_empty() {
        say(format!(
            "resuming {} staged object(s) a previous run did not write into files",
            unfinished.len()
        ));
    }
    let (mut rx, ingest_side) = stage_locally(&staging_dir, unfinished, sources, &ingest_config);
    let failures = FileFailures::create(&args.dir.join("failures.jsonl"))?;
    let dir = staging_dir.clone();
    let inputs = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).then(move |key| {
        let path = dir.join(&key);
        async move {
            let body = aztrail_load::local::open_file(&path).await?;
            anyhow::Ok(Input {
                source: aztrail_transform::Source { bucket: None, key },
                body,
            })
        }
    });
    let batch = target.batch(&dest)?;
    let mut ledger = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ledger_path)
        .with_context(|| format!("opening {}", ledger_path.display()))?;
    let load_side = load_batches(&target, batch, inputs, &failures, |sources, s| {
        use std::io::Write as _;
        for src in sources {
            let _ = writeln!(ledger, "{}", src.key);
        }
        let _ = ledger.sync_data();
        say(format!(
            "batch of {} object(s): {} events in {} file(s), {} rejected",
            s.objects, s.events, s.files, s.rejected
        ));
    });
    let (i, l) = tokio::join!(ingest_side, load_side);
    let (ingest, load) = (i?, l?);
    eprintln!(
        "aztrail run: staged {} new bytes in {} objects; wrote {} of {} records as OCSF into {} Parquet file(s) ({} rejected{}) ({:.1} s)",
        ingest.new_bytes,
        ingest.objects_written,
        load.events,
        load.records,
        load.files,
        load.rejected,
        failures_hint(&args.dir, load.rejected),
        started.elapsed().as_secs_f64()
    );
    let out = serde_json::json!({ "ingest": ingest, "securitylake": load });
    super::emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
    Ok(if load.rejected > 0 {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--destination securitylake --staging-bucket`: ingest into the bucket, then the queue worker
/// writes its notifications' objects into batches of files until the queue is empty.
async fn security_lake_through_s3(
    args: &Args,
    shared: &aws_config::SdkConfig,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    sources: Sources,
    target: &super::securitylake::LakeTarget,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let dest = &args.settings.destination;
    let sqs = aws_sdk_sqs::Client::new(shared);
    let staging = s3_staging(s3, bucket);
    let ingest_config = args.ingest.config(
        bucket.to_string(),
        format!("run-{}-{}", std::process::id(), now()),
    );
    let ingest = sources.ingest(&staging, &ingest_config).await?;
    let queue_url = args.queue_url.clone().context("--queue-url")?;
    let failures = aztrail_load::failure::SqsFailures::new(
        sqs.clone(),
        args.failure_queue_url
            .clone()
            .context("--failure-queue-url")?,
    );
    let aws = AwsClients {
        s3: s3.clone(),
        sqs,
    };
    let q = target
        .drain_queue(dest, &aws, &queue_url, &failures, true, None)
        .await?;
    eprintln!(
        "aztrail run: staged {} new bytes in {} objects; {} message(s), wrote {} of {} records as OCSF into {} Parquet file(s) ({} rejected, {} message(s) left) ({:.1} s)",
        ingest.new_bytes,
        ingest.objects_written,
        q.messages,
        q.batches.events,
        q.batches.records,
        q.batches.files,
        q.batches.rejected,
        q.left,
        started.elapsed().as_secs_f64()
    );
    let out = serde_json::json!({ "ingest": ingest, "securitylake": q });
    super::emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
    Ok(if q.batches.rejected > 0 || q.left > 0 {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The staged objects under `dir` (not the `_aztrail` checkpoints), as keys relative to `root`.
fn staged_objects(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "_aztrail" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            staged_objects(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(())
}

/// Where and how the run loads.
struct Load {
    sink: Arc<Sink>,
    limiter: Arc<aztrail_load::rate::RateLimiter>,
    config: LoadConfig,
}

/// The embedded default: ingest into a staging directory whose new objects are announced on an
/// in-process queue, loaded as they come (each from its checkpoint), failures to a file.
async fn through_local_staging(
    args: &Args,
    sources: Sources,
    ingest_config: &IngestConfig,
    load: &Load,
) -> anyhow::Result<(IngestSummary, Summary, u64)> {
    let staging_dir = args.dir.join("staging");
    let failures = FileFailures::create(&args.dir.join("failures.jsonl"))?;
    let checkpoints = DirCheckpoints::new(&staging_dir);
    remove_partial_objects(&staging_dir)?;
    // What a killed run staged but did not finish loading goes first, from its checkpoint.
    let unfinished = checkpoints
        .unfinished()
        .await
        .context("reading the load checkpoints")?;
    if !unfinished.is_empty() {
        say(format!(
            "resuming {} staged object(s) a previous run did not finish loading",
            unfinished.len()
        ));
    }
    let (rx, ingest_side) = stage_locally(&staging_dir, unfinished, sources, ingest_config);
    let dest = Destination {
        sink: &load.sink,
        limiter: &load.limiter,
        failures: &failures,
    };
    // The staged objects as they are announced, through the per-object step, many at once, their
    // batches sharing the pool's calls (as the queue worker loads them).
    let config = load.config.pooled(&load.sink, &load.limiter);
    let staged = LocalObjects {
        root: Some(staging_dir.clone()),
    };
    let step = Step {
        dest,
        checkpoints: &checkpoints,
        objects: &staged,
        config: &config,
        read_errors: ReadErrors::Report,
        from_start: false,
    };
    let announced = futures::stream::unfold(rx, |mut rx| async move {
        let key = rx.recv().await?;
        Some((DirCheckpoints::object(&key), rx))
    });
    let load_side = async {
        let mut total = Summary::default();
        let mut unreadable = 0u64;
        let mut fatal = None;
        drain(
            &step,
            announced,
            config.objects_held(),
            |object, loaded| match loaded {
                Loaded::AlreadyLoaded => {}
                Loaded::Done {
                    summary,
                    unreadable: why,
                } => {
                    total.add(&summary);
                    unreadable += u64::from(why.is_some());
                }
                Loaded::Stopped { summary, .. } => total.add(&summary),
                Loaded::Unfinished { summary, why } => {
                    total.add(&summary);
                    fatal.get_or_insert(format!("loading {}: {why}", object.key));
                }
            },
        )
        .await;
        match fatal {
            Some(e) => Err(anyhow::anyhow!(e)),
            None => anyhow::Ok((total, unreadable)),
        }
    };
    let (i, l) = tokio::join!(ingest_side, load_side);
    let (l, unreadable) = l?;
    Ok((i?, l, unreadable))
}

/// Real AWS parts: ingest into the staging bucket, then the queue worker until the queue is
/// empty.
async fn through_s3(
    args: &Args,
    shared: &aws_config::SdkConfig,
    bucket: &str,
    sources: Sources,
    ingest_config: &IngestConfig,
    load: &Load,
) -> anyhow::Result<(IngestSummary, Summary, u64)> {
    let s3 = super::aws::s3_client(shared, args.s3_path_style);
    let sqs = aws_sdk_sqs::Client::new(shared);
    let staging = s3_staging(&s3, bucket);
    let i = sources.ingest(&staging, ingest_config).await?;
    let queues = Queues {
        work: args.queue_url.clone().context("--queue-url")?,
        failures: args
            .failure_queue_url
            .clone()
            .context("--failure-queue-url")?,
        checkpoint_bucket: None,
    };
    let worker = args.settings.worker(
        &AwsClients { s3, sqs },
        &queues,
        Arc::clone(&load.sink),
        Arc::clone(&load.limiter),
        load.config.clone(),
    );
    let w: WorkerSummary = worker.run(true).await?;
    Ok((i, w.load, w.left))
}

/// Prints the summary (and the validation query on the local lake) and picks the exit status.
async fn report(
    args: &Args,
    ingest: IngestSummary,
    load: Summary,
    // Messages left in the queue, or objects that could not be read to their end.
    left: u64,
    lake: Option<Lake>,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let mut out = serde_json::json!({
        "ingest": ingest,
        "load": load,
        "balanced": load.balanced(),
        "unfinished": left,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    if let Some(lake) = lake {
        let stats = lake.stats().await?;
        let rows = lake
            .query(&args.query)
            .await
            .with_context(|| format!("the validation query {:?}", args.query))?;
        eprintln!(
            "aztrail run: staged {} new bytes in {} objects; loaded {} of {} records ({} failed{}); the lake holds {} events, {} distinct UIDs, {} duplicates ({:.1} s)",
            ingest.new_bytes,
            ingest.objects_written,
            load.accepted,
            load.records,
            load.failed,
            failures_hint(&args.dir, load.failed),
            stats.events,
            stats.distinct_uids,
            stats.duplicate_events,
            started.elapsed().as_secs_f64()
        );
        out["lake"] = serde_json::json!({
            "events": stats.events,
            "distinctUids": stats.distinct_uids,
            "duplicateEvents": stats.duplicate_events,
        });
        out["validation"] = serde_json::json!({"query": args.query, "result": rows});
        lake.stop().await;
    }
    super::emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
    Ok(if load.failed > 0 || left > 0 {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}
