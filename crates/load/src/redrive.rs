//! Redrive: sending the failure queue's events again, once whatever failed them is fixed.
//!
//! Each failure message carries its raw record, or points to it (bucket, key, offset, length)
//! when it was too large for SQS; pointers are re-read from S3. The record is mapped again (so it
//! gets the same UID as before) and sent. A message is deleted only when its event was accepted;
//! one that fails again stays in the queue and comes back after its visibility timeout. With
//! `dry_run`, nothing is sent or deleted and every message received is made visible again.

use std::collections::BTreeMap;
use std::sync::Arc;

use aztrail_transform::{Framer, Mapper, Source};
use tokio::io::AsyncReadExt;

use crate::batch::Batches;
use crate::failure::FailureMessage;
use crate::loader::LoadConfig;
use crate::rate::RateLimiter;
use crate::retry::Backoff;
use crate::sender::{send_batch, Sent};
use crate::sink::{EventSink, OutEvent};

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedriveSummary {
    /// Messages received from the failure queue.
    pub messages: u64,
    /// Events accepted and their messages deleted (with `dry_run`: events that would be sent).
    pub redriven: u64,
    /// Records re-read from S3 (their messages were pointers).
    pub reread: u64,
    /// Messages left in the queue, by the error code they failed with this time.
    pub still_failing: BTreeMap<String, u64>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Why a redrive stopped.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// ReceiveMessage, DeleteMessage or ChangeMessageVisibility failed.
    #[error("SQS {queue_url}")]
    Sqs {
        /// The failure queue.
        queue_url: String,
        /// What SQS said.
        #[source]
        source: aztrail_state::BoxError,
    },
}

/// Why a failure message yields no event to send this time: its code (counted in
/// `still_failing`) and what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Unsent {
    /// A short, stable code (`NotOneRecord`, `SourceUnreadable`, a mapping rejection's code, ...).
    pub code: String,
    /// What happened.
    pub message: String,
}

impl Unsent {
    fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Re-sends the events of a failure queue.
pub struct Redriver<S: EventSink> {
    /// Reads pointed-to records.
    pub s3: aws_sdk_s3::Client,
    /// Reads and deletes failure messages.
    pub sqs: aws_sdk_sqs::Client,
    /// The failure queue.
    pub queue_url: String,
    /// Where events go.
    pub sink: Arc<S>,
    /// The process's rate limit.
    pub limiter: Arc<RateLimiter>,
    /// The account and retry policy.
    pub config: LoadConfig,
    /// Seconds a received message stays invisible (longer than the whole redrive, so each
    /// message is seen once per run).
    pub visibility_timeout: i32,
    /// Report only.
    pub dry_run: bool,
}

impl<S: EventSink> Redriver<S> {
    fn sqs_error(&self, e: impl Into<aztrail_state::BoxError>) -> RedriveError {
        RedriveError::Sqs {
            queue_url: self.queue_url.clone(),
            source: e.into(),
        }
    }

    /// Redrives until a receive finds the queue empty.
    pub async fn run(&self) -> Result<RedriveSummary, RedriveError> {
        let mut summary = RedriveSummary {
            dry_run: self.dry_run,
            ..RedriveSummary::default()
        };
        let mut seen_receipts = Vec::new();
        loop {
            let messages = self.receive().await?;
            if messages.is_empty() {
                break;
            }
            let batch = self.events(&messages, &mut summary).await;
            if self.dry_run {
                seen_receipts.extend(
                    messages
                        .iter()
                        .filter_map(|m| m.receipt_handle().map(str::to_string)),
                );
                summary.redriven += batch.len() as u64;
                continue;
            }
            if !batch.is_empty() {
                self.send(batch, &mut summary).await?;
            }
        }
        // A dry run hands every message back at once.
        for receipt in seen_receipts {
            self.sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| self.sqs_error(e))?;
        }
        Ok(summary)
    }

