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
    let s = raw.trim();
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

/// The address in `raw` as `sourceIPAddress` writes it (the address's own form), if it holds one:
/// a plain IPv4 address is its own text, borrowed, since the parser takes no other form of it
/// (no leading zeros, no blanks); the rest is formatted.
pub fn source_ip_text(raw: &str) -> Option<Cow<'_, str>> {
    let ip = source_ip(raw)?;
    let s = raw.trim();
    Some(match ip {
        IpAddr::V4(v4) if s.len() <= 15 && s.bytes().all(|b| b == b'.' || b.is_ascii_digit()) => {
            debug_assert_eq!(v4.to_string(), s);
            Cow::Borrowed(s)
        }
        _ => Cow::Owned(ip.to_string()),
    })
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
            "0.0.0.0",
            "<null>",
        ] {
            assert_eq!(source_ip_text(s).map(String::from), ip(s), "{s}");
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
