//! The event itself: the mapping rules of DESIGN.md, field by field, from a parsed record to
//! `eventData` (with its time, names and the lossless copy of everything else).

use super::*;

/// Writes `eventData` for the record on `nodes` into `out.doc`. `deep`: whether the record
/// nests more than `MAX_VALUE_DEPTH + 1` levels, when the parser already knows.
pub(super) fn build(
    nodes: &[Node<'_>],
    ctx: &Ctx<'_>,
    out: &mut Output,
    deep: Option<bool>,
) -> Result<(), Rejection> {
    if !matches!(nodes.first(), Some(Node::Object { .. })) {
        return Err(Rejection::NotAnObject(kind(nodes)));
    }
    // A record whose values nest deeper than the event may is written from the tape, which
    // keeps the deep parts as text; the raw bytes are copied only when they nest within bounds.
    let deep = deep.unwrap_or_else(|| crate::json::tape_deeper_than(nodes, MAX_VALUE_DEPTH + 1));
    let bounded;
    let ctx = if deep {
        bounded = Ctx { raw: None, ..*ctx };
        &bounded
    } else {
        ctx
    };
    let record = Top::read(nodes, ctx.raw, ctx.uid);
    let top = record.fields;
    if top[T_TIME_GENERATED].is_some() && top[T_TIME].is_none() {
        return Err(Rejection::LogAnalyticsRow("TimeGenerated"));
    }
    if top[T_OPERATION_NAME_VALUE].is_some() && top[T_OPERATION].is_none() {
        return Err(Rejection::LogAnalyticsRow("OperationNameValue"));
    }
    let props_val = top[T_PROPERTIES];
    let props = match props_val {
        Some(p) if matches!(p.first(), Some(Node::Object { .. })) => {
            property_fields().read_with(p, || ctx.uid.pump())
        }
        _ => [None; PROPERTY_FIELDS],
    };
    // The export writes `"category":"Administrative"`, the REST API `{"value":"Administrative",…}`.
    let category = non_empty(top[T_CATEGORY]).or_else(|| localized(top[T_CATEGORY]));
    let entra = category.is_some_and(is_entra);

    // eventTime
    let ((event_time, millis), time_source) = event_time(&top, &props, ctx.path_hour)?;
    out.event_time = event_time;
    out.event_millis = millis;

    // eventName and eventSource
    let operation =
        top[T_OPERATION].and_then(|v| as_str(v).or_else(|| get(v, "value").and_then(as_str)));
    let operation = operation.filter(|s| !trim(s).is_empty());
    let name_src = operation
        .or_else(|| non_empty(props[P_ACTIVITY_NAME]))
        .or(category)
        .ok_or(Rejection::NoOperation)?;
    let resource_id = non_empty(top[T_RESOURCE_ID]);
    let source_ns = operation
        .and_then(|op| op.split_once('/').map(|(ns, _)| ns))
        .filter(|ns| ns.contains('.') && !ns.contains(' '))
        .or_else(|| localized(top[T_PROVIDER]))
        .or_else(|| resource_id.and_then(provider_namespace))
        .unwrap_or(if entra { "Microsoft.aadiam" } else { "Azure" });

    let mut truncated: Vec<&'static str> = Vec::new();
    let ed = &mut out.doc;
    ed.clear();
    ed.literal(b"{\"version\":\"1.0\",\"userIdentity\":{");

    write_user_identity(
        ed,
        nodes,
        &record,
        &props,
        category,
        &mut truncated,
        ctx.uid,
    );
    ctx.uid.pump();

    if let Some(ua) = non_empty(props[P_USER_AGENT]) {
        ed.punct(b',');
        ed.plain_key("userAgent");
        write_cut(ed, ua, MAX_NAME_LEN, "userAgent", &mut truncated);
    }
    ed.punct(b',');
    ed.plain_key("eventSource");
    write_upper(ed, source_ns, MAX_NAME_LEN, "eventSource", &mut truncated);
    ed.punct(b',');
    ed.plain_key("eventName");
    write_upper(ed, name_src, MAX_NAME_LEN, "eventName", &mut truncated);
    ed.punct(b',');
    ed.plain_key("eventTime");
    let iso = event_time.iso_bytes();
    ed.string(std::str::from_utf8(&iso).unwrap_or("1970-01-01T00:00:00Z"));
    ed.punct(b',');
    ed.plain_key("UID");
    // Its digits are written when the hash is done (see `Mapper::map`).
    out.uid_at = ed.wire.len() + 2;
    ed.string(UID_PLACEHOLDER);
    ctx.uid.pump();

    // requestParameters / responseElements: the request and response bodies, as JSON.
    for (slot, key) in [
        (P_REQUEST_BODY, "requestParameters"),
        (P_RESPONSE_BODY, "responseElements"),
    ] {
        if let Some(body) = props[slot] {
            write_body(ed, &mut out.tmp, key, body, &mut truncated);
        }
    }

    // errorCode / errorMessage, only for failures.
    if let Some((code, message)) = failure(&top, &props, entra) {
        ed.punct(b',');
        ed.plain_key("errorCode");
        write_cut(ed, &code, MAX_ERROR_LEN, "errorCode", &mut truncated);
        if let Some(m) = message {
            ed.punct(b',');
            ed.plain_key("errorMessage");
            write_cut(ed, m, MAX_ERROR_LEN, "errorMessage", &mut truncated);
        }
    }

    ctx.uid.pump();
    let ip = source_ip_of(&top, &props);
    if let Some(ip) = &ip {
        ed.punct(b',');
        ed.plain_key("sourceIPAddress");
        ed.string(ip);
    }
    ed.punct(b',');
    ed.plain_key("recipientAccountId");
    ed.string(ctx.account);

    // additionalEventData: everything else worth keeping, within its limit.
    ed.punct(b',');
    ed.plain_key("additionalEventData");
    let mark = ed.mark();
    let skip_bodies =
        |k: &str| k.eq_ignore_ascii_case("requestbody") || k.eq_ignore_ascii_case("responseBody");
    // properties as it stands in the record, unless a body was moved out of it.
    let raw_props = match (props[P_REQUEST_BODY], props[P_RESPONSE_BODY]) {
        (None, None) => record.raw_object(T_PROPERTIES),
        _ => None,
    };
    let extra = Additional {
        record: &record,
        ctx,
        time_source,
        truncated: &truncated,
        props: props_val,
        raw_props,
        skip: &skip_bodies,
        source_ip: ip.as_deref(),
        deep,
    };
    extra.write(ed, &[], false);
    if ed.json_len() - mark.0 > MAX_ADDITIONAL_BYTES {
        extra.degrade(ed, mark, &mut out.tmp);
    }
    ed.punct(b'}');
    Ok(())
}

/// The event time (with its milliseconds) and, when it is not `time`, the field it came from.
pub(super) fn event_time(
    top: &[Option<Val<'_, '_>>; TOP_FIELDS],
    props: &[Option<Val<'_, '_>>; PROPERTY_FIELDS],
    path_hour: Option<UtcSeconds>,
) -> Result<((UtcSeconds, u16), Option<&'static str>), Rejection> {
    let candidates = [
        (top[T_TIME], "time"),
        (top[T_TIMESTAMP], "timeStamp"),
        (top[T_EVENT_TIMESTAMP], "eventTimestamp"),
        (top[T_CREATED], "createdDateTime"),
        (props[P_CREATED], "properties.createdDateTime"),
        (props[P_ACTIVITY_TIME], "properties.activityDateTime"),
    ];
    let mut problems = Vec::new();
    for (i, (value, name)) in candidates.iter().enumerate() {
        let Some(v) = value else { continue };
        let parsed = match v.first() {
            Some(Node::String(s)) => parse_time_ms(s),
            Some(Node::Static(StaticNode::I64(n))) => from_epoch_number_ms(*n as f64),
            Some(Node::Static(StaticNode::U64(n))) => from_epoch_number_ms(*n as f64),
            Some(Node::Static(StaticNode::F64(n))) => from_epoch_number_ms(*n),
            _ => None,
        };
        match parsed {
            Some(t) => return Ok((t, (i > 0).then_some(*name))),
            None => problems.push(match as_str(v) {
                Some(s) => format!("{name} {:?} is not a time stamp", cut(s, 64)),
                None => format!("{name} is {}, not a time stamp", kind(v)),
            }),
        }
    }
    if let Some(hour) = path_hour {
        return Ok(((hour, 0), Some("blobPathHour")));
    }
    if problems.is_empty() {
        problems.push("the record has no time or createdDateTime field".into());
    }
    problems.push("and the source path names no y=/m=/d=/h= hour".into());
    Err(Rejection::NoEventTime(problems.join("; ")))
}

/// The `value` of a REST API localizable string (`{"value":…,"localizedValue":…}`).
pub(super) fn localized<'i>(v: Option<Val<'_, 'i>>) -> Option<&'i str> {
    v.and_then(|v| non_empty(get(v, "value")))
}

/// The namespace after `/providers/` in a resource id (`Microsoft.aadiam`).
pub(super) fn provider_namespace(resource_id: &str) -> Option<&str> {
    let bytes = resource_id.as_bytes();
    let needle = b"/providers/";
    // From one slash to the next (a resource id has a few), not from every byte.
    let at = memchr::memchr_iter(b'/', bytes).find(|&at| {
        bytes
            .get(at..at + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })?;
    let rest = &resource_id[at + needle.len()..];
    let ns = rest.split('/').next()?;
    (!ns.is_empty()).then_some(ns)
}
