//! `aztrail ingest`: new bytes of Azure log blobs into the S3 staging bucket.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aztrail_ingest::auth::AzureAuth;
use aztrail_ingest::fanout::{parse_work_shards, WorkQueue};
use aztrail_ingest::run::{ingest, ingest_work, IngestConfig, IngestLive, IngestSummary};

use super::parse_interval;
use aztrail_ingest::settings::IngestSettings;

/// Copy new bytes of Azure PT1H.json append blobs into the S3 staging bucket.
///
/// Each blob's bytes from where the last run stopped up to its last complete line become one new
/// object, `{staging-prefix}{account}/{container}/{blob path}.{start}-{end}`, written only if
/// absent; per-blob progress is kept in the bucket under _aztrail/ingest/, claimed and committed
/// with conditional writes, so concurrent or retried runs never stage a byte twice.
///
/// Listing follows the window: the directories above each subscription or tenant are walked
/// (and remembered for six hours), then only the day directories within --lookback are listed.
/// --full-scan lists every blob instead (a first backfill).
///
/// Azure credentials, in this order: --azure-secret-arn (Secrets Manager: JSON with
/// connectionString, sasUrl, accountUrl+sasToken or accountUrl+tenantId+clientId+clientSecret,
/// or a bare connection string), else AZTRAIL_AZURE_CREDENTIALS (the same text) from the
/// environment, for local use. An account key is never sent: a short-lived read-and-list SAS is
/// minted from it per container.
///
/// Many workers for one container (a big tenant's central storage account):
///   aztrail ingest --fan-out-to URL    finds the roots and sends them, in --work-shards shards,
///                                      as messages to the "ingest work" SQS queue at URL;
///   aztrail ingest --work-queue URL    takes one message at a time and runs a pass over its
///                                      roots, until interrupted.
/// Workers never stage the same byte (the day shards' claims decide); a worker killed mid-shard
/// leaves its message to reappear after --work-visibility, and its claims to be taken over after
/// --claim-lease.
///
/// Prints a JSON summary per pass (blobs seen, new bytes, objects written, skipped, list calls,
/// state read and written, requests and the most in flight). Exit status 0; 1 when some day
/// shards or listings failed (each named in the warnings; the next pass retries them); 2 on a
/// fatal error.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The S3 staging bucket.
    #[arg(long, env = "AZTRAIL_STAGING_BUCKET")]
    staging_bucket: String,
    #[command(flatten)]
    settings: IngestSettings,
    /// List every blob of the containers instead of the window (a first backfill).
    #[arg(long)]
    full_scan: bool,
    /// Repeat the pass at this interval (1s to 1d, with its unit) until interrupted.
    #[arg(long, value_parser = parse_interval)]
    watch: Option<Duration>,
    /// Secrets Manager secret with the Azure credentials.
    #[arg(long, env = "AZTRAIL_AZURE_SECRET_ARN")]
    azure_secret_arn: Option<String>,
    /// Address S3 with path-style URLs (for S3 emulators such as moto).
    #[arg(long, env = "AZTRAIL_S3_PATH_STYLE")]
    s3_path_style: bool,
    /// Fan out: find the roots and send them as work shards to this SQS queue, then exit.
    #[arg(long, env = "AZTRAIL_INGEST_FAN_OUT_TO", conflicts_with_all = ["work_queue", "watch", "full_scan"])]
    fan_out_to: Option<String>,
    /// With --fan-out-to: how many shards each container's roots are split into (more when one
    /// would not fit in a message). Keep it fixed: each shard remembers what it saw.
    #[arg(long, env = "AZTRAIL_WORK_SHARDS", default_value_t = aztrail_ingest::fanout::DEFAULT_WORK_SHARDS,
          value_parser = parse_work_shards)]
    work_shards: usize,
    /// Work: take work shards from this SQS queue, one at a time, until interrupted.
    #[arg(long, env = "AZTRAIL_INGEST_WORK_QUEUE", conflicts_with_all = ["watch", "full_scan"])]
    work_queue: Option<String>,
    /// With --work-queue: how long a message stays hidden from other workers, renewed at half
    /// that while its pass runs (1s to 12h, with its unit).
    #[arg(long, env = "AZTRAIL_WORK_VISIBILITY", default_value = "5m", value_parser = parse_visibility)]
    work_visibility: Duration,
}

/// A visibility timeout: SQS takes 0 to 12 hours.
fn parse_visibility(s: &str) -> Result<Duration, String> {
    let d = parse_interval(s)?;
    if d > Duration::from_secs(12 * 3600) {
        return Err(format!("{s:?}: a visibility timeout is at most 12h"));
    }
    Ok(d)
}

