//! S3 event notifications, as they arrive in SQS message bodies: which staged objects to load.
//!
//! A message holds `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
//! "s3":{"bucket":{"name":…},"object":{"key":…,"size":…,"eTag":…,"sequencer":…}}}]}`, possibly
//! several records, possibly wrapped in an SNS envelope. Keys are form-encoded (`+` for a space,
//! `%2F`); moto leaves `sequencer` out; S3 first sends an `s3:TestEvent`. A message that is none of
//! these is an error with a reason, so the caller can send it to the failure path instead of
//! letting it loop.

use serde::Deserialize;
use serde_json::Value;

/// One staged object to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// The bucket.
    pub bucket: String,
    /// The key, decoded.
    pub key: String,
    /// Size in bytes, when the notification says.
    pub size: Option<u64>,
    /// ETag, when the notification says.
    pub etag: Option<String>,
    /// S3's sequencer (orders events for one key; absent from moto's notifications).
    pub sequencer: Option<String>,
    /// Version id, on versioned buckets.
    pub version_id: Option<String>,
    /// When S3 created the object (the record's `eventTime`).
    pub event_time: Option<String>,
}

impl ObjectRef {
    /// `key` in `bucket`, with nothing known of its PUT (an object named by hand).
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
            size: None,
            etag: None,
            sequencer: None,
            version_id: None,
            event_time: None,
        }
    }

    /// What identifies this PUT of the object: S3's sequencer; without one (moto), the ETag and
    /// the event time, since a re-drop of the same bytes has the same ETag but a new time. The
    /// version id is added on versioned buckets. A redelivered message has the same identity; a
    /// re-dropped object has a new one. Only `[A-Za-z0-9._-]` appear, so it fits in an S3 key.
    pub fn put_identity(&self) -> String {
        let mut id = match (&self.sequencer, &self.etag, &self.event_time) {
            (Some(seq), _, _) => seq.clone(),
            (None, etag, time) => format!(
                "{}.{}",
                etag.as_deref().unwrap_or("noetag"),
                time.as_deref().unwrap_or("notime")
            ),
        };
        if let Some(v) = &self.version_id {
            id.push('.');
            id.push_str(v);
        }
        id.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// What one SQS message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Objects to load (creation events only; others are listed as skipped).
    Objects {
        /// The objects created.
        objects: Vec<ObjectRef>,
        /// Event names of records that were not object creations.
        skipped: Vec<String>,
    },
    /// S3's test message, sent when a notification is configured: nothing to do.
    TestEvent,
}

/// A message that is not an S3 notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The body is not JSON.
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an S3 event notification.
    #[error("message is not an S3 event notification: {0}")]
    NotS3Event(String),
    /// A record's key is not valid form-encoding.
    #[error("object key {key:?} is not valid form-encoded UTF-8")]
    BadKey {
        /// The key as received.
        key: String,
    },
}

/// An object key as S3 writes it in a notification (form-encoded: `+` for a space, `%XX` for a
/// byte); `None` when the bytes are not UTF-8.
fn form_decode(key: &str) -> Option<String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventSource")]
    event_source: Option<String>,
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    #[serde(rename = "eventTime")]
    event_time: Option<String>,
    s3: Option<S3>,
}

#[derive(Deserialize)]
struct S3 {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
    size: Option<u64>,
    #[serde(rename = "eTag")]
    etag: Option<String>,
    sequencer: Option<String>,
    #[serde(rename = "versionId")]
    version_id: Option<String>,
}

/// Reads one SQS message body.
pub fn parse(body: &str) -> Result<Notification, NotificationError> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| NotificationError::NotJson(e.to_string()))?;
    parse_value(v, 0)
}

