//! `aztrail`: moves Azure Activity Log and Entra ID audit logs into AWS CloudTrail Lake.
//!
//! The binary is wiring only: it parses the command line and hands the work to the crates.

mod cmd;

/// mimalloc, not the system allocator: every thread of the loader allocates and frees many small
/// buffers (events, SDK requests and answers), and glibc's malloc serialized them on its arena
/// locks. Through the worker path (`cargo bench --bench load`, 1,000 objects of 10 records,
/// 2 cores) the process needed 2.9 CPU s with glibc's malloc and 1.7 with mimalloc, and
/// loaded 4,600 events/s instead of 9,300.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Azure Activity Log and Entra ID audit logs into AWS CloudTrail Lake.
#[derive(Parser)]
#[command(name = "aztrail", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(cmd::run::Args),
    Transform(cmd::transform::Args),
    Gen(cmd::gen::Args),
    Lake(cmd::lake::Args),
    Ingest(cmd::ingest::Args),
    Load(cmd::load::Args),
    Redrive(cmd::redrive::Args),
    Lambda(cmd::lambda::Args),
}

/// The arguments: the command line, or, when Lambda starts the binary as `bootstrap` (no
/// arguments, `AWS_LAMBDA_RUNTIME_API` set), `lambda HANDLER` from the function's handler setting.
fn arguments() -> Vec<std::ffi::OsString> {
    let args: Vec<_> = std::env::args_os().collect();
    if args.len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        let handler = std::env::var("_HANDLER").unwrap_or_else(|_| "load".into());
        return vec!["aztrail".into(), "lambda".into(), handler.into()];
    }
    args
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_from(arguments());
    cmd::logging::init();
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Transform(args) => cmd::transform::run(args),
        Command::Gen(args) => cmd::gen::run(args),
        Command::Lake(args) => cmd::lake::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Load(args) => cmd::load::run(args),
        Command::Redrive(args) => cmd::redrive::run(args),
        Command::Lambda(args) => cmd::lambda::run(args),
    };
    match result {
        Ok(code) => code,
        // A reader that stopped reading (`aztrail gen | head -1`) is a normal end, as for `cat`.
        Err(e) if cmd::is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            // Not eprintln!: it panics when standard error is a closed pipe too.
            // Redacted once more at the edge: no SAS signature or account key leaves the process.
            let message = format!("{e:#}");
            let _ = writeln!(
                std::io::stderr(),
                "aztrail: error: {}",
                aztrail_ingest::sas::redact(&message)
            );
            std::process::ExitCode::from(cmd::EXIT_FATAL)
        }
    }
}
