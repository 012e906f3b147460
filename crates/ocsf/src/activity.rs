//! Activity Log records (Administrative, Policy, Security, ServiceHealth, ResourceHealth, Alert,
//! Autoscale, Recommendation; the export's shape and the REST API's) → API Activity (6003).

use aztrail_transform::Rejection;
use serde_json::{Map, Value};

use crate::class::Class;
use crate::map::{put_obj, put_s, put_u, status_id, status_name, take_ip, Body};
use crate::record::{At, Rec};
use crate::value::Json;

/// A string member, or the REST shape's `{"value":…,"localizedValue":…}`'s value.
fn localized<'a>(rec: &Rec<'a>, key: &str) -> Option<At<'a>> {
    let at = rec.at(&[key])?;
    match at.value {
        Json::Str(_) => at.text().is_some().then_some(at),
        Json::Obj(_) => at.get("value").filter(|v| v.text().is_some()),
        _ => None,
    }
}

/// Maps an Activity Log record.
pub(crate) fn map(rec: &mut Rec<'_>) -> Result<Body, Rejection> {
    let mut f = Map::new();

    // api.operation: operationName, else the category.
    let operation_at = localized(rec, "operationName")
        .or_else(|| localized(rec, "category"))
        .ok_or(Rejection::NoOperation)?;
    let operation = rec
        .take_at(&operation_at, "api.operation")
        .ok_or(Rejection::NoOperation)?;
    let status_code_text = rec.peek(&["properties", "statusCode"]);
    let verb = operation
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let activity_id = match verb.as_str() {
        "write" if status_code_text.is_some_and(|s| s.eq_ignore_ascii_case("Created")) => 1,
        "write" => 3,
        "delete" => 4,
        "read" => 2,
        _ => 99,
    };
    let resource_id = rec.peek(&["resourceId"]);
    let namespace = operation
        .split_once('/')
        .map(|(ns, _)| ns)
        .filter(|ns| ns.contains('.') && !ns.contains(' '))
        .or_else(|| resource_id.and_then(provider_namespace));

    let mut api = Map::new();
    put_s(&mut api, "operation", operation);
    let mut service = Map::new();
    if let Some(at) = localized(rec, "resourceProviderName") {
        if let Some(s) = rec.take_at(&at, "api.service.name") {
            put_s(&mut service, "name", s);
        }
    } else if let Some(ns) = namespace {
        put_s(&mut service, "name", ns);
    }
    put_obj(&mut api, "service", service);
    let mut request = Map::new();
    if let Some(c) = rec.peek(&["correlationId"]) {
        if let Some(at) = rec.at(&["correlationId"]) {
            rec.hold(&at, "api.request.uid");
        }
        put_s(&mut request, "uid", c);
    }
    put_obj(&mut api, "request", request);
    let mut response = Map::new();
    if let Some(code) = status_code_text.and_then(http_code) {
        response.insert("code".into(), Value::from(code));
    }
    if let Some(s) = rec.take(&["properties", "statusCode"], "api.response.message") {
        put_s(&mut response, "message", s);
    }
    put_obj(&mut api, "response", response);
    f.insert("api".into(), Value::Object(api));

    // status: resultType (the REST shape's status.value).
    let status_at = localized(rec, "resultType").or_else(|| localized(rec, "status"));
    let sid = match status_at {
        Some(at) => {
            let s = rec.take_at(&at, "status").unwrap_or_default();
            put_s(&mut f, "status", s);
            status_id(s)
        }
        None => 0,
    };
    put_u(&mut f, "status_id", sid);
    if sid == 0 {
        put_s(&mut f, "status", status_name(0));
    }
    if let Some(at) = localized(rec, "resultSignature").or_else(|| localized(rec, "subStatus")) {
        if let Some(s) = rec.take_at(&at, "status_code") {
            put_s(&mut f, "status_code", s);
        }
    }
    if let Some(s) = rec.take(&["resultDescription"], "status_detail") {
        put_s(&mut f, "status_detail", s);
    }

    // actor: the caller and the token's claims; else the service that acted.
    const OID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
    const UPN: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn";
    let claims = |key: &'static str| ["identity", "claims", key];
    let uid_path = [claims(OID), claims("oid")]
        .into_iter()
        .find(|p| rec.peek(p).is_some());
    let appid = claims("appid");
    let has_name = rec.peek(&["caller"]).is_some();
    let mut user = Map::new();
    // A user needs a name or a uid: the caller, the object id, else the application id.
    if has_name || uid_path.is_some() || rec.peek(&appid).is_some() {
        if let Some(s) = rec.take(&["caller"], "actor.user.name") {
            put_s(&mut user, "name", s);
        }
        match uid_path {
            Some(p) => {
                if let Some(s) = rec.take(&p, "actor.user.uid") {
                    put_s(&mut user, "uid", s);
                }
                if let Some(s) = rec.take(&appid, "actor.user.uid_alt") {
                    put_s(&mut user, "uid_alt", s);
                }
            }
            None if has_name => {
                if let Some(s) = rec.take(&appid, "actor.user.uid_alt") {
                    put_s(&mut user, "uid_alt", s);
                }
            }
            None => {
                if let Some(s) = rec.take(&appid, "actor.user.uid") {
                    put_s(&mut user, "uid", s);
                }
            }
        }
        if let Some(s) = rec.take(&claims("name"), "actor.user.full_name") {
            put_s(&mut user, "full_name", s);
        }
        if let Some(upn) = rec.peek(&claims(UPN)).filter(|u| u.contains('@')) {
            if let Some(at) = rec.at(&claims(UPN)) {
                rec.hold(&at, "actor.user.email_addr");
            }
            put_s(&mut user, "email_addr", upn);
        }
    }
    let mut actor = Map::new();
    put_obj(&mut actor, "user", user);
    if actor.is_empty() {
        put_s(
            &mut actor,
            "invoked_by",
            namespace.unwrap_or("Microsoft Azure"),
        );
    }
    f.insert("actor".into(), Value::Object(actor));

    // src_endpoint: the caller's address; for a caller without one, the service.
    let mut src = Map::new();
    let ip = take_ip(rec, &["callerIpAddress"], "src_endpoint.ip")
        .or_else(|| take_ip(rec, &["httpRequest", "clientIpAddress"], "src_endpoint.ip"));
    match ip {
        Some(ip) => put_s(&mut src, "ip", &ip),
        None => put_s(&mut src, "svc_name", namespace.unwrap_or("Microsoft Azure")),
    }
    f.insert("src_endpoint".into(), Value::Object(src));

    let mut http = Map::new();
    if let Some(s) = rec.take(&["httpRequest", "method"], "http_request.http_method") {
        put_s(&mut http, "http_method", s);
    }
    if let Some(s) = rec.take(&["httpRequest", "clientRequestId"], "http_request.uid") {
        put_s(&mut http, "uid", s);
    }
    put_obj(&mut f, "http_request", http);

    // cloud: the subscription of the resource, and its region.
    let mut cloud = Map::new();
    put_s(&mut cloud, "provider", "Azure");
    let subscription = resource_id.and_then(subscription_of);
    let mut account = Map::new();
    if let Some(sub) = subscription {
        if let Some(at) = rec.at(&["subscriptionId"]) {
            if at.text() == Some(sub) {
                rec.hold(&at, "cloud.account.uid");
            }
        }
        put_s(&mut account, "uid", sub);
        put_s(&mut account, "type", "Azure Subscription");
    } else if let Some(s) = rec.take(&["subscriptionId"], "cloud.account.uid") {
        put_s(&mut account, "uid", s);
        put_s(&mut account, "type", "Azure Subscription");
    }
    put_obj(&mut cloud, "account", account);
    if let Some(s) = rec.take(&["location"], "cloud.region") {
        put_s(&mut cloud, "region", s);
    }
    f.insert("cloud".into(), Value::Object(cloud));

    // resources: the resource the operation was on.
    if let Some(rid) = rec.take(&["resourceId"], "resources.0.uid") {
        let mut r = Map::new();
        put_s(&mut r, "uid", rid);
        if let Some(t) = resource_type(rid) {
            put_s(&mut r, "type", &t);
        }
        if let Some(name) = rid.trim_end_matches('/').rsplit('/').next() {
            if !name.is_empty() {
                put_s(&mut r, "name", name);
            }
        }
        f.insert("resources".into(), Value::Array(vec![Value::Object(r)]));
    }

    Ok(Body {
        class: Class::ApiActivity,
        activity_id,
        product: "Azure Activity Log",
        fields: f,
    })
}

