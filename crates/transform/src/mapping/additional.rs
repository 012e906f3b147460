//! `additionalEventData`: every value of the record the named fields did not take, under its own
//! key (repeated keys numbered), so the mapping loses nothing.

use super::*;

/// What goes into `additionalEventData`.
pub(super) struct Additional<'a, 't, 'i> {
    /// The record's top-level members.
    pub(super) record: &'a Top<'t, 'i, 'a>,
    pub(super) ctx: &'a Ctx<'a>,
    pub(super) time_source: Option<&'static str>,
    pub(super) truncated: &'a [&'static str],
    pub(super) props: Option<Val<'t, 'i>>,
    /// `properties` as it stands in the raw record, when it can be copied whole.
    pub(super) raw_props: Option<&'a [u8]>,
    /// Members of `properties` moved elsewhere (the request and response bodies).
    pub(super) skip: &'a dyn Fn(&str) -> bool,
    /// `sourceIPAddress` as written, when the event has one.
    pub(super) source_ip: Option<&'a str>,
    /// The record nests deeper than the event may: some of its parts are kept as JSON text.
    pub(super) deep: bool,
}

/// Keys of `additionalEventData` that aztrail writes: a record field of the same name is kept
/// as `record.<name>` instead.
pub(super) const OWN_KEYS: [&str; 4] = ["eventTimeSource", "nestedAsText", "source", "truncated"];

/// The keys written into one JSON object, compared without case.
///
/// A 128-bit filter of each key's length and first and last letters answers most questions
/// (a key not written yet, the common case) without comparing it to every key so far.
#[derive(Default)]
pub(super) struct Keys<'k> {
    keys: Vec<Cow<'k, str>>,
    seen: u128,
}

