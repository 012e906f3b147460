//! `aztrail load`: staged objects into CloudTrail Lake, from an SQS queue of S3 notifications,
//! from `s3://` URIs, or from local files and directories.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use aztrail_load::checkpoint::MemoryCheckpoints;
use aztrail_load::failure::{AnyFailures, FileFailures, SqsFailures, StderrFailures};
use aztrail_load::loader::{Destination, FailureSink, Live, LoadConfig, Stop, Summary};
use aztrail_load::local::{list_files, DirCheckpoints};
use aztrail_load::notification::ObjectRef;
use aztrail_load::object::{drain, Loaded, LocalObjects, ReadErrors, S3Objects, Step};
use aztrail_load::settings::{LoadSettings, Queues};

use futures::StreamExt as _;

use super::aws::{clients, Endpoints};
use super::progress::Progress;
use super::EXIT_REJECTED;

/// Load staged objects into CloudTrail Lake (PutAuditEvents), CloudWatch Logs (PutLogEvents) or
/// Amazon Security Lake (OCSF Parquet files, in batches: --destination securitylake).
///
/// Work comes from one of three places:
///
///   --queue-url URL      S3 ObjectCreated notifications in SQS (the deployed pipeline). Each
///                        message is deleted once every record of its objects was accepted or
///                        written to --failure-queue-url; a checkpoint per object in the staging
///                        bucket lets a redelivered message skip what was already accepted.
///
///   s3://bucket/key ...  those objects.
///
///   PATH ...             local files, or directories walked recursively (hidden entries skipped).
///
/// Objects ending in .gz are decompressed on the fly. AWS credentials, region and endpoints come
/// from the usual environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>, ...).
///
/// Records that cannot be loaded go, one JSON message each, to --failure-queue-url, or else to
/// --failure-file, or else to standard error. A JSON summary goes to standard output; a
/// progress line to standard error when it is a terminal.
///
/// Local files are loaded from where the last load of the same file (same path, size and
/// modification time) stopped: progress is kept under --state-dir, so a load stopped by SIGTERM
/// or Ctrl-C resumes on the next run without sending a record twice, and a file already loaded
/// is not sent again (--from-start sends it all again; so does a changed file).
///
/// Standard output is JSON Lines: one line per object (`object`, `summary`, `unreadable`), then
/// one `total` line. With --destination securitylake it is one JSON document (`total`: objects,
/// records, events, rejected, files and their keys; `unfinished`: messages left to come back).
///
/// Exit status: 0 when every record was accepted; 1 when some were reported as failures; 2 on a
/// fatal error; 3 when stopped (SIGTERM or Ctrl-C) before the end: the calls in flight were
/// finished, progress saved and the summary printed, and the same command resumes.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Objects to load: s3://bucket/key URIs, local files or directories.
    sources: Vec<String>,
    /// The SQS queue of S3 ObjectCreated notifications.
    #[arg(long, env = "AZTRAIL_QUEUE_URL")]
    queue_url: Option<String>,
    #[command(flatten)]
    endpoints: Endpoints,
    /// The SQS queue for records that could not be loaded (one JSON message each).
    #[arg(long, env = "AZTRAIL_FAILURE_QUEUE_URL")]
    failure_queue_url: Option<String>,
    /// Without a failure queue: append failure messages to this file (JSON lines).
    #[arg(long, conflicts_with = "failure_queue_url")]
    failure_file: Option<PathBuf>,
    /// With --queue-url: stop when the queue is empty instead of waiting for more.
    #[arg(long)]
    until_empty: bool,
    #[command(flatten)]
    settings: LoadSettings,
    /// Keep load checkpoints in this bucket (default: each object's own staging bucket, under
    /// _aztrail/load/).
    #[arg(long, env = "AZTRAIL_CHECKPOINT_BUCKET")]
    checkpoint_bucket: Option<String>,
    /// Where progress through local files is kept (default: $XDG_STATE_HOME/aztrail, else
    /// ~/.local/state/aztrail).
    #[arg(long, env = "AZTRAIL_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Send every record of the local files again, whatever progress was kept for them.
    #[arg(long)]
    from_start: bool,
}

/// Exit status of a load stopped by SIGTERM or Ctrl-C before its end (it resumes when run again).
pub const EXIT_STOPPED: u8 = 3;

