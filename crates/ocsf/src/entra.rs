//! Microsoft Entra ID records: sign-ins of every kind → Authentication (3002); audit records →
//! Account Change (3001) for user lifecycle, password and MFA changes, Entity Management (3004)
//! for apps, service principals, groups, devices and policies, API Activity (6003) otherwise;
//! the other Entra categories (provisioning, risk, Graph activity) → API Activity.

use aztrail_transform::Rejection;
use serde_json::{Map, Value};

use crate::class::Class;
use crate::map::{put_obj, put_s, put_u, status_id, status_name, take_ip, Body};
use crate::record::{At, Rec};

const PRODUCT: &str = "Microsoft Entra ID";

/// Maps an Entra ID record of `category`.
pub(crate) fn map(rec: &mut Rec<'_>, category: Option<&At<'_>>) -> Result<Body, Rejection> {
    let category = category.and_then(|c| c.text()).unwrap_or("");
    let mut body = if category.to_ascii_lowercase().ends_with("signinlogs") {
        sign_in(rec, category)
    } else if category.eq_ignore_ascii_case("AuditLogs") || category.eq_ignore_ascii_case("Audit") {
        audit(rec)?
    } else {
        other(rec)?
    };
    let mut cloud = Map::new();
    put_s(&mut cloud, "provider", "Azure");
    if let Some(t) = rec.peek(&["tenantId"]) {
        let mut account = Map::new();
        put_s(&mut account, "uid", t);
        put_s(&mut account, "type", "Microsoft Entra ID Tenant");
        cloud.insert("account".into(), Value::Object(account));
    }
    body.fields.insert("cloud".into(), Value::Object(cloud));
    Ok(body)
}

