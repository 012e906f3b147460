//! Metrics as CloudWatch embedded-metric-format (EMF) log lines.
//!
//! A Lambda function that prints one JSON line with an `_aws.CloudWatchMetrics` directive gets
//! those values as CloudWatch metrics without a PutMetricData call: no extra permission, no extra
//! latency. The load function prints one line per invocation from its [`WorkerSummary`].

use aztrail_emf::{emf_line, NAMESPACE};

use crate::sqs::WorkerSummary;

/// The load function's metrics for one invocation.
pub fn load_metrics(function: &str, s: &WorkerSummary, timestamp_ms: u64) -> String {
    let l = &s.load;
    emf_line(
        NAMESPACE,
        ("Function", function),
        &[
            ("Messages", "Count", s.messages as f64),
            ("MessagesLeft", "Count", s.left as f64),
            ("Objects", "Count", s.objects as f64),
            ("EventsIn", "Count", l.records as f64),
            ("EventsSkipped", "Count", l.skipped as f64),
            ("Accepted", "Count", l.accepted as f64),
            ("Failed", "Count", l.failed as f64),
            ("Retried", "Count", l.retried as f64),
            ("Throttled", "Count", l.throttled as f64),
            ("Bytes", "Bytes", l.bytes as f64),
            ("LagSeconds", "Seconds", l.max_lag_seconds as f64),
        ],
        timestamp_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn emf_lines_declare_every_value_they_carry() {
        let mut s = WorkerSummary::default();
        s.load.records = 120;
        s.load.accepted = 118;
        s.load.failed = 2;
        s.load.bytes = 4096;
        s.load.max_lag_seconds = 75;
        let line = load_metrics("aztrail-load", &s, 1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(v["Function"], "aztrail-load");
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let metrics = directive["Metrics"].as_array().unwrap();
        for m in metrics {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "{name} declared but not present");
        }
        assert_eq!(v["EventsIn"], 120.0);
        assert_eq!(v["Accepted"], 118.0);
        assert_eq!(v["LagSeconds"], 75.0);
        let bytes = metrics.iter().find(|m| m["Name"] == "Bytes").unwrap();
        assert_eq!(bytes["Unit"], "Bytes");
    }
}
