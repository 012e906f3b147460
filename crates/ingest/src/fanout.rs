//! Many ingest workers for one container: a scheduler pass finds the roots and sends them, split
//! into shards, as messages to an "ingest work" SQS queue; each worker takes a message and runs a
//! pass over those roots only ([`crate::run::ingest_work`]).
//!
//! A root always falls in the same shard (a hash of its name, modulo the number of shards), so
//! each shard's [`Mark`] stays meaningful from one schedule to the next. Workers never stage the
//! same byte: the day shards' claims decide, as between concurrent runs. A worker killed
//! mid-shard leaves its message undeleted and its claims behind; once the queue's visibility
//! timeout hands the message to another worker and the claims' lease has run out, that worker
//! copies the claimed ranges as claimed (same keys) and goes on. A message that keeps failing
//! goes to the queue's dead-letter queue (Terraform alarms on it).
//!
//! [`Mark`]: crate::checkpoint::Mark

use serde::{Deserialize, Serialize};

/// The default number of shards a container's roots are split into.
pub const DEFAULT_WORK_SHARDS: usize = 16;

/// The most work shards a container's roots are split into.
pub const MAX_WORK_SHARDS: usize = 4096;

/// Parses a number of work shards, 1 to [`MAX_WORK_SHARDS`].
pub fn parse_work_shards(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_WORK_SHARDS).contains(n))
        .ok_or_else(|| format!("{s:?}: the number of work shards is 1 to {MAX_WORK_SHARDS}"))
}

/// The most a message may carry: SQS takes 256 KiB; the rest is room for the envelope.
const MAX_MESSAGE_BYTES: usize = 200 * 1024;

/// One message: some roots of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkShard {
    /// The container.
    pub container: String,
    /// The shard's name, `{i}-of-{n}`: its mark's name.
    pub scope: String,
    /// Its roots.
    pub roots: Vec<String>,
}

/// Splits `roots` of `container` into at least `shards` shards (more if one would not fit in a
/// message), each root by a hash of its name; empty shards are left out.
pub fn partition(container: &str, roots: &[String], shards: usize) -> Vec<WorkShard> {
    let bytes: usize = roots.iter().map(|r| r.len() + 3).sum();
    let mut n = shards.max(1);
    loop {
        let mut parts: Vec<Vec<String>> = vec![Vec::new(); n];
        for r in roots {
            parts[bucket(r, n)].push(r.clone());
        }
        let largest = parts
            .iter()
            .map(|p| p.iter().map(|r| r.len() + 3).sum::<usize>())
            .max()
            .unwrap_or(0);
        if largest <= MAX_MESSAGE_BYTES || n >= roots.len().max(1) {
            return parts
                .into_iter()
                .enumerate()
                .filter(|(_, p)| !p.is_empty())
                .map(|(i, roots)| WorkShard {
                    container: container.to_string(),
                    scope: format!("{i}-of-{n}"),
                    roots,
                })
                .collect();
        }
        n = n.max(bytes / MAX_MESSAGE_BYTES + 1).saturating_mul(2);
    }
}

/// The shard of `root` among `n` (FNV-1a: stable across versions and platforms).
fn bucket(root: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in root.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % n as u64) as usize
}

/// Why the work queue could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkQueueError {
    /// SQS failed.
    #[error("{what} on the ingest work queue {queue}")]
    Sqs {
        /// What was being done.
        what: &'static str,
        /// The queue URL.
        queue: String,
        /// Why.
        #[source]
        source: aztrail_state::BoxError,
    },
    /// Some messages of a batch were not accepted.
    #[error("the ingest work queue {queue} refused {refused} message(s): {first}")]
    Refused {
        /// The queue URL.
        queue: String,
        /// How many.
        refused: usize,
        /// The first refusal's code and message.
        first: String,
    },
    /// A message that is not a work shard (left for the dead-letter queue).
    #[error("a message on the ingest work queue is not a work shard")]
    NotWork(#[source] serde_json::Error),
}

