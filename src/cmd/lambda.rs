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
    Load(Box<LoadArgs>),
    /// The ingest function: one pass per scheduled invocation; with a work queue, the
    /// scheduled invocation fans out and SQS batches of work shards are passes of their roots.
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
    /// The "ingest work" queue: a scheduled invocation sends the roots there in work shards
    /// instead of passing over them itself (the queue triggers this function).
    #[arg(long, env = "AZTRAIL_INGEST_WORK_QUEUE_URL")]
    work_queue_url: Option<String>,
    /// How many work shards each container's roots are split into.
    #[arg(long, env = "AZTRAIL_WORK_SHARDS", default_value_t = aztrail_ingest::fanout::DEFAULT_WORK_SHARDS,
          value_parser = aztrail_ingest::fanout::parse_work_shards)]
    work_shards: usize,
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
        Function::Load(a) => run_load(*a),
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
    if args.settings.destination.destination == aztrail_load::destination::Kind::Securitylake {
        return run_load_securitylake(args);
    }
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

/// The load function for Security Lake: each invocation (up to the trigger's batching window of
/// notifications) is one batch of files; the messages whose objects could not be read, or all
/// of them if the files could not be written, are returned to the queue.
fn run_load_securitylake(args: LoadArgs) -> anyhow::Result<ExitCode> {
    use aztrail_load::securitylake::queue::handle_lambda_batch;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let dest = args.settings.destination.clone();
        let shared = super::aws::shared_config(&dest, &["S3", "SQS"]).await?;
        let s3 = super::aws::s3_client(&shared, args.endpoints.s3_path_style);
        let target = super::securitylake::LakeTarget::open(&dest, &shared, &s3, None, None).await?;
        let failures = aztrail_load::failure::SqsFailures::new(
            aws_sdk_sqs::Client::new(&shared),
            args.failure_queue_url.clone(),
        );
        let (target, s3, failures, dest) = (&target, &s3, &failures, &dest);
        let margin = Duration::from_secs(args.deadline_margin_seconds);
        let handler = |event: LambdaEvent<SqsEvent>| async move {
            let batch = target
                .batch(dest)
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            let remaining = Duration::from_millis(event.context.deadline.saturating_sub(now_ms()));
            let deadline = tokio::time::Instant::now() + remaining;
            let lambda_target = aztrail_load::securitylake::queue::LambdaTarget {
                s3,
                failures,
                layout: &target.layout,
                output: &target.output,
                stop_reading_at: deadline
                    .checked_sub(margin)
                    .unwrap_or_else(tokio::time::Instant::now),
            };
            let (response, summary) =
                handle_lambda_batch(batch, &lambda_target, event.payload).await;
            println!("{}", serde_json::json!({ "securitylake": summary }));
            Ok::<SqsBatchResponse, lambda_runtime::Error>(response)
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
        let sqs = aws_sdk_sqs::Client::new(&shared);
        // What a warm instance keeps between invocations (the roots, read again only when
        // their ETag changed).
        let remembered = Arc::new(aztrail_ingest::checkpoint::Remembered::default());
        let args = &args;
        let (shared, s3, sqs, remembered) = (&shared, &s3, &sqs, &remembered);
        let handler = |event: LambdaEvent<serde_json::Value>| async move {
            // Credentials are read at every run, so a rotated secret is picked up.
            let auth = super::ingest::azure_auth(shared, Some(&args.azure_secret_arn)).await?;
            // The remaining time is watched as the load function does: at the deadline less
            // the margin the pass stops starting ranges, commits and releases its claims.
            let stop = aztrail_load::loader::Stop::default();
            let remaining = Duration::from_millis(event.context.deadline.saturating_sub(now_ms()))
                .saturating_sub(Duration::from_secs(args.deadline_margin_seconds));
            let timer = stop.set_after(remaining);
            let config = aztrail_ingest::run::IngestConfig {
                stop,
                remembered: Arc::clone(remembered),
                ..args.settings.config(
                    args.staging_bucket.clone(),
                    event.context.request_id.clone(),
                )
            };
            let answer = if is_sqs(&event.payload) {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                let (response, summary) = ingest_batch(batch, |work| {
                    let (auth, config) = (&auth, &config);
                    async move {
                        aztrail_ingest::run::ingest_work(
                            auth,
                            s3,
                            config,
                            super::ingest::now(),
                            &work,
                        )
                        .await
                    }
                })
                .await;
                println!(
                    "{}",
                    aztrail_ingest::run::metrics_line(&args.function_name, &summary, now_ms())
                );
                serde_json::to_value(&response)?
            } else if let Some(url) = &args.work_queue_url {
                let queue = aztrail_ingest::fanout::WorkQueue {
                    sqs: sqs.clone(),
                    url: url.clone(),
                };
                let sent = aztrail_ingest::run::fan_out(
                    &auth,
                    s3,
                    &config,
                    &queue,
                    args.work_shards,
                    super::ingest::now(),
                )
                .await?;
                serde_json::to_value(&sent)?
            } else {
                let summary =
                    aztrail_ingest::run::ingest(&auth, s3, &config, super::ingest::now()).await?;
                println!(
                    "{}",
                    aztrail_ingest::run::metrics_line(&args.function_name, &summary, now_ms())
                );
                serde_json::to_value(&summary)?
            };
            timer.abort();
            Ok::<_, lambda_runtime::Error>(answer)
        };
        lambda_runtime::run(service_fn(handler))
            .await
            .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Whether an invocation is an SQS batch (rather than a scheduled event).
fn is_sqs(payload: &serde_json::Value) -> bool {
    payload["Records"]
        .as_array()
        .and_then(|r| r.first())
        .is_some_and(|r| r["eventSource"] == "aws:sqs")
}

/// An SQS batch of work shards, one pass each, in turn (each pass keeps its own requests in
/// flight). A message whose pass failed, stopped at the deadline, or left a failure behind is
/// reported as a batch item failure, so SQS gives it again (and, after the queue's maximum
/// receives, to its dead-letter queue); one that is not a work shard likewise.
async fn ingest_batch<F, Fut>(
    batch: SqsEvent,
    mut pass: F,
) -> (SqsBatchResponse, aztrail_ingest::run::IngestSummary)
where
    F: FnMut(aztrail_ingest::fanout::WorkShard) -> Fut,
    Fut: std::future::Future<
        Output = Result<aztrail_ingest::run::IngestSummary, aztrail_ingest::run::IngestError>,
    >,
{
    let mut response = SqsBatchResponse::default();
    let mut total = aztrail_ingest::run::IngestSummary::default();
    for record in batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("message", id);
        let _entered = span.enter();
        let work = serde_json::from_str::<aztrail_ingest::fanout::WorkShard>(
            record.body.as_deref().unwrap_or_default(),
        );
        let done = match work {
            Ok(work) => match pass(work).await {
                Ok(s) => {
                    let ok = !s.stopped && s.failed == 0;
                    total.add(s);
                    ok
                }
                Err(e) => {
                    tracing::error!(error = %aztrail_load::error_chain(&e), "ingest work");
                    false
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "not a work shard");
                false
            }
        };
        if !done {
            response.add_failure(id);
        }
    }
    (response, total)
}

#[cfg(test)]
mod ingest_batch_tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessage;
    use aztrail_ingest::fanout::WorkShard;
    use aztrail_ingest::run::IngestSummary;

    fn message(id: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m.event_source = Some("aws:sqs".into());
        m
    }

    fn shard(scope: &str) -> String {
        serde_json::to_string(&WorkShard {
            container: "insights-activity-logs".into(),
            scope: scope.into(),
            roots: vec!["resourceId=/SUBSCRIPTIONS/S/".into()],
        })
        .unwrap()
    }

    #[tokio::test]
    async fn only_the_messages_whose_pass_finished_cleanly_are_done() {
        let mut batch = SqsEvent::default();
        batch.records = vec![
            message("ok", &shard("0-of-3")),
            message("failed", &shard("1-of-3")),
            message("stopped", &shard("2-of-3")),
            message("garbage", "{\"not\":\"work\"}"),
        ];
        let payload = serde_json::to_value(&batch).unwrap();
        assert!(is_sqs(&payload));
        assert!(!is_sqs(&serde_json::json!({"source": "aws.events"})));
        let mut seen = Vec::new();
        let (response, total) = ingest_batch(batch, |work| {
            seen.push(work.scope.clone());
            async move {
                Ok(match work.scope.as_str() {
                    "0-of-3" => IngestSummary {
                        objects_written: 2,
                        ..IngestSummary::default()
                    },
                    "1-of-3" => IngestSummary {
                        failed: 1,
                        ..IngestSummary::default()
                    },
                    _ => IngestSummary {
                        stopped: true,
                        ..IngestSummary::default()
                    },
                })
            }
        })
        .await;
        assert_eq!(seen, ["0-of-3", "1-of-3", "2-of-3"]);
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["failed", "stopped", "garbage"]);
        assert_eq!((total.objects_written, total.failed), (2, 1));
    }
}
