//! Security Lake batches fed by SQS: the queue worker (`aztrail load --queue-url`) and the load
//! Lambda's batch handler.
//!
//! Both read the S3 notifications' objects into one [`OcsfBatch`] and acknowledge a message (by
//! deleting it, or by leaving it out of Lambda's `batchItemFailures`) only after the batch's files
//! were put: every record of its objects is then in a written file or in the failure queue. A
//! message one of whose objects cannot be read is rolled back out of the batch (none of its
//! events are written) and left to come back.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aztrail_transform::Source;

use super::{BatchError, BatchSummary, LakeLayout, OcsfBatch, Output};
use crate::failure::{FailureMessage, FailureSink, Location};
use crate::notification::{parse, Notification};

/// What a message's objects did to the batch.
#[derive(Debug)]
pub enum MessageOutcome {
    /// Every object is in the batch (or was reported unreadable to the failure queue): the
    /// message can be acknowledged once the batch is written.
    InBatch,
    /// Something could not be read: the message was rolled back and must come back.
    Retry(String),
}

/// Adds every object of one notification message to `batch`, or none of them.
pub async fn add_message<F: FailureSink>(
    batch: &mut OcsfBatch,
    s3: &aws_sdk_s3::Client,
    body: &str,
    failures: &F,
) -> MessageOutcome {
    let objects = match parse(body) {
        Ok(Notification::TestEvent) => return MessageOutcome::InBatch,
        Ok(Notification::Objects { objects, .. }) => objects,
        Err(e) => {
            // Not a notification: reported once, with the body, and acknowledged.
            let at = Location {
                bucket: None,
                key: "(queue message)".into(),
                offset: 0,
                length: body.len() as u64,
            };
            let m = FailureMessage::new("NotANotification", &e.to_string(), at, 0, body.as_bytes());
            return match failures.send(m).await {
                Ok(()) => MessageOutcome::InBatch,
                Err(e) => MessageOutcome::Retry(e.to_string()),
            };
        }
    };
    let mark = batch.mark();
    for object in objects {
        let got = s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await;
        let source = Source {
            bucket: Some(object.bucket.clone()),
            key: object.key.clone(),
        };
        let got = match got {
            Ok(g) => g,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                // Gone (a lifecycle rule, or deleted by hand): nothing will bring it back.
                let at = Location {
                    bucket: source.bucket.clone(),
                    key: source.key.clone(),
                    offset: 0,
                    length: 0,
                };
                let m = FailureMessage::unreadable(at, "the staged object no longer exists");
                if let Err(e) = failures.send(m).await {
                    batch.rollback(&mark);
                    return MessageOutcome::Retry(e.to_string());
                }
                continue;
            }
            Err(e) => {
                batch.rollback(&mark);
                return MessageOutcome::Retry(format!(
                    "reading s3://{}/{}: {}",
                    object.bucket,
                    object.key,
                    crate::error_chain(&e)
                ));
            }
        };
        let reader = crate::s3::decompressed(&object.key, got.body.into_async_read());
        if let Err(e) = batch.add(&source, reader, failures).await {
            batch.rollback(&mark);
            return MessageOutcome::Retry(e.to_string());
        }
    }
    MessageOutcome::InBatch
}

/// Where a Lambda batch's files go, and when it must stop reading.
pub struct LambdaTarget<'a, F> {
    /// S3, to read the staged objects.
    pub s3: &'a aws_sdk_s3::Client,
    /// Where rejected records go.
    pub failures: &'a F,
    /// The keys' layout.
    pub layout: &'a LakeLayout,
    /// A bucket or a directory.
    pub output: &'a Output,
    /// No message is started after this (the invocation's deadline less the time the files
    /// take to write): those left are returned to the queue untouched.
    pub stop_reading_at: tokio::time::Instant,
}

/// The Lambda handler for an SQS batch (the trigger's batching window gathers up to 5 minutes of
/// notifications): one batch of files for the whole invocation; the messages that could not be
/// read, or were not started before the deadline, are listed as failures, and all of them if the
/// files could not be written.
pub async fn handle_lambda_batch<F: FailureSink>(
    mut batch: OcsfBatch,
    target: &LambdaTarget<'_, F>,
    event: SqsEvent,
) -> (SqsBatchResponse, BatchSummary) {
    let (s3, failures, layout, output) = (target.s3, target.failures, target.layout, target.output);
    let mut response = SqsBatchResponse::default();
    let mut done = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if tokio::time::Instant::now() >= target.stop_reading_at {
            response.add_failure(id);
            continue;
        }
        let body = message.body.as_deref().unwrap_or_default();
        match add_message(&mut batch, s3, body, failures).await {
            MessageOutcome::InBatch => done.push(id),
            MessageOutcome::Retry(why) => {
                tracing::warn!(message = %id, "returned to the queue: {why}");
                response.add_failure(id);
            }
        }
    }
    if batch.is_empty() {
        return (response, BatchSummary::default());
    }
    match batch.flush(layout, output).await {
        Ok(summary) => (response, summary),
        Err(e) => {
            tracing::error!("writing the batch's files: {e}");
            for id in done {
                response.add_failure(id);
            }
            (response, BatchSummary::default())
        }
    }
}

