//! AWS clients as the commands build them: from the usual environment (profile, region,
//! `AWS_ENDPOINT_URL_*`), with the few switches local stand-ins need, in one place.

use std::sync::Arc;

use aztrail_load::destination::{writer_name, DestinationSettings, Kind, Sink};
use aztrail_load::settings::AwsClients;

/// Where AWS calls go.
#[derive(clap::Args, Clone, Debug)]
pub struct Endpoints {
    /// Address S3 with path-style URLs (for S3 emulators such as moto).
    #[arg(long, env = "AZTRAIL_S3_PATH_STYLE")]
    pub s3_path_style: bool,
}

/// The clients of one run.
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// The destination.
    pub sink: Arc<Sink>,
    /// The account events name as recipientAccountId.
    pub account: String,
}

impl Clients {
    /// The S3 and SQS clients, as a worker takes them.
    pub fn aws(&self) -> AwsClients {
        AwsClients {
            s3: self.s3.clone(),
            sqs: self.sqs.clone(),
        }
    }
}

/// Whether `url` names this machine (`127.0.0.0/8`, `localhost`, `[::1]`).
fn is_loopback(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the environment names AWS credentials (keys, a profile, a web identity, a container
/// role, or shared credential files), without asking any service.
fn credentials_configured() -> bool {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(default)))
            .is_some_and(|p| p.exists())
    };
    set("AWS_ACCESS_KEY_ID")
        || set("AWS_PROFILE")
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
        || file("AWS_CONFIG_FILE", ".aws/config")
}

/// The message for a run with no AWS credentials that needs them.
const NO_CREDENTIALS: &str = "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
(and AWS_REGION), or AWS_PROFILE, or run where a role provides them. Against the local lake \
(--cloudtrail-endpoint http://127.0.0.1:PORT) or an emulator on this machine none are needed: \
any credentials are accepted there";

/// The AWS configuration from the environment, for a run that calls the destination and the
/// services named in `services` (`"S3"`, `"SQS"`, `"SECRETS_MANAGER"`). When every endpoint in
/// use is on this machine (the local lake, an emulator), nothing asks AWS for anything: with no
/// credentials in the environment, placeholders sign the calls (stand-ins check only the
/// signature's form), and with no region set, `us-east-1` is used instead of asking the instance
/// metadata service (which, off EC2, only prints warnings). Otherwise the credential chain is
/// asked once (an instance or task role), and if it has none the run stops here, before
/// anything is loaded, saying how to set them.
pub async fn shared_config(
    destination: &DestinationSettings,
    services: &[&str],
) -> anyhow::Result<aws_config::SdkConfig> {
    let env_endpoint = |service: &str| {
        std::env::var(format!("AWS_ENDPOINT_URL_{service}"))
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok()
    };
    let service = match destination.destination {
        Kind::Cloudtrail => "CLOUDTRAIL_DATA",
        Kind::Cloudwatch => "CLOUDWATCH_LOGS",
        Kind::Securitylake => "S3",
    };
    let to = destination
        .endpoint()
        .map(str::to_string)
        .or_else(|| env_endpoint(service));
    let all_local = to.as_deref().is_some_and(is_loopback)
        && services
            .iter()
            .all(|s| env_endpoint(s).as_deref().is_some_and(is_loopback));
    let mut loader = aws_config::from_env();
    let region_set = ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    if all_local && !region_set {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    if !credentials_configured() {
        if all_local {
            eprintln!(
                "aztrail: no AWS credentials set; signing for the local endpoints with placeholders"
            );
            loader =
                loader.credentials_provider(aztrail_load::cloudtrail::placeholder_credentials());
        } else {
            let shared = aws_config::load_from_env().await;
            let provider = shared
                .credentials_provider()
                .ok_or_else(|| anyhow::anyhow!(NO_CREDENTIALS))?;
            let found = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                aws_sdk_cloudtraildata::config::ProvideCredentials::provide_credentials(&provider),
            )
            .await;
            match found {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => anyhow::bail!(
                    "{NO_CREDENTIALS} ({})",
                    aws_sdk_cloudtraildata::error::DisplayErrorContext(e)
                ),
                Err(_) => anyhow::bail!("{NO_CREDENTIALS} (none found within 5 s)"),
            }
        }
    }
    Ok(loader.load().await)
}

/// The settings of a run that calls no AWS service: no credentials or region are looked for
/// (so the instance metadata service is not asked).
pub async fn offline_config() -> aws_config::SdkConfig {
    aws_config::from_env()
        .region(aws_config::Region::new(
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ))
        .credentials_provider(aztrail_load::cloudtrail::placeholder_credentials())
        .load()
        .await
}

/// The S3 client (path-style URLs for S3 emulators such as moto), the one place it is built.
pub fn s3_client(shared: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(path_style)
            .build(),
    )
}

/// Whether [`clients`] checks the destination before anything is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflight {
    /// Check it (the commands): a destination that cannot be used stops the run at once.
    Check,
    /// Do not (the Lambda function): an outage at a cold start must not keep the function from
    /// starting; each message is retried on its own.
    Skip,
}

/// Builds the clients from the environment and `endpoints` ([`shared_config`]'s rules), and
/// with [`Preflight::Check`] checks that the destination can be used.
pub async fn clients(
    endpoints: &Endpoints,
    destination: &DestinationSettings,
    uses_s3_or_sqs: bool,
    preflight: Preflight,
) -> anyhow::Result<Clients> {
    destination.check()?;
    let services: &[&str] = if uses_s3_or_sqs { &["S3", "SQS"] } else { &[] };
    let shared = shared_config(destination, services).await?;
    let s3 = s3_client(&shared, endpoints.s3_path_style);
    let sqs = aws_sdk_sqs::Client::new(&shared);
    let sink = Arc::new(destination.sink(&shared, &writer_name())?);
    if preflight == Preflight::Check {
        sink.preflight().await.map_err(|e| {
            anyhow::anyhow!("cannot use {}: {e}; nothing was loaded", sink.describe())
        })?;
    }
    let account = destination.account(&shared).await?;
    Ok(Clients {
        s3,
        sqs,
        sink,
        account,
    })
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_urls() {
        for url in [
            "http://127.0.0.1:8687",
            "http://localhost",
            "http://[::1]:80/x",
            "127.0.0.2:1",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://cloudtrail-data.us-east-1.amazonaws.com",
            "http://10.0.0.1:80",
            "http://[2001:db8::1]/",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
