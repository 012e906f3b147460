//! Calls shared by every object a process loads, so that small objects fill whole calls.
//!
//! CloudTrail Lake's quota counts calls, not events: an object of ten records sent in a call of
//! its own wastes nine tenths of one. Every loader of a process (one per object, many at once
//! when the worker holds several messages) hands its batches to one [`CallPool`]. The pool waits
//! for a free call slot (the process's `concurrency`) and a rate-limit token, then closes a call
//! with every batch that arrived in the meantime, within the destination's call limits (its
//! [`Wire`]: 100 events and 1 MB for CloudTrail Lake; 10,000 events, 1 MiB and 24 hours for
//! CloudWatch Logs). Under
//! the quota, batches pile up during the wait and calls leave full; with room to spare, a batch
//! leaves at once. Each batch gets back exactly its own events' fate, as if it had been sent alone,
//! so each object's accounting and checkpoints are unchanged.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::batch::Batch;
use crate::rate::RateLimiter;
use crate::retry::Backoff;
use crate::sender::{send_batch_from, Failed, SendPolicy, Sent};
use crate::sink::{EventSink, OutEvent, Wire};

/// One object's batch waiting for a call.
struct Job {
    events: Vec<OutEvent>,
    /// The events' counted size.
    bytes: usize,
    /// Their oldest and newest time.
    span: Option<(i64, i64)>,
    policy: SendPolicy,
    reply: oneshot::Sender<Sent<usize>>,
}

/// The calls of one process: a handle to clone into every loader.
#[derive(Clone)]
pub struct CallPool {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for CallPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallPool")
    }
}

impl CallPool {
    /// A pool sending to `sink`, at most `concurrency` calls in flight, each taking a token of
    /// `limiter`. It runs on the current runtime until every handle is dropped.
    pub fn start<S: EventSink>(
        sink: Arc<S>,
        limiter: Arc<RateLimiter>,
        concurrency: usize,
    ) -> Self {
        // Room for enough batches to fill calls, and no more: a loader whose batch finds the
        // queue full waits, so memory stays bounded however many objects load at once.
        let (tx, rx) = mpsc::channel(8 * concurrency.max(1));
        tokio::spawn(dispatch(sink, limiter, concurrency.max(1), rx));
        Self { jobs: tx }
    }

    /// Sends `batch`, in a call that may carry other
    /// objects' batches too, until each event is accepted or has failed. The call-level counts
    /// (`calls`, `retried`, `throttled`) go to the first batch of each call, so that summed over
    /// objects they count each call once.
    pub async fn send<T>(&self, batch: Batch<T>, policy: &SendPolicy) -> Sent<T> {
        let (tags, events): (Vec<T>, Vec<OutEvent>) = batch.items.into_iter().unzip();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            events,
            bytes: batch.bytes,
            span: batch.span,
            policy: policy.clone(),
            reply,
        };
        let answered = match self.jobs.send(job).await {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        let Some(sent) = answered else {
            // The pool is gone (the runtime is shutting down): nothing was accepted.
            return Sent {
                accepted: Vec::new(),
                failed: tags
                    .into_iter()
                    .map(|tag| Failed {
                        tag,
                        code: "NotSent".into(),
                        message: "the process stopped before the call was made".into(),
                        attempts: 0,
                    })
                    .collect(),
                calls: 0,
                retried: 0,
                throttled: 0,
            };
        };
        let mut tags: Vec<Option<T>> = tags.into_iter().map(Some).collect();
        let mut take = |i: usize| tags.get_mut(i).and_then(Option::take);
        Sent {
            accepted: sent.accepted.into_iter().filter_map(&mut take).collect(),
            failed: sent
                .failed
                .into_iter()
                .filter_map(|f| {
                    Some(Failed {
                        tag: take(f.tag)?,
                        code: f.code,
                        message: f.message,
                        attempts: f.attempts,
                    })
                })
                .collect(),
            calls: sent.calls,
            retried: sent.retried,
            throttled: sent.throttled,
        }
    }
}

/// Whether `job` joins a call of `events` events, `bytes` bytes and times `span`.
fn fits(wire: &Wire, (events, bytes, span): (usize, usize, Option<(i64, i64)>), job: &Job) -> bool {
    wire.fits(
        (events, bytes, span),
        (job.events.len(), job.bytes, job.span),
    )
}

fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// The oldest and newest of two spans.
fn widen(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, None) => a,
        (None, b) => b,
    }
}

