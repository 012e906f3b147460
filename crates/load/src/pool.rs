//! Calls shared by every object a process loads, so that small objects fill whole calls.
//!
//! CloudTrail Lake's quota counts calls, not events: an object of ten records sent in a call of
//! its own wastes nine tenths of one. Every loader of a process (one per object, many at once
//! when the worker holds several messages) hands its batches to one [`CallPool`]. The pool waits
//! for a free call slot (the process's `concurrency`) and a rate-limit token, then closes a call
//! with every batch that arrived in the meantime, within the destination's call limits (its
//! [`Wire`]: 100 events and 1 MB for CloudTrail Lake; 10,000 events, 1 MiB and 24 hours for
//! CloudWatch Logs). A call that is not full yet waits up to its linger
//! ([`DEFAULT_CALL_LINGER`], `--call-linger-ms`) from its first batch for more: under the quota
//! batches pile up anyway, and with room to spare, objects that trickle in (one-record blobs as
//! ingest stages them) still fill calls instead of spending one each. Batches wait in a queue
//! bounded by their bytes (room for a few calls per call slot), not by their count, so thousands
//! of one-event batches can fill calls while memory stays bounded. Each batch gets back exactly
//! its own events' fate, as if it had been sent alone, so each object's accounting and
//! checkpoints are unchanged.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

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
    /// Its room in the queue, given back when it joins a call.
    _room: OwnedSemaphorePermit,
}

/// How long a call that is not full waits for more batches, by default: long enough for objects
/// staged one by one to fill calls, short enough to be nothing beside the minutes an event takes
/// to be queryable.
pub const DEFAULT_CALL_LINGER: Duration = Duration::from_millis(250);

