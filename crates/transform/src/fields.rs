//! Reading the fields of a parsed record from simd-json's tape, without building a document.
//!
//! A record's members are looked up once, in one pass, by case-insensitive name (Azure writes
//! `Level` and `level`, `durationMs` and `DurationMs`, and normalisers lower-case everything), so
//! the mapping sees each field as a slice of the tape and copies nothing.

use simd_json::{Node, StaticNode};

use crate::json::node_span;

/// A value on the tape: its first node and everything nested in it.
pub type Val<'t, 'i> = &'t [Node<'i>];

/// Iterates over the members of an object value (nothing for any other value).
pub struct Members<'t, 'i> {
    nodes: Val<'t, 'i>,
    idx: usize,
    left: usize,
}

impl<'t, 'i> Iterator for Members<'t, 'i> {
    type Item = (&'i str, Val<'t, 'i>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let Some(Node::String(key)) = self.nodes.get(self.idx).copied() else {
            self.left = 0;
            return None;
        };
        let start = self.idx + 1;
        let span = node_span(self.nodes.get(start..)?);
        let value = self.nodes.get(start..start + span)?;
        self.idx = start + span;
        Some((key, value))
    }
}

/// The members of `v` if it is an object.
pub fn members<'t, 'i>(v: Val<'t, 'i>) -> Members<'t, 'i> {
    let left = match v.first() {
        Some(Node::Object { len, .. }) => *len,
        _ => 0,
    };
    Members {
        nodes: v,
        idx: 1,
        left,
    }
}

