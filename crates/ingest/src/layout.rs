//! Where things are: Azure's log blob layout, and the keys aztrail writes in the staging bucket.
//!
//! Azure Monitor writes one append blob per source and hour:
//! `{root}y=2026/m=11/d=27/h=10/m=00/PT1H.json`, where the root is `resourceId=/SUBSCRIPTIONS/{id}/`
//! for the Activity Log, `tenantId={id}/` for Entra ID, or a resource's path for resource logs.
//! Everything above the roots changes only when a subscription or resource starts exporting, and
//! under a root the date directories say when a blob was written, so a run lists only the days
//! of its window under each root.
//!
//! Staged objects are named after their source: `{prefix}{account}/{container}/{blob}.{start}-{end}`
//! with the byte range `[start, end)` of the blob they hold, so a retried copy of the same range has
//! the same key, and the loader finds the blob path (and its hour) in the key.

use aztrail_transform::time::{civil_from_days, UtcSeconds};

/// Where a root's date directories start.
pub const DATE_DIR: &str = "y=";

/// Whether a hierarchy entry (a prefix ending in `/`) is a date directory, i.e. its parent is a
/// root.
pub fn is_date_dir(prefix: &str) -> bool {
    prefix
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .is_some_and(|last| last.starts_with(DATE_DIR))
}

/// The root of a blob path: everything before `y=` (`None` for blobs outside the layout).
pub fn root_of(blob: &str) -> Option<&str> {
    if blob.starts_with(DATE_DIR) {
        return Some("");
    }
    blob.find("/y=").map(|i| &blob[..=i])
}

/// The day prefixes under `root` that cover `[from, to]` (seconds since the epoch), oldest first:
/// `{root}y=2026/m=11/d=27/`.
pub fn day_prefixes(root: &str, from: i64, to: i64) -> Vec<String> {
    let mut out = Vec::new();
    let (first, last) = (from.div_euclid(86_400), to.div_euclid(86_400));
    for day in first..=last {
        let (y, m, d) = civil_from_days(day);
        out.push(format!("{root}y={y:04}/m={m:02}/d={d:02}/"));
    }
    out
}

/// The blob Azure Monitor writes under `root` for the hour holding `seconds` (since the epoch):
/// `{root}y=2026/m=11/d=27/h=10/m=00/PT1H.json`.
pub fn hour_blob(root: &str, seconds: i64) -> String {
    let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
    let hour = seconds.rem_euclid(86_400) / 3600;
    format!("{root}y={y:04}/m={m:02}/d={d:02}/h={hour:02}/m=00/PT1H.json")
}

/// The key of a staged object holding bytes `[start, end)` of `blob`.
///
/// A blob replaced `generation` times names its generation (`PT1H.json.g1.0-4096`), so the
/// ranges of a replacement never take the keys of the ranges it replaced.
pub fn staged_key(
    prefix: &str,
    account: &str,
    container: &str,
    blob: &str,
    generation: u32,
    start: u64,
    end: u64,
) -> String {
    if generation == 0 {
        format!("{prefix}{account}/{container}/{blob}.{start}-{end}")
    } else {
        format!("{prefix}{account}/{container}/{blob}.g{generation}.{start}-{end}")
    }
}

/// The key prefix of the staged objects of `blob` starting at `start` (to find an object a crashed
/// run wrote).
pub fn staged_key_from(
    prefix: &str,
    account: &str,
    container: &str,
    blob: &str,
    start: u64,
) -> String {
    format!("{prefix}{account}/{container}/{blob}.{start}-")
}

/// The byte range a staged key names.
pub fn range_of_key(key: &str) -> Option<(u64, u64)> {
    let (_, range) = key.rsplit_once('.')?;
    let (a, b) = range.split_once('-')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a < b).then_some((a, b))
}

/// The length of the complete lines at the start of `bytes` (up to and including the last `\n`).
pub fn complete_prefix(bytes: &[u8]) -> usize {
    memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1)
}

/// `seconds` as `2026-11-27T10:00:00Z`.
pub fn iso(seconds: i64) -> String {
    UtcSeconds(seconds).to_iso()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_date_directories() {
        let blob = "resourceId=/SUBSCRIPTIONS/ABC/y=2026/m=11/d=27/h=10/m=00/PT1H.json";
        assert_eq!(root_of(blob), Some("resourceId=/SUBSCRIPTIONS/ABC/"));
        assert_eq!(
            root_of("tenantId=t/y=2026/m=01/d=01/h=00/m=00/PT1H.json"),
            Some("tenantId=t/")
        );
        assert_eq!(root_of("y=2026/m=01/PT1H.json"), Some(""));
        assert_eq!(root_of("elsewhere/PT1H.json"), None);
        assert!(is_date_dir("resourceId=/SUBSCRIPTIONS/ABC/y=2026/"));
        assert!(!is_date_dir("resourceId=/SUBSCRIPTIONS/ABC/"));
        assert!(!is_date_dir("resourceId=/SUBSCRIPTIONS/xy=1/"));
    }

    #[test]
    fn a_window_across_midnight_and_a_month_end() {
        // 2026-11-30T22:00:00Z to 2026-12-01T01:00:00Z
        let from = 1_796_076_000;
        let to = from + 3 * 3600;
        assert_eq!(iso(from), "2026-11-30T22:00:00Z");
        assert_eq!(
            day_prefixes("tenantId=t/", from, to),
            [
                "tenantId=t/y=2026/m=11/d=30/",
                "tenantId=t/y=2026/m=12/d=01/"
            ]
        );
        assert_eq!(day_prefixes("r/", from, from).len(), 1);
    }

    #[test]
    fn staged_keys_name_their_range() {
        let k = staged_key(
            "staged/",
            "acct",
            "insights-activity-logs",
            "resourceId=/S/y=2026/PT1H.json",
            0,
            100,
            250,
        );
        assert_eq!(
            k,
            "staged/acct/insights-activity-logs/resourceId=/S/y=2026/PT1H.json.100-250"
        );
        assert_eq!(range_of_key(&k), Some((100, 250)));
        let replaced = staged_key("staged/", "a", "c", "b/PT1H.json", 2, 0, 9);
        assert_eq!(replaced, "staged/a/c/b/PT1H.json.g2.0-9");
        assert_eq!(range_of_key(&replaced), Some((0, 9)));
        assert!(k.starts_with(&staged_key_from(
            "staged/",
            "acct",
            "insights-activity-logs",
            "resourceId=/S/y=2026/PT1H.json",
            100
        )));
        assert_eq!(range_of_key("x/PT1H.json"), None);
        assert_eq!(range_of_key("x.5-5"), None);
    }

    #[test]
    fn only_complete_lines_are_taken() {
        assert_eq!(complete_prefix(b"{\"a\":1}\n{\"b\":"), 8);
        assert_eq!(complete_prefix(b"{\"a\":1}\n"), 8);
        assert_eq!(complete_prefix(b"{\"partial\""), 0);
        assert_eq!(complete_prefix(b""), 0);
    }
}
