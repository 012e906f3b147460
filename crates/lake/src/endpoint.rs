//! The PutAuditEvents HTTP endpoint, speaking the service's restJson1 protocol as the official
//! SDKs expect it: `POST /PutAuditEvents?channelArn=…&externalId=…`, JSON in and out, whole-call
//! errors as HTTP 400 (403 for authentication, 500 for injected failures) with the error's name in
//! `x-amzn-errortype` and `{"message": …}` as the body.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use aztrail_channel::{is_channel_id, ChannelArn};
use aztrail_transform::time::UtcSeconds;
use serde::Deserialize;
use serde_json::json;

use crate::faults::{EventFault, Faults};
use crate::store::{Store, StoredEvent};
use crate::validate::{check_event, EventError};
use crate::Channel;

/// Most events in one call.
const MAX_EVENTS: usize = 100;
/// Largest request body (the lenient reading of "1 MB").
const MAX_BODY: usize = 1024 * 1024;
/// Deepest nesting of a request body. A valid one nests three deep (`eventData` is a string);
/// the limit only keeps the parser's recursion far from the stack's end.
const MAX_DEPTH: usize = 64;

/// What every request shares.
pub struct Shared {
    pub channels: Vec<Channel>,
    pub faults: Mutex<Faults>,
    pub store: Arc<Mutex<Store>>,
    pub ids: Mutex<fastrand::Rng>,
    /// How long a client may take to send a body once its headers arrived.
    pub body_timeout: std::time::Duration,
    /// The bytes of request bodies that may be held at once, in KiB permits (see
    /// [`crate::connections::ConnLimits::body_budget`]).
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Events accepted in calls answered so far (stored, and the answer on its way).
    pub answered: tokio::sync::watch::Sender<u64>,
}

/// The router of the endpoint.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/PutAuditEvents",
            post(put_audit_events).fallback(unsupported),
        )
        .fallback(unsupported)
        .with_state(shared)
}

/// A whole-call error, answered as restJson1 does: the status, the error's name in
/// `x-amzn-errortype`, and `{"message": …}`.
#[derive(Debug)]
struct CallError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl CallError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }
}

impl IntoResponse for CallError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(json!({ "message": self.message }))).into_response();
        r.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        r
    }
}

fn error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    CallError::new(status, kind, message).into_response()
}

fn bad(kind: &'static str, message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, kind, message)
}

async fn unsupported() -> Response {
    bad(
        "UnsupportedOperationException",
        "The operation requested is not supported: this endpoint serves POST /PutAuditEvents only",
    )
}

