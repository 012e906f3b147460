//! The check that no value of a record is lost on its way into its event: every scalar of the
//! record (a string, number, boolean or null, at a path such as `identity.claims.ipaddr`) must be
//! found in the event as the same JSON value, unless `additionalEventData.truncated` lists the
//! part it belongs to. A string that holds a JSON object or array (a request body) counts as the
//! scalars inside it, since the event keeps it as JSON.

use serde_json::Value;

/// Every scalar of `v` with its path.
fn scalars(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                scalars(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                scalars(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with('{') || t.starts_with('[') {
                if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(t)
                {
                    scalars(&inner, path, out);
                    return;
                }
            }
            out.push((path.to_string(), v.clone()));
        }
        _ => out.push((path.to_string(), v.clone())),
    }
}

/// Whether the record path `path` belongs to what `truncated` lists.
fn cut_away(path: &str, truncated: &[String]) -> bool {
    let lower = path.to_ascii_lowercase();
    let under = |prefix: &str| {
        let p = prefix.to_ascii_lowercase();
        lower == p || lower.starts_with(&format!("{p}.")) || lower.starts_with(&format!("{p}["))
    };
    truncated.iter().any(|t| match t.as_str() {
        "userIdentity.details.identity" => under("identity"),
        "requestParameters" => under("properties.requestbody"),
        "responseElements" => under("properties.responseBody"),
        "properties" => under("properties"),
        other => under(other) || under(&format!("properties.{other}")),
    })
}

/// The record's values missing from the event: `(path, value)` of each.
pub fn lost_values(record: &Value, event: &Value) -> Vec<(String, Value)> {
    let mut wanted = Vec::new();
    scalars(record, "", &mut wanted);
    let mut found = Vec::new();
    scalars(event, "", &mut found);
    let found: std::collections::HashSet<String> =
        found.into_iter().map(|(_, v)| v.to_string()).collect();
    let truncated: Vec<String> = event["additionalEventData"]["truncated"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    wanted
        .into_iter()
        .filter(|(path, v)| !found.contains(&v.to_string()) && !cut_away(path, &truncated))
        .collect()
}