/// The HTTP status of an Activity Log `statusCode` (`OK`, `Created`, `404`).
fn http_code(s: &str) -> Option<i64> {
    if let Ok(n) = s.trim().parse::<i64>() {
        return (100..600).contains(&n).then_some(n);
    }
    let code = match s.trim().to_ascii_lowercase().as_str() {
        "ok" => 200,
        "created" => 201,
        "accepted" => 202,
        "nocontent" => 204,
        "badrequest" => 400,
        "unauthorized" => 401,
        "forbidden" => 403,
        "notfound" => 404,
        "methodnotallowed" => 405,
        "conflict" => 409,
        "preconditionfailed" => 412,
        "toomanyrequests" => 429,
        "internalservererror" => 500,
        "serviceunavailable" => 503,
        "gatewaytimeout" => 504,
        _ => return None,
    };
    Some(code)
}

/// The subscription id of `/subscriptions/<id>/…`.
pub(crate) fn subscription_of(resource_id: &str) -> Option<&str> {
    let mut parts = resource_id.split('/').filter(|p| !p.is_empty());
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("subscriptions") {
            return parts.next();
        }
    }
    None
}

/// The namespace after `/providers/` in a resource id (`Microsoft.Compute`).
pub(crate) fn provider_namespace(resource_id: &str) -> Option<&str> {
    let mut parts = resource_id.split('/').filter(|p| !p.is_empty());
    let mut found = None;
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("providers") {
            found = parts.next();
        }
    }
    found
}

/// `Microsoft.Compute/virtualMachines` for a resource id that names a provider and a type.
fn resource_type(resource_id: &str) -> Option<String> {
    let parts: Vec<&str> = resource_id.split('/').filter(|p| !p.is_empty()).collect();
    let at = parts
        .iter()
        .rposition(|p| p.eq_ignore_ascii_case("providers"))?;
    let ns = parts.get(at + 1)?;
    // providers/NS/type/name[/subtype/name…]: the types are every other part.
    let types: Vec<&str> = parts[at + 2..].iter().step_by(2).copied().collect();
    if types.is_empty() {
        Some(ns.to_string())
    } else {
        Some(format!("{ns}/{}", types.join("/")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_give_subscription_namespace_and_type() {
        let rid = "/subscriptions/0000-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/extensions/e";
        assert_eq!(subscription_of(rid), Some("0000-1"));
        assert_eq!(provider_namespace(rid), Some("Microsoft.Compute"));
        assert_eq!(
            resource_type(rid).as_deref(),
            Some("Microsoft.Compute/virtualMachines/extensions")
        );
        assert_eq!(
            subscription_of("/tenants/x/providers/Microsoft.aadiam"),
            None
        );
    }

    #[test]
    fn status_codes_read_as_http() {
        assert_eq!(http_code("Created"), Some(201));
        assert_eq!(http_code("404"), Some(404));
        assert_eq!(http_code("Weird"), None);
    }
}
