//! `aztrail ingest`: new bytes of Azure log blobs into the S3 staging bucket.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aztrail_ingest::auth::AzureAuth;
use aztrail_ingest::run::{ingest, IngestConfig, IngestLive, IngestSummary};

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
/// Prints a JSON summary per pass (blobs seen, new bytes, objects written, skipped, list calls).
/// Exit status 0; 2 on a fatal error.
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

/// The S3 client of the staging bucket.
pub fn s3_client(shared: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(path_style)
            .build(),
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let shared = aws_config::load_from_env().await;
        let auth = azure_auth(&shared, args.azure_secret_arn.as_deref()).await?;
        let s3 = s3_client(&shared, args.s3_path_style);
        let live = Arc::new(IngestLive::default());
        // SIGTERM or Ctrl-C: the range being copied is finished, what was copied is committed and
        // the claim released (the next run need not wait out the lease); between passes, at once.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::new(tokio::sync::Notify::new());
        {
            let (stop, stopped) = (Arc::clone(&stop), Arc::clone(&stopped));
            tokio::spawn(async move {
                super::terminated().await;
                stop.store(true, Ordering::SeqCst);
                stopped.notify_one();
            });
        }
        let config = IngestConfig {
            full_scan: args.full_scan,
            live: Some(Arc::clone(&live)),
            stop: Some(Arc::clone(&stop)),
            ..args.settings.config(
                args.staging_bucket.clone(),
                format!("{}-{}", std::process::id(), now()),
            )
        };
        loop {
            let progress = super::progress::Progress::ingest(&live);
            let result = ingest(&auth, &s3, &config, now()).await;
            drop(progress);
            let summary: IngestSummary = result?;
            super::emit(&(serde_json::to_string_pretty(&summary)? + "\n"))?;
            if summary.stopped || stop.load(Ordering::SeqCst) {
                return anyhow::Ok(ExitCode::SUCCESS);
            }
            match args.watch {
                Some(every) => tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = stopped.notified() => return anyhow::Ok(ExitCode::SUCCESS),
                },
                None => return anyhow::Ok(ExitCode::SUCCESS),
            }
        }
    })
}
