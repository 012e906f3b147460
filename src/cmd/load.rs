//! `aztrail load`: staged S3 objects into CloudTrail Lake, from an SQS queue of S3 notifications
//! or from `s3://` URIs given on the command line.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use aztrail_load::failure::FailureMessage;
use aztrail_load::loader::{load, FailureSink, LoadConfig, Summary};
use aztrail_load::rate::RateLimiter;
use aztrail_load::sink::CloudTrailSink;
use aztrail_load::sqs::{SqsFailures, Worker};
use aztrail_transform::Source;

use super::{account_of_channel_arn, EXIT_REJECTED};

/// Load staged S3 objects into CloudTrail Lake (PutAuditEvents).
///
/// With --queue-url, receives S3 notifications from SQS and deletes each message once every
/// record of its objects was accepted or written to --failure-queue-url. With s3://bucket/key
/// arguments, loads those objects. AWS credentials, region and endpoints come from the usual
/// environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, ...).
///
/// Prints a JSON summary on standard output. Exit status: 0 when every record was accepted;
/// 1 when some went to the failure queue (or, without one, to standard error as JSON lines);
/// 2 on a fatal error.
#[derive(clap::Args)]
pub struct Args {
    /// Objects to load (s3://bucket/key); without any, work comes from --queue-url.
    objects: Vec<String>,
    /// The SQS queue of S3 ObjectCreated notifications.
    #[arg(long, env = "AZTRAIL_QUEUE_URL")]
    queue_url: Option<String>,
    /// The CloudTrail Lake channel to send to.
    #[arg(long, env = "AZTRAIL_CHANNEL_ARN")]
    channel_arn: String,
    /// The SQS queue for events that could not be loaded (one JSON message each).
    #[arg(long, env = "AZTRAIL_FAILURE_QUEUE_URL")]
    failure_queue_url: Option<String>,
    /// With --queue-url: stop when the queue is empty instead of waiting for more.
    #[arg(long)]
    until_empty: bool,
    /// PutAuditEvents calls in flight at most.
    #[arg(long, env = "AZTRAIL_CONCURRENCY", default_value_t = 4)]
    concurrency: usize,
    /// Calls per second for this process: the account allows 100 per second in all, so the
    /// default, 25, leaves room for four processes (or Lambda instances) at once.
    #[arg(long, env = "AZTRAIL_MAX_CALLS_PER_SECOND", default_value_t = 25.0)]
    max_calls_per_second: f64,
    /// Send PutAuditEvents here instead of the AWS endpoint (the local lake, for example).
    #[arg(long, env = "AZTRAIL_CLOUDTRAIL_ENDPOINT")]
    cloudtrail_endpoint: Option<String>,
    /// Address S3 with path-style URLs (for S3 emulators such as moto).
    #[arg(long, env = "AZTRAIL_S3_PATH_STYLE")]
    s3_path_style: bool,
    /// Seconds a received message stays invisible while its objects load.
    #[arg(long, default_value_t = 300)]
    visibility_timeout: i32,
}

/// Failure messages as JSON lines on standard error (when no failure queue is given).
struct StderrFailures;

impl FailureSink for StderrFailures {
    async fn send(&self, message: FailureMessage) -> Result<(), String> {
        eprintln!("{}", message.to_json());
        Ok(())
    }
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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let account = account_of_channel_arn(&args.channel_arn)?;
    anyhow::ensure!(
        !args.objects.is_empty() || args.queue_url.is_some(),
        "nothing to load: give s3://bucket/key objects or --queue-url"
    );
    anyhow::ensure!(
        args.queue_url.is_none() || args.failure_queue_url.is_some(),
        "--queue-url needs --failure-queue-url: a message is deleted only once its failures are stored"
    );
    let objects = args
        .objects
        .iter()
        .map(|u| parse_s3_uri(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let shared = aws_config::load_from_env().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(args.s3_path_style)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(&shared);
        let mut ct = aws_sdk_cloudtraildata::config::Builder::from(&shared)
            // aztrail retries with its own accounting; the SDK must not retry behind its back.
            .retry_config(aws_sdk_cloudtraildata::config::retry::RetryConfig::disabled());
        if let Some(url) = &args.cloudtrail_endpoint {
            ct = ct.endpoint_url(url);
        }
        let sink = Arc::new(CloudTrailSink::new(
            aws_sdk_cloudtraildata::Client::from_conf(ct.build()),
            &args.channel_arn,
        ));
        let limiter = Arc::new(RateLimiter::new(args.max_calls_per_second));
        let config = LoadConfig {
            account,
            concurrency: args.concurrency.max(1),
            ..LoadConfig::default()
        };
        let failures_queue = args
            .failure_queue_url
            .as_ref()
            .map(|url| SqsFailures::new(sqs.clone(), url));
        let mut failed = 0;
        if let Some(queue_url) = &args.queue_url {
            let worker = Worker {
                s3: s3.clone(),
                sqs: sqs.clone(),
                queue_url: queue_url.clone(),
                failures: failures_queue.clone().context("failure queue")?,
                sink: Arc::clone(&sink),
                limiter: Arc::clone(&limiter),
                config: config.clone(),
                visibility_timeout: args.visibility_timeout,
            };
            let summary = worker.run(args.until_empty).await?;
            failed += summary.load.failed + summary.poison;
            super::emit(&(serde_json::to_string_pretty(&summary)? + "\n"))?;
        }
        let show = std::io::stderr().is_terminal();
        for (bucket, key) in objects {
            let reader = aztrail_load::s3::open(&s3, &bucket, &key).await?;
            let source = Source {
                bucket: Some(bucket.clone()),
                key: key.clone(),
            };
            let summary: Summary = match &failures_queue {
                Some(f) => {
                    load(
                        &source,
                        0,
                        reader,
                        Arc::clone(&sink),
                        Arc::clone(&limiter),
                        f,
                        &config,
                    )
                    .await?
                }
                None => {
                    load(
                        &source,
                        0,
                        reader,
                        Arc::clone(&sink),
                        Arc::clone(&limiter),
                        &StderrFailures,
                        &config,
                    )
                    .await?
                }
            };
            if show {
                eprintln!(
                    "s3://{bucket}/{key}: {} records, {} accepted, {} failed",
                    summary.records, summary.accepted, summary.failed
                );
            }
            failed += summary.failed;
            let line =
                serde_json::json!({"object": format!("s3://{bucket}/{key}"), "summary": summary});
            super::emit(&(serde_json::to_string_pretty(&line)? + "\n"))?;
        }
        anyhow::Ok(if failed > 0 {
            ExitCode::from(EXIT_REJECTED)
        } else {
            ExitCode::SUCCESS
        })
    })
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
