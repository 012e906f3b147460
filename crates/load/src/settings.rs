//! The load settings, once: flags of `aztrail load`, `run` and `redrive`, and environment
//! variables of the load Lambda, with one set of defaults; and the one place the queue worker
//! is built from them (the destination's sink is built in [`crate::destination`]), so that the
//! commands only parse and wire.

use std::sync::Arc;

use aztrail_transform::framing::DEFAULT_MAX_RECORD_LEN;

use crate::checkpoint::S3Checkpoints;
use crate::destination::DestinationSettings;
use crate::failure::SqsFailures;
use crate::loader::LoadConfig;
use crate::rate::RateLimiter;
use crate::sink::EventSink;
use crate::sqs::Worker;

/// PutAuditEvents calls in flight at most, by default.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Calls per second per process, by default: a quarter of the account's 100.
pub const DEFAULT_MAX_CALLS_PER_SECOND: f64 = 25.0;
/// The slowest rate a process may be set to: one call every ten seconds.
pub const MIN_CALLS_PER_SECOND: f64 = 0.1;
/// The fastest: far above any destination's quota.
pub const MAX_CALLS_PER_SECOND: f64 = 10_000.0;
/// The range of `--max-record-bytes`: from 1 KiB (smaller would refuse ordinary records) to
/// 256 MiB (a framer holds up to this much of one record in memory).
pub const MAX_RECORD_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=(256 << 20);

/// Parses `--concurrency`: 1 to 1024 calls in flight.
pub fn parse_concurrency(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=1024).contains(n))
        .ok_or_else(|| format!("{s:?}: the calls in flight are 1 to 1024"))
}

/// Parses `--max-record-bytes` within [`MAX_RECORD_BYTES_RANGE`].
pub fn parse_max_record_bytes(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| MAX_RECORD_BYTES_RANGE.contains(n))
        .ok_or_else(|| {
            format!(
                "{s:?}: the maximum record length is {} to {} bytes",
                MAX_RECORD_BYTES_RANGE.start(),
                MAX_RECORD_BYTES_RANGE.end()
            )
        })
}

/// Seconds a received message stays invisible, by default: the Lambda function's longest run and
/// the ingest lease.
pub const DEFAULT_VISIBILITY_TIMEOUT: i32 = 900;
/// Batches between two checkpoints, by default.
pub const DEFAULT_CHECKPOINT_EVERY: u32 = 10;

/// How events are loaded, whoever loads them.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct LoadSettings {
    /// PutAuditEvents calls in flight at most (1 to 1024). Eight keep 100 calls/s busy at up to
    /// 80 ms per call.
    #[arg(long, env = "AZTRAIL_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY,
          value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Calls per second for this process (or Lambda instance). The account allows 100 per
    /// second in all, so the default, 25, leaves room for four at once: set it to 100 divided by
    /// the number of workers you run. 0.1 to 10000.
    #[arg(long, env = "AZTRAIL_MAX_CALLS_PER_SECOND", default_value_t = DEFAULT_MAX_CALLS_PER_SECOND)]
    pub max_calls_per_second: f64,
    /// Seconds a received message stays invisible to other workers. The queue worker renews it
    /// at half this while the message's objects load, so it only bounds how long a crashed
    /// worker's messages wait; redrive keeps each message this long, so one run tries it once.
    #[arg(long, env = "AZTRAIL_VISIBILITY_TIMEOUT", default_value_t = DEFAULT_VISIBILITY_TIMEOUT)]
    pub visibility_timeout: i32,
    /// Save a checkpoint every this many batches (of up to 100 events): after a crash, at most
    /// this many batches plus those in flight are sent again.
    #[arg(long, env = "AZTRAIL_CHECKPOINT_EVERY", default_value_t = DEFAULT_CHECKPOINT_EVERY,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub checkpoint_every: u32,
    /// Records longer than this many bytes are passed over unread and reported as
    /// RecordTooLarge (with their offset and length), so memory stays bounded. 1024 to
    /// 268435456 (256 MiB).
    #[arg(long, env = "AZTRAIL_MAX_RECORD_BYTES", default_value_t = DEFAULT_MAX_RECORD_LEN,
          value_parser = parse_max_record_bytes)]
    pub max_record_bytes: usize,
    /// Milliseconds a call that is not full waits for more events (0 to 5000): objects that
    /// arrive one by one then share calls instead of spending one each on the quota.
    #[arg(long, env = "AZTRAIL_CALL_LINGER_MS", default_value_t = DEFAULT_CALL_LINGER_MS,
          value_parser = clap::value_parser!(u64).range(0..=5000))]
    pub call_linger_ms: u64,
    /// Send each CloudTrail Lake event with eventDataChecksum, the base64 SHA-256 of its
    /// eventData (off by default). The request body is already signed whole (Signature Version
    /// 4 covers its SHA-256, which the service checks) and carried over TLS, so the checksum
    /// guards the same bytes a second time, for a second SHA-256 pass per record.
    #[arg(long, env = "AZTRAIL_EVENT_DATA_CHECKSUM")]
    pub event_data_checksum: bool,
    /// Where events go.
    #[command(flatten)]
    pub destination: DestinationSettings,
}

/// `--call-linger-ms` by default (the pool's [`crate::pool::DEFAULT_CALL_LINGER`]).
pub const DEFAULT_CALL_LINGER_MS: u64 = 250;

