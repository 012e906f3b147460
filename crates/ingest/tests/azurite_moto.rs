//! Ingest against Azurite (Azure Blob) and moto (S3, SQS notifications), both started here and
//! stopped by PID:
//! - append blobs growing across ten runs are staged byte for byte, each byte once, a partial last
//!   line held back until complete, in both an Activity Log and an Entra ID container;
//! - a run lists only its window's day directories under each root, however long the history;
//! - concurrent runs never stage the same range twice;
//! - a crash between the copy and the checkpoint commit creates no second object or notification;
//! - a replaced blob (shorter, the same length, or longer) is copied again from zero;
//! - each credential kind works: an account-key connection string (minted to a SAS in process)
//!   and a SAS URL.

use std::collections::BTreeMap;

use aztrail_ingest::auth::AzureAuth;
use aztrail_ingest::layout::day_prefixes;
use aztrail_ingest::run::{ingest, IngestConfig, IngestSummary};
use aztrail_testkit::{
    azurite_account_sas as account_sas, concatenated, hour_path, now, Azurite, Moto, Staging,
    AZURITE_ACCOUNT, AZURITE_KEY,
};
use aztrail_transform::synth;
use azure_core::http::{RequestContent, Url};
use azure_storage_blob::BlobContainerClient;

const ACTIVITY: &str = "insights-activity-logs";
const ENTRA: &str = "insights-logs-auditlogs";

struct Env {
    _azurite: Azurite,
    _moto: Moto,
    azurite_url: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    queue: String,
    writer_sas: String,
}

impl Env {
    async fn start() -> Self {
        let azurite = Azurite::start();
        let moto = Moto::start();
        let staging = Staging::create(&moto).await;
        let env = Self {
            azurite_url: azurite.account_url.clone(),
            _azurite: azurite,
            _moto: moto,
            s3: staging.s3,
            sqs: staging.sqs,
            queue: staging.work,
            writer_sas: account_sas("racwdl"),
        };
        for c in [ACTIVITY, ENTRA] {
            env.container(c).create(None).await.unwrap();
        }
        env
    }

    fn container(&self, name: &str) -> BlobContainerClient {
        let url = Url::parse(&format!("{}/{name}?{}", self.azurite_url, self.writer_sas)).unwrap();
        BlobContainerClient::new(url, None, None).unwrap()
    }

