//! The checks CloudTrail Lake makes on each event of a PutAuditEvents call.
//!
//! Written from DESIGN.md's "Output" section (the service's documented limits), not from what
//! `aztrail-transform` produces, so that the stand-in catches the mapper's mistakes. Sizes are read
//! the lenient way (1 kB = 1024 bytes), so anything rejected here would be rejected by the real
//! service under either reading.

use std::borrow::Cow;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Per-event error codes, as in `failed[].errorCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    /// A field is longer than its limit.
    FieldTooLong,
    /// A required field is missing.
    FieldNotFound,
    /// `eventDataChecksum` does not match `eventData`.
    InvalidChecksum,
    /// A field holds a value of the wrong form.
    InvalidData,
    /// `recipientAccountId` is not the channel owner's account.
    InvalidRecipient,
    /// The event was throttled; retry it.
    Throttling,
    /// The service failed; retry it.
    InternalFailure,
}

impl EventError {
    /// The code as the API spells it.
    pub fn code(self) -> &'static str {
        match self {
            EventError::FieldTooLong => "FieldTooLong",
            EventError::FieldNotFound => "FieldNotFound",
            EventError::InvalidChecksum => "InvalidChecksum",
            EventError::InvalidData => "InvalidData",
            EventError::InvalidRecipient => "InvalidRecipient",
            EventError::Throttling => "Throttling",
            EventError::InternalFailure => "InternalFailure",
        }
    }
}

/// What is wrong with one event.
pub type Failure = (EventError, String);

const KB: usize = 1024;

/// The deepest `eventData` the lake stores: far within what its queries read (SQLite's JSON
/// functions take 1,000 levels), and far above what the mapping writes (its values nest at most
/// `aztrail_transform::limits::MAX_VALUE_DEPTH`, 32, below their place in the event).
pub const MAX_EVENT_DEPTH: usize = 100;

/// The fields of `eventData` that are checked, borrowed from the event's text; the nested JSON
/// documents stay unparsed (only their form and size matter here).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventData<'a> {
    #[serde(borrow)]
    version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(rename = "UID", borrow)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request_parameters: Option<&'a RawValue>,
    #[serde(borrow)]
    response_elements: Option<&'a RawValue>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_message: Option<Cow<'a, str>>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    additional_event_data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    details: Option<&'a RawValue>,
}

/// The fields of an accepted event that the store indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// `eventSource`.
    pub event_source: String,
    /// `eventName`.
    pub event_name: String,
    /// `eventTime`.
    pub event_time: String,
}

/// Checks one event; returns what the store indexes when it would be accepted.
pub fn check_event(
    event_data: &str,
    checksum: Option<&str>,
    channel_account: &str,
) -> Result<Accepted, Failure> {
    if let Some(sum) = checksum {
        let want = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(event_data));
        if sum != want {
            return Err((
                EventError::InvalidChecksum,
                "eventDataChecksum is not the base64 SHA-256 of eventData".into(),
            ));
        }
    }
    if !event_data.trim_start().starts_with('{') {
        return Err((
            EventError::InvalidData,
            "eventData is not a JSON object".into(),
        ));
    }
    if aztrail_transform::json::nests_deeper_than(event_data.as_bytes(), MAX_EVENT_DEPTH) {
        // Stored, it could not be queried: SQLite's JSON functions stop at 1,000 levels, and
        // a query that meets one such event fails whole.
        return Err((
            EventError::InvalidData,
            format!("eventData nests deeper than {MAX_EVENT_DEPTH} levels"),
        ));
    }
    let data: EventData<'_> = serde_json::from_str(event_data).map_err(|e| {
        (
            EventError::InvalidData,
            format!("eventData is not valid: {e}"),
        )
    })?;

    let Some(ui) = &data.user_identity else {
        return Err(not_found("userIdentity"));
    };
    required(&data.version, "version", 256)?;
    required(&ui.kind, "userIdentity.type", 128)?;
    required(&ui.principal_id, "userIdentity.principalId", 1024)?;
    json_object(ui.details, "userIdentity.details", usize::MAX)?;
    optional(&data.user_agent, "userAgent", 1024)?;
    required(&data.event_source, "eventSource", 1024)?;
    required(&data.event_name, "eventName", 1024)?;
    let time = required(&data.event_time, "eventTime", 1024)?;
    if !is_event_time(time) {
        return Err(invalid(
            "eventTime",
            "is not a UTC time of the form yyyy-MM-ddTHH:mm:ssZ",
        ));
    }
    required(&data.uid, "UID", 1024)?;
    json_object(data.request_parameters, "requestParameters", 100 * KB)?;
    json_object(data.response_elements, "responseElements", 100 * KB)?;
    json_object(data.additional_event_data, "additionalEventData", 28 * KB)?;
    optional(&data.error_code, "errorCode", 256)?;
    optional(&data.error_message, "errorMessage", 256)?;
    if let Some(ip) = optional(&data.source_ip_address, "sourceIPAddress", 1024)? {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                "sourceIPAddress",
                "is not a valid IPv4 or IPv6 address",
            ));
        }
    }
    let recipient = required(&data.recipient_account_id, "recipientAccountId", 1024)?;
    if recipient != channel_account {
        return Err((
            EventError::InvalidRecipient,
            format!("recipientAccountId {recipient} is not the channel owner's account"),
        ));
    }
    Ok(Accepted {
        event_source: required(&data.event_source, "eventSource", 1024)?.to_string(),
        event_name: required(&data.event_name, "eventName", 1024)?.to_string(),
        event_time: time.to_string(),
    })
}

fn optional<'a>(
    v: &'a Option<Cow<'_, str>>,
    field: &str,
    max: usize,
) -> Result<Option<&'a str>, Failure> {
    match v {
        None => Ok(None),
        Some(s) => {
            let n = s.chars().count();
            if n > max {
                Err((
                    EventError::FieldTooLong,
                    format!("Field {field} is {n} characters, longer than {max}"),
                ))
            } else {
                Ok(Some(s))
            }
        }
    }
}

fn required<'a>(v: &'a Option<Cow<'_, str>>, field: &str, max: usize) -> Result<&'a str, Failure> {
    match optional(v, field, max)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(not_found(field)),
    }
}

fn json_object(v: Option<&RawValue>, field: &str, max: usize) -> Result<(), Failure> {
    let Some(raw) = v else { return Ok(()) };
    let text = raw.get();
    if text == "null" {
        return Ok(());
    }
    if !text.starts_with('{') {
        return Err(invalid(field, "is not a JSON object"));
    }
    if text.len() > max {
        return Err((
            EventError::FieldTooLong,
            format!("Field {field} is {} bytes, more than {max}", text.len()),
        ));
    }
    Ok(())
}

fn not_found(field: &str) -> Failure {
    (
        EventError::FieldNotFound,
        format!("Field {field} not found"),
    )
}

fn invalid(field: &str, what: &str) -> Failure {
    (EventError::InvalidData, format!("Field {field} {what}"))
}

/// `yyyy-MM-ddTHH:mm:ssZ` with a real date and time.
fn is_event_time(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() != 20 {
        return false;
    }
    let shape = b.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b'T',
        13 | 16 => *c == b':',
        19 => *c == b'Z',
        _ => c.is_ascii_digit(),
    });
    shape && aztrail_transform::time::parse_time(t).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn event() -> Value {
        json!({"version": "1.0", "userIdentity": {"type": "User", "principalId": "p"},
               "eventSource": "S", "eventName": "N", "eventTime": "2024-01-01T00:00:00Z",
               "UID": "u", "recipientAccountId": "123456789012"})
    }

    fn check(v: &Value) -> Result<Accepted, Failure> {
        check_event(&v.to_string(), None, "123456789012")
    }

    #[test]
    fn accepts_a_minimal_event_and_checks_the_checksum() {
        assert!(check(&event()).is_ok());
        let s = event().to_string();
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&s));
        assert!(check_event(&s, Some(&sum), "123456789012").is_ok());
        assert_eq!(
            check_event(&s, Some("AAAA"), "123456789012").unwrap_err().0,
            EventError::InvalidChecksum
        );
    }

    #[test]
    fn an_event_too_deep_to_query_is_refused_not_stored() {
        let mut ok = event().to_string();
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        ok.insert_str(
            ok.len() - 1,
            &format!(",\"additionalEventData\":{{\"x\":{}}}", nested(90)),
        );
        assert!(check_event(&ok, None, "123456789012").is_ok());
        let mut deep = event().to_string();
        deep.insert_str(
            deep.len() - 1,
            &format!(",\"additionalEventData\":{{\"x\":{}}}", nested(1500)),
        );
        let (code, why) = check_event(&deep, None, "123456789012").unwrap_err();
        assert_eq!(code, EventError::InvalidData);
        assert!(why.contains("deeper than 100"), "{why}");
    }

    #[test]
    fn each_rule_has_its_code() {
        let cases: Vec<(&str, Value, EventError)> = vec![
            ("/UID", Value::Null, EventError::FieldNotFound),
            (
                "/userIdentity/principalId",
                json!(""),
                EventError::FieldNotFound,
            ),
            (
                "/eventName",
                json!("x".repeat(1025)),
                EventError::FieldTooLong,
            ),
            (
                "/userIdentity/type",
                json!("t".repeat(129)),
                EventError::FieldTooLong,
            ),
            (
                "/errorCode",
                json!("e".repeat(257)),
                EventError::FieldTooLong,
            ),
            (
                "/additionalEventData",
                json!({"a": "b".repeat(28 * 1024)}),
                EventError::FieldTooLong,
            ),
            (
                "/eventTime",
                json!("2024-01-01T00:00:00.5Z"),
                EventError::InvalidData,
            ),
            (
                "/eventTime",
                json!("2024-02-30T00:00:00Z"),
                EventError::InvalidData,
            ),
            ("/sourceIPAddress", json!("<null>"), EventError::InvalidData),
            ("/requestParameters", json!("text"), EventError::InvalidData),
            (
                "/recipientAccountId",
                json!("000000000000"),
                EventError::InvalidRecipient,
            ),
        ];
        for (path, value, want) in cases {
            let mut v = event();
            let (parent, key) = path.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut v
            } else {
                v.pointer_mut(parent).unwrap()
            };
            if value.is_null() {
                target.as_object_mut().unwrap().remove(key);
            } else {
                target[key] = value;
            }
            assert_eq!(check(&v).unwrap_err().0, want, "{path}");
        }
        assert_eq!(
            check_event("[1]", None, "1").unwrap_err().0,
            EventError::InvalidData
        );
    }
}
