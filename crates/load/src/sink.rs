//! Where events are sent: PutAuditEvents on one channel, behind a small trait so the sending logic
//! is tested the same way against the local lake and used unchanged against the real service.

use std::future::Future;

use aws_sdk_cloudtraildata::error::ProvideErrorMetadata;
use aws_sdk_cloudtraildata::types::AuditEvent;

/// One event ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// The PutAuditEvents `id`.
    pub id: String,
    /// The `eventData` document.
    pub event_data: String,
    /// Its checksum.
    pub checksum: String,
}

/// What one call answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutResult {
    /// Ids accepted.
    pub successful: Vec<String>,
    /// Ids not accepted, with the error code and message.
    pub failed: Vec<(String, String, String)>,
}

/// A call that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PutAuditEvents failed ({}): {message}", error_type.as_deref().unwrap_or("no answer"))]
pub struct CallError {
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The error's name (`x-amzn-errortype`), when given.
    pub error_type: Option<String>,
    /// What was said.
    pub message: String,
}

/// PutAuditEvents on one channel.
pub trait AuditSink: Send + Sync + 'static {
    /// Sends one call's events (at most 100, at most 1 MB).
    fn put(&self, events: &[OutEvent])
        -> impl Future<Output = Result<PutResult, CallError>> + Send;
}

/// The real (or local) service through the official SDK.
#[derive(Debug, Clone)]
pub struct CloudTrailSink {
    client: aws_sdk_cloudtraildata::Client,
    channel_arn: String,
}

impl CloudTrailSink {
    /// Sends to `channel_arn` with `client`.
    pub fn new(client: aws_sdk_cloudtraildata::Client, channel_arn: impl Into<String>) -> Self {
        Self {
            client,
            channel_arn: channel_arn.into(),
        }
    }
}

impl CloudTrailSink {
    /// Sends to `channel_arn` at a stand-in's `endpoint` (the local lake): region us-east-1,
    /// placeholder credentials (a stand-in checks the signature's form only), and no SDK retries,
    /// since the sender retries with its own accounting.
    pub fn for_endpoint(endpoint: &str, channel_arn: impl Into<String>) -> Self {
        use aws_sdk_cloudtraildata::config::{
            retry::RetryConfig, BehaviorVersion, Credentials, Region,
        };
        let config = aws_sdk_cloudtraildata::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIDLOCAL",
                "local",
                None,
                None,
                "aztrail",
            ))
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .build();
        Self::new(
            aws_sdk_cloudtraildata::Client::from_conf(config),
            channel_arn,
        )
    }
}

impl AuditSink for CloudTrailSink {
    async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
        let mut audit_events = Vec::with_capacity(events.len());
        for e in events {
            let ev = AuditEvent::builder()
                .id(&e.id)
                .event_data(&e.event_data)
                .event_data_checksum(&e.checksum)
                .build()
                .map_err(|err| CallError {
                    status: None,
                    error_type: Some("BuildError".into()),
                    message: err.to_string(),
                })?;
            audit_events.push(ev);
        }
        let sent = self
            .client
            .put_audit_events()
            .channel_arn(&self.channel_arn)
            .set_audit_events(Some(audit_events))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(PutResult {
                successful: out
                    .successful()
                    .iter()
                    .map(|s| s.id().to_string())
                    .collect(),
                failed: out
                    .failed()
                    .iter()
                    .map(|f| {
                        (
                            f.id().to_string(),
                            f.error_code().to_string(),
                            f.error_message().to_string(),
                        )
                    })
                    .collect(),
            }),
            Err(err) => {
                use aws_sdk_cloudtraildata::error::{DisplayErrorContext, SdkError};
                let status = err.raw_response().map(|r| r.status().as_u16());
                let kind = match &err {
                    // The request could not be made (no credentials, say): no retry can help.
                    SdkError::ConstructionFailure(_) => Some("ConstructionFailure".to_string()),
                    SdkError::TimeoutError(_) => Some("RequestTimeout".to_string()),
                    _ => None,
                };
                let chain = DisplayErrorContext(&err).to_string();
                match err.into_service_error() {
                    service if kind.is_none() && service.code().is_some() => Err(CallError {
                        status,
                        error_type: service.code().map(str::to_string),
                        message: service
                            .message()
                            .map_or_else(|| service.to_string(), str::to_string),
                    }),
                    // Not an answer of the service's own: the whole chain says what happened.
                    _ => Err(CallError {
                        status,
                        error_type: kind,
                        message: chain,
                    }),
                }
            }
        }
    }
}
