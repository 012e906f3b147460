//! The hard limits of PutAuditEvents (DESIGN.md, "Hard limits"), in one place.
//!
//! "kB" and "MB" are read as powers of ten: the conservative reading, so an event or request that
//! fits here fits whichever way the service counts. Lengths are in bytes of UTF-8, which is never
//! fewer than the characters the service counts.

/// Events in one PutAuditEvents call.
pub const MAX_EVENTS_PER_CALL: usize = 100;
/// Serialized request body of one call, in bytes (escaped `eventData` included).
pub const MAX_REQUEST_BYTES: usize = 1_000_000;
/// `id` length (characters of `[-_A-Za-z0-9]`).
pub const MAX_ID_LEN: usize = 128;
/// `version`.
pub const MAX_VERSION_LEN: usize = 256;
/// `userIdentity.type`.
pub const MAX_IDENTITY_TYPE_LEN: usize = 128;
/// `userIdentity.principalId`, `userAgent`, `eventSource`, `eventName`, `UID`.
pub const MAX_NAME_LEN: usize = 1024;
/// `errorCode`, `errorMessage`.
pub const MAX_ERROR_LEN: usize = 256;
/// `requestParameters`, `responseElements` (serialized JSON).
pub const MAX_PARAMETERS_BYTES: usize = 100_000;
/// The record's whole `identity` in `userIdentity.details` (serialized JSON). The service sets
/// no limit of its own there but the event's; aztrail keeps identities up to the size it allows
/// `additionalEventData` (real ones are a few kB), and past it lists the identity in `truncated`.
pub const MAX_IDENTITY_BYTES: usize = 28_000;
/// `additionalEventData` (serialized JSON).
pub const MAX_ADDITIONAL_BYTES: usize = 28_000;

/// How deep a record's value may nest where the event holds it. Deeper parts are kept as JSON
/// text (a string holding their JSON) and listed in `additionalEventData.nestedAsText`, so that
/// `eventData` as a whole nests at most this plus five levels: far within what SQLite's JSON
/// functions (1,000), Athena and CloudWatch Logs Insights read. Azure's records nest about ten.
pub const MAX_VALUE_DEPTH: usize = 32;

/// The longest prefix of `s` that is at most `max` bytes and ends on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("é", 0), "");
    }
}