/// Checks the SigV4 `Authorization` header's form (the secret is unknown here, so the signature
/// itself cannot be verified).
fn check_auth(headers: &HeaderMap) -> Result<(), CallError> {
    let forbidden =
        |kind: &'static str, msg: &str| CallError::new(StatusCode::FORBIDDEN, kind, msg);
    let Some(auth) = headers.get("authorization") else {
        return Err(forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let auth = auth.to_str().unwrap_or_default();
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(forbidden(
            "IncompleteSignatureException",
            "Authorization header requires the AWS4-HMAC-SHA256 algorithm",
        ));
    };
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(forbidden(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let scope_ok = scope.len() == 5
        && !scope[0].is_empty()
        && scope[1].len() == 8
        && scope[1].bytes().all(|b| b.is_ascii_digit())
        && !scope[2].is_empty()
        && scope[4] == "aws4_request";
    if !scope_ok {
        return Err(forbidden(
            "IncompleteSignatureException",
            "Credential must be KEY/yyyyMMdd/REGION/SERVICE/aws4_request",
        ));
    }
    if scope[3] != "cloudtrail-data" {
        return Err(forbidden(
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'cloudtrail-data'",
        ));
    }
    if !signed.split(';').any(|h| h == "host") {
        return Err(forbidden(
            "IncompleteSignatureException",
            "SignedHeaders must include host",
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(forbidden(
            "IncompleteSignatureException",
            "Signature must be 64 hexadecimal characters",
        ));
    }
    Ok(())
}

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A GUID-shaped event id, as CloudTrail Lake answers.
fn guid(rng: &mut fastrand::Rng) -> String {
    let (a, b) = (rng.u64(..), rng.u64(..));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Whether `arn` has the form of a channel ARN, or of a channel id (the ARN's suffix).
fn well_formed_channel(arn: &str) -> bool {
    if arn.starts_with("arn:") {
        ChannelArn::parse(arn).is_some()
    } else {
        is_channel_id(arn)
    }
}

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "auditEvents")]
    audit_events: Vec<InEvent>,
}

#[derive(Deserialize)]
struct InEvent {
    id: String,
    #[serde(rename = "eventData")]
    event_data: String,
    #[serde(rename = "eventDataChecksum")]
    event_data_checksum: Option<String>,
}

fn now_iso() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    UtcSeconds(secs).to_iso()
}

fn too_large(len: impl std::fmt::Display) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
        &format!("Request body of {len} bytes exceeds the limit of 1 MB ({MAX_BODY} bytes)"),
    )
}

/// How long a request waits for its share of the body budget before it is throttled.
const BODY_SHARE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes the request's share of the body budget (in KiB): its declared length, or the largest
/// body allowed when it declares none.
async fn body_share(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(MAX_BODY)
        .min(MAX_BODY);
    let kib = u32::try_from(declared.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let budget = Arc::clone(&shared.body_budget);
    match tokio::time::timeout(BODY_SHARE_WAIT, budget.acquire_many_owned(kib)).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Rate exceeded: too many request bodies at once",
        )),
    }
}

/// Reads the body once the headers passed: refused unread when its declared length is over the
/// limit, cut off when it grows past it, and given up when the client is too slow.
async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    timeout: std::time::Duration,
) -> Result<Bytes, Response> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&l| l > MAX_BODY as u64) {
        return Err(too_large(len));
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large(format!("more than {MAX_BODY}"))),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeoutException",
            "The request body was not received in time",
        )),
    }
}

