//! The mapping against the corpus (`../shared/corpus`, read in place) and generated records:
//! every record maps, or is rejected for the reason the CloudTrail mapping gives; every value of
//! a mapped record is in its event (held by an attribute, checked against the event, or in
//! `unmapped`); ids, times and classes agree with the CloudTrail mapping and OCSF's rules.

use std::path::PathBuf;

use aztrail_transform::{frame_all, Mapper, Record, Source};
use proptest::prelude::*;
use serde_json::Value;

use crate::record::member_name;
use crate::value::Json;
use crate::{Class, OcsfEvent, OcsfMapper, Options};

fn corpus_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let mut out = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| {
            panic!("reading {}: {e} (is ../shared/corpus there?)", d.display())
        });
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The event's value at a dotted attribute path (`resources.0.uid`).
fn attribute<'v>(event: &'v Value, path: &str) -> Option<&'v Value> {
    let mut v = event;
    for step in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(step)?,
            Value::Array(a) => a.get(step.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn same(leaf: &Json, v: &Value) -> bool {
    match (leaf, v) {
        (Json::Str(a), Value::String(b)) => a == b,
        (Json::Num(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::Bool(a), Value::Bool(b)) => a == b,
        _ => false,
    }
}

fn leaves<'j>(v: &'j Json, path: String, out: &mut Vec<(String, &'j Json)>) {
    let join = |p: &str, n: &str| {
        if p.is_empty() {
            n.to_string()
        } else {
            format!("{p}.{n}")
        }
    };
    match v {
        Json::Obj(m) if !m.is_empty() => {
            for i in 0..m.len() {
                leaves(&m[i].1, join(&path, &member_name(m, i)), out);
            }
        }
        Json::Arr(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, join(&path, &i.to_string()), out);
            }
        }
        leaf => out.push((path, leaf)),
    }
}

/// What of `raw` the event lost: each value neither held (and found at its attribute) nor in
/// `unmapped` as written; and each claim of the ledger the event does not bear out.
fn lost(raw: &[u8], ev: &OcsfEvent) -> Vec<String> {
    let root = Json::parse(raw).expect("mapped records are JSON");
    let mut all = Vec::new();
    leaves(&root, String::new(), &mut all);
    let unmapped = ev.json.get("unmapped");
    let mut problems = Vec::new();
    for h in &ev.held {
        let Some((_, leaf)) = all.iter().find(|(p, _)| *p == h.path) else {
            problems.push(format!("held {} is no leaf of the record", h.path));
            continue;
        };
        match attribute(&ev.json, &h.attribute) {
            Some(v) if same(leaf, v) => {}
            other => problems.push(format!(
                "{} holds {} but the event has {other:?}",
                h.attribute, h.path
            )),
        }
    }
    for (path, leaf) in &all {
        if ev.held.iter().any(|h| h.path == *path) {
            continue;
        }
        let text = crate::unmapped::leaf_text(leaf);
        match unmapped.and_then(|u| u.get(path.as_str())) {
            Some(Value::String(s)) if *s == text => {}
            other => problems.push(format!(
                "{path} = {text:?} is lost (unmapped has {other:?})"
            )),
        }
    }
    problems
}

/// The OCSF rules every event keeps, whatever its source.
fn check_event(ev: &OcsfEvent) {
    let j = &ev.json;
    let num = |k: &str| {
        j.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{k} in {j}"))
    };
    assert_eq!(num("class_uid"), u64::from(ev.class.uid()));
    assert_eq!(num("category_uid"), u64::from(ev.class.category_uid()));
    assert_eq!(num("type_uid"), num("class_uid") * 100 + num("activity_id"));
    assert!([0, 1, 2, 3, 4, 5, 6, 99].contains(&num("severity_id")));
    assert_eq!(j["metadata"]["version"], "1.1.0");
    assert_eq!(j["metadata"]["product"]["vendor_name"], "Microsoft");
    assert_eq!(j["metadata"]["uid"], ev.uid.as_str());
    assert_eq!(j["time"], ev.time_ms);
    assert_eq!(j["cloud"]["provider"], "Azure");
    match ev.class {
        Class::Authentication => assert!(j["user"].is_object(), "{j}"),
        Class::AccountChange => assert!(j["user"].is_object(), "{j}"),
        Class::EntityManagement => assert!(j["entity"].is_object(), "{j}"),
        Class::ApiActivity => {
            assert!(j["api"]["operation"].is_string(), "{j}");
            assert!(
                j["actor"].is_object() && j["src_endpoint"].is_object(),
                "{j}"
            );
        }
    }
}

