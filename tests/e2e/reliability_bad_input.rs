//! Reliability: bad input. Truncated lines, invalid UTF-8, a 5 MB single line, deeply nested JSON,
//! NUL bytes, a `{"records":[...]}` file with a broken element, an empty file and a gzip file with
//! a bad trailer, loaded by `aztrail load` into the local lake: no panic, every bad record in the
//! failure file with its reason and location, every good record loaded.

use crate::common;

use std::io::Write;

use aztrail_lake::{Lake, LakeConfig};
use aztrail_transform::synth;
use serde_json::Value;

const GOOD: &str = r#"{"time":"2026-11-27T10:00:00Z","operationName":"MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE","category":"Administrative","resourceId":"/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.STORAGE/STORAGEACCOUNTS/A","properties":{"n":"#;

fn good(i: usize) -> String {
    format!("{GOOD}{i}}}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_reported_and_good_records_load() {
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-bad-input-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("in");
    std::fs::create_dir_all(&src).unwrap();
    // (file, bytes, good records, bad records)
    let mut expected_good = 0;
    let mut expected_bad: Vec<(&str, u64)> = Vec::new(); // (file, offset)
    let mut put = |name: &'static str, bytes: Vec<u8>, good: usize, bad: &[u64]| {
        std::fs::write(src.join(name), bytes).unwrap();
        expected_good += good;
        expected_bad.extend(bad.iter().map(|o| (name, *o)));
    };

    // 1. A line cut in the middle of the file.
    let (a, b) = (good(1), good(2));
    let cut = &a[..a.len() / 2];
    let f1 = format!("{a}\n{cut}\n{b}\n");
    put(
        "01-truncated.json",
        f1.into_bytes(),
        2,
        &[(a.len() + 1) as u64],
    );
    // 2. Invalid UTF-8 inside a record.
    let mut f2 = format!("{}\n", good(3)).into_bytes();
    let at2 = f2.len() as u64;
    f2.extend_from_slice(b"{\"time\":\"2026-11-27T10:00:00Z\",\"operationName\":\"X\xff\xfe\"}\n");
    f2.extend_from_slice(format!("{}\n", good(4)).as_bytes());
    put("02-utf8.json", f2, 2, &[at2]);
    // 3. One 5 MB line: a valid record, loaded with its largest property cut to fit.
    let big = format!("{GOOD}\"{}\"}}}}\n", "x".repeat(5 * 1024 * 1024));
    put("03-five-mb-line.json", big.into_bytes(), 1, &[]);
    // 4. Deeply nested JSON: valid, so loaded (its properties are copied as they are).
    let depth = 100_000;
    let mut f4 = format!("{}\n", good(5)).into_bytes();
    f4.extend_from_slice(
        format!(
            "{{\"time\":\"2026-11-27T10:00:00Z\",\"operationName\":\"X\",\"properties\":{}{}}}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        )
        .as_bytes(),
    );
    put("04-nested.json", f4, 2, &[]);
    // 5. NUL bytes.
    let mut f5 = b"{\"time\":\"2026-11-27T10:00:00Z\",\x00\"operationName\":\"X\"}\n".to_vec();
    f5.extend_from_slice(format!("{}\n", good(6)).as_bytes());
    put("05-nul.json", f5, 1, &[0]);
    // 6. The legacy document with a broken element.
    let f6 = format!(
        "{{\"records\":[{},{{\"time\":\"2026-11-27T10:00:00Z\",\"operationName\":}},{}]}}",
        good(7),
        good(8)
    );
    let at6 = (f6.find("},{").unwrap() + 2) as u64;
    put("06-records-broken.json", f6.into_bytes(), 2, &[at6]);
    // 7. An empty file.
    put("07-empty.json", Vec::new(), 0, &[]);
    // 8. gzip whose trailer is damaged: the records decompress and load, then the check fails and
    //    the object is reported from the end of its last record.
    let records = synth::generate(30, 5);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(records.as_bytes()).unwrap();
    let mut gz = gz.finish().unwrap();
    let n = gz.len();
    gz[n - 8] ^= 0xff; // the CRC
    put(
        "08-bad-trailer.json.gz",
        gz,
        30,
        &[records.trim_end().len() as u64],
    );

    // Second hostile round.
    // 9. A JSON Lines record whose first member is `value`: a record, kept whole (item 1).
    let f9 = format!(
        "{{\"value\":[{{\"x\":1}}],\"time\":\"2026-11-27T10:00:00Z\",\"operationName\":\"X/first\"}}\n{}\n",
        good(9)
    );
    put("09-value-first-record.json", f9.into_bytes(), 2, &[]);
    // 10. A page with two value arrays; a page sorted by `jq -S` (nextLink first), pretty-printed,
    //     of 50 records; an object that starts like a page but has another member (a record,
    //     kept whole, rejected for its missing time and reported at 0) (item 2).
    let f10 = format!(
        "{{\"value\":[{}],\"value\":[{},{}]}}\n",
        good(10),
        good(11),
        good(12)
    );
    put("10a-two-values.json", f10.into_bytes(), 3, &[]);
    let sorted = format!(
        "{{\n  \"nextLink\": \"https://management.azure.com/x?$skiptoken=a\",\n  \"value\": [\n{}\n  ]\n}}\n",
        (100..150).map(good).collect::<Vec<_>>().join(",\n")
    );
    put("10b-sorted-page.json", sorted.into_bytes(), 50, &[]);
    let f10c = format!("{{\"value\":[{}],\"more\":[{}]}}\n", good(13), good(14));
    put("10c-not-a-page.json", f10c.into_bytes(), 0, &[0]);
    // 11. Repeated keys, as ServiceHealth writes them (item 3): one event, every value in it.
    let f11 = "{\"time\":\"2026-11-27T10:00:00Z\",\"operationName\":\"Microsoft.ServiceHealth/incident/action\",\"Level\":5,\"level\":\"Informational\",\"source\":\"a\",\"record.source\":\"b\",\"d\":1,\"d\":2}\n";
    put("11-repeated-keys.json", f11.as_bytes().to_vec(), 1, &[]);
    // 12. A record 1,500 deep in a 6 kB line (item 10): loaded, and the lake still answers
    //     queries that read eventData.
    let f12 = format!(
        "{{\"time\":\"2026-11-27T10:00:00Z\",\"operationName\":\"X/deep\",\"properties\":{{\"d\":{}1{}}}}}\n",
        "[".repeat(1500),
        "]".repeat(1500)
    );
    put("12-deep.json", f12.into_bytes(), 1, &[]);

    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();
    let failures = dir.join("failures.jsonl");
    let out = common::load_into_lake(&lake.url(), &failures, &src);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad records reported, no crash: {stderr}"
    );
    let reported: Vec<Value> = std::fs::read_to_string(&failures)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for r in &reported {
        println!(
            "{} {} @{}: {}",
            r["source"]["key"], r["errorCode"], r["source"]["offset"], r["errorMessage"]
        );
        assert!(!r["errorMessage"].as_str().unwrap().is_empty());
    }
    let mut got: Vec<(String, u64)> = reported
        .iter()
        .map(|r| {
            let key = r["source"]["key"].as_str().unwrap();
            let name = key.rsplit('/').next().unwrap().to_string();
            (name, r["source"]["offset"].as_u64().unwrap())
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, u64)> = expected_bad
        .iter()
        .map(|(n, o)| (n.to_string(), *o))
        .collect();
    want.sort();
    assert_eq!(got, want, "each bad record once, at its offset");
    let gz_failure = reported
        .iter()
        .find(|r| r["errorCode"] == "UnreadableObject")
        .unwrap();
    assert!(gz_failure["source"]["key"]
        .as_str()
        .unwrap()
        .ends_with(".gz"));
    let stats = lake.stats().await.unwrap();
    assert_eq!(
        stats.events, expected_good as u64,
        "every good record loaded"
    );
    assert_eq!(stats.duplicate_events, 0);
    // Every event's eventData can be read by the lake's queries (item 10).
    let rows = lake
        .query(
            "SELECT eventData.eventName, COUNT(*) AS n FROM aztrail GROUP BY eventData.eventName",
        )
        .await
        .expect("a query over every event's eventData");
    assert!(!rows.rows.is_empty());
    let repeated = lake
        .query("SELECT eventData.additionalEventData FROM aztrail WHERE eventData.eventName = 'MICROSOFT.SERVICEHEALTH/INCIDENT/ACTION'")
        .await
        .unwrap();
    let extra = format!("{:?}", repeated.rows);
    for needle in ["Informational", "level#2", "record.source#2", "d#2"] {
        assert!(extra.contains(needle), "{needle} in {extra}");
    }
    lake.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
