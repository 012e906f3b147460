//! AWS clients as the `load` and `redrive` commands build them: from the usual environment
//! (profile, region, `AWS_ENDPOINT_URL_*`), with the few switches local stand-ins need.

use std::sync::Arc;

use aztrail_load::sink::CloudTrailSink;

/// Where AWS calls go.
#[derive(clap::Args, Clone, Debug)]
pub struct Endpoints {
    /// The CloudTrail Lake channel to send to (its account becomes recipientAccountId).
    #[arg(long, env = "AZTRAIL_CHANNEL_ARN")]
    pub channel_arn: String,
    /// Send PutAuditEvents here instead of the AWS endpoint (the local lake, for example).
    #[arg(long, env = "AZTRAIL_CLOUDTRAIL_ENDPOINT")]
    pub cloudtrail_endpoint: Option<String>,
    /// Address S3 with path-style URLs (for S3 emulators such as moto).
    #[arg(long, env = "AZTRAIL_S3_PATH_STYLE")]
    pub s3_path_style: bool,
}

/// The clients of one run.
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sink: Arc<CloudTrailSink>,
}

/// Builds the clients from the environment and `endpoints`.
pub async fn clients(endpoints: &Endpoints) -> Clients {
    let shared = aws_config::load_from_env().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(endpoints.s3_path_style)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&shared);
    let mut ct = aws_sdk_cloudtraildata::config::Builder::from(&shared)
        // aztrail retries with its own accounting; the SDK must not retry behind its back.
        .retry_config(aws_sdk_cloudtraildata::config::retry::RetryConfig::disabled());
    if let Some(url) = &endpoints.cloudtrail_endpoint {
        ct = ct.endpoint_url(url);
    }
    let sink = Arc::new(CloudTrailSink::new(
        aws_sdk_cloudtraildata::Client::from_conf(ct.build()),
        &endpoints.channel_arn,
    ));
    Clients { s3, sqs, sink }
}
