//! `localaws`: start the local AWS emulators, optionally seed the demo estate, run a command with
//! the standard endpoint variables pointing at them, then stop them.
//!
//! ```text
//! localaws [--seed-demo N] [--seed S] [--region R]... [--simulation FILE] -- COMMAND [ARGS...]
//! ```
//!
//! With `--simulation FILE`, the workload simulator's state for the seeded estate is written to
//! FILE and the command gets `MIYABI_SIMULATION=FILE`.
//!
//! The command's exit code is passed through.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec, Endpoints};
use miyabi_aws_testkit::simulator::WorkloadSimulator;

const USAGE: &str =
    "usage: localaws [--seed-demo N] [--seed S] [--region R]... [--simulation FILE] -- COMMAND [ARGS...]";

struct Args {
    demo: Option<DemoSpec>,
    simulation: Option<std::path::PathBuf>,
    command: Vec<String>,
}

fn parse() -> Result<Args> {
    let mut spec = DemoSpec::default();
    let mut seed_demo = false;
    let mut regions = Vec::new();
    let mut simulation = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed-demo" => {
                seed_demo = true;
                spec.instances = it.next().context("--seed-demo needs a size")?.parse()?;
            }
            "--seed" => spec.seed = it.next().context("--seed needs a value")?.parse()?,
            "--region" => regions.push(it.next().context("--region needs a value")?),
            "--simulation" => simulation = Some(it.next().context("--simulation needs a file")?.into()),
            "--" => {
                if !regions.is_empty() {
                    spec.regions = regions;
                }
                return Ok(Args {
                    demo: seed_demo.then_some(spec),
                    simulation,
                    command: it.collect(),
                });
            }
            other => bail!("unknown argument {other}; {USAGE}"),
        }
    }
    bail!("missing `-- COMMAND`")
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("localaws: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<ExitCode> {
    let args = parse()?;
    let Some((program, rest)) = args.command.split_first() else {
        bail!("empty command")
    };
    if args.simulation.is_some() && args.demo.is_none() {
        bail!("--simulation needs --seed-demo; {USAGE}");
    }
    let local = LocalAws::start()?;
    let mut cmd = tokio::process::Command::new(program);
    eprintln!(
        "localaws: moto on {}, ministack (CloudWatch) on {}",
        local.moto_url, local.cloudwatch_url
    );
    if let Some(spec) = &args.demo {
        let started = std::time::Instant::now();
        let endpoints = Endpoints {
            moto: local.moto_url.clone(),
            cloudwatch: local.cloudwatch_url.clone(),
        };
        let estate = seed_demo(&endpoints, spec).await?;
        eprintln!(
            "localaws: seeded {} instances, {} buckets, {} DB instances, {} datapoints in {} Region(s) (seed {}) in {:.1}s",
            estate.instances.len(),
            estate.buckets.len(),
            estate.db_instances.len(),
            estate.datapoints,
            spec.regions.len(),
            spec.seed,
            started.elapsed().as_secs_f64()
        );
        if let Some(file) = &args.simulation {
            WorkloadSimulator::new(endpoints, spec.clone(), &estate, estate.metrics_until)
                .saved_to(file)
                .await?;
            cmd.env("MIYABI_SIMULATION", file);
        }
    }
    cmd.args(rest).envs(local.endpoint_env());
    for (k, v) in miyabi_aws_testkit::TEST_ENV {
        cmd.env(k, v);
    }
    let status = cmd.status().await.with_context(|| format!("running {program}"))?;
    drop(local);
    Ok(ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)))
}
