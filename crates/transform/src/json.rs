//! JSON output without a document model: string escaping and writing parsed values back out.
//!
//! The hot path builds every `eventData` by appending to one reused buffer, and then escapes that
//! whole document once more into the PutAuditEvents request. Both steps are byte loops over
//! lookup tables here, so nothing is allocated per field and nothing is serialized twice.
//! Values are written from simd-json's tape (a flat list of nodes), iteratively, so a deeply
//! nested record cannot exhaust the stack.

use crate::limits::MAX_VALUE_DEPTH;
use simd_json::{Node, StaticNode};

/// How each byte is written inside a JSON string: 0 as itself, 1 behind a backslash (`"`, `\\`),
/// 2 as a short or `\u00XX` escape (the control characters).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 2;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as the contents of a JSON string (without the quotes).
///
/// Sixteen bytes at a time with SSE2 where the CPU is x86-64 (every one has it), eight at a time
/// elsewhere and after a control character. This is the hot loop of building PutAuditEvents
/// requests (every byte of every `eventData` passes through it), hence the care.
#[inline]
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    let s = &s[escape_sse2(out, s)..];
    escape_words(out, s);
}

/// Like [`escape_into`] for text that should hold no control character (a raw JSON value copied
/// as it stands): false, with nothing appended, if it does hold one.
#[inline]
pub fn escape_clean_into(out: &mut Vec<u8>, s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let start = out.len();
        // The SSE2 steps stop short only at a control character.
        if escape_sse2(out, s) < s.len() {
            out.truncate(start);
            return false;
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        if has_control(s) {
            return false;
        }
        escape_words(out, s);
        true
    }
}

/// The SSE2 steps of [`escape_into`]: escapes `s` sixteen bytes a step, the last bytes (fewer
/// than 32) through a copy padded with letters, and returns how much of `s` it took: all of it,
/// or everything before the step holding the first control character (the caller escapes the
/// rest).
#[cfg(target_arch = "x86_64")]
fn escape_sse2(out: &mut Vec<u8>, s: &[u8]) -> usize {
    let start = out.len();
    // Each byte of `s` becomes at most two; a step writes at most 47 bytes past where it starts,
    // and the padded tail's letters (fewer than 16) are written before being taken back.
    out.reserve(2 * s.len() + 64);
    let src = s.as_ptr();
    let dst = out.as_mut_ptr();
    let (mut i, mut j) = (0usize, start);
    // SAFETY (what `sse2_step` asks). Reads: in the main loop a step at `i` runs only while
    // `i + 32 <= s.len()`, so its 31 bytes lie inside `s`; the tail holds `r < 32` bytes, so its
    // steps start at `k` = 0 or 16 and read below 16 + 31 < 64, inside `pad`. Writes: before a
    // step, `j - start <= 2 * t` where `t < s.len()` bytes of `s` were taken (the padding is only
    // in the last step); a step writes below its `j + 47`, so every write is below
    // `start + 2 * s.len() + 47`, inside the capacity reserved. `set_len(j)`: a step stores every
    // byte from its `j` to its new `j` (each store starts at or before where the last one ended),
    // and `j` only moves back over bytes already stored.
    unsafe {
        while i + 32 <= s.len() {
            match sse2_step(src.add(i), dst.add(j)) {
                Some(n) => j += n,
                None => {
                    out.set_len(j);
                    return i;
                }
            }
            i += 16;
        }
        let r = s.len() - i;
        if r > 0 {
            let mut pad = [b'a'; 64];
            pad[..r].copy_from_slice(&s[i..]);
            let mut k = 0;
            while k < r {
                match sse2_step(pad.as_ptr().add(k), dst.add(j)) {
                    Some(n) => j += n,
                    None => break,
                }
                k += 16;
            }
            if k >= r {
                // The last step's padding letters (one byte each) ended the output: drop them.
                j -= k - r;
                i = s.len();
            } else {
                i += k;
            }
        }
        out.set_len(j);
    }
    i
}

