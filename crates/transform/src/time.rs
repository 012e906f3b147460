//! Lenient parsing of the time stamps Azure writes, and the UTC form CloudTrail Lake takes.
//!
//! Azure records carry `time` with 0 to 9 fractional digits, a `Z`, an offset or no zone at all, a
//! space instead of `T`, stray spaces after colons, or the US form `8/22/2022 6:07:16 PM` (with an
//! optional offset). CloudTrail Lake wants `yyyy-MM-ddTHH:mm:ssZ` in UTC. Conversion is plain
//! civil-calendar arithmetic: no time-zone database, no allocation.

/// A UTC instant with second precision, as seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcSeconds(pub i64);

/// Seconds from 0001-01-01 to 9999-12-31 (the range CloudTrail's format can express).
const MIN_SECS: i64 = -62_135_596_800;
const MAX_SECS: i64 = 253_402_300_799;

impl UtcSeconds {
    /// From civil date and time fields, checked; `offset_secs` is the zone's offset east of UTC.
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        offset_secs: i64,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        // A leap second is folded into the second before it.
        let second = second.min(59);
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
        (MIN_SECS..=MAX_SECS).contains(&secs).then_some(Self(secs))
    }

    /// `yyyy-MM-ddTHH:mm:ssZ`.
    pub fn iso_bytes(self) -> [u8; 20] {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let mut b = *b"0000-00-00T00:00:00Z";
        put(&mut b[0..4], y as u32);
        put(&mut b[5..7], m);
        put(&mut b[8..10], d);
        put(&mut b[11..13], rem / 3600);
        put(&mut b[14..16], rem / 60 % 60);
        put(&mut b[17..19], rem % 60);
        b
    }

    /// `yyyy-MM-ddTHH:mm:ssZ` as a string.
    pub fn to_iso(self) -> String {
        String::from_utf8_lossy(&self.iso_bytes()).into_owned()
    }
}

fn put(dst: &mut [u8], mut n: u32) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A small cursor over ASCII bytes.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }
    /// 1 to `max` digits.
    fn num(&mut self, max: usize) -> Option<u32> {
        let start = self.i;
        let mut n: u32 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    n = n * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i > start).then_some(n)
    }
    /// Skips one or more digits; false when there is none.
    fn digits(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i > start
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

/// Parses a time stamp in any of the forms Azure writes. Without a zone, UTC is assumed.
pub fn parse_time(s: &str) -> Option<UtcSeconds> {
    parse_time_ms(s).map(|(t, _)| t)
}

/// Like [`parse_time`], with the milliseconds of the fractional second (0 to 999, truncated):
/// CloudTrail keeps whole seconds, CloudWatch Logs time stamps are in milliseconds.
pub fn parse_time_ms(s: &str) -> Option<(UtcSeconds, u16)> {
    let s = s.trim();
    let bytes = s.as_bytes();
    let mut c = Cursor { s: bytes, i: 0 };
    let first = c.num(4)?;
    let year_digits = c.i;
    let (year, month, day) = if c.eat(b'-') {
        if year_digits != 4 {
            return None;
        }
        let m = c.num(2)?;
        if !c.eat(b'-') {
            return None;
        }
        (i64::from(first), m, c.num(2)?)
    } else if c.eat(b'/') {
        // US form: month/day/year.
        let d = c.num(2)?;
        if !c.eat(b'/') {
            return None;
        }
        let start = c.i;
        let y = c.num(4)?;
        if c.i - start != 4 {
            return None;
        }
        (i64::from(y), first, d)
    } else {
        return None;
    };
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    let mut millis = 0u16;
    let mut offset = 0i64;
    if !c.done() {
        if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
            return None;
        }
        c.spaces();
        hour = c.num(2)?;
        if !c.eat(b':') {
            return None;
        }
        c.spaces();
        minute = c.num(2)?;
        if c.eat(b':') {
            c.spaces();
            second = c.num(2)?;
            if c.eat(b'.') || c.eat(b',') {
                let start = c.i;
                if !c.digits() {
                    return None;
                }
                // The first three digits are the milliseconds; finer ones are dropped.
                for (k, d) in bytes[start..c.i].iter().take(3).enumerate() {
                    millis += u16::from(d - b'0') * [100, 10, 1][k];
                }
            }
        }
        c.spaces();
        // AM / PM.
        if let Some(p) = c.peek().map(|b| b.to_ascii_uppercase()) {
            if p == b'A' || p == b'P' {
                c.i += 1;
                if !(c.eat(b'M') || c.eat(b'm')) || hour == 0 || hour > 12 {
                    return None;
                }
                hour = match (p, hour) {
                    (b'A', 12) => 0,
                    (b'A', h) => h,
                    (_, 12) => 12,
                    (_, h) => h + 12,
                };
                c.spaces();
            }
        }
        match c.peek() {
            None => {}
            Some(b'Z') | Some(b'z') => {
                c.i += 1;
            }
            Some(sign @ (b'+' | b'-')) => {
                c.i += 1;
                let start = c.i;
                let hh = c.num(2)?;
                let mm = if c.eat(b':') {
                    c.num(2)?
                } else if c.i - start == 2 {
                    c.num(2).unwrap_or(0)
                } else {
                    return None;
                };
                if hh > 23 || mm > 59 {
                    return None;
                }
                let off = i64::from(hh * 3600 + mm * 60);
                offset = if sign == b'-' { -off } else { off };
            }
            Some(_) => return None,
        }
        c.spaces();
        if !c.done() {
            return None;
        }
    }
    UtcSeconds::from_civil(year, month, day, hour, minute, second, offset).map(|t| (t, millis))
}

