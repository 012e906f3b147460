//! JSON output without a document model: string escaping and writing parsed values back out.
//!
//! The hot path builds every `eventData` by appending to one reused buffer, and then escapes that
//! whole document once more into the PutAuditEvents request. Both steps are byte loops over
//! lookup tables here, so nothing is allocated per field and nothing is serialized twice.
//! Values are written from simd-json's tape (a flat list of nodes), iteratively, so a deeply
//! nested record cannot exhaust the stack.

use simd_json::{Node, StaticNode};

/// Bytes that must be escaped inside a JSON string: `"`, `\` and the control characters.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as the contents of a JSON string (without the quotes).
#[inline]
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// The length `s` takes once escaped (without quotes).
pub fn escaped_len(s: &[u8]) -> usize {
    s.iter()
        .map(|&b| {
            if !NEEDS_ESCAPE[b as usize] {
                1
            } else if matches!(b, b'"' | b'\\' | b'\n' | b'\r' | b'\t') {
                2
            } else {
                6
            }
        })
        .sum()
}

/// Appends `s` as a quoted JSON string.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s.as_bytes());
    out.push(b'"');
}

/// Appends `"key":` (the key must need no escaping).
#[inline]
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends a number or literal.
pub fn write_static(out: &mut Vec<u8>, s: &StaticNode) {
    match s {
        StaticNode::I64(n) => write_int(out, *n),
        StaticNode::U64(n) => {
            let mut b = itoa_buf();
            out.extend_from_slice(fmt_u64(&mut b, *n));
        }
        StaticNode::F64(f) => {
            if f.is_finite() {
                let mut b = ryu::Buffer::new();
                out.extend_from_slice(b.format_finite(*f).as_bytes());
            } else {
                out.extend_from_slice(b"null");
            }
        }
        StaticNode::Bool(true) => out.extend_from_slice(b"true"),
        StaticNode::Bool(false) => out.extend_from_slice(b"false"),
        StaticNode::Null => out.extend_from_slice(b"null"),
    }
}

/// Appends an integer.
pub fn write_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut b = itoa_buf();
    out.extend_from_slice(fmt_u64(&mut b, n.unsigned_abs()));
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// The number of tape nodes the value starting at `nodes[0]` occupies.
#[inline]
pub fn node_span(nodes: &[Node<'_>]) -> usize {
    match nodes.first() {
        Some(Node::Object { count, .. }) | Some(Node::Array { count, .. }) => count + 1,
        Some(_) => 1,
        None => 0,
    }
}

/// Writes the value at the start of `nodes` as JSON, keeping key order. When `skip` is given and
/// the value is an object, its top-level members for which `skip(key)` is true are left out.
pub fn write_value(out: &mut Vec<u8>, nodes: &[Node<'_>], skip: Option<&dyn Fn(&str) -> bool>) {
    struct Open {
        left: usize,
        is_obj: bool,
        first: bool,
    }
    let mut stack: Vec<Open> = Vec::new();
    let end = node_span(nodes);
    let mut i = 0;
    loop {
        while let Some(open) = stack.last() {
            if open.left > 0 {
                break;
            }
            out.push(if open.is_obj { b'}' } else { b']' });
            stack.pop();
        }
        if i >= end {
            break;
        }
        let depth = stack.len();
        if let Some(open) = stack.last_mut() {
            open.left -= 1;
            if open.is_obj {
                let Node::String(key) = nodes[i] else {
                    // A parser's tape always has string keys; stop rather than write garbage.
                    return;
                };
                if depth == 1 && skip.is_some_and(|skip| skip(key)) {
                    i += 1 + node_span(&nodes[i + 1..]);
                    continue;
                }
                if !open.first {
                    out.push(b',');
                }
                open.first = false;
                write_str(out, key);
                out.push(b':');
                i += 1;
            } else {
                if !open.first {
                    out.push(b',');
                }
                open.first = false;
            }
        }
        match &nodes[i] {
            Node::String(s) => write_str(out, s),
            Node::Static(s) => write_static(out, s),
            Node::Object { len, .. } => {
                out.push(b'{');
                stack.push(Open {
                    left: *len,
                    is_obj: true,
                    first: true,
                });
            }
            Node::Array { len, .. } => {
                out.push(b'[');
                stack.push(Open {
                    left: *len,
                    is_obj: false,
                    first: true,
                });
            }
        }
        i += 1;
    }
}

/// Whether `s` is a JSON string's content that needs no escaping (fast checks for keys).
pub fn is_plain(s: &str) -> bool {
    !s.bytes().any(|b| NEEDS_ESCAPE[b as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(json: &str) -> String {
        let mut bytes = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes).unwrap();
        let mut out = Vec::new();
        write_value(&mut out, &tape.0, None);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_controls_quotes_and_backslashes() {
        let mut out = Vec::new();
        escape_into(&mut out, b"a\"b\\c\nd\x01\x1f\te");
        assert_eq!(out, b"a\\\"b\\\\c\\nd\\u0001\\u001f\\te");
        assert_eq!(escaped_len(b"a\"b\\c\nd\x01\x1f\te"), out.len());
    }

    #[test]
    fn writes_values_back_in_order() {
        for json in [
            r#"{"b":1,"a":[1,2,{"x":null}],"c":{},"d":[],"e":"q\"\\","f":-3,"g":1.5,"h":true}"#,
            r#"[[],[[]],{"a":{"b":{"c":[1]}}}]"#,
            r#""just a string""#,
            "12",
            r#"{"z":[{"a":1},{"b":2}],"y":[]}"#,
        ] {
            let got = roundtrip(json);
            let a: serde_json::Value = serde_json::from_str(json).unwrap();
            let b: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert_eq!(a, b, "{json} -> {got}");
        }
        assert_eq!(roundtrip(r#"{"b":1,"a":2}"#), r#"{"b":1,"a":2}"#);
    }
}
