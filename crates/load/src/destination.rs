//! The destination setting, and the one sink built from it.
//!
//! CloudTrail Lake is the default; accounts opened after it closed to new customers send to
//! CloudWatch Logs instead. The choice is part of the load settings, so `load`, `run`, `redrive`
//! and the load Lambda read it the same way; [`Sink`] is the one type above which nothing knows
//! which destination it feeds.

use crate::cloudtrail::CloudTrailSink;
use crate::cloudwatch::CloudWatchSink;
use crate::sink::{CallError, EventSink, OutEvent, PutResult, Wire};

/// Where events go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// CloudTrail Lake: PutAuditEvents on an integration channel (--channel-arn).
    #[default]
    Cloudtrail,
    /// CloudWatch Logs: PutLogEvents into a log group (--log-group).
    Cloudwatch,
    /// Amazon Security Lake (or any OCSF store): OCSF 1.1.0 Parquet files in batches, under each
    /// class's custom source location (--securitylake-bucket, or --securitylake-dir).
    Securitylake,
}

/// The destination flags (and the load Lambda's environment).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct DestinationSettings {
    /// Where events go: cloudtrail (CloudTrail Lake, needs --channel-arn), cloudwatch
    /// (CloudWatch Logs, needs --log-group; for accounts CloudTrail Lake no longer admits) or
    /// securitylake (OCSF Parquet files for Amazon Security Lake, needs --securitylake-bucket or
    /// --securitylake-dir).
    #[arg(long, env = "AZTRAIL_DESTINATION", value_enum, default_value_t = Kind::Cloudtrail)]
    pub destination: Kind,
    /// The CloudTrail Lake channel to send to (its account becomes recipientAccountId).
    #[arg(long, env = "AZTRAIL_CHANNEL_ARN")]
    pub channel_arn: Option<String>,
    /// Send PutAuditEvents here instead of the AWS endpoint (the local lake, for example).
    #[arg(long, env = "AZTRAIL_CLOUDTRAIL_ENDPOINT")]
    pub cloudtrail_endpoint: Option<String>,
    /// The CloudWatch Logs log group to send to; it must exist. Each writer (process, Lambda
    /// instance) writes its own stream in it, aztrail/YYYY/MM/DD/<writer>.
    #[arg(long, env = "AZTRAIL_LOG_GROUP")]
    pub log_group: Option<String>,
    /// Send PutLogEvents here instead of the AWS endpoint (an emulator such as moto).
    #[arg(long, env = "AZTRAIL_LOGS_ENDPOINT")]
    pub logs_endpoint: Option<String>,
    /// The account named as recipientAccountId in CloudWatch Logs events (default: the
    /// caller's, asked of STS once). CloudTrail Lake events name the channel's account.
    #[arg(long, env = "AZTRAIL_ACCOUNT_ID")]
    pub account_id: Option<String>,
    #[command(flatten)]
    pub securitylake: SecurityLakeSettings,
}

/// The Security Lake destination's flags (and the load Lambda's environment).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct SecurityLakeSettings {
    /// Security Lake's bucket (aws-security-data-lake-REGION-…), or any bucket for a plain
    /// OCSF prefix. Files go under each class's location (--securitylake-location).
    #[arg(long, env = "AZTRAIL_SECURITYLAKE_BUCKET")]
    pub securitylake_bucket: Option<String>,
    /// Write the files under this directory instead of a bucket (the same tree).
    #[arg(
        long,
        env = "AZTRAIL_SECURITYLAKE_DIR",
        conflicts_with = "securitylake_bucket"
    )]
    pub securitylake_dir: Option<std::path::PathBuf>,
    /// Where a class's custom source reads, as CLASS=PREFIX (or CLASS=s3://bucket/prefix, as
    /// Terraform outputs it); repeat or separate with commas. CLASS is api_activity,
    /// authentication, account_change or entity_management. Default: ext/aztrail_CLASS.
    #[arg(long, env = "AZTRAIL_SECURITYLAKE_LOCATIONS")]
    pub securitylake_location: Vec<String>,
    /// The region= partition value (default: the AWS region in use).
    #[arg(long, env = "AZTRAIL_SECURITYLAKE_REGION")]
    pub securitylake_region: Option<String>,
    /// Close a batch of files at this many events.
    #[arg(long, env = "AZTRAIL_BATCH_MAX_EVENTS", default_value_t = 2_000_000)]
    pub batch_max_events: u64,
    /// Close a batch of files at this many MiB of records read.
    #[arg(long, env = "AZTRAIL_BATCH_MAX_MIB", default_value_t = 1024)]
    pub batch_max_mib: u64,
    /// Close a batch of files this many seconds after its first object (Security Lake wants a
    /// source's files no more often than every 5 minutes).
    #[arg(long, env = "AZTRAIL_BATCH_MAX_SECONDS", default_value_t = 300)]
    pub batch_max_seconds: u64,
    /// Also write each whole record into OCSF's raw_data (about doubles the bytes stored;
    /// unmapped already holds every value no attribute holds).
    #[arg(long, env = "AZTRAIL_OCSF_RAW_DATA")]
    pub ocsf_raw_data: bool,
}

