//! The record as the mapping reads it: where it was (the context), its raw bytes beside the
//! parsed tape (so members can be copied exactly), and the fields read by name, declared once as
//! slots.

use super::*;

#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) account: &'a str,
    pub(super) source_prefix: &'a [u8],
    pub(super) path_hour: Option<UtcSeconds>,
    pub(super) offset: u64,
    pub(super) raw: Option<Raw<'a>>,
    /// The record's `UID`, pumped a block at a time between the mapping's steps (see
    /// [`crate::uid`]).
    pub(super) uid: &'a UidPump<'a>,
}

/// The record's raw bytes and the address of the copy simd-json parsed in place.
///
/// simd-json leaves each string of the tape at its own position in the parsed buffer, so a
/// string's address tells where it stands in the raw record. That finds the raw bytes of
/// `properties`, which can then be copied instead of written back node by node.
#[derive(Clone, Copy)]
pub(super) struct Raw<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) parsed_at: usize,
}

impl<'a> Raw<'a> {
    /// Where the string `s` of the tape starts in the record, if it is one of the record's own.
    pub(super) fn offset_of(&self, s: &str) -> Option<usize> {
        let at = (s.as_ptr() as usize).checked_sub(self.parsed_at)?;
        (at < self.bytes.len()).then_some(at)
    }

    /// The raw bytes of the member whose key is the tape string `name`, when the next member's
    /// key is `next` (none for the last member): found from where the two keys stand in the
    /// record, and only when they can be copied exactly as they are.
    fn span(&self, name: &str, next: Option<&str>) -> Option<&'a [u8]> {
        let b = self.bytes;
        let key_at = self.offset_of(name)?;
        let next_key_at = match next {
            Some(key) => Some(self.offset_of(key)?),
            None => None,
        };
        // The key must stand unescaped in the record: `"name"`. simd-json leaves a key at its own
        // place, unescaped in place, so an escaped key is shorter than its text there: the byte
        // `name.len()` on is then inside the text, and a quote inside a string's text always
        // follows a backslash. A quote there not after a backslash is the key's closing quote.
        let after_key = key_at + name.len();
        let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        let mut p = after_key;
        if *b.get(p)? != b'"' || (p > key_at && b[p - 1] == b'\\') {
            return None;
        }
        p += 1;
        while blank(*b.get(p)?) {
            p += 1;
        }
        if *b.get(p)? != b':' {
            return None;
        }
        p += 1;
        while blank(*b.get(p)?) {
            p += 1;
        }
        let start = p;
        // The value ends before `,` and the next key's quote, or before the record's last brace.
        let mut q = match next_key_at {
            Some(at) => {
                let mut q = at.checked_sub(1)?;
                if b[q] != b'"' {
                    return None;
                }
                q = q.checked_sub(1)?;
                while blank(b[q]) {
                    q = q.checked_sub(1)?;
                }
                if b[q] != b',' {
                    return None;
                }
                q
            }
            None => {
                let mut q = b.len().checked_sub(1)?;
                while blank(b[q]) {
                    q = q.checked_sub(1)?;
                }
                if b[q] != b'}' {
                    return None;
                }
                q
            }
        };
        q = q.checked_sub(1)?;
        while blank(b[q]) {
            q = q.checked_sub(1)?;
        }
        if q < start {
            return None;
        }
        Some(&b[start..=q])
    }
}

/// One top-level member of the record: its key, its value on the tape, and its bytes in the raw
/// record when they can be copied exactly as they are.
#[derive(Clone, Copy)]
pub(super) struct TopMember<'t, 'i, 'a> {
    pub(super) key: &'i str,
    /// The named field it is, if any (`T_*`).
    pub(super) slot: Option<usize>,
    pub(super) value: Val<'t, 'i>,
    pub(super) raw: Option<&'a [u8]>,
}

/// The record's top-level members, read in one pass: the named fields by slot (the first member
/// of each name, ignoring case) and every member in order, with its raw bytes.
pub(super) struct Top<'t, 'i, 'a> {
    /// The value of each named field, by slot (`T_*`).
    pub(super) fields: [Option<Val<'t, 'i>>; TOP_FIELDS],
    /// Where each named field stands in `members`, by slot.
    pub(super) at: [usize; TOP_FIELDS],
    /// Every member, in the record's order (a repeated name once per occurrence).
    pub(super) members: Vec<TopMember<'t, 'i, 'a>>,
}

impl<'t, 'i, 'a> Top<'t, 'i, 'a> {
    /// Reads the members of the record on `nodes`, their raw bytes from `raw` when given.
    pub(super) fn read(nodes: Val<'t, 'i>, raw: Option<Raw<'a>>, uid: &UidPump<'_>) -> Self {
        let set = top_fields();
        let mut fields = [None; TOP_FIELDS];
        let mut at = [usize::MAX; TOP_FIELDS];
        let mut members: Vec<TopMember<'t, 'i, 'a>> = Vec::with_capacity(match nodes.first() {
            Some(Node::Object { len, .. }) => *len,
            _ => 0,
        });
        for (index, (key, value)) in crate::fields::members(nodes).enumerate() {
            if index % 4 == 0 {
                uid.pump();
            }
            let slot = set.slot(key);
            if let Some(slot) = slot {
                if fields[slot].is_none() {
                    fields[slot] = Some(value);
                    at[slot] = index;
                }
            }
            members.push(TopMember {
                key,
                slot,
                value,
                raw: None,
            });
        }
        if let Some(raw) = raw {
            for i in 0..members.len() {
                let next = members.get(i + 1).map(|m| m.key);
                members[i].raw = raw.span(members[i].key, next);
            }
        }
        Self {
            fields,
            at,
            members,
        }
    }

    /// The raw bytes of the named field in `slot`, when it is an object that can be copied as
    /// it stands (written through `literal_minified`, which takes out blanks between tokens).
    pub(super) fn raw_object(&self, slot: usize) -> Option<&'a [u8]> {
        self.members
            .get(self.at[slot])?
            .raw
            .filter(|raw| raw.first() == Some(&b'{'))
    }
}

