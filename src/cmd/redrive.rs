//! `aztrail redrive`: the failure queue's events sent again.

use std::process::ExitCode;

use aztrail_load::redrive::Redriver;
use aztrail_load::settings::LoadSettings;

use super::aws::{clients, Endpoints};
use super::EXIT_REJECTED;

/// Send the failure queue's events to their destination again.
///
/// Run it once the cause of the failures is fixed (a quota raised, a channel restored), with
/// the same destination settings as the load. Each
/// message's record is taken from the message, or re-read from the staging bucket when the
/// message is a pointer (bucket, key, offset, length), mapped again (same UID as before) and
/// sent. A message is deleted only when its event was accepted; the others stay in the queue.
/// With --dry-run nothing is sent or deleted, and the summary says what would be redriven.
///
/// Exit status: 0 when the queue was emptied (or, with --dry-run, every message is
/// redrivable); 1 when some messages still fail; 2 on a fatal error.
#[derive(clap::Args)]
pub struct Args {
    /// The failure queue.
    #[arg(long, env = "AZTRAIL_FAILURE_QUEUE_URL")]
    failure_queue_url: String,
    #[command(flatten)]
    endpoints: Endpoints,
    /// Report what would be redriven; send and delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    settings: LoadSettings,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.settings.destination.check()?;
    args.settings.check()?;
    if args.settings.destination.destination == aztrail_load::destination::Kind::Securitylake {
        return to_security_lake(args);
    }
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let c = clients(
            &args.endpoints,
            &args.settings.destination,
            true,
            super::aws::Preflight::Check,
        )
        .await?;
        let redriver = Redriver {
            s3: c.s3,
            sqs: c.sqs,
            queue_url: args.failure_queue_url.clone(),
            sink: c.sink,
            limiter: args.settings.limiter(),
            config: args.settings.config(c.account.clone()),
            visibility_timeout: args.settings.visibility_timeout,
            dry_run: args.dry_run,
        };
        let summary = redriver.run().await?;
        super::emit(&(serde_json::to_string_pretty(&summary)? + "\n"))?;
        anyhow::Ok(if summary.still_failing.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_REJECTED)
        })
    })
}

/// `--destination securitylake`: the failure queue's records mapped again into one batch of
/// OCSF files; messages deleted once the files are put.
fn to_security_lake(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let dest = args.settings.destination.clone();
        let shared = super::aws::shared_config(&dest, &["S3", "SQS"]).await?;
        let s3 = super::aws::s3_client(&shared, args.endpoints.s3_path_style);
        let sqs = aws_sdk_sqs::Client::new(&shared);
        let target = super::securitylake::LakeTarget::open(&dest, &shared, &s3, None, None).await?;
        let redriver = aztrail_load::securitylake::redrive::LakeRedriver {
            s3: &s3,
            sqs: &sqs,
            queue_url: &args.failure_queue_url,
            layout: &target.layout,
            output: &target.output,
            max_record_len: args.settings.config(String::new()).max_record_len,
            visibility_timeout: args.settings.visibility_timeout,
            dry_run: args.dry_run,
        };
        let (summary, written) = redriver.run(target.batch(&dest)?).await?;
        let out = serde_json::json!({ "redrive": summary, "securitylake": written });
        super::emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
        anyhow::Ok(if summary.still_failing.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_REJECTED)
        })
    })
}
