//! Backfill: events in the Activity Log REST API's shape (`az monitor activity-log list`, the
//! `EventData` of `GET …/providers/Microsoft.Insights/eventtypes/management/values`), built from
//! Microsoft's documented schema, go through `aztrail transform` and `aztrail load` in all three
//! layouts (a JSON array, a page object with `nextLink`, one event per line) by the same rules as
//! exported records, and lose no value.

use crate::common;

use std::process::Command;

use aztrail_lake::{Lake, LakeConfig};
use serde_json::{json, Value};

/// A role assignment by a user who signed in with MFA, and a delete refused with 409, by a
/// service principal: the fields `EventData` documents, as the API writes them.
fn events() -> Vec<Value> {
    let sub = "/subscriptions/6b1a0f9e-2c4d-4e8f-9a1b-3c5d7e9f1a2b";
    vec![
        json!({
            "authorization": {"action": "Microsoft.Authorization/roleAssignments/write",
                              "role": "Owner",
                              "scope": format!("{sub}/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/ra-1")},
            "caller": "alice@contoso.com",
            "channels": "Operation",
            "claims": {
                "aud": "https://management.core.windows.net/",
                "iat": "1764669600",
                "ipaddr": "203.0.113.7",
                "http://schemas.microsoft.com/claims/authnmethodsreferences": "pwd,mfa",
                "http://schemas.microsoft.com/identity/claims/objectidentifier": "0b8a4c1e-5f6d-4e2b-9a7c-1d3e5f7a9b2c",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "alice@contoso.com"
            },
            "correlationId": "4f1c9b2e-8d7a-4c3b-a5e6-7f8091a2b3c4",
            "description": "",
            "eventDataId": "a1b2c3d4-e5f6-4789-9abc-def012345678",
            "eventName": {"value": "EndRequest", "localizedValue": "End request"},
            "category": {"value": "Administrative", "localizedValue": "Administrative"},
            "eventTimestamp": "2026-11-30T09:15:42.1234567Z",
            "httpRequest": {"clientRequestId": "c0ffee00-1111-2222-3333-444455556666",
                            "clientIpAddress": "203.0.113.7", "method": "PUT"},
            "id": format!("{sub}/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/ra-1/events/a1b2c3d4/ticks/639001234567890123"),
            "level": "Informational",
            "resourceGroupName": "rg1",
            "resourceProviderName": {"value": "Microsoft.Authorization", "localizedValue": "Microsoft Authorization"},
            "resourceId": format!("{sub}/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/ra-1"),
            "resourceType": {"value": "Microsoft.Authorization/roleAssignments", "localizedValue": "Microsoft.Authorization/roleAssignments"},
            "operationId": "4f1c9b2e-8d7a-4c3b-a5e6-7f8091a2b3c4",
            "operationName": {"value": "Microsoft.Authorization/roleAssignments/write", "localizedValue": "Create role assignment"},
            "properties": {"statusCode": "Created", "serviceRequestId": "s-1",
                           "requestbody": "{\"Id\":\"ra-1\",\"Properties\":{\"PrincipalId\":\"p-9\",\"RoleDefinitionId\":\"8e3af657\"}}"},
            "status": {"value": "Succeeded", "localizedValue": "Succeeded"},
            "subStatus": {"value": "Created", "localizedValue": "Created (HTTP Status Code: 201)"},
            "submissionTimestamp": "2026-11-30T09:17:03.0000000Z",
            "subscriptionId": "6b1a0f9e-2c4d-4e8f-9a1b-3c5d7e9f1a2b",
            "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"
        }),
        json!({
            "authorization": {"action": "Microsoft.Storage/storageAccounts/delete",
                              "scope": format!("{sub}/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/st1")},
            "caller": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
            "claims": {"appid": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "idtyp": "app"},
            "correlationId": "5e2d1c0b-9a8f-4e7d-b6c5-a4b3c2d1e0f9",
            "eventDataId": "b2c3d4e5-f6a7-4890-abcd-ef0123456789",
            "eventName": {"value": "EndRequest", "localizedValue": "End request"},
            "category": {"value": "Administrative", "localizedValue": "Administrative"},
            "eventTimestamp": "2026-11-30T09:20:00.5Z",
            "httpRequest": {"clientRequestId": "d00d", "clientIpAddress": "0.0.0.0", "method": "DELETE"},
            "level": "Error",
            "resourceProviderName": {"value": "Microsoft.Storage", "localizedValue": "Microsoft Storage"},
            "resourceId": format!("{sub}/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/st1"),
            "operationName": {"value": "Microsoft.Storage/storageAccounts/delete", "localizedValue": "Delete Storage Account"},
            "properties": {"statusCode": "Conflict",
                           "statusMessage": "{\"error\":{\"code\":\"ScopeLocked\",\"message\":\"The scope is locked.\"}}"},
            "status": {"value": "Failed", "localizedValue": "Failed"},
            "subStatus": {"value": "Conflict", "localizedValue": "Conflict (HTTP Status Code: 409)"},
            "submissionTimestamp": "2026-11-30T09:21:00Z",
            "subscriptionId": "6b1a0f9e-2c4d-4e8f-9a1b-3c5d7e9f1a2b",
            "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"
        }),
    ]
}

