//! Where events are sent, behind one trait: [`EventSink`] is what the loader, the pool, the
//! worker and redrive know of a destination. A sink says how its calls are shaped ([`Wire`]: the
//! entry each event becomes, what a call may hold) and makes calls; the loader batches by the
//! [`Wire`] and never learns which service it feeds. The sinks: CloudTrail Lake in
//! [`crate::cloudtrail`], CloudWatch Logs in [`crate::cloudwatch`].

use std::future::Future;

use aws_sdk_cloudtraildata::error::ProvideErrorMetadata;
use aztrail_transform::limits::{MAX_EVENTS_PER_CALL, MAX_REQUEST_BYTES};

/// One event ready to send, serialized once: the bytes counted against the request limit are the
/// bytes sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// The event's id (the PutAuditEvents `id`, the `UID`).
    pub id: String,
    /// The event as it appears in the request body, as its [`Wire`] writes it.
    pub entry: Vec<u8>,
    /// The bytes it counts against the call's limit (see [`Wire::call_len`]).
    pub size: usize,
    /// The record's time in milliseconds since the epoch.
    pub time_ms: i64,
}

impl OutEvent {
    /// A mapped record's event, as CloudTrail Lake takes it.
    pub fn from_mapped(ev: &aztrail_transform::Mapped<'_>) -> Self {
        Wire::CLOUDTRAIL.encode(ev)
    }

    /// A CloudTrail Lake event from its parts (tests, hand-made events).
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
            size: entry.len(),
            entry,
            time_ms: 0,
        }
    }
}

/// How a destination's events are written into a request, and what one call may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    /// What each event becomes.
    pub form: Form,
    /// Events in one call, at most.
    pub max_events: usize,
    /// Events in one batch of one object: the unit the loader sends, settles and checkpoints
    /// (the pool joins batches into calls of up to `max_events`).
    pub batch_events: usize,
    /// A call's counted size ([`Wire::call_len`]), at most.
    pub max_call_bytes: usize,
    /// Counted bytes of a call around its events.
    pub call_overhead: usize,
    /// Counted bytes per event on top of its own.
    pub per_event: usize,
    /// One event's own counted size, at most.
    pub max_event_bytes: usize,
    /// The most milliseconds from a call's oldest to its newest event, if limited.
    pub max_span_ms: Option<i64>,
}

/// What an event becomes in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `{"id":…,"eventData":"…","eventDataChecksum":…}` (PutAuditEvents); counted as sent.
    AuditEntry,
    /// `{"timestamp":…,"message":"…"}` with the `eventData` as message (PutLogEvents); counted
    /// as the message's UTF-8 bytes.
    LogEvent,
}

impl Wire {
    /// PutAuditEvents: 100 events, 1 MB of request body (read as 10^6, the conservative way).
    pub const CLOUDTRAIL: Wire = Wire {
        form: Form::AuditEntry,
        max_events: MAX_EVENTS_PER_CALL,
        batch_events: MAX_EVENTS_PER_CALL,
        max_call_bytes: MAX_REQUEST_BYTES,
        // `{"auditEvents":[` `]}` and a comma between events: 18 + Σ + (n - 1).
        call_overhead: BODY_OVERHEAD - 1,
        per_event: 1,
        max_event_bytes: MAX_REQUEST_BYTES - BODY_OVERHEAD,
        max_span_ms: None,
    };

    /// PutLogEvents: 10,000 events and 1,048,576 bytes per call, counted as each message's
    /// UTF-8 bytes plus 26; one event of at most 1 MB with its 26; a call spans at most 24 hours.
    pub const CLOUDWATCH: Wire = Wire {
        form: Form::LogEvent,
        max_events: 10_000,
        batch_events: 1_000,
        max_call_bytes: 1_048_576,
        call_overhead: 0,
        per_event: 26,
        max_event_bytes: 1_048_576 - 26,
        max_span_ms: Some(24 * 3600 * 1000),
    };

    /// The counted size of a call of `events` events whose own sizes sum to `bytes`.
    pub fn call_len(&self, events: usize, bytes: usize) -> usize {
        self.call_overhead + bytes + self.per_event * events
    }

    /// Whether `more` events of `more_bytes` and times `more_span` join a call of `events`
    /// events, `bytes` bytes and times `span` (oldest, newest) within the limits.
    pub fn fits(
        &self,
        (events, bytes, span): (usize, usize, Option<(i64, i64)>),
        (more, more_bytes, more_span): (usize, usize, Option<(i64, i64)>),
    ) -> bool {
        let span_ok = match (self.max_span_ms, span, more_span) {
            (Some(max), Some((a0, a1)), Some((b0, b1))) => {
                a1.max(b1).saturating_sub(a0.min(b0)) <= max
            }
            _ => true,
        };
        events + more <= self.max_events
            && self.call_len(events + more, bytes + more_bytes) <= self.max_call_bytes
            && span_ok
    }