/// One SSE2 step: escapes the sixteen bytes at `src` into `dst` and returns how many bytes it
/// wrote, or None (having written garbage) if one of them is a control character.
///
/// It loads the sixteen bytes, stores them whole, speculatively, and for each quote or backslash
/// among them writes a backslash where it stands and stores the source's sixteen bytes from that
/// special byte on right after it, so a special byte costs one load and one store.
///
/// # Safety
///
/// `src` must be readable for 31 bytes and `dst` writable for 47.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sse2_step(src: *const u8, dst: *mut u8) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_storeu_si128,
    };
    // SAFETY: SSE2 is part of x86-64, so these intrinsics exist on every CPU this runs on; the
    // loads read `src[p .. p + 16]` for `p < 16` (within 31 bytes) and the stores write
    // `dst[q .. q + 16]` for `q <= 15 + 15 + 1` (within 47 bytes), as the caller promises.
    unsafe {
        let v = _mm_loadu_si128(src.cast::<__m128i>());
        // A byte is a control character when max(byte, 0x1f) == 0x1f.
        let below_space = _mm_set1_epi8(0x1f);
        let controls = _mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space);
        if _mm_movemask_epi8(controls) != 0 {
            return None;
        }
        let quotes = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslashes = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let mut mask = _mm_movemask_epi8(_mm_or_si128(quotes, backslashes)) as u32;
        _mm_storeu_si128(dst.cast::<__m128i>(), v);
        let (mut j, mut placed) = (0usize, 0usize);
        while mask != 0 {
            let p = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            j += p - placed;
            *dst.add(j) = b'\\';
            j += 1;
            let rest = _mm_loadu_si128(src.add(p).cast::<__m128i>());
            _mm_storeu_si128(dst.add(j).cast::<__m128i>(), rest);
            placed = p;
        }
        Some(j + 16 - placed)
    }
}

/// The word-wise steps of [`escape_into`]: eight bytes at a time. A word with nothing to escape
/// (most words of most strings) is copied whole. In a word with quotes or backslashes, the bytes
/// are stored speculatively as one 8-byte write and each special byte then costs a shift, a
/// backslash and one more 8-byte write. A control character, rare in practice, sends the rest
/// through the byte-wise slow path.
#[inline]
fn escape_words(out: &mut Vec<u8>, s: &[u8]) {
    let start = out.len();
    // Worst case without control characters: every byte doubled; plus room for the last
    // speculative 8-byte store.
    out.resize(start + 2 * s.len() + 8, 0);
    let mut j = start;
    let mut chunks = s.chunks_exact(8);
    for (n, chunk) in (&mut chunks).enumerate() {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_le_bytes(word);
        if zero_bytes(w & (LO * 0xE0)) != 0 {
            out.truncate(j);
            escape_controls(out, &s[n * 8..]);
            return;
        }
        let mut specials =
            zero_bytes(w ^ (LO * u64::from(b'"'))) | zero_bytes(w ^ (LO * u64::from(b'\\')));
        let mut rest = w;
        let mut base = 0usize;
        loop {
            out[j..j + 8].copy_from_slice(&rest.to_le_bytes());
            if specials == 0 {
                j += 8 - base;
                break;
            }
            let at = (specials.trailing_zeros() / 8) as usize;
            specials &= specials - 1;
            let before = at - base;
            j += before;
            out[j] = b'\\';
            j += 1;
            rest >>= 8 * before;
            base = at;
        }
    }
    out.truncate(j);
    let tail = chunks.remainder();
    if tail.iter().any(|&b| CLASS[b as usize] != 0) {
        escape_controls(out, tail);
    } else {
        out.extend_from_slice(tail);
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `v` that is zero, and no other bit (exact: no borrow crosses
/// bytes, unlike the shorter `(v - LO) & !v & HI`).
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    let low7 = !HI;
    !(((v & low7).wrapping_add(low7)) | v) & HI
}

/// Whether `s` holds a byte below 0x20 (which JSON allows only escaped inside strings).
///
/// In blocks of 64 bytes without an early exit inside a block, which the compiler turns into
/// vector compares: this runs over every member copied verbatim.
pub fn has_control(s: &[u8]) -> bool {
    let mut blocks = s.chunks_exact(64);
    for block in &mut blocks {
        if block.iter().fold(0u8, |acc, &b| acc | u8::from(b < 0x20)) != 0 {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| b < 0x20)
}

/// The slow path of [`escape_into`], from the first control character on.
fn escape_controls(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match CLASS[b as usize] {
            0 => out.push(b),
            1 => out.extend_from_slice(&[b'\\', b]),
            _ => match b {
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
            },
        }
    }
}

/// The length `s` takes once escaped (without quotes).
pub fn escaped_len(s: &[u8]) -> usize {
    s.iter()
        .map(|&b| match CLASS[b as usize] {
            0 => 1,
            1 => 2,
            _ if matches!(b, b'\n' | b'\r' | b'\t') => 2,
            _ => 6,
        })
        .sum()
}

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
        if is_plain(s) {
            self.json_len += s.len() + 2;
            self.wire.extend_from_slice(b"\\\"");
            self.wire.extend_from_slice(s.as_bytes());
            self.wire.extend_from_slice(b"\\\"");
        } else {
            self.tmp.clear();
            write_str(&mut self.tmp, s);
            self.json_len += self.tmp.len();
            escape_into(&mut self.wire, &self.tmp);
        }
    }
}

