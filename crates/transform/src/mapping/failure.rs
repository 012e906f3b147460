//! A failed operation's error code and message, from the many places Azure records put them,
//! cut to CloudTrail Lake's lengths.

use super::*;

/// `(errorCode, errorMessage)` when the operation failed.
pub(super) fn failure<'i>(
    top: &[Option<Val<'_, 'i>>; TOP_FIELDS],
    props: &[Option<Val<'_, 'i>>; PROPERTY_FIELDS],
    entra: bool,
) -> Option<(String, Option<&'i str>)> {
    let result_type = top[T_RESULT_TYPE];
    // The REST API's `status.value` says what the export's resultType says.
    let result_str = result_type
        .and_then(as_str)
        .or_else(|| localized(top[T_STATUS]))
        .map(str::trim);
    if let Some(r) = result_str {
        let r = r.trim_end_matches('.');
        if [
            "Success",
            "Succeeded",
            "Start",
            "Started",
            "Accept",
            "Accepted",
            "Active",
            "Activated",
            "Resolved",
            "Updated",
            "InProgress",
        ]
        .iter()
        .any(|ok| ok.eq_ignore_ascii_case(r))
        {
            return None;
        }
    }
    let status = props[P_STATUS];
    let status_code = status
        .and_then(|s| get(s, "errorCode"))
        .and_then(as_int)
        .filter(|c| *c != 0);
    let failed_word = result_str
        .is_some_and(|r| r.eq_ignore_ascii_case("Failure") || r.eq_ignore_ascii_case("Failed"));
    let audit_failure = props[P_RESULT]
        .and_then(as_str)
        .is_some_and(|r| r.eq_ignore_ascii_case("failure"));
    // Entra sign-ins put the error number in resultType ("0" is success).
    let numeric_result = if entra {
        result_type.and_then(as_int).filter(|c| *c != 0)
    } else {
        None
    };
    if !(failed_word || audit_failure || status_code.is_some() || numeric_result.is_some()) {
        return None;
    }
    let signature = non_empty(top[T_RESULT_SIGNATURE])
        .or_else(|| localized(top[T_SUB_STATUS]))
        .filter(|s| !s.eq_ignore_ascii_case("None") && *s != "-1");
    let code = status_code
        .or(numeric_result)
        .map(|c| c.to_string())
        .or_else(|| non_empty(props[P_STATUS_CODE]).map(str::to_string))
        .or_else(|| signature.map(str::to_string))
        .or_else(|| result_str.filter(|s| !s.is_empty()).map(str::to_string))
        .unwrap_or_else(|| "Failure".to_string());
    let message = status
        .and_then(|s| non_empty(get(s, "failureReason")))
        .or_else(|| non_empty(props[P_RESULT_REASON]))
        .or_else(|| non_empty(top[T_RESULT_DESCRIPTION]))
        .or_else(|| non_empty(props[P_STATUS_MESSAGE]))
        .or_else(|| top[T_SUB_STATUS].and_then(|v| non_empty(get(v, "localizedValue"))));
    Some((code, message))
}

pub(super) fn write_cut(
    out: &mut Doc,
    s: &str,
    max: usize,
    field: &'static str,
    truncated: &mut Vec<&'static str>,
) {
    let c = cut(s, max);
    if c.len() < s.len() {
        truncated.push(field);
    }
    out.string(c);
}

pub(super) fn write_upper(
    out: &mut Doc,
    s: &str,
    max: usize,
    field: &'static str,
    truncated: &mut Vec<&'static str>,
) {
    let s = trim(s);
    if s.is_ascii() && crate::json::is_plain(s) {
        // Written as it is, then upper-cased in place (no escapes to disturb).
        let c = cut(s, max);
        if c.len() < s.len() {
            truncated.push(field);
        }
        let (_, wire) = out.mark();
        out.string(c);
        out.wire[wire..].make_ascii_uppercase();
        return;
    }
    let upper = s.to_uppercase();
    write_cut(out, &upper, max, field, truncated);
}
