//! The record as the OCSF mapping reads it: values found by path, and a ledger of which of
//! them an attribute holds unchanged. What the ledger does not name goes to `unmapped`, so that
//! every value of the record is somewhere in the event.

use std::collections::HashSet;

use crate::value::Json;

/// A value of the record and the path it stands at (`properties.targetResources.0.id`).
#[derive(Debug, Clone)]
pub struct At<'a> {
    /// The value.
    pub value: &'a Json,
    /// Its path: names (the `n`th repeat of a name is `name~n`) and array indices, joined with
    /// dots.
    pub path: String,
}

impl<'a> At<'a> {
    /// The member `key` (exactly, else ignoring ASCII case).
    pub fn get(&self, key: &str) -> Option<At<'a>> {
        let (index, value) = self.value.member(key)?;
        let Json::Obj(members) = self.value else {
            return None;
        };
        Some(At {
            value,
            path: join(&self.path, &member_name(members, index)),
        })
    }

    /// The `index`th element, if this is an array.
    pub fn index(&self, index: usize) -> Option<At<'a>> {
        let Json::Arr(items) = self.value else {
            return None;
        };
        Some(At {
            value: items.get(index)?,
            path: join(&self.path, &index.to_string()),
        })
    }

    /// The elements, if this is an array.
    pub fn items(&self) -> Vec<At<'a>> {
        match self.value {
            Json::Arr(items) => (0..items.len()).filter_map(|i| self.index(i)).collect(),
            _ => Vec::new(),
        }
    }

    /// The string, when it is one and not blank.
    pub fn text(&self) -> Option<&'a str> {
        self.value.as_str().filter(|s| !s.trim().is_empty())
    }
}

/// The name a member's value is filed under: its key, or `key~n` for the `n`th repeat of it.
pub fn member_name(members: &[(String, Json)], index: usize) -> String {
    let key = &members[index].0;
    let repeat = members[..index].iter().filter(|(k, _)| k == key).count();
    if repeat == 0 {
        key.clone()
    } else {
        format!("{key}~{}", repeat + 1)
    }
}

pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Which record value an attribute of the event holds unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The record's path.
    pub path: String,
    /// The event's attribute (`actor.user.name`, `resources.0.uid`).
    pub attribute: String,
}

/// The record and its ledger.
pub struct Rec<'a> {
    root: At<'a>,
    held: Vec<Held>,
    paths: HashSet<String>,
}

impl<'a> Rec<'a> {
    /// A record (an object) with nothing held yet.
    pub fn new(root: &'a Json) -> Self {
        Rec {
            root: At {
                value: root,
                path: String::new(),
            },
            held: Vec::new(),
            paths: HashSet::new(),
        }
    }

    /// The value at `path` (member names; each step as in [`At::get`]).
    pub fn at(&self, path: &[&str]) -> Option<At<'a>> {
        let mut at = self.root.clone();
        for step in path {
            at = at.get(step)?;
        }
        Some(at)
    }

    /// The non-blank string at `path`, without holding it.
    pub fn peek(&self, path: &[&str]) -> Option<&'a str> {
        self.at(path)?.text()
    }

    /// Records that `attribute` holds the value at `at` unchanged.
    pub fn hold(&mut self, at: &At<'_>, attribute: impl Into<String>) {
        self.paths.insert(at.path.clone());
        self.held.push(Held {
            path: at.path.clone(),
            attribute: attribute.into(),
        });
    }

    /// The non-blank string at `path`, held by `attribute`.
    pub fn take(&mut self, path: &[&str], attribute: &str) -> Option<&'a str> {
        let at = self.at(path)?;
        let s = at.text()?;
        self.hold(&at, attribute);
        Some(s)
    }

    /// The non-blank string of `at`, held by `attribute`.
    pub fn take_at(&mut self, at: &At<'a>, attribute: &str) -> Option<&'a str> {
        let s = at.text()?;
        self.hold(at, attribute);
        Some(s)
    }

    /// The boolean at `path`, held by `attribute`.
    pub fn take_bool(&mut self, path: &[&str], attribute: &str) -> Option<bool> {
        let at = self.at(path)?;
        let Json::Bool(b) = at.value else { return None };
        self.hold(&at, attribute);
        Some(*b)
    }

    /// The number at `path`, held by `attribute`.
    pub fn take_f64(&mut self, path: &[&str], attribute: &str) -> Option<f64> {
        let at = self.at(path)?;
        let Json::Num(n) = at.value else { return None };
        let f = n.as_f64()?;
        self.hold(&at, attribute);
        Some(f)
    }

    /// Whether the value at the path is held.
    pub fn is_held(&self, path: &str) -> bool {
        self.paths.contains(path)
    }

    /// What the attributes hold, for tests and the field table.
    pub fn into_held(self) -> Vec<Held> {
        self.held
    }
}
