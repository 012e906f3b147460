//! Every record of `../shared/corpus` (real Azure records written by others, read in place)
//! either converts into an event that passes the schema check written from DESIGN.md, or is
//! rejected with a stated reason. Then the mapping rules are checked record by record against
//! what the raw record says.

use crate::common;

use std::collections::BTreeMap;

use aztrail_transform::{Framer, Mapper, Source};
use serde_json::Value;
use sha2::{Digest, Sha256};

const ACCOUNT: &str = "123456789012";

struct Outcome {
    file: String,
    raw: Vec<u8>,
    result: Result<(Value, Vec<u8>), (String, String)>,
}

fn run_corpus() -> Vec<Outcome> {
    // With checksums, so that the schema check verifies one on every record of the corpus (the
    // entries without, the default, are checked by cli_transform and the loader's tests).
    let mut mapper = Mapper::new(ACCOUNT).with_checksum(true);
    let mut out = Vec::new();
    let files = common::corpus_files();
    assert!(
        files.len() >= 40,
        "the corpus looks incomplete: {} files",
        files.len()
    );
    for path in files {
        let name = path
            .strip_prefix(common::corpus_dir())
            .unwrap_or(&path)
            .display()
            .to_string();
        let bytes = std::fs::read(&path).unwrap();
        mapper.set_source(&Source {
            bucket: Some("staging".into()),
            key: name.clone(),
        });
        // Framed as `aztrail transform` and the loaders frame: each record's SHA-256 (its UID,
        // checked against sha2 below) computed by the framer, many at once, where the CPU can.
        Framer::new().with_digests().frame_whole(&bytes, |rec| {
            let result = match mapper.map(rec) {
                Ok(ev) => {
                    let mut entry = Vec::new();
                    ev.write_entry(&mut entry);
                    assert_eq!(entry.len(), ev.entry_len(), "entry_len is exact");
                    match common::schema::check_entry(&entry, ACCOUNT) {
                        Ok(ed) => Ok((ed, entry)),
                        Err(problems) => panic!(
                            "{name} at {}: event breaks the schema: {problems:#?}\n{}",
                            rec.offset,
                            String::from_utf8_lossy(&entry)
                        ),
                    }
                }
                Err(rej) => Err((rej.code().to_string(), rej.to_string())),
            };
            out.push(Outcome {
                file: name.clone(),
                raw: rec.bytes.to_vec(),
                result,
            });
        });
    }
    out
}

#[test]
fn every_record_converts_or_is_rejected_with_a_reason() {
    let outcomes = run_corpus();
    let mut per_file: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        let e = per_file.entry(&o.file).or_default();
        match &o.result {
            Ok(_) => e.0 += 1,
            Err((code, reason)) => {
                e.1 += 1;
                assert!(
                    !code.is_empty() && reason.len() > 10,
                    "{}: empty reason",
                    o.file
                );
                *reasons.entry(code.clone()).or_default() += 1;
            }
        }
    }
    let converted = outcomes.iter().filter(|o| o.result.is_ok()).count();
    println!("{:<90} {:>9} {:>8}", "file", "converted", "rejected");
    for (f, (c, r)) in &per_file {
        println!("{f:<90} {c:>9} {r:>8}");
    }
    println!(
        "total: {} records, {converted} converted, rejected by reason: {reasons:?}",
        outcomes.len()
    );
    // Most of the corpus is real exports; only stubs and non-export formats may be rejected.
    assert!(
        converted * 10 >= outcomes.len() * 8,
        "{converted} of {} converted",
        outcomes.len()
    );
}

/// No value of a converted record is lost: each is in its event, or listed as cut.
#[test]
fn every_value_of_every_record_reaches_its_event() {
    let mut checked = 0;
    let mut losses = Vec::new();
    for o in run_corpus() {
        let Ok((event, _)) = &o.result else { continue };
        let record: Value = serde_json::from_slice(&o.raw).expect("a converted record is JSON");
        checked += 1;
        for (path, value) in common::lossless::lost_values(&record, event) {
            losses.push(format!("{}: {path} = {value}", o.file));
        }
    }
    assert!(checked >= 100, "only {checked} records converted");
    assert!(
        losses.is_empty(),
        "{} values lost, first: {:#?}",
        losses.len(),
        &losses[..losses.len().min(25)]
    );
}

/// A rejected record really has no usable time (or is not an export at all).
#[test]
fn rejections_are_justified() {
    for o in run_corpus() {
        let Err((code, reason)) = &o.result else {
            continue;
        };
        let v: Value = serde_json::from_slice(&o.raw).unwrap_or(Value::Null);
        match code.as_str() {
            "NoEventTime" => {
                for key in ["time", "createdDateTime"] {
                    if let Some(Value::String(t)) = v.get(key) {
                        assert!(
                            !t.chars().any(|c| c.is_ascii_digit()),
                            "{}: rejected ({reason}) although {key} is {t:?}",
                            o.file
                        );
                    }
                }
            }
            "UnsupportedFormat" => {
                assert!(v.get("TimeGenerated").is_some() || v.get("OperationNameValue").is_some())
            }
            "InvalidJson" | "NotAnObject" => assert!(!v.is_object(), "{}: {reason}", o.file),
            other => panic!("{}: unexpected rejection {other}: {reason}", o.file),
        }
    }
}

