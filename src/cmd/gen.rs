//! `aztrail gen`: writes deterministic, realistic Azure records as JSON Lines (a PT1H.json body).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aztrail_transform::synth::Generator;

/// Generate realistic Activity Log and Entra ID records (JSON Lines, as in PT1H.json).
///
/// The same --records and --seed always produce the same bytes, so tests, benchmarks and bug
/// reports can share data without shipping it. Records average about 2.2 kB.
#[derive(clap::Args)]
pub struct Args {
    /// How many records to write.
    #[arg(long, short = 'n', default_value_t = 1000)]
    records: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let mut gen = Generator::new(args.seed);
    let mut line = String::with_capacity(8192);
    for _ in 0..args.records {
        line.clear();
        gen.record(&mut line);
        line.push('\n');
        out.write_all(line.as_bytes()).context("writing records")?;
    }
    out.flush().context("writing records")?;
    Ok(ExitCode::SUCCESS)
}
