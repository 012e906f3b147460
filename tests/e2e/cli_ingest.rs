//! `aztrail ingest` as an operator runs it: credentials from a Secrets Manager secret (moto), blobs
//! in Azurite, staged objects in moto's S3; a JSON summary, and a clear error without credentials.

use std::process::Command;

use aztrail_testkit::{
    azurite_account_sas, hour_path, Azurite, Moto, Staging, AZURITE_ACCOUNT, AZURITE_KEY,
};
use aztrail_transform::synth;
use azure_core::http::{RequestContent, Url};
use azure_storage_blob::BlobContainerClient;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_with_credentials_from_secrets_manager() {
    let azurite = Azurite::start();
    let moto = Moto::start();
    let sas = azurite_account_sas("racwdl");
    let container = BlobContainerClient::new(
        Url::parse(&format!(
            "{}/insights-activity-logs?{sas}",
            azurite.account_url
        ))
        .unwrap(),
        None,
        None,
    )
    .unwrap();
    container.create(None).await.unwrap();
    let blob = hour_path("resourceId=/SUBSCRIPTIONS/S/", 0);
    let body = synth::generate(40, 3).into_bytes();
    let append = container.blob_client(&blob).append_blob_client();
    append.create(None).await.unwrap();
    append
        .append_block(RequestContent::from(body.clone()), body.len() as u64, None)
        .await
        .unwrap();

    let staging = Staging::create(&moto).await;
    let (shared, s3) = (&staging.config, &staging.s3);
    let secret = aws_sdk_secretsmanager::Client::new(shared)
        .create_secret()
        .name("aztrail/azure")
        .secret_string(
            serde_json::json!({"connectionString": format!(
                "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};",
                azurite.account_url
            )})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_aztrail"))
            .args([
                "ingest",
                "--container",
                "insights-activity-logs",
                "--staging-bucket",
                "staging",
                "--s3-path-style",
            ])
            .args(extra)
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "t")
            .env("AWS_SECRET_ACCESS_KEY", "t")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AZTRAIL_AZURE_CREDENTIALS")
            .output()
            .unwrap()
    };
    let out = run(&["--azure-secret-arn", secret.arn().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["objectsWritten"], 1);
    assert_eq!(summary["newBytes"], body.len() as u64);
    let key = format!(
        "staged/{AZURITE_ACCOUNT}/insights-activity-logs/{blob}.0-{}",
        body.len()
    );
    let staged = s3
        .get_object()
        .bucket("staging")
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        staged.metadata().unwrap()["source-range"],
        format!("0-{}", body.len())
    );
    assert_eq!(staged.body.collect().await.unwrap().into_bytes(), body);
    // A second pass finds nothing new.
    let out = run(&["--azure-secret-arn", secret.arn().unwrap()]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            summary["objectsWritten"].as_u64(),
            summary["skipped"].as_u64()
        ),
        (Some(0), Some(1))
    );

    // Without credentials: exit 2 and a message that says what to do.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--azure-secret-arn"));
}

/// Hostile round 2, item 6: an account-key connection string and a blob endpoint that refuses
/// connections. The error, after the retries, names what failed but never the SAS signature
/// minted from the key (nor the key); a malformed segment is not echoed either.
#[test]
fn an_unreachable_endpoint_never_prints_the_signature() {
    let tmp = tempfile::Builder::new()
        .prefix("aztrail-redact-")
        .tempdir()
        .expect("a temporary directory");
    let refused = "http://127.0.0.1:9/acct";
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={AZURITE_KEY};BlobEndpoint={refused};"
    );
    let spawn = |args: &[&str], credentials: &str| {
        Command::new(env!("CARGO_BIN_EXE_aztrail"))
            .args(args)
            .env("AZTRAIL_AZURE_CREDENTIALS", credentials)
            .env("AWS_ENDPOINT_URL", refused)
            .env("AWS_ACCESS_KEY_ID", "t")
            .env("AWS_SECRET_ACCESS_KEY", "t")
            .env("AWS_REGION", "us-east-1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let dir = tmp.path().to_string_lossy().into_owned();
    let commands = [
        vec!["run", "--azure", "--dir", &dir],
        vec![
            "ingest",
            "--container",
            "insights-activity-logs",
            "--staging-bucket",
            "staging",
            "--s3-path-style",
        ],
    ];
    // Both at once: each waits out the Azure SDK's retry policy (about 80 s).
    let children: Vec<_> = commands.iter().map(|a| spawn(a, &connection)).collect();
    for (args, child) in commands.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("acct"), "says what failed: {stderr}");
        assert!(!stderr.contains(AZURITE_KEY), "{stderr}");
        for (at, _) in stderr.to_ascii_lowercase().match_indices("sig=") {
            assert!(
                stderr[at + 4..].starts_with("REDACTED"),
                "{args:?} printed a signature: {stderr}"
            );
        }
    }
    let out = spawn(
        &["ingest", "--container", "c", "--staging-bucket", "staging"],
        "AccountName=acct;AccountKeySECRETSECRETSECRET",
    )
    .wait_with_output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("segment 2"), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
}