/// A message taken from the queue.
#[derive(Debug)]
pub struct Taken {
    /// Its receipt handle.
    pub receipt: String,
    /// Its message id.
    pub id: String,
    /// What it asks for, or why it cannot be read.
    pub work: Result<WorkShard, WorkQueueError>,
}

/// The "ingest work" queue.
#[derive(Debug, Clone)]
pub struct WorkQueue {
    /// The client.
    pub sqs: aws_sdk_sqs::Client,
    /// The queue URL.
    pub url: String,
}

impl WorkQueue {
    fn err(&self, what: &'static str, e: impl Into<aztrail_state::BoxError>) -> WorkQueueError {
        WorkQueueError::Sqs {
            what,
            queue: self.url.clone(),
            source: e.into(),
        }
    }

    /// Sends `shards`, ten to a call, the calls at once; returns how many were sent.
    pub async fn send(&self, shards: &[WorkShard]) -> Result<u64, WorkQueueError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let calls = shards.chunks(10).map(|chunk| async move {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let body = serde_json::to_string(s).map_err(|e| self.err("encode", e))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| self.err("build a message", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.err("SendMessageBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(WorkQueueError::Refused {
                    queue: self.url.clone(),
                    refused: out.failed().len(),
                    first: format!("{}: {}", f.code(), f.message().unwrap_or_default()),
                });
            }
            Ok(chunk.len() as u64)
        });
        let sent = futures::future::try_join_all(calls).await?;
        Ok(sent.into_iter().sum())
    }

    /// Waits up to `wait_seconds` for one message and hides it for `visibility_seconds`.
    pub async fn take(
        &self,
        wait_seconds: i32,
        visibility_seconds: i32,
    ) -> Result<Option<Taken>, WorkQueueError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(1)
            .wait_time_seconds(wait_seconds)
            .visibility_timeout(visibility_seconds)
            .send()
            .await
            .map_err(|e| self.err("ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|m| Taken {
                receipt: m.receipt_handle.unwrap_or_default(),
                id: m.message_id.unwrap_or_default(),
                work: serde_json::from_str(m.body.as_deref().unwrap_or_default())
                    .map_err(WorkQueueError::NotWork),
            }))
    }

    /// Keeps a message hidden for `seconds` more (a pass still working on it).
    pub async fn extend(&self, receipt: &str, seconds: i32) -> Result<(), WorkQueueError> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| self.err("ChangeMessageVisibility", e))?;
        Ok(())
    }

    /// Deletes a message whose work is done (retried: a message left behind is done again).
    pub async fn done(&self, receipt: &str) -> Result<(), WorkQueueError> {
        let mut last = None;
        for attempt in 0..3u32 {
            match self
                .sqs
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(receipt)
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
        }
        Err(self.err(
            "DeleteMessage",
            last.map_or_else(|| "no attempt".into(), aztrail_state::BoxError::from),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("resourceId=/SUBSCRIPTIONS/{i:08X}-0000-4000-8000-000000000000/"))
            .collect()
    }

    #[test]
    fn every_root_is_in_exactly_one_shard_and_stays_there() {
        let all = roots(500);
        let shards = partition("c", &all, 16);
        assert_eq!(shards.len(), 16);
        let mut seen: Vec<&String> = shards.iter().flat_map(|s| &s.roots).collect();
        seen.sort();
        assert_eq!(seen, all.iter().collect::<Vec<_>>());
        // A new subscription leaves the others where they were.
        let mut more = all.clone();
        more.push("resourceId=/SUBSCRIPTIONS/NEW/".into());
        let again = partition("c", &more, 16);
        for s in &shards {
            let same = again.iter().find(|a| a.scope == s.scope).unwrap();
            assert!(s.roots.iter().all(|r| same.roots.contains(r)));
        }
    }

    #[test]
    fn a_shard_fits_in_a_message() {
        let all = roots(20_000);
        let shards = partition("c", &all, 1);
        assert!(shards.len() > 1);
        for s in &shards {
            assert!(serde_json::to_vec(s).unwrap().len() < 256 * 1024);
        }
        assert_eq!(shards.iter().map(|s| s.roots.len()).sum::<usize>(), 20_000);
        assert!(partition("c", &[], 16).is_empty());
    }
}
