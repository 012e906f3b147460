//! Mapping: one Azure record (Activity Log or Entra ID) into one CloudTrail Lake integration event.
//!
//! The rules are DESIGN.md's "Mapping rules". The [`Mapper`] keeps every buffer it needs between
//! records, so the hot path allocates nothing per record: it hashes the raw bytes for the `UID`,
//! parses a copy with simd-json into a tape, writes `eventData` straight from the tape's slices into
//! one buffer, hashes that for the checksum and hands out borrowed views of the result. A record
//! that cannot become an event yields a [`Rejection`] naming the field and the problem.

use std::borrow::Cow;
use std::sync::OnceLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use simd_json::{Node, StaticNode};

use crate::fields::{as_int, as_str, get, kind, members, non_empty, FieldSet, Val};
use crate::framing::Record;
use crate::ip::source_ip;
use crate::json::{escaped_len, write_int, write_key, write_str, write_value, Doc, JsonSink};
use crate::limits::{
    cut, MAX_ADDITIONAL_BYTES, MAX_ERROR_LEN, MAX_IDENTITY_BYTES, MAX_IDENTITY_TYPE_LEN,
    MAX_NAME_LEN, MAX_PARAMETERS_BYTES, MAX_VALUE_DEPTH,
};
use crate::time::{blob_path_hour, from_epoch_number_ms, parse_time_ms, UtcSeconds};

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
    /// The `eventData` JSON document.
    pub event_data: &'a str,
    /// `event_data` escaped as the contents of a JSON string, as it goes into the request.
    pub event_data_escaped: &'a [u8],
    /// Base64 SHA-256 of `event_data`.
    pub checksum: &'a str,
    /// The event's `eventTime` (for the loader's lag metric).
    pub event_time: UtcSeconds,
    /// The record's own time in milliseconds since the epoch (`eventTime` keeps whole seconds;
    /// this keeps the milliseconds the record wrote): a CloudWatch Logs event's time stamp.
    pub event_time_ms: i64,
}

impl Mapped<'_> {
    /// Appends `{"id":…,"eventData":"…","eventDataChecksum":…}` exactly as PutAuditEvents takes it.
    pub fn write_entry(&self, out: &mut Vec<u8>) {
        out.reserve(self.entry_len());
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(b"\",\"eventData\":\"");
        out.extend_from_slice(self.event_data_escaped);
        out.extend_from_slice(b"\",\"eventDataChecksum\":\"");
        out.extend_from_slice(self.checksum.as_bytes());
        out.extend_from_slice(b"\"}");
    }

    /// The exact length [`Mapped::write_entry`] appends.
    pub fn entry_len(&self) -> usize {
        // {"id":"  ","eventData":"  ","eventDataChecksum":"  "}
        7 + self.id.len() + 15 + self.event_data_escaped.len() + 23 + self.checksum.len() + 2
    }
}

/// Maps records to events, reusing its buffers from one record to the next.
pub struct Mapper {
    account: String,
    parser: Parser,
    /// `"source":{"bucket":…,"key":…,"offset":` written once per source.
    source_prefix: Vec<u8>,
    path_hour: Option<UtcSeconds>,
    scratch: Vec<u8>,
    buffers: simd_json::Buffers,
    tape: Option<simd_json::Tape<'static>>,
    out: Output,
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
}

impl Mapper {
    /// A mapper whose events name `recipient_account_id` (the AWS account of the channel).
    pub fn new(recipient_account_id: &str) -> Self {
        let mut m = Self {
            account: recipient_account_id.to_string(),
            parser: Parser::SimdJson,
            source_prefix: Vec::new(),
            path_hour: None,
            scratch: Vec::new(),
            buffers: simd_json::Buffers::new(4096),
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
        hex_sha256(record.bytes, &mut out.uid);
        let mut ctx = Ctx {
            account: &self.account,
            source_prefix: &self.source_prefix,
            path_hour: self.path_hour,
            offset: record.offset,
            raw: None,
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
                let result =
                    match simd_json::fill_tape(&mut self.scratch, &mut self.buffers, &mut tape) {
                        Ok(()) => build(&tape.0, &ctx, out),
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
                build(&nodes, &ctx, out)?;
            }
        }
        let out = &self.out;
        Ok(Mapped {
            id: &out.uid,
            // build() writes only whole UTF-8 strings (from the tape or cut on char boundaries).
            event_data: std::str::from_utf8(&out.doc.json).map_err(|e| {
                Rejection::InvalidJson(format!("internal: eventData is not UTF-8: {e}"))
            })?,
            event_data_escaped: &out.doc.wire,
            checksum: &out.checksum,
            event_time: out.event_time,
            event_time_ms: out.event_time.0 * 1000 + i64::from(out.event_millis),
        })
    }
}

fn hex_sha256(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut hex = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        hex[2 * i] = HEX[(b >> 4) as usize];
        hex[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out.clear();
    out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
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

#[derive(Clone, Copy)]
struct Ctx<'a> {
    account: &'a str,
    source_prefix: &'a [u8],
    path_hour: Option<UtcSeconds>,
    offset: u64,
    raw: Option<Raw<'a>>,
}

/// The record's raw bytes and the address of the copy simd-json parsed in place.
///
/// simd-json leaves each string of the tape at its own position in the parsed buffer, so a
/// string's address tells where it stands in the raw record. That finds the raw bytes of
/// `properties`, which can then be copied instead of written back node by node.
#[derive(Clone, Copy)]
struct Raw<'a> {
    bytes: &'a [u8],
    parsed_at: usize,
}

impl<'a> Raw<'a> {
    /// Where the string `s` of the tape starts in the record, if it is one of the record's own.
    fn offset_of(&self, s: &str) -> Option<usize> {
        let at = (s.as_ptr() as usize).checked_sub(self.parsed_at)?;
        (at < self.bytes.len()).then_some(at)
    }

