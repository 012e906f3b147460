//! The CloudTrail Lake sink: PutAuditEvents on one channel through the official SDK (or at the
//! local lake's endpoint), with the check that the channel answers before anything is loaded.

use crate::sink::{
    call_error, request_body, with_body, CallError, EventRefused, EventSink, OutEvent, PutResult,
};

/// The real (or local) service through the official SDK.
#[derive(Debug, Clone)]
pub struct CloudTrailSink {
    client: aws_sdk_cloudtraildata::Client,
    channel_arn: String,
}

impl CloudTrailSink {
    /// The channel sent to.
    pub fn channel_arn(&self) -> &str {
        &self.channel_arn
    }

    /// Sends to `channel_arn` with `client`.
    pub fn new(client: aws_sdk_cloudtraildata::Client, channel_arn: impl Into<String>) -> Self {
        Self {
            client,
            channel_arn: channel_arn.into(),
        }
    }
}

impl CloudTrailSink {
    /// Checks that the channel answers, before anything is loaded, with a call of no events
    /// (which the service refuses as invalid, storing nothing). Any answer but a refusal of the
    /// caller or the channel (403, 404) passes; throttling and 5xx pass too, since calls retry
    /// them. No answer at all (nothing listening, no route, a timeout) is an error, so a load
    /// stops at once instead of trying every record and reporting each.
    pub async fn reachable(&self) -> Result<(), CallError> {
        match self.put(&[]).await {
            Ok(_) => Ok(()),
            Err(e) if e.status.is_some_and(|s| s != 401 && s != 403 && s != 404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Credentials for endpoints on this machine (the local lake, emulators), which check only the
/// signature's form: what aztrail signs with there when the environment names none.
pub fn placeholder_credentials() -> aws_sdk_cloudtraildata::config::Credentials {
    aws_sdk_cloudtraildata::config::Credentials::new("AKIDLOCAL", "local", None, None, "aztrail")
}

impl CloudTrailSink {
    /// Sends to `channel_arn` at a stand-in's `endpoint` (the local lake): region us-east-1,
    /// placeholder credentials (a stand-in checks the signature's form only), and no SDK retries,
    /// since the sender retries with its own accounting.
    pub fn for_endpoint(endpoint: &str, channel_arn: impl Into<String>) -> Self {
        use aws_sdk_cloudtraildata::config::{retry::RetryConfig, BehaviorVersion, Region};
        let config = aws_sdk_cloudtraildata::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(placeholder_credentials())
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .build();
        Self::new(
            aws_sdk_cloudtraildata::Client::from_conf(config),
            channel_arn,
        )
    }
}

impl EventSink for CloudTrailSink {
    async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
        // The body is the events' own bytes, put in place of the SDK's serialization of an
        // empty list before the request is signed: each event is serialized once, by the
        // mapper, and the size the batcher counted is the size sent.
        let body = bytes::Bytes::from(request_body(events));
        let sent = self
            .client
            .put_audit_events()
            .channel_arn(&self.channel_arn)
            .set_audit_events(Some(Vec::new()))
            .customize()
            .mutate_request(with_body(body))
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
                    .map(|f| EventRefused::new(f.id(), f.error_code(), f.error_message()))
                    .collect(),
            }),
            Err(err) => Err(call_error(&err)),
        }
    }
}
