//! The mapper: one record in, one OCSF event (its class, time, UID and JSON) out, or the same
//! [`Rejection`] the CloudTrail mapping gives the record.
//!
//! The rules, attribute by attribute, are the README's OCSF mapping table. Here: what every
//! class shares (metadata, time, severity, cloud, unmapped); the Activity Log in `activity`,
//! Entra ID in `entra`.

use aztrail_transform::time::{
    blob_path_hour, civil_from_days, from_epoch_number_ms, parse_time_ms, UtcSeconds,
};
use aztrail_transform::{Record, Rejection, Source};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::class::Class;
use crate::record::{At, Held, Rec};
use crate::unmapped::unmapped;
use crate::value::Json;

/// The OCSF version written in `metadata.version`.
pub const OCSF_VERSION: &str = "1.1.0";

/// Settings of the mapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also write the whole record into `raw_data` (about doubles what is stored; off by default,
    /// since `unmapped` already holds every value no attribute holds).
    pub raw_data: bool,
}

/// One OCSF event.
#[derive(Debug, Clone)]
pub struct OcsfEvent {
    /// Its class.
    pub class: Class,
    /// `time`: the event's time in milliseconds since the epoch.
    pub time_ms: i64,
    /// The event's UTC day as `YYYYMMDD` (Security Lake's `eventDay` partition).
    pub day: u32,
    /// `metadata.uid`: hex SHA-256 of the raw record, the same id the CloudTrail mapping gives.
    pub uid: String,
    /// The event as one JSON object.
    pub json: Value,
    /// Which record values attributes hold unchanged (everything else is in `unmapped`).
    pub held: Vec<Held>,
}

/// Maps records to OCSF events.
#[derive(Debug, Clone, Default)]
pub struct OcsfMapper {
    options: Options,
    path_hour: Option<UtcSeconds>,
}

/// What the source-specific rules produce; the mapper adds what every event shares.
pub(crate) struct Body {
    pub class: Class,
    pub activity_id: u32,
    pub product: &'static str,
    pub fields: Map<String, Value>,
}

impl OcsfMapper {
    /// A mapper with `options`.
    pub fn new(options: Options) -> Self {
        OcsfMapper {
            options,
            path_hour: None,
        }
    }

    /// The records that follow come from `source` (its path's hour is the fallback time).
    pub fn set_source(&mut self, source: &Source) {
        self.path_hour = blob_path_hour(&source.key);
    }