/// A sign-in: the user (or service principal, or managed identity) who signed in, from where,
/// with what device, to which application, and with what result.
fn sign_in(rec: &mut Rec<'_>, category: &str) -> Body {
    let mut f = Map::new();
    let lower = category.to_ascii_lowercase();
    let principal = lower.contains("serviceprincipal") || lower.contains("managedidentity");

    let mut user = Map::new();
    if principal {
        if let Some(s) = rec.take(&["properties", "servicePrincipalId"], "user.uid") {
            put_s(&mut user, "uid", s);
        }
        if let Some(s) = rec.take(&["properties", "servicePrincipalName"], "user.name") {
            put_s(&mut user, "name", s);
        }
        put_s(
            &mut user,
            "type",
            if lower.contains("managedidentity") {
                "Managed Identity"
            } else {
                "Service Principal"
            },
        );
        put_u(&mut user, "type_id", 99);
    } else {
        if let Some(s) = rec.take(&["properties", "userId"], "user.uid") {
            put_s(&mut user, "uid", s);
        }
        if let Some(s) = rec.take(&["properties", "userPrincipalName"], "user.name") {
            put_s(&mut user, "name", s);
        }
        if let Some(s) = rec.take(&["properties", "userDisplayName"], "user.full_name") {
            put_s(&mut user, "full_name", s);
        }
        if let Some(s) = rec.take(&["properties", "userType"], "user.type") {
            put_s(&mut user, "type", s);
        }
        put_u(&mut user, "type_id", 1);
    }
    if !user.contains_key("uid") && !user.contains_key("name") {
        let name = rec.take(&["identity"], "user.name").unwrap_or("unknown");
        put_s(&mut user, "name", name);
    }
    f.insert("user".into(), Value::Object(user));

    // is_mfa from the authentication requirement (which stays in unmapped).
    match rec.peek(&["properties", "authenticationRequirement"]) {
        Some(r) if r.eq_ignore_ascii_case("multiFactorAuthentication") => {
            f.insert("is_mfa".into(), Value::from(true));
        }
        Some(r) if r.eq_ignore_ascii_case("singleFactorAuthentication") => {
            f.insert("is_mfa".into(), Value::from(false));
        }
        _ => {}
    }

    // status: resultType is the error code, "0" for success.
    let code = rec.take(&["resultType"], "status_code");
    let sid = match code {
        Some("0") => 1,
        Some(_) => 2,
        None => match rec
            .at(&["properties", "status", "errorCode"])
            .map(|a| a.value)
        {
            Some(crate::value::Json::Num(n)) if n.as_i64() == Some(0) => 1,
            Some(crate::value::Json::Num(_)) => 2,
            _ => 0,
        },
    };
    if let Some(c) = code {
        put_s(&mut f, "status_code", c);
    }
    put_u(&mut f, "status_id", sid);
    put_s(&mut f, "status", status_name(sid));
    if let Some(s) = rec.take(&["properties", "status", "failureReason"], "status_detail") {
        put_s(&mut f, "status_detail", s);
    } else if let Some(s) = rec.take(&["resultDescription"], "status_detail") {
        put_s(&mut f, "status_detail", s);
    }

    // src_endpoint, with the location Entra resolved.
    let ip = take_ip(rec, &["properties", "ipAddress"], "src_endpoint.ip")
        .or_else(|| take_ip(rec, &["callerIpAddress"], "src_endpoint.ip"));
    // The location only with the address it is of (OCSF's endpoint needs one); else it stays
    // in unmapped.
    let mut location = Map::new();
    if ip.is_some() {
        let loc = ["properties", "location"];
        for (key, attr) in [
            ("city", "city"),
            ("state", "region"),
            ("countryOrRegion", "country"),
        ] {
            if let Some(s) = rec.take(
                &[loc[0], loc[1], key],
                &format!("src_endpoint.location.{attr}"),
            ) {
                put_s(&mut location, attr, s);
            }
        }
        let geo = ["properties", "location", "geoCoordinates"];
        if let (Some(lat_at), Some(lon_at)) = (
            rec.at(&[geo[0], geo[1], geo[2], "latitude"]),
            rec.at(&[geo[0], geo[1], geo[2], "longitude"]),
        ) {
            if let (crate::value::Json::Num(lat), crate::value::Json::Num(lon)) =
                (lat_at.value, lon_at.value)
            {
                if let (Some(lat), Some(lon)) = (lat.as_f64(), lon.as_f64()) {
                    rec.hold(&lon_at, "src_endpoint.location.coordinates.0");
                    rec.hold(&lat_at, "src_endpoint.location.coordinates.1");
                    location.insert("coordinates".into(), Value::from(vec![lon, lat]));
                }
            }
        }
    }
    let mut src = Map::new();
    if let Some(ip) = &ip {
        put_s(&mut src, "ip", ip);
    }
    if !src.is_empty() {
        put_obj(&mut src, "location", location);
        f.insert("src_endpoint".into(), Value::Object(src));
    }

    // device
    let mut device = Map::new();
    let dd = |k: &'static str| ["properties", "deviceDetail", k];
    if let Some(s) = rec.take(&dd("deviceId"), "device.uid") {
        put_s(&mut device, "uid", s);
    }
    if let Some(s) = rec.take(&dd("displayName"), "device.name") {
        put_s(&mut device, "name", s);
    }
    if device.is_empty() {
        if let Some(ip) = &ip {
            put_s(&mut device, "ip", ip);
        }
    }
    if !device.is_empty() {
        put_u(&mut device, "type_id", 0);
        put_s(&mut device, "type", "Unknown");
        if let Some(os) = rec.take(&dd("operatingSystem"), "device.os.name") {
            let mut o = Map::new();
            put_s(&mut o, "name", os);
            let (type_id, type_name) = os_type(os);
            put_u(&mut o, "type_id", type_id);
            put_s(&mut o, "type", type_name);
            device.insert("os".into(), Value::Object(o));
        }
        if let Some(b) = rec.take_bool(&dd("isCompliant"), "device.is_compliant") {
            device.insert("is_compliant".into(), Value::from(b));
        }
        if let Some(b) = rec.take_bool(&dd("isManaged"), "device.is_managed") {
            device.insert("is_managed".into(), Value::from(b));
        }
        f.insert("device".into(), Value::Object(device));
    }

    // service: the application signed in to.
    let mut service = Map::new();
    if let Some(s) = rec.take(&["properties", "appId"], "service.uid") {
        put_s(&mut service, "uid", s);
    }
    if let Some(s) = rec.take(&["properties", "appDisplayName"], "service.name") {
        put_s(&mut service, "name", s);
    }
    if service.is_empty() {
        // OCSF wants the service (or endpoint) authenticated to: without an application, the
        // identity provider itself.
        put_s(&mut service, "name", PRODUCT);
    }
    f.insert("service".into(), Value::Object(service));

    let mut http = Map::new();
    if let Some(s) = rec.take(&["properties", "userAgent"], "http_request.user_agent") {
        put_s(&mut http, "user_agent", s);
    }
    put_obj(&mut f, "http_request", http);

    Body {
        class: Class::Authentication,
        activity_id: 1,
        product: PRODUCT,
        fields: f,
    }
}

