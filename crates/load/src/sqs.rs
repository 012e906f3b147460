//! The SQS side: the work queue of S3 notifications and the failure queue.
//!
//! A message is deleted only once every object it names is fully accounted for (each record
//! accepted or in the failure queue). A message that is not an S3 notification goes to the
//! failure queue with its reason and is deleted, instead of coming back forever. A message whose
//! object could not be read is left alone: it returns after its visibility timeout, and after
//! the queue's maxReceiveCount it reaches the dead-letter queue.

use std::sync::Arc;

use aztrail_transform::Source;

use crate::failure::{FailureMessage, Location};
use crate::loader::{load, FailureSink, LoadConfig, Summary};
use crate::notification::{parse, Notification};
use crate::rate::RateLimiter;
use crate::sink::AuditSink;

/// Failure messages sent to an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsFailures {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsFailures {
    /// Sends to `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl FailureSink for SqsFailures {
    async fn send(&self, message: FailureMessage) -> Result<(), String> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.to_json())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
    }
}

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
    /// Messages left for redelivery (an object could not be read or reported).
    pub left: u64,
    /// Objects loaded.
    pub objects: u64,
    /// The records of all objects.
    pub load: Summary,
}

impl WorkerSummary {
    fn add(&mut self, s: &Summary) {
        let l = &mut self.load;
        l.bytes += s.bytes;
        l.records += s.records;
        l.accepted += s.accepted;
        l.failed += s.failed;
        l.calls += s.calls;
        l.retried += s.retried;
        l.throttled += s.throttled;
        for (code, n) in &s.failed_by_code {
            *l.failed_by_code.entry(code.clone()).or_default() += n;
        }
    }
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// ReceiveMessage or DeleteMessage failed.
    #[error("SQS {queue_url}: {message}")]
    Sqs {
        /// The queue.
        queue_url: String,
        /// What SQS said.
        message: String,
    },
}

/// Processes S3 notifications from one queue.
pub struct Worker<S: AuditSink> {
    /// Reads the staged objects.
    pub s3: aws_sdk_s3::Client,
    /// Reads and deletes work messages.
    pub sqs: aws_sdk_sqs::Client,
    /// The work queue.
    pub queue_url: String,
    /// Where failures go.
    pub failures: SqsFailures,
    /// Where events go.
    pub sink: Arc<S>,
    /// The process's rate limit.
    pub limiter: Arc<RateLimiter>,
    /// How to load.
    pub config: LoadConfig,
    /// Seconds a received message stays invisible to other workers.
    pub visibility_timeout: i32,
}

impl<S: AuditSink> Worker<S> {
    fn sqs_error(&self, e: impl std::fmt::Display) -> WorkerError {
        WorkerError::Sqs {
            queue_url: self.queue_url.clone(),
            message: e.to_string(),
        }
    }

    /// Receives and processes messages; with `until_empty`, stops when a receive finds none.
    pub async fn run(&self, until_empty: bool) -> Result<WorkerSummary, WorkerError> {
        let mut total = WorkerSummary::default();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(if until_empty { 1 } else { 20 })
                .visibility_timeout(self.visibility_timeout)
                .send()
                .await
                .map_err(|e| self.sqs_error(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                if until_empty {
                    return Ok(total);
                }
                continue;
            }
            for m in messages {
                total.messages += 1;
                let body = m.body().unwrap_or_default();
                let done = self
                    .handle(m.message_id().unwrap_or("?"), body, &mut total)
                    .await;
                if done {
                    if let Some(receipt) = m.receipt_handle() {
                        self.sqs
                            .delete_message()
                            .queue_url(&self.queue_url)
                            .receipt_handle(receipt)
                            .send()
                            .await
                            .map_err(|e| {
                                self.sqs_error(aws_sdk_sqs::error::DisplayErrorContext(e))
                            })?;
                        total.deleted += 1;
                    }
                } else {
                    total.left += 1;
                }
            }
        }
    }

    /// Processes one message; true when it may be deleted.
    async fn handle(&self, message_id: &str, body: &str, total: &mut WorkerSummary) -> bool {
        let objects = match parse(body) {
            Ok(Notification::TestEvent) => return true,
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
                return self.failures.send(m).await.is_ok();
            }
        };
        for object in objects {
            let reader = match crate::s3::open(&self.s3, &object.bucket, &object.key).await {
                Ok(r) => r,
                Err(_) => return false,
            };
            let source = Source {
                bucket: Some(object.bucket.clone()),
                key: object.key.clone(),
            };
            match load(
                &source,
                0,
                reader,
                Arc::clone(&self.sink),
                Arc::clone(&self.limiter),
                &self.failures,
                &self.config,
            )
            .await
            {
                Ok(summary) => {
                    total.objects += 1;
                    total.add(&summary);
                }
                Err(_) => return false,
            }
        }
        true
    }
}