impl Default for SecurityLakeSettings {
    /// The flags' defaults.
    fn default() -> Self {
        SecurityLakeSettings {
            securitylake_bucket: None,
            securitylake_dir: None,
            securitylake_location: Vec::new(),
            securitylake_region: None,
            batch_max_events: 2_000_000,
            batch_max_mib: 1024,
            batch_max_seconds: 300,
            ocsf_raw_data: false,
        }
    }
}

impl SecurityLakeSettings {
    /// When a batch closes.
    pub fn limits(&self) -> crate::securitylake::BatchLimits {
        crate::securitylake::BatchLimits {
            max_events: self.batch_max_events.max(1),
            max_bytes: self.batch_max_mib.max(1) << 20,
            max_age: std::time::Duration::from_secs(self.batch_max_seconds),
        }
    }
}

/// A destination setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// CloudTrail Lake without a channel.
    #[error("--destination cloudtrail needs --channel-arn (AZTRAIL_CHANNEL_ARN)")]
    NoChannel,
    /// Not a channel ARN.
    #[error(
        "{0:?} is not a CloudTrail channel ARN (arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID)"
    )]
    BadChannel(String),
    /// CloudWatch Logs without a log group.
    #[error("--destination cloudwatch needs --log-group (AZTRAIL_LOG_GROUP)")]
    NoLogGroup,
    /// Security Lake without a bucket or directory.
    #[error(
        "--destination securitylake needs --securitylake-bucket (AZTRAIL_SECURITYLAKE_BUCKET) \
         or --securitylake-dir"
    )]
    NoLakeBucket,
    /// Security Lake where events are sent one call at a time.
    #[error(
        "--destination securitylake writes Parquet files in batches, not events one call at a \
         time: `aztrail run` stages locally for it (not with --staging-bucket), and `load`, \
         `redrive` and the load Lambda write its batches"
    )]
    NotAnEventSink,
    /// Not an account id.
    #[error("--account-id (AZTRAIL_ACCOUNT_ID) must be 12 digits, not {0:?}")]
    BadAccount(String),
    /// STS did not say whose credentials these are.
    #[error(
        "the account for recipientAccountId: set --account-id (AZTRAIL_ACCOUNT_ID), or allow \
         sts:GetCallerIdentity"
    )]
    Sts(#[source] aztrail_state::BoxError),
    /// STS answered without an account.
    #[error(
        "the account for recipientAccountId: set --account-id (AZTRAIL_ACCOUNT_ID); \
         sts:GetCallerIdentity named none"
    )]
    StsNoAccount,
}

impl DestinationSettings {
    /// Checks that the chosen destination is named, and the names' form.
    pub fn check(&self) -> Result<(), DestinationError> {
        match self.destination {
            Kind::Cloudtrail => {
                let arn = self.channel()?;
                self.channel_account(arn).map(drop)
            }
            Kind::Cloudwatch => {
                if self.log_group.as_deref().is_none_or(str::is_empty) {
                    return Err(DestinationError::NoLogGroup);
                }
                match &self.account_id {
                    Some(a) if !is_account(a) => Err(DestinationError::BadAccount(a.clone())),
                    _ => Ok(()),
                }
            }
            Kind::Securitylake => {
                let sl = &self.securitylake;
                if sl.securitylake_bucket.as_deref().is_none_or(str::is_empty)
                    && sl.securitylake_dir.is_none()
                {
                    return Err(DestinationError::NoLakeBucket);
                }
                match &self.account_id {
                    Some(a) if !is_account(a) => Err(DestinationError::BadAccount(a.clone())),
                    _ => Ok(()),
                }
            }
        }
    }

    fn channel(&self) -> Result<&str, DestinationError> {
        self.channel_arn
            .as_deref()
            .ok_or(DestinationError::NoChannel)
    }

    fn channel_account(&self, arn: &str) -> Result<String, DestinationError> {
        aztrail_channel::ChannelArn::parse(arn)
            .map(|c| c.account.to_string())
            .ok_or_else(|| DestinationError::BadChannel(arn.to_string()))
    }

    /// The endpoint of the chosen destination, when it is not AWS's own.
    pub fn endpoint(&self) -> Option<&str> {
        match self.destination {
            Kind::Cloudtrail => self.cloudtrail_endpoint.as_deref(),
            Kind::Cloudwatch => self.logs_endpoint.as_deref(),
            Kind::Securitylake => None,
        }
    }