/// Declares field slots: a `usize` constant per slot, numbered in order by an enum (so no two
/// can share a number or skip one), the count, and the names in the same order.
macro_rules! slots {
    ($(#[$doc:meta])* $enum:ident, $count:ident, $names:ident: $($slot:ident = $name:literal),+ $(,)?) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
        #[derive(Clone, Copy)]
        #[repr(usize)]
        pub(super) enum $enum {
            $($slot),+
        }
        $(pub(super) const $slot: usize = $enum::$slot as usize;)+
        pub(super) const $count: usize = [$($name),+].len();
        $(#[$doc])*
        pub(super) const $names: [&str; $count] = [$($name),+];
    };
}

// Top-level fields of a record: each slot's constant and its name, declared together so they
// cannot drift apart (the slots are an enum's discriminants, the names one array in that order).
slots! {
    /// The top-level fields the mapping reads, by slot (`T_*`).
    TopSlot, TOP_FIELDS, TOP_NAMES:
    T_TIME = "time",
    T_CREATED = "createdDateTime",
    T_RESOURCE_ID = "resourceId",
    T_OPERATION = "operationName",
    T_OPERATION_VERSION = "operationVersion",
    T_CATEGORY = "category",
    T_TENANT = "tenantId",
    T_RESULT_TYPE = "resultType",
    T_RESULT_SIGNATURE = "resultSignature",
    T_RESULT_DESCRIPTION = "resultDescription",
    T_DURATION = "durationMs",
    T_CALLER_IP = "callerIpAddress",
    T_CORRELATION = "correlationId",
    T_IDENTITY = "identity",
    T_LEVEL = "level",
    T_LOCATION = "location",
    T_PROPERTIES = "properties",
    T_TIME_GENERATED = "TimeGenerated",
    T_OPERATION_NAME_VALUE = "OperationNameValue",
    T_TIMESTAMP = "timeStamp",
    T_EVENT_TIMESTAMP = "eventTimestamp",
    T_CALLER = "caller",
    T_CLAIMS = "claims",
    T_AUTHORIZATION = "authorization",
    T_HTTP_REQUEST = "httpRequest",
    T_STATUS = "status",
    T_SUB_STATUS = "subStatus",
    T_PROVIDER = "resourceProviderName",
}

/// Slots read for the mapping but kept in `additionalEventData` under the record's own name
/// (the REST shape's fields, and the Log Analytics markers).
pub(super) const KEPT_AS_NAMED: [usize; 9] = [
    T_TIME_GENERATED,
    T_OPERATION_NAME_VALUE,
    T_CALLER,
    T_CLAIMS,
    T_AUTHORIZATION,
    T_HTTP_REQUEST,
    T_STATUS,
    T_SUB_STATUS,
    T_PROVIDER,
];

pub(super) fn top_fields() -> &'static FieldSet<TOP_FIELDS> {
    static SET: OnceLock<FieldSet<TOP_FIELDS>> = OnceLock::new();
    SET.get_or_init(|| FieldSet::new(TOP_NAMES))
}

// Members of `properties` that the mapping reads, declared as the top-level fields are.
slots! {
    /// The `properties` members the mapping reads, by slot (`P_*`).
    PropertySlot, PROPERTY_FIELDS, PROPERTY_NAMES:
    P_IP = "ipAddress",
    P_USER_ID = "userId",
    P_UPN = "userPrincipalName",
    P_SP_ID = "servicePrincipalId",
    P_APP_ID = "appId",
    P_USER_AGENT = "userAgent",
    P_STATUS = "status",
    P_CREATED = "createdDateTime",
    P_ACTIVITY_TIME = "activityDateTime",
    P_INITIATED_BY = "initiatedBy",
    P_RESULT = "result",
    P_RESULT_REASON = "resultReason",
    P_REQUEST_BODY = "requestbody",
    P_RESPONSE_BODY = "responseBody",
    P_STATUS_CODE = "statusCode",
    P_STATUS_MESSAGE = "statusMessage",
    P_ACTIVITY_NAME = "activityDisplayName",
    P_USER_NAME = "userDisplayName",
    P_SP_NAME = "servicePrincipalName",
}

pub(super) fn property_fields() -> &'static FieldSet<PROPERTY_FIELDS> {
    static SET: OnceLock<FieldSet<PROPERTY_FIELDS>> = OnceLock::new();
    SET.get_or_init(|| FieldSet::new(PROPERTY_NAMES))
}

/// Entra ID (Azure AD) categories; everything else is read as an Activity Log record.
pub fn is_entra(category: &str) -> bool {
    let c = category.as_bytes();
    let ends_ci = |suffix: &str| {
        c.len() >= suffix.len()
            && c[c.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    ends_ci("SignInLogs")
        || [
            "AuditLogs",
            "Audit",
            "ProvisioningLogs",
            "RiskyUsers",
            "UserRiskEvents",
            "RiskyServicePrincipals",
            "ServicePrincipalRiskEvents",
            "MicrosoftGraphActivityLogs",
            "NetworkAccessTrafficLogs",
        ]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(category))
}
