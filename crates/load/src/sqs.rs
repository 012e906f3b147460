//! The SQS side: the work queue of S3 notifications and the failure queue.
//!
//! A message is deleted only once every object it names is fully accounted for (each record
//! accepted or in the failure queue). A message that is not an S3 notification goes to the
//! failure queue with its reason and is deleted, instead of coming back forever. A message whose
//! object could not be read is left alone: it returns after its visibility timeout, and after
//! the queue's maxReceiveCount it reaches the dead-letter queue. While a message's objects load,
//! a heartbeat extends its visibility; each object's checkpoint lets a redelivery skip what an
//! earlier delivery already accounted for.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tracing::Instrument;

use crate::checkpoint::{CheckpointStore, STATE_PREFIX};
use crate::failure::{FailureMessage, Location};
use crate::failure::{FailureSink, SqsFailures};
use crate::loader::{Destination, LoadConfig, Stop, Summary};
use crate::notification::{parse, Notification};
use crate::object::{Loaded, ReadErrors, S3Objects, Step};
use crate::pool::CallPool;
use crate::rate::RateLimiter;
use crate::retry::Backoff;
use crate::sink::EventSink;

/// What a worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSummary {
    /// Messages received.
    pub messages: u64,
    /// Messages deleted after all their objects were accounted for (or as test events).
    pub deleted: u64,
    /// Messages that were not S3 notifications (sent to the failure queue, then deleted).
    pub poison: u64,
    /// Messages left for redelivery (an object could not be read, reported, or finished in time).
    pub left: u64,
    /// Of those, messages made visible again at once because the worker was asked to stop.
    pub released: u64,
    /// Objects loaded.
    pub objects: u64,
    /// Objects a checkpoint showed as already loaded (a redelivered message).
    pub already_loaded: u64,
    /// Notifications of aztrail's own state objects, ignored.
    pub ignored: u64,
    /// Why messages were left (the first few).
    pub errors: Vec<String>,
    /// The records of all objects.
    pub load: Summary,
}

impl WorkerSummary {
    /// Adds another summary's counts to this one.
    pub fn add(&mut self, other: &WorkerSummary) {
        self.messages += other.messages;
        self.deleted += other.deleted;
        self.poison += other.poison;
        self.left += other.left;
        self.released += other.released;
        self.objects += other.objects;
        self.already_loaded += other.already_loaded;
        self.ignored += other.ignored;
        for e in &other.errors {
            self.note_error(e.clone());
        }
        self.load.add(&other.load);
    }

    fn note_error(&mut self, e: String) {
        tracing::warn!(error = %e, "message left for redelivery or retried");
        if self.errors.len() < 20 {
            self.errors.push(e);
        }
    }
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// ReceiveMessage or DeleteMessage failed.
    #[error("SQS {queue_url}")]
    Sqs {
        /// The queue.
        queue_url: String,
        /// What SQS said.
        #[source]
        source: aztrail_state::BoxError,
    },
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every object is accounted for (or there was nothing to do): delete the message.
    Done,
    /// Leave the message: it comes back after its visibility timeout and resumes.
    Retry(String),
}

/// Deletes the message `receipt` from `queue_url`, retrying with backoff (up to six attempts):
/// what every consumer of a queue (the worker, redrive) deletes with.
pub async fn delete_message(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt: &str,
) -> Result<
    (),
    aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::delete_message::DeleteMessageError>,