/// Appends the text that `escaped` (the contents of a JSON string as [`escape_into`] writes
/// them: `\"`, `\\`, `\n`, `\r`, `\t`, `\u00XX`) stands for. Anything else after a backslash
/// is kept as it is.
pub fn unescape_into(out: &mut Vec<u8>, escaped: &[u8]) {
    out.reserve(escaped.len());
    let mut rest = escaped;
    while let Some(at) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..at]);
        let after = &rest[at + 1..];
        let (byte, used) = match after.first() {
            Some(b'n') => (b'\n', 1),
            Some(b'r') => (b'\r', 1),
            Some(b't') => (b'\t', 1),
            Some(b'u') => match after.get(1..5).and_then(hex4) {
                Some(code) => (code, 5),
                None => (b'\\', 0),
            },
            Some(&b) => (b, 1),
            None => (b'\\', 0),
        };
        out.push(byte);
        rest = &after[used..];
    }
    out.extend_from_slice(rest);
}

/// The byte a `\u00XX` escape's four hex digits stand for (only those below 0x80 are written).
fn hex4(digits: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(digits).ok()?;
    u8::try_from(u16::from_str_radix(text, 16).ok()?)
        .ok()
        .filter(u8::is_ascii)
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

/// Whether `s` needs no escaping inside a JSON string (checked eight bytes at a time).
#[inline]
pub fn is_plain(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            return false;
        };
        let w = u64::from_le_bytes(word);
        if (zero_bytes(w ^ (LO * u64::from(b'"')))
            | zero_bytes(w ^ (LO * u64::from(b'\\')))
            | zero_bytes(w & (LO * 0xE0)))
            != 0
        {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| CLASS[b as usize] == 0)
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

#[cfg(test)]
mod escape_props {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bytes_next_to_quotes_are_not_mistaken_for_them() {
        // 0x23 ('#') and 0x5D (']') sit one above '"' and '\\': a borrowing zero-byte test
        // would flag them after a real quote or backslash.
        let s = "\"#\"#\\]\\]ab\"#cd\\]ef\"\"##\\\\]]";
        let mut out = Vec::new();
        escape_into(&mut out, s.as_bytes());
        let back: String = serde_json::from_slice(&[b"\"", &out[..], b"\""].concat()).unwrap();
        assert_eq!(back, s);
        assert_eq!(out.len(), escaped_len(s.as_bytes()));
    }

    proptest! {
        #[test]
        fn fast_path_round_trips(s in "[\"\\\\#!\\]\\[{}:, a-z\u{e9}\u{2028}]{0,80}") {
            let mut out = vec![b'"'];
            escape_into(&mut out, s.as_bytes());
            out.push(b'"');
            let back: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, s);
        }

        /// The sixteen- and eight-byte steps against the byte-wise escape, after text already in
        /// the buffer, over strings long enough for many wide steps, dense or sparse in quotes.
        #[test]
        fn wide_steps_write_what_the_bytewise_escape_writes(
            prefix in "[a-z]{0,5}",
            s in "[\"\\\\#\\]a-z]{0,300}|[a-z ]{20,80}[\"\\\\]{0,40}[a-z\n]{0,90}",
        ) {
            let mut fast = prefix.as_bytes().to_vec();
            escape_into(&mut fast, s.as_bytes());
            let mut slow = prefix.as_bytes().to_vec();
            escape_controls(&mut slow, s.as_bytes());
            prop_assert_eq!(fast, slow);
        }

        /// The clean escape writes what the escape writes, or nothing when there is a control
        /// character, wherever it stands (in a whole step or in the padded tail).
        #[test]
        fn the_clean_escape_refuses_control_characters_and_nothing_else(
            prefix in "[a-z]{0,3}",
            s in "[\"\\\\a-z ]{0,70}[\\x00-\\x1f]?[\"a-z]{0,40}",
        ) {
            let mut clean = prefix.as_bytes().to_vec();
            let took = escape_clean_into(&mut clean, s.as_bytes());
            let mut plain = prefix.as_bytes().to_vec();
            escape_into(&mut plain, s.as_bytes());
            if has_control(s.as_bytes()) {
                prop_assert!(!took);
                prop_assert_eq!(clean, prefix.as_bytes());
            } else {
                prop_assert!(took);
                prop_assert_eq!(clean, plain);
            }
        }

        /// What the mapper sends is unescaped back to the document exactly (the checksum and
        /// `Mapped::event_data` rest on it).
        #[test]
        fn unescaping_gives_back_what_was_escaped(s in "\\PC*|[\"\\\\\\x00-\\x1f a-z]{0,300}") {
            let mut escaped = Vec::new();
            escape_into(&mut escaped, s.as_bytes());
            let mut back = Vec::new();
            unescape_into(&mut back, &escaped);
            prop_assert_eq!(back, s.as_bytes());
        }

        #[test]
        fn escaping_round_trips_through_a_json_parser(s in "\\PC*|[\"\\\\\\x00-\\x1f a-z]{0,64}") {
            let mut out = vec![b'"'];
            escape_into(&mut out, s.as_bytes());
            out.push(b'"');
            prop_assert_eq!(escaped_len(s.as_bytes()), out.len() - 2);
            let back: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}
