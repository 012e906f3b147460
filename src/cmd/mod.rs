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

/// A duration such as `90s`, `30m`, `48h` or `2d`, of at most `max` seconds. The unit is
/// required (a bare `48` could mean anything); a number too large is an error, never a wrap.
fn parse_duration_upto(s: &str, max: u64, what: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let Some(i) = s.find(|c: char| !c.is_ascii_digit()) else {
        return Err(format!(
            "{s:?} has no unit: write it with s, m, h or d (like 90s, 30m, 48h, 2d)"
        ));
    };
    let (n, unit) = (&s[..i], &s[i..]);
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    let secs = n
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .filter(|&secs| (1..=max).contains(&secs))
        .ok_or_else(|| {
            format!(
                "{s:?}: {what} is 1s to {} (like 90s, 30m, 48h, 2d)",
                if max.is_multiple_of(86_400) {
                    format!("{}d", max / 86_400)
                } else {
                    format!("{max}s")
                }
            )
        })?;
    Ok(std::time::Duration::from_secs(secs))
}

/// The longest lookback: beyond Azure Monitor's longest retention of exported logs there is
/// nothing to list.
pub const MAX_LOOKBACK_DAYS: u64 = 400;

/// `--lookback`: a duration of 1 s to [`MAX_LOOKBACK_DAYS`] days.
pub fn parse_lookback(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_upto(s, MAX_LOOKBACK_DAYS * 86_400, "a lookback")
}

/// `--watch` and other intervals: 1 s to 1 day.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    parse_duration_upto(s, 86_400, "an interval")
}

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
        assert_eq!(parse_lookback("48h").unwrap().as_secs(), 172_800);
        assert_eq!(parse_lookback("400d").unwrap().as_secs(), 400 * 86_400);
        assert_eq!(parse_interval("90s").unwrap().as_secs(), 90);
        assert!(parse_lookback("3w").is_err() && parse_lookback("h").is_err());
    }

    #[test]
    fn durations_are_bounded_and_never_wrap() {
        // Hostile round 2, item 7: each of these was accepted (and hung, wrapped or ate memory).
        for bad in [
            "300000000000000d",
            "9223372036854775808s",
            "18446744073709551615s",
            "213503982334601d",
            "401d",
            "48",
            "0s",
            "",
            "-1d",
        ] {
            let e = parse_lookback(bad).expect_err(bad);
            assert!(e.contains("unit") || e.contains("1s to 400d"), "{bad}: {e}");
        }
        assert!(parse_interval("2d").is_err());
    }
}
