//! Mapping: one Azure record (Activity Log or Entra ID) into one CloudTrail Lake integration event.
//!
//! The rules are DESIGN.md's "Mapping rules". The [`Mapper`] keeps every buffer it needs between
//! records: it parses a copy of the record with simd-json into a tape, writes `eventData` straight
//! from the tape's slices and the raw bytes into one buffer, hashing the raw bytes for the `UID` a
//! block at a time between those steps ([`crate::uid`]), hashes `eventData` for the checksum when
//! asked, and hands out borrowed views of the result. A record that cannot become an event yields
//! a [`Rejection`] naming the field and the problem.
//!
//! Here: the types and the [`Mapper`]. Beside it: `record` (the context, the raw bytes beside
//! the tape, the fields read by name), `event` (the rules, field by field), `identity` (who acted,
//! from where), `failure` (error code and message), `bodies` (JSON inside strings), `additional`
//! (everything else, losslessly), and `tests`.

use std::borrow::Cow;
use std::sync::OnceLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use simd_json::{Node, StaticNode};

use crate::fields::{as_int, as_str, get, kind, members, non_empty, trim, FieldSet, Val};
use crate::framing::Record;
use crate::ip::source_ip_text;
use crate::json::{
    escaped_len, unescape_into, write_int, write_key, write_str, write_value, Doc, JsonSink,
};
use crate::limits::{
    cut, MAX_ADDITIONAL_BYTES, MAX_ERROR_LEN, MAX_IDENTITY_BYTES, MAX_IDENTITY_TYPE_LEN,
    MAX_NAME_LEN, MAX_PARAMETERS_BYTES, MAX_VALUE_DEPTH,
};
use crate::time::{blob_path_hour, from_epoch_number_ms, parse_time_ms, UtcSeconds};
use crate::uid::UidPump;

/// Why a record could not become an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not one well-formed JSON value (truncated, invalid UTF-8, ...).
    #[error("not valid JSON: {0}")]
    InvalidJson(String),
    /// The record is valid JSON but not an object.
    #[error("the record is {0}, not a JSON object")]
    NotAnObject(&'static str),
    /// Neither `time` nor `createdDateTime` holds a time, and the blob path names no hour.
    #[error("no event time: {0}")]
    NoEventTime(String),
    /// Nothing names the operation: no `operationName`, `activityDisplayName` or `category`.
    #[error(
        "no operation: the record has no operationName, properties.activityDisplayName or category"
    )]
    NoOperation,
    /// A row of Log Analytics' AzureActivity table, whose field names differ from the export's.
    #[error(
        "field {0} marks a Log Analytics AzureActivity table row, not a record exported to storage"
    )]
    LogAnalyticsRow(&'static str),
    /// The record is longer than the maximum record length: it was passed over unread.
    #[error(
        "the record is {0} bytes long, over the maximum record length (see --max-record-bytes)"
    )]
    TooLarge(u64),
    /// A member of an Activity Log REST API page other than `value` (an array) and `nextLink`:
    /// not a record, reported by where it stands so that nothing in a page goes unseen.
    #[error(
        "{0} bytes of an Activity Log API page that are neither a record of its value array nor \
         its nextLink (read them at the offset given)"
    )]
    PageMember(u64),
}

impl Rejection {
    /// A short, stable code for the failure queue and summaries.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidJson(_) => "InvalidJson",
            Rejection::NotAnObject(_) => "NotAnObject",
            Rejection::NoEventTime(_) => "NoEventTime",
            Rejection::NoOperation => "NoOperation",
            Rejection::LogAnalyticsRow(_) => "UnsupportedFormat",
            Rejection::TooLarge(_) => "RecordTooLarge",
            Rejection::PageMember(_) => "UnexpectedPageMember",
        }
    }
}

/// Where the records come from: written into every event (with the record's byte offset) so an
/// event can be traced back to its raw record in the staging bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// The S3 bucket, when the records come from one.
    pub bucket: Option<String>,
    /// The object key or file path.
    pub key: String,
}

