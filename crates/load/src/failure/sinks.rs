//! Where failure messages go: one trait, [`FailureSink`], and every place a message can be kept:
//! the failure queue ([`SqsFailures`]), a JSON-lines file ([`FileFailures`], the embedded
//! default's), standard error ([`StderrFailures`], `aztrail load` with neither), memory
//! ([`MemoryFailures`], tests), and [`AnyFailures`], the one a command chooses at run time.

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use super::FailureMessage;
use crate::local::LocalError;

/// Where failure messages go (the failure queue, or a list in tests).
pub trait FailureSink: Send + Sync {
    /// Stores one message; an error stops the load (the object is then not acknowledged).
    fn send(
        &self,
        message: FailureMessage,
    ) -> impl Future<Output = Result<(), FailureSinkError>> + Send;
}

/// A failure message could not be stored.
#[derive(Debug, thiserror::Error)]
#[error("storing a failure message")]
pub struct FailureSinkError(#[source] pub aztrail_state::BoxError);

impl FailureSinkError {
    /// Wraps what failed.
    pub fn new(source: impl Into<aztrail_state::BoxError>) -> Self {
        Self(source.into())
    }
}

/// Failure messages kept in memory.
#[derive(Debug, Default)]
pub struct MemoryFailures(pub std::sync::Mutex<Vec<FailureMessage>>);

impl FailureSink for MemoryFailures {
    async fn send(&self, message: FailureMessage) -> Result<(), FailureSinkError> {
        self.0
            .lock()
            .map_err(|e| FailureSinkError::new(e.to_string()))?
            .push(message);
        Ok(())
    }
}

/// Failure messages appended to a file as JSON lines.
#[derive(Debug)]
pub struct FileFailures(Mutex<std::fs::File>);

impl FileFailures {
    /// Appends to `path`, creating it.
    pub fn create(path: &Path) -> Result<Self, LocalError> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(|f| Self(Mutex::new(f)))
            .map_err(|source| LocalError {
                path: path.to_path_buf(),
                source,
            })
    }
}

impl FailureSink for FileFailures {
    async fn send(&self, message: FailureMessage) -> Result<(), FailureSinkError> {
        let mut line = message.to_json();
        line.push('\n');
        let mut f = self
            .0
            .lock()
            .map_err(|e| FailureSinkError::new(e.to_string()))?;
        f.write_all(line.as_bytes()).map_err(FailureSinkError::new)
    }
}

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
    async fn send(&self, message: FailureMessage) -> Result<(), FailureSinkError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.to_json())
            .send()
            .await
            .map(|_| ())
            .map_err(FailureSinkError::new)
    }
}

/// Failure messages as JSON lines on standard error (when no failure queue or file is given).
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrFailures;

impl FailureSink for StderrFailures {
    async fn send(&self, message: FailureMessage) -> Result<(), FailureSinkError> {
        eprintln!("{}", message.to_json());
        Ok(())
    }
}

/// The failure queue, a file or standard error, as a command's settings choose.
#[derive(Debug)]
pub enum AnyFailures {
    /// The failure queue.
    Queue(SqsFailures),
    /// A JSON-lines file.
    File(FileFailures),
    /// Standard error.
    Stderr(StderrFailures),
}

impl FailureSink for AnyFailures {
    async fn send(&self, message: FailureMessage) -> Result<(), FailureSinkError> {
        match self {
            AnyFailures::Queue(q) => q.send(message).await,
            AnyFailures::File(f) => f.send(message).await,
            AnyFailures::Stderr(s) => s.send(message).await,
        }
    }
}
