//! Messages for the failure queue: one per event that was not accepted, so nothing is dropped.
//!
//! Each says why (`errorCode`, `errorMessage`), where the raw record is (`source`: bucket, key,
//! byte offset, length), how many attempts were made, and carries the raw record itself when the
//! message fits SQS's 256 KiB limit (as text, or base64 when it is not UTF-8). A larger record is
//! left out and the message is a pointer: redrive re-reads the bytes from the staging bucket.
//!
//! Where the messages go is in [`sinks`]: the failure queue, a file, standard error, memory.

pub mod sinks;

pub use sinks::{
    AnyFailures, FailureSink, FailureSinkError, FileFailures, MemoryFailures, SqsFailures,
    StderrFailures,
};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The largest SQS message body.
pub const SQS_MAX_MESSAGE: usize = 256 * 1024;

/// Where a raw record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// The bucket (none for a local file).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bucket: Option<String>,
    /// The object key or file path.
    pub key: String,
    /// Byte offset of the record in the object.
    pub offset: u64,
    /// Length of the record in bytes.
    pub length: u64,
}

/// One failure-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureMessage {
    /// The API's per-event error code, or the transform's rejection code.
    pub error_code: String,
    /// What was wrong.
    pub error_message: String,
    /// Where the raw record is.
    pub source: Location,
    /// PutAuditEvents attempts made for it (0 for a record rejected before sending).
    pub attempts: u32,
    /// The raw record, when it is UTF-8 and the message fits.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub record: Option<String>,
    /// The raw record in base64, when it is not UTF-8 and the message fits.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub record_base64: Option<String>,
}

impl FailureMessage {
    /// A message carrying `raw` when it fits, a pointer to it otherwise.
    pub fn new(
        error_code: &str,
        error_message: &str,
        source: Location,
        attempts: u32,
        raw: &[u8],
    ) -> Self {
        let mut m = Self {
            error_code: error_code.to_string(),
            error_message: error_message.chars().take(4096).collect(),
            source,
            attempts,
            record: None,
            record_base64: None,
        };
        match std::str::from_utf8(raw) {
            // No bytes in hand (a record passed over for its size): the source is the pointer.
            _ if raw.is_empty() && m.source.length > 0 => {}
            Ok(text) => m.record = Some(text.to_string()),
            Err(_) => m.record_base64 = Some(base64::engine::general_purpose::STANDARD.encode(raw)),
        }
        if m.to_json().len() > SQS_MAX_MESSAGE {
            m.record = None;
            m.record_base64 = None;
        }
        m
    }

    /// The failure of bytes that could not be read as records: from the end of the last complete
    /// record (`at.offset`) to where reading failed (`at.offset + at.length`); a pointer, since
    /// the bytes are not in hand.
    pub fn unreadable(at: Location, error: &str) -> Self {
        Self {
            error_code: "UnreadableObject".into(),
            error_message: error.chars().take(4096).collect(),
            source: at,
            attempts: 0,
            record: None,
            record_base64: None,
        }
    }

    /// Whether the raw record must be re-read from `source`.
    pub fn is_pointer(&self) -> bool {
        self.record.is_none() && self.record_base64.is_none()
    }

    /// The raw record, when the message carries it.
    pub fn raw_record(&self) -> Option<Vec<u8>> {
        match (&self.record, &self.record_base64) {
            (Some(r), _) => Some(r.as_bytes().to_vec()),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).ok(),
            (None, None) => None,
        }
    }

    /// The message body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64, length: u64) -> Location {
        Location {
            bucket: Some("staging".into()),
            key: "k".into(),
            offset,
            length,
        }
    }

    #[test]
    fn small_records_travel_in_the_message() {
        let m = FailureMessage::new(
            "InvalidData",
            "Field eventTime ...",
            at(10, 7),
            1,
            b"{\"a\":1}",
        );
        let back: FailureMessage = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.raw_record().unwrap(), b"{\"a\":1}");
        assert!(m.to_json().contains("\"errorCode\":\"InvalidData\""));
        assert!(m.to_json().contains(
            "\"source\":{\"bucket\":\"staging\",\"key\":\"k\",\"offset\":10,\"length\":7}"
        ));
    }

    #[test]
    fn bytes_that_are_not_utf8_go_as_base64() {
        let raw = b"{\"a\":\"\xff\xfe\"}";
        let m = FailureMessage::new(
            "InvalidJson",
            "not valid UTF-8",
            at(0, raw.len() as u64),
            0,
            raw,
        );
        assert!(m.record.is_none());
        assert_eq!(m.raw_record().unwrap(), raw);
    }

    #[test]
    fn records_too_large_for_sqs_become_pointers() {
        let raw = vec![b'x'; 300 * 1024];
        let m = FailureMessage::new(
            "InvalidJson",
            "5 MB single line",
            at(123, raw.len() as u64),
            0,
            &raw,
        );
        assert!(m.is_pointer());
        assert!(m.to_json().len() < SQS_MAX_MESSAGE);
        assert_eq!(m.source.offset, 123);
        assert_eq!(m.source.length, 300 * 1024);
        // Escaping can push a record just under the limit over it: it becomes a pointer too.
        let quotes = vec![b'"'; 200 * 1024];
        assert!(FailureMessage::new("X", "y", at(0, 1), 0, &quotes).is_pointer());
    }
}