/// What the queue worker did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueSummary {
    /// Messages received.
    pub messages: u64,
    /// Messages deleted after their batch was written.
    pub deleted: u64,
    /// Messages left to come back (unreadable objects, or a batch that could not be written).
    pub left: u64,
    /// What the batches wrote.
    pub batches: BatchSummary,
}

/// The SQS worker for Security Lake: gathers notifications into a batch until a limit is
/// reached (or, with `until_empty`, the queue is empty), writes its files, deletes the messages,
/// and starts again.
pub struct QueueWorker<'a, F> {
    /// S3, to read the staged objects.
    pub s3: &'a aws_sdk_s3::Client,
    /// SQS.
    pub sqs: &'a aws_sdk_sqs::Client,
    /// The notification queue.
    pub queue_url: &'a str,
    /// Where rejected records go.
    pub failures: &'a F,
    /// The keys' layout.
    pub layout: &'a LakeLayout,
    /// A bucket or a directory.
    pub output: &'a Output,
}

impl<F: FailureSink> QueueWorker<'_, F> {
    /// Runs batches until the queue is empty (`until_empty`) or `stop` is set; each batch from
    /// `new_batch`.
    pub async fn run(
        &self,
        mut new_batch: impl FnMut() -> Result<OcsfBatch, BatchError>,
        until_empty: bool,
        stop: Option<&aztrail_state::Stop>,
    ) -> Result<QueueSummary, BatchError> {
        let mut total = QueueSummary::default();
        loop {
            let mut batch = new_batch()?;
            let max_age = batch.limits.max_age;
            // The batch's age counts from its first message: an idle queue is long-polled.
            let mut started: Option<Instant> = None;
            let mut held: Vec<String> = Vec::new();
            let mut drained = false;
            while !batch.is_full() && !stop.is_some_and(|s| s.is_set()) {
                let left = started.map_or(max_age, |t| max_age.saturating_sub(t.elapsed()));
                if left.is_zero() {
                    break;
                }
                let wait = if until_empty {
                    1
                } else {
                    left.as_secs().clamp(1, 20) as i32
                };
                let got = self
                    .sqs
                    .receive_message()
                    .queue_url(self.queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(wait)
                    .send()
                    .await
                    .map_err(|e| BatchError::Put {
                        to: format!("receiving from {}", self.queue_url),
                        source: Box::new(e),
                    })?;
                let messages = got.messages.unwrap_or_default();
                if messages.is_empty() {
                    if until_empty {
                        drained = true;
                        break;
                    }
                    continue;
                }
                started.get_or_insert_with(Instant::now);
                for m in messages {
                    total.messages += 1;
                    let body = m.body.as_deref().unwrap_or_default();
                    match add_message(&mut batch, self.s3, body, self.failures).await {
                        MessageOutcome::InBatch => {
                            held.extend(m.receipt_handle);
                        }
                        MessageOutcome::Retry(why) => {
                            tracing::warn!("a message returns to the queue: {why}");
                            total.left += 1;
                        }
                    }
                }
            }
            if !batch.is_empty() {
                match batch.flush(self.layout, self.output).await {
                    Ok(s) => total.batches.add(&s),
                    Err(e) => {
                        total.left += held.len() as u64;
                        return Err(e);
                    }
                }
            }
            let deleted = self.delete(&held).await;
            total.deleted += deleted;
            total.left += held.len() as u64 - deleted;
            if drained || stop.is_some_and(|s| s.is_set()) {
                return Ok(total);
            }
        }
    }

    /// Deletes the messages, ten at a time, each batch retried once; returns how many were
    /// deleted (one not deleted comes back and its objects are written again, as a duplicate
    /// batch `metadata.uid` recognises).
    async fn delete(&self, receipts: &[String]) -> u64 {
        let mut deleted = 0;
        for chunk in receipts.chunks(10) {
            for attempt in 0..2 {
                let mut req = self.sqs.delete_message_batch().queue_url(self.queue_url);
                for (i, r) in chunk.iter().enumerate() {
                    if let Ok(entry) = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                    {
                        req = req.entries(entry);
                    }
                }
                match req.send().await {
                    Ok(out) => {
                        deleted += out.successful.len() as u64;
                        break;
                    }
                    Err(e) if attempt == 1 => {
                        tracing::warn!("deleting messages: {}", crate::error_chain(&e));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
        deleted
    }
}
