//! Sending one batch until every event in it is accounted for.
//!
//! Each call waits for the shared rate limit. Events the service accepted are done; events it
//! answered with a retryable code (Throttling, InternalFailure), or all of them when the whole call
//! failed in a retryable way, go again after a jittered backoff, until the attempts or the deadline
//! run out. Every event ends in exactly one of `accepted` or `failed`.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::rate::RateLimiter;
use crate::retry::{retryable_call, retryable_event_error, Backoff};
use crate::sink::{EventSink, OutEvent};

/// How hard to try.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    /// Calls at most per event (the first one included).
    pub max_attempts: u32,
    /// No retry starts after this instant (a Lambda's remaining time, a run's end).
    pub deadline: Option<Instant>,
    /// First backoff ceiling.
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_cap: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            deadline: None,
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(5),
        }
    }
}

/// An event that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed<T> {
    /// The caller's tag for it.
    pub tag: T,
    /// The last error code.
    pub code: String,
    /// The last error message.
    pub message: String,
    /// Calls made for it.
    pub attempts: u32,
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent<T> {
    /// Tags of the accepted events.
    pub accepted: Vec<T>,
    /// The events not accepted.
    pub failed: Vec<Failed<T>>,
    /// Calls made.
    pub calls: u32,
    /// Events sent again after a retryable answer.
    pub retried: u32,
    /// Calls or events answered with throttling.
    pub throttled: u32,
}

/// Sends `batch` (at most one call's worth) until every event is accepted or has failed.
pub async fn send_batch<S: EventSink, T>(
    sink: &S,
    limiter: &RateLimiter,
    backoff: &mut Backoff,
    policy: &SendPolicy,
    batch: Vec<(T, OutEvent)>,
) -> Sent<T> {
    send_batch_from(sink, limiter, backoff, policy, batch, false).await
}