/// Reads a number as epoch seconds, or milliseconds when it is too large to be seconds.
pub fn from_epoch_number(n: f64) -> Option<UtcSeconds> {
    from_epoch_number_ms(n).map(|(t, _)| t)
}

/// Like [`from_epoch_number`], with the milliseconds of the second (0 to 999).
pub fn from_epoch_number_ms(n: f64) -> Option<(UtcSeconds, u16)> {
    if !n.is_finite() {
        return None;
    }
    let ms = if n.abs() >= 1e11 { n } else { n * 1000.0 }.floor();
    let secs = (ms / 1000.0).floor();
    if (MIN_SECS as f64..=MAX_SECS as f64).contains(&secs) {
        let millis = (ms - secs * 1000.0).clamp(0.0, 999.0) as u16;
        Some((UtcSeconds(secs as i64), millis))
    } else {
        None
    }
}

/// The hour of an Azure blob path (`.../y=2024/m=01/d=02/h=03/m=00/PT1H.json`), as a UTC instant.
pub fn blob_path_hour(path: &str) -> Option<UtcSeconds> {
    let mut fields = [None::<u32>; 4];
    let keys = ["y=", "m=", "d=", "h="];
    let mut next = 0;
    for seg in path.split('/') {
        if next < 4 {
            if let Some(v) = seg.strip_prefix(keys[next]) {
                if !v.is_empty() && v.len() <= 4 && v.bytes().all(|b| b.is_ascii_digit()) {
                    fields[next] = v.parse().ok();
                    next += 1;
                    continue;
                }
            }
            if next > 0 {
                // The y/m/d/h segments must be consecutive.
                next = 0;
                fields = [None; 4];
            }
        }
    }
    match fields {
        [Some(y), Some(m), Some(d), Some(h)] => {
            UtcSeconds::from_civil(i64::from(y), m, d, h, 0, 0, 0)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> Option<String> {
        parse_time(s).map(UtcSeconds::to_iso)
    }

    #[test]
    fn milliseconds_are_kept_truncated_from_strings_and_numbers() {
        let t = |s: &str| parse_time_ms(s).map(|(t, ms)| (t.to_iso(), ms));
        let at = "2007-01-09T09:41:00Z".to_string();
        assert_eq!(t("2007-01-09T09:41:00.6816663Z"), Some((at.clone(), 681)));
        assert_eq!(t("2007-01-09T09:41:00.2Z"), Some((at.clone(), 200)));
        assert_eq!(t("2007-01-09T09:41:00.05"), Some((at.clone(), 50)));
        assert_eq!(t("2007-01-09T09:41:00Z"), Some((at.clone(), 0)));
        assert_eq!(t("1/9/2007 9:41:00.999 AM"), Some((at.clone(), 999)));
        let secs = parse_time("2007-01-09T09:41:00Z")
            .map(|t| t.0)
            .unwrap_or_default();
        assert_eq!(
            from_epoch_number_ms((secs * 1000 + 123) as f64),
            Some((UtcSeconds(secs), 123))
        );
        assert_eq!(
            from_epoch_number_ms(secs as f64 + 0.5),
            Some((UtcSeconds(secs), 500))
        );
        assert_eq!(from_epoch_number_ms(-1.5), Some((UtcSeconds(-2), 500)));
    }

    #[test]
    fn the_forms_azure_writes() {
        let want = Some("2007-01-09T09:41:00Z".to_string());
        for s in [
            "01/09/2007 09:41:00",
            "1/9/2007 09:41:00",
            "01/09/2007 09:41:00 AM",
            "1/9/2007 9:41:00 AM",
            "1/9/2007 10:41:00 AM +01:00",
            "2007-01-09T09:41:00",
            "2007-01-09T09:41:00.22Z",
            "2007-01-09T09:41:00.6816663Z",
            "2007-01-09T09:41:00.535404056Z",
            "2007-01-09T09:41:00.992099+00:00",
            "2007-01-09T11:41:00+02:00",
            "2007-01-09 09:41:00.123",
            "2007-01-09T09: 41: 00.1234567Z",
            "2007-01-09T04:41:00-0500",
        ] {
            assert_eq!(iso(s), want, "{s}");
        }
        assert_eq!(
            iso("8/22/2022 6:07:16 PM").as_deref(),
            Some("2022-08-22T18:07:16Z")
        );
        assert_eq!(
            iso("8/22/2022 12:07:16 AM").as_deref(),
            Some("2022-08-22T00:07:16Z")
        );
        assert_eq!(
            iso("2019-12-31T23:30:00-01:00").as_deref(),
            Some("2020-01-01T00:30:00Z")
        );
        assert_eq!(iso("2020-02-29").as_deref(), Some("2020-02-29T00:00:00Z"));
        // Found by fuzzing: a fraction longer than any integer type.
        assert_eq!(
            iso("2020-02-29T01:02:03.1234567890123456789012345678901234567890Z").as_deref(),
            Some("2020-02-29T01:02:03Z")
        );
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for s in [
            "",
            "yesterday",
            "2019-02-29T00:00:00Z",
            "2019-13-01T00:00:00Z",
            "2019-01-01T24:00:00Z",
            "2019-01-01T10:00:00Q",
            "13:00 PM",
            "1/1/2020 13:00:00 PM",
            "2019-01-01T10:00:00+25:00",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(iso(s), None, "{s}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn blob_path_hours() {
        let p = "resourceId=/SUBSCRIPTIONS/X/y=2024/m=02/d=29/h=07/m=00/PT1H.json";
        assert_eq!(
            blob_path_hour(p).map(UtcSeconds::to_iso).as_deref(),
            Some("2024-02-29T07:00:00Z")
        );
        assert_eq!(blob_path_hour("a/b/PT1H.json"), None);
    }

    #[test]
    fn epoch_numbers() {
        assert_eq!(
            from_epoch_number(0.0).map(UtcSeconds::to_iso).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            from_epoch_number(1.7e12).map(UtcSeconds::to_iso).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
    }
}
