//! Where events are sent: PutAuditEvents on one channel, behind a small trait so the sending logic
//! is tested the same way against the local lake and used unchanged against the real service.

use std::future::Future;

use aws_sdk_cloudtraildata::error::ProvideErrorMetadata;

/// One event ready to send, serialized once: the bytes counted against the request limit are the
/// bytes sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// The PutAuditEvents `id`.
    pub id: String,
    /// `{"id":…,"eventData":"…","eventDataChecksum":…}`, exactly as it appears in the request.
    pub entry: Vec<u8>,
}

impl OutEvent {
    /// A mapped record's event.
    pub fn from_mapped(ev: &aztrail_transform::Mapped<'_>) -> Self {
        let mut entry = Vec::new();
        ev.write_entry(&mut entry);
        Self {
            id: ev.id.to_string(),
            entry,
        }
    }

    /// An event from its parts (tests, hand-made events).
    pub fn new(id: &str, event_data: &str, checksum: &str) -> Self {
        let entry = serde_json::json!({
            "id": id,
            "eventData": event_data,
            "eventDataChecksum": checksum,
        })
        .to_string()
        .into_bytes();
        Self {
            id: id.to_string(),
            entry,
        }
    }
}

/// Bytes of a request body around its events (`{"auditEvents":[` … `]}`).
pub const BODY_OVERHEAD: usize = 18;

/// The PutAuditEvents request body of `events`: `{"auditEvents":[e1,e2,…]}`, of
/// [`request_len`] bytes.
pub fn request_body(events: &[OutEvent]) -> Vec<u8> {
    let mut body = Vec::with_capacity(request_len(
        events.len(),
        events.iter().map(|e| e.entry.len()).sum(),
    ));
    body.extend_from_slice(b"{\"auditEvents\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&e.entry);
    }
    body.extend_from_slice(b"]}");
    body
}

/// The length of the request body of `events` events whose entries take `entry_bytes`.
pub fn request_len(events: usize, entry_bytes: usize) -> usize {
    BODY_OVERHEAD + entry_bytes + events.saturating_sub(1)
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

impl AuditSink for CloudTrailSink {
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
            .mutate_request(move |req| {
                req.headers_mut()
                    .insert("content-length", body.len().to_string());
                *req.body_mut() = aws_smithy_types::body::SdkBody::from(body.clone());
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_events_own_bytes_and_its_length_is_counted_exactly() {
        let mut mapper = aztrail_transform::Mapper::new("123456789012");
        let data = aztrail_transform::synth::generate(3, 7);
        let mut events = Vec::new();
        aztrail_transform::frame_all(data.as_bytes(), |r| {
            if let Ok(ev) = mapper.map(r) {
                events.push((OutEvent::from_mapped(&ev), ev.event_data.to_string()));
            }
        });
        events.push((
            OutEvent::new("hand-made", "{\"a\":\"\u{1}\\\"\"}", "c"),
            "{\"a\":\"\u{1}\\\"\"}".into(),
        ));
        let (out, data): (Vec<OutEvent>, Vec<String>) = events.into_iter().unzip();
        let body = request_body(&out);
        let entries: usize = out.iter().map(|e| e.entry.len()).sum();
        assert_eq!(body.len(), request_len(out.len(), entries));
        let parsed: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let sent = parsed["auditEvents"].as_array().expect("auditEvents");
        assert_eq!(sent.len(), out.len());
        for ((s, e), d) in sent.iter().zip(&out).zip(&data) {
            assert_eq!(s["id"], e.id.as_str());
            assert_eq!(s["eventData"], d.as_str());
        }
        assert_eq!(request_body(&[]), b"{\"auditEvents\":[]}");
        assert_eq!(request_len(0, 0), 18);
    }
}