/// OCSF's operating system type of an Entra `operatingSystem`.
fn os_type(os: &str) -> (u32, &'static str) {
    let l = os.to_ascii_lowercase();
    if l.starts_with("windows") {
        (100, "Windows")
    } else if l.starts_with("android") {
        (201, "Android")
    } else if l.starts_with("linux") || l.starts_with("ubuntu") {
        (200, "Linux")
    } else if l.starts_with("macos") || l.starts_with("mac os") || l.starts_with("osx") {
        (300, "macOS")
    } else if l.starts_with("ios") {
        (301, "iOS")
    } else if l.starts_with("ipados") {
        (302, "iPadOS")
    } else {
        (0, "Unknown")
    }
}

/// An audit record's class and activity, from its activity name and its first target.
fn audit_class(activity: &str, target_type: Option<&str>, category: Option<&str>) -> (Class, u32) {
    let a = activity.trim().to_ascii_lowercase();
    let account = match a.as_str() {
        "add user" => Some(1),
        "delete user" | "hard delete user" => Some(6),
        "enable account" | "restore user" => Some(2),
        "disable account" => Some(5),
        "change user password" | "change password (self-service)" => Some(3),
        "reset user password"
        | "reset password (by admin)"
        | "reset password (self-service)"
        | "set force change user password" => Some(4),
        "user registered security info"
        | "admin registered security info"
        | "user registered all required security info"
        | "user changed default security info" => Some(10),
        "user deleted security info" | "admin deleted security info" => Some(11),
        _ if a.contains("strongauthentication") && a.starts_with("delete") => Some(11),
        _ if a.contains("strongauthentication") => Some(10),
        _ => None,
    };
    if let Some(id) = account {
        return (Class::AccountChange, id);
    }
    let t = target_type.unwrap_or("").to_ascii_lowercase();
    let c = category.unwrap_or("").to_ascii_lowercase();
    let entity = matches!(
        t.as_str(),
        "application" | "serviceprincipal" | "group" | "device" | "policy"
    ) || matches!(
        c.as_str(),
        "applicationmanagement" | "groupmanagement" | "device" | "devicemanagement" | "policy"
    );
    let class = if entity {
        Class::EntityManagement
    } else {
        Class::ApiActivity
    };
    (class, 0)
}

/// The activity of an audit `operationType` (Add, Update, Delete, …) in API Activity and
/// Entity Management.
fn crud(operation_type: Option<&str>) -> u32 {
    match operation_type
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "add" | "create" => 1,
        "read" | "get" => 2,
        "update" | "assign" | "unassign" => 3,
        "delete" | "remove" => 4,
        "" => 0,
        _ => 99,
    }
}

