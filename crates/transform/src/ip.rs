//! Caller addresses: what Azure writes in `callerIpAddress` / `properties.ipAddress`, reduced to a
//! valid IPv4 or IPv6 address for `sourceIPAddress`, or nothing.
//!
//! Azure writes plain addresses, `ip:port`, `[v6]:port`, CIDR ranges, `<null>`, placeholders such as
//! `<CALLER IP ADDRESS>`, empty strings and the unspecified `0.0.0.0`. Only a real address is kept
//! (a port is stripped); the rest is left out rather than guessed, since CloudTrail Lake rejects an
//! invalid `sourceIPAddress` and an invented one would mislead.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address in `raw`, if it holds one.
pub fn source_ip(raw: &str) -> Option<IpAddr> {
    let s = crate::fields::trim(raw);
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let ip = if let Ok(v4) = s.parse::<Ipv4Addr>() {
        IpAddr::V4(v4)
    } else if let Ok(v6) = s.parse::<Ipv6Addr>() {
        IpAddr::V6(v6)
    } else if let Some(rest) = s.strip_prefix('[') {
        // [v6]:port or [v6]
        let (inner, _) = rest.split_once(']')?;
        IpAddr::V6(inner.parse().ok()?)
    } else if let Some((host, port)) = s.rsplit_once(':') {
        // v4:port (a v6 address without brackets was tried whole above)
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    } else {
        return None;
    };
    if ip.is_unspecified() {
        return None;
    }
    Some(ip)
}

/// The address in `raw` as `sourceIPAddress` writes it (the address's own form), if it holds one.
///
/// Borrowed when `raw` (trimmed) already is that form, as Azure nearly always writes it: a plain
/// IPv4 address (the parser takes no other form of one: no leading zeros, no blanks) or an IPv6
/// address in its canonical text; otherwise formatted.
pub fn source_ip_text(raw: &str) -> Option<Cow<'_, str>> {
    let s = crate::fields::trim(raw);
    if let Some(v4) = plain_ipv4(s) {
        return (!v4.is_unspecified()).then_some(Cow::Borrowed(s));
    }
    let ip = match full_ipv6(s) {
        Some(v6) if v6.is_unspecified() => return None,
        Some(v6) => IpAddr::V6(v6),
        None => source_ip(s)?,
    };
    Some(match ip {
        IpAddr::V6(v6) => {
            let mut buf = [0u8; V6_TEXT_MAX];
            match canonical_v6(&v6, &mut buf) {
                Some(text) if text.as_bytes() == s.as_bytes() => Cow::Borrowed(s),
                Some(text) => Cow::Owned(text.to_string()),
                None => Cow::Owned(v6.to_string()),
            }
        }
        ip => Cow::Owned(ip.to_string()),
    })
}

/// `s` as an IPv4 address if it is one written plainly (`a.b.c.d`, each part 0 to 255 without a
/// leading zero): exactly the strings of digits and dots the standard parser takes.
fn plain_ipv4(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    if !(7..=15).contains(&b.len()) {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut part = 0;
    let mut i = 0;
    loop {
        let start = i;
        let (value, digits) = number(&b[i..], 10, 3);
        i += digits;
        if digits == 0 || (digits > 1 && b[start] == b'0') || value > 255 {
            return None;
        }
        octets[part] = value as u8;
        part += 1;
        if part == 4 {
            return (i == b.len()).then_some(Ipv4Addr::from(octets));
        }
        if b.get(i) != Some(&b'.') {
            return None;
        }
        i += 1;
    }
}

/// `s` as an IPv6 address if it is written in full (eight groups of one to four hex digits,
/// no `::`, no IPv4 tail), as Azure writes most: exactly what the standard parser makes of such
/// a string, without its general machinery. Other forms are left to the standard parser.
fn full_ipv6(s: &str) -> Option<Ipv6Addr> {
    let b = s.as_bytes();
    if !(15..=39).contains(&b.len()) {
        return None;
    }
    let mut groups = [0u16; 8];
    let mut i = 0;
    for (n, group) in groups.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
        }
        let (value, digits) = number(&b[i..], 16, 4);
        if digits == 0 {
            return None;
        }
        i += digits;
        // At most four hex digits: below 2^16.
        *group = value as u16;
    }
    (i == b.len()).then(|| Ipv6Addr::from(groups))
}

/// The number written by the digits (in `radix`, 10 or 16) that `b` starts with, at most `max`
/// of them, and how many there were.
#[inline]
fn number(b: &[u8], radix: u32, max: usize) -> (u32, usize) {
    let mut value = 0;
    let mut digits = 0;
    while let Some(d) = b
        .get(digits)
        .filter(|_| digits < max)
        .and_then(|&c| char::from(c).to_digit(radix))
    {
        value = value * radix + d;
        digits += 1;
    }
    (value, digits)
}

/// The longest IPv6 text [`canonical_v6`] writes: eight groups of four hex digits and seven colons.
const V6_TEXT_MAX: usize = 39;