/// Which JSON parser fills the tape. simd-json is the default; serde_json is kept to measure
/// the choice in the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parser {
    /// simd-json, into a reused tape.
    #[default]
    SimdJson,
    /// serde_json into a `Value`, converted to the same tape.
    SerdeJson,
}

/// One mapped event, borrowed from the [`Mapper`] until its next call.
#[derive(Debug, Clone, Copy)]
pub struct Mapped<'a> {
    /// The PutAuditEvents `id` (also the `UID`): hex SHA-256 of the raw record.
    pub id: &'a str,
    /// The `eventData` JSON document escaped as the contents of a JSON string, as it goes into
    /// the request (and as a CloudWatch Logs message is sent). [`Mapped::event_data`] unescapes it.
    pub event_data_escaped: &'a [u8],
    /// The length of the `eventData` document itself (what CloudWatch Logs counts).
    pub event_data_len: usize,
    /// Base64 SHA-256 of the `eventData` document, when the mapper was asked for it
    /// ([`Mapper::with_checksum`]).
    pub checksum: Option<&'a str>,
    /// The event's `eventTime` (for the loader's lag metric).
    pub event_time: UtcSeconds,
    /// The record's own time in milliseconds since the epoch (`eventTime` keeps whole seconds;
    /// this keeps the milliseconds the record wrote): a CloudWatch Logs event's time stamp.
    pub event_time_ms: i64,
}

impl Mapped<'_> {
    /// The `eventData` JSON document itself (unescaped from [`Mapped::event_data_escaped`], for
    /// tests and tools; the hot path sends the escaped form as it is).
    pub fn event_data(&self) -> String {
        let mut json = Vec::with_capacity(self.event_data_len);
        unescape_into(&mut json, self.event_data_escaped);
        String::from_utf8(json)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends `{"id":…,"eventData":"…"}`, with `,"eventDataChecksum":…` when there is one,
    /// exactly as PutAuditEvents takes it.
    pub fn write_entry(&self, out: &mut Vec<u8>) {
        out.reserve(self.entry_len());
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(b"\",\"eventData\":\"");
        out.extend_from_slice(self.event_data_escaped);
        if let Some(sum) = self.checksum {
            out.extend_from_slice(b"\",\"eventDataChecksum\":\"");
            out.extend_from_slice(sum.as_bytes());
        }
        out.extend_from_slice(b"\"}");
    }

    /// The exact length [`Mapped::write_entry`] appends.
    pub fn entry_len(&self) -> usize {
        // {"id":"  ","eventData":"  ","eventDataChecksum":"  "}
        let checksum = self.checksum.map_or(0, |sum| 23 + sum.len());
        7 + self.id.len() + 15 + self.event_data_escaped.len() + checksum + 2
    }
}

/// Maps records to events, reusing its buffers from one record to the next.
pub struct Mapper {
    account: String,
    parser: Parser,
    /// Whether each event carries `eventDataChecksum` (see [`Mapper::with_checksum`]).
    checksum: bool,
    /// `"source":{"bucket":…,"key":…,"offset":` written once per source.
    source_prefix: Vec<u8>,
    path_hour: Option<UtcSeconds>,
    scratch: Vec<u8>,
    buffers: simd_json::Buffers,
    /// For the rare record nested deeper than `buffers` take.
    deep: Option<DeepParse>,
    tape: Option<simd_json::Tape<'static>>,
    out: Output,
}

/// A parse without a nesting limit, with a copy of the record of its own.
struct DeepParse {
    scratch: Vec<u8>,
    buffers: simd_json::Buffers,
}

/// The mapper's output buffers, apart from the parser's.
#[derive(Default)]
struct Output {
    uid: String,
    doc: Doc,
    checksum: String,
    event_time: UtcSeconds,
    event_millis: u16,
    tmp: Vec<u8>,
    /// Where the UID's digits go in `doc.wire` (written once the hash is done).
    uid_at: usize,
}

