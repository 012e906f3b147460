//! The load function's handler: an SQS batch of S3 notifications in, partial batch failures out.
//!
//! With `ReportBatchItemFailures` on the event source mapping, Lambda deletes the messages the
//! handler does not list and returns those it lists. A message is listed when any of its objects
//! could not be finished: unreadable, a failure queue that refused, or the function's time
//! running out. Before the deadline (the invocation's remaining time less a margin) the loader
//! stops starting batches, waits for those in flight and saves its checkpoint, so the returned
//! message resumes where this invocation stopped. Messages not yet started at the deadline are
//! listed untouched. The runtime loop around this handler lives in the binary.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tokio::time::Instant;

use crate::checkpoint::CheckpointStore;
use crate::sink::EventSink;
use crate::sqs::{Outcome, Worker, WorkerSummary};
use futures::stream::{FuturesUnordered, StreamExt};

/// Processes one invocation's batch before `deadline`, keeping `margin` in hand to save
/// checkpoints and answer. Returns the response for Lambda and what was done. The deadline is
/// this invocation's own: it goes into a config for this batch, and the worker (with its pool
/// of calls, made once with [`Worker::ensure_pool`]) is shared by invocations untouched.
pub async fn handle_batch<S: EventSink, C: CheckpointStore>(
    worker: &Worker<S, C>,
    event: SqsEvent,
    deadline: Instant,
    margin: Duration,
) -> (SqsBatchResponse, WorkerSummary) {
    let stop_at = deadline.checked_sub(margin).unwrap_or_else(Instant::now);
    let mut config = worker.config.clone();
    config.stop_at = Some(stop_at);
    // Retries of batches already started may use half the margin; what is still refused then
    // goes to the failure queue (redrivable), so the answer is never late.
    config.policy.deadline = deadline.checked_sub(margin / 2);
    let config = &config;
    let mut response = SqsBatchResponse::default();
    let mut summary = WorkerSummary::default();
    // The batch's messages load side by side, their small objects sharing calls; each in a
    // span of its own (the worker's `message` span).
    let mut running = FuturesUnordered::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if Instant::now() >= stop_at {
            summary.messages += 1;
            summary.left += 1;
            response.add_failure(id);
            continue;
        }
        running.push(async move {
            let mut s = WorkerSummary::default();
            let outcome = worker
                .process_with(
                    config,
                    &id,
                    message.body.as_deref().unwrap_or_default(),
                    message.receipt_handle.as_deref(),
                    &mut s,
                )
                .await;
            (id, outcome, s)
        });
    }
    while let Some((id, outcome, s)) = running.next().await {
        summary.add(&s);
        if let Outcome::Retry(_) = outcome {
            response.add_failure(id);
        }
    }
    (response, summary)
}