/// An audit record.
fn audit(rec: &mut Rec<'_>) -> Result<Body, Rejection> {
    let mut f = Map::new();
    let activity = rec
        .peek(&["properties", "activityDisplayName"])
        .or_else(|| rec.peek(&["operationName"]))
        .or_else(|| rec.peek(&["category"]))
        .ok_or(Rejection::NoOperation)?;
    let target = rec
        .at(&["properties", "targetResources"])
        .and_then(|t| t.index(0));
    let target_type = target
        .as_ref()
        .and_then(|t| t.get("type"))
        .and_then(|t| t.text());
    let (mut class, mut activity_id) =
        audit_class(activity, target_type, rec.peek(&["properties", "category"]));
    let operation_type = rec.peek(&["properties", "operationType"]);

    match class {
        Class::AccountChange => {
            // The user changed: the target, else (self-service) the initiator.
            let mut user = Map::new();
            let who = target
                .clone()
                .map(|t| (t, "id", "userPrincipalName", "displayName"))
                .or_else(|| {
                    rec.at(&["properties", "initiatedBy", "user"])
                        .map(|u| (u, "id", "userPrincipalName", "displayName"))
                });
            if let Some((at, uid, name, full)) = who {
                for (key, attr) in [(uid, "uid"), (name, "name"), (full, "full_name")] {
                    if let Some(v) = at.get(key) {
                        if let Some(s) = rec.take_at(&v, &format!("user.{attr}")) {
                            put_s(&mut user, attr, s);
                        }
                    }
                }
            }
            if user.contains_key("uid") || user.contains_key("name") {
                f.insert("user".into(), Value::Object(user));
            } else {
                class = Class::ApiActivity;
                activity_id = crud(operation_type);
            }
        }
        Class::EntityManagement => {
            let mut entity = Map::new();
            if let Some(t) = &target {
                for (key, attr) in [("id", "uid"), ("displayName", "name"), ("type", "type")] {
                    if let Some(v) = t.get(key) {
                        if let Some(s) = rec.take_at(&v, &format!("entity.{attr}")) {
                            put_s(&mut entity, attr, s);
                        }
                    }
                }
            }
            if entity.contains_key("uid") || entity.contains_key("name") {
                f.insert("entity".into(), Value::Object(entity));
                activity_id = crud(operation_type);
            } else {
                class = Class::ApiActivity;
                activity_id = crud(operation_type);
            }
        }
        _ => activity_id = crud(operation_type),
    }

    // api: the activity, the service that logged it, the correlation id.
    let mut api = Map::new();
    let op_at = rec
        .at(&["properties", "activityDisplayName"])
        .filter(|a| a.text().is_some())
        .or_else(|| rec.at(&["operationName"]).filter(|a| a.text().is_some()))
        .or_else(|| rec.at(&["category"]));
    if let Some(at) = op_at {
        rec.take_at(&at, "api.operation");
    }
    put_s(&mut api, "operation", activity);
    if let Some(s) = rec.take(&["properties", "loggedByService"], "api.service.name") {
        let mut service = Map::new();
        put_s(&mut service, "name", s);
        api.insert("service".into(), Value::Object(service));
    }
    if let Some(c) = rec.take(&["properties", "correlationId"], "api.request.uid") {
        let mut request = Map::new();
        put_s(&mut request, "uid", c);
        api.insert("request".into(), Value::Object(request));
    }
    f.insert("api".into(), Value::Object(api));

    // status
    let result = rec.take(&["properties", "result"], "status");
    let sid = result.map(status_id).unwrap_or(0);
    put_u(&mut f, "status_id", sid);
    put_s(&mut f, "status", result.unwrap_or(status_name(sid)));
    if let Some(s) = rec.take(&["properties", "resultReason"], "status_detail") {
        put_s(&mut f, "status_detail", s);
    }

    // actor: the user or application that initiated the change.
    let mut actor = Map::new();
    let mut user = Map::new();
    if let Some(u) = rec.at(&["properties", "initiatedBy", "user"]) {
        for (key, attr) in [
            ("id", "uid"),
            ("userPrincipalName", "name"),
            ("displayName", "full_name"),
        ] {
            if let Some(v) = u.get(key) {
                if let Some(s) = rec.take_at(&v, &format!("actor.user.{attr}")) {
                    put_s(&mut user, attr, s);
                }
            }
        }
    }
    if user.is_empty() {
        if let Some(a) = rec.at(&["properties", "initiatedBy", "app"]) {
            for (key, attr) in [
                ("servicePrincipalId", "uid"),
                ("servicePrincipalName", "name"),
            ] {
                if let Some(v) = a.get(key) {
                    if let Some(s) = rec.take_at(&v, &format!("actor.user.{attr}")) {
                        put_s(&mut user, attr, s);
                    }
                }
            }
            if let Some(v) = a.get("displayName") {
                if let Some(s) = rec.take_at(&v, "actor.invoked_by") {
                    put_s(&mut actor, "invoked_by", s);
                }
            }
            if !user.is_empty() {
                put_s(&mut user, "type", "Service Principal");
                put_u(&mut user, "type_id", 99);
            }
        }
    }
    if user.contains_key("uid") || user.contains_key("name") {
        actor.insert("user".into(), Value::Object(user));
    }
    if actor.is_empty() {
        let by = rec
            .take(&["identity"], "actor.invoked_by")
            .unwrap_or(PRODUCT);
        put_s(&mut actor, "invoked_by", by);
    }
    f.insert("actor".into(), Value::Object(actor));

    // src_endpoint: the initiator's address (Entity Management has no endpoint: it stays in
    // unmapped there).
    if class != Class::EntityManagement {
        let ip = take_ip(
            rec,
            &["properties", "initiatedBy", "user", "ipAddress"],
            "src_endpoint.ip",
        )
        .or_else(|| take_ip(rec, &["callerIpAddress"], "src_endpoint.ip"));
        let mut src = Map::new();
        match ip {
            Some(ip) => put_s(&mut src, "ip", &ip),
            None => put_s(&mut src, "svc_name", PRODUCT),
        }
        if class == Class::ApiActivity || src.contains_key("ip") {
            f.insert("src_endpoint".into(), Value::Object(src));
        }
    }

    // resources (API Activity): every target.
    if class == Class::ApiActivity {
        let mut resources = Vec::new();
        if let Some(targets) = rec.at(&["properties", "targetResources"]) {
            for t in targets.items() {
                let named = ["id", "displayName"]
                    .iter()
                    .any(|k| t.get(k).is_some_and(|v| v.text().is_some()));
                if !named {
                    continue; // OCSF needs a uid or a name; its values stay in unmapped.
                }
                let i = resources.len();
                let mut r = Map::new();
                for (key, attr) in [("id", "uid"), ("displayName", "name"), ("type", "type")] {
                    if let Some(v) = t.get(key) {
                        if let Some(s) = rec.take_at(&v, &format!("resources.{i}.{attr}")) {
                            put_s(&mut r, attr, s);
                        }
                    }
                }
                resources.push(Value::Object(r));
            }
        }
        if !resources.is_empty() {
            f.insert("resources".into(), Value::Array(resources));
        }
    }

    Ok(Body {
        class,
        activity_id,
        product: PRODUCT,
        fields: f,
    })
}

