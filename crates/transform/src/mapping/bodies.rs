//! Request and response bodies that Azure writes as JSON inside a string: kept as JSON when they
//! parse, minified, otherwise as text.

use super::*;

/// `requestParameters` / `responseElements` from a body that is JSON, or a string holding JSON.
pub(super) fn write_body(
    ed: &mut Doc,
    tmp: &mut Vec<u8>,
    key: &'static str,
    body: Val<'_, '_>,
    truncated: &mut Vec<&'static str>,
) {
    tmp.clear();
    match body.first() {
        Some(Node::Object { .. }) => write_value(tmp, body, None),
        Some(Node::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return;
            }
            // A JSON object in a string is kept as written: its numbers keep every digit and
            // repeated keys stay (a rebuilt value would round 30-digit numbers and drop them).
            match serde_json::from_str::<&serde_json::value::RawValue>(t) {
                Ok(v)
                    if v.get().starts_with('{')
                        && !crate::json::nests_deeper_than(v.get().as_bytes(), MAX_VALUE_DEPTH) =>
                {
                    minify_into(tmp, v.get().as_bytes())
                }
                // Not a JSON object: kept as text so nothing is lost.
                _ => {
                    tmp.extend_from_slice(b"{\"body\":");
                    write_str(tmp, t);
                    tmp.push(b'}');
                }
            }
        }
        Some(Node::Array { .. }) => {
            tmp.extend_from_slice(b"{\"body\":");
            write_value(tmp, body, None);
            tmp.push(b'}');
        }
        _ => return,
    }
    if tmp.len() > MAX_PARAMETERS_BYTES {
        truncated.push(key);
        return;
    }
    ed.punct(b',');
    ed.key(key);
    ed.literal(tmp);
}

/// Appends valid JSON `json` without the blanks between its tokens (line breaks of a
/// pretty-printed body would be raw control characters in `eventData`'s text); every value stays
/// exactly as written.
pub(super) fn minify_into(out: &mut Vec<u8>, json: &[u8]) {
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        out.push(b);
    }
}

/// Writes a raw JSON value of the record as it stands, without blanks between its tokens.
pub(super) fn literal_minified(ed: &mut Doc, raw: &[u8]) {
    // Most values hold no line breaks or tabs: they are escaped as they stand, in one pass.
    if !ed.literal_clean(raw) {
        let mut compact = Vec::with_capacity(raw.len());
        minify_into(&mut compact, raw);
        ed.literal(&compact);
    }
}
