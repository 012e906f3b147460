//! JSON output without a document model: writing parsed values back out, and the [`Doc`] that
//! writes `eventData` escaped as it goes into the request.
//!
//! The hot path builds every `eventData` by appending to one reused buffer, escaped once (see
//! [`crate::escape`]), so nothing is allocated per field and nothing is serialized twice.
//! Values are written from simd-json's tape (a flat list of nodes), iteratively, so a deeply
//! nested record cannot exhaust the stack.

use crate::limits::MAX_VALUE_DEPTH;
use simd_json::{Node, StaticNode};

pub use crate::escape::{
    escape_clean_into, escape_into, escaped_len, has_control, is_plain, unescape_into,
};

/// Where JSON is written: a plain buffer, or a [`Doc`] that writes it escaped.
pub trait JsonSink {
    /// One structural byte: `{ } [ ] , :` (never a quote or a backslash).
    fn punct(&mut self, b: u8);
    /// Bytes that need no escaping in either form (digits, `true`, `null`, ...).
    fn plain(&mut self, b: &[u8]);
    /// A quoted JSON string.
    fn string(&mut self, s: &str);
}

impl JsonSink for Vec<u8> {
    #[inline]
    fn punct(&mut self, b: u8) {
        self.push(b);
    }
    #[inline]
    fn plain(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    #[inline]
    fn string(&mut self, s: &str) {
        write_str(self, s);
    }
}

/// A JSON document written as it goes into a request: escaped as the contents of a JSON string
/// (`wire`), with the length of the document itself counted beside it (the limits count that).
/// A string that needs no escaping, the common case, is copied once; the document itself is never
/// kept, so nothing is written twice ([`unescape_into`] gives it back where it is wanted).
#[derive(Debug, Default)]
pub struct Doc {
    /// The document escaped as a JSON string's contents.
    pub wire: Vec<u8>,
    /// The length of the document itself.
    json_len: usize,
    /// A string escaped once, on its way to being escaped again.
    tmp: Vec<u8>,
}

impl Doc {
    /// Empties the document.
    pub fn clear(&mut self) {
        self.wire.clear();
        self.json_len = 0;
    }

    /// The length of the document itself (not escaped).
    pub fn json_len(&self) -> usize {
        self.json_len
    }

    /// Where the document ends now (its own length, the escaped length), to return to with
    /// [`Doc::truncate`].
    pub fn mark(&self) -> (usize, usize) {
        (self.json_len, self.wire.len())
    }

    /// Returns the document to a [`Doc::mark`].
    pub fn truncate(&mut self, mark: (usize, usize)) {
        self.json_len = mark.0;
        self.wire.truncate(mark.1);
    }

    /// A piece of JSON written verbatim (a literal run of keys and punctuation, or a value).
    pub fn literal(&mut self, json: &[u8]) {
        self.json_len += json.len();
        escape_into(&mut self.wire, json);
    }

    /// Like [`Doc::literal`] for JSON that should hold no control character (no blank but
    /// spaces between its tokens): false, with nothing written, if it does hold one.
    pub fn literal_clean(&mut self, json: &[u8]) -> bool {
        let clean = escape_clean_into(&mut self.wire, json);
        if clean {
            self.json_len += json.len();
        }
        clean
    }

    /// `"key":` for a key of the mapping's own that needs no escaping (a constant): written
    /// without looking at it, a few moves once inlined.
    #[inline(always)]
    pub fn plain_key(&mut self, key: &str) {
        debug_assert!(is_plain(key), "{key:?} needs escaping");
        self.json_len += key.len() + 3;
        self.wire.extend_from_slice(b"\\\"");
        self.wire.extend_from_slice(key.as_bytes());
        self.wire.extend_from_slice(b"\\\":");
    }

