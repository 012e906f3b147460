//! `unmapped`: every value of the record that no attribute holds unchanged, one entry per leaf.
//!
//! The key is the value's path (member names and array indices joined with dots; the `n`th
//! repeat of a name is `name~n`). A string is written as it is, any other value (number,
//! boolean, null, an empty object or array) as JSON text. Security Lake's tables type
//! `unmapped` as `map<string,string>`, so a query reads `unmapped['properties.eventCategory']`.

use std::collections::BTreeMap;

use crate::record::{join, member_name, Rec};
use crate::value::Json;

/// The leaves of `root` that `rec` does not hold, by path.
pub fn unmapped(root: &Json, rec: &Rec<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, String::new(), rec, &mut out);
    out
}

/// Every leaf of `root` by path, as [`unmapped`] writes it (what a lossless event accounts for).
pub fn leaves(root: &Json) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk_all(root, String::new(), &mut out);
    out
}

/// A leaf's text in `unmapped`.
pub fn leaf_text(v: &Json) -> String {
    match v {
        Json::Str(s) => s.clone(),
        other => other.to_json(),
    }
}

fn walk(v: &Json, path: String, rec: &Rec<'_>, out: &mut BTreeMap<String, String>) {
    match v {
        Json::Obj(members) if !members.is_empty() => {
            for i in 0..members.len() {
                walk(
                    &members[i].1,
                    join(&path, &member_name(members, i)),
                    rec,
                    out,
                );
            }
        }
        Json::Arr(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                walk(item, join(&path, &i.to_string()), rec, out);
            }
        }
        leaf => {
            if !rec.is_held(&path) {
                out.insert(path, leaf_text(leaf));
            }
        }
    }
}

fn walk_all(v: &Json, path: String, out: &mut BTreeMap<String, String>) {
    match v {
        Json::Obj(members) if !members.is_empty() => {
            for i in 0..members.len() {
                walk_all(&members[i].1, join(&path, &member_name(members, i)), out);
            }
        }
        Json::Arr(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                walk_all(item, join(&path, &i.to_string()), out);
            }
        }
        leaf => {
            out.insert(path, leaf_text(leaf));
        }
    }
}