    /// The next messages of the failure queue (none once it is empty).
    async fn receive(&self) -> Result<Vec<aws_sdk_sqs::types::Message>, RedriveError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(self.visibility_timeout)
            .send()
            .await
            .map_err(|e| self.sqs_error(e))?;
        Ok(received.messages.unwrap_or_default())
    }

    /// The events of `messages`, each with its message's receipt; those that have none are
    /// counted in `still_failing` by why.
    async fn events(
        &self,
        messages: &[aws_sdk_sqs::types::Message],
        summary: &mut RedriveSummary,
    ) -> Vec<(String, OutEvent)> {
        let mut batch = Vec::new();
        for m in messages {
            summary.messages += 1;
            let receipt = m.receipt_handle().unwrap_or_default().to_string();
            let event = match serde_json::from_str::<FailureMessage>(m.body().unwrap_or("")) {
                Ok(f) => {
                    summary.reread += u64::from(f.is_pointer());
                    self.event_of(&f).await
                }
                Err(e) => Err(Unsent::new("NotAFailureMessage", e.to_string())),
            };
            match event {
                Ok(ev) => batch.push((receipt, ev)),
                Err(unsent) => *summary.still_failing.entry(unsent.code).or_default() += 1,
            }
        }
        batch
    }

    /// Sends `batch` and deletes the message of every event accepted (retried like the
    /// worker's deletes); the others stay, counted by their error code.
    async fn send(
        &self,
        batch: Vec<(String, OutEvent)>,
        summary: &mut RedriveSummary,
    ) -> Result<(), RedriveError> {
        let mut backoff = Backoff::new(
            self.config.policy.backoff_base,
            self.config.policy.backoff_cap,
            summary.messages,
        );
        // Events a call cannot hold together (CloudWatch Logs: more than 24 hours apart) go in
        // calls of their own.
        let mut split = Batches::new(self.sink.wire());
        let mut calls: Vec<Vec<(String, OutEvent)>> = batch
            .into_iter()
            .filter_map(|(receipt, ev)| split.push(receipt, ev))
            .map(|b| b.items)
            .collect();
        calls.extend(std::iter::from_fn(|| split.take()).map(|b| b.items));
        let mut sent = Sent {
            accepted: Vec::new(),
            failed: Vec::new(),
            calls: 0,
            retried: 0,
            throttled: 0,
        };
        for call in calls {
            let s = send_batch(
                self.sink.as_ref(),
                &self.limiter,
                &mut backoff,
                &self.config.policy,
                call,
            )
            .await;
            sent.accepted.extend(s.accepted);
            sent.failed.extend(s.failed);
        }
        for receipt in sent.accepted {
            crate::sqs::delete_message(&self.sqs, &self.queue_url, &receipt)
                .await
                .map_err(|e| self.sqs_error(e))?;
            summary.redriven += 1;
        }
        for f in sent.failed {
            *summary.still_failing.entry(f.code).or_default() += 1;
        }
        Ok(())
    }

    /// The event of one failure message, or why there is none.
    async fn event_of(&self, f: &FailureMessage) -> Result<OutEvent, Unsent> {
        let (offset, bytes, oversize) = record_of(&self.s3, f, self.config.max_record_len).await?;
        let mut mapper =
            Mapper::new(&self.config.account).with_checksum(self.config.event_data_checksum);
        mapper.set_source(&Source {
            bucket: f.source.bucket.clone(),
            key: f.source.key.clone(),
        });
        let rec = aztrail_transform::Record {
            offset,
            bytes: &bytes,
            oversize,
            stray: false,
            sha256: None,
        };
        let ev = mapper
            .map(rec)
            .map_err(|r| Unsent::new(r.code(), r.to_string()))?;
        Ok(self.sink.wire().encode(&ev))
    }
}

/// The one record of a failure message, framed as the loader framed it: its offset, its bytes,
/// and its length when it is over `max_record_len`. A pointer is re-read from the staging bucket.
pub async fn record_of(
    s3: &aws_sdk_s3::Client,
    f: &FailureMessage,
    max_record_len: usize,
) -> Result<(u64, Vec<u8>, Option<u64>), Unsent> {
    let raw = match f.raw_record() {
        Some(raw) => raw,
        None => read_pointer(s3, f, max_record_len).await?,
    };
    let mut framed = Vec::new();
    let mut framer = Framer::with_start_offset(f.source.offset).with_max_record_len(max_record_len);
    framer.feed(&raw, |r| {
        framed.push((r.offset, r.bytes.to_vec(), r.oversize))
    });
    framer.finish(|r| framed.push((r.offset, r.bytes.to_vec(), r.oversize)));
    <[_; 1]>::try_from(framed)
        .map(|[one]| one)
        .map_err(|v: Vec<_>| {
            Unsent::new(
                "NotOneRecord",
                format!("the stored record frames as {} records", v.len()),
            )
        })
}

/// Re-reads a record that was too large for its failure message from the staging bucket.
async fn read_pointer(
    s3: &aws_sdk_s3::Client,
    f: &FailureMessage,
    max_record_len: usize,
) -> Result<Vec<u8>, Unsent> {
    let unreadable = |m: String| Unsent::new("SourceUnreadable", m);
    if f.source.length > max_record_len as u64 {
        // Never read a record the loader would not hold.
        return Err(Unsent::new(
            "RecordTooLarge",
            format!(
                "the record is {} bytes long, over the maximum record length of {}",
                f.source.length, max_record_len
            ),
        ));
    }
    let bucket = f
        .source
        .bucket
        .as_deref()
        .ok_or_else(|| unreadable(format!("{} is not in S3", f.source.key)))?;
    let mut reader = crate::s3::open(s3, bucket, &f.source.key)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    // Offsets count decompressed bytes, so the object is read from its start.
    let mut skip = (&mut reader).take(f.source.offset);
    tokio::io::copy(&mut skip, &mut tokio::io::sink())
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    let mut raw = Vec::new();
    reader
        .take(f.source.length)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    if raw.len() as u64 != f.source.length {
        return Err(unreadable(format!(
            "s3://{bucket}/{}: {} bytes at {}, found {}",
            f.source.key,
            f.source.length,
            f.source.offset,
            raw.len()
        )));
    }
    Ok(raw)
}