fn parse_value(v: Value, depth: u8) -> Result<Notification, NotificationError> {
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::TestEvent);
    }
    // An SNS envelope: the S3 notification is the Message string.
    if let (Some("Notification"), Some(Value::String(inner)), 0) = (
        v.get("Type").and_then(Value::as_str),
        v.get("Message"),
        depth,
    ) {
        let inner: Value = serde_json::from_str(inner)
            .map_err(|e| NotificationError::NotJson(format!("SNS Message: {e}")))?;
        return parse_value(inner, depth + 1);
    }
    let Some(records) = v.get("Records") else {
        return Err(NotificationError::NotS3Event("no Records".into()));
    };
    let records: Vec<Record> = serde_json::from_value(records.clone())
        .map_err(|e| NotificationError::NotS3Event(format!("Records: {e}")))?;
    if records.is_empty() {
        return Err(NotificationError::NotS3Event("Records is empty".into()));
    }
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for r in records {
        if r.event_source.as_deref() != Some("aws:s3") {
            return Err(NotificationError::NotS3Event(format!(
                "eventSource is {:?}, not aws:s3",
                r.event_source.unwrap_or_default()
            )));
        }
        let name = r.event_name.unwrap_or_default();
        let Some(s3) = r.s3 else {
            return Err(NotificationError::NotS3Event(format!(
                "record {name:?} has no s3 member"
            )));
        };
        if !name.starts_with("ObjectCreated:") {
            skipped.push(name);
            continue;
        }
        let key = form_decode(&s3.object.key).ok_or_else(|| NotificationError::BadKey {
            key: s3.object.key.clone(),
        })?;
        objects.push(ObjectRef {
            bucket: s3.bucket.name,
            key,
            size: s3.object.size,
            etag: s3.object.etag.map(|e| e.trim_matches('"').to_string()),
            sequencer: s3.object.sequencer,
            version_id: s3.object.version_id,
            event_time: r.event_time,
        });
    }
    Ok(Notification::Objects { objects, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(event: &str, key: &str, sequencer: Option<&str>) -> Value {
        let mut object = json!({"key": key, "size": 1234, "eTag": "\"0123abcd\""});
        let time = if sequencer.is_some() {
            "2026-11-27T10:00:00.000Z"
        } else {
            "2026-11-27T10:00:01.500Z"
        };
        if let Some(s) = sequencer {
            object["sequencer"] = json!(s);
        }
        json!({"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
               "eventName": event, "eventTime": time,
               "s3": {"bucket": {"name": "staging"}, "object": object}})
    }

    #[test]
    fn several_records_with_form_encoded_keys() {
        let body = json!({"Records": [
            record("ObjectCreated:Put", "staged/acct/insights-activity-logs/resourceId%3D/SUBSCRIPTIONS/X/y%3D2024/h%3D01/PT1H.json.0-100", Some("0055AED6DCD90281E5")),
            record("ObjectCreated:CompleteMultipartUpload", "a+b%2Fc", None),
            record("ObjectRemoved:Delete", "gone", None),
        ]});
        let Notification::Objects { objects, skipped } = parse(&body.to_string()).unwrap() else {
            panic!("objects expected")
        };
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].key, "staged/acct/insights-activity-logs/resourceId=/SUBSCRIPTIONS/X/y=2024/h=01/PT1H.json.0-100");
        assert_eq!(objects[0].put_identity(), "0055AED6DCD90281E5");
        assert_eq!(objects[1].key, "a b/c");
        assert_eq!(objects[1].etag.as_deref(), Some("0123abcd"));
        assert_eq!(
            objects[1].put_identity(),
            "0123abcd.2026-11-27T10_00_01.500Z",
            "moto: no sequencer, the ETag and the time instead"
        );
        assert_eq!(skipped, vec!["ObjectRemoved:Delete".to_string()]);
    }

    #[test]
    fn test_events_and_sns_envelopes() {
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-27T10:00:00.000Z",
                          "Bucket": "staging", "RequestId": "R", "HostId": "H"});
        assert_eq!(parse(&test.to_string()).unwrap(), Notification::TestEvent);
        let inner = json!({"Records": [record("ObjectCreated:Put", "k", Some("1"))]});
        let sns = json!({"Type": "Notification", "MessageId": "m", "Message": inner.to_string()});
        assert!(
            matches!(parse(&sns.to_string()).unwrap(), Notification::Objects { objects, .. } if objects[0].key == "k")
        );
    }

    #[test]
    fn poison_messages_say_why() {
        assert!(matches!(
            parse("not json"),
            Err(NotificationError::NotJson(_))
        ));
        assert!(matches!(
            parse("{\"hello\":1}"),
            Err(NotificationError::NotS3Event(_))
        ));
        assert!(matches!(
            parse("{\"Records\":[]}"),
            Err(NotificationError::NotS3Event(_))
        ));
        let other = json!({"Records": [{"eventSource": "aws:sqs", "eventName": "x"}]});
        assert!(
            matches!(parse(&other.to_string()), Err(NotificationError::NotS3Event(m)) if m.contains("aws:sqs"))
        );
        let bad_key = json!({"Records": [record("ObjectCreated:Put", "bad%FFkey", None)]});
        assert!(matches!(
            parse(&bad_key.to_string()),
            Err(NotificationError::BadKey { .. })
        ));
    }
}