/// The Azure credentials: from Secrets Manager, else from the environment.
pub async fn azure_auth(
    shared: &aws_config::SdkConfig,
    secret_arn: Option<&str>,
) -> anyhow::Result<AzureAuth> {
    if let Some(arn) = secret_arn {
        let client = aws_sdk_secretsmanager::Client::new(shared);
        return Ok(aztrail_ingest::secrets::auth_from_secret(&client, arn).await?);
    }
    let text = std::env::var("AZTRAIL_AZURE_CREDENTIALS").context(
        "no Azure credentials: give --azure-secret-arn, or set AZTRAIL_AZURE_CREDENTIALS to a connection string, a SAS URL or the JSON a secret would hold",
    )?;
    Ok(AzureAuth::from_secret(&text)?)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let shared = aws_config::load_from_env().await;
        let auth = azure_auth(&shared, args.azure_secret_arn.as_deref()).await?;
        let s3 = super::aws::s3_client(&shared, args.s3_path_style);
        let live = Arc::new(IngestLive::default());
        // SIGTERM or Ctrl-C: the copies under way are finished, what was copied is committed and
        // the claims released (the next run need not wait out the lease); between passes, at once.
        let stop = aztrail_load::loader::Stop::default();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                super::terminated().await;
                stop.set();
            });
        }
        let config = IngestConfig {
            full_scan: args.full_scan,
            live: Some(Arc::clone(&live)),
            stop: stop.clone(),
            ..args.settings.config(
                args.staging_bucket.clone(),
                format!("{}-{}", std::process::id(), now()),
            )
        };
        let sqs = || aws_sdk_sqs::Client::new(&shared);
        if let Some(url) = &args.fan_out_to {
            let queue = WorkQueue {
                sqs: sqs(),
                url: url.clone(),
            };
            return fan_out(&queue, &auth, &s3, &config, args.work_shards).await;
        }
        if let Some(url) = &args.work_queue {
            let queue = WorkQueue {
                sqs: sqs(),
                url: url.clone(),
            };
            let visibility = i32::try_from(args.work_visibility.as_secs()).unwrap_or(43_200);
            return work(&queue, &auth, &s3, &config, visibility).await;
        }
        loop {
            let progress = super::progress::Progress::ingest(&live);
            let result = ingest(&auth, &s3, &config, now()).await;
            drop(progress);
            let summary: IngestSummary = result?;
            super::emit(&(serde_json::to_string_pretty(&summary)? + "\n"))?;
            let status = if summary.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
            if summary.stopped || stop.is_set() {
                return anyhow::Ok(status);
            }
            match args.watch {
                Some(every) => tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = stop.wait() => return anyhow::Ok(status),
                },
                None => return anyhow::Ok(status),
            }
        }
    })
}

/// The scheduler: each container's roots, in work shards, onto the queue; a JSON line each.
async fn fan_out(
    queue: &WorkQueue,
    auth: &AzureAuth,
    s3: &aws_sdk_s3::Client,
    config: &IngestConfig,
    shards: usize,
) -> anyhow::Result<ExitCode> {
    for sent in aztrail_ingest::run::fan_out(auth, s3, config, queue, shards, now()).await? {
        super::emit(&(serde_json::to_string(&sent)? + "\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A worker: one work shard at a time until stopped. A message is deleted once its pass
/// finished with no failure; otherwise it reappears after the visibility timeout (and, after
/// the queue's maximum receives, goes to its dead-letter queue).
async fn work(
    queue: &WorkQueue,
    auth: &AzureAuth,
    s3: &aws_sdk_s3::Client,
    config: &IngestConfig,
    visibility: i32,
) -> anyhow::Result<ExitCode> {
    loop {
        if config.stopping() {
            return Ok(ExitCode::SUCCESS);
        }
        let taken = tokio::select! {
            t = queue.take(10, visibility) => t?,
            () = config.stop.wait() => return Ok(ExitCode::SUCCESS),
        };
        let Some(taken) = taken else { continue };
        let shard = match taken.work {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(message = taken.id, error = %aztrail_load::error_chain(&e), "ingest work");
                continue;
            }
        };
        let heartbeat = {
            let (queue, receipt) = (queue.clone(), taken.receipt.clone());
            tokio::spawn(async move {
                let every = Duration::from_secs(u64::try_from(visibility / 2).unwrap_or(1).max(1));
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = queue.extend(&receipt, visibility).await {
                        tracing::warn!(error = %aztrail_load::error_chain(&e), "keeping the work message hidden");
                    }
                }
            })
        };
        let run = IngestConfig {
            run_id: format!("{}-{}", config.run_id, taken.id),
            ..config.clone()
        };
        let result = ingest_work(auth, s3, &run, now(), &shard).await;
        heartbeat.abort();
        match result {
            Ok(summary) => {
                if !summary.stopped && summary.failed == 0 {
                    queue.done(&taken.receipt).await?;
                }
                super::emit(
                    &(serde_json::json!({
                        "message": taken.id,
                        "container": shard.container,
                        "scope": shard.scope,
                        "summary": summary,
                    })
                    .to_string()
                        + "\n"),
                )?;
            }
            Err(e) => {
                tracing::error!(message = taken.id, scope = shard.scope, error = %aztrail_load::error_chain(&e), "ingest work; the message is retried");
            }
        }
    }
}