impl Default for LoadSettings {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            max_calls_per_second: DEFAULT_MAX_CALLS_PER_SECOND,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            max_record_bytes: DEFAULT_MAX_RECORD_LEN,
            call_linger_ms: DEFAULT_CALL_LINGER_MS,
            event_data_checksum: false,
            destination: DestinationSettings::default(),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// Calls could not be made at a useful pace (or a stop would wait minutes for a token).
    #[error(
        "--max-calls-per-second (AZTRAIL_MAX_CALLS_PER_SECOND) must be {MIN_CALLS_PER_SECOND} to \
         {MAX_CALLS_PER_SECOND}, not {0}"
    )]
    CallsPerSecond(f64),
    /// A message would be visible again before the heartbeat could renew it.
    #[error(
        "--visibility-timeout (AZTRAIL_VISIBILITY_TIMEOUT) must be 2 to 43200 seconds, not {0}"
    )]
    VisibilityTimeout(i32),
}

impl LoadSettings {
    /// Checks what cannot be corrected quietly (a zero count is raised to one instead).
    pub fn check(&self) -> Result<(), SettingsError> {
        if !(MIN_CALLS_PER_SECOND..=MAX_CALLS_PER_SECOND).contains(&self.max_calls_per_second) {
            return Err(SettingsError::CallsPerSecond(self.max_calls_per_second));
        }
        if !(2..=43_200).contains(&self.visibility_timeout) {
            return Err(SettingsError::VisibilityTimeout(self.visibility_timeout));
        }
        Ok(())
    }

    /// The process's rate limit.
    pub fn limiter(&self) -> Arc<RateLimiter> {
        Arc::new(RateLimiter::new(self.max_calls_per_second))
    }

    /// The loader's configuration for events of `account`.
    pub fn config(&self, account: impl Into<String>) -> LoadConfig {
        LoadConfig {
            account: account.into(),
            concurrency: self.concurrency.max(1),
            checkpoint_every: self.checkpoint_every.max(1),
            max_record_len: self.max_record_bytes.max(1),
            call_linger: std::time::Duration::from_millis(self.call_linger_ms),
            event_data_checksum: self.event_data_checksum,
            ..LoadConfig::default()
        }
    }

    /// The queue worker over `queue_url`, its failures to `failure_queue_url` and its checkpoints
    /// in `checkpoint_bucket` (or each object's staging bucket).
    pub fn worker<S: EventSink>(
        &self,
        aws: &AwsClients,
        queues: &Queues,
        sink: Arc<S>,
        limiter: Arc<RateLimiter>,
        config: LoadConfig,
    ) -> Worker<S, S3Checkpoints> {
        Worker {
            s3: aws.s3.clone(),
            sqs: aws.sqs.clone(),
            queue_url: queues.work.clone(),
            failures: SqsFailures::new(aws.sqs.clone(), &queues.failures),
            checkpoints: S3Checkpoints::new(aws.s3.clone(), queues.checkpoint_bucket.clone()),
            sink,
            limiter,
            config,
            visibility_timeout: self.visibility_timeout.max(2),
        }
    }
}

/// The S3 and SQS clients a worker uses.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// Reads staged objects, keeps checkpoints.
    pub s3: aws_sdk_s3::Client,
    /// Receives work, sends failures.
    pub sqs: aws_sdk_sqs::Client,
}

/// Where a worker's messages come from and go.
#[derive(Debug, Clone)]
pub struct Queues {
    /// The work queue of S3 notifications.
    pub work: String,
    /// The failure queue.
    pub failures: String,
    /// The bucket for load checkpoints (`None`: each object's own staging bucket).
    pub checkpoint_bucket: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        settings: LoadSettings,
    }

    #[test]
    fn the_flags_defaults_are_the_structs_and_bad_values_are_refused() {
        let parsed = Cli::try_parse_from(["x"]).expect("no flags").settings;
        assert_eq!(parsed, LoadSettings::default());
        assert_eq!(parsed.check(), Ok(()));
        let fast =
            Cli::try_parse_from(["x", "--concurrency", "1", "--max-calls-per-second", "100"])
                .expect("flags")
                .settings;
        assert_eq!(fast.config("123").concurrency, 1);
        // Entries go without eventDataChecksum unless asked (the body is signed whole).
        assert!(!parsed.config("123").event_data_checksum);
        let summed = Cli::try_parse_from(["x", "--event-data-checksum"])
            .expect("flag")
            .settings;
        assert!(summed.config("123").event_data_checksum);
        // Hostile round 2, items 8 and 9: counts and rates that cannot work are refused.
        for bad in [
            &["--concurrency", "0"][..],
            &["--concurrency", "1000000000000"],
            &["--max-record-bytes", "0"],
            &["--max-record-bytes", "18446744073709551615"],
            &["--checkpoint-every", "0"],
        ] {
            let args = [&["x"][..], bad].concat();
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?} was accepted");
        }
        for rate in ["0.0001", "1e-300", "0", "-1", "NaN", "inf", "1e9"] {
            let parsed = Cli::try_parse_from(["x", "--max-calls-per-second", rate])
                .map(|c| c.settings.check());
            assert!(
                !matches!(parsed, Ok(Ok(()))),
                "--max-calls-per-second {rate} was accepted"
            );
        }
        assert_eq!(
            LoadSettings {
                max_calls_per_second: 0.0,
                ..LoadSettings::default()
            }
            .check(),
            Err(SettingsError::CallsPerSecond(0.0))
        );
        assert_eq!(
            LoadSettings {
                visibility_timeout: 1,
                ..LoadSettings::default()
            }
            .check(),
            Err(SettingsError::VisibilityTimeout(1))
        );
    }
}