/// The member `key` of object `v` (exact name).
pub fn get<'t, 'i>(v: Val<'t, 'i>, key: &str) -> Option<Val<'t, 'i>> {
    members(v).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The string in `v`, if it is a string.
#[inline]
pub fn as_str<'i>(v: Val<'_, 'i>) -> Option<&'i str> {
    match v.first() {
        Some(Node::String(s)) => Some(s),
        _ => None,
    }
}

/// The string in `v`, if it is a non-empty string.
#[inline]
pub fn non_empty<'i>(v: Option<Val<'_, 'i>>) -> Option<&'i str> {
    v.and_then(as_str).filter(|s| !trim(s).is_empty())
}

/// `s.trim()`, answered without looking further when `s` starts and ends with a visible ASCII
/// character, as nearly every value does.
#[inline]
pub fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| (0x21..0x7f).contains(b));
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// `v` as an integer, whether a JSON number or a string of digits.
pub fn as_int(v: Val<'_, '_>) -> Option<i64> {
    match v.first()? {
        Node::Static(StaticNode::I64(n)) => Some(*n),
        Node::Static(StaticNode::U64(n)) => i64::try_from(*n).ok(),
        Node::Static(StaticNode::F64(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Some(*f as i64),
        Node::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What kind of JSON value `v` is, for messages.
pub fn kind(v: Val<'_, '_>) -> &'static str {
    match v.first() {
        Some(Node::String(_)) => "a string",
        Some(Node::Object { .. }) => "an object",
        Some(Node::Array { .. }) => "an array",
        Some(Node::Static(StaticNode::Null)) => "null",
        Some(Node::Static(StaticNode::Bool(_))) => "a boolean",
        Some(Node::Static(_)) => "a number",
        None => "nothing",
    }
}

/// A fixed set of member names, found in one pass over an object, case-insensitively.
pub struct FieldSet<const N: usize> {
    /// Names indexed by length, each lower-cased, with its slot.
    by_len: Vec<Vec<(Vec<u8>, usize)>>,
}

impl<const N: usize> FieldSet<N> {
    /// A set of the given names (ASCII letters only); slot `i` holds `names[i]`.
    ///
    /// # Panics
    ///
    /// If a name holds anything but ASCII letters (the names are the mapping's own constants).
    pub fn new(names: [&'static str; N]) -> Self {
        let longest = names.iter().map(|n| n.len()).max().unwrap_or(0);
        let mut by_len = vec![Vec::new(); longest + 1];
        for (slot, name) in names.iter().enumerate() {
            assert!(
                name.bytes().all(|b| b.is_ascii_alphabetic()),
                "field name {name:?} is not all letters"
            );
            by_len[name.len()].push((name.to_ascii_lowercase().into_bytes(), slot));
        }
        Self { by_len }
    }

    /// The slot of `key`, if it is one of the names (ignoring ASCII case).
    ///
    /// Only names of the key's length are compared, eight bytes at a time: with the names all
    /// letters, a key byte ORed with 0x20 equals a lower-case name letter exactly when it is that
    /// letter in either case.
    #[inline]
    pub fn slot(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        self.by_len
            .get(key.len())?
            .iter()
            .find(|(name, _)| folded_eq(key, name))
            .map(|(_, slot)| *slot)
    }

    /// The values of the named members of `obj` (the first of each, if a name repeats).
    pub fn read<'t, 'i>(&self, obj: Val<'t, 'i>) -> [Option<Val<'t, 'i>>; N] {
        self.read_with(obj, || {})
    }

    /// [`FieldSet::read`], calling `every_fourth` before every fourth member (to do other work
    /// in between: see [`crate::uid`]).
    pub fn read_with<'t, 'i>(
        &self,
        obj: Val<'t, 'i>,
        every_fourth: impl Fn(),
    ) -> [Option<Val<'t, 'i>>; N] {
        let mut out = [None; N];
        for (i, (key, value)) in members(obj).enumerate() {
            if i % 4 == 0 {
                every_fourth();
            }
            if let Some(slot) = self.slot(key) {
                if out[slot].is_none() {
                    out[slot] = Some(value);
                }
            }
        }
        out
    }
}

/// Whether `key` equals `lower` (lower-case ASCII letters, the same length) ignoring case.
#[inline]
fn folded_eq(key: &[u8], lower: &[u8]) -> bool {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let word = |b: &[u8]| <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes);
    let mut keys = key.chunks_exact(8);
    let mut names = lower.chunks_exact(8);
    for (k, n) in (&mut keys).zip(&mut names) {
        if word(k) | FOLD != word(n) {
            return false;
        }
    }
    let (k, n) = (keys.remainder(), names.remainder());
    k.len() == n.len() && k.iter().zip(n).all(|(k, n)| k | 0x20 == *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 9] = [
        "time",
        "level",
        "callerIpAddress",
        "servicePrincipalName",
        "a",
        "abcdefgh",
        "abcdefghi",
        "OperationNameValue",
        "abcdefghijklmnopqrstuvwx",
    ];

    proptest::proptest! {
        /// The table finds a key exactly when a name equals it ignoring case: names with their
        /// case changed and a byte replaced (by a letter, or by a byte one bit from one) anywhere.
        #[test]
        fn slots_are_found_exactly_when_a_name_matches_ignoring_case(
            which in 0..NAMES.len(),
            flips in proptest::collection::vec(proptest::bool::ANY, 24),
            change in proptest::option::of((0usize..24, proptest::sample::select(
                b"aZ@[`{_^ 0\x00\xc1".to_vec()))),
            extra in proptest::option::of(proptest::sample::select(b"aA@".to_vec())),
        ) {
            let set = FieldSet::new(NAMES);
            let mut key: Vec<u8> = NAMES[which].bytes().zip(&flips)
                .map(|(b, &f)| if f { b ^ 0x20 } else { b }).collect();
            if let Some((at, b)) = change {
                if let Some(k) = key.get_mut(at) { *k = b; }
            }
            key.extend(extra);
            let key = String::from_utf8_lossy(&key).into_owned();
            let expected = NAMES.iter().position(|n| n.eq_ignore_ascii_case(&key));
            proptest::prop_assert_eq!(set.slot(&key), expected, "{:?}", key);
        }

        #[test]
        fn trim_is_str_trim(s in "[ \t\n\x0b\x0c\r\x7f\u{85}\u{a0}\u{3000}a-z!~]{0,6}") {
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }
    }

    #[test]
    fn reads_named_members_case_insensitively() {
        let mut json = br#"{"Level":4,"time":"t","properties":{"a":[1,{"b":2}]},"level":"x","DurationMs":"12"}"#.to_vec();
        let tape = simd_json::to_tape(&mut json).unwrap();
        let set = FieldSet::new(["level", "time", "durationMs", "missing"]);
        let [level, time, duration, missing] = set.read(&tape.0);
        assert_eq!(level.and_then(as_int), Some(4));
        assert_eq!(time.and_then(as_str), Some("t"));
        assert_eq!(duration.and_then(as_int), Some(12));
        assert!(missing.is_none());
        // Case is ignored, and only case: no other byte matches a letter.
        let set = FieldSet::new(["durationMs", "abcdefghijklmnopq"]);
        assert_eq!(set.slot("DURATIONMS"), Some(0));
        assert_eq!(set.slot("abcdefghijklmnopQ"), Some(1));
        for miss in [
            "durationM_",
            "durationMS ",
            "durationM\u{d}",
            "durationMz",
            "abcdefghijklmnop@",
        ] {
            assert_eq!(set.slot(miss), None, "{miss}");
        }
        assert_eq!(set.slot("abcdefgHijklmnopq"), Some(1));
        assert_eq!(set.slot("abcdefg\u{8}ijklmnopq"), None);
        let props = get(&tape.0, "properties").unwrap();
        assert_eq!(kind(props), "an object");
        assert_eq!(members(props).count(), 1);
    }
}
