//! `aztrail lambda load` and `aztrail lambda ingest`: the functions' Lambda runtime loops (wiring
//! only; the handlers are `aztrail_load::lambda::handle_batch` and `aztrail_ingest::run::ingest`).
//!
//! One binary serves both functions: deployed as `bootstrap` on `provided.al2023`, it sees
//! `AWS_LAMBDA_RUNTIME_API` and no arguments, and runs the handler its `_HANDLER` setting names
//! (see `main.rs`). Settings come from the function's environment.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aztrail_load::lambda::handle_batch;
use aztrail_load::metrics::load_metrics;
use aztrail_load::settings::{LoadSettings, Queues};
use lambda_runtime::{service_fn, LambdaEvent};

use super::aws::{clients, Endpoints};

/// Run a Lambda function's runtime loop (normally started by Lambda itself).
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    function: Function,
}

#[derive(clap::Subcommand)]
enum Function {
    /// The load function: SQS batches of S3 notifications, partial batch failures out.
    Load(LoadArgs),
    /// The ingest function: one pass per scheduled invocation.
    Ingest(IngestArgs),
}

/// The ingest function's settings (environment variables in the deployed function).
#[derive(clap::Args)]
struct IngestArgs {
    /// The S3 staging bucket.
    #[arg(long, env = "AZTRAIL_STAGING_BUCKET")]
    staging_bucket: String,
    #[command(flatten)]
    settings: aztrail_ingest::settings::IngestSettings,
    /// The Secrets Manager secret with the Azure credentials.
    #[arg(long, env = "AZTRAIL_AZURE_SECRET_ARN")]
    azure_secret_arn: String,
    /// Seconds before the invocation's deadline at which no new range is started: the ranges
    /// copied are committed and the claim released before Lambda ends the invocation.
    #[arg(long, env = "AZTRAIL_DEADLINE_MARGIN_SECONDS", default_value_t = 60)]
    deadline_margin_seconds: u64,
    /// The function name in metric lines.
    #[arg(
        long,
        env = "AWS_LAMBDA_FUNCTION_NAME",
        default_value = "aztrail-ingest"
    )]
    function_name: String,
}

/// The load function's settings (environment variables in the deployed function).
#[derive(clap::Args)]
struct LoadArgs {
    /// The work queue (for the visibility heartbeat).
    #[arg(long, env = "AZTRAIL_QUEUE_URL")]
    queue_url: String,
    #[command(flatten)]
    endpoints: Endpoints,
    /// The failure queue.
    #[arg(long, env = "AZTRAIL_FAILURE_QUEUE_URL")]
    failure_queue_url: String,
    #[command(flatten)]
    settings: LoadSettings,
    /// Seconds kept in hand before the function's deadline to save checkpoints and answer.
    #[arg(long, env = "AZTRAIL_DEADLINE_MARGIN_SECONDS", default_value_t = 30)]
    deadline_margin_seconds: u64,
    /// Bucket for load checkpoints (default: the staging bucket of each object).
    #[arg(long, env = "AZTRAIL_CHECKPOINT_BUCKET")]
    checkpoint_bucket: Option<String>,
    /// The function name in metric lines.
    #[arg(long, env = "AWS_LAMBDA_FUNCTION_NAME", default_value = "aztrail-load")]
    function_name: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.function {
        Function::Load(a) => run_load(a),
        Function::Ingest(a) => run_ingest(a),
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn run_load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    args.settings.destination.check()?;
    args.settings.check()?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let c = clients(
            &args.endpoints,
            &args.settings.destination,
            true,
            super::aws::Preflight::Skip,
        )
        .await?;
        let queues = Queues {
            work: args.queue_url.clone(),
            failures: args.failure_queue_url.clone(),
            checkpoint_bucket: args.checkpoint_bucket.clone(),
        };
        let mut worker = args.settings.worker(
            &c.aws(),
            &queues,
            Arc::clone(&c.sink),
            args.settings.limiter(),
            args.settings.config(c.account.clone()),
        );
        // One pool of calls for every invocation of this instance; each invocation's deadline
        // is its own argument.
        worker.ensure_pool();
        let worker = &worker;
        let margin = Duration::from_secs(args.deadline_margin_seconds);
        let name = args.function_name.clone();
        let handler = |event: LambdaEvent<SqsEvent>| {
            let name = &name;
            async move {
                let remaining =
                    Duration::from_millis(event.context.deadline.saturating_sub(now_ms()));
                let deadline = tokio::time::Instant::now() + remaining;
                let (response, summary) =
                    handle_batch(worker, event.payload, deadline, margin).await;
                println!("{}", load_metrics(name, &summary, now_ms()));
                Ok::<SqsBatchResponse, lambda_runtime::Error>(response)
            }
        };
        lambda_runtime::run(service_fn(handler))
            .await
            .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn run_ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let shared = aws_config::load_from_env().await;
        let s3 = super::aws::s3_client(&shared, false);
        let args = &args;
        let (shared, s3) = (&shared, &s3);
        let handler = |event: LambdaEvent<serde_json::Value>| async move {
            // Credentials are read at every run, so a rotated secret is picked up.
            let auth = super::ingest::azure_auth(shared, Some(&args.azure_secret_arn)).await?;
            // The remaining time is watched as the load function does: at the deadline less
            // the margin the pass stops starting ranges, commits and releases its claim.
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let remaining = Duration::from_millis(event.context.deadline.saturating_sub(now_ms()))
                .saturating_sub(Duration::from_secs(args.deadline_margin_seconds));
            let timer = {
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    tokio::time::sleep(remaining).await;
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                })
            };
            let config = aztrail_ingest::run::IngestConfig {
                stop: Some(stop),
                ..args.settings.config(
                    args.staging_bucket.clone(),
                    event.context.request_id.clone(),
                )
            };
            let summary =
                aztrail_ingest::run::ingest(&auth, s3, &config, super::ingest::now()).await;
            timer.abort();
            let summary = summary?;
            println!(
                "{}",
                aztrail_ingest::run::metrics_line(&args.function_name, &summary, now_ms())
            );
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(&summary)?)
        };
        lambda_runtime::run(service_fn(handler))
            .await
            .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