/// The three layouts a backfill arrives in.
fn layouts() -> Vec<(&'static str, String)> {
    let ev = events();
    let array = serde_json::to_string_pretty(&ev).unwrap();
    // As the API writes a page: `value` first, then `nextLink` (null on the last page).
    let page = format!(
        "{{\"value\":[{}],\"nextLink\":\"https://management.azure.com/subscriptions/x/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$skiptoken=a%7D\"}}\n{{\"value\":[{}],\"nextLink\":null}}\n",
        ev[0], ev[1]
    );
    let lines = format!("{}\n{}\n", ev[0], ev[1]);
    vec![("array", array), ("pages", page), ("lines", lines)]
}

/// A fresh temporary directory, removed when dropped.
fn dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("aztrail-backfill-")
        .tempdir()
        .expect("a temporary directory")
}

#[test]
fn rest_api_events_map_by_the_export_rules_in_every_layout() {
    for (name, text) in layouts() {
        let tmp = dir();
        let file = tmp.path().join(format!("{name}.json"));
        std::fs::write(&file, &text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_aztrail"))
            .args([
                "transform",
                "--channel-arn",
                "arn:aws:cloudtrail:us-east-1:111122223333:channel/abc",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entries: Vec<&[u8]> = out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(entries.len(), 2, "{name}");
        let eds: Vec<Value> = entries
            .iter()
            .map(|e| {
                common::schema::check_entry(e, "111122223333")
                    .unwrap_or_else(|p| panic!("{name}: {p:?}"))
            })
            .collect();
        let (ok, failed) = (&eds[0], &eds[1]);
        assert_eq!(ok["eventSource"], "MICROSOFT.AUTHORIZATION");
        assert_eq!(
            ok["eventName"],
            "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"
        );
        assert_eq!(ok["eventTime"], "2026-11-30T09:15:42Z");
        assert_eq!(
            ok["userIdentity"]["principalId"],
            "0b8a4c1e-5f6d-4e2b-9a7c-1d3e5f7a9b2c"
        );
        assert_eq!(ok["userIdentity"]["type"], "User");
        assert_eq!(ok["userIdentity"]["details"]["role"], "Owner");
        assert_eq!(ok["sourceIPAddress"], "203.0.113.7");
        assert_eq!(
            ok["requestParameters"]["Properties"]["RoleDefinitionId"],
            "8e3af657"
        );
        assert!(ok.get("errorCode").is_none(), "{ok}");
        assert_eq!(
            ok["additionalEventData"]["eventTimestamp"],
            "2026-11-30T09:15:42.1234567Z"
        );
        assert_eq!(
            ok["additionalEventData"]["eventTimeSource"],
            "eventTimestamp"
        );
        assert_eq!(
            ok["additionalEventData"]["claims"]
                ["http://schemas.microsoft.com/claims/authnmethodsreferences"],
            "pwd,mfa"
        );
        assert_eq!(failed["eventSource"], "MICROSOFT.STORAGE");
        assert_eq!(
            failed["userIdentity"]["principalId"],
            "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
        );
        assert_eq!(failed["userIdentity"]["type"], "ServicePrincipal");
        assert_eq!(failed["errorCode"], "Conflict");
        assert!(
            failed["errorMessage"]
                .as_str()
                .unwrap()
                .contains("ScopeLocked"),
            "{failed}"
        );
        assert!(
            failed.get("sourceIPAddress").is_none(),
            "0.0.0.0 is no address"
        );
        assert_eq!(
            failed["additionalEventData"]["httpRequest"]["clientIpAddress"],
            "0.0.0.0"
        );
        for (record, ed) in events().iter().zip(&eds) {
            let lost = common::lossless::lost_values(record, ed);
            assert!(lost.is_empty(), "{name}: lost {lost:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_events_load_into_the_lake_in_every_layout() {
    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();
    let tmp = dir();
    let d = tmp.path().join("load");
    std::fs::create_dir_all(&d).unwrap();
    for (name, text) in layouts() {
        std::fs::write(d.join(format!("{name}.json")), text).unwrap();
    }
    let failures = tmp.path().join("load-failures.jsonl");
    let out = common::load_into_lake(&lake.url(), &failures, &d);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The same two events in three files: three sources, so three distinct UIDs per event
    // (the UID hashes the bytes as written, and the layouts write them differently).
    assert_eq!(lake.count().await.unwrap(), 6);
    let rows = lake
        .query("SELECT eventData.eventSource, COUNT(*) AS n FROM aztrail GROUP BY eventData.eventSource ORDER BY eventData.eventSource")
        .await
        .expect("query");
    let text = format!("{rows:?}");
    assert!(
        text.contains("MICROSOFT.AUTHORIZATION") && text.contains("MICROSOFT.STORAGE"),
        "{text}"
    );
    lake.stop().await;
}
