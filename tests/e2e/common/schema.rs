//! A check of PutAuditEvents entries against DESIGN.md's "Output" section, written from the
//! document and not from the mapper's code, so that it can catch the mapper's mistakes.

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Checks one serialized entry (`{"id","eventData"}`, with `eventDataChecksum` or without);
/// returns the parsed `eventData` or every problem found.
pub fn check_entry(entry: &[u8], account: &str) -> Result<Value, Vec<String>> {
    let mut problems = Vec::new();
    let v: Value = match serde_json::from_slice(entry) {
        Ok(v) => v,
        Err(e) => return Err(vec![format!("entry is not JSON: {e}")]),
    };
    let Some(obj) = v.as_object() else {
        return Err(vec!["entry is not an object".into()]);
    };
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    for k in &keys {
        if !["id", "eventData", "eventDataChecksum"].contains(k) {
            problems.push(format!("unexpected entry member {k}"));
        }
    }
    let id = obj.get("id").and_then(Value::as_str).unwrap_or_default();
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        problems.push(format!("id {id:?} breaks 1..128 of [-_A-Za-z0-9]"));
    }
    let Some(data) = obj.get("eventData").and_then(Value::as_str) else {
        problems.push("eventData missing or not a string".into());
        return Err(problems);
    };
    // Optional; when it is there, it must be right.
    if let Some(checksum) = obj.get("eventDataChecksum") {
        let want =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data.as_bytes()));
        if checksum.as_str() != Some(want.as_str()) {
            problems.push(format!(
                "eventDataChecksum {checksum} is not base64 SHA-256 of eventData ({want})"
            ));
        }
    }
    if entry.len() + 20 > 1_000_000 {
        problems.push(format!(
            "entry of {} bytes cannot fit a 1 MB request",
            entry.len()
        ));
    }
    let ed: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("eventData is not JSON: {e}"));
            return Err(problems);
        }
    };
    check_event_data(&ed, account, &mut problems);
    if ed.get("UID").and_then(Value::as_str) != Some(id) {
        problems.push("UID differs from id".into());
    }
    if problems.is_empty() {
        Ok(ed)
    } else {
        Err(problems)
    }
}

fn str_field<'a>(
    v: &'a Value,
    name: &str,
    max: usize,
    required: bool,
    problems: &mut Vec<String>,
) -> Option<&'a str> {
    match v.get(name) {
        None if required => {
            problems.push(format!("required field {name} missing"));
            None
        }
        None => None,
        Some(Value::String(s)) => {
            if s.chars().count() > max {
                problems.push(format!(
                    "{name} is {} characters, over {max}",
                    s.chars().count()
                ));
            }
            if required && s.is_empty() {
                problems.push(format!("{name} is empty"));
            }
            Some(s)
        }
        Some(other) => {
            problems.push(format!("{name} is not a string: {other}"));
            None
        }
    }
}

fn json_field(v: &Value, name: &str, max: usize, problems: &mut Vec<String>) {
    if let Some(x) = v.get(name) {
        if !x.is_object() {
            problems.push(format!("{name} is not a JSON object"));
        }
        let size = serde_json::to_string(x)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if size > max {
            problems.push(format!("{name} is {size} bytes, over {max}"));
        }
    }
}

fn check_event_data(ed: &Value, account: &str, problems: &mut Vec<String>) {
    if !ed.is_object() {
        problems.push("eventData is not an object".into());
        return;
    }
    const KNOWN: &[&str] = &[
        "version",
        "userIdentity",
        "userAgent",
        "eventSource",
        "eventName",
        "eventTime",
        "UID",
        "requestParameters",
        "responseElements",
        "errorCode",
        "errorMessage",
        "sourceIPAddress",
        "recipientAccountId",
        "additionalEventData",
    ];
    for k in ed.as_object().into_iter().flat_map(|o| o.keys()) {
        if !KNOWN.contains(&k.as_str()) {
            problems.push(format!(
                "eventData has a field the schema does not know: {k}"
            ));
        }
    }
    str_field(ed, "version", 256, true, problems);
    match ed.get("userIdentity") {
        Some(ui @ Value::Object(_)) => {
            str_field(ui, "type", 128, true, problems);
            str_field(ui, "principalId", 1024, true, problems);
            if let Some(d) = ui.get("details") {
                if !d.is_object() {
                    problems.push("userIdentity.details is not a JSON object".into());
                }
            }
        }
        _ => problems.push("userIdentity missing or not an object".into()),
    }
    str_field(ed, "userAgent", 1024, false, problems);
    str_field(ed, "eventSource", 1024, true, problems);
    str_field(ed, "eventName", 1024, true, problems);
    if let Some(t) = str_field(ed, "eventTime", 20, true, problems) {
        let b = t.as_bytes();
        let shape = b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            });
        if !shape {
            problems.push(format!("eventTime {t:?} is not yyyy-MM-ddTHH:mm:ssZ"));
        }
    }
    str_field(ed, "UID", 1024, true, problems);
    json_field(ed, "requestParameters", 100_000, problems);
    json_field(ed, "responseElements", 100_000, problems);
    json_field(ed, "additionalEventData", 28_000, problems);
    str_field(ed, "errorCode", 256, false, problems);
    str_field(ed, "errorMessage", 256, false, problems);
    if ed.get("errorMessage").is_some() && ed.get("errorCode").is_none() {
        problems.push("errorMessage without errorCode".into());
    }
    if let Some(ip) = str_field(ed, "sourceIPAddress", 64, false, problems) {
        if ip.parse::<std::net::IpAddr>().is_err() {
            problems.push(format!(
                "sourceIPAddress {ip:?} is not a valid IPv4 or IPv6 address"
            ));
        }
    }
    if let Some(r) = str_field(ed, "recipientAccountId", 12, true, problems) {
        if r != account {
            problems.push(format!(
                "recipientAccountId {r} is not the channel's account {account}"
            ));
        }
    }
    // errorCode only when the operation failed: never for Success, Start or Accept.
    let result = ed
        .pointer("/additionalEventData/resultType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if ed.get("errorCode").is_some()
        && [
            "success",
            "succeeded",
            "start",
            "started",
            "accept",
            "accepted",
        ]
        .contains(&result.to_ascii_lowercase().as_str())
    {
        problems.push(format!(
            "errorCode on an operation whose resultType is {result}"
        ));
    }
}
