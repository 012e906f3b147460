//! One module per subcommand.

pub mod aws;
pub mod gen;
pub mod ingest;
pub mod lake;
pub mod lambda;
pub mod load;
pub mod logging;
pub mod progress;
pub mod redrive;
pub mod run;
pub mod securitylake;
pub mod transform;

/// Exit status for a fatal error (unreadable input, bad arguments).
pub const EXIT_FATAL: u8 = 2;
/// Exit status when the run finished but some records were rejected.
pub const EXIT_REJECTED: u8 = 1;

/// The async runtime every command runs on: tokio's multi-threaded one, with its blocking pool
/// (file reads and writes run there) held to 32 threads. Unbounded, a load of a hundred local
/// files at once started hundreds of threads, each keeping an allocator heap of its own.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()
        .context("starting the async runtime")
}

/// Writes `text` to standard output; a closed pipe (`| head`) ends the output quietly.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Returns when the process is asked to stop: SIGTERM (what Lambda, systemd and `kill` send) or
/// Ctrl-C.
pub async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        },
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Whether `e` comes from writing to a pipe whose reader has gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The account of a CloudTrail channel ARN (`arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID`).
pub fn account_of_channel_arn(arn: &str) -> anyhow::Result<String> {
    match aztrail_channel::ChannelArn::parse(arn) {
        Some(c) => Ok(c.account.to_string()),
        None => anyhow::bail!(
            "{arn:?} is not a CloudTrail channel ARN (arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID)"
        ),
    }
}

pub use aztrail_ingest::settings::parse_interval;

/// A 12-digit AWS account id.
pub fn check_account_id(id: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        aztrail_channel::is_account_id(id),
        "{id:?} is not an AWS account id (12 digits)"
    );
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_arns() {
        assert_eq!(
            account_of_channel_arn("arn:aws:cloudtrail:eu-west-1:123456789012:channel/abc")
                .unwrap(),
            "123456789012"
        );
        assert!(account_of_channel_arn("arn:aws:s3:::bucket").is_err());
        assert!(account_of_channel_arn("arn:aws:cloudtrail:eu-west-1:1234:channel/abc").is_err());
        assert!(check_account_id("12345678901a").is_err());
    }
}