    fn connection_string(&self) -> AzureAuth {
        AzureAuth::from_secret(&format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};",
            self.azurite_url
        ))
        .unwrap()
    }

    async fn append(&self, container: &str, blob: &str, bytes: &[u8]) {
        let c = self
            .container(container)
            .blob_client(blob)
            .append_blob_client();
        if !self
            .container(container)
            .blob_client(blob)
            .exists()
            .await
            .unwrap()
        {
            c.create(None).await.unwrap();
        }
        if !bytes.is_empty() {
            c.append_block(
                RequestContent::from(bytes.to_vec()),
                bytes.len() as u64,
                None,
            )
            .await
            .unwrap();
        }
    }

    async fn replace(&self, container: &str, blob: &str, bytes: &[u8]) {
        // Creation-Time has one-second resolution: the replacement is created in a later second
        // than the blob it replaces, as any real replacement a run can tell apart.
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(1010 - ms))).await;
        let b = self.container(container).blob_client(blob);
        b.delete(None).await.unwrap();
        self.append(container, blob, bytes).await;
    }

    fn config(&self, run_id: &str) -> IngestConfig {
        IngestConfig {
            containers: vec![ACTIVITY.into(), ENTRA.into()],
            bucket: "staging".into(),
            run_id: run_id.into(),
            part_size: 5 * 1024 * 1024,
            ..IngestConfig::default()
        }
    }

    async fn run(&self, auth: &AzureAuth, config: &IngestConfig) -> IngestSummary {
        let s = ingest(auth, &self.s3, config, now()).await.unwrap();
        println!("{}", serde_json::to_string(&s).unwrap());
        s
    }

    /// Staged objects per (container, blob): (start, end, bytes), in offset order.
    async fn staged(&self) -> BTreeMap<String, Vec<(u64, u64, Vec<u8>)>> {
        aztrail_testkit::staged_ranges(&self.s3, "staging", "staged/").await
    }

    /// Messages in the work queue (S3 notifications of staged objects), drained.
    async fn notifications(&self) -> usize {
        aztrail_testkit::drain(&self.sqs, &self.queue)
            .await
            .iter()
            .filter(|b| b.contains("ObjectCreated"))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_blobs_are_staged_byte_for_byte_each_byte_once() {
    let env = Env::start().await;
    let auth = env.connection_string();
    let sub = "resourceId=/SUBSCRIPTIONS/0A1B2C3D-0000-4000-8000-000000000001/";
    let tenant = "tenantId=11111111-2222-3333-4444-555555555555/";
    // A month of history outside the window, which listing must not touch.
    for day in 5..35 {
        env.append(
            ACTIVITY,
            &hour_path(sub, day * 24),
            synth::generate(2, day as u64).as_bytes(),
        )
        .await;
    }
    let activity_blob = hour_path(sub, 0);
    let entra_blob = hour_path(tenant, 1);
    let mut appended: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut summaries = Vec::new();
    for run in 0..10u64 {
        for (container, blob) in [(ACTIVITY, &activity_blob), (ENTRA, &entra_blob)] {
            let mut bytes = synth::generate(3 + run as usize, run * 7 + 1).into_bytes();
            // Runs 2, 5 and 8 end with half a record: it must wait for the next run.
            if run % 3 == 2 {
                let cut = bytes.len() - 40;
                bytes.truncate(cut);
            } else if run % 3 == 0 && run > 0 {
                // Complete the previous half record.
                let prev = synth::generate(3 + run as usize - 1, (run - 1) * 7 + 1).into_bytes();
                let mut rest = prev[prev.len() - 40..].to_vec();
                rest.extend_from_slice(&bytes);
                bytes = rest;
            }
            env.append(container, blob, &bytes).await;
            appended
                .entry(blob.as_str())
                .or_default()
                .extend_from_slice(&bytes);
        }
        let s = env.run(&auth, &env.config(&format!("run-{run}"))).await;
        let staged = env.staged().await;
        for (container, blob) in [(ACTIVITY, &activity_blob), (ENTRA, &entra_blob)] {
            let whole = &appended[blob.as_str()];
            let complete = aztrail_ingest::layout::complete_prefix(whole);
            let key = format!("staged/{AZURITE_ACCOUNT}/{container}/{blob}");
            let got = concatenated(staged.get(&key).map_or(&[][..], Vec::as_slice));
            assert_eq!(
                got.len(),
                complete,
                "run {run}: staged up to the last complete line"
            );
            assert_eq!(&got[..], &whole[..complete], "run {run}: byte for byte");
        }
        summaries.push(s);
    }
    // Every complete byte appended was staged exactly once: staged / appended = 1.0.
    let staged_bytes: u64 = summaries.iter().map(|s| s.new_bytes).sum();
    let history: u64 = env
        .staged()
        .await
        .iter()
        .filter(|(k, _)| !k.contains(&activity_blob) && !k.contains(&entra_blob))
        .flat_map(|(_, v)| v.iter().map(|(s, e, _)| e - s))
        .sum();
    let appended_bytes: usize = appended.values().map(|v| v.len()).sum();
    assert_eq!(staged_bytes - history, appended_bytes as u64, "ratio 1.0");
    assert_eq!(
        env.notifications().await as u64,
        summaries.iter().map(|s| s.objects_written).sum::<u64>()
    );
    // Listing follows the window: after the first run (which walks the hierarchy), each run lists
    // each root's days in the window, once.
    let days = day_prefixes("", now() - 48 * 3600, now()).len() as u64;
    for s in &summaries[1..] {
        assert_eq!(
            s.list_calls,
            2 * days,
            "two roots × {days} days, whatever the history"
        );
    }
    assert!(
        summaries[0].list_calls <= 2 * days + 8,
        "{}",
        summaries[0].list_calls
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_never_stage_a_range_twice() {
    let env = Env::start().await;
    let auth = env.connection_string();
    let blob = hour_path("resourceId=/SUBSCRIPTIONS/S1/", 0);
    let mut whole = Vec::new();
    let mut contended = 0;
    for round in 0..6u64 {
        let bytes = synth::generate(20, round).into_bytes();
        env.append(ACTIVITY, &blob, &bytes).await;
        whole.extend_from_slice(&bytes);
        let (a, b) = (
            env.config(&format!("a{round}")),
            env.config(&format!("b{round}")),
        );
        let (ra, rb) = tokio::join!(
            ingest(&auth, &env.s3, &a, now()),
            ingest(&auth, &env.s3, &b, now())
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        contended += ra.contended + rb.contended;
    }
    // A last quiet run picks up whatever a lost race left.
    env.run(&auth, &env.config("last")).await;
    let staged = env.staged().await;
    let key = format!("staged/{AZURITE_ACCOUNT}/{ACTIVITY}/{blob}");
    assert_eq!(concatenated(&staged[&key]), whole, "each byte once");
    println!("contended passes: {contended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_commit_stages_nothing_twice_and_a_replaced_blob_starts_over() {
    let env = Env::start().await;
    // A SAS URL this time, read and list only.
    let sas =
        AzureAuth::from_secret(&format!("{}/?{}", env.azurite_url, account_sas("rl"))).unwrap();
    let blob = hour_path("resourceId=/SUBSCRIPTIONS/S2/", 2);
    let first = synth::generate(50, 3).into_bytes();
    env.append(ACTIVITY, &blob, &first).await;
    let mut crashing = env.config("crashing");
    crashing.stop_before_commit = true;
    let s = env.run(&sas, &crashing).await;
    assert_eq!(s.objects_written, 1);
    assert_eq!(env.notifications().await, 1);
    // More data arrives; the next run (after the lease) resumes the claimed range first.
    let more = synth::generate(10, 4).into_bytes();
    env.append(ACTIVITY, &blob, &more).await;
    let mut next = env.config("next");
    next.claim_lease_seconds = 0;
    let s = env.run(&sas, &next).await;
    assert_eq!(
        (s.objects_existing, s.objects_written),
        (1, 0),
        "the claimed range, not again"
    );
    assert_eq!(env.notifications().await, 0, "no second notification");
    let s = env.run(&sas, &next).await;
    assert_eq!(s.objects_written, 1, "then the new bytes");
    let key = format!("staged/{AZURITE_ACCOUNT}/{ACTIVITY}/{blob}");
    let staged = env.staged().await;
    assert_eq!(concatenated(&staged[&key]), [first.clone(), more].concat());

    // The blob is replaced by a shorter one: copied again from 0, under the blob's next
    // generation, so no key of the first one is taken.
    let replacement = synth::generate(5, 9).into_bytes();
    env.notifications().await; // (drained: only the replacement's count below)
    env.replace(ACTIVITY, &blob, &replacement).await;
    let s = env.run(&sas, &next).await;
    assert_eq!(s.replaced, 1, "{s:?}");
    assert!(s.warnings.iter().any(|w| w.contains("replaced")));
    let staged = env.staged().await;
    assert_eq!(concatenated(&staged[&format!("{key}.g1")]), replacement);
    assert_eq!(env.notifications().await, 1);
    // Replaced by other records of the same length: the creation time tells it, not the length.
    let mut same_length = replacement.clone();
    let at = same_length.iter().position(|&b| b == b'"').unwrap() + 1;
    same_length[at] = if same_length[at] == b'x' { b'y' } else { b'x' };
    env.replace(ACTIVITY, &blob, &same_length).await;
    let s = env.run(&sas, &next).await;
    assert_eq!((s.replaced, s.objects_written), (1, 1), "{s:?}");
    assert!(
        s.warnings.iter().any(|w| w.contains("created")),
        "{:?}",
        s.warnings
    );
    let staged = env.staged().await;
    assert_eq!(concatenated(&staged[&format!("{key}.g2")]), same_length);
    // And by a longer one: from 0 again, never from the old offset in the middle of a record.
    let longer = synth::generate(9, 11).into_bytes();
    env.replace(ACTIVITY, &blob, &longer).await;
    let s = env.run(&sas, &next).await;
    assert_eq!(s.replaced, 1, "{s:?}");
    let staged = env.staged().await;
    assert_eq!(concatenated(&staged[&format!("{key}.g3")]), longer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_waits_for_whole_hours_and_full_scan_sees_all_history() {
    let env = Env::start().await;
    let auth = env.connection_string();
    let root = "resourceId=/SUBSCRIPTIONS/S3/";
    let (current, finished, ancient) = (
        hour_path(root, 0),
        hour_path(root, 3),
        hour_path(root, 24 * 20),
    );
    for blob in [&current, &finished, &ancient] {
        env.append(ACTIVITY, blob, synth::generate(5, 1).as_bytes())
            .await;
    }
    let mut settle = env.config("settle");
    settle.settle = true;
    // First sight: nothing has been seen unchanged yet.
    let s = env.run(&auth, &settle).await;
    assert_eq!((s.objects_written, s.skipped), (0, 2));
    // Unchanged since: the finished hour is copied whole, the current hour still waits.
    let s = env.run(&auth, &settle).await;
    assert_eq!((s.objects_written, s.skipped), (1, 1));
    let staged = env.staged().await;
    assert!(staged.keys().any(|k| k.ends_with(&finished)));
    assert!(!staged.keys().any(|k| k.ends_with(&current)));

    // A full scan (a backfill) finds the blob from 20 days ago too.
    let mut full = env.config("full");
    full.full_scan = true;
    let s = env.run(&auth, &full).await;
    assert_eq!(s.blobs_seen, 3);
    assert!(env.staged().await.keys().any(|k| k.ends_with(&ancient)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_larger_than_a_part_is_staged_in_parts() {
    let env = Env::start().await;
    let auth = env.connection_string();
    let blob = hour_path("resourceId=/SUBSCRIPTIONS/BIG/", 0);
    // About 11 MB: three 5 MiB parts, the last one short.
    let body = synth::generate(5000, 77).into_bytes();
    assert!(body.len() > 10 * 1024 * 1024);
    for chunk in body.chunks(4 * 1024 * 1024) {
        env.append(ACTIVITY, &blob, chunk).await;
    }
    let s = env.run(&auth, &env.config("parts")).await;
    assert_eq!((s.objects_written, s.new_bytes), (1, body.len() as u64));
    let staged = env.staged().await;
    let key = format!("staged/{AZURITE_ACCOUNT}/{ACTIVITY}/{blob}");
    assert_eq!(concatenated(&staged[&key]), body);
    let head = env
        .s3
        .head_object()
        .bucket("staging")
        .key(format!("{key}.0-{}", body.len()))
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().unwrap_or_default().ends_with("-3\""),
        "a three-part upload: {:?}",
        head.e_tag()
    );
    // Retried (the checkpoint lost), the same range is not created twice.
    let s3 = &env.s3;
    let state = s3
        .list_objects_v2()
        .bucket("staging")
        .prefix(aztrail_ingest::checkpoint::INGEST_PREFIX)
        .send()
        .await
        .unwrap();
    assert!(!state.contents().is_empty());
    for o in state.contents() {
        s3.delete_object()
            .bucket("staging")
            .key(o.key().unwrap())
            .send()
            .await
            .unwrap();
    }
    let s = env.run(&auth, &env.config("again")).await;
    assert_eq!((s.objects_written, s.objects_existing), (0, 1));
}

/// A directory level whose name XML must escape (`&`, `'`, `<`, a non-ASCII letter) is found by
/// the walk, which reads Azurite's List Blobs answer with an XML parser, and its blob is staged
/// under its own name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_xml_must_escape_are_walked_and_staged() {
    let env = Env::start().await;
    let auth = env.connection_string();
    let root =
        "resourceId=/SUBSCRIPTIONS/0A1B2C3D-0000-4000-8000-000000000009/RESOURCEGROUPS/R&D'<É>/";
    let blob = hour_path(root, 0);
    let bytes = synth::generate(4, 99).into_bytes();
    env.append(ACTIVITY, &blob, &bytes).await;
    let s = env.run(&auth, &env.config("odd-names")).await;
    assert_eq!(s.objects_written, 1, "{s:?}");
    let staged = env.staged().await;
    let key = format!("staged/{AZURITE_ACCOUNT}/{ACTIVITY}/{blob}");
    let got = concatenated(staged.get(&key).map_or(&[][..], Vec::as_slice));
    assert_eq!(got, bytes, "staged under its own name: {:?}", staged.keys());
}

/// Waits for the clock's next whole second (Azure's Last-Modified has one-second resolution).
async fn next_second() {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(1010 - ms))).await;
}

/// 80 blobs (40 subscriptions, two hours) grow: one pass copies them with many requests in
/// flight, each byte once. Then one blob grows: the next pass reads and writes its day shard and
/// the mark, a few KiB, not the container's state; with nothing new it reads no shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_copies_many_blobs_at_once_and_reads_only_what_changed() {
    use futures::StreamExt;
    let env = Env::start().await;
    let auth = env.connection_string();
    let blobs: Vec<String> = (0..40)
        .flat_map(|s| {
            [1, 0].map(|h| hour_path(&format!("resourceId=/SUBSCRIPTIONS/SUB{s:04}/"), h))
        })
        .collect();
    let first = synth::generate(3, 1).into_bytes();
    futures::stream::iter(&blobs)
        .for_each_concurrent(16, |b| env.append(ACTIVITY, b, &first))
        .await;
    next_second().await;
    let config = IngestConfig {
        containers: vec![ACTIVITY.into()],
        // Real time throughout: no allowance for clock skew needed on one machine.
        mark_skew_seconds: 0,
        ..env.config("many")
    };
    let s1 = env.run(&auth, &config).await;
    assert_eq!((s1.objects_written, s1.failed), (80, 0), "{s1:?}");
    assert!(s1.peak_in_flight >= 8, "many requests at once: {s1:?}");
    assert!(s1.peak_in_flight <= 32, "no more than the limit: {s1:?}");
    // Everything grows again: one pass copies all of it.
    let more = synth::generate(2, 2).into_bytes();
    futures::stream::iter(&blobs)
        .for_each_concurrent(16, |b| env.append(ACTIVITY, b, &more))
        .await;
    next_second().await;
    let s2 = env.run(&auth, &config).await;
    assert_eq!((s2.objects_written, s2.failed), (80, 0), "{s2:?}");
    next_second().await;
    // One blob grows.
    let one = synth::generate(1, 3).into_bytes();
    env.append(ACTIVITY, &blobs[17], &one).await;
    next_second().await;
    let s3 = env.run(&auth, &config).await;
    assert_eq!((s3.objects_written, s3.shards_read), (1, 1), "{s3:?}");
    assert!(s3.state_read_bytes < 8192, "{s3:?}");
    assert!(s3.state_written_bytes < 8192, "{s3:?}");
    next_second().await;
    let s4 = env.run(&auth, &config).await;
    assert_eq!((s4.objects_written, s4.shards_read), (0, 0), "{s4:?}");
    // The roots (which grow with the tenant) are remembered: S3 answers 304 to the conditional
    // GET; the mark is all that is read.
    assert!(s4.state_read_bytes < 200, "{s4:?}");

    let staged = env.staged().await;
    for (i, b) in blobs.iter().enumerate() {
        let key = format!("staged/{AZURITE_ACCOUNT}/{ACTIVITY}/{b}");
        let mut want = [first.clone(), more.clone()].concat();
        if i == 17 {
            want.extend_from_slice(&one);
        }
        assert_eq!(concatenated(&staged[&key]), want, "{b}: each byte once");
    }
    assert_eq!(env.notifications().await, 161);
}

/// A container checkpointed by an earlier version (one document) is carried over once: what it
/// had copied is not copied again, the range a dead run had claimed is copied as claimed, and the
/// document is parked so that an earlier version reading it skips the container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_document_checkpoint_is_carried_over_with_nothing_staged_twice() {
    use aztrail_ingest::checkpoint::{
        checkpoint_key, BlobState, Claim, LegacyCheckpoint, PendingRange, MIGRATED,
    };
    let env = Env::start().await;
    let auth = env.connection_string();
    let done = hour_path("resourceId=/SUBSCRIPTIONS/OLD1/", 1);
    let grows = hour_path("resourceId=/SUBSCRIPTIONS/OLD2/", 0);
    let claimed = hour_path("resourceId=/SUBSCRIPTIONS/OLD3/", 0);
    let a = synth::generate(5, 1).into_bytes();
    for b in [&done, &grows, &claimed] {
        env.append(ACTIVITY, b, &a).await;
    }
    // What an earlier version left: `done` and `grows` copied to their length, `claimed` claimed
    // by a run that died an hour ago.
    let len = a.len() as u64;
    let mut legacy = LegacyCheckpoint::default();
    for b in [&done, &grows] {
        legacy.blobs.insert(
            b.clone(),
            BlobState {
                committed: len,
                seen_length: len,
                ..BlobState::default()
            },
        );
    }
    legacy.claim = Some(Claim {
        run_id: "dead".into(),
        at: now() - 3600,
        ranges: vec![PendingRange {
            blob: claimed.clone(),
            etag: String::new(),
            last_modified: None,
            start: 0,
            limit: len,
            generation: 0,
        }],
    });
    let key = checkpoint_key(AZURITE_ACCOUNT, ACTIVITY);
    env.s3
        .put_object()
        .bucket("staging")
        .key(&key)
        .body(serde_json::to_vec(&legacy).unwrap().into())
        .send()
        .await
        .unwrap();
    let b = synth::generate(2, 2).into_bytes();
    env.append(ACTIVITY, &grows, &b).await;

    let s = env.run(&auth, &env.config("new")).await;
    assert!(s.warnings.iter().any(|w| w.contains("carried")), "{s:?}");
    let staged = env.staged().await;
    let keys: Vec<&String> = staged.keys().collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let prefix = format!("staged/{AZURITE_ACCOUNT}/{ACTIVITY}/");
    assert_eq!(
        staged[&format!("{prefix}{grows}")],
        vec![(len, len + b.len() as u64, b.clone())]
    );
    assert_eq!(
        staged[&format!("{prefix}{claimed}")],
        vec![(0, len, a.clone())]
    );
    // The document is parked: its claim is fresh for ever, so an earlier version skips it.
    let parked: LegacyCheckpoint = serde_json::from_slice(
        &env.s3
            .get_object()
            .bucket("staging")
            .key(&key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes(),
    )
    .unwrap();
    let claim = parked.claim.unwrap();
    assert_eq!(claim.run_id, MIGRATED);
    assert!(now() - claim.at < 0);
    // Carried over once: the next pass stages nothing and says nothing of it.
    let s = env.run(&auth, &env.config("after")).await;
    assert_eq!(s.objects_written, 0, "{s:?}");
    assert!(!s.warnings.iter().any(|w| w.contains("carried")), "{s:?}");
    assert_eq!(env.notifications().await, 2);
}