impl<'k> Keys<'k> {
    /// Room for `n` keys.
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            keys: Vec::with_capacity(n),
            seen: 0,
        }
    }

    /// The filter's bit for `key` (the same for keys equal without case).
    fn bit(key: &str) -> u128 {
        let b = key.as_bytes();
        let first = b.first().map_or(0, u8::to_ascii_lowercase) as usize;
        let last = b.last().map_or(0, u8::to_ascii_lowercase) as usize;
        1 << ((b.len() * 31 + first * 7 + last) % 128)
    }

    pub(super) fn taken(&self, key: &str) -> bool {
        self.seen & Self::bit(key) != 0 && self.keys.iter().any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Marks `key` as written.
    pub(super) fn take(&mut self, key: Cow<'k, str>) {
        self.seen |= Self::bit(&key);
        self.keys.push(key);
    }

    /// `want` if no key written so far equals it (ignoring case), else `want#2`, `want#3`, ...:
    /// the key a repeated name is written under.
    pub(super) fn unique(&mut self, want: Cow<'k, str>) -> Cow<'k, str> {
        let mut name = want.clone();
        let mut n = 2;
        while self.taken(&name) {
            name = Cow::Owned(format!("{want}#{n}"));
            n += 1;
        }
        self.take(name.clone());
        name
    }
}

impl Additional<'_, '_, '_> {
    /// Writes `v` (the record's `index`-th top-level member) exactly as written when the raw
    /// record allows it, else from the tape.
    pub(super) fn verbatim(&self, ed: &mut Doc, index: usize, v: Val<'_, '_>) {
        match self.record.members.get(index).and_then(|m| m.raw) {
            Some(raw) => literal_minified(ed, raw),
            None => write_value(ed, v, None),
        }
    }

    /// Writes the object. `dropped` names members of `properties` left out; `bare` leaves
    /// `properties` out entirely, cuts the other strings short and leaves out other objects and
    /// arrays, each listed in `truncated`.
    pub(super) fn write(&self, ed: &mut Doc, dropped: &[&str], bare: bool) {
        let top = &self.record.fields;
        let mut cut_here: Vec<String> = Vec::new();
        // Every key written at this level, so that no two members share one (JSON readers keep
        // only one of two equal keys; some compare keys without case).
        let mut keys = Keys::with_capacity(self.record.members.len() + 24);
        ed.punct(b'{');
        // `own`: the name is one of the mapping's constants, which need no escaping.
        let mut field = |ed: &mut Doc, name: &str, own: bool, index: usize, v: Val<'_, '_>| {
            let key = |ed: &mut Doc| {
                if own {
                    ed.plain_key(name)
                } else {
                    ed.key(name)
                }
            };
            match (bare, v.first()) {
                (true, Some(Node::String(s))) => {
                    key(ed);
                    let c = cut(s, MAX_NAME_LEN);
                    if c.len() < s.len() {
                        cut_here.push(name.to_string());
                    }
                    ed.string(c);
                }
                (true, Some(Node::Object { .. } | Node::Array { .. })) => {
                    cut_here.push(name.to_string());
                    return;
                }
                _ => {
                    key(ed);
                    self.verbatim(ed, index, v);
                }
            }
            ed.punct(b',');
        };
        for (key, slot) in [
            ("category", T_CATEGORY),
            ("level", T_LEVEL),
            ("location", T_LOCATION),
            ("resourceId", T_RESOURCE_ID),
            ("correlationId", T_CORRELATION),
            ("tenantId", T_TENANT),
            ("operationName", T_OPERATION),
            ("operationVersion", T_OPERATION_VERSION),
            ("resultType", T_RESULT_TYPE),
            ("resultSignature", T_RESULT_SIGNATURE),
            ("resultDescription", T_RESULT_DESCRIPTION),
            ("durationMs", T_DURATION),
            // The time as written (eventTime keeps whole seconds in UTC only).
            ("time", T_TIME),
            ("timeStamp", T_TIMESTAMP),
            ("eventTimestamp", T_EVENT_TIMESTAMP),
            ("createdDateTime", T_CREATED),
        ] {
            let Some(v) = top[slot] else { continue };
            self.ctx.uid.pump();
            keys.take(Cow::Borrowed(key));
            field(ed, key, true, self.record.at[slot], v);
        }
        // callerIpAddress, unless sourceIPAddress holds it as written.
        if let Some(v) = top[T_CALLER_IP] {
            if as_str(v).is_none_or(|s| Some(s) != self.source_ip) {
                keys.take(Cow::Borrowed("callerIpAddress"));
                field(ed, "callerIpAddress", true, self.record.at[T_CALLER_IP], v);
            }
        }
        // Names aztrail writes at this level itself.
        for own in OWN_KEYS.iter().chain(["properties"].iter()) {
            keys.take(Cow::Borrowed(own));
        }
        // Every other top-level member under its own name, and every repeat of a mapped one
        // (Azure writes `Level` beside `level`), each under a key of its own.
        let mut seen = [false; TOP_FIELDS];
        for (index, m) in self.record.members.iter().enumerate() {
            let (key, v) = (m.key, m.value);
            self.ctx.uid.pump();
            if let Some(slot) = m.slot.filter(|s| !KEPT_AS_NAMED.contains(s)) {
                if !std::mem::replace(&mut seen[slot], true) {
                    continue; // the first one is mapped
                }
            }
            let name = if OWN_KEYS.iter().any(|o| o.eq_ignore_ascii_case(key)) {
                keys.unique(Cow::Owned(format!("record.{key}")))
            } else {
                keys.unique(Cow::Borrowed(key))
            };
            field(ed, &name, false, index, v);
        }
        if let Some(ts) = self.time_source {
            ed.plain_key("eventTimeSource");
            ed.string(ts);
            ed.punct(b',');
        }
        // The members whose deepest parts are kept as JSON text.
        let mut deep = (self.record.members.iter())
            .filter(|m| self.deep && crate::json::tape_deeper_than(m.value, MAX_VALUE_DEPTH))
            .map(|m| m.key)
            .peekable();
        if deep.peek().is_some() {
            ed.plain_key("nestedAsText");
            ed.punct(b'[');
            for (i, k) in deep.enumerate() {
                if i > 0 {
                    ed.punct(b',');
                }
                ed.string(k);
            }
            ed.punct(b']');
            ed.punct(b',');
        }
        ed.literal(self.ctx.source_prefix);
        write_int(ed, i64::try_from(self.ctx.offset).unwrap_or(i64::MAX));
        ed.punct(b'}');
        let cut_fields: Vec<&str> = self
            .truncated
            .iter()
            .copied()
            .chain(dropped.iter().copied())
            .chain(bare.then_some("properties"))
            .chain(cut_here.iter().map(String::as_str))
            .collect();
        if !cut_fields.is_empty() {
            ed.punct(b',');
            ed.plain_key("truncated");
            ed.punct(b'[');
            for (i, f) in cut_fields.iter().enumerate() {
                if i > 0 {
                    ed.punct(b',');
                }
                ed.string(f);
            }
            ed.punct(b']');
        }
        if let (Some(p), false) = (self.props, bare) {
            ed.punct(b',');
            ed.plain_key("properties");
            if let (Some(raw), true) = (self.raw_props, dropped.is_empty()) {
                self.ctx.uid.pump();
                literal_minified(ed, raw);
            } else if dropped.is_empty() {
                write_value(ed, p, Some(self.skip));
            } else {
                let skip_more = |k: &str| (self.skip)(k) || dropped.contains(&k);
                write_value(ed, p, Some(&skip_more));
            }
        }
        ed.punct(b'}');
    }

    /// Over the limit: leave out the largest members of `properties` until it fits, and if even
    /// the rest does not fit, leave out `properties` and cut the other fields.
    pub(super) fn degrade(&self, ed: &mut Doc, mark: (usize, usize), tmp: &mut Vec<u8>) {
        let mut sizes: Vec<(&str, usize)> = Vec::new();
        if let Some(p) = self.props {
            for (k, v) in members(p) {
                if (self.skip)(k) {
                    continue;
                }
                tmp.clear();
                write_value(tmp, v, None);
                sizes.push((k, tmp.len() + escaped_len(k.as_bytes()) + 4));
            }
        }
        sizes.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
        let mut dropped: Vec<&str> = Vec::new();
        let mut size = ed.json_len() - mark.0;
        for (k, s) in sizes {
            // Room for the names of what was left out.
            let reserve = dropped.iter().map(|d| d.len() + 20).sum::<usize>() + 64;
            if size + reserve <= MAX_ADDITIONAL_BYTES {
                break;
            }
            dropped.push(k);
            size = size.saturating_sub(s);
        }
        loop {
            ed.truncate(mark);
            self.write(ed, &dropped, false);
            if ed.json_len() - mark.0 <= MAX_ADDITIONAL_BYTES {
                return;
            }
            if dropped.len() >= 64 {
                break;
            }
            // The estimate was off: keep leaving out members in their order.
            let next = self.props.and_then(|p| {
                members(p)
                    .map(|(k, _)| k)
                    .find(|k| !(self.skip)(k) && !dropped.contains(k))
            });
            match next {
                Some(k) => dropped.push(k),
                None => break,
            }
        }
        ed.truncate(mark);
        self.write(ed, &[], true);
    }
}
