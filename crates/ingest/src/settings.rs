//! The ingest settings, once: flags of `aztrail ingest` and `aztrail run`, and environment
//! variables of the ingest Lambda function, with one set of defaults and one place they become
//! an [`IngestConfig`] (as `aztrail_load::settings::LoadSettings` is for loading). What differs
//! between the commands (whether a staging bucket is required, where credentials come from)
//! stays with them.

use std::time::Duration;

use crate::run::IngestConfig;

/// How blobs are found and staged, whoever stages them.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct IngestSettings {
    /// A container to read (repeatable, or comma-separated): insights-activity-logs,
    /// insights-logs-auditlogs, insights-logs-signinlogs, ...
    #[arg(
        long = "container",
        env = "AZTRAIL_CONTAINERS",
        value_delimiter = ',',
        default_values_t = DEFAULT_CONTAINERS.map(String::from)
    )]
    pub containers: Vec<String>,
    /// Key prefix of staged objects (the bucket notification filters on it).
    #[arg(long, env = "AZTRAIL_STAGING_PREFIX", default_value = "staged/")]
    pub staging_prefix: String,
    /// How far back to look for changed blobs: 1s to 400d, with its unit (s, m, h or d).
    #[arg(long, env = "AZTRAIL_LOOKBACK", default_value = "48h", value_parser = parse_lookback)]
    pub lookback: Duration,
    /// Copy an hour's blob only once it stopped growing (fewer, whole-hour objects).
    #[arg(long, env = "AZTRAIL_SETTLE")]
    pub settle: bool,
    /// Requests a pass keeps in flight at once, Azure and S3 together (listing, state, copies):
    /// 1 to 1024.
    #[arg(
        long,
        env = "AZTRAIL_REQUESTS_IN_FLIGHT",
        default_value_t = crate::gate::DEFAULT_REQUESTS_IN_FLIGHT,
        value_parser = parse_requests_in_flight
    )]
    pub requests_in_flight: usize,
    /// How long a run's claim on the ranges it copies holds before another run may take them
    /// over (a run that died): 1s to 1d, with its unit.
    #[arg(long, env = "AZTRAIL_CLAIM_LEASE", default_value = "15m", value_parser = parse_interval)]
    pub claim_lease: Duration,
}

/// A number of requests in flight, 1 to [`crate::gate::MAX_REQUESTS_IN_FLIGHT`].
pub fn parse_requests_in_flight(s: &str) -> Result<usize, String> {
    let max = crate::gate::MAX_REQUESTS_IN_FLIGHT;
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("{s:?}: requests in flight is a whole number from 1 to {max}"))
}

/// The containers read when none are named: the Activity Log and Entra ID audit logs.
pub const DEFAULT_CONTAINERS: [&str; 2] = ["insights-activity-logs", "insights-logs-auditlogs"];

impl IngestSettings {
    /// The configuration of a pass staging into `bucket` as run `run_id` (the rest default).
    pub fn config(&self, bucket: impl Into<String>, run_id: impl Into<String>) -> IngestConfig {
        IngestConfig {
            containers: self.containers.clone(),
            bucket: bucket.into(),
            staging_prefix: self.staging_prefix.clone(),
            lookback_seconds: i64::try_from(self.lookback.as_secs()).unwrap_or(i64::MAX),
            settle: self.settle,
            requests_in_flight: self.requests_in_flight,
            claim_lease_seconds: i64::try_from(self.claim_lease.as_secs()).unwrap_or(i64::MAX),
            run_id: run_id.into(),
            ..IngestConfig::default()
        }
    }
}

/// A duration such as `90s`, `30m`, `48h` or `2d`, of at most `max` seconds. The unit is
/// required (a bare `48` could mean anything); a number too large is an error, never a wrap.
fn parse_duration_upto(s: &str, max: u64, what: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let Some(i) = s.find(|c: char| !c.is_ascii_digit()) else {
        return Err(format!(
            "{s:?} has no unit: write it with s, m, h or d (like 90s, 30m, 48h, 2d)"
        ));
    };
    let (n, unit) = (&s[..i], &s[i..]);
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    let secs = n
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .filter(|&secs| (1..=max).contains(&secs))
        .ok_or_else(|| {
            format!(
                "{s:?}: {what} is 1s to {} (like 90s, 30m, 48h, 2d)",
                if max.is_multiple_of(86_400) {
                    format!("{}d", max / 86_400)
                } else {
                    format!("{max}s")
                }
            )
        })?;
    Ok(std::time::Duration::from_secs(secs))
}

/// The longest lookback: beyond Azure Monitor's longest retention of exported logs there is
/// nothing to list.
pub const MAX_LOOKBACK_DAYS: u64 = 400;

/// `--lookback`: a duration of 1 s to [`MAX_LOOKBACK_DAYS`] days.
pub fn parse_lookback(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_upto(s, MAX_LOOKBACK_DAYS * 86_400, "a lookback")
}

/// `--watch` and other intervals: 1 s to 1 day.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_upto(s, 86_400, "an interval")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        settings: IngestSettings,
    }

    #[test]
    fn defaults_and_the_config_they_make() {
        let s = Cli::try_parse_from(["x"]).expect("no flags").settings;
        assert_eq!(s.containers, DEFAULT_CONTAINERS.map(String::from));
        let c = s.config("b", "r");
        assert_eq!(
            (c.bucket.as_str(), c.lookback_seconds, c.settle),
            ("b", 172_800, false)
        );
        let s = Cli::try_parse_from(["x", "--container", "a,b", "--lookback", "2d", "--settle"])
            .expect("flags")
            .settings;
        assert_eq!(s.containers, ["a", "b"]);
        assert_eq!(s.config("b", "r").lookback_seconds, 2 * 86_400);
    }

    #[test]
    fn durations_are_bounded_and_never_wrap() {
        // Hostile round 2, item 7: each of these was accepted (and hung, wrapped or ate memory).
        for bad in [
            "300000000000000d",
            "9223372036854775808s",
            "18446744073709551615s",
            "213503982334601d",
            "401d",
            "48",
            "0s",
            "",
            "-1d",
        ] {
            let e = parse_lookback(bad).expect_err(bad);
            assert!(e.contains("unit") || e.contains("1s to 400d"), "{bad}: {e}");
        }
        assert_eq!(parse_lookback("400d").unwrap().as_secs(), 400 * 86_400);
        assert_eq!(parse_interval("90s").unwrap().as_secs(), 90);
        assert!(parse_interval("2d").is_err());
    }
}