    /// Maps one record.
    pub fn map(&self, record: Record<'_>) -> Result<OcsfEvent, Rejection> {
        if let Some(len) = record.oversize {
            return Err(if record.stray {
                Rejection::PageMember(len)
            } else {
                Rejection::TooLarge(len)
            });
        }
        // Hashed by the framer already where it can (many records at once), else here.
        let uid = hex_sha256(
            record
                .sha256
                .unwrap_or_else(|| Sha256::digest(record.bytes).into()),
        );
        let root = Json::parse(record.bytes).map_err(|e| Rejection::InvalidJson(e.to_string()))?;
        if !matches!(root, Json::Obj(_)) {
            return Err(Rejection::NotAnObject(root.kind()));
        }
        let mut rec = Rec::new(&root);
        if rec.at(&["TimeGenerated"]).is_some() && rec.at(&["time"]).is_none() {
            return Err(Rejection::LogAnalyticsRow("TimeGenerated"));
        }
        if rec.at(&["OperationNameValue"]).is_some() && rec.at(&["operationName"]).is_none() {
            return Err(Rejection::LogAnalyticsRow("OperationNameValue"));
        }
        let (time_ms, time_at) = event_time(&rec, self.path_hour)?;
        let category = category(&rec);
        let entra = category
            .as_ref()
            .is_some_and(|c| aztrail_transform::mapping::is_entra(c.text().unwrap_or("")));

        let mut ev = Map::new();
        let body = if entra {
            crate::entra::map(&mut rec, category.as_ref())?
        } else {
            crate::activity::map(&mut rec)?
        };
        let class = body.class;
        put_u(&mut ev, "class_uid", class.uid());
        put_s(&mut ev, "class_name", class.name());
        put_u(&mut ev, "category_uid", class.category_uid());
        put_s(&mut ev, "category_name", class.category_name());
        put_u(&mut ev, "activity_id", body.activity_id);
        put_s(
            &mut ev,
            "activity_name",
            class.activity_name(body.activity_id),
        );
        ev.insert(
            "type_uid".into(),
            Value::from(u64::from(class.uid()) * 100 + u64::from(body.activity_id)),
        );
        put_s(
            &mut ev,
            "type_name",
            &format!(
                "{}: {}",
                class.name(),
                class.activity_name(body.activity_id)
            ),
        );
        ev.insert("time".into(), Value::from(time_ms));
        let (severity_id, severity) = severity(&rec);
        put_u(&mut ev, "severity_id", severity_id);
        put_s(&mut ev, "severity", severity);

        // metadata
        let mut md = Map::new();
        put_s(&mut md, "uid", &uid);
        put_s(&mut md, "version", OCSF_VERSION);
        let mut product = Map::new();
        put_s(&mut product, "name", body.product);
        put_s(&mut product, "vendor_name", "Microsoft");
        md.insert("product".into(), Value::Object(product));
        // `cloud` always; `host` where a device is named, or an actor outside API Activity (the
        // profile adds both to the IAM classes).
        let host = body.fields.contains_key("device")
            || (body.class != Class::ApiActivity && body.fields.contains_key("actor"));
        let profiles = if host {
            vec!["cloud", "host"]
        } else {
            vec!["cloud"]
        };
        md.insert("profiles".into(), Value::from(profiles));
        if let Some(at) = time_at {
            if let Some(s) = rec.take_at(&at, "metadata.original_time") {
                put_s(&mut md, "original_time", s);
            }
        }
        if let Some(at) = &category {
            if let Some(s) = rec.take_at(at, "metadata.log_name") {
                put_s(&mut md, "log_name", s);
            }
        }
        if let Some(c) = rec.take(&["correlationId"], "metadata.correlation_uid") {
            put_s(&mut md, "correlation_uid", c);
        }
        if let Some(t) = rec.take(&["tenantId"], "metadata.tenant_uid") {
            put_s(&mut md, "tenant_uid", t);
        }
        ev.insert("metadata".into(), Value::Object(md));

        for (k, v) in body.fields {
            ev.insert(k, v);
        }
        let rest = unmapped(&root, &rec);
        if !rest.is_empty() {
            ev.insert(
                "unmapped".into(),
                Value::Object(rest.into_iter().map(|(k, v)| (k, Value::from(v))).collect()),
            );
        }
        if self.options.raw_data {
            if let Ok(s) = std::str::from_utf8(record.bytes) {
                put_s(&mut ev, "raw_data", s);
            }
        }
        Ok(OcsfEvent {
            class,
            time_ms,
            day: utc_day(time_ms),
            uid,
            json: Value::Object(ev),
            held: rec.into_held(),
        })
    }
}

/// `YYYYMMDD` of a time in milliseconds.
pub fn utc_day(time_ms: i64) -> u32 {
    let (y, m, d) = civil_from_days(time_ms.div_euclid(86_400_000));
    (y.clamp(0, 9999) as u32) * 10_000 + m * 100 + d
}

