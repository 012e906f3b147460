//! Redrive into Security Lake: the failure queue's records mapped again (with the OCSF mapping
//! of this version) into one batch of files; a message is deleted only after the files holding
//! its event were put. A record that is still rejected stays in the queue, counted by why.

use aztrail_ocsf::OcsfMapper;
use aztrail_transform::{Record, Source};

use super::{BatchError, BatchSummary, LakeLayout, OcsfBatch, Output};
use crate::failure::FailureMessage;
use crate::redrive::{record_of, RedriveSummary};

/// Redrives a failure queue into Security Lake.
pub struct LakeRedriver<'a> {
    /// Reads pointed-to records.
    pub s3: &'a aws_sdk_s3::Client,
    /// Reads and deletes failure messages.
    pub sqs: &'a aws_sdk_sqs::Client,
    /// The failure queue.
    pub queue_url: &'a str,
    /// The keys' layout.
    pub layout: &'a LakeLayout,
    /// A bucket or a directory.
    pub output: &'a Output,
    /// The longest record read.
    pub max_record_len: usize,
    /// Seconds a received message stays invisible (longer than the whole redrive).
    pub visibility_timeout: i32,
    /// Report only.
    pub dry_run: bool,
}

impl LakeRedriver<'_> {
    /// Receives until the queue is empty, writes one batch of files, then deletes the messages
    /// whose events it holds.
    pub async fn run(
        &self,
        mut batch: OcsfBatch,
    ) -> Result<(RedriveSummary, BatchSummary), BatchError> {
        let sqs_err = |e: aws_sdk_sqs::error::BoxError| BatchError::Put {
            to: format!("the failure queue {}", self.queue_url),
            source: e,
        };
        let mut summary = RedriveSummary {
            dry_run: self.dry_run,
            ..RedriveSummary::default()
        };
        let mut mapper = OcsfMapper::new(Default::default());
        let mut done: Vec<String> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(self.visibility_timeout)
                .send()
                .await
                .map_err(|e| sqs_err(Box::new(e)))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                summary.messages += 1;
                let receipt = m.receipt_handle.clone().unwrap_or_default();
                seen.push(receipt.clone());
                let failure: FailureMessage = match serde_json::from_str(m.body().unwrap_or("")) {
                    Ok(f) => f,
                    Err(_) => {
                        *summary
                            .still_failing
                            .entry("NotAFailureMessage".into())
                            .or_default() += 1;
                        continue;
                    }
                };
                let (offset, bytes, oversize) =
                    match record_of(self.s3, &failure, self.max_record_len).await {
                        Ok(r) => r,
                        Err(why) => {
                            *summary.still_failing.entry(why.code).or_default() += 1;
                            continue;
                        }
                    };
                if failure.raw_record().is_none() {
                    summary.reread += 1;
                }
                mapper.set_source(&Source {
                    bucket: failure.source.bucket.clone(),
                    key: failure.source.key.clone(),
                });
                let rec = Record {
                    offset,
                    bytes: &bytes,
                    oversize,
                    stray: false,
                    sha256: None,
                };
                match mapper.map(rec) {
                    Ok(ev) => {
                        summary.redriven += 1;
                        if !self.dry_run {
                            let label = format!(
                                "{}/{}@{offset}",
                                failure.source.bucket.as_deref().unwrap_or(""),
                                failure.source.key
                            );
                            batch.add_event(&ev, &label)?;
                            done.push(receipt);
                        }
                    }
                    Err(why) => {
                        *summary.still_failing.entry(why.code().into()).or_default() += 1;
                    }
                }
            }
        }
        let mut written = BatchSummary::default();
        if self.dry_run {
            for receipt in seen {
                self.sqs
                    .change_message_visibility()
                    .queue_url(self.queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .map_err(|e| sqs_err(Box::new(e)))?;
            }
            return Ok((summary, written));
        }
        if !batch.is_empty() {
            written = batch.flush(self.layout, self.output).await?;
        }
        for receipt in done {
            self.sqs
                .delete_message()
                .queue_url(self.queue_url)
                .receipt_handle(receipt)
                .send()
                .await
                .map_err(|e| sqs_err(Box::new(e)))?;
        }
        Ok((summary, written))
    }
}
