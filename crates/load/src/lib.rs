//! aztrail-load: turns staged S3 objects into CloudTrail Lake events.
//!
//! Reads S3 notifications from SQS, streams each object through `aztrail-transform`, sends
//! PutAuditEvents with bounded concurrency under one rate limit, retries what can succeed later,
//! and writes everything else to the failure queue.
//!
//! Modules:
//! - [`checkpoint`]: how far each staged object was loaded, so redeliveries skip that part.
//! - [`notification`]: S3 event notifications in SQS messages, test events, poison messages.
//! - [`redrive`]: the failure queue's events sent again, each message deleted on success.
//! - [`rate`]: the token bucket all workers of a process share.
//! - [`retry`]: what is retried, and exponential backoff with full jitter.
//! - [`failure`]: failure-queue messages, with the raw record or a pointer to it.
//! - [`sink`]: PutAuditEvents behind a trait, with the official SDK's implementation.
//! - [`sender`]: one batch sent until every event is accepted or has failed.
//! - [`loader`]: one object's bytes, streamed, mapped, batched and sent with bounded concurrency,
//!   every record accounted for.
//! - [`object`]: the per-object step every consumer loads objects with (checkpoint, open, load,
//!   outcome), S3 and local object readers, and the local consumer loop.
//! - [`lambda`]: the Lambda handler: an SQS batch in, partial batch failures out, deadline-aware.
//! - [`local`]: files and directories on disk as the source, a failure file as the sink.
//! - [`metrics`]: CloudWatch embedded-metric-format lines for the Lambda function.
//! - [`s3`]: staged objects as byte streams (gzip decompressed on the fly).
//! - [`settings`]: the load settings every entry point shares, and the worker and CloudTrail
//!   client built from them.
//! - [`sqs`]: the worker over the notification queue, and the failure queue.

pub mod batch;
pub mod checkpoint;
pub mod cloudtrail;
pub mod cloudwatch;
pub mod destination;
pub mod failure;
pub mod lambda;
pub mod loader;
pub mod local;
pub mod metrics;
pub mod notification;
pub mod object;
pub mod pool;
pub mod rate;
pub mod redrive;
pub mod retry;
pub mod s3;
pub mod securitylake;
pub mod sender;
pub mod settings;
pub mod sink;
pub mod sqs;

pub use aztrail_state::error_chain;

/// What an AWS SDK call's error says, for a person, as one line: the service's error code and
/// message when it answered with one, the HTTP status when its answer carried none (an
/// unmodeled 500), and the whole chain otherwise (no answer, a timeout, a request that could not
/// be built), never the SDK's bare "unhandled error". The text of [`sink::call_error`], which
/// reads every SDK error aztrail meets (the SDKs share one error type).
pub fn sdk_error_text<E>(
    e: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let c = sink::call_error(e);
    match c.error_type {
        Some(code) => format!("{code}: {}", c.message),
        None => c.message,
    }
}
