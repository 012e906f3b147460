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
    v.and_then(as_str).filter(|s| !s.trim().is_empty())
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
    /// Names indexed by length, each with its slot.
    by_len: Vec<Vec<(&'static str, usize)>>,
}

impl<const N: usize> FieldSet<N> {
    /// A set of the given names; slot `i` holds `names[i]`.
    pub fn new(names: [&'static str; N]) -> Self {
        let longest = names.iter().map(|n| n.len()).max().unwrap_or(0);
        let mut by_len = vec![Vec::new(); longest + 1];
        for (slot, name) in names.iter().enumerate() {
            by_len[name.len()].push((*name, slot));
        }
        Self { by_len }
    }

    /// The slot of `key`, if it is one of the names (ignoring ASCII case).
    ///
    /// Names of the key's length are compared only when their first letters agree, and then
    /// exactly before without case: most keys are written as the names are.
    #[inline]
    pub fn slot(&self, key: &str) -> Option<usize> {
        let first = key.as_bytes().first()?.to_ascii_lowercase();
        self.by_len
            .get(key.len())?
            .iter()
            .find(|(name, _)| {
                name.as_bytes().first().map(u8::to_ascii_lowercase) == Some(first)
                    && (name.as_bytes() == key.as_bytes() || name.eq_ignore_ascii_case(key))
            })
            .map(|(_, slot)| *slot)
    }

    /// The values of the named members of `obj` (the first of each, if a name repeats).
    pub fn read<'t, 'i>(&self, obj: Val<'t, 'i>) -> [Option<Val<'t, 'i>>; N] {
        let mut out = [None; N];
        for (key, value) in members(obj) {
            if let Some(slot) = self.slot(key) {
                if out[slot].is_none() {
                    out[slot] = Some(value);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let props = get(&tape.0, "properties").unwrap();
        assert_eq!(kind(props), "an object");
        assert_eq!(members(props).count(), 1);
    }
}