/// Provisioning, risk and Graph activity records: API Activity on the operation named.
fn other(rec: &mut Rec<'_>) -> Result<Body, Rejection> {
    let mut f = Map::new();
    let op = rec
        .take(&["operationName"], "api.operation")
        .or_else(|| rec.peek(&["category"]))
        .ok_or(Rejection::NoOperation)?;
    let mut api = Map::new();
    put_s(&mut api, "operation", op);
    f.insert("api".into(), Value::Object(api));
    let result = rec.take(&["resultType"], "status");
    let sid = result.map(status_id).unwrap_or(0);
    put_u(&mut f, "status_id", sid);
    put_s(&mut f, "status", result.unwrap_or(status_name(sid)));
    let mut actor = Map::new();
    let by = rec
        .take(&["identity"], "actor.invoked_by")
        .unwrap_or(PRODUCT);
    put_s(&mut actor, "invoked_by", by);
    f.insert("actor".into(), Value::Object(actor));
    let mut src = Map::new();
    match take_ip(rec, &["callerIpAddress"], "src_endpoint.ip") {
        Some(ip) => put_s(&mut src, "ip", &ip),
        None => put_s(&mut src, "svc_name", PRODUCT),
    }
    f.insert("src_endpoint".into(), Value::Object(src));
    Ok(Body {
        class: Class::ApiActivity,
        activity_id: 99,
        product: PRODUCT,
        fields: f,
    })
}