/// What stands in `eventData` for the UID's 64 digits until they are known.
const UID_PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Mapper {
    /// A mapper whose events name `recipient_account_id` (the AWS account of the channel).
    pub fn new(recipient_account_id: &str) -> Self {
        let mut m = Self {
            account: recipient_account_id.to_string(),
            parser: Parser::SimdJson,
            checksum: false,
            source_prefix: Vec::new(),
            path_hour: None,
            scratch: Vec::new(),
            // Nesting up to one level beyond what an event keeps as structure; deeper records go
            // to `deep` (see `map`).
            buffers: simd_json::Buffers::with_max_depth(4096, MAX_VALUE_DEPTH + 1),
            deep: None,
            tape: None,
            out: Output::default(),
        };
        m.set_source(&Source::default());
        m
    }

    /// Chooses the parser (for comparison in benchmarks).
    pub fn with_parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// Whether each event carries `eventDataChecksum`, the base64 SHA-256 of its `eventData`
    /// (off by default). PutAuditEvents takes it as an option. It re-hashes bytes that are
    /// already protected: TLS carries the request, and Signature Version 4 signs the SHA-256 of
    /// the whole request body, which the service checks before it reads an event, so a changed
    /// byte of any `eventData` fails the call. Turning it on costs a second SHA-256 pass per
    /// record, over the longer of the two texts: `aztrail transform` takes about 1.6 times as long
    /// with it.
    pub fn with_checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }

    /// The records that follow come from `source`; its path's `y=/m=/d=/h=` hour is the fallback
    /// event time.
    pub fn set_source(&mut self, source: &Source) {
        self.path_hour = blob_path_hour(&source.key);
        let p = &mut self.source_prefix;
        p.clear();
        write_key(p, "source");
        p.push(b'{');
        if let Some(bucket) = &source.bucket {
            write_key(p, "bucket");
            write_str(p, bucket);
            p.push(b',');
        }
        write_key(p, "key");
        write_str(p, &source.key);
        p.extend_from_slice(b",\"offset\":");
    }

    /// Maps one record.
    pub fn map(&mut self, record: Record<'_>) -> Result<Mapped<'_>, Rejection> {
        if let Some(len) = record.oversize {
            return Err(if record.stray {
                Rejection::PageMember(len)
            } else {
                Rejection::TooLarge(len)
            });
        }
        let out = &mut self.out;
        // The UID: hashed by the framer already (many records at once), or here, a block at a
        // time between the mapping's steps (see `crate::uid`).
        let uid = match record.sha256 {
            Some(digest) => UidPump::known(digest),
            None => UidPump::new(record.bytes),
        };
        let mut ctx = Ctx {
            account: &self.account,
            source_prefix: &self.source_prefix,
            path_hour: self.path_hour,
            offset: record.offset,
            raw: None,
            uid: &uid,
        };
        match self.parser {
            Parser::SimdJson => {
                self.scratch.clear();
                self.scratch.extend_from_slice(record.bytes);
                let mut tape = self
                    .tape
                    .take()
                    .unwrap_or_else(simd_json::Tape::null)
                    .reset();
                ctx.raw = Some(Raw {
                    bytes: record.bytes,
                    parsed_at: self.scratch.as_ptr() as usize,
                });
                // Parsed with the parser's nesting limit at the depth beyond which parts of a
                // record are kept as text: a record within it (nearly all) is known not to be
                // deep without walking its tape. One beyond it is parsed again, without limit,
                // from a copy of its own (the failed parse may have unescaped strings in place).
                let result =
                    match simd_json::fill_tape(&mut self.scratch, &mut self.buffers, &mut tape) {
                        Ok(()) => build(&tape.0, &ctx, out, Some(false)),
                        Err(e) if *e.error() == simd_json::ErrorType::DepthLimitExceeded => {
                            let deep = self.deep.get_or_insert_with(|| DeepParse {
                                scratch: Vec::new(),
                                buffers: simd_json::Buffers::with_max_depth(4096, usize::MAX),
                            });
                            deep.scratch.clear();
                            deep.scratch.extend_from_slice(record.bytes);
                            let mut deep_tape = simd_json::Tape::null();
                            match simd_json::fill_tape(
                                &mut deep.scratch,
                                &mut deep.buffers,
                                &mut deep_tape,
                            ) {
                                Ok(()) => build(&deep_tape.0, &ctx, out, Some(true)),
                                Err(e) => Err(Rejection::InvalidJson(e.to_string())),
                            }
                        }
                        Err(e) => Err(Rejection::InvalidJson(e.to_string())),
                    };
                self.tape = Some(tape.reset());
                result?;
            }
            Parser::SerdeJson => {
                let value: serde_json::Value = serde_json::from_slice(record.bytes)
                    .map_err(|e| Rejection::InvalidJson(e.to_string()))?;
                let mut nodes = Vec::new();
                serde_to_tape(&value, &mut nodes);
                build(&nodes, &ctx, out, None)?;
            }
        }
        let out = &mut self.out;
        let digits = crate::uid::hex(&uid.finish());
        out.uid.clear();
        out.uid
            .push_str(std::str::from_utf8(&digits).unwrap_or_default());
        if let Some(at) = out.doc.wire.get_mut(out.uid_at..out.uid_at + digits.len()) {
            at.copy_from_slice(&digits);
        }
        if self.checksum {
            out.tmp.clear();
            unescape_into(&mut out.tmp, &out.doc.wire);
            let digest = Sha256::digest(&out.tmp);
            out.checksum.clear();
            base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out.checksum);
        }
        let out = &self.out;
        Ok(Mapped {
            id: &out.uid,
            event_data_escaped: &out.doc.wire,
            event_data_len: out.doc.json_len(),
            checksum: self.checksum.then_some(out.checksum.as_str()),
            event_time: out.event_time,
            event_time_ms: out.event_time.0 * 1000 + i64::from(out.event_millis),
        })
    }
}