/// Like [`send_batch`]; with `first_token_held`, the rate-limit token of the first call was
/// taken already (by the [`crate::pool::CallPool`], which takes it before closing the call).
pub(crate) async fn send_batch_from<S: EventSink, T>(
    sink: &S,
    limiter: &RateLimiter,
    backoff: &mut Backoff,
    policy: &SendPolicy,
    batch: Vec<(T, OutEvent)>,
    first_token_held: bool,
) -> Sent<T> {
    let mut token_held = first_token_held;
    let mut sent = Sent {
        accepted: Vec::with_capacity(batch.len()),
        failed: Vec::new(),
        calls: 0,
        retried: 0,
        throttled: 0,
    };
    let (mut tags, mut events): (Vec<T>, Vec<OutEvent>) = batch.into_iter().unzip();
    let mut attempt = 0u32;
    while !events.is_empty() {
        if !std::mem::take(&mut token_held) {
            limiter.acquire().await;
        }
        attempt += 1;
        sent.calls += 1;
        let may_retry =
            attempt < policy.max_attempts && policy.deadline.is_none_or(|d| Instant::now() < d);
        // Per event: None when accepted, Some((code, message, retryable)) otherwise.
        let outcome: Vec<Option<(String, String, bool)>> = match sink.put(&events).await {
            Ok(result) => {
                let mut by_id: HashMap<&str, (String, String)> = result
                    .failed
                    .iter()
                    .map(|f| (f.id.as_str(), (f.code.clone(), f.message.clone())))
                    .collect();
                let ok: std::collections::HashSet<&str> =
                    result.successful.iter().map(String::as_str).collect();
                events
                    .iter()
                    .map(|e| {
                        if ok.contains(e.id.as_str()) {
                            None
                        } else if let Some((code, msg)) = by_id.remove(e.id.as_str()) {
                            if code == "Throttling" {
                                sent.throttled += 1;
                            }
                            let retry = retryable_event_error(&code);
                            Some((code, msg, retry))
                        } else {
                            // Neither accepted nor failed: the answer lost it; ask again.
                            Some(("InternalFailure".into(), "not in the answer".into(), true))
                        }
                    })
                    .collect()
            }
            Err(call) => {
                let retry = retryable_call(call.status, call.error_type.as_deref());
                if call.error_type.as_deref() == Some("ThrottlingException") {
                    sent.throttled += 1;
                }
                let code = call
                    .error_type
                    .clone()
                    .unwrap_or_else(|| match call.status {
                        Some(s) => format!("HTTP{s}"),
                        None => "NoResponse".into(),
                    });
                events
                    .iter()
                    .map(|_| Some((code.clone(), call.message.clone(), retry)))
                    .collect()
            }
        };
        let mut keep_tags = Vec::new();
        let mut keep_events = Vec::new();
        for ((tag, event), result) in tags.into_iter().zip(events).zip(outcome) {
            match result {
                None => sent.accepted.push(tag),
                Some((_, _, true)) if may_retry => {
                    sent.retried += 1;
                    keep_tags.push(tag);
                    keep_events.push(event);
                }
                Some((code, message, _)) => sent.failed.push(Failed {
                    tag,
                    code,
                    message,
                    attempts: attempt,
                }),
            }
        }
        tags = keep_tags;
        events = keep_events;
        if !events.is_empty() {
            tokio::time::sleep(backoff.delay(attempt - 1)).await;
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{CallError, PutResult};
    use std::sync::Mutex;

    /// Answers from a script, one per call; records what each call carried.
    struct Scripted {
        answers: Mutex<Vec<Result<PutResult, CallError>>>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl EventSink for Scripted {
        async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
            self.calls
                .lock()
                .unwrap()
                .push(events.iter().map(|e| e.id.clone()).collect());
            self.answers.lock().unwrap().remove(0)
        }
    }

    fn ev(id: &str) -> OutEvent {
        OutEvent::new(id, "{}", "c")
    }

    fn ok(ids: &[&str], failed: &[(&str, &str)]) -> Result<PutResult, CallError> {
        Ok(PutResult {
            successful: ids.iter().map(|s| s.to_string()).collect(),
            failed: failed
                .iter()
                .map(|(i, c)| crate::sink::EventRefused::new(*i, *c, "m"))
                .collect(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_can_succeed_later() {
        let sink = Scripted {
            answers: Mutex::new(vec![
                ok(
                    &["a"],
                    &[
                        ("b", "Throttling"),
                        ("c", "InvalidChecksum"),
                        ("d", "InternalFailure"),
                    ],
                ),
                Err(CallError {
                    status: Some(500),
                    error_type: Some("InternalFailure".into()),
                    message: "boom".into(),
                }),
                ok(&["b"], &[("d", "Throttling")]),
                ok(&["d"], &[]),
            ]),
            calls: Mutex::new(Vec::new()),
        };
        let limiter = RateLimiter::new(100.0);
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 1);
        let batch = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| (i, ev(id)))
            .collect();
        let sent = send_batch(&sink, &limiter, &mut backoff, &SendPolicy::default(), batch).await;
        assert_eq!(sent.accepted, vec![0, 1, 3]);
        assert_eq!(
            sent.failed,
            vec![Failed {
                tag: 2,
                code: "InvalidChecksum".into(),
                message: "m".into(),
                attempts: 1
            }]
        );
        assert_eq!(sent.calls, 4);
        assert_eq!(sent.throttled, 2);
        let calls = sink.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![
                vec!["a", "b", "c", "d"],
                vec!["b", "d"],
                vec!["b", "d"],
                vec!["d"]
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_attempt_limit_and_on_final_errors() {
        let sink = Scripted {
            answers: Mutex::new(vec![
                ok(&[], &[("a", "Throttling")]),
                ok(&[], &[("a", "Throttling")]),
                Err(CallError {
                    status: Some(400),
                    error_type: Some("ChannelNotFound".into()),
                    message: "no".into(),
                }),
            ]),
            calls: Mutex::new(Vec::new()),
        };
        let limiter = RateLimiter::new(100.0);
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 1);
        let policy = SendPolicy {
            max_attempts: 2,
            ..SendPolicy::default()
        };
        let sent = send_batch(&sink, &limiter, &mut backoff, &policy, vec![((), ev("a"))]).await;
        assert_eq!(sent.failed[0].code, "Throttling");
        assert_eq!(sent.failed[0].attempts, 2);
        let sent = send_batch(
            &sink,
            &limiter,
            &mut backoff,
            &SendPolicy::default(),
            vec![((), ev("b"))],
        )
        .await;
        assert_eq!(
            (sent.failed[0].code.as_str(), sent.failed[0].attempts),
            ("ChannelNotFound", 1)
        );
    }
}
