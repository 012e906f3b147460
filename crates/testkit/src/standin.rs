//! An in-process stand-in for the S3, SQS and CloudWatch Logs calls the queue worker makes, for
//! benchmarks.
//!
//! moto is the reference for behaviour and every test runs against it, but it spends some 16 ms
//! of single-threaded CPU per message received and 6 to 20 ms per S3 call, so a benchmark of
//! many small objects on moto measures moto. This stand-in answers the same wire protocols the
//! official SDK clients speak (S3 path-style GetObject/PutObject; SQS's JSON protocol:
//! ReceiveMessage with long polls and visibility timeouts, DeleteMessage,
//! ChangeMessageVisibility, SendMessage; CloudWatch Logs' CreateLogStream and PutLogEvents) in
//! microseconds, and notifies the work queue of every object put under `staged/` as S3 does. It
//! keeps everything in memory and checks nothing but PutLogEvents' batch rules (no signatures,
//! no conditions): never use it where behaviour is what is tested.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::Staging;

#[derive(Default)]
struct Queue {
    ready: VecDeque<(String, String)>,
    /// Receipt handle → (message id, body, visible again at).
    in_flight: HashMap<String, (String, String, Instant)>,
}

#[derive(Default)]
struct World {
    /// Path → (body, ETag), the ETag computed once when the object is put.
    objects: HashMap<String, (Bytes, String)>,
    queues: HashMap<String, Queue>,
    next: u64,
    /// Log events put.
    log_events: u64,
}

struct Shared {
    world: Mutex<World>,
    arrived: Notify,
    url: String,
}

/// The stand-in, serving until dropped.
pub struct AwsStandIn {
    /// Its endpoint (`http://127.0.0.1:PORT`), for S3, SQS and CloudWatch Logs alike.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AwsStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AwsStandIn {
    /// Starts the stand-in on a port the system picks (on the current tokio runtime), with the
    /// pipeline's AWS side ready: a `staging` bucket whose `staged/` objects notify the `work`
    /// queue, and a `failures` queue.
    pub async fn start() -> (Self, Staging) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared {
            world: Mutex::default(),
            arrived: Notify::new(),
            url: url.clone(),
        });
        for name in ["work", "failures"] {
            lock(&shared).queues.insert(name.into(), Queue::default());
        }
        let app = axum::Router::new()
            .fallback(answer)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let staging = Staging::clients(
            &url,
            "staging",
            &format!("{url}/queue/work"),
            &format!("{url}/queue/failures"),
        )
        .await;
        (Self { url, shared, task }, staging)
    }

    /// Log events PutLogEvents took, in every stream.
    pub fn log_events(&self) -> u64 {
        lock(&self.shared).log_events
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, World> {
    shared.world.lock().unwrap_or_else(|p| p.into_inner())
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if let Some(op) = target.and_then(|t| t.strip_prefix("AmazonSQS.")) {
        return sqs(&shared, op, &body).await;
    }
    if let Some(op) = target.and_then(|t| t.strip_prefix("Logs_20140328.")) {
        return logs(&shared, op, &body);
    }
    s3(&shared, &method, uri.path(), &headers, body)
}

/// CloudWatch Logs: streams are taken as they come; PutLogEvents checks the batch rules (at most
/// 10,000 events and 1,048,576 bytes counted as message + 26, time order, 24 hours) and counts.
fn logs(shared: &Shared, op: &str, body: &[u8]) -> Response {
    let refuse = |message: String| {
        (
            StatusCode::BAD_REQUEST,
            [("x-amzn-errortype", "InvalidParameterException")],
            json!({"__type": "InvalidParameterException", "message": message}).to_string(),
        )
            .into_response()
    };
    match op {
        "CreateLogStream" => "{}".into_response(),
        "PutLogEvents" => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return refuse("the body is not JSON".into());
            };
            let events = v["logEvents"].as_array().cloned().unwrap_or_default();
            let mut size = 0;
            let mut times = Vec::with_capacity(events.len());
            for e in &events {
                size += e["message"].as_str().map_or(0, str::len) + 26;
                times.push(e["timestamp"].as_i64().unwrap_or_default());
            }
            if events.len() > 10_000 || size > 1_048_576 {
                return refuse(format!("{} events of {size} bytes", events.len()));
            }
            if times.windows(2).any(|w| w[0] > w[1]) {
                return refuse("log events must be in chronological order".into());
            }
            if let (Some(a), Some(b)) = (times.first(), times.last()) {
                if b - a > 24 * 3600 * 1000 {
                    return refuse("a batch cannot span more than 24 hours".into());
                }
            }
            lock(shared).log_events += events.len() as u64;
            json!({"nextSequenceToken": "0"})
                .to_string()
                .into_response()
        }
        other => refuse(format!("{other} is not served here")),
    }
}

