//! Logs through `tracing`: JSON lines in a Lambda function (CloudWatch Logs parses them; the
//! EMF metric lines on standard output are separate), readable text on a terminal or a pipe, both
//! on standard error and filtered by `RUST_LOG` (default: warnings and errors). Summaries, the
//! progress display and the commands' own messages are not logs and are printed as before.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber once, at start.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second init (tests calling in twice) is refused quietly: logs keep the first.
    let _ = if in_lambda {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.without_time().try_init()
    };
}
