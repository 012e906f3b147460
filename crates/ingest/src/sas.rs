//! Minting a read-and-list service SAS for one container from the account key, so that no request
//! ever carries the key (Microsoft's Rust SDK has no Shared Key signing, by design).
//!
//! The signature is Azure's documented service SAS (version 2020-12-06 and later): HMAC-SHA256,
//! keyed with the decoded account key, over the newline-joined fields below; the token carries
//! the fields and the base64 signature.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::layout::iso;

/// The SAS version minted.
pub const SAS_VERSION: &str = "2022-11-02";

/// `text` with every secret a SAS or connection string can carry blanked out: the value of each
/// `sig` query parameter (the signature that makes a SAS work; also percent-encoded, `sig%3D`)
/// and of `AccountKey=`. Everything else (the account, the container, the expiry) stays, so an
/// error still says what failed. Every error that can hold an Azure URL is passed through this.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    const SECRETS: [&str; 3] = ["sig=", "sig%3d", "accountkey="];
    let lower = text.to_ascii_lowercase();
    let starts: Vec<(usize, usize)> = SECRETS
        .iter()
        .flat_map(|name| {
            lower.match_indices(name).filter_map(|(at, m)| {
                // A parameter name starts the text or follows a separator.
                let before = &lower[..at];
                let starts_name = before.ends_with("%26")
                    || before.ends_with("%3f")
                    || before
                        .chars()
                        .next_back()
                        .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
                starts_name.then_some((at, m.len()))
            })
        })
        .collect();
    if starts.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    let mut starts = starts;
    starts.sort_unstable();
    for (at, len) in starts {
        if at < pos {
            continue;
        }
        let value = at + len;
        let end = text[value..]
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(c, '&' | ';' | '"' | '\'' | ')' | '>' | '<' | '#' | ',')
            })
            .map_or(text.len(), |k| value + k);
        out.push_str(&text[pos..value]);
        out.push_str("REDACTED");
        pos = end;
    }
    out.push_str(&text[pos..]);
    std::borrow::Cow::Owned(out)
}

/// An error's whole chain as text, with [`redact`] applied: what an Azure SDK error is kept as,
/// since its text names the request's URL and with it the SAS.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Redacted(String);

impl Redacted {
    /// The redacted text of `e` and its causes (`what: why: deeper why`).
    pub fn new(e: &(dyn std::error::Error + 'static)) -> Self {
        Self(redact(&aztrail_state::error_chain(e)).into_owned())
    }
}

/// Why a SAS could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the account key is not valid base64")]
pub struct BadKey;

/// A service SAS token (without `?`) granting read and list on `container` from `start` to
/// `expiry` (seconds since the epoch).
pub fn container_sas(
    account: &str,
    key_base64: &str,
    container: &str,
    start: i64,
    expiry: i64,
) -> Result<String, BadKey> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_base64.trim())
        .map_err(|_| BadKey)?;
    let (permissions, resource) = ("rl", "c");
    let (st, se) = (iso(start), iso(expiry));
    let canonical = format!("/blob/{account}/{container}");
    // permissions, start, expiry, resource, identifier, IP, protocol, version, resource type,
    // snapshot time, encryption scope, then the five response-header overrides.
    let to_sign = [
        permissions,
        &st,
        &se,
        &canonical,
        "",
        "",
        "",
        SAS_VERSION,
        resource,
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadKey)?;
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Ok(format!(
        "sv={SAS_VERSION}&st={}&se={}&sr={resource}&sp={permissions}&sig={}",
        encode(&st),
        encode(&se),
        encode(&sig)
    ))
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_keys_are_blanked_wherever_they_stand() {
        let url = "GET https://acct.blob.core.windows.net/insights-activity-logs?restype=container&comp=list&sv=2022-11-02&st=2026-12-03T10%3A00%3A00Z&se=2026-12-03T11%3A00%3A00Z&sr=c&sp=rl&sig=AbC%2Bd%2Fe%3D failed: connection refused";
        let r = redact(url);
        assert!(!r.contains("AbC"), "{r}");
        assert!(r.contains("sig=REDACTED failed"), "{r}");
        assert!(r.contains("sp=rl&"), "the rest stays: {r}");
        // Percent-encoded, in a connection string, in quotes, with odd casing, twice.
        for (text, secret) in [
            ("next=https%3A%2F%2Fa%2Fc%3Fsv%3D1%26sig%3DSeCrEt", "SeCrEt"),
            (
                "BlobEndpoint=https://a/;SharedAccessSignature=sv=1&SIG=SeCrEt;x=y",
                "SeCrEt",
            ),
            (
                "AccountName=a;AccountKey=SeCrEt==;EndpointSuffix=core",
                "SeCrEt",
            ),
            (
                "url: \"https://a/c?sig=SeCrEt\" and ?sig=SeCrEt2&x",
                "SeCrEt",
            ),
        ] {
            let r = redact(text);
            assert!(!r.contains(secret), "{text} -> {r}");
            assert!(r.contains("REDACTED"), "{r}");
        }
        // Names that only end in "sig" are not secrets; text without secrets is not copied.
        assert_eq!(redact("design=1&xsig=2"), "design=1&xsig=2");
        assert!(matches!(
            redact("nothing here"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_redacted_error_keeps_its_chain_without_the_signature() {
        #[derive(Debug, thiserror::Error)]
        #[error("request to https://a/c?sv=1&sig=SeCrEt failed")]
        struct Inner;
        #[derive(Debug, thiserror::Error)]
        #[error("listing")]
        struct Outer(#[source] Inner);
        let r = Redacted::new(&Outer(Inner)).to_string();
        assert_eq!(
            r,
            "listing: request to https://a/c?sv=1&sig=REDACTED failed"
        );
    }

    #[test]
    fn the_token_carries_its_fields_and_a_signature_over_them() {
        let key = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef");
        let t = container_sas("acct", &key, "insights-logs", 1_796_076_000, 1_796_079_600).unwrap();
        assert!(t.starts_with("sv=2022-11-02&st=2026-11-30T22%3A00%3A00Z&se=2026-11-30T23%3A00%3A00Z&sr=c&sp=rl&sig="), "{t}");
        // Recompute the signature independently of the function's own joining.
        let to_sign = "rl\n2026-11-30T22:00:00Z\n2026-11-30T23:00:00Z\n/blob/acct/insights-logs\n\n\n\n2022-11-02\nc\n\n\n\n\n\n\n";
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef").unwrap();
        mac.update(to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert!(t.ends_with(&format!("sig={}", encode(&sig))));
        // Another container, another signature.
        let other = container_sas("acct", &key, "other", 1_796_076_000, 1_796_079_600).unwrap();
        assert_ne!(t, other);
        assert_eq!(container_sas("acct", "not base64!", "c", 0, 1), Err(BadKey));
    }
}
