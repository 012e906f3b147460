//! Test-only: the emulators aztrail's end-to-end tests run against, started for real on free
//! ports and stopped by PID when dropped.
//!
//! - [`Moto`]: moto's server (S3, SQS, S3→SQS notifications), from `target/venv-test`, which
//!   `scripts/test` fills, or `$MOTO_SERVER`.
//! - [`Azurite`]: Azurite's blob service, from `target/node-test`, which `scripts/test` fills, or
//!   `$AZURITE_BLOB`, with its data in a fresh temporary directory.
//! - [`standin::AwsStandIn`]: an in-process S3 and SQS for benchmarks, where moto's own cost
//!   would be what is measured.

pub mod standin;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's `target` directory.
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// `../shared/corpus` beside the repository: real Azure records written by others, read in place
/// (never copied into the repository).
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

/// Every record file of the corpus (`*.json`, `*.jsonl`), sorted; an error when the corpus is
/// not there.
pub fn corpus_files() -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![corpus_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts an emulator with `spawn(port)` on a port that was free a moment ago, and waits until
/// it listens. The port is released before the emulator binds it, so another process may take
/// it in between: then the emulator exits at start (or, were someone else to answer there, exits
/// soon after), and it is started again on another port, up to five times.
fn start_on_free_port(what: &str, spawn: impl Fn(u16) -> Child) -> (Child, u16) {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(port);
        match wait_for(port, &mut child) {
            Ok(()) => return (child, port),
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                last = why;
            }
        }
    }
    panic!("{what} did not start on any of five ports: {last}");
}

/// Waits until `port` accepts connections while `child` runs.
fn wait_for(port: u16, child: &mut Child) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited at start: {status}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // Listening, and still ours: it did not exit on a failed bind.
            return match child.try_wait() {
                Ok(None) => Ok(()),
                other => Err(format!("exited at start: {other:?}")),
            };
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err("not listening after 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn program(env: &str, default: PathBuf, how: &str) -> PathBuf {
    let bin = std::env::var_os(env).map_or(default, PathBuf::from);
    assert!(
        bin.exists(),
        "{} not found: run ./scripts/test once ({how}) or set {env}",
        bin.display()
    );
    bin
}