/// `v6` in the text the standard library writes for it (RFC 5952: lower-case hex without leading
/// zeros, the longest run of two or more zero groups, the first of equals, written `::`), into
/// `buf`; None for an IPv4-mapped address, which is written in another form.
fn canonical_v6<'b>(v6: &Ipv6Addr, buf: &'b mut [u8; V6_TEXT_MAX]) -> Option<&'b str> {
    if v6.to_ipv4_mapped().is_some() {
        return None;
    }
    let groups = v6.segments();
    // The longest run of zero groups (the first of equal runs).
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let mut text = Text {
        buf: &mut *buf,
        n: 0,
    };
    if best_len > 1 {
        text.groups(&groups[..best]);
        text.push(b':');
        text.push(b':');
        text.groups(&groups[best + best_len..]);
    } else {
        text.groups(&groups);
    }
    let n = text.n;
    std::str::from_utf8(&buf[..n]).ok()
}

/// IPv6 text being written into a fixed buffer.
struct Text<'b> {
    buf: &'b mut [u8; V6_TEXT_MAX],
    n: usize,
}

impl Text<'_> {
    fn push(&mut self, b: u8) {
        self.buf[self.n] = b;
        self.n += 1;
    }

    /// Groups in lower-case hex without leading zeros, between colons.
    fn groups(&mut self, groups: &[u16]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (k, &g) in groups.iter().enumerate() {
            if k > 0 {
                self.push(b':');
            }
            let digits = (16 - g.leading_zeros()).div_ceil(4).max(1);
            for d in (0..digits).rev() {
                self.push(HEX[usize::from((g >> (4 * d)) & 15)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<String> {
        source_ip(s).map(|i| i.to_string())
    }

    #[test]
    fn keeps_real_addresses_and_strips_ports() {
        assert_eq!(ip("81.2.69.143").as_deref(), Some("81.2.69.143"));
        assert_eq!(ip(" 10.0.0.1:443 ").as_deref(), Some("10.0.0.1"));
        assert_eq!(ip("[2a02:cf40::1]:8080").as_deref(), Some("2a02:cf40::1"));
        assert_eq!(ip("::ffff:10.1.2.3").as_deref(), Some("::ffff:10.1.2.3"));
        assert_eq!(
            ip("2603:c022:c000:301:41db:be0e:16ba:b4d7").as_deref(),
            Some("2603:c022:c000:301:41db:be0e:16ba:b4d7")
        );
    }

    #[test]
    fn the_written_form_is_the_address_s_own() {
        for s in [
            "81.2.69.143",
            " 10.0.0.1 ",
            "10.0.0.1:443",
            "[2a02:cf40::1]:8080",
            "2A02:CF40:0:0::1",
            "2a02:cf40:0:0::1",
            "::ffff:10.1.2.3",
            "1.2.3.04",
            "255.255.255.255",
            "0.0.0.0",
            "<null>",
        ] {
            assert_eq!(source_ip_text(s).map(String::from), ip(s), "{s}");
        }
    }

    proptest::proptest! {
        /// The fast forms agree with the standard library: a plain IPv4 address is taken exactly
        /// when the standard parser takes it, and IPv6 text is the standard library's own.
        #[test]
        fn fast_forms_agree_with_the_standard_library(
            text in r"((25[5-7]|0[0-9]?|[0-9]{1,3})\.){3}(25[5-7]|0[0-9]?|[0-9]{1,3})|[0-9.]{0,16}",
            v6text in r"([0-9a-fA-F]{0,5}:){6,8}[0-9a-fA-Fg.]{0,5}|[0-9a-f:]{0,40}",
            groups in proptest::array::uniform8(proptest::prop_oneof![
                3 => proptest::strategy::Just(0u16),
                1 => proptest::strategy::Just(1u16),
                4 => proptest::num::u16::ANY,
            ]),
        ) {
            proptest::prop_assert_eq!(plain_ipv4(&text), text.parse::<Ipv4Addr>().ok());
            // The full form is read as the standard parser reads it, and only it.
            let full = groups.iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":");
            proptest::prop_assert_eq!(full_ipv6(&full), Some(Ipv6Addr::from(groups)));
            let upper = groups.iter().map(|g| format!("{g:04X}")).collect::<Vec<_>>().join(":");
            proptest::prop_assert_eq!(full_ipv6(&upper), Some(Ipv6Addr::from(groups)));
            if let Some(v6) = full_ipv6(&v6text) {
                proptest::prop_assert_eq!(Some(v6), v6text.parse::<Ipv6Addr>().ok());
            }
            let v6 = Ipv6Addr::from(groups);
            let mut buf = [0u8; V6_TEXT_MAX];
            match canonical_v6(&v6, &mut buf) {
                Some(t) => proptest::prop_assert_eq!(t, v6.to_string()),
                None => proptest::prop_assert!(v6.to_ipv4_mapped().is_some()),
            }
            let written = v6.to_string();
            let expected = ip(&written);
            proptest::prop_assert_eq!(source_ip_text(&written).map(String::from), expected);
        }
    }

    #[test]
    fn leaves_out_what_is_not_an_address() {
        for s in [
            "",
            "<null>",
            "<CALLER IP ADDRESS>",
            "127.0.0.0/8",
            "0.0.0.0",
            "::",
            "111.111.111.1111",
            "1.2.3.4:port",
            "host.example.com",
            // nine groups: `::` before eight full groups (seen in the corpus)
            "::2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6",
        ] {
            assert_eq!(ip(s), None, "{s}");
        }
    }
}