/// The event time and, when it was a string, where it stands (for `metadata.original_time`).
/// The same fields, in the same order, as the CloudTrail mapping's `eventTime`.
fn event_time<'a>(
    rec: &Rec<'a>,
    path_hour: Option<UtcSeconds>,
) -> Result<(i64, Option<At<'a>>), Rejection> {
    const CANDIDATES: [&[&str]; 6] = [
        &["time"],
        &["timeStamp"],
        &["eventTimestamp"],
        &["createdDateTime"],
        &["properties", "createdDateTime"],
        &["properties", "activityDateTime"],
    ];
    let mut problems = Vec::new();
    for path in CANDIDATES {
        let Some(at) = rec.at(path) else { continue };
        let parsed = match at.value {
            Json::Str(s) => parse_time_ms(s),
            Json::Num(n) => n.as_f64().and_then(from_epoch_number_ms),
            _ => None,
        };
        match parsed {
            Some((t, ms)) => {
                let string = matches!(at.value, Json::Str(_)).then_some(at);
                return Ok((t.0 * 1000 + i64::from(ms), string));
            }
            None => problems.push(format!("{} is not a time stamp", path.join("."))),
        }
    }
    if let Some(hour) = path_hour {
        return Ok((hour.0 * 1000, None));
    }
    if problems.is_empty() {
        problems.push("the record has no time or createdDateTime field".into());
    }
    problems.push("and the source path names no y=/m=/d=/h= hour".into());
    Err(Rejection::NoEventTime(problems.join("; ")))
}

/// `category`, as a string or the REST shape's `{"value":…}`.
fn category<'a>(rec: &Rec<'a>) -> Option<At<'a>> {
    let at = rec.at(&["category"])?;
    match at.value {
        Json::Str(_) => Some(at),
        Json::Obj(_) => at.get("value").filter(|v| v.text().is_some()),
        _ => None,
    }
}

/// `severity_id` and `severity` from the record's `level` (a name, or Azure's number: 1
/// Critical, 2 Error, 3 Warning, 4 Informational, 5 Verbose). The level itself stays in
/// `unmapped`.
fn severity(rec: &Rec<'_>) -> (u32, &'static str) {
    let Some(at) = rec.at(&["level"]) else {
        return (0, "Unknown");
    };
    let level = match at.value {
        Json::Str(s) => s.trim().to_ascii_lowercase(),
        Json::Num(n) => n.to_string(),
        _ => String::new(),
    };
    match level.as_str() {
        "critical" | "1" => (5, "Critical"),
        "error" | "2" => (4, "High"),
        "warning" | "3" => (3, "Medium"),
        "informational" | "information" | "4" | "verbose" | "5" => (1, "Informational"),
        "" => (0, "Unknown"),
        _ => (99, "Other"),
    }
}

pub(crate) fn hex_sha256(digest: [u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(HEX[(b >> 4) as usize] as char);
        hex.push(HEX[(b & 15) as usize] as char);
    }
    hex
}

pub(crate) fn put_s(m: &mut Map<String, Value>, key: &str, v: &str) {
    m.insert(key.into(), Value::from(v));
}

pub(crate) fn put_u(m: &mut Map<String, Value>, key: &str, v: u32) {
    m.insert(key.into(), Value::from(v));
}

/// Inserts `obj` under `key` unless it is empty (OCSF has no empty objects).
pub(crate) fn put_obj(m: &mut Map<String, Value>, key: &str, obj: Map<String, Value>) {
    if !obj.is_empty() {
        m.insert(key.into(), Value::Object(obj));
    }
}

/// `status_id` from a result word.
pub(crate) fn status_id(result: &str) -> u32 {
    match result.trim().to_ascii_lowercase().as_str() {
        "success" | "succeeded" => 1,
        "failure" | "failed" => 2,
        "" => 0,
        _ => 99,
    }
}

/// The caption of a `status_id`.
pub(crate) fn status_name(id: u32) -> &'static str {
    match id {
        1 => "Success",
        2 => "Failure",
        0 => "Unknown",
        _ => "Other",
    }
}

/// `src_endpoint.ip` from the value at `path`, when it is an IP address as written (an address
/// with a port is parsed, and the value stays in `unmapped`).
pub(crate) fn take_ip(rec: &mut Rec<'_>, path: &[&str], attribute: &str) -> Option<String> {
    let at = rec.at(path)?;
    let s = at.text()?;
    // The address's own text (the CloudTrail path's, borrowed when already canonical).
    let ip = aztrail_transform::ip::source_ip_text(s)?.into_owned();
    if ip == s {
        rec.hold(&at, attribute);
    }
    Some(ip)
}
