//! The checks CloudTrail Lake makes on each event of a PutAuditEvents call.
//!
//! Written from DESIGN.md's "Output" section (the service's documented limits), not from what
//! `aztrail-transform` produces, so that the stand-in catches the mapper's mistakes. Sizes are read
//! the lenient way (1 kB = 1024 bytes), so anything rejected here would be rejected by the real
//! service under either reading.

use base64::Engine as _;
use serde_json::{Map, Value};
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

/// Checks one event; returns its parsed `eventData` when it would be accepted.
pub fn check_event(
    event_data: &str,
    checksum: Option<&str>,
    channel_account: &str,
) -> Result<Map<String, Value>, Failure> {
    if let Some(sum) = checksum {
        let want = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(event_data));
        if sum != want {
            return Err((
                EventError::InvalidChecksum,
                "eventDataChecksum is not the base64 SHA-256 of eventData".into(),
            ));
        }
    }
    let data: Value = serde_json::from_str(event_data).map_err(|e| {
        (
            EventError::InvalidData,
            format!("eventData is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(data) = data else {
        return Err((
            EventError::InvalidData,
            "eventData is not a JSON object".into(),
        ));
    };

    let ui = match data.get("userIdentity") {
        Some(Value::Object(ui)) => ui,
        Some(_) => return Err(invalid("userIdentity", "is not a JSON object")),
        None => return Err(not_found("userIdentity")),
    };
    required_str(&data, "version", 256)?;
    required_str(ui, "type", 128)
        .map_err(|(c, m)| (c, m.replace("Field type", "Field userIdentity.type")))?;
    required_str(ui, "principalId", 1024).map_err(|(c, m)| {
        (
            c,
            m.replace("Field principalId", "Field userIdentity.principalId"),
        )
    })?;
    if let Some(d) = ui.get("details") {
        if !d.is_object() {
            return Err(invalid("userIdentity.details", "is not a JSON object"));
        }
    }
    optional_str(&data, "userAgent", 1024)?;
    required_str(&data, "eventSource", 1024)?;
    required_str(&data, "eventName", 1024)?;
    let time = required_str(&data, "eventTime", 1024)?;
    if !is_event_time(time) {
        return Err(invalid(
            "eventTime",
            "is not a UTC time of the form yyyy-MM-ddTHH:mm:ssZ",
        ));
    }
    required_str(&data, "UID", 1024)?;
    json_object(&data, "requestParameters", 100 * KB)?;
    json_object(&data, "responseElements", 100 * KB)?;
    json_object(&data, "additionalEventData", 28 * KB)?;
    optional_str(&data, "errorCode", 256)?;
    optional_str(&data, "errorMessage", 256)?;
    if let Some(ip) = optional_str(&data, "sourceIPAddress", 1024)? {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                "sourceIPAddress",
                "is not a valid IPv4 or IPv6 address",
            ));
        }
    }
    let recipient = required_str(&data, "recipientAccountId", 1024)?;
    if recipient != channel_account {
        return Err((
            EventError::InvalidRecipient,
            format!("recipientAccountId {recipient} is not the channel owner's account"),
        ));
    }
    Ok(data)
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

fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<&'a str>, Failure> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
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
        Some(_) => Err(invalid(field, "is not a string")),
    }
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<&'a str, Failure> {
    match optional_str(obj, field, max)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(not_found(field)),
    }
}

fn json_object(obj: &Map<String, Value>, field: &str, max: usize) -> Result<(), Failure> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v @ Value::Object(_)) => {
            let size = serde_json::to_string(v)
                .map(|s| s.len())
                .unwrap_or(usize::MAX);
            if size > max {
                Err((
                    EventError::FieldTooLong,
                    format!("Field {field} is {size} bytes, more than {max}"),
                ))
            } else {
                Ok(())
            }
        }
        Some(_) => Err(invalid(field, "is not a JSON object")),
    }
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
    use serde_json::json;

    fn event() -> Value {
        json!({"version": "1.0", "userIdentity": {"type": "User", "principalId": "p"},
               "eventSource": "S", "eventName": "N", "eventTime": "2024-01-01T00:00:00Z",
               "UID": "u", "recipientAccountId": "123456789012"})
    }

    fn check(v: &Value) -> Result<Map<String, Value>, Failure> {
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