#[test]
fn every_corpus_record_maps_losslessly_or_is_rejected_as_for_cloudtrail() {
    let files = corpus_files();
    assert!(
        files.len() >= 40,
        "the corpus looks incomplete: {}",
        files.len()
    );
    let mut ocsf = OcsfMapper::new(Options::default());
    let mut ct = Mapper::new("123456789012");
    let (mut mapped, mut rejected) = (0, 0);
    let mut classes = std::collections::BTreeMap::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("corpus file");
        let source = Source {
            bucket: None,
            key: path.display().to_string(),
        };
        ocsf.set_source(&source);
        ct.set_source(&source);
        frame_all(&bytes, |rec: Record<'_>| {
            let theirs = ct.map(rec).map(|m| (m.id.to_string(), m.event_time_ms));
            match (ocsf.map(rec), theirs) {
                (Ok(ev), Ok((id, time_ms))) => {
                    assert_eq!(ev.uid, id, "{} at {}", path.display(), rec.offset);
                    assert_eq!(ev.time_ms, time_ms, "{} at {}", path.display(), rec.offset);
                    check_event(&ev);
                    let problems = lost(rec.bytes, &ev);
                    assert!(
                        problems.is_empty(),
                        "{} at {}: {problems:#?}\n{}",
                        path.display(),
                        rec.offset,
                        ev.json
                    );
                    *classes.entry(ev.class).or_insert(0) += 1;
                    mapped += 1;
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a.code(), b.code(), "{} at {}", path.display(), rec.offset);
                    rejected += 1;
                }
                (a, b) => panic!(
                    "{} at {}: OCSF {:?}, CloudTrail {:?}",
                    path.display(),
                    rec.offset,
                    a.map(|e| e.json),
                    b
                ),
            }
        });
    }
    assert!(mapped > 100, "{mapped} mapped");
    // The corpus holds no user lifecycle, password or MFA change: Account Change is checked on
    // hand-built records below.
    for class in [
        Class::Authentication,
        Class::EntityManagement,
        Class::ApiActivity,
    ] {
        assert!(
            classes.get(&class).copied().unwrap_or(0) > 0,
            "no {class:?} in {classes:?}"
        );
    }
    eprintln!("{mapped} mapped, {rejected} rejected, by class {classes:?}");
}