/// A moto server, killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Moto {
    /// Starts moto on a free port and waits until it listens.
    pub fn start() -> Self {
        let bin = program(
            "MOTO_SERVER",
            target_dir().join("venv-test/bin/moto_server"),
            "it installs moto[server] into target/venv-test",
        );
        let (child, port) = start_on_free_port("moto", |port| {
            Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting moto")
        });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite's blob service with a fresh data directory, killed (and the directory removed) when
/// dropped.
pub struct Azurite {
    child: Child,
    /// Azurite's data, removed when dropped (after the process is stopped).
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/devstoreaccount1`.
    pub account_url: String,
}

/// Azurite's account name.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

impl Azurite {
    /// Starts Azurite on a free port and waits until it listens.
    pub fn start() -> Self {
        let bin = program(
            "AZURITE_BLOB",
            target_dir().join("node-test/node_modules/.bin/azurite-blob"),
            "it installs azurite into target/node-test",
        );
        let dir = tempfile::Builder::new()
            .prefix("aztrail-azurite-")
            .tempdir()
            .expect("azurite dir");
        let (child, port) = start_on_free_port("azurite", |port| {
            Command::new(&bin)
                .args([
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &port.to_string(),
                    "--skipApiVersionCheck",
                    "--disableProductStyleUrl",
                    "--silent",
                    "--location",
                ])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting azurite")
        });
        Self {
            child,
            _dir: dir,
            account_url: format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `dir` is removed as it drops, after the process.
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `seconds` as `2026-11-27T10:00:00Z`.
pub fn iso(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The Azure log blob path under `root` for the hour `hours_ago` before now:
/// `{root}y=2026/m=11/d=27/h=10/m=00/PT1H.json`.
pub fn hour_path(root: &str, hours_ago: i64) -> String {
    let iso = iso(now() - hours_ago * 3600);
    format!(
        "{root}y={}/m={}/d={}/h={}/m=00/PT1H.json",
        &iso[0..4],
        &iso[5..7],
        &iso[8..10],
        &iso[11..13]
    )
}

/// Azurite's well-known development key (public; it opens nothing but the local emulator).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite account SAS with `permissions` (`racwdl` for a test's own writes, `rl` to read),
/// valid for two hours: Azure's account SAS signature (version 2020-12-06 and later).
pub fn azurite_account_sas(permissions: &str) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let t = now();
    let (st, se) = (iso(t - 600), iso(t + 7200));
    let to_sign =
        format!("{AZURITE_ACCOUNT}\n{permissions}\nb\nsco\n{st}\n{se}\n\n\n2022-11-02\n\n");
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(AZURITE_KEY).expect("the Azurite key is base64");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(to_sign.as_bytes());
    let sig = b64.encode(mac.finalize().into_bytes());
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "sv=2022-11-02&ss=b&srt=sco&sp={permissions}&st={}&se={}&sig={}",
        enc(&st),
        enc(&se),
        enc(&sig)
    )
}

/// The pipeline's AWS side on moto: a `staging` bucket whose `staged/` objects notify a `work`
/// queue (S3 → SQS, as deployed), and a `failures` queue.
pub struct Staging {
    /// The AWS settings pointing at moto (region us-east-1, test credentials).
    pub config: aws_config::SdkConfig,
    /// S3, path-style.
    pub s3: aws_sdk_s3::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// The staging bucket's name.
    pub bucket: String,
    /// The work queue's URL.
    pub work: String,
    /// The failure queue's URL.
    pub failures: String,
}

impl Staging {
    /// Clients for the endpoint at `url` (path-style S3, test credentials), naming the bucket and
    /// queues given, which must already exist.
    pub async fn clients(url: &str, bucket: &str, work: &str, failures: &str) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "testkit",
            ))
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(&config);
        Self {
            config,
            s3,
            sqs,
            bucket: bucket.into(),
            work: work.into(),
            failures: failures.into(),
        }
    }

    /// Creates the bucket, the queues and the notification on `moto`.
    pub async fn create(moto: &Moto) -> Self {
        use aws_sdk_s3::types::{
            Event, FilterRule, FilterRuleName, NotificationConfiguration,
            NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
        };
        use aws_sdk_sqs::types::QueueAttributeName;
        let Self {
            config, s3, sqs, ..
        } = Self::clients(&moto.url, "", "", "").await;
        let bucket = "staging".to_string();
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket");
        let mut urls = Vec::new();
        for name in ["work", "failures"] {
            let q = sqs
                .create_queue()
                .queue_name(name)
                .send()
                .await
                .expect("queue");
            urls.push(q.queue_url.expect("queue url"));
        }
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&urls[0])
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let arn = attrs.attributes.expect("attributes")[&QueueAttributeName::QueueArn].clone();
        let staged_only = NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value("staged/")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let queue = QueueConfiguration::builder()
            .queue_arn(arn)
            .events(Event::S3ObjectCreated)
            .filter(staged_only)
            .build()
            .expect("queue configuration");
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue)
                    .build(),
            )
            .send()
            .await
            .expect("notification");
        let failures = urls.pop().expect("two queues");
        let work = urls.pop().expect("two queues");
        Self {
            config,
            s3,
            sqs,
            bucket,
            work,
            failures,
        }
    }

    /// The bodies of every message in `queue`, received and deleted until a poll finds none.
    pub async fn drain(&self, queue: &str) -> Vec<String> {
        drain(&self.sqs, queue).await
    }
}

/// The bodies of every message in `queue`, received and deleted until a poll finds none.
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push(m.body().unwrap_or_default().to_string());
            if let Some(receipt) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

/// The objects of `bucket` under `prefix` as ingest stages them (`{blob}.{start}-{end}`), by
/// blob (the key less its range): `(start, end, bytes)` in offset order.
pub async fn staged_ranges(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> std::collections::BTreeMap<String, Vec<(u64, u64, Vec<u8>)>> {
    let mut out: std::collections::BTreeMap<String, Vec<(u64, u64, Vec<u8>)>> =
        std::collections::BTreeMap::new();
    for key in keys(s3, bucket, prefix).await {
        let (blob, range) = key
            .rsplit_once('.')
            .expect("a staged key ends in its range");
        let (start, end) = range.split_once('-').expect("start-end");
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("a staged object")
            .body
            .collect()
            .await
            .expect("its body")
            .into_bytes()
            .to_vec();
        out.entry(blob.to_string()).or_default().push((
            start.parse().expect("start"),
            end.parse().expect("end"),
            body,
        ));
    }
    for v in out.values_mut() {
        v.sort_by_key(|(s, _, _)| *s);
    }
    out
}

/// Every key of `bucket` under `prefix`.
pub async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for o in page.expect("a listing").contents() {
            out.extend(o.key().map(str::to_string));
        }
    }
    out
}

/// The staged ranges of one blob, in offset order, checked to follow each other with no gap and
/// no overlap: their bytes, concatenated.
pub fn concatenated(objects: &[(u64, u64, Vec<u8>)]) -> Vec<u8> {
    let mut at = 0;
    let mut out = Vec::new();
    for (start, end, bytes) in objects {
        assert_eq!(*start, at, "no gap and no overlap");
        assert_eq!((end - start) as usize, bytes.len());
        out.extend_from_slice(bytes);
        at = *end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_796_076_000), "2026-11-30T22:00:00Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00Z");
    }
}