/// The calls of one process: a handle to clone into every loader.
#[derive(Clone)]
pub struct CallPool {
    jobs: mpsc::UnboundedSender<Job>,
    /// The queue's room, in KiB of batches.
    room: Arc<Semaphore>,
    room_kib: u32,
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
        Self::start_lingering(sink, limiter, concurrency, DEFAULT_CALL_LINGER)
    }

    /// Like [`CallPool::start`], with calls that are not full waiting up to `linger` for more.
    pub fn start_lingering<S: EventSink>(
        sink: Arc<S>,
        limiter: Arc<RateLimiter>,
        concurrency: usize,
        linger: Duration,
    ) -> Self {
        // Room for two full calls per call slot, and two more: enough to fill calls, and no
        // more: a loader whose batch finds the queue full waits, so memory stays bounded
        // however many objects load at once.
        let wire = sink.wire();
        let room_kib =
            u32::try_from(((2 * concurrency.max(1) + 2) * wire.max_call_bytes).div_ceil(1024))
                .unwrap_or(u32::MAX >> 4);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(sink, limiter, concurrency.max(1), linger, rx));
        Self {
            jobs: tx,
            room: Arc::new(Semaphore::new(room_kib as usize)),
            room_kib,
        }
    }

    /// Sends `batch`, in a call that may carry other
    /// objects' batches too, until each event is accepted or has failed. The call-level counts
    /// (`calls`, `retried`, `throttled`) go to the first batch of each call, so that summed over
    /// objects they count each call once.
    pub async fn send<T>(&self, batch: Batch<T>, policy: &SendPolicy) -> Sent<T> {
        let (tags, events): (Vec<T>, Vec<OutEvent>) = batch.items.into_iter().unzip();
        let (reply, answer) = oneshot::channel();
        let kib = u32::try_from(batch.bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.room_kib);
        let answered = match Arc::clone(&self.room).acquire_many_owned(kib).await {
            Ok(room) => {
                let job = Job {
                    events,
                    bytes: batch.bytes,
                    span: batch.span,
                    policy: policy.clone(),
                    reply,
                    _room: room,
                };
                match self.jobs.send(job) {
                    Ok(()) => answer.await.ok(),
                    Err(_) => None,
                }
            }
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
    linger: Duration,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let wire = sink.wire();
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut deferred = Deferred::default();
    let mut call_no = 0u64;
    loop {
        let first = match deferred.pop() {
            Some(j) => j,
            None => match jobs.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        // The call fills until it is full, or its linger is over, or a full call's worth of
        // batches waits deferred (then it still takes a slot and a token, and whatever arrived
        // meanwhile rides along). A batch that does not fit, or holds an id the call holds
        // already (the same record staged in two objects: PutAuditEvents fails a whole call
        // that names an id twice), waits for a later call. (A hash collision only defers.)
        let until = tokio::time::Instant::now() + linger;
        let mut call = Call::new(first);
        for job in deferred.take_all() {
            deferred.offer(&mut call, &wire, job);
        }
        let mut lingering = true;
        let slot = loop {
            while let Ok(job) = jobs.try_recv() {
                deferred.offer(&mut call, &wire, job);
            }
            if call.full(&wire) || deferred.events >= wire.max_events {
                lingering = false;
            }
            if lingering {
                tokio::select! {
                    job = jobs.recv() => match job {
                        Some(job) => deferred.offer(&mut call, &wire, job),
                        // Every handle is gone: nothing more can come.
                        None => lingering = false,
                    },
                    () = tokio::time::sleep_until(until) => lingering = false,
                }
                continue;
            }
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            limiter.acquire().await;
            break slot;
        };
        while let Ok(job) = jobs.try_recv() {
            deferred.offer(&mut call, &wire, job);
        }
        let call = call.jobs;
        call_no += 1;
        let sink = Arc::clone(&sink);
        let limiter = Arc::clone(&limiter);
        tokio::spawn(async move {
            let _slot = slot;
            send_call(sink.as_ref(), &limiter, call, call_no).await;
        });
    }
}

/// Batches that did not fit the calls being filled (another day, for CloudWatch Logs; an id
/// the call holds already), oldest first: each later call takes first those of them that fit
/// it. Their events are counted as they come and go, not summed again for every batch.
#[derive(Default)]
struct Deferred {
    jobs: VecDeque<Job>,
    events: usize,
}

impl Deferred {
    /// Adds `job` to `call`, or keeps it for a later call.
    fn offer(&mut self, call: &mut Call, wire: &Wire, job: Job) {
        if let Err(job) = call.add(wire, job) {
            self.events += job.events.len();
            self.jobs.push_back(job);
        }
    }

    /// The oldest batch kept.
    fn pop(&mut self) -> Option<Job> {
        let job = self.jobs.pop_front()?;
        self.events -= job.events.len();
        Some(job)
    }

    /// Every batch kept, oldest first, to be offered again.
    fn take_all(&mut self) -> VecDeque<Job> {
        self.events = 0;
        std::mem::take(&mut self.jobs)
    }
}

/// A call being filled.
struct Call {
    jobs: Vec<Job>,
    events: usize,
    bytes: usize,
    span: Option<(i64, i64)>,
    ids: HashSet<u64>,
}

impl Call {
    fn new(first: Job) -> Self {
        Self {
            events: first.events.len(),
            bytes: first.bytes,
            span: first.span,
            ids: first.events.iter().map(|e| id_hash(&e.id)).collect(),
            jobs: vec![first],
        }
    }

    /// Adds `job` if it fits and names no id the call holds; else hands it back (by value: it
    /// is moved once, into the next call, so its size costs nothing here).
    #[allow(clippy::result_large_err)]
    fn add(&mut self, wire: &Wire, job: Job) -> Result<(), Job> {
        if !fits(wire, (self.events, self.bytes, self.span), &job)
            || job
                .events
                .iter()
                .any(|e| self.ids.contains(&id_hash(&e.id)))
        {
            return Err(job);
        }
        self.ids.extend(job.events.iter().map(|e| id_hash(&e.id)));
        self.events += job.events.len();
        self.bytes += job.bytes;
        self.span = widen(self.span, job.span);
        self.jobs.push(job);
        Ok(())
    }

    /// Whether no more events can join.
    fn full(&self, wire: &Wire) -> bool {
        // By count, or by size to within a small event's room.
        self.events >= wire.max_events
            || self.bytes + self.events * wire.per_event + wire.call_overhead + 1024
                >= wire.max_call_bytes
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