#[test]
fn sign_ins_audits_and_activity_land_in_their_classes() {
    let m = OcsfMapper::new(Options::default());
    let map = |s: &str| m.map(Record::new(0, s.as_bytes())).expect("maps");
    let sign_in = map(
        r#"{"time":"2024-01-02T03:04:05.678Z","category":"SignInLogs","resultType":"50126","properties":{"userPrincipalName":"a@b.c","authenticationRequirement":"multiFactorAuthentication","status":{"errorCode":50126,"failureReason":"Invalid password"},"ipAddress":"10.0.0.1"}}"#,
    );
    assert_eq!(sign_in.class, Class::Authentication);
    assert_eq!(sign_in.json["status_id"], 2);
    assert_eq!(sign_in.json["is_mfa"], true);
    assert_eq!(sign_in.json["status_detail"], "Invalid password");
    assert_eq!(sign_in.json["time"], 1704164645678i64);
    assert_eq!(sign_in.day, 20240102);
    let reset = map(
        r#"{"time":"2024-01-02T03:04:05Z","category":"AuditLogs","properties":{"activityDisplayName":"Reset user password","result":"success","targetResources":[{"id":"u1","userPrincipalName":"x@y.z","type":"User"}]}}"#,
    );
    assert_eq!(reset.class, Class::AccountChange);
    assert_eq!(reset.json["type_uid"], 300104);
    assert_eq!(reset.json["user"]["name"], "x@y.z");
    let group = map(
        r#"{"time":"2024-01-02T03:04:05Z","category":"AuditLogs","properties":{"activityDisplayName":"Add member to group","operationType":"Assign","targetResources":[{"id":"g1","displayName":"Admins","type":"Group"}]}}"#,
    );
    assert_eq!(group.class, Class::EntityManagement);
    assert_eq!(group.json["entity"]["type"], "Group");
    assert_eq!(group.json["activity_id"], 3);
    let write = map(
        r#"{"time":"2024-01-02T03:04:05Z","category":"Administrative","operationName":"MICROSOFT.COMPUTE/VIRTUALMACHINES/DELETE","resultType":"Success","level":"Warning","resourceId":"/subscriptions/s1/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v","callerIpAddress":"1.2.3.4","caller":"a@b.c"}"#,
    );
    assert_eq!(write.class, Class::ApiActivity);
    assert_eq!(write.json["activity_id"], 4);
    assert_eq!(write.json["severity_id"], 3);
    assert_eq!(write.json["cloud"]["account"]["uid"], "s1");
    assert_eq!(write.json["unmapped"]["level"], "Warning");
}

#[test]
fn raw_data_holds_the_record_when_asked() {
    let raw =
        r#"{"time":"2024-01-02T03:04:05Z","category":"Administrative","operationName":"X/Y/READ"}"#;
    let with = OcsfMapper::new(Options { raw_data: true })
        .map(Record::new(0, raw.as_bytes()))
        .expect("maps");
    assert_eq!(with.json["raw_data"], raw);
    let without = OcsfMapper::new(Options::default())
        .map(Record::new(0, raw.as_bytes()))
        .expect("maps");
    assert!(without.json.get("raw_data").is_none());
}

/// An arbitrary JSON value a few levels deep, with names that repeat and need escaping.
fn any_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|n| Json::Num(n.into())),
        "[a-z\"\\\\. é]{0,12}".prop_map(Json::Str),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Arr),
            proptest::collection::vec(("(a|b|time|caller|[a-zA-Z.]{1,6})", inner), 0..4)
                .prop_map(Json::Obj),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A generated record with arbitrary members added anywhere loses nothing.
    #[test]
    fn generated_records_with_arbitrary_members_lose_nothing(
        seed in any::<u64>(),
        extra in proptest::collection::vec(("[a-zA-Z]{1,8}", any_json()), 0..4),
        into_properties in any::<bool>(),
    ) {
        let mut line = String::new();
        aztrail_transform::synth::Generator::new(seed).record(&mut line);
        let Json::Obj(mut members) = Json::parse(line.trim().as_bytes()).expect("synth is JSON") else {
            panic!("synth writes objects")
        };
        if into_properties {
            if let Some((_, Json::Obj(props))) = members.iter_mut().find(|(k, _)| k == "properties") {
                props.extend(extra);
            } else {
                members.extend(extra);
            }
        } else {
            members.extend(extra);
        }
        let raw = Json::Obj(members).to_json();
        let m = OcsfMapper::new(Options::default());
        match m.map(Record::new(0, raw.as_bytes())) {
            Ok(ev) => {
                check_event(&ev);
                let problems = lost(raw.as_bytes(), &ev);
                prop_assert!(problems.is_empty(), "{:#?}\n{}\n{}", problems, raw, ev.json);
            }
            Err(e) => {
                // Only what the CloudTrail mapping rejects too.
                let mut ct = Mapper::new("123456789012");
                prop_assert!(ct.map(Record::new(0, raw.as_bytes())).is_err(), "{e}: {raw}");
            }
        }
    }
}