fn s3(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap, body: Bytes) -> Response {
    let path = path.trim_start_matches('/').to_string();
    let etag = |b: &[u8]| format!("\"{:016x}-{}\"", fnv(b), b.len());
    if *method == Method::PUT {
        let body = if headers.contains_key("x-amz-decoded-content-length") {
            Bytes::from(dechunk(&body))
        } else {
            body
        };
        let tag = etag(&body);
        let size = body.len();
        let mut world = lock(shared);
        world.next += 1;
        let sequencer = format!("{:016X}", world.next);
        world.objects.insert(path.clone(), (body, tag.clone()));
        if let Some((bucket, key)) = path.split_once('/') {
            if key.starts_with("staged/") {
                let note = json!({"Records": [{
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "eventTime": "2026-12-02T00:00:00.000Z",
                    "s3": {"bucket": {"name": bucket},
                           "object": {"key": key.replace(' ', "+"), "size": size,
                                      "eTag": tag.trim_matches('"'), "sequencer": sequencer}}
                }]});
                let id = format!("m{}", world.next);
                if let Some(q) = world.queues.get_mut("work") {
                    q.ready.push_back((id, note.to_string()));
                }
                drop(world);
                shared.arrived.notify_waiters();
            }
        }
        return (StatusCode::OK, [("etag", tag)]).into_response();
    }
    let found = lock(shared).objects.get(&path).cloned();
    match found {
        Some((b, tag)) => (StatusCode::OK, [("etag", tag)], b).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        )
            .into_response(),
    }
}

/// An `aws-chunked` body (what the SDK sends when it adds a trailing checksum) as its bytes.
fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let head = String::from_utf8_lossy(&rest[..eol]);
        let size =
            usize::from_str_radix(head.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(rest.len());
        out.extend_from_slice(&rest[start..end]);
        rest = rest.get(end + 2..).unwrap_or_default();
    }
    out
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

async fn sqs(shared: &Shared, op: &str, body: &[u8]) -> Response {
    let input: Value = serde_json::from_slice(body).unwrap_or_default();
    let queue = input["QueueUrl"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let out = match op {
        "ReceiveMessage" => {
            let max = input["MaxNumberOfMessages"].as_u64().unwrap_or(1).clamp(1, 10) as usize;
            let wait = Duration::from_secs(input["WaitTimeSeconds"].as_u64().unwrap_or(0));
            let hide = Duration::from_secs(input["VisibilityTimeout"].as_u64().unwrap_or(30));
            let until = Instant::now() + wait;
            loop {
                let arrived = shared.arrived.notified();
                let got = receive(shared, &queue, max, hide);
                if !got.is_empty() || Instant::now() >= until {
                    break json!({ "Messages": got });
                }
                let _ = tokio::time::timeout(
                    until.saturating_duration_since(Instant::now()).min(Duration::from_millis(100)),
                    arrived,
                )
                .await;
            }
        }
        "DeleteMessage" => {
            let receipt = input["ReceiptHandle"].as_str().unwrap_or_default();
            if let Some(q) = lock(shared).queues.get_mut(&queue) {
                q.in_flight.remove(receipt);
            }
            json!({})
        }
        "ChangeMessageVisibility" => {
            let receipt = input["ReceiptHandle"].as_str().unwrap_or_default();
            let hide = Duration::from_secs(input["VisibilityTimeout"].as_u64().unwrap_or(0));
            if let Some(q) = lock(shared).queues.get_mut(&queue) {
                if let Some(m) = q.in_flight.get_mut(receipt) {
                    m.2 = Instant::now() + hide;
                }
            }
            shared.arrived.notify_waiters();
            json!({})
        }
        "SendMessage" => {
            let mut world = lock(shared);
            world.next += 1;
            let id = format!("m{}", world.next);
            let text = input["MessageBody"].as_str().unwrap_or_default().to_string();
            if let Some(q) = world.queues.get_mut(&queue) {
                q.ready.push_back((id.clone(), text));
            }
            drop(world);
            shared.arrived.notify_waiters();
            json!({ "MessageId": id })
        }
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!(r#"{{"__type":"UnsupportedOperation","message":"{other} is not in the stand-in ({})"}}"#, shared.url),
            )
                .into_response()
        }
    };
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        out.to_string(),
    )
        .into_response()
}

/// Up to `max` visible messages of `queue`, now in flight for `hide`.
fn receive(shared: &Shared, queue: &str, max: usize, hide: Duration) -> Vec<Value> {
    let mut world = lock(shared);
    let World { queues, next, .. } = &mut *world;
    let Some(q) = queues.get_mut(queue) else {
        return Vec::new();
    };
    let now = Instant::now();
    let expired: Vec<String> = q
        .in_flight
        .iter()
        .filter(|(_, m)| m.2 <= now)
        .map(|(r, _)| r.clone())
        .collect();
    for r in expired {
        if let Some((id, body, _)) = q.in_flight.remove(&r) {
            q.ready.push_back((id, body));
        }
    }
    let mut out = Vec::new();
    while out.len() < max {
        let Some((id, body)) = q.ready.pop_front() else {
            break;
        };
        *next += 1;
        let receipt = format!("r{next}-{id}");
        out.push(json!({"MessageId": id, "ReceiptHandle": receipt, "Body": body}));
        q.in_flight.insert(receipt, (id, body, now + hide));
    }
    out
}