    /// A mapped record's event, in this form.
    pub fn encode(&self, ev: &aztrail_transform::Mapped<'_>) -> OutEvent {
        let mut entry = Vec::new();
        let size = match self.form {
            Form::AuditEntry => {
                ev.write_entry(&mut entry);
                entry.len()
            }
            Form::LogEvent => {
                // `event_data_escaped` is the eventData as the contents of a JSON string: the
                // message, written once; the service counts the message itself.
                entry.reserve(ev.event_data_escaped.len() + 40);
                entry.extend_from_slice(b"{\"timestamp\":");
                entry.extend_from_slice(ev.event_time_ms.to_string().as_bytes());
                entry.extend_from_slice(b",\"message\":\"");
                entry.extend_from_slice(ev.event_data_escaped);
                entry.extend_from_slice(b"\"}");
                ev.event_data_len
            }
        };
        OutEvent {
            id: ev.id.to_string(),
            entry,
            size,
            time_ms: ev.event_time_ms,
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

/// `records` generated records (`aztrail_transform::synth`) mapped for `account` and packed into
/// PutAuditEvents request bodies by the loader's own batching, as it would send them (for
/// benchmarks and load tests of the lake).
pub fn request_bodies(records: usize, seed: u64, account: &str) -> Vec<Vec<u8>> {
    let data = aztrail_transform::synth::generate(records, seed);
    let mut mapper = aztrail_transform::Mapper::new(account);
    let mut batches = crate::batch::Batches::new(Wire::CLOUDTRAIL);
    let mut bodies = Vec::new();
    let body = |batch: crate::batch::Batch<()>| {
        let events: Vec<OutEvent> = batch.items.into_iter().map(|(_, e)| e).collect();
        request_body(&events)
    };
    aztrail_transform::frame_all(data.as_bytes(), |r| {
        if let Ok(ev) = mapper.map(r) {
            if let Some(done) = batches.push((), OutEvent::from_mapped(&ev)) {
                bodies.push(body(done));
            }
        }
    });
    while let Some(done) = batches.take() {
        bodies.push(body(done));
    }
    bodies
}

/// What one call answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutResult {
    /// Ids accepted.
    pub successful: Vec<String>,
    /// Events not accepted, each with why.
    pub failed: Vec<EventRefused>,
}

/// One event of a call that the destination did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRefused {
    /// The event's id.
    pub id: String,
    /// The destination's error code (`Throttling`, `InvalidData`, `TooOldLogEvent`, ...).
    pub code: String,
    /// What it said.
    pub message: String,
}

impl EventRefused {
    /// Event `id` refused with `code` and `message`.
    pub fn new(id: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A call that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the call failed ({}): {message}", error_type.as_deref().unwrap_or("no answer"))]
pub struct CallError {
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The error's name (`x-amzn-errortype`), when given.
    pub error_type: Option<String>,
    /// What was said.
    pub message: String,
}

/// A destination: CloudTrail Lake, CloudWatch Logs, or a stand-in.
pub trait EventSink: Send + Sync + 'static {
    /// How this destination's events are written and what one call may hold.
    fn wire(&self) -> Wire {
        Wire::CLOUDTRAIL
    }

    /// Sends one call's events (within [`EventSink::wire`]'s limits, written by its
    /// [`Wire::encode`]). Every event ends in the answer's `successful` or `failed`.
    fn put(&self, events: &[OutEvent])
        -> impl Future<Output = Result<PutResult, CallError>> + Send;
}

/// Puts `body` (the events' own bytes) in place of what the SDK serialized, before signing:
/// each event is serialized once, and the size counted is the size sent. Both sinks use it.
pub(crate) fn with_body(
    body: bytes::Bytes,
) -> impl Fn(&mut aws_sdk_cloudtraildata::config::http::HttpRequest) + Send + Sync + 'static {
    move |req| {
        req.headers_mut()
            .insert("content-length", body.len().to_string());
        *req.body_mut() = aws_smithy_types::body::SdkBody::from(body.clone());
    }
}

/// A failed SDK call as a [`CallError`]: the service's error code and message when it answered
/// with one, otherwise the whole chain (no answer, a timeout, a request that could not be built,
/// which no retry can help: `ConstructionFailure`).
pub fn call_error<E>(
    err: &aws_sdk_cloudtraildata::error::SdkError<
        E,
        aws_sdk_cloudtraildata::config::http::HttpResponse,
    >,
) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_cloudtraildata::error::{DisplayErrorContext, SdkError};
    let status = err.raw_response().map(|r| r.status().as_u16());
    let kind = match err {
        // The request could not be made (no credentials, say): no retry can help.
        SdkError::ConstructionFailure(_) => Some("ConstructionFailure".to_string()),
        SdkError::TimeoutError(_) => Some("RequestTimeout".to_string()),
        _ => None,
    };
    match err.as_service_error() {
        Some(service) if kind.is_none() && service.code().is_some() => CallError {
            status,
            error_type: service.code().map(str::to_string),
            message: service
                .message()
                .map_or_else(|| service.to_string(), str::to_string),
        },
        // An answer with no error code (an unmodeled 500): its status says what there is.
        Some(_) if kind.is_none() => CallError {
            status,
            error_type: None,
            message: format!(
                "HTTP {} with no error code in the answer",
                status.map_or_else(|| "?".to_string(), |s| s.to_string())
            ),
        },
        // Not an answer of the service's own: the whole chain says what happened.
        _ => CallError {
            status,
            error_type: kind,
            message: DisplayErrorContext(err).to_string(),
        },
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
                events.push((OutEvent::from_mapped(&ev), ev.event_data()));
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