async fn dispatch<S: EventSink>(
    sink: Arc<S>,
    limiter: Arc<RateLimiter>,
    concurrency: usize,
    mut jobs: mpsc::Receiver<Job>,
) {
    let wire = sink.wire();
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut next: Option<Job> = None;
    let mut call_no = 0u64;
    loop {
        let first = match next.take() {
            Some(j) => j,
            None => match jobs.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        limiter.acquire().await;
        // Everything that arrived while waiting for the slot and the token rides along, unless
        // it holds an id the call holds already (the same record staged in two objects):
        // PutAuditEvents fails a whole call that names an id twice, so that batch waits for the
        // next call. (A hash collision only closes a call early.)
        let (mut events, mut bytes, mut span) = (first.events.len(), first.bytes, first.span);
        let mut ids: HashSet<u64> = first.events.iter().map(|e| id_hash(&e.id)).collect();
        let mut call = vec![first];
        while let Ok(job) = jobs.try_recv() {
            if fits(&wire, (events, bytes, span), &job)
                && !job.events.iter().any(|e| ids.contains(&id_hash(&e.id)))
            {
                ids.extend(job.events.iter().map(|e| id_hash(&e.id)));
                events += job.events.len();
                bytes += job.bytes;
                span = widen(span, job.span);
                call.push(job);
            } else {
                next = Some(job);
                break;
            }
        }
        call_no += 1;
        let sink = Arc::clone(&sink);
        let limiter = Arc::clone(&limiter);
        tokio::spawn(async move {
            let _slot = slot;
            send_call(sink.as_ref(), &limiter, call, call_no).await;
        });
    }
}

/// Sends one call's jobs and answers each with its own events' fate.
async fn send_call<S: EventSink>(sink: &S, limiter: &RateLimiter, call: Vec<Job>, call_no: u64) {
    let policy = call[0].policy.clone();
    let mut batch = Vec::new();
    let mut replies = Vec::with_capacity(call.len());
    for (j, job) in call.into_iter().enumerate() {
        replies.push((job.reply, job.events.len()));
        batch.extend(job.events.into_iter().enumerate().map(|(i, e)| ((j, i), e)));
    }
    let mut backoff = Backoff::new(policy.backoff_base, policy.backoff_cap, call_no);
    let sent = send_batch_from(sink, limiter, &mut backoff, &policy, batch, true).await;
    let mut per_job: Vec<Sent<usize>> = replies
        .iter()
        .map(|(_, n)| Sent {
            accepted: Vec::with_capacity(*n),
            failed: Vec::new(),
            calls: 0,
            retried: 0,
            throttled: 0,
        })
        .collect();
    if let Some(first) = per_job.first_mut() {
        first.calls = sent.calls;
        first.retried = sent.retried;
        first.throttled = sent.throttled;
    }
    for (j, i) in sent.accepted {
        per_job[j].accepted.push(i);
    }
    for f in sent.failed {
        let (j, i) = f.tag;
        per_job[j].failed.push(Failed {
            tag: i,
            code: f.code,
            message: f.message,
            attempts: f.attempts,
        });
    }
    for ((reply, _), sent) in replies.into_iter().zip(per_job) {
        // A loader that stopped waiting (its task was cancelled) needs no answer.
        let _ = reply.send(sent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{CallError, PutResult};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Accepts after 10 ms; refuses a call naming an id twice, as PutAuditEvents does.
    #[derive(Default)]
    struct Strict(Mutex<Vec<Vec<String>>>);

    impl EventSink for Strict {
        async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
            self.0.lock().unwrap().push(ids.clone());
            let distinct: HashSet<&String> = ids.iter().collect();
            if distinct.len() < ids.len() {
                return Err(CallError {
                    status: Some(400),
                    error_type: Some("DuplicatedAuditEventId".into()),
                    message: "an id twice".into(),
                });
            }
            Ok(PutResult {
                successful: ids,
                failed: Vec::new(),
            })
        }
    }

    fn batch(ids: &[&str]) -> Batch<usize> {
        Batch {
            items: ids
                .iter()
                .enumerate()
                .map(|(i, id)| (i, OutEvent::new(id, "{}", "c")))
                .collect(),
            bytes: ids.len() * 40,
            span: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn small_batches_share_a_call_but_never_an_id() {
        let sink = Arc::new(Strict::default());
        let pool = CallPool::start(Arc::clone(&sink), Arc::new(RateLimiter::new(1000.0)), 1);
        let policy = SendPolicy::default();
        // The first takes the only slot; the others queue and leave together when it frees,
        // except the one that repeats an id.
        let sent = futures::future::join_all([
            pool.send(batch(&["a"]), &policy),
            pool.send(batch(&["b", "c"]), &policy),
            pool.send(batch(&["c"]), &policy),
            pool.send(batch(&["d"]), &policy),
        ])
        .await;
        for s in &sent {
            assert!(s.failed.is_empty(), "{s:?}");
        }
        let calls = sink.0.lock().unwrap().clone();
        assert!(calls.len() < 4, "small batches shared calls: {calls:?}");
        assert!(calls.iter().any(|c| c.len() > 1), "{calls:?}");
        let all: usize = calls.iter().map(Vec::len).sum();
        assert_eq!(all, 5);
    }
}