/// Where progress through local files is kept: `--state-dir`, else `$XDG_STATE_HOME/aztrail`,
/// else `~/.local/state/aztrail`, else `.aztrail-state` here.
fn state_dir(flag: Option<&std::path::Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_STATE_HOME")
        .map(|d| d.join("aztrail"))
        .or_else(|| var("HOME").map(|h| h.join(".local/state/aztrail")))
        .unwrap_or_else(|| PathBuf::from(".aztrail-state"))
}

/// A local file as an object whose progress can be kept: its absolute path, and an identity
/// from its size and modification time, so that a changed file is loaded again in full (as a
/// re-dropped S3 object is) and an unchanged one resumes.
fn local_object(path: &std::path::Path) -> anyhow::Result<ObjectRef> {
    let abs = std::fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
    let meta = std::fs::metadata(&abs).with_context(|| format!("reading {}", abs.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(ObjectRef {
        size: Some(meta.len()),
        etag: Some(format!("{}-{modified}", meta.len())),
        ..ObjectRef::new("", abs.to_string_lossy())
    })
}

/// A stop that SIGTERM or Ctrl-C sets: calls in flight finish, checkpoints are saved, held
/// messages are released, and the summary is printed.
fn stop_on_signal() -> Stop {
    let stop = Stop::default();
    let set = stop.clone();
    tokio::spawn(async move {
        super::terminated().await;
        eprintln!("aztrail load: stopping: finishing the calls in flight and saving checkpoints");
        set.set();
    });
    stop
}

fn parse_s3_uri(uri: &str) -> anyhow::Result<(String, String)> {
    let rest = uri
        .strip_prefix("s3://")
        .with_context(|| format!("{uri:?} is not an s3://bucket/key URI"))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => anyhow::bail!("{uri:?} is not an s3://bucket/key URI"),
    }
}

/// One thing to load.
enum Item {
    S3 { bucket: String, key: String },
    File(PathBuf),
}

fn items(sources: &[String]) -> anyhow::Result<Vec<Item>> {
    let mut out = Vec::new();
    for s in sources {
        if s.starts_with("s3://") {
            let (bucket, key) = parse_s3_uri(s)?;
            out.push(Item::S3 { bucket, key });
        } else {
            let files = list_files(std::path::Path::new(s))?;
            anyhow::ensure!(!files.is_empty(), "{s}: no files to load");
            out.extend(files.into_iter().map(Item::File));
        }
    }
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.settings.destination.check()?;
    anyhow::ensure!(
        !args.sources.is_empty() || args.queue_url.is_some(),
        "nothing to load: give s3://bucket/key objects, local paths or --queue-url"
    );
    anyhow::ensure!(
        args.queue_url.is_none() || args.failure_queue_url.is_some(),
        "--queue-url needs --failure-queue-url: a message is deleted only once its failures are stored"
    );
    args.settings.check()?;
    if args.settings.destination.destination == aztrail_load::destination::Kind::Securitylake {
        return to_security_lake(args);
    }
    let items = items(&args.sources)?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let c = clients(
            &args.endpoints,
            &args.settings.destination,
            args.queue_url.is_some()
                || args.sources.iter().any(|s| s.starts_with("s3://"))
                || args.failure_queue_url.is_some(),
            super::aws::Preflight::Check,
        )
        .await?;
        let stop = stop_on_signal();
        let limiter = args.settings.limiter();
        // A stop never waits for a rate token.
        limiter.give_way_on(&stop);
        let live = Arc::new(Live::default());
        let config = LoadConfig {
            live: Some(Arc::clone(&live)),
            stop: Some(stop),
            ..args.settings.config(c.account.clone())
        };
        let failures = match (&args.failure_queue_url, &args.failure_file) {
            (Some(url), _) => AnyFailures::Queue(SqsFailures::new(c.sqs.clone(), url)),
            (None, Some(path)) => AnyFailures::File(FileFailures::create(path)?),
            (None, None) => AnyFailures::Stderr(StderrFailures),
        };
        let _progress = Progress::load(&live);
        let mut failed = 0;
        let mut stopped = false;
        if let Some(queue_url) = &args.queue_url {
            failed += from_queue(&args, queue_url, &c, &limiter, &config).await?;
        }
        if !items.is_empty() {
            let dest = Destination {
                sink: &c.sink,
                limiter: &limiter,
                failures: &failures,
            };
            let local = DirCheckpoints::new(&state_dir(args.state_dir.as_deref()));
            let (f, s) = direct(items, &c.s3, &dest, &config, &local, args.from_start).await?;
            failed += f;
            stopped = s;
        }
        anyhow::Ok(if stopped {
            ExitCode::from(EXIT_STOPPED)
        } else if failed > 0 {
            ExitCode::from(EXIT_REJECTED)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// `--destination securitylake`: the objects into OCSF Parquet files, in batches; one JSON
/// summary on standard output.
fn to_security_lake(args: Args) -> anyhow::Result<ExitCode> {
    use super::securitylake::{load_batches, Input, LakeTarget};
    let items = items(&args.sources)?;
    let dest = args.settings.destination.clone();
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let uses_s3 = dest.securitylake.securitylake_bucket.is_some()
            || args.queue_url.is_some()
            || items.iter().any(|i| matches!(i, Item::S3 { .. }));
        let services: &[&str] = if uses_s3 || args.failure_queue_url.is_some() {
            &["S3", "SQS"]
        } else {
            &[]
        };
        let local_only = services.is_empty()
            && dest.securitylake.securitylake_dir.is_some()
            && dest.account_id.is_some();
        let shared = if local_only {
            // Local files into a local directory: nothing reaches AWS.
            super::aws::offline_config().await
        } else {
            super::aws::shared_config(&dest, services).await?
        };
        let s3 = super::aws::s3_client(&shared, args.endpoints.s3_path_style);
        let target = LakeTarget::open(&dest, &shared, &s3, None, None).await?;
        eprintln!("aztrail: destination: {}", target.describe());
        let failures = match (&args.failure_queue_url, &args.failure_file) {
            (Some(url), _) => {
                AnyFailures::Queue(SqsFailures::new(aws_sdk_sqs::Client::new(&shared), url))
            }
            (None, Some(path)) => AnyFailures::File(FileFailures::create(path)?),
            (None, None) => AnyFailures::Stderr(StderrFailures),
        };
        let stop = stop_on_signal();
        let mut total = aztrail_load::securitylake::BatchSummary::default();
        let mut left = 0;
        if let Some(queue_url) = &args.queue_url {
            let aws = aztrail_load::settings::AwsClients {
                s3: s3.clone(),
                sqs: aws_sdk_sqs::Client::new(&shared),
            };
            let q = target
                .drain_queue(
                    &dest,
                    &aws,
                    queue_url,
                    &failures,
                    args.until_empty,
                    Some(&stop),
                )
                .await?;
            eprintln!(
                "aztrail: queue: {} message(s), {} deleted, {} left to come back",
                q.messages, q.deleted, q.left
            );
            left += q.left;
            total.add(&q.batches);
        }
        let inputs = futures::stream::iter(items).then(|item| {
            let s3 = s3.clone();
            async move {
                match item {
                    Item::File(path) => {
                        let body = aztrail_load::local::open_file(&path).await?;
                        anyhow::Ok(Input {
                            source: aztrail_transform::Source {
                                bucket: None,
                                key: path.display().to_string(),
                            },
                            body,
                        })
                    }
                    Item::S3 { bucket, key } => {
                        let got = s3
                            .get_object()
                            .bucket(&bucket)
                            .key(&key)
                            .send()
                            .await
                            .map_err(|e| {
                                anyhow::anyhow!(
                                    "reading s3://{bucket}/{key}: {}",
                                    aztrail_load::error_chain(&e)
                                )
                            })?;
                        let body = aztrail_load::s3::decompressed(&key, got.body.into_async_read());
                        Ok(Input {
                            source: aztrail_transform::Source {
                                bucket: Some(bucket),
                                key,
                            },
                            body,
                        })
                    }
                }
            }
        });
        let batch = target.batch(&dest)?;
        let direct = load_batches(&target, batch, inputs, &failures, |_, s| {
            eprintln!(
                "aztrail: batch of {} object(s): {} events in {} file(s), {} rejected",
                s.objects, s.events, s.files, s.rejected
            );
        })
        .await?;
        total.add(&direct);
        let rejected = total.rejected;
        println!(
            "{}",
            serde_json::json!({ "total": total, "unfinished": left })
        );
        anyhow::Ok(if rejected > 0 || left > 0 {
            ExitCode::from(EXIT_REJECTED)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// The queue worker over `queue_url`; prints its summary and returns the records and messages
/// that failed.
async fn from_queue(
    args: &Args,
    queue_url: &str,
    c: &super::aws::Clients,
    limiter: &Arc<aztrail_load::rate::RateLimiter>,
    config: &LoadConfig,
) -> anyhow::Result<u64> {
    let queues = Queues {
        work: queue_url.to_string(),
        failures: args.failure_queue_url.clone().unwrap_or_default(),
        checkpoint_bucket: args.checkpoint_bucket.clone(),
    };
    let worker = args.settings.worker(
        &c.aws(),
        &queues,
        Arc::clone(&c.sink),
        Arc::clone(limiter),
        config.clone(),
    );
    let summary = worker.run(args.until_empty).await?;
    if summary.released > 0 {
        eprintln!(
            "aztrail load: stopped; {} message(s) released for the next worker, which resumes from their checkpoints",
            summary.released
        );
    }
    super::emit(&(serde_json::to_string_pretty(&summary)? + "\n"))?;
    Ok(summary.load.failed + summary.poison)
}

/// The objects and files named on the command line, through the per-object step and one pool
/// of calls, up to `objects_held` at once: S3 objects from their start, local files from the
/// progress kept in `local` (unless `from_start`). Prints a JSON line per object as it ends and
/// one for the total, and returns the records that failed, the objects that could not be read to
/// the end, and whether a stop cut the load short.
async fn direct<S: aztrail_load::sink::EventSink, F: FailureSink>(
    items: Vec<Item>,
    s3: &aws_sdk_s3::Client,
    dest: &Destination<'_, S, F>,
    config: &LoadConfig,
    local: &DirCheckpoints,
    from_start: bool,
) -> anyhow::Result<(u64, bool)> {
    let config = config.pooled(dest.sink, dest.limiter);
    let (mut in_s3, mut files) = (Vec::new(), Vec::new());
    for item in items {
        match item {
            Item::S3 { bucket, key } => in_s3.push(ObjectRef::new(bucket, key)),
            Item::File(path) => files.push(local_object(&path)?),
        }
    }
    let mut total = Summary::default();
    let (mut unreadable, mut stopped, mut left) = (0u64, false, 0usize);
    let mut fatal: Option<String> = None;
    let mut report = |object: ObjectRef, loaded: Loaded| {
        let name = if object.bucket.is_empty() {
            object.key.clone()
        } else {
            format!("s3://{}/{}", object.bucket, object.key)
        };
        let (summary, error, cut_short) = match loaded {
            Loaded::AlreadyLoaded => (Summary::default(), None, false),
            Loaded::Done {
                summary,
                unreadable,
            } => (summary, unreadable, false),
            Loaded::Stopped { summary, .. } => (summary, None, true),
            Loaded::Unfinished { summary, why } => {
                fatal.get_or_insert(format!("loading {name}: {why}"));
                (summary, None, false)
            }
        };
        unreadable += u64::from(error.is_some());
        stopped |= cut_short;
        total.add(&summary);
        let mut line = serde_json::json!({"object": name, "summary": summary, "unreadable": error});
        if cut_short {
            line["stopped"] = true.into();
        }
        let _ = super::emit(&(line.to_string() + "\n"));
    };
    // s3:// objects named on the command line are loaded whole, each time.
    let no_progress = MemoryCheckpoints::default();
    let from_s3 = S3Objects(s3.clone());
    let on_disk = LocalObjects::default();
    let dest = || Destination {
        sink: dest.sink,
        limiter: dest.limiter,
        failures: dest.failures,
    };
    let held = config.objects_held();
    let s3_step = Step {
        dest: dest(),
        checkpoints: &no_progress,
        objects: &from_s3,
        config: &config,
        read_errors: ReadErrors::Report,
        from_start: true,
    };
    left += drain(&s3_step, futures::stream::iter(in_s3), held, &mut report)
        .await
        .len();
    let disk_step = Step {
        dest: dest(),
        checkpoints: local,
        objects: &on_disk,
        config: &config,
        read_errors: ReadErrors::Report,
        from_start,
    };
    left += drain(&disk_step, futures::stream::iter(files), held, &mut report)
        .await
        .len();
    if let Some(e) = fatal {
        anyhow::bail!(e);
    }
    let stopped = stopped || left > 0;
    let mut line = serde_json::json!({
        "total": total,
        "balanced": total.balanced(),
        "unreadableObjects": unreadable,
    });
    if stopped {
        line["stopped"] = true.into();
        line["objectsNotStarted"] = left.into();
        eprintln!("aztrail load: stopped; progress is saved: run the same command again to resume");
    }
    super::emit(&(serde_json::to_string(&line)? + "\n"))?;
    Ok((total.failed + unreadable, stopped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris() {
        assert_eq!(
            parse_s3_uri("s3://b/k/x.json").unwrap(),
            ("b".into(), "k/x.json".into())
        );
        assert!(parse_s3_uri("s3://b").is_err());
        assert!(parse_s3_uri("https://b/k").is_err());
    }
}
