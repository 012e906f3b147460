//! Who acted: the identity claims and authorization of an Activity Log record, an Entra ID
//! record's initiator, written as `userIdentity`, and the source IP address.

use super::*;

/// What the identity claims and authorization say.
#[derive(Default)]
pub(super) struct Identity<'i> {
    pub(super) object_id: Option<&'i str>,
    pub(super) upn: Option<&'i str>,
    pub(super) name: Option<&'i str>,
    pub(super) app_id: Option<&'i str>,
    pub(super) tenant_id: Option<&'i str>,
    pub(super) idtyp: Option<&'i str>,
    pub(super) scope: Option<&'i str>,
    pub(super) action: Option<&'i str>,
    pub(super) role: Option<&'i str>,
    pub(super) evidence_principal: Option<&'i str>,
    pub(super) evidence_type: Option<&'i str>,
    pub(super) text: Option<&'i str>,
    /// The REST API's `caller`: a UPN, or an object or application id.
    pub(super) caller: Option<&'i str>,
}

pub(super) fn read_identity<'i>(v: Option<Val<'_, 'i>>) -> Identity<'i> {
    let mut id = Identity::default();
    let Some(v) = v else { return id };
    if let Some(s) = as_str(v) {
        id.text = Some(s).filter(|s| !trim(s).is_empty());
        return id;
    }
    let ne = |v: Val<'_, 'i>| as_str(v).filter(|s| !trim(s).is_empty());
    for (key, value) in members(v) {
        if key.eq_ignore_ascii_case("claims") {
            for (claim, cv) in members(value) {
                let slot = match claim {
                    "http://schemas.microsoft.com/identity/claims/objectidentifier" | "oid" => {
                        &mut id.object_id
                    }
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn" | "upn" => {
                        &mut id.upn
                    }
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
                    | "name"
                    | "unique_name" => &mut id.name,
                    "appid" | "azp" => &mut id.app_id,
                    "http://schemas.microsoft.com/identity/claims/tenantid" | "tid" => {
                        &mut id.tenant_id
                    }
                    "idtyp" => &mut id.idtyp,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = ne(cv);
                }
            }
        } else if key.eq_ignore_ascii_case("authorization") {
            for (ak, av) in members(value) {
                match ak {
                    "scope" => id.scope = ne(av),
                    "action" => id.action = ne(av),
                    // The REST API names the role here, the export under `evidence`.
                    "role" => id.role = id.role.or(ne(av)),
                    "evidence" => {
                        for (ek, ev) in members(av) {
                            match ek {
                                "role" => id.role = ne(ev),
                                "principalId" => id.evidence_principal = ne(ev),
                                "principalType" => id.evidence_type = ne(ev),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    id
}

/// `userIdentity`'s members (`type`, `principalId`, `details` with the identity as written),
/// closing `userIdentity`. The export nests claims and authorization in `identity`; the REST API
/// has them at the top.
pub(super) fn write_user_identity(
    ed: &mut Doc,
    nodes: &[Node<'_>],
    record: &Top<'_, '_, '_>,
    props: &[Option<Val<'_, '_>>; PROPERTY_FIELDS],
    category: Option<&str>,
    truncated: &mut Vec<&'static str>,
    uid: &UidPump<'_>,
) {
    let top = &record.fields;
    let mut identity = match top[T_IDENTITY] {
        Some(v) => read_identity(Some(v)),
        None if top[T_CLAIMS].is_some() || top[T_AUTHORIZATION].is_some() => {
            read_identity(Some(nodes))
        }
        None => Identity::default(),
    };
    identity.caller = non_empty(top[T_CALLER]);
    let (principal, id_type) = principal(&identity, props, category);
    ed.plain_key("type");
    write_cut(
        ed,
        id_type,
        MAX_IDENTITY_TYPE_LEN,
        "userIdentity.type",
        truncated,
    );
    ed.punct(b',');
    ed.plain_key("principalId");
    write_cut(
        ed,
        principal,
        MAX_NAME_LEN,
        "userIdentity.principalId",
        truncated,
    );
    ed.literal(b",\"details\":{");
    let mut first = true;
    let mut detail = |ed: &mut Doc, key: &'static str, value: Option<&str>| {
        if let Some(v) = value {
            if !first {
                ed.punct(b',');
            }
            first = false;
            ed.plain_key(key);
            ed.string(cut(v, MAX_NAME_LEN));
        }
    };
    detail(ed, "objectId", identity.object_id);
    detail(
        ed,
        "userPrincipalName",
        identity.upn.or(non_empty(props[P_UPN])),
    );
    detail(
        ed,
        "name",
        identity
            .name
            .or(non_empty(props[P_USER_NAME]))
            .or(non_empty(props[P_SP_NAME])),
    );
    detail(ed, "appId", identity.app_id.or(non_empty(props[P_APP_ID])));
    detail(
        ed,
        "tenantId",
        identity.tenant_id.or(non_empty(top[T_TENANT])),
    );
    detail(ed, "idtyp", identity.idtyp);
    detail(ed, "authorizationScope", identity.scope);
    detail(ed, "authorizationAction", identity.action);
    detail(ed, "role", identity.role);
    detail(ed, "principalType", identity.evidence_type);
    // The whole identity as written: every claim (authnmethodsreferences says whether MFA was
    // used) and the authorization evidence (the role assignment that allowed the call).
    if let Some(v) = top[T_IDENTITY] {
        let mark = ed.mark();
        if !first {
            ed.punct(b',');
        }
        ed.plain_key("identity");
        match record
            .members
            .get(record.at[T_IDENTITY])
            .and_then(|m| m.raw)
        {
            Some(raw) => {
                uid.pump();
                literal_minified(ed, raw)
            }
            None => write_value(ed, v, None),
        }
        if ed.json_len() - mark.0 > MAX_IDENTITY_BYTES {
            ed.truncate(mark);
            truncated.push("userIdentity.details.identity");
        }
    }
    ed.punct(b'}');
    ed.punct(b'}');
}

/// `sourceIPAddress`: the caller's address, from `callerIpAddress`, the REST shape's
/// `httpRequest.clientIpAddress` or `properties.ipAddress`, when one is an IP address.
pub(super) fn source_ip_of<'i>(
    top: &[Option<Val<'_, 'i>>; TOP_FIELDS],
    props: &[Option<Val<'_, 'i>>; PROPERTY_FIELDS],
) -> Option<Cow<'i, str>> {
    non_empty(top[T_CALLER_IP])
        .and_then(source_ip_text)
        .or_else(|| {
            top[T_HTTP_REQUEST]
                .and_then(|h| non_empty(get(h, "clientIpAddress")))
                .and_then(source_ip_text)
        })
        .or_else(|| non_empty(props[P_IP]).and_then(source_ip_text))
}

/// `userIdentity.principalId` and `type`, by DESIGN.md's order of preference.
pub(super) fn principal<'i>(
    id: &Identity<'i>,
    props: &[Option<Val<'_, 'i>>; PROPERTY_FIELDS],
    category: Option<&str>,
) -> (&'i str, &'static str) {
    let initiated = props[P_INITIATED_BY];
    let init_user = initiated.and_then(|v| get(v, "user"));
    let init_app = initiated.and_then(|v| get(v, "app"));
    let by_category = category.and_then(|c| {
        if c.eq_ignore_ascii_case("ManagedIdentitySignInLogs") {
            Some("ManagedIdentity")
        } else if c
            .as_bytes()
            .windows(16)
            .any(|w| w.eq_ignore_ascii_case(b"serviceprincipal"))
        {
            Some("ServicePrincipal")
        } else {
            None
        }
    });
    let by_idtyp = id.idtyp.map(|t| match t.to_ascii_lowercase().as_str() {
        "user" => "User",
        "app" => "ServicePrincipal",
        "device" => "Device",
        _ => "Unknown",
    });
    let claims_type = if id.upn.is_some() || id.name.is_some() {
        "User"
    } else if id.app_id.is_some() {
        "ServicePrincipal"
    } else {
        "Unknown"
    };
    let candidates: [(Option<&'i str>, &'static str); 13] = [
        (id.object_id, claims_type),
        (id.upn, "User"),
        (id.name, claims_type),
        (id.app_id, "ServicePrincipal"),
        (
            id.caller,
            if id.caller.is_some_and(|c| c.contains('@')) {
                "User"
            } else {
                "Unknown"
            },
        ),
        (id.evidence_principal, "Unknown"),
        (non_empty(props[P_USER_ID]), "User"),
        (non_empty(props[P_SP_ID]), "ServicePrincipal"),
        (init_user.and_then(|u| non_empty(get(u, "id"))), "User"),
        (
            init_app.and_then(|a| non_empty(get(a, "servicePrincipalId"))),
            "ServicePrincipal",
        ),
        (
            init_app.and_then(|a| non_empty(get(a, "appId"))),
            "ServicePrincipal",
        ),
        (non_empty(props[P_UPN]), "User"),
        (id.text, "Unknown"),
    ];
    let (principal, found_type) = candidates
        .iter()
        .find_map(|(p, t)| p.map(|p| (p, *t)))
        .unwrap_or(("unknown", "Unknown"));
    let evidence_type = id.evidence_type.and_then(|t| match t {
        "User" | "ServicePrincipal" | "ManagedIdentity" | "Group" | "Device" => Some(match t {
            "User" => "User",
            "ServicePrincipal" => "ServicePrincipal",
            "ManagedIdentity" => "ManagedIdentity",
            "Group" => "Group",
            _ => "Device",
        }),
        _ => None,
    });
    let id_type = by_idtyp
        .or(by_category)
        .or(evidence_type)
        .unwrap_or(found_type);
    (principal, id_type)
}
