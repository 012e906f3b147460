//! aztrail-emf: CloudWatch embedded-metric-format (EMF) lines, metrics as one JSON log line.
//!
//! A Lambda function that prints a JSON line with an `_aws.CloudWatchMetrics` directive gets
//! those values as CloudWatch metrics without a PutMetricData call: no extra permission, no extra
//! latency. Pure formatting (no I/O), shared by the load and ingest functions.

use serde_json::{json, Map, Value};

/// The CloudWatch namespace of aztrail's metrics.
pub const NAMESPACE: &str = "aztrail";

/// One EMF line: `values` (name, unit, value) under `namespace`, with one dimension.
pub fn emf_line(
    namespace: &str,
    dimension: (&str, &str),
    values: &[(&str, &str, f64)],
    timestamp_ms: u64,
) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[dimension.0]],
                "Metrics": values
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert(dimension.0.into(), Value::from(dimension.1));
    for (name, _, v) in values {
        root.insert((*name).into(), json!(v));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_declared_and_carried() {
        let line = emf_line(
            "ns",
            ("Function", "f"),
            &[("A", "Count", 2.0), ("B", "Bytes", 5.0)],
            7,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 7);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "B", "Unit": "Bytes"})
        );
        assert_eq!(
            (v["A"].as_f64(), v["B"].as_f64(), v["Function"].as_str()),
            (Some(2.0), Some(5.0), Some("f"))
        );
    }
}