    /// `"key":`.
    pub fn key(&mut self, key: &str) {
        self.string(key);
        self.punct(b':');
    }
}

impl JsonSink for Doc {
    #[inline]
    fn punct(&mut self, b: u8) {
        self.json_len += 1;
        self.wire.push(b);
    }
    #[inline]
    fn plain(&mut self, b: &[u8]) {
        self.json_len += b.len();
        self.wire.extend_from_slice(b);
    }
    #[inline]
    fn string(&mut self, s: &str) {
        // Most strings need no escaping: copied as they are, the check made in the same pass.
        self.wire.extend_from_slice(b"\\\"");
        if crate::escape::push_plain(&mut self.wire, s.as_bytes()) {
            self.json_len += s.len() + 2;
            self.wire.extend_from_slice(b"\\\"");
        } else {
            self.wire.truncate(self.wire.len() - 2);
            self.tmp.clear();
            write_str(&mut self.tmp, s);
            self.json_len += self.tmp.len();
            escape_into(&mut self.wire, &self.tmp);
        }
    }
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
pub fn write_static<S: JsonSink + ?Sized>(out: &mut S, s: &StaticNode) {
    match s {
        StaticNode::I64(n) => write_int(out, *n),
        StaticNode::U64(n) => {
            let mut b = [0; 20];
            out.plain(fmt_u64(&mut b, *n));
        }
        StaticNode::F64(f) => {
            if f.is_finite() {
                let mut b = ryu::Buffer::new();
                out.plain(b.format_finite(*f).as_bytes());
            } else {
                out.plain(b"null");
            }
        }
        StaticNode::Bool(true) => out.plain(b"true"),
        StaticNode::Bool(false) => out.plain(b"false"),
        StaticNode::Null => out.plain(b"null"),
    }
}

/// Appends an integer.
pub fn write_int<S: JsonSink + ?Sized>(out: &mut S, n: i64) {
    let mut b = [0; 20];
    if n < 0 {
        out.plain(b"-");
    }
    out.plain(fmt_u64(&mut b, n.unsigned_abs()));
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

/// Whether the value at the start of `nodes` nests more than `max` levels deep (a scalar is 0
/// deep, `[]` 1). Stops as soon as it knows.
pub fn tape_deeper_than(nodes: &[Node<'_>], max: usize) -> bool {
    let end = node_span(nodes);
    // Nesting deeper than `max` takes more than `max` containers: most records have fewer.
    let containers = nodes[..end]
        .iter()
        .filter(|n| matches!(n, Node::Object { .. } | Node::Array { .. }))
        .count();
    if containers <= max {
        return false;
    }
    // The ends of the open containers, innermost last: at most `max` of them are ever kept,
    // in a fixed array on the stack (this runs once per record).
    const KEEP: usize = 64;
    let mut small = [0usize; KEEP];
    let mut large = Vec::new();
    let ends: &mut [usize] = if max < KEEP {
        &mut small
    } else {
        large.resize(max, 0);
        &mut large
    };
    let mut open = 0;
    for (i, node) in nodes[..end].iter().enumerate() {
        while open > 0 && i >= ends[open - 1] {
            open -= 1;
        }
        if let Node::Object { count, .. } | Node::Array { count, .. } = node {
            if open == max {
                return true;
            }
            ends[open] = i + count + 1;
            open += 1;
        }
    }
    false
}

/// Whether the JSON text `json` nests more than `max` levels deep (brackets inside strings do
/// not count). A byte scan: for text that was not parsed.
pub fn nests_deeper_than(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(at) = memchr::memchr3(b'"', b'{', b'[', &json[i..]) {
        // Closing brackets between here and the next opening one or string.
        depth = depth.saturating_sub(
            json[i..i + at]
                .iter()
                .filter(|&&b| b == b'}' || b == b']')
                .count(),
        );
        i += at;
        if json[i] == b'"' {
            // Skip the string (its brackets are text), from one quote or backslash to the next.
            i += 1;
            loop {
                match memchr::memchr2(b'"', b'\\', &json[i..]) {
                    Some(k) if json[i + k] == b'\\' => i += k + 2,
                    Some(k) => {
                        i += k + 1;
                        break;
                    }
                    None => return false,
                }
                if i >= json.len() {
                    return false;
                }
            }
        } else {
            depth += 1;
            if depth > max {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// Writes the value at the start of `nodes` as JSON, keeping key order. When `skip` is given and
/// the value is an object, its top-level members for which `skip(key)` is true are left out.
/// Parts nested deeper than [`MAX_VALUE_DEPTH`] are written as a string holding their JSON.
pub fn write_value<S: JsonSink + ?Sized>(
    out: &mut S,
    nodes: &[Node<'_>],
    skip: Option<&dyn Fn(&str) -> bool>,
) {
    write_nodes(out, nodes, skip, MAX_VALUE_DEPTH);
}

fn write_nodes<S: JsonSink + ?Sized>(
    out: &mut S,
    nodes: &[Node<'_>],
    skip: Option<&dyn Fn(&str) -> bool>,
    max_depth: usize,
) {
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
            out.punct(if open.is_obj { b'}' } else { b']' });
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
                    out.punct(b',');
                }
                open.first = false;
                out.string(key);
                out.punct(b':');
                i += 1;
            } else {
                if !open.first {
                    out.punct(b',');
                }
                open.first = false;
            }
        }
        match &nodes[i] {
            Node::String(s) => out.string(s),
            Node::Static(s) => write_static(out, s),
            Node::Object { .. } | Node::Array { .. } if stack.len() >= max_depth => {
                // Too deep to keep as structure: its JSON, as text.
                let span = node_span(&nodes[i..]);
                let mut text = Vec::new();
                write_nodes(&mut text, &nodes[i..i + span], None, usize::MAX);
                out.string(std::str::from_utf8(&text).unwrap_or_default());
                i += span;
                continue;
            }
            Node::Object { len, .. } => {
                out.punct(b'{');
                stack.push(Open {
                    left: *len,
                    is_obj: true,
                    first: true,
                });
            }
            Node::Array { len, .. } => {
                out.punct(b'[');
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_outside_strings_only() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(deep(64).as_bytes(), 64));
        assert!(nests_deeper_than(deep(65).as_bytes(), 64));
        // Brackets in strings, escaped quotes and backslashes are text.
        let text = format!(
            r#"{{"a":"{}\"{}\\","b":[1]}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(!nests_deeper_than(text.as_bytes(), 3));
        // Closed brackets free their depth; an unterminated string ends the scan.
        let siblings = "[[1],[2],[3],[4]]".repeat(3);
        assert!(!nests_deeper_than(siblings.as_bytes(), 2));
        assert!(nests_deeper_than(b"[[[", 2));
        assert!(!nests_deeper_than(br#"["[[[["#, 2));
    }

    fn roundtrip(json: &str) -> String {
        let mut bytes = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes).unwrap();
        let mut out = Vec::new();
        write_value(&mut out, &tape.0, None);
        String::from_utf8(out).unwrap()
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