fn serde_to_tape<'v>(v: &'v serde_json::Value, nodes: &mut Vec<Node<'v>>) {
    use serde_json::Value;
    match v {
        Value::Null => nodes.push(Node::Static(StaticNode::Null)),
        Value::Bool(b) => nodes.push(Node::Static(StaticNode::Bool(*b))),
        Value::Number(n) => nodes.push(Node::Static(if let Some(i) = n.as_i64() {
            StaticNode::I64(i)
        } else if let Some(u) = n.as_u64() {
            StaticNode::U64(u)
        } else {
            StaticNode::F64(n.as_f64().unwrap_or(0.0))
        })),
        Value::String(s) => nodes.push(Node::String(s)),
        Value::Array(a) => {
            let at = nodes.len();
            nodes.push(Node::Array {
                len: a.len(),
                count: 0,
            });
            for e in a {
                serde_to_tape(e, nodes);
            }
            let count = nodes.len() - at - 1;
            nodes[at] = Node::Array {
                len: a.len(),
                count,
            };
        }
        Value::Object(o) => {
            let at = nodes.len();
            nodes.push(Node::Object {
                len: o.len(),
                count: 0,
            });
            for (k, e) in o {
                nodes.push(Node::String(k));
                serde_to_tape(e, nodes);
            }
            let count = nodes.len() - at - 1;
            nodes[at] = Node::Object {
                len: o.len(),
                count,
            };
        }
    }
}

mod additional;
mod bodies;
mod event;
mod failure;
mod identity;
mod record;

use additional::*;
use bodies::*;
use event::*;
use failure::*;
use identity::*;
use record::*;

pub use record::is_entra;

#[cfg(test)]
mod tests;