async fn put_audit_events(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // Authentication first: nothing of an unauthenticated body is read.
    if let Err(e) = check_auth(&headers) {
        return e.into_response();
    }
    // The body's share of the memory budget, before a byte of it is read: what the client
    // declares, or the most a body may be. A flood of large bodies waits here, bounded,
    // instead of holding gigabytes; one that finds no room in time is throttled (retried by
    // the SDKs).
    let _share = match body_share(&shared, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = match read_body(&headers, body, shared.body_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // The configured latency is the call's round trip, as a client of the service sees it: the
    // call is worked on at once (admitted or throttled, its events checked and stored) and
    // answered when the latency has passed since its body arrived, or when the work is done if
    // that takes longer. As with the service, a client that vanishes before the answer may have
    // had its events stored.
    let (latency, call_error) = {
        let mut f = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
        (f.config().latency, f.call_errors())
    };
    let answer_at = tokio::time::Instant::now() + latency;
    let (response, accepted) = if call_error {
        let r = error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The request processing has failed because of an unknown error (injected)",
        );
        (r, 0)
    } else {
        work_on_call(&shared, query.as_deref().unwrap_or_default(), &body).await
    };
    wait_until(answer_at).await;
    if accepted > 0 {
        shared.answered.send_modify(|n| *n += accepted as u64);
    }
    response
}

/// Waits until `at`, to within about 0.2 ms. Tokio's timers tick in whole milliseconds and fired
/// 1.5 ms late on average (2 cores, `cargo bench --bench load`), so a "50 ms" call took 51.5: the
/// wait is a timer until 2 ms before `at`, then a thread's sleep on the blocking pool for the
/// rest (median 50.2 ms measured).
async fn wait_until(at: tokio::time::Instant) {
    const COARSE: std::time::Duration = std::time::Duration::from_millis(2);
    let now = tokio::time::Instant::now();
    if at <= now {
        return;
    }
    if at - now > COARSE {
        tokio::time::sleep_until(at - COARSE).await;
    }
    let rest = at.saturating_duration_since(tokio::time::Instant::now());
    if !rest.is_zero() {
        // A failed blocking task (the runtime shutting down) only answers early.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// A PutAuditEvents call's answer, and how many of its events were accepted (and stored).
async fn work_on_call(shared: &Shared, query: &str, body: &[u8]) -> (Response, usize) {
    let channel = match channel_of(shared, query) {
        Ok(c) => c,
        Err(r) => return (r, 0),
    };
    {
        let mut f = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
        if !f.admit(&channel.account, Instant::now()) {
            return (bad("ThrottlingException", "Rate exceeded"), 0);
        }
    }
    let events = match parse_events(body) {
        Ok(events) => events,
        Err(r) => return (r, 0),
    };

    let (successful, failed, rows) = accept(shared, channel, &events);
    let accepted = rows.len();
    if let Err(r) = store(shared, rows).await {
        return (r, 0);
    }
    let answer = (
        StatusCode::OK,
        axum::Json(json!({"successful": successful, "failed": failed})),
    );
    (answer.into_response(), accepted)
}

/// The channel a request names (`channelArn`, an ARN or its id), with its `externalId` checked.
// The refusal is the handler's own answer, returned as is: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn channel_of<'a>(shared: &'a Shared, query: &str) -> Result<&'a Channel, Response> {
    let Some(arn) = query_param(query, "channelArn") else {
        return Err(bad("ValidationException", "1 validation error detected: Value null at 'channelArn' failed to satisfy constraint: Member must not be null"));
    };
    if !well_formed_channel(&arn) {
        return Err(bad(
            "InvalidChannelARN",
            &format!("The channel ARN {arn} is not valid"),
        ));
    }
    let Some(channel) = shared
        .channels
        .iter()
        .find(|c| c.arn == arn || c.arn.rsplit('/').next() == Some(arn.as_str()))
    else {
        return Err(bad(
            "ChannelNotFound",
            &format!("The channel {arn} could not be found"),
        ));
    };
    if let Some(external) = query_param(query, "externalId") {
        let ok = (2..=1224).contains(&external.len())
            && external
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b));
        if !ok {
            return Err(bad(
                "ValidationException",
                "externalId does not match ^[\\w+=,.@:\\/-]*$ with 2 to 1224 characters",
            ));
        }
    }
    Ok(channel)
}

