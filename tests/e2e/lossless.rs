//! Generated records lose no value either: whatever extra fields, identities, caller addresses,
//! request bodies and time stamps a record carries, each of its values is found in its event (or
//! listed as cut), checked with the same test as the corpus (`common::lossless`).

use crate::common;

use aztrail_transform::{Mapper, Record, Source};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "[ -~]{0,40}".prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn record() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9]{0,10}", value(), 0..5),
        prop::sample::select(vec![
            "10.1.2.3",
            "0.0.0.0",
            "<null>",
            "10.1.2.3:443",
            "2001:db8::1",
            "masked",
        ]),
        prop::collection::btree_map("[a-z/:.]{1,30}", "[ -~]{0,20}", 0..4),
        prop::sample::select(vec!["time", "timeStamp", "eventTimestamp", "TIME"]),
        0u32..1_000_000,
        any::<bool>(),
    )
        .prop_map(|(extra, ip, claims, time_key, frac, body)| {
            let mut r = Map::new();
            r.insert(
                time_key.into(),
                json!(format!("2026-11-30T10:00:00.{frac:06}Z")),
            );
            r.insert(
                "operationName".into(),
                json!("MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"),
            );
            r.insert("category".into(), json!("Administrative"));
            r.insert("resultType".into(), json!("Success"));
            r.insert("callerIpAddress".into(), json!(ip));
            r.insert(
                "identity".into(),
                json!({"claims": claims, "authorization": {"evidence": {
                    "roleAssignmentId": "0f5e", "roleDefinitionId": "8e3a", "role": "Owner"}}}),
            );
            let mut props = Map::new();
            if body {
                props.insert(
                    "requestbody".into(),
                    json!(r#"{"n":123456789012345678901234567890,"k":1,"k":2}"#),
                );
            }
            props.insert("statusCode".into(), json!("Created"));
            r.insert("properties".into(), Value::Object(props));
            for (k, v) in extra {
                r.entry(k).or_insert(v);
            }
            Value::Object(r)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_records_lose_nothing(record in record()) {
        let text = record.to_string();
        // Compared as read back from its own text, as the corpus is: both sides then go
        // through the same float parser from the same digits.
        let record: Value = serde_json::from_str(&text).expect("JSON");
        let mut mapper = Mapper::new("123456789012");
        mapper.set_source(&Source { bucket: Some("b".into()), key: "k".into() });
        let ev = mapper.map(Record::new(0, text.as_bytes())).expect("maps");
        let event_data = ev.event_data();
        let event: Value = serde_json::from_str(&event_data).expect("eventData is JSON");
        let lost = common::lossless::lost_values(&record, &event);
        prop_assert!(lost.is_empty(), "lost {lost:?}\nrecord {text}\nevent {event_data}");
    }
}

/// Numbers and repeated keys of a request body are kept as written, which a test through
/// serde_json values cannot see (it rounds both sides alike).
#[test]
fn request_bodies_keep_every_digit_and_repeated_key() {
    let record = r#"{"time":"2026-11-30T10:00:00Z","operationName":"Microsoft.Web/sites/write","category":"Administrative","properties":{"requestbody":"{\"n\":123456789012345678901234567890,\"k\":1,\"k\":2}"},"count":123456789012345678901234567890}"#;
    let mut mapper = Mapper::new("123456789012");
    let event_data = mapper
        .map(Record::new(0, record.as_bytes()))
        .expect("maps")
        .event_data();
    assert!(
        event_data
            .contains(r#""requestParameters":{"n":123456789012345678901234567890,"k":1,"k":2}"#),
        "{event_data}"
    );
    assert!(
        event_data.contains(r#""count":123456789012345678901234567890"#),
        "{event_data}"
    );
}