fn lookup<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[test]
fn mapping_rules_hold_on_every_converted_record() {
    for o in run_corpus() {
        let Ok((ed, _)) = &o.result else { continue };
        let raw: Value = serde_json::from_slice(&o.raw).unwrap();
        let ctx = format!(
            "{} record {}",
            o.file,
            String::from_utf8_lossy(&o.raw[..o.raw.len().min(120)])
        );

        // UID and id: hex SHA-256 of the raw record.
        let uid = format!("{:x}", Sha256::digest(&o.raw));
        assert_eq!(ed["UID"], uid.as_str(), "{ctx}");

        // eventName: operationName in upper case; eventSource: its provider namespace.
        if let Some(Value::String(op)) = lookup(&raw, "operationName") {
            assert_eq!(ed["eventName"], op.trim().to_uppercase().as_str(), "{ctx}");
            if let Some((ns, _)) = op.split_once('/') {
                if ns.contains('.') {
                    assert_eq!(ed["eventSource"], ns.to_uppercase().as_str(), "{ctx}");
                }
            }
            assert_eq!(
                ed["additionalEventData"]["operationName"],
                op.as_str(),
                "{ctx}"
            );
        }
        let source = ed["eventSource"].as_str().unwrap();
        assert_eq!(source, source.to_uppercase(), "{ctx}");

        // sourceIPAddress: only a valid address, never invented.
        let caller = lookup(&raw, "callerIpAddress")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let prop_ip = raw
            .pointer("/properties/ipAddress")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match ed.get("sourceIPAddress").and_then(Value::as_str) {
            Some(ip) => {
                let ip: std::net::IpAddr = ip.parse().unwrap();
                let from = |s: &str| {
                    let s = s.trim();
                    s.parse::<std::net::IpAddr>().ok().or_else(|| {
                        s.rsplit_once(':')
                            .and_then(|(h, _)| h.trim_matches(['[', ']']).parse().ok())
                    })
                };
                assert!(
                    from(caller) == Some(ip) || from(prop_ip) == Some(ip),
                    "{ctx}: {ip} from where?"
                );
            }
            None => {
                for s in [caller, prop_ip] {
                    if let Ok(ip) = s.trim().parse::<std::net::IpAddr>() {
                        assert!(ip.is_unspecified(), "{ctx}: valid address {s} was dropped");
                    }
                }
            }
        }

        // principalId is never empty.
        assert!(
            !ed["userIdentity"]["principalId"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{ctx}"
        );

        // errorCode only for failures, and for every Failure/Failed resultType.
        let result = lookup(&raw, "resultType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if ["failure", "failed"].contains(&result.to_ascii_lowercase().as_str()) {
            assert!(
                ed.get("errorCode").is_some(),
                "{ctx}: a failure without errorCode"
            );
        }
        if let Some(code) = raw
            .pointer("/properties/status/errorCode")
            .and_then(Value::as_i64)
        {
            if code != 0
                && !["success", "succeeded"].contains(&result.to_ascii_lowercase().as_str())
            {
                assert_eq!(ed["errorCode"], code.to_string().as_str(), "{ctx}");
            }
        }

        // ...and never without a failure in the raw record.
        if ed.get("errorCode").is_some() {
            let status = raw.pointer("/properties/status/errorCode").and_then(|c| {
                c.as_i64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            });
            let audit = raw.pointer("/properties/result").and_then(Value::as_str);
            let numeric = result.trim().parse::<i64>().ok();
            let failed = ["failure", "failed"].contains(&result.to_ascii_lowercase().as_str())
                || status.is_some_and(|c| c != 0)
                || audit.is_some_and(|r| r.eq_ignore_ascii_case("failure"))
                || numeric.is_some_and(|c| c != 0);
            assert!(
                failed,
                "{ctx}: errorCode {} without a failure",
                ed["errorCode"]
            );
        }

        // Where it came from.
        assert_eq!(
            ed["additionalEventData"]["source"]["bucket"], "staging",
            "{ctx}"
        );
        assert_eq!(
            ed["additionalEventData"]["source"]["key"],
            o.file.as_str(),
            "{ctx}"
        );
    }
}

#[test]
fn every_time_format_corner_case_is_the_same_instant() {
    let mut seen = 0;
    for o in run_corpus()
        .iter()
        .filter(|o| o.file.ends_with("test-time-formats-corner-cases.jsonl"))
    {
        let (ed, _) = o
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e:?}", o.file));
        assert_eq!(
            ed["eventTime"],
            "2007-01-09T09:41:00Z",
            "{}: {}",
            o.file,
            String::from_utf8_lossy(&o.raw)
        );
        seen += 1;
    }
    assert_eq!(seen, 44, "four files of eleven records");
}

#[test]
fn legacy_wrapped_documents_yield_one_event_per_element() {
    let outcomes = run_corpus();
    for path in common::corpus_files() {
        if !path.to_string_lossy().ends_with(".records.json") {
            continue;
        }
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let elements = doc["records"].as_array().unwrap().len();
        let name = path
            .strip_prefix(common::corpus_dir())
            .unwrap()
            .display()
            .to_string();
        let events = outcomes
            .iter()
            .filter(|o| o.file == name && o.result.is_ok())
            .count();
        assert_eq!(events, elements, "{name}");
    }
}

#[test]
fn entra_records_name_the_aadiam_provider_and_their_principal() {
    let mut checked = 0;
    for o in run_corpus() {
        let Ok((ed, _)) = &o.result else { continue };
        let raw: Value = serde_json::from_slice(&o.raw).unwrap();
        let rid = lookup(&raw, "resourceId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let op = lookup(&raw, "operationName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if rid
            .to_ascii_lowercase()
            .ends_with("/providers/microsoft.aadiam")
            && !op.contains('/')
        {
            assert_eq!(ed["eventSource"], "MICROSOFT.AADIAM", "{}", o.file);
            if let Some(Value::String(user)) = raw.pointer("/properties/userId") {
                if !user.is_empty() && raw.get("identity").is_some_and(Value::is_string) {
                    assert_eq!(
                        ed["userIdentity"]["principalId"],
                        user.as_str(),
                        "{}",
                        o.file
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} Entra records checked");
}