/// The request's events, checked as the service checks them before looking at any one: depth,
/// JSON, count, ids well formed and distinct.
// The refusal is the handler's own answer, returned as is: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn parse_events(body: &[u8]) -> Result<Vec<InEvent>, Response> {
    if aztrail_transform::json::nests_deeper_than(body, MAX_DEPTH) {
        return Err(bad(
            "ValidationException",
            &format!("The request body nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    // simd-json unescapes the (heavily escaped) eventData strings faster than serde_json; it
    // parses a copy in place.
    let mut body = body.to_vec();
    let request: Request = match simd_json::serde::from_slice(&mut body) {
        Ok(r) => r,
        Err(e) => {
            return Err(bad(
                "SerializationException",
                &format!("Malformed request body: {e}"),
            ))
        }
    };
    let events = request.audit_events;
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(bad(
            "ValidationException",
            &format!(
                "1 validation error detected: Value at 'auditEvents' failed to satisfy constraint: Member must have length between 1 and {MAX_EVENTS} (it has {})",
                events.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for e in &events {
        let id_ok = (1..=128).contains(&e.id.len())
            && e.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(bad(
                "ValidationException",
                &format!("Value '{}' at 'auditEvents.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[-_A-Za-z0-9]+$ with length 1 to 128", e.id),
            ));
        }
        if !seen.insert(e.id.as_str()) {
            return Err(bad(
                "DuplicatedAuditEventId",
                &format!(
                    "Two or more entries in the request have the same event ID {}",
                    e.id
                ),
            ));
        }
    }

    Ok(events)
}

/// Each event accepted (stored as CloudTrail Lake shows it) or failed, with the injected faults.
#[allow(clippy::type_complexity)]
fn accept(
    shared: &Shared,
    channel: &Channel,
    events: &[InEvent],
) -> (
    Vec<serde_json::Value>,
    Vec<serde_json::Value>,
    Vec<StoredEvent>,
) {
    let ingestion_time = now_iso();
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    // Each event's fault, drawn in the call's order under one lock.
    let faults: Vec<Option<EventFault>> = {
        let mut f = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
        events.iter().map(|_| f.event_fault()).collect()
    };
    let mut ids = shared.ids.lock().unwrap_or_else(|p| p.into_inner());
    for (e, fault) in events.iter().zip(faults) {
        let outcome = match fault {
            Some(EventFault::Throttle) => {
                Err((EventError::Throttling, "Rate exceeded".to_string()))
            }
            Some(EventFault::Fail) => Err((
                EventError::InternalFailure,
                "Internal failure (injected)".to_string(),
            )),
            None => check_event(
                &e.event_data,
                e.event_data_checksum.as_deref(),
                &channel.account,
            ),
        };
        match outcome {
            Ok(accepted) => {
                let event_id = guid(&mut ids);
                // The record as CloudTrail Lake shows it: eventData as sent, plus what the service
                // adds. eventData was parsed above, so it is a JSON object and can be embedded.
                let mut record = String::with_capacity(e.event_data.len() + 256);
                record.push_str("{\"eventData\":");
                record.push_str(&e.event_data);
                record.push_str(&format!(
                    ",\"eventID\":{},\"eventCategory\":\"ActivityAuditLog\",\"eventType\":\"ActivityLog\",\"ingestionTime\":{},\"channelARN\":{}}}",
                    json!(event_id),
                    json!(ingestion_time),
                    json!(channel.arn)
                ));
                successful.push(json!({"id": e.id, "eventID": event_id}));
                rows.push(StoredEvent {
                    event_id,
                    uid: e.id.clone(),
                    event_source: accepted.event_source,
                    event_name: accepted.event_name,
                    event_time: accepted.event_time,
                    channel_arn: channel.arn.clone(),
                    ingestion_time: ingestion_time.clone(),
                    record,
                });
            }
            Err((code, message)) => {
                failed.push(json!({"id": e.id, "errorCode": code.code(), "errorMessage": message}));
            }
        }
    }
    (successful, failed, rows)
}

/// Stores the accepted events (off the async threads); an error is the whole call's.
// The refusal is the handler's own answer, returned as is: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
async fn store(shared: &Shared, rows: Vec<StoredEvent>) -> Result<(), Response> {
    if rows.is_empty() {
        return Ok(());
    }
    let store = Arc::clone(&shared.store);
    let stored = tokio::task::spawn_blocking(move || {
        store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(&rows)
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    stored.map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            &format!("The event store failed: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_arns_and_ids() {
        assert!(well_formed_channel(
            "arn:aws:cloudtrail:us-east-1:123456789012:channel/abc-1"
        ));
        assert!(well_formed_channel("abc-1"));
        assert!(!well_formed_channel(
            "arn:aws:cloudtrail:us-east-1:1234:channel/abc"
        ));
        assert!(!well_formed_channel("arn:aws:s3:::bucket"));
        assert!(!well_formed_channel(
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/x"
        ));
        assert!(!well_formed_channel("has space"));
    }

    #[test]
    fn query_values_are_form_decoded() {
        let q = "channelArn=arn%3Aaws%3Acloudtrail%3Aus-east-1%3A123456789012%3Achannel%2Fx&externalId=a+b";
        assert_eq!(
            query_param(q, "channelArn").as_deref(),
            Some("arn:aws:cloudtrail:us-east-1:123456789012:channel/x")
        );
        assert_eq!(query_param(q, "externalId").as_deref(), Some("a b"));
        // A broken escape stays as written, as in every form decoder.
        assert_eq!(query_param("a=%zz", "a").as_deref(), Some("%zz"));
        assert_eq!(query_param("a=1", "b"), None);
    }
}
