//! The whole pipeline with real parts: Azurite (Azure Blob) → `aztrail run` (ingest into moto's
//! S3, whose notifications feed moto's SQS, loaded into the local lake). Append-blob growth over
//! several runs, Activity Log and Entra ID containers together, and a re-drop of a staged object:
//! the lake ends with one event per source record (counted by UID), plus exactly the re-dropped
//! object's records again, and the validation query returns the expected rows.

use std::process::Command;

use aztrail_lake::{Lake, LakeConfig, DEFAULT_CHANNEL_ARN};
use aztrail_testkit::{
    azurite_account_sas, hour_path, Azurite, Moto, Staging, AZURITE_ACCOUNT, AZURITE_KEY,
};
use aztrail_transform::synth;
use azure_core::http::{RequestContent, Url};
use azure_storage_blob::BlobContainerClient;
use serde_json::Value;

const ACTIVITY: &str = "insights-activity-logs";
const ENTRA: &str = "insights-logs-auditlogs";

async fn append(azurite: &Azurite, container: &str, blob: &str, bytes: &[u8]) {
    let sas = azurite_account_sas("racwdl");
    let c = BlobContainerClient::new(
        Url::parse(&format!("{}/{container}?{sas}", azurite.account_url)).unwrap(),
        None,
        None,
    )
    .unwrap();
    if !c.exists().await.unwrap() {
        c.create(None).await.unwrap();
    }
    let b = c.blob_client(blob);
    if !b.exists().await.unwrap() {
        b.append_blob_client().create(None).await.unwrap();
    }
    b.append_blob_client()
        .append_block(
            RequestContent::from(bytes.to_vec()),
            bytes.len() as u64,
            None,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_to_lake_through_s3_and_sqs() {
    let azurite = Azurite::start();
    let moto = Moto::start();
    let staging = Staging::create(&moto).await;
    let (s3, urls) = (
        &staging.s3,
        [staging.work.clone(), staging.failures.clone()],
    );
    let lake = Lake::start(LakeConfig::in_memory()).await.unwrap();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_aztrail"))
            .args([
                "run",
                "--azure",
                "--staging-bucket",
                "staging",
                "--queue-url",
                &urls[0],
                "--failure-queue-url",
                &urls[1],
                "--channel-arn",
                DEFAULT_CHANNEL_ARN,
                "--cloudtrail-endpoint",
                &lake.url(),
                "--s3-path-style",
                "--container",
                ACTIVITY,
                "--container",
                ENTRA,
            ])
            .env(
                "AZTRAIL_AZURE_CREDENTIALS",
                format!(
                    "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};",
                    azurite.account_url
                ),
            )
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "t")
            .env("AWS_SECRET_ACCESS_KEY", "t")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };

    let activity = hour_path(
        "resourceId=/SUBSCRIPTIONS/0A1B2C3D-0000-4000-8000-0000000000AA/",
        0,
    );
    let entra = hour_path("tenantId=72f988bf-86f1-41af-91ab-2d7cd011db47/", 1);
    let mut records = 0u64;
    for round in 0..3u64 {
        for (container, blob) in [(ACTIVITY, &activity), (ENTRA, &entra)] {
            let n = 40 + 10 * round as usize;
            append(
                &azurite,
                container,
                blob,
                synth::generate(n, round * 10 + records).as_bytes(),
            )
            .await;
            records += n as u64;
        }
        let summary = run();
        assert_eq!(summary["balanced"], true);
        assert_eq!(
            summary["ingest"]["objectsWritten"], 2,
            "round {round}: {summary}"
        );
        let stats = lake.stats().await.unwrap();
        assert_eq!(
            (stats.distinct_uids, stats.duplicate_events),
            (records, 0),
            "round {round}"
        );
    }

    // Re-drop one staged object: it is loaded again, in full.
    let staged = s3
        .list_objects_v2()
        .bucket("staging")
        .prefix("staged/")
        .send()
        .await
        .unwrap();
    let key = staged.contents()[0].key().unwrap().to_string();
    let body = s3
        .get_object()
        .bucket("staging")
        .key(&key)
        .send()
        .await
        .unwrap();
    let bytes = body.body.collect().await.unwrap().into_bytes();
    let redropped = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    s3.put_object()
        .bucket("staging")
        .key(&key)
        .body(bytes.into())
        .send()
        .await
        .unwrap();
    let summary = run();
    assert_eq!(summary["ingest"]["objectsWritten"], 0);
    assert_eq!(summary["load"]["accepted"].as_u64(), Some(redropped));
    let stats = lake.stats().await.unwrap();
    assert_eq!(
        stats.distinct_uids, records,
        "one event per source record, by UID"
    );
    assert_eq!(stats.duplicate_events, redropped, "and the re-drop again");

    // The validation query: events per source, Activity Log and Entra ID both present.
    let q = lake
        .query("SELECT eventData.eventSource, COUNT(DISTINCT eventData.uid) AS n FROM aztrail GROUP BY eventData.eventSource")
        .await
        .unwrap();
    let total: u64 = q.rows.iter().map(|r| r[1].as_u64().unwrap()).sum();
    assert_eq!(total, records);
    assert!(q.rows.iter().any(|r| r[0] == "MICROSOFT.AADIAM"), "{q:?}");
    assert!(q.rows.iter().any(|r| r[0]
        .as_str()
        .is_some_and(|s| s.starts_with("MICROSOFT.") && s != "MICROSOFT.AADIAM")));
    lake.stop().await;
}