    /// The raw bytes of the object-valued top-level member `name` of the record on `nodes`, when
    /// they can be found exactly and copied as they are (no raw control characters).
    fn member(&self, nodes: &[Node<'_>], name: &str) -> Option<&'a [u8]> {
        let (key, _) = members(nodes).find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        self.member_any(nodes, key)
            .filter(|raw| raw.first() == Some(&b'{') && !crate::json::has_control(raw))
    }

    /// The raw bytes of the top-level member `name` (exactly as named), whatever its value (numbers exactly as
    /// written, which the tape keeps only as 64-bit numbers), when they can be found exactly
    /// and copied as they are.
    fn member_any(&self, nodes: &[Node<'_>], name: &str) -> Option<&'a [u8]> {
        let index = members(nodes).position(|(key, _)| key == name)?;
        self.member_at(nodes, index)
    }

    /// The raw bytes of the `index`-th top-level member (of any name; a repeated name has one
    /// member per occurrence), when they can be found exactly and copied as they are.
    fn member_at(&self, nodes: &[Node<'_>], index: usize) -> Option<&'a [u8]> {
        let b = self.bytes;
        let mut found = members(nodes).skip(index);
        let (name, _) = found.next()?;
        let key_at = Some(self.offset_of(name)?);
        let next_key_at = match found.next() {
            Some((key, _)) => Some(self.offset_of(key)?),
            None => None,
        };
        let key_at = key_at?;
        // The key must stand unescaped in the record: `"name"`.
        let after_key = key_at + name.len();
        if !b
            .get(key_at..after_key)?
            .eq_ignore_ascii_case(name.as_bytes())
        {
            return None;
        }
        let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        let mut p = after_key;
        if *b.get(p)? != b'"' {
            return None;
        }
        p += 1;
        while blank(*b.get(p)?) {
            p += 1;
        }
        if *b.get(p)? != b':' {
            return None;
        }
        p += 1;
        while blank(*b.get(p)?) {
            p += 1;
        }
        let start = p;
        // The value ends before `,` and the next key's quote, or before the record's last brace.
        let mut q = match next_key_at {
            Some(at) => {
                let mut q = at.checked_sub(1)?;
                if b[q] != b'"' {
                    return None;
                }
                q = q.checked_sub(1)?;
                while blank(b[q]) {
                    q = q.checked_sub(1)?;
                }
                if b[q] != b',' {
                    return None;
                }
                q
            }
            None => {
                let mut q = b.len().checked_sub(1)?;
                while blank(b[q]) {
                    q = q.checked_sub(1)?;
                }
                if b[q] != b'}' {
                    return None;
                }
                q
            }
        };
        q = q.checked_sub(1)?;
        while blank(b[q]) {
            q = q.checked_sub(1)?;
        }
        if q < start {
            return None;
        }
        let raw = &b[start..=q];
        Some(raw)
    }
}

/// Declares field slots: a `usize` constant per slot, numbered in order by an enum (so no two
/// can share a number or skip one), the count, and the names in the same order.
macro_rules! slots {
    ($(#[$doc:meta])* $enum:ident, $count:ident, $names:ident: $($slot:ident = $name:literal),+ $(,)?) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
        #[derive(Clone, Copy)]
        #[repr(usize)]
        enum $enum {
            $($slot),+
        }
        $(const $slot: usize = $enum::$slot as usize;)+
        const $count: usize = [$($name),+].len();
        $(#[$doc])*
        const $names: [&str; $count] = [$($name),+];
    };
}

// Top-level fields of a record: each slot's constant and its name, declared together so they
// cannot drift apart (the slots are an enum's discriminants, the names one array in that order).
slots! {
    /// The top-level fields the mapping reads, by slot (`T_*`).
    TopSlot, TOP_FIELDS, TOP_NAMES:
    T_TIME = "time",
    T_CREATED = "createdDateTime",
    T_RESOURCE_ID = "resourceId",
    T_OPERATION = "operationName",
    T_OPERATION_VERSION = "operationVersion",
    T_CATEGORY = "category",
    T_TENANT = "tenantId",
    T_RESULT_TYPE = "resultType",
    T_RESULT_SIGNATURE = "resultSignature",
    T_RESULT_DESCRIPTION = "resultDescription",
    T_DURATION = "durationMs",
    T_CALLER_IP = "callerIpAddress",
    T_CORRELATION = "correlationId",
    T_IDENTITY = "identity",
    T_LEVEL = "level",
    T_LOCATION = "location",
    T_PROPERTIES = "properties",
    T_TIME_GENERATED = "TimeGenerated",
    T_OPERATION_NAME_VALUE = "OperationNameValue",
    T_TIMESTAMP = "timeStamp",
    T_EVENT_TIMESTAMP = "eventTimestamp",
    T_CALLER = "caller",
    T_CLAIMS = "claims",
    T_AUTHORIZATION = "authorization",
    T_HTTP_REQUEST = "httpRequest",
    T_STATUS = "status",
    T_SUB_STATUS = "subStatus",
    T_PROVIDER = "resourceProviderName",
}

/// Slots read for the mapping but kept in `additionalEventData` under the record's own name
/// (the REST shape's fields, and the Log Analytics markers).
const KEPT_AS_NAMED: [usize; 9] = [
    T_TIME_GENERATED,
    T_OPERATION_NAME_VALUE,
    T_CALLER,
    T_CLAIMS,
    T_AUTHORIZATION,
    T_HTTP_REQUEST,
    T_STATUS,
    T_SUB_STATUS,
    T_PROVIDER,
];

fn top_fields() -> &'static FieldSet<TOP_FIELDS> {
    static SET: OnceLock<FieldSet<TOP_FIELDS>> = OnceLock::new();
    SET.get_or_init(|| FieldSet::new(TOP_NAMES))
}

// Members of `properties` that the mapping reads, declared as the top-level fields are.
slots! {
    /// The `properties` members the mapping reads, by slot (`P_*`).
    PropertySlot, PROPERTY_FIELDS, PROPERTY_NAMES:
    P_IP = "ipAddress",
    P_USER_ID = "userId",
    P_UPN = "userPrincipalName",
    P_SP_ID = "servicePrincipalId",
    P_APP_ID = "appId",
    P_USER_AGENT = "userAgent",
    P_STATUS = "status",
    P_CREATED = "createdDateTime",
    P_ACTIVITY_TIME = "activityDateTime",
    P_INITIATED_BY = "initiatedBy",
    P_RESULT = "result",
    P_RESULT_REASON = "resultReason",
    P_REQUEST_BODY = "requestbody",
    P_RESPONSE_BODY = "responseBody",
    P_STATUS_CODE = "statusCode",
    P_STATUS_MESSAGE = "statusMessage",
    P_ACTIVITY_NAME = "activityDisplayName",
    P_USER_NAME = "userDisplayName",
    P_SP_NAME = "servicePrincipalName",
}

fn property_fields() -> &'static FieldSet<PROPERTY_FIELDS> {
    static SET: OnceLock<FieldSet<PROPERTY_FIELDS>> = OnceLock::new();
    SET.get_or_init(|| FieldSet::new(PROPERTY_NAMES))
}

/// Entra ID (Azure AD) categories; everything else is read as an Activity Log record.
fn is_entra(category: &str) -> bool {
    let c = category.as_bytes();
    let ends_ci = |suffix: &str| {
        c.len() >= suffix.len()
            && c[c.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    ends_ci("SignInLogs")
        || [
            "AuditLogs",
            "Audit",
            "ProvisioningLogs",
            "RiskyUsers",
            "UserRiskEvents",
            "RiskyServicePrincipals",
            "ServicePrincipalRiskEvents",
            "MicrosoftGraphActivityLogs",
            "NetworkAccessTrafficLogs",
        ]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(category))
}

/// What the identity claims and authorization say.
#[derive(Default)]
struct Identity<'i> {
    object_id: Option<&'i str>,
    upn: Option<&'i str>,
    name: Option<&'i str>,
    app_id: Option<&'i str>,
    tenant_id: Option<&'i str>,
    idtyp: Option<&'i str>,
    scope: Option<&'i str>,
    action: Option<&'i str>,
    role: Option<&'i str>,
    evidence_principal: Option<&'i str>,
    evidence_type: Option<&'i str>,
    text: Option<&'i str>,
    /// The REST API's `caller`: a UPN, or an object or application id.
    caller: Option<&'i str>,
}

fn read_identity<'i>(v: Option<Val<'_, 'i>>) -> Identity<'i> {
    let mut id = Identity::default();
    let Some(v) = v else { return id };
    if let Some(s) = as_str(v) {
        id.text = Some(s).filter(|s| !s.trim().is_empty());
        return id;
    }
    let ne = |v: Val<'_, 'i>| as_str(v).filter(|s| !s.trim().is_empty());
    for (key, value) in members(v) {
        if key.eq_ignore_ascii_case("claims") {
            for (claim, cv) in members(value) {
                let slot = match claim {
                    "http://schemas.microsoft.com/identity/claims/objectidentifier" | "oid" => {
                        &mut id.object_id
                    }
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn" | "upn" => {
                        &mut id.upn
                    }
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
                    | "name"
                    | "unique_name" => &mut id.name,
                    "appid" | "azp" => &mut id.app_id,
                    "http://schemas.microsoft.com/identity/claims/tenantid" | "tid" => {
                        &mut id.tenant_id
                    }
                    "idtyp" => &mut id.idtyp,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = ne(cv);
                }
            }
        } else if key.eq_ignore_ascii_case("authorization") {
            for (ak, av) in members(value) {
                match ak {
                    "scope" => id.scope = ne(av),
                    "action" => id.action = ne(av),
                    // The REST API names the role here, the export under `evidence`.
                    "role" => id.role = id.role.or(ne(av)),
                    "evidence" => {
                        for (ek, ev) in members(av) {
                            match ek {
                                "role" => id.role = ne(ev),
                                "principalId" => id.evidence_principal = ne(ev),
                                "principalType" => id.evidence_type = ne(ev),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    id
}

/// Writes `eventData` for the record on `nodes` into `out.event_data`, and its checksum.
fn build(nodes: &[Node<'_>], ctx: &Ctx<'_>, out: &mut Output) -> Result<(), Rejection> {
    if !matches!(nodes.first(), Some(Node::Object { .. })) {
        return Err(Rejection::NotAnObject(kind(nodes)));
    }
    // A record whose values nest deeper than the event may is written from the tape, which
    // keeps the deep parts as text; the raw bytes are copied only when they nest within bounds.
    let deep = crate::json::tape_deeper_than(nodes, MAX_VALUE_DEPTH + 1);
    let bounded;
    let ctx = if deep {
        bounded = Ctx { raw: None, ..*ctx };
        &bounded
    } else {
        ctx
    };
    let top = top_fields().read(nodes);
    if top[T_TIME_GENERATED].is_some() && top[T_TIME].is_none() {
        return Err(Rejection::LogAnalyticsRow("TimeGenerated"));
    }
    if top[T_OPERATION_NAME_VALUE].is_some() && top[T_OPERATION].is_none() {
        return Err(Rejection::LogAnalyticsRow("OperationNameValue"));
    }
    let props_val = top[T_PROPERTIES];
    let props = match props_val {
        Some(p) if matches!(p.first(), Some(Node::Object { .. })) => property_fields().read(p),
        _ => [None; PROPERTY_FIELDS],
    };
    // The export writes `"category":"Administrative"`, the REST API `{"value":"Administrative",…}`.
    let category = non_empty(top[T_CATEGORY]).or_else(|| localized(top[T_CATEGORY]));
    let entra = category.is_some_and(is_entra);

    // eventTime
    let ((event_time, millis), time_source) = event_time(&top, &props, ctx.path_hour)?;
    out.event_time = event_time;
    out.event_millis = millis;

    // eventName and eventSource
    let operation =
        top[T_OPERATION].and_then(|v| as_str(v).or_else(|| get(v, "value").and_then(as_str)));
    let operation = operation.filter(|s| !s.trim().is_empty());
    let name_src = operation
        .or_else(|| non_empty(props[P_ACTIVITY_NAME]))
        .or(category)
        .ok_or(Rejection::NoOperation)?;
    let resource_id = non_empty(top[T_RESOURCE_ID]);
    let source_ns = operation
        .and_then(|op| op.split_once('/').map(|(ns, _)| ns))
        .filter(|ns| ns.contains('.') && !ns.contains(' '))
        .or_else(|| localized(top[T_PROVIDER]))
        .or_else(|| resource_id.and_then(provider_namespace))
        .unwrap_or(if entra { "Microsoft.aadiam" } else { "Azure" });

    let mut truncated: Vec<&'static str> = Vec::new();
    let ed = &mut out.doc;
    ed.clear();
    ed.literal(b"{\"version\":\"1.0\",\"userIdentity\":{");

    write_user_identity(ed, nodes, ctx, &top, &props, category, &mut truncated);

    if let Some(ua) = non_empty(props[P_USER_AGENT]) {
        ed.punct(b',');
        ed.key("userAgent");
        write_cut(ed, ua, MAX_NAME_LEN, "userAgent", &mut truncated);
    }
    ed.punct(b',');
    ed.key("eventSource");
    write_upper(ed, source_ns, MAX_NAME_LEN, "eventSource", &mut truncated);
    ed.punct(b',');
    ed.key("eventName");
    write_upper(ed, name_src, MAX_NAME_LEN, "eventName", &mut truncated);
    ed.punct(b',');
    ed.key("eventTime");
    let iso = event_time.iso_bytes();
    ed.string(std::str::from_utf8(&iso).unwrap_or("1970-01-01T00:00:00Z"));
    ed.punct(b',');
    ed.key("UID");
    ed.string(&out.uid);

    // requestParameters / responseElements: the request and response bodies, as JSON.
    for (slot, key) in [
        (P_REQUEST_BODY, "requestParameters"),
        (P_RESPONSE_BODY, "responseElements"),
    ] {
        if let Some(body) = props[slot] {
            write_body(ed, &mut out.tmp, key, body, &mut truncated);
        }
    }

    // errorCode / errorMessage, only for failures.
    if let Some((code, message)) = failure(&top, &props, entra) {
        ed.punct(b',');
        ed.key("errorCode");
        write_cut(ed, &code, MAX_ERROR_LEN, "errorCode", &mut truncated);
        if let Some(m) = message {
            ed.punct(b',');
            ed.key("errorMessage");
            write_cut(ed, m, MAX_ERROR_LEN, "errorMessage", &mut truncated);
        }
    }

    let ip = source_ip_of(&top, &props);
    if let Some(ip) = &ip {
        ed.punct(b',');
        ed.key("sourceIPAddress");
        ed.string(ip);
    }
    ed.punct(b',');
    ed.key("recipientAccountId");
    ed.string(ctx.account);

    // additionalEventData: everything else worth keeping, within its limit.
    ed.punct(b',');
    ed.key("additionalEventData");
    let mark = ed.mark();
    let skip_bodies =
        |k: &str| k.eq_ignore_ascii_case("requestbody") || k.eq_ignore_ascii_case("responseBody");
    // properties as it stands in the record, unless a body was moved out of it.
    let raw_props = match (ctx.raw, props[P_REQUEST_BODY], props[P_RESPONSE_BODY]) {
        (Some(raw), None, None) => raw.member(nodes, "properties"),
        _ => None,
    };
    let extra = Additional {
        top: &top,
        ctx,
        time_source,
        truncated: &truncated,
        props: props_val,
        raw_props,
        skip: &skip_bodies,
        nodes,
        source_ip: ip.as_deref(),
        deep,
    };
    extra.write(ed, &[], false);
    if ed.json.len() - mark.0 > MAX_ADDITIONAL_BYTES {
        extra.degrade(ed, mark, &mut out.tmp);
    }
    ed.punct(b'}');

    let digest = Sha256::digest(&out.doc.json);
    out.checksum.clear();
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out.checksum);
    Ok(())
}

/// `userIdentity`'s members (`type`, `principalId`, `details` with the identity as written),
/// closing `userIdentity`. The export nests claims and authorization in `identity`; the REST API
/// has them at the top.
fn write_user_identity(
    ed: &mut Doc,
    nodes: &[Node<'_>],
    ctx: &Ctx<'_>,
    top: &[Option<Val<'_, '_>>; TOP_FIELDS],
    props: &[Option<Val<'_, '_>>; PROPERTY_FIELDS],
    category: Option<&str>,
    truncated: &mut Vec<&'static str>,
) {
    let mut identity = match top[T_IDENTITY] {
        Some(v) => read_identity(Some(v)),
        None if top[T_CLAIMS].is_some() || top[T_AUTHORIZATION].is_some() => {
            read_identity(Some(nodes))
        }
        None => Identity::default(),
    };
    identity.caller = non_empty(top[T_CALLER]);
    let (principal, id_type) = principal(&identity, props, category);
    ed.key("type");
    write_cut(
        ed,
        id_type,
        MAX_IDENTITY_TYPE_LEN,
        "userIdentity.type",
        truncated,
    );
    ed.punct(b',');
    ed.key("principalId");
    write_cut(
        ed,
        principal,
        MAX_NAME_LEN,
        "userIdentity.principalId",
        truncated,
    );
    ed.literal(b",\"details\":{");
    let mut first = true;
    let mut detail = |ed: &mut Doc, key: &str, value: Option<&str>| {
        if let Some(v) = value {
            if !first {
                ed.punct(b',');
            }
            first = false;
            ed.key(key);
            ed.string(cut(v, MAX_NAME_LEN));
        }
    };
    detail(ed, "objectId", identity.object_id);
    detail(
        ed,
        "userPrincipalName",
        identity.upn.or(non_empty(props[P_UPN])),
    );
    detail(
        ed,
        "name",
        identity
            .name
            .or(non_empty(props[P_USER_NAME]))
            .or(non_empty(props[P_SP_NAME])),
    );
    detail(ed, "appId", identity.app_id.or(non_empty(props[P_APP_ID])));
    detail(
        ed,
        "tenantId",
        identity.tenant_id.or(non_empty(top[T_TENANT])),
    );
    detail(ed, "idtyp", identity.idtyp);
    detail(ed, "authorizationScope", identity.scope);
    detail(ed, "authorizationAction", identity.action);
    detail(ed, "role", identity.role);
    detail(ed, "principalType", identity.evidence_type);
    // The whole identity as written: every claim (authnmethodsreferences says whether MFA was
    // used) and the authorization evidence (the role assignment that allowed the call).
    if let Some(v) = top[T_IDENTITY] {
        let named = members(nodes)
            .find(|(k, _)| k.eq_ignore_ascii_case("identity"))
            .map_or("identity", |(k, _)| k);
        let mark = ed.mark();
        if !first {
            ed.punct(b',');
        }
        ed.key("identity");
        match ctx.raw.and_then(|r| r.member_any(nodes, named)) {
            Some(raw) => literal_minified(ed, raw),
            None => write_value(ed, v, None),
        }
        if ed.json.len() - mark.0 > MAX_IDENTITY_BYTES {
            ed.truncate(mark);
            truncated.push("userIdentity.details.identity");
        }
    }
    ed.punct(b'}');
    ed.punct(b'}');
}

/// `sourceIPAddress`: the caller's address, from `callerIpAddress`, the REST shape's
/// `httpRequest.clientIpAddress` or `properties.ipAddress`, when one is an IP address.
fn source_ip_of(
    top: &[Option<Val<'_, '_>>; TOP_FIELDS],
    props: &[Option<Val<'_, '_>>; PROPERTY_FIELDS],
) -> Option<String> {
    non_empty(top[T_CALLER_IP])
        .and_then(source_ip)
        .or_else(|| {
            top[T_HTTP_REQUEST]
                .and_then(|h| non_empty(get(h, "clientIpAddress")))
                .and_then(source_ip)
        })
        .or_else(|| non_empty(props[P_IP]).and_then(source_ip))
        .map(|ip| ip.to_string())
}

/// The event time (with its milliseconds) and, when it is not `time`, the field it came from.
fn event_time(
    top: &[Option<Val<'_, '_>>; TOP_FIELDS],
    props: &[Option<Val<'_, '_>>; PROPERTY_FIELDS],
    path_hour: Option<UtcSeconds>,
) -> Result<((UtcSeconds, u16), Option<&'static str>), Rejection> {
    let candidates = [
        (top[T_TIME], "time"),
        (top[T_TIMESTAMP], "timeStamp"),
        (top[T_EVENT_TIMESTAMP], "eventTimestamp"),
        (top[T_CREATED], "createdDateTime"),
        (props[P_CREATED], "properties.createdDateTime"),
        (props[P_ACTIVITY_TIME], "properties.activityDateTime"),
    ];
    let mut problems = Vec::new();
    for (i, (value, name)) in candidates.iter().enumerate() {
        let Some(v) = value else { continue };
        let parsed = match v.first() {
            Some(Node::String(s)) => parse_time_ms(s),
            Some(Node::Static(StaticNode::I64(n))) => from_epoch_number_ms(*n as f64),
            Some(Node::Static(StaticNode::U64(n))) => from_epoch_number_ms(*n as f64),
            Some(Node::Static(StaticNode::F64(n))) => from_epoch_number_ms(*n),
            _ => None,
        };
        match parsed {
            Some(t) => return Ok((t, (i > 0).then_some(*name))),
            None => problems.push(match as_str(v) {
                Some(s) => format!("{name} {:?} is not a time stamp", cut(s, 64)),
                None => format!("{name} is {}, not a time stamp", kind(v)),
            }),
        }
    }
    if let Some(hour) = path_hour {
        return Ok(((hour, 0), Some("blobPathHour")));
    }
    if problems.is_empty() {
        problems.push("the record has no time or createdDateTime field".into());
    }
    problems.push("and the source path names no y=/m=/d=/h= hour".into());
    Err(Rejection::NoEventTime(problems.join("; ")))
}

/// The `value` of a REST API localizable string (`{"value":…,"localizedValue":…}`).
fn localized<'i>(v: Option<Val<'_, 'i>>) -> Option<&'i str> {
    v.and_then(|v| non_empty(get(v, "value")))
}

/// The namespace after `/providers/` in a resource id (`Microsoft.aadiam`).
fn provider_namespace(resource_id: &str) -> Option<&str> {
    let bytes = resource_id.as_bytes();
    let needle = b"/providers/";
    let at = bytes
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))?;
    let rest = &resource_id[at + needle.len()..];
    let ns = rest.split('/').next()?;
    (!ns.is_empty()).then_some(ns)
}

/// `userIdentity.principalId` and `type`, by DESIGN.md's order of preference.
fn principal<'i>(
    id: &Identity<'i>,
    props: &[Option<Val<'_, 'i>>; PROPERTY_FIELDS],
    category: Option<&str>,
) -> (&'i str, &'static str) {
    let initiated = props[P_INITIATED_BY];
    let init_user = initiated.and_then(|v| get(v, "user"));
    let init_app = initiated.and_then(|v| get(v, "app"));
    let by_category = category.and_then(|c| {
        if c.eq_ignore_ascii_case("ManagedIdentitySignInLogs") {
            Some("ManagedIdentity")
        } else if c
            .as_bytes()
            .windows(16)
            .any(|w| w.eq_ignore_ascii_case(b"serviceprincipal"))
        {
            Some("ServicePrincipal")
        } else {
            None
        }
    });
    let by_idtyp = id.idtyp.map(|t| match t.to_ascii_lowercase().as_str() {
        "user" => "User",
        "app" => "ServicePrincipal",
        "device" => "Device",
        _ => "Unknown",
    });
    let claims_type = if id.upn.is_some() || id.name.is_some() {
        "User"
    } else if id.app_id.is_some() {
        "ServicePrincipal"
    } else {
        "Unknown"
    };
    let candidates: [(Option<&'i str>, &'static str); 13] = [
        (id.object_id, claims_type),
        (id.upn, "User"),
        (id.name, claims_type),
        (id.app_id, "ServicePrincipal"),
        (
            id.caller,
            if id.caller.is_some_and(|c| c.contains('@')) {
                "User"
            } else {
                "Unknown"
            },
        ),
        (id.evidence_principal, "Unknown"),
        (non_empty(props[P_USER_ID]), "User"),
        (non_empty(props[P_SP_ID]), "ServicePrincipal"),
        (init_user.and_then(|u| non_empty(get(u, "id"))), "User"),
        (
            init_app.and_then(|a| non_empty(get(a, "servicePrincipalId"))),
            "ServicePrincipal",
        ),
        (
            init_app.and_then(|a| non_empty(get(a, "appId"))),
            "ServicePrincipal",
        ),
        (non_empty(props[P_UPN]), "User"),
        (id.text, "Unknown"),
    ];
    let (principal, found_type) = candidates
        .iter()
        .find_map(|(p, t)| p.map(|p| (p, *t)))
        .unwrap_or(("unknown", "Unknown"));
    let evidence_type = id.evidence_type.and_then(|t| match t {
        "User" | "ServicePrincipal" | "ManagedIdentity" | "Group" | "Device" => Some(match t {
            "User" => "User",
            "ServicePrincipal" => "ServicePrincipal",
            "ManagedIdentity" => "ManagedIdentity",
            "Group" => "Group",
            _ => "Device",
        }),
        _ => None,
    });
    let id_type = by_idtyp
        .or(by_category)
        .or(evidence_type)
        .unwrap_or(found_type);
    (principal, id_type)
}

/// `(errorCode, errorMessage)` when the operation failed.
fn failure<'i>(
    top: &[Option<Val<'_, 'i>>; TOP_FIELDS],
    props: &[Option<Val<'_, 'i>>; PROPERTY_FIELDS],
    entra: bool,
) -> Option<(String, Option<&'i str>)> {
    let result_type = top[T_RESULT_TYPE];
    // The REST API's `status.value` says what the export's resultType says.
    let result_str = result_type
        .and_then(as_str)
        .or_else(|| localized(top[T_STATUS]))
        .map(str::trim);
    if let Some(r) = result_str {
        let r = r.trim_end_matches('.');
        if [
            "Success",
            "Succeeded",
            "Start",
            "Started",
            "Accept",
            "Accepted",
            "Active",
            "Activated",
            "Resolved",
            "Updated",
            "InProgress",
        ]
        .iter()
        .any(|ok| ok.eq_ignore_ascii_case(r))
        {
            return None;
        }
    }
    let status = props[P_STATUS];
    let status_code = status
        .and_then(|s| get(s, "errorCode"))
        .and_then(as_int)
        .filter(|c| *c != 0);
    let failed_word = result_str
        .is_some_and(|r| r.eq_ignore_ascii_case("Failure") || r.eq_ignore_ascii_case("Failed"));
    let audit_failure = props[P_RESULT]
        .and_then(as_str)
        .is_some_and(|r| r.eq_ignore_ascii_case("failure"));
    // Entra sign-ins put the error number in resultType ("0" is success).
    let numeric_result = if entra {
        result_type.and_then(as_int).filter(|c| *c != 0)
    } else {
        None
    };
    if !(failed_word || audit_failure || status_code.is_some() || numeric_result.is_some()) {
        return None;
    }
    let signature = non_empty(top[T_RESULT_SIGNATURE])
        .or_else(|| localized(top[T_SUB_STATUS]))
        .filter(|s| !s.eq_ignore_ascii_case("None") && *s != "-1");
    let code = status_code
        .or(numeric_result)
        .map(|c| c.to_string())
        .or_else(|| non_empty(props[P_STATUS_CODE]).map(str::to_string))
        .or_else(|| signature.map(str::to_string))
        .or_else(|| result_str.filter(|s| !s.is_empty()).map(str::to_string))
        .unwrap_or_else(|| "Failure".to_string());
    let message = status
        .and_then(|s| non_empty(get(s, "failureReason")))
        .or_else(|| non_empty(props[P_RESULT_REASON]))
        .or_else(|| non_empty(top[T_RESULT_DESCRIPTION]))
        .or_else(|| non_empty(props[P_STATUS_MESSAGE]))
        .or_else(|| top[T_SUB_STATUS].and_then(|v| non_empty(get(v, "localizedValue"))));
    Some((code, message))
}

fn write_cut(
    out: &mut Doc,
    s: &str,
    max: usize,
    field: &'static str,
    truncated: &mut Vec<&'static str>,
) {
    let c = cut(s, max);
    if c.len() < s.len() {
        truncated.push(field);
    }
    out.string(c);
}

fn write_upper(
    out: &mut Doc,
    s: &str,
    max: usize,
    field: &'static str,
    truncated: &mut Vec<&'static str>,
) {
    let s = s.trim();
    if s.is_ascii() && crate::json::is_plain(s) {
        // Written as it is, then upper-cased in place in both forms (no escapes to disturb).
        let c = cut(s, max);
        if c.len() < s.len() {
            truncated.push(field);
        }
        let (json, wire) = out.mark();
        out.string(c);
        out.json[json..].make_ascii_uppercase();
        out.wire[wire..].make_ascii_uppercase();
        return;
    }
    let upper = s.to_uppercase();
    write_cut(out, &upper, max, field, truncated);
}

/// `requestParameters` / `responseElements` from a body that is JSON, or a string holding JSON.
fn write_body(
    ed: &mut Doc,
    tmp: &mut Vec<u8>,
    key: &'static str,
    body: Val<'_, '_>,
    truncated: &mut Vec<&'static str>,
) {
    tmp.clear();
    match body.first() {
        Some(Node::Object { .. }) => write_value(tmp, body, None),
        Some(Node::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return;
            }
            // A JSON object in a string is kept as written: its numbers keep every digit and
            // repeated keys stay (a rebuilt value would round 30-digit numbers and drop them).
            match serde_json::from_str::<&serde_json::value::RawValue>(t) {
                Ok(v)
                    if v.get().starts_with('{')
                        && !crate::json::nests_deeper_than(v.get().as_bytes(), MAX_VALUE_DEPTH) =>
                {
                    minify_into(tmp, v.get().as_bytes())
                }
                // Not a JSON object: kept as text so nothing is lost.
                _ => {
                    tmp.extend_from_slice(b"{\"body\":");
                    write_str(tmp, t);
                    tmp.push(b'}');
                }
            }
        }
        Some(Node::Array { .. }) => {
            tmp.extend_from_slice(b"{\"body\":");
            write_value(tmp, body, None);
            tmp.push(b'}');
        }
        _ => return,
    }
    if tmp.len() > MAX_PARAMETERS_BYTES {
        truncated.push(key);
        return;
    }
    ed.punct(b',');
    ed.key(key);
    ed.literal(tmp);
}

/// Appends valid JSON `json` without the blanks between its tokens (line breaks of a
/// pretty-printed body would be raw control characters in `eventData`'s text); every value stays
/// exactly as written.
fn minify_into(out: &mut Vec<u8>, json: &[u8]) {
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        out.push(b);
    }
}

/// Writes a raw JSON value of the record as it stands, without blanks between its tokens.
fn literal_minified(ed: &mut Doc, raw: &[u8]) {
    if crate::json::has_control(raw) {
        let mut compact = Vec::with_capacity(raw.len());
        minify_into(&mut compact, raw);
        ed.literal(&compact);
    } else {
        ed.literal(raw);
    }
}

/// What goes into `additionalEventData`.
struct Additional<'a, 't, 'i> {
    top: &'a [Option<Val<'t, 'i>>; TOP_FIELDS],
    ctx: &'a Ctx<'a>,
    time_source: Option<&'static str>,
    truncated: &'a [&'static str],
    props: Option<Val<'t, 'i>>,
    /// `properties` as it stands in the raw record, when it can be copied whole.
    raw_props: Option<&'a [u8]>,
    /// Members of `properties` moved elsewhere (the request and response bodies).
    skip: &'a dyn Fn(&str) -> bool,
    /// The whole record.
    nodes: Val<'t, 'i>,
    /// `sourceIPAddress` as written, when the event has one.
    source_ip: Option<&'a str>,
    /// The record nests deeper than the event may: some of its parts are kept as JSON text.
    deep: bool,
}

/// Keys of `additionalEventData` that aztrail writes: a record field of the same name is kept
/// as `record.<name>` instead.
const OWN_KEYS: [&str; 4] = ["eventTimeSource", "nestedAsText", "source", "truncated"];

/// The keys written into one JSON object, compared without case.
#[derive(Default)]
struct Keys<'k>(Vec<Cow<'k, str>>);

impl<'k> Keys<'k> {
    fn taken(&self, key: &str) -> bool {
        self.0.iter().any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Marks `key` as written.
    fn take(&mut self, key: Cow<'k, str>) {
        self.0.push(key);
    }

    /// `want` if no key written so far equals it (ignoring case), else `want#2`, `want#3`, ...:
    /// the key a repeated name is written under.
    fn unique(&mut self, want: Cow<'k, str>) -> Cow<'k, str> {
        let mut name = want.clone();
        let mut n = 2;
        while self.taken(&name) {
            name = Cow::Owned(format!("{want}#{n}"));
            n += 1;
        }
        self.0.push(name.clone());
        name
    }
}

impl Additional<'_, '_, '_> {
    /// Writes `v` (the record's `index`-th top-level member) exactly as written when the raw
    /// record allows it, else from the tape.
    fn verbatim(&self, ed: &mut Doc, index: usize, v: Val<'_, '_>) {
        match self.ctx.raw.and_then(|r| r.member_at(self.nodes, index)) {
            Some(raw) => literal_minified(ed, raw),
            None => write_value(ed, v, None),
        }
    }

    /// Writes the object. `dropped` names members of `properties` left out; `bare` leaves
    /// `properties` out entirely, cuts the other strings short and leaves out other objects and
    /// arrays, each listed in `truncated`.
    fn write(&self, ed: &mut Doc, dropped: &[&str], bare: bool) {
        let top = self.top;
        let mut cut_here: Vec<String> = Vec::new();
        // Every key written at this level, so that no two members share one (JSON readers keep
        // only one of two equal keys; some compare keys without case).
        let mut keys = Keys::default();
        ed.punct(b'{');
        let mut field = |ed: &mut Doc, name: &str, index: usize, v: Val<'_, '_>| {
            match (bare, v.first()) {
                (true, Some(Node::String(s))) => {
                    ed.key(name);
                    let c = cut(s, MAX_NAME_LEN);
                    if c.len() < s.len() {
                        cut_here.push(name.to_string());
                    }
                    ed.string(c);
                }
                (true, Some(Node::Object { .. } | Node::Array { .. })) => {
                    cut_here.push(name.to_string());
                    return;
                }
                _ => {
                    ed.key(name);
                    self.verbatim(ed, index, v);
                }
            }
            ed.punct(b',');
        };
        // The index of the first member named `want` (ignoring case): the one `top` holds.
        let first_named = |want: &str| {
            members(self.nodes)
                .position(|(k, _)| k.eq_ignore_ascii_case(want))
                .unwrap_or(usize::MAX)
        };
        for (key, slot) in [
            ("category", T_CATEGORY),
            ("level", T_LEVEL),
            ("location", T_LOCATION),
            ("resourceId", T_RESOURCE_ID),
            ("correlationId", T_CORRELATION),
            ("tenantId", T_TENANT),
            ("operationName", T_OPERATION),
            ("operationVersion", T_OPERATION_VERSION),
            ("resultType", T_RESULT_TYPE),
            ("resultSignature", T_RESULT_SIGNATURE),
            ("resultDescription", T_RESULT_DESCRIPTION),
            ("durationMs", T_DURATION),
            // The time as written (eventTime keeps whole seconds in UTC only).
            ("time", T_TIME),
            ("timeStamp", T_TIMESTAMP),
            ("eventTimestamp", T_EVENT_TIMESTAMP),
            ("createdDateTime", T_CREATED),
        ] {
            let Some(v) = top[slot] else { continue };
            keys.take(Cow::Borrowed(key));
            field(ed, key, first_named(key), v);
        }
        // callerIpAddress, unless sourceIPAddress holds it as written.
        if let Some(v) = top[T_CALLER_IP] {
            if as_str(v).is_none_or(|s| Some(s) != self.source_ip) {
                keys.take(Cow::Borrowed("callerIpAddress"));
                field(ed, "callerIpAddress", first_named("callerIpAddress"), v);
            }
        }
        // Names aztrail writes at this level itself.
        for own in OWN_KEYS.iter().chain(["properties"].iter()) {
            keys.take(Cow::Borrowed(own));
        }
        // Every other top-level member under its own name, and every repeat of a mapped one
        // (Azure writes `Level` beside `level`), each under a key of its own.
        let fields = top_fields();
        let mut seen = [false; TOP_FIELDS];
        for (index, (key, v)) in members(self.nodes).enumerate() {
            if let Some(slot) = fields.slot(key).filter(|s| !KEPT_AS_NAMED.contains(s)) {
                if !std::mem::replace(&mut seen[slot], true) {
                    continue; // the first one is mapped
                }
            }
            let name = if OWN_KEYS.iter().any(|o| o.eq_ignore_ascii_case(key)) {
                keys.unique(Cow::Owned(format!("record.{key}")))
            } else {
                keys.unique(Cow::Borrowed(key))
            };
            field(ed, &name, index, v);
        }
        if let Some(ts) = self.time_source {
            ed.key("eventTimeSource");
            ed.string(ts);
            ed.punct(b',');
        }
        // The members whose deepest parts are kept as JSON text.
        let mut deep = members(self.nodes)
            .filter(|(_, v)| self.deep && crate::json::tape_deeper_than(v, MAX_VALUE_DEPTH))
            .map(|(k, _)| k)
            .peekable();
        if deep.peek().is_some() {
            ed.key("nestedAsText");
            ed.punct(b'[');
            for (i, k) in deep.enumerate() {
                if i > 0 {
                    ed.punct(b',');
                }
                ed.string(k);
            }
            ed.punct(b']');
            ed.punct(b',');
        }
        ed.literal(self.ctx.source_prefix);
        write_int(ed, i64::try_from(self.ctx.offset).unwrap_or(i64::MAX));
        ed.punct(b'}');
        let cut_fields: Vec<&str> = self
            .truncated
            .iter()
            .copied()
            .chain(dropped.iter().copied())
            .chain(bare.then_some("properties"))
            .chain(cut_here.iter().map(String::as_str))
            .collect();
        if !cut_fields.is_empty() {
            ed.punct(b',');
            ed.key("truncated");
            ed.punct(b'[');
            for (i, f) in cut_fields.iter().enumerate() {
                if i > 0 {
                    ed.punct(b',');
                }
                ed.string(f);
            }
            ed.punct(b']');
        }
        if let (Some(p), false) = (self.props, bare) {
            ed.punct(b',');
            ed.key("properties");
            if let (Some(raw), true) = (self.raw_props, dropped.is_empty()) {
                ed.literal(raw);
            } else if dropped.is_empty() {
                write_value(ed, p, Some(self.skip));
            } else {
                let skip_more = |k: &str| (self.skip)(k) || dropped.contains(&k);
                write_value(ed, p, Some(&skip_more));
            }
        }
        ed.punct(b'}');
    }

    /// Over the limit: leave out the largest members of `properties` until it fits, and if even
    /// the rest does not fit, leave out `properties` and cut the other fields.
    fn degrade(&self, ed: &mut Doc, mark: (usize, usize), tmp: &mut Vec<u8>) {
        let mut sizes: Vec<(&str, usize)> = Vec::new();
        if let Some(p) = self.props {
            for (k, v) in members(p) {
                if (self.skip)(k) {
                    continue;
                }
                tmp.clear();
                write_value(tmp, v, None);
                sizes.push((k, tmp.len() + escaped_len(k.as_bytes()) + 4));
            }
        }
        sizes.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
        let mut dropped: Vec<&str> = Vec::new();
        let mut size = ed.json.len() - mark.0;
        for (k, s) in sizes {
            // Room for the names of what was left out.
            let reserve = dropped.iter().map(|d| d.len() + 20).sum::<usize>() + 64;
            if size + reserve <= MAX_ADDITIONAL_BYTES {
                break;
            }
            dropped.push(k);
            size = size.saturating_sub(s);
        }
        loop {
            ed.truncate(mark);
            self.write(ed, &dropped, false);
            if ed.json.len() - mark.0 <= MAX_ADDITIONAL_BYTES {
                return;
            }
            if dropped.len() >= 64 {
                break;
            }
            // The estimate was off: keep leaving out members in their order.
            let next = self.props.and_then(|p| {
                members(p)
                    .map(|(k, _)| k)
                    .find(|k| !(self.skip)(k) && !dropped.contains(k))
            });
            match next {
                Some(k) => dropped.push(k),
                None => break,
            }
        }
        ed.truncate(mark);
        self.write(ed, &[], true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn map_at(record: &str, key: &str) -> Result<Value, Rejection> {
        let mut m = Mapper::new("123456789012");
        m.set_source(&Source {
            bucket: Some("b".into()),
            key: key.into(),
        });
        let ev = m.map(Record::new(7, record.as_bytes()))?;
        let mut entry = Vec::new();
        ev.write_entry(&mut entry);
        assert_eq!(entry.len(), ev.entry_len());
        let parsed: Value = serde_json::from_slice(&entry).expect("entry is JSON");
        assert_eq!(parsed["eventData"].as_str(), Some(ev.event_data));
        Ok(serde_json::from_str(ev.event_data).expect("eventData is JSON"))
    }

    fn map(record: &str) -> Result<Value, Rejection> {
        map_at(record, "k")
    }

    /// Fails if any object in `json` names a key twice (JSON readers would keep only one).
    fn assert_unique_keys(json: &str) {
        fn walk(v: Val<'_, '_>, path: &str) {
            match v.first() {
                Some(Node::Object { .. }) => {
                    let mut keys: Vec<&str> = Vec::new();
                    for (k, x) in members(v) {
                        assert!(
                            !keys.iter().any(|seen| seen.eq_ignore_ascii_case(k)),
                            "{path}.{k} twice"
                        );
                        keys.push(k);
                        walk(x, &format!("{path}.{k}"));
                    }
                }
                Some(Node::Array { .. }) => {
                    let mut i = 1;
                    while i < v.len() {
                        let span = crate::json::node_span(&v[i..]);
                        walk(&v[i..i + span], path);
                        i += span;
                    }
                }
                _ => {}
            }
        }
        let mut bytes = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes).expect("eventData parses");
        walk(&tape.0, "");
    }

    #[test]
    fn repeated_top_level_keys_each_reach_the_event_under_a_key_of_their_own() {
        // Hostile round 2, item 3: ServiceHealth records carry `Level` beside `level`.
        let record = r#"{"time":"2024-05-01T10:00:00Z","operationName":"Microsoft.ServiceHealth/incident/action",
            "Level":5,"level":"Informational","Category":"ServiceHealth","category":"Other",
            "CallerIpAddress":"10.0.0.1","callerIpAddress":"10.0.0.2","ResultType":"Active","resultType":"Resolved",
            "Time":"2024-05-01T10:00:01Z","OperationName":"second/op","identity":{"claims":{"oid":"o1"}},
            "Identity":{"claims":{"oid":"o2"}},"ResourceId":"/SUBSCRIPTIONS/A","resourceId":"/subscriptions/b",
            "dup":1,"dup":2,"dup":3,"source":"s1","record.source":"s2","Source":"s3","properties":{"p":1},"Properties":{"p":2}}"#
            .replace(['\n', ' '], "");
        let mut m = Mapper::new("123456789012");
        let ev = m.map(Record::new(0, record.as_bytes())).expect("maps");
        assert_unique_keys(ev.event_data);
        let ed: Value = serde_json::from_str(ev.event_data).expect("eventData is JSON");
        let extra = &ed["additionalEventData"];
        let text = ev.event_data;
        for needle in [
            "5",
            "\"Informational\"",
            "\"ServiceHealth\"",
            "\"Other\"",
            "\"10.0.0.2\"",
            "\"Active\"",
            "\"Resolved\"",
            "\"2024-05-01T10:00:01Z\"",
            "\"second/op\"",
            "\"o1\"",
            "\"o2\"",
            "\"/SUBSCRIPTIONS/A\"",
            "\"/subscriptions/b\"",
            "\"s1\"",
            "\"s2\"",
            "\"s3\"",
            "{\"p\":1}",
            "{\"p\":2}",
        ] {
            assert!(text.contains(needle), "{needle} is missing from {text}");
        }
        assert_eq!(extra["level"], 5);
        assert_eq!(extra["level#2"], "Informational");
        assert_eq!(extra["dup"], 1);
        assert_eq!(extra["dup#2"], 2);
        assert_eq!(extra["dup#3"], 3);
        assert_eq!(extra["record.source"], "s1");
        assert_eq!(extra["record.source#2"], "s2");
        // Keys are kept apart without regard to case, too.
        assert_eq!(extra["record.Source#3"], "s3");
        assert!(extra.get("truncated").is_none(), "nothing was cut: {extra}");
    }

    #[test]
    fn deep_records_are_kept_as_json_text_below_the_depth_bound() {
        // Hostile round 2, item 10: a record 1,500 deep (a 6 kB line).
        let deep = format!("{}1{}", "[".repeat(1500), "]".repeat(1500));
        let body = format!(
            "{{\"a\":{}}}",
            "{\"a\":".repeat(200) + "1" + &"}".repeat(200)
        );
        for (field, value) in [
            ("properties", format!("{{\"x\":{deep},\"ok\":1}}")),
            ("extra", deep.clone()),
        ] {
            let mut r = base();
            let record = {
                r["requestbodyless"] = json!(1);
                let s = r.to_string();
                format!(
                    "{},\"{field}\":{value},\"props2\":{{\"requestbody\":{}}}}}",
                    &s[..s.len() - 1],
                    serde_json::to_string(&body).unwrap()
                )
            };
            let mut m = Mapper::new("123456789012");
            let ev = m.map(Record::new(0, record.as_bytes())).expect("maps");
            assert!(
                !crate::json::nests_deeper_than(ev.event_data.as_bytes(), MAX_VALUE_DEPTH + 5),
                "{field}: eventData nests too deep"
            );
            let ed: Value = serde_json::from_str(ev.event_data).expect("eventData is JSON");
            let extra = &ed["additionalEventData"];
            assert_eq!(extra["nestedAsText"], json!([field]), "{field}");
            assert!(extra.get("truncated").is_none(), "{extra}");
            // The deep part is there, as the JSON text it was.
            let mut v = &extra[field];
            if field == "properties" {
                assert_eq!(v["ok"], 1);
                v = &v["x"];
            }
            let mut levels = 0;
            let text = loop {
                match v {
                    Value::Array(a) => {
                        levels += 1;
                        v = &a[0];
                    }
                    Value::String(s) => break s.clone(),
                    other => panic!("{other}"),
                }
            };
            // Every level is there: as structure down to the bound, as text below it.
            assert!(levels <= MAX_VALUE_DEPTH, "{field}: {levels}");
            assert_eq!(levels + text.matches('[').count(), 1500, "{field}");
            assert!(text.ends_with(&"]".repeat(1500 - levels)));
        }
    }

    fn base() -> Value {
        json!({"time": "2024-05-01T10:00:00.1234567Z", "operationName": "Microsoft.Storage/storageAccounts/write",
               "category": "Administrative", "resultType": "Success"})
    }

    #[test]
    fn other_time_names_and_every_unmapped_field_are_kept_as_written() {
        for key in ["timeStamp", "TIMESTAMP", "eventTimestamp"] {
            let r = json!({key: "2024-05-01T10:00:00.1234567Z", "operationName": "Microsoft.Web/sites/write",
                           "callerIpAddress": "10.0.0.1:443", "RoleLocation": "West Europe",
                           "source": "theirs", "durationMs": "12",
                           "identity": {"claims": {"http://schemas.microsoft.com/claims/authnmethodsreferences": "pwd,mfa"},
                                        "authorization": {"evidence": {"roleAssignmentId": "ra1"}}}});
            let ed = map_at(&r.to_string(), "no/hour/here").unwrap();
            assert_eq!(ed["eventTime"], "2024-05-01T10:00:00Z", "{key}");
            let extra = &ed["additionalEventData"];
            // Known fields go under their usual names, whatever the record's casing.
            let usual = if key == "TIMESTAMP" { "timeStamp" } else { key };
            assert_eq!(extra[usual], "2024-05-01T10:00:00.1234567Z");
            assert_eq!(
                extra["eventTimeSource"],
                if key == "eventTimestamp" {
                    "eventTimestamp"
                } else {
                    "timeStamp"
                }
            );
            assert_eq!(ed["sourceIPAddress"], "10.0.0.1");
            assert_eq!(extra["callerIpAddress"], "10.0.0.1:443");
            assert_eq!(extra["RoleLocation"], "West Europe");
            assert_eq!(extra["record.source"], "theirs");
            assert_eq!(extra["durationMs"], "12");
            assert_eq!(ed["userIdentity"]["details"]["identity"], r["identity"]);
        }
    }

    #[test]
    fn oversized_properties_lose_their_largest_members_only() {
        let mut r = base();
        r["properties"] =
            json!({"big": "x".repeat(40_000), "also": "y".repeat(10_000), "small": "kept"});
        let ed = map(&r.to_string()).unwrap();
        let extra = &ed["additionalEventData"];
        assert!(extra.to_string().len() <= MAX_ADDITIONAL_BYTES);
        assert_eq!(extra["properties"]["small"], "kept");
        assert_eq!(
            extra["properties"]["also"].as_str().map(str::len),
            Some(10_000)
        );
        assert!(extra["properties"].get("big").is_none());
        assert_eq!(extra["truncated"], json!(["big"]));
        assert_eq!(
            extra["source"],
            json!({"bucket": "b", "key": "k", "offset": 7})
        );
    }

    #[test]
    fn many_mid_sized_members_and_huge_top_fields_still_fit() {
        let mut r = base();
        let props: serde_json::Map<String, Value> = (0..100)
            .map(|i| (format!("p{i}"), json!("z".repeat(900))))
            .collect();
        r["properties"] = Value::Object(props);
        r["resultDescription"] = json!("d".repeat(50_000));
        let ed = map(&r.to_string()).unwrap();
        let extra = &ed["additionalEventData"];
        assert!(
            extra.to_string().len() <= MAX_ADDITIONAL_BYTES,
            "{}",
            extra.to_string().len()
        );
        assert!(extra["truncated"]
            .as_array()
            .unwrap()
            .contains(&json!("properties")));
        assert!(
            extra["source"].is_object(),
            "the pointer to the raw record is kept"
        );
    }

    #[test]
    fn request_and_response_bodies_become_parameters() {
        let mut r = base();
        r["properties"] = json!({"requestbody": "{\"location\":\"eastus\"}", "responseBody": "not json",
                                 "statusCode": "OK"});
        let ed = map(&r.to_string()).unwrap();
        assert_eq!(ed["requestParameters"], json!({"location": "eastus"}));
        assert_eq!(ed["responseElements"], json!({"body": "not json"}));
        assert!(ed["additionalEventData"]["properties"]
            .get("requestbody")
            .is_none());
        r["properties"] = json!({"responseBody": {"blob": "q".repeat(120_000)}});
        let ed = map(&r.to_string()).unwrap();
        assert!(ed.get("responseElements").is_none());
        assert_eq!(
            ed["additionalEventData"]["truncated"],
            json!(["responseElements"])
        );
    }

    #[test]
    fn long_names_are_cut_not_dropped() {
        let mut r = base();
        r["operationName"] = json!(format!("Microsoft.Storage/{}", "a".repeat(3000)));
        let ed = map(&r.to_string()).unwrap();
        assert_eq!(ed["eventName"].as_str().map(str::len), Some(MAX_NAME_LEN));
        assert!(ed["eventName"]
            .as_str()
            .unwrap()
            .starts_with("MICROSOFT.STORAGE/AAA"));
        assert_eq!(ed["additionalEventData"]["truncated"], json!(["eventName"]));
    }

    #[test]
    fn principal_follows_the_documented_order() {
        let mut r = base();
        r["identity"] = json!({"claims": {
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "a@b.example",
            "http://schemas.microsoft.com/identity/claims/objectidentifier": "oid-1",
            "appid": "app-1"}});
        let ed = map(&r.to_string()).unwrap();
        assert_eq!(ed["userIdentity"]["principalId"], "oid-1");
        assert_eq!(ed["userIdentity"]["type"], "User");
        assert_eq!(
            ed["userIdentity"]["details"]["userPrincipalName"],
            "a@b.example"
        );

        r["identity"] = json!({"claims": {"appid": "app-1", "idtyp": "app"}});
        let ed = map(&r.to_string()).unwrap();
        assert_eq!(ed["userIdentity"]["principalId"], "app-1");
        assert_eq!(ed["userIdentity"]["type"], "ServicePrincipal");

        r["identity"] = json!("Some Name");
        r["category"] = json!("SignInLogs");
        r["properties"] = json!({"userId": "user-guid", "ipAddress": "2001:db8::1"});
        let ed = map(&r.to_string()).unwrap();
        assert_eq!(ed["userIdentity"]["principalId"], "user-guid");
        assert_eq!(ed["userIdentity"]["type"], "User");
        assert_eq!(ed["sourceIPAddress"], "2001:db8::1");

        r["properties"] = json!({"initiatedBy": {"app": {"servicePrincipalId": "sp-1"}}});
        r["category"] = json!("ManagedIdentitySignInLogs");
        let ed = map(&r.to_string()).unwrap();
        assert_eq!(ed["userIdentity"]["principalId"], "sp-1");
        assert_eq!(ed["userIdentity"]["type"], "ManagedIdentity");

        let ed = map(&base().to_string()).unwrap();
        assert_eq!(ed["userIdentity"]["principalId"], "unknown");
        assert_eq!(ed["userIdentity"]["type"], "Unknown");
    }

    #[test]
    fn failures_carry_an_error_and_successes_do_not() {
        let mut r = base();
        r["resultType"] = json!("Failure");
        r["resultSignature"] = json!("Conflict");
        r["properties"] = json!({"statusCode": "Conflict", "statusMessage": "m".repeat(400)});
        let ed = map(&r.to_string()).unwrap();
        assert_eq!(ed["errorCode"], "Conflict");
        assert_eq!(
            ed["errorMessage"].as_str().map(str::len),
            Some(MAX_ERROR_LEN)
        );

        for ok in ["Success", "Start", "Accept", "Succeeded."] {
            r["resultType"] = json!(ok);
            assert!(
                map(&r.to_string()).unwrap().get("errorCode").is_none(),
                "{ok}"
            );
        }

        let signin = json!({"time": "2024-05-01T10:00:00Z", "category": "SignInLogs", "resultType": "50126",
            "operationName": "Sign-in activity", "resultDescription": "Invalid username or password",
            "properties": {"status": {"errorCode": 50126, "failureReason": "Invalid username or password."}}});
        let ed = map(&signin.to_string()).unwrap();
        assert_eq!(ed["errorCode"], "50126");
        assert_eq!(ed["errorMessage"], "Invalid username or password.");
        assert_eq!(ed["eventSource"], "MICROSOFT.AADIAM");
        assert_eq!(ed["eventName"], "SIGN-IN ACTIVITY");
    }

    #[test]
    fn time_falls_back_to_created_then_to_the_blob_path_hour() {
        let r = json!({"createdDateTime": "2024-05-01T10:00:00+02:00", "category": "SignInLogs"});
        let ed = map(&r.to_string()).unwrap();
        assert_eq!(ed["eventTime"], "2024-05-01T08:00:00Z");
        assert_eq!(
            ed["additionalEventData"]["eventTimeSource"],
            "createdDateTime"
        );

        let r = json!({"time": "garbage", "category": "Administrative", "operationName": "X/y"});
        let key = "resourceId=/SUBSCRIPTIONS/S/y=2024/m=05/d=01/h=13/m=00/PT1H.json";
        let ed = map_at(&r.to_string(), key).unwrap();
        assert_eq!(ed["eventTime"], "2024-05-01T13:00:00Z");
        assert_eq!(ed["additionalEventData"]["eventTimeSource"], "blobPathHour");

        match map(&r.to_string()) {
            Err(Rejection::NoEventTime(why)) => {
                assert!(
                    why.contains("time \"garbage\" is not a time stamp"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn typed_rejections() {
        assert!(matches!(
            map("[1,2]"),
            Err(Rejection::NotAnObject("an array"))
        ));
        assert!(matches!(
            map("{\"time\":\"2024-01-01T00:00:00Z\""),
            Err(Rejection::InvalidJson(_))
        ));
        assert!(matches!(
            map("{\"a\":\"\u{0}\"}"),
            Err(Rejection::InvalidJson(_))
        ));
        let mut m = Mapper::new("123456789012");
        let bad_utf8 = b"{\"time\":\"2024-01-01T00:00:00Z\",\"category\":\"\xff\"}";
        assert!(matches!(
            m.map(Record::new(0, bad_utf8)),
            Err(Rejection::InvalidJson(_))
        ));
        let la = json!({"TimeGenerated": "2024-01-01T00:00:00Z", "OperationNameValue": "X"});
        assert!(matches!(
            map(&la.to_string()),
            Err(Rejection::LogAnalyticsRow(_))
        ));
        let nothing = json!({"time": "2024-01-01T00:00:00Z"});
        assert!(matches!(
            map(&nothing.to_string()),
            Err(Rejection::NoOperation)
        ));
    }

    #[test]
    fn deep_nesting_does_not_panic() {
        let depth = 100_000;
        let mut r =
            String::from("{\"time\":\"2024-01-01T00:00:00Z\",\"category\":\"A\",\"properties\":");
        r.push_str(&"[".repeat(depth));
        r.push_str(&"]".repeat(depth));
        r.push('}');
        // Either outcome is fine; what matters is an answer and no stack overflow.
        let _ = map(&r);
    }

    #[test]
    fn ids_are_deterministic_and_from_the_raw_bytes() {
        let r = base().to_string();
        let mut m = Mapper::new("123456789012");
        let a = m.map(Record::new(0, r.as_bytes())).unwrap().id.to_string();
        let b = m.map(Record::new(99, r.as_bytes())).unwrap().id.to_string();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        let c = m
            .map(Record::new(0, format!("{r} ").as_bytes()))
            .unwrap()
            .id
            .to_string();
        assert_ne!(a, c);
    }

    #[test]
    fn properties_are_copied_raw_when_their_span_is_exact() {
        let props = r#"{"n":1.0E2,"s":"caf\u00e9 \"q\"","o":{"k":[1, 2]}}"#;
        let mut m = Mapper::new("123456789012");
        for record in [
            format!(r#"{{"time":"2024-01-01T00:00:00Z","category":"A","properties":{props}}}"#),
            format!(r#"{{"time":"2024-01-01T00:00:00Z","properties" : {props} , "category":"A"}}"#),
            format!("{{\"properties\":\t{props}\r\n,\"time\":\"2024-01-01T00:00:00Z\",\"category\":\"A\"}}"),
        ] {
            let ev = m.map(Record::new(0, record.as_bytes())).unwrap();
            assert!(ev.event_data.contains(&format!("\"properties\":{props}")), "{record}\n{}", ev.event_data);
            let _: Value = serde_json::from_str(ev.event_data).unwrap();
        }
        // Not copied (a body moved out, a line break inside, the serde_json path):
        // written back from the tape instead, still equal as JSON.
        let mut slow = Mapper::new("123456789012").with_parser(Parser::SerdeJson);
        for record in [
            r#"{"time":"2024-01-01T00:00:00Z","category":"A","properties":{"requestbody":"{}","n":1.0E2}}"#.to_string(),
            "{\"time\":\"2024-01-01T00:00:00Z\",\"category\":\"A\",\"properties\":{\"n\":1.0E2,\n\"s\":\"ab\"}}".to_string(),
        ] {
            let ev = m.map(Record::new(0, record.as_bytes())).unwrap();
            assert!(!ev.event_data.contains("1.0E2"), "{}", ev.event_data);
            let fast: Value = serde_json::from_str(ev.event_data).unwrap();
            let ev = slow.map(Record::new(0, record.as_bytes()));
            if let Ok(ev) = ev {
                let other: Value = serde_json::from_str(ev.event_data).unwrap();
                assert_eq!(fast["additionalEventData"], other["additionalEventData"]);
            }
        }
    }

    #[test]
    fn serde_json_and_simd_json_paths_agree() {
        let data = crate::synth::generate(300, 11);
        let mut fast = Mapper::new("123456789012");
        let mut slow = Mapper::new("123456789012").with_parser(Parser::SerdeJson);
        let mut n = 0;
        crate::frame_all(data.as_bytes(), |rec| {
            let a = fast.map(rec).map(|e| e.event_data.to_string());
            let b = slow.map(rec).map(|e| e.event_data.to_string());
            let (a, b) = (a.unwrap(), b.unwrap());
            let (va, vb): (Value, Value) = (
                serde_json::from_str(&a).unwrap(),
                serde_json::from_str(&b).unwrap(),
            );
            assert_eq!(va, vb);
            n += 1;
        });
        assert_eq!(n, 300);
    }

    #[test]
    fn generated_records_all_convert() {
        let data = crate::synth::generate(3000, 5);
        let mut m = Mapper::new("123456789012");
        let mut rejected = Vec::new();
        crate::frame_all(data.as_bytes(), |rec| {
            if let Err(e) = m.map(rec) {
                rejected.push(e);
            }
        });
        assert!(rejected.is_empty(), "{rejected:?}");
    }
}