    /// The account events name as `recipientAccountId`: the channel's; for CloudWatch Logs the
    /// one given, or the caller's (STS).
    pub async fn account(&self, shared: &aws_types::SdkConfig) -> Result<String, DestinationError> {
        self.check()?;
        match (self.destination, &self.channel_arn, &self.account_id) {
            (Kind::Cloudtrail, Some(arn), _) => self.channel_account(arn),
            (Kind::Cloudtrail, None, _) => Err(DestinationError::NoChannel),
            (Kind::Cloudwatch | Kind::Securitylake, _, Some(account)) => Ok(account.clone()),
            (Kind::Cloudwatch | Kind::Securitylake, _, None) => {
                let sts = aws_sdk_sts::Client::new(shared);
                let who = sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| DestinationError::Sts(Box::new(e)))?;
                who.account()
                    .filter(|a| is_account(a))
                    .map(str::to_string)
                    .ok_or(DestinationError::StsNoAccount)
            }
        }
    }

    /// The sink, from the shared AWS settings, with the SDK's own retries off (the sender
    /// retries with its own accounting). `writer` names this process's CloudWatch Logs stream.
    pub fn sink(
        &self,
        shared: &aws_types::SdkConfig,
        writer: &str,
    ) -> Result<Sink, DestinationError> {
        self.check()?;
        match self.destination {
            Kind::Cloudtrail => {
                let arn = self.channel()?;
                let mut ct = aws_sdk_cloudtraildata::config::Builder::from(shared)
                    .retry_config(aws_sdk_cloudtraildata::config::retry::RetryConfig::disabled());
                if let Some(url) = &self.cloudtrail_endpoint {
                    ct = ct.endpoint_url(url);
                }
                Ok(Sink::CloudTrail(CloudTrailSink::new(
                    aws_sdk_cloudtraildata::Client::from_conf(ct.build()),
                    arn,
                )))
            }
            Kind::Cloudwatch => {
                let group = self.log_group.clone().ok_or(DestinationError::NoLogGroup)?;
                let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(shared)
                    .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled());
                if let Some(url) = &self.logs_endpoint {
                    logs = logs.endpoint_url(url);
                }
                let started = aztrail_transform::time::UtcSeconds(now_secs());
                Ok(Sink::CloudWatch(CloudWatchSink::new(
                    aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()),
                    group,
                    crate::cloudwatch::stream_name(writer, started),
                )))
            }
            Kind::Securitylake => Err(DestinationError::NotAnEventSink),
        }
    }
}

fn is_account(a: &str) -> bool {
    aztrail_channel::is_account_id(a)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A name for this writer, unique among those running: the Lambda instance's own log stream id
/// in a function, otherwise the host name, the process id and the start time.
pub fn writer_name() -> String {
    if let Ok(stream) = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME") {
        // `2026/12/02/[$LATEST]0123abcd…`: the instance is the part after the date.
        if let Some(instance) = stream.rsplit('/').next().filter(|s| !s.is_empty()) {
            return instance.replace(['[', ']', '$'], "");
        }
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

/// The destination's sink: the one type the loader, the worker and redrive are given.
#[derive(Debug)]
pub enum Sink {
    /// CloudTrail Lake.
    CloudTrail(CloudTrailSink),
    /// CloudWatch Logs.
    CloudWatch(CloudWatchSink),
}

impl Sink {
    /// Checks, before anything is loaded, what can be checked without sending an event: for
    /// CloudTrail Lake, that the channel answers at all; for CloudWatch Logs, that the log group
    /// exists and this writer's stream can be created in it.
    pub async fn preflight(&self) -> Result<(), CallError> {
        match self {
            Sink::CloudTrail(s) => s.reachable().await,
            Sink::CloudWatch(s) => s.ensure_stream().await,
        }
    }

    /// What the sink writes to, for a person (`channel arn:…`, `log group G, stream S`).
    pub fn describe(&self) -> String {
        match self {
            Sink::CloudTrail(s) => format!("CloudTrail Lake channel {}", s.channel_arn()),
            Sink::CloudWatch(s) => {
                format!("CloudWatch Logs group {}, stream {}", s.group(), s.stream())
            }
        }
    }
}

impl EventSink for Sink {
    fn wire(&self) -> Wire {
        match self {
            Sink::CloudTrail(s) => s.wire(),
            Sink::CloudWatch(s) => s.wire(),
        }
    }

    async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
        match self {
            Sink::CloudTrail(s) => s.put(events).await,
            Sink::CloudWatch(s) => s.put(events).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_destination_needs_its_name() {
        let ct = DestinationSettings::default();
        assert!(matches!(ct.check(), Err(DestinationError::NoChannel)));
        let ct = DestinationSettings {
            channel_arn: Some("arn:aws:cloudtrail:us-east-1:123456789012:channel/x".into()),
            ..DestinationSettings::default()
        };
        assert!(ct.check().is_ok());
        let bad = DestinationSettings {
            channel_arn: Some("nope".into()),
            ..DestinationSettings::default()
        };
        assert!(matches!(bad.check(), Err(DestinationError::BadChannel(_))));
        let cw = DestinationSettings {
            destination: Kind::Cloudwatch,
            ..DestinationSettings::default()
        };
        assert!(matches!(cw.check(), Err(DestinationError::NoLogGroup)));
        let cw = DestinationSettings {
            log_group: Some("/aztrail/events".into()),
            account_id: Some("12".into()),
            ..cw
        };
        assert!(matches!(cw.check(), Err(DestinationError::BadAccount(_))));
        let cw = DestinationSettings {
            account_id: Some("123456789012".into()),
            ..cw
        };
        assert!(cw.check().is_ok());
    }
}
