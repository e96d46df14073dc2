//! `miyabi-simulate`: the demo's workload simulator as a command, for the CLI's
//! `--hook-after deployment=…` and `--clock-file`.
//!
//! ```text
//! miyabi-simulate --state FILE --clock-file FILE [--init]
//! ```
//!
//! It loads the simulation `localaws --simulation FILE` wrote. With `--init`, or when the
//! deployment it follows applied nothing (`MIYABI_APPLIED` is `0` or empty), it only writes the
//! simulated time to the clock file. Otherwise it publishes the next period of metrics from each
//! instance's demand and current type, moves the clock past it, and writes both files. The
//! emulators come from the standard endpoint variables.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use miyabi_aws::clock::Clock;
use miyabi_aws_testkit::seed::Endpoints;
use miyabi_aws_testkit::simulator::WorkloadSimulator;

const USAGE: &str = "usage: miyabi-simulate --state FILE --clock-file FILE [--init]";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("miyabi-simulate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let (mut state, mut clock_file, mut init) = (None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--state" => state = Some(PathBuf::from(args.next().context("--state needs a file")?)),
            "--clock-file" => clock_file = Some(PathBuf::from(args.next().context("--clock-file needs a file")?)),
            "--init" => init = true,
            other => bail!("unknown argument {other}; {USAGE}"),
        }
    }
    let (Some(state), Some(clock_file)) = (state, clock_file) else {
        bail!("{USAGE}")
    };
    let simulator = WorkloadSimulator::load(&state, Endpoints::from_env()?)?;
    let applied = std::env::var("MIYABI_APPLIED").unwrap_or_default();
    if !init && !matches!(applied.trim(), "" | "0") {
        let period = simulator.advance().await?;
        eprintln!(
            "miyabi-simulate: published hours {}..{} for {} running instance(s), {} resized",
            period.from_hour, period.to_hour, period.running, period.resized
        );
    }
    let now = simulator.clock().now().timestamp();
    let tmp = clock_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{now}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &clock_file).with_context(|| format!("replacing {}", clock_file.display()))?;
    Ok(())
}