> {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 3);
    let mut attempt = 0;
    loop {
        let sent = sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(()),
            Err(e) if attempt >= 5 => return Err(e),
            Err(_) => {
                tokio::time::sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// Processes S3 notifications from one queue.
pub struct Worker<S: EventSink, C: CheckpointStore> {
    /// Reads the staged objects.
    pub s3: aws_sdk_s3::Client,
    /// Reads and deletes work messages.
    pub sqs: aws_sdk_sqs::Client,
    /// The work queue.
    pub queue_url: String,
    /// Where failures go.
    pub failures: SqsFailures,
    /// Where load progress is kept.
    pub checkpoints: C,
    /// Where events go.
    pub sink: Arc<S>,
    /// The process's rate limit.
    pub limiter: Arc<RateLimiter>,
    /// How to load.
    pub config: LoadConfig,
    /// Seconds a received message stays invisible to other workers; the heartbeat renews it.
    pub visibility_timeout: i32,
}

/// Renews a message's visibility until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<S: EventSink, C: CheckpointStore> Worker<S, C> {
    fn sqs_error(&self, e: impl Into<aztrail_state::BoxError>) -> WorkerError {
        WorkerError::Sqs {
            queue_url: self.queue_url.clone(),
            source: e.into(),
        }
    }

    /// How many messages the worker holds at once: enough small objects loading side by side
    /// (each waiting on S3 and SQS round trips and on its call) to keep every call slot busy
    /// with full calls (1,000 objects of 10 records: 16 per slot keep calls near 100 events where
    /// 8 left them at 75). Their batches wait in the pool's bounded queue, so memory stays
    /// bounded.
    fn max_held(&self) -> usize {
        self.config.objects_held()
    }

    /// A pool of calls for this worker's sink, rate limit and concurrency.
    fn new_pool(&self) -> CallPool {
        CallPool::start_lingering(
            Arc::clone(&self.sink),
            Arc::clone(&self.limiter),
            self.config.concurrency,
            self.config.call_linger,
        )
    }

    /// Gives this worker's loads a pool of calls shared by all their objects, once (the Lambda
    /// handler keeps the worker across invocations).
    pub fn ensure_pool(&mut self) {
        if self.config.pool.is_none() {
            self.config.pool = Some(self.new_pool());
        }
    }

    /// Receives and processes messages; with `until_empty`, stops when a receive finds none.
    ///
    /// Several messages are held at once (received ahead while others load), each under its own
    /// visibility heartbeat from the moment it is received, and their objects load side by side
    /// through one pool of calls. A failed receive or delete is retried with backoff: SQS errors
    /// never stop the worker (a message that could not be deleted comes back, and its checkpoint
    /// skips what was accepted).
    pub async fn run(&self, until_empty: bool) -> Result<WorkerSummary, WorkerError> {
        let pooled;
        let config = if self.config.pool.is_some() {
            &self.config
        } else {
            pooled = LoadConfig {
                pool: Some(self.new_pool()),
                ..self.config.clone()
            };
            &pooled
        };
        let mut total = WorkerSummary::default();
        let mut held = FuturesUnordered::new();
        let mut receiving = None;
        let mut drained = false;
        // A look without waiting found nothing: look again once a held message is done.
        let mut look_after_settle = false;
        let mut receive_failures = 0u32;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10), 7);
        loop {
            let room = self.max_held().saturating_sub(held.len());
            let stopping = config.stop.as_ref().is_some_and(Stop::is_set);
            if stopping {
                // No more receiving; what is held finishes its calls, checkpoints, and is
                // released below.
                receiving = None;
            }
            if receiving.is_none() && !drained && !look_after_settle && room > 0 && !stopping {
                // With messages in hand, look without waiting; with none, wait for some.
                let wait = match (held.is_empty(), until_empty) {
                    (false, _) => 0,
                    (true, true) => 1,
                    (true, false) => 20,
                };
                receiving = Some(Box::pin(
                    self.sqs
                        .receive_message()
                        .queue_url(&self.queue_url)
                        .max_number_of_messages(room.min(10) as i32)
                        .wait_time_seconds(wait)
                        .visibility_timeout(self.visibility_timeout)
                        .send(),
                ));
            }
            if receiving.is_none() && held.is_empty() {
                return Ok(total);
            }
            let stop_asked = async {
                match &config.stop {
                    Some(stop) if !stopping => stop.wait().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop_asked => continue,
                Some(summary) = held.next(), if !held.is_empty() => {
                    total.add(&summary);
                    look_after_settle = false;
                }
                received = async { receiving.as_mut().expect("guarded").await }, if receiving.is_some() => {
                    receiving = None;
                    let messages = match received {
                        Ok(r) => {
                            receive_failures = 0;
                            r.messages.unwrap_or_default()
                        }
                        Err(e) => {
                            total.note_error(format!(
                                "receiving from {}: {}; retrying",
                                self.queue_url,
                                crate::sdk_error_text(&e)
                            ));
                            tokio::time::sleep(backoff.delay(receive_failures)).await;
                            receive_failures = receive_failures.saturating_add(1);
                            continue;
                        }
                    };
                    if messages.is_empty() {
                        if held.is_empty() {
                            drained = until_empty;
                        } else {
                            look_after_settle = true;
                        }
                    }
                    for m in messages {
                        held.push(self.handle(config, m));
                    }
                }
            }
        }
    }

    /// Processes one received message to its end: loads its objects under a heartbeat, then
    /// deletes it when every object is accounted for.
    async fn handle(&self, config: &LoadConfig, m: aws_sdk_sqs::types::Message) -> WorkerSummary {
        let mut summary = WorkerSummary::default();
        let outcome = self
            .process_with(
                config,
                m.message_id().unwrap_or("?"),
                m.body().unwrap_or_default(),
                m.receipt_handle(),
                &mut summary,
            )
            .await;
        if outcome != Outcome::Done && config.stop.as_ref().is_some_and(Stop::is_set) {
            // Stopping: the message is visible again at once, for the next worker to resume
            // from the checkpoint just saved, instead of after its visibility timeout.
            if let Some(receipt) = m.receipt_handle() {
                let _ = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await;
                summary.released += 1;
            }
        }
        if outcome == Outcome::Done {
            if let Some(receipt) = m.receipt_handle() {
                match self.delete(receipt).await {
                    Ok(()) => summary.deleted += 1,
                    Err(e) => {
                        summary.left += 1;
                        summary.note_error(format!(
                            "{}; the message comes back and its checkpoint skips what was loaded",
                            crate::error_chain(&e)
                        ));
                    }
                }
            }
        }
        summary
    }

    /// Deletes a message, retrying with backoff a few times.
    pub async fn delete(&self, receipt: &str) -> Result<(), WorkerError> {
        delete_message(&self.sqs, &self.queue_url, receipt)
            .await
            .map_err(|e| self.sqs_error(e))
    }

    /// Keeps the message invisible while it is processed, renewing at half the timeout.
    fn heartbeat(&self, receipt: &str) -> Heartbeat {
        let sqs = self.sqs.clone();
        let queue_url = self.queue_url.clone();
        let receipt = receipt.to_string();
        let timeout = self.visibility_timeout.max(2);
        Heartbeat(tokio::spawn(async move {
            let period = Duration::from_secs(u64::try_from(timeout / 2).unwrap_or(1));
            loop {
                tokio::time::sleep(period).await;
                // A failed renewal is not fatal: at worst the message is redelivered and resumes
                // from its checkpoint.
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(&queue_url)
                    .receipt_handle(&receipt)
                    .visibility_timeout(timeout)
                    .send()
                    .await;
            }
        }))
    }

    /// Processes one message (with `receipt`, under a visibility heartbeat), adding to `total`.
    /// The caller deletes the message when the outcome is [`Outcome::Done`].
    pub async fn process(
        &self,
        message_id: &str,
        body: &str,
        receipt: Option<&str>,
        total: &mut WorkerSummary,
    ) -> Outcome {
        self.process_with(&self.config, message_id, body, receipt, total)
            .await
    }

    /// Like [`Worker::process`], loading with `config` (an invocation's deadline, say), in a
    /// `message` span: every consumer of messages (the queue loop, the Lambda handler) logs each
    /// message's objects under it.
    pub async fn process_with(
        &self,
        config: &LoadConfig,
        message_id: &str,
        body: &str,
        receipt: Option<&str>,
        total: &mut WorkerSummary,
    ) -> Outcome {
        let span = tracing::info_span!("message", id = message_id);
        async {
            total.messages += 1;
            let _heartbeat = receipt.map(|r| self.heartbeat(r));
            let outcome = self.process_body(config, message_id, body, total).await;
            if let Outcome::Retry(why) = &outcome {
                total.left += 1;
                total.note_error(format!("message {message_id}: {why}"));
            }
            outcome
        }
        .instrument(span)
        .await
    }

    async fn process_body(
        &self,
        config: &LoadConfig,
        message_id: &str,
        body: &str,
        total: &mut WorkerSummary,
    ) -> Outcome {
        let objects = match parse(body) {
            Ok(Notification::TestEvent) => return Outcome::Done,
            Ok(Notification::Objects { objects, .. }) => objects,
            Err(reason) => {
                total.poison += 1;
                let at = Location {
                    bucket: None,
                    key: format!("sqs:{}#{message_id}", self.queue_url),
                    offset: 0,
                    length: body.len() as u64,
                };
                let m = FailureMessage::new(
                    "NotS3Notification",
                    &reason.to_string(),
                    at,
                    0,
                    body.as_bytes(),
                );
                return match self.failures.send(m).await {
                    Ok(()) => Outcome::Done,
                    Err(e) => Outcome::Retry(format!("failure queue: {}", crate::error_chain(&e))),
                };
            }
        };
        let objects_in_s3 = S3Objects(self.s3.clone());
        let step = Step {
            dest: Destination {
                sink: &self.sink,
                limiter: &self.limiter,
                failures: &self.failures,
            },
            checkpoints: &self.checkpoints,
            objects: &objects_in_s3,
            config,
            read_errors: ReadErrors::Retry,
            from_start: false,
        };
        for object in objects {
            if object.key.starts_with(STATE_PREFIX) {
                total.ignored += 1;
                continue;
            }
            match step.load(&object).await {
                Loaded::AlreadyLoaded => total.already_loaded += 1,
                Loaded::Done { summary, .. } => {
                    total.objects += 1;
                    total.load.add(&summary);
                }
                Loaded::Stopped { summary, offset } => {
                    total.load.add(&summary);
                    return Outcome::Retry(format!(
                        "s3://{}/{}: stopped (out of time or asked to) at byte {offset}",
                        object.bucket, object.key
                    ));
                }
                Loaded::Unfinished { summary, why } => {
                    total.load.add(&summary);
                    return Outcome::Retry(why);
                }
            }
        }
        Outcome::Done
    }
}
