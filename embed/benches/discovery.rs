//! θ1 over the demo estate on the local emulators: the Rust discovery against the legacy
//! Python script run through the in-process bridge, through the subprocess (JSON-RPC) bridge,
//! and on its own (`python -m miyabi_legacy.discovery`, one Region after the other), in one run
//! over one seeded estate.
//!
//! ```text
//! cargo bench -p miyabi-aws-embed --bench discovery -- [--instances 2000] [--seed 42] [--variants rust,in-process,subprocess,script]
//! ```
//!
//! For each it prints the wall time and the CPU seconds (user + sys) of the scanning side: this
//! process for Rust and in-process, the Python children for the others. The emulators run in
//! child processes that are only reaped at the end, so their CPU is never counted: on emulators
//! the server dominates wall time, and the client's CPU per resource is the honest measure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use miyabi_aws::aws::{AwsOptions, AwsSession};
use miyabi_aws::bridge::{PhaseTransport, PythonBridge, Script, SubprocessTransport};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::phases::{Discovery, DiscoveryConfig};
use miyabi_aws::world::Inventory;
use miyabi_aws_embed::InProcessTransport;
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};

// The core's bench helpers.
#[path = "../../benches/support/mod.rs"]
mod support;
use support::{arg, number, usage, StderrProgress};

/// One implementation's run.
struct Measured {
    name: &'static str,
    wall: f64,
    cpu: f64,
    rss_peak: f64,
    inventory: Inventory,
    complete: bool,
}

/// Runs `scan`, measuring it.
async fn measure<F>(name: &'static str, scan: F) -> anyhow::Result<Measured>
where
    F: std::future::Future<Output = anyhow::Result<(Inventory, bool)>>,
{
    eprintln!("== {name}");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (self0, children0, _) = usage();
    let started = Instant::now();
    let (inventory, complete) = scan.await?;
    let wall = started.elapsed().as_secs_f64();
    let (self1, children1, rss_peak) = usage();
    Ok(Measured {
        name,
        wall,
        cpu: (self1 - self0) + (children1 - children0),
        rss_peak,
        inventory,
        complete,
    })
}

/// The plain script, one Region after the other, as an operator runs it.
async fn run_script(python_dir: &PathBuf, regions: &[String], until: i64) -> anyhow::Result<Inventory> {
    let mut inventory = Inventory::default();
    for region in regions {
        let out = tokio::process::Command::new("python3")
            .args(["-m", "miyabi_legacy.discovery", "--region", region, "--output", "json"])
            .args(["--until", &until.to_string()])
            .env("PYTHONPATH", python_dir)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let capture: miyabi_aws::bridge::RegionCapture = serde_json::from_slice(&out.stdout)?;
        miyabi_aws::bridge::merge_region(&mut inventory, capture.inventory);
    }
    inventory.sort();
    Ok(inventory)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let spec = DemoSpec {
        instances: usize::try_from(number("--instances", 2000))?,
        seed: number("--seed", 42),
        // Two hours short of the emulator's 14-day retention: the variants run one after the
        // other for most of an hour, and the oldest point must not expire between them.
        hours: 14 * 24 - 3,
        ..DemoSpec::default()
    };
    let variants = arg("--variants").unwrap_or_else(|| "rust,in-process,subprocess,script".into());
    let local = LocalAws::start()?;
    // Every implementation finds the emulators through the standard endpoint variables (set
    // before the embedded interpreter starts, which copies the environment once). ministack
    // serves one request at a time, and the legacy script's boto3 waits on it: hence the long
    // timeouts.
    let seeding = Instant::now();
    let estate = seed_demo(&local.endpoints(), &spec).await?;
    eprintln!(
        "seeded {} instances and {} datapoints in {:.1}s",
        estate.instances.len(),
        estate.datapoints,
        seeding.elapsed().as_secs_f64()
    );
    // After seeding, which clears endpoint variables a developer's shell may have set.
    for (key, value) in local.endpoint_env() {
        std::env::set_var(key, value);
    }
    std::env::set_var("MIYABI_LEGACY_READ_TIMEOUT", "1800");
    let until = chrono::Utc::now();
    let python_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../python");
    let bridge =
        |transport: Arc<dyn PhaseTransport>| PythonBridge::new(transport, spec.regions.clone()).with_until(Some(until));
    let catalog = PriceCatalog::built_in();
    let aws = AwsSession::new(AwsOptions {
        attempt_timeout: Duration::from_secs(1800),
        ..AwsOptions::default()
    });

    let mut runs = Vec::new();
    for variant in variants.split(',') {
        let run = match variant {
            "rust" => {
                let discovery = Discovery::new(DiscoveryConfig {
                    regions: spec.regions.clone(),
                    until: Some(until),
                    ..DiscoveryConfig::default()
                })
                .with_progress(Arc::new(StderrProgress));
                measure("rust", async {
                    let out = discovery.discover(&aws, catalog).await?;
                    let complete = out.world.scope.completeness.is_complete();
                    Ok((out.world.inventory, complete))
                })
                .await?
            }
            "in-process" => {
                let transport = InProcessTransport::legacy_discovery().with_python_path([python_dir.clone()]);
                let bridge = bridge(Arc::new(transport));
                measure("in-process bridge", async {
                    let out = bridge.discover(&aws, catalog).await?;
                    let complete = out.world.scope.completeness.is_complete();
                    Ok((out.world.inventory, complete))
                })
                .await?
            }
            "subprocess" => {
                let transport = SubprocessTransport::from_env(Script::legacy_rpc())?
                    .with_python_path([python_dir.clone()])
                    .with_timeout(Duration::from_secs(4 * 3600));
                let bridge = bridge(Arc::new(transport));
                measure("subprocess bridge", async {
                    let out = bridge.discover(&aws, catalog).await?;
                    let complete = out.world.scope.completeness.is_complete();
                    Ok((out.world.inventory, complete))
                })
                .await?
            }
            "script" => {
                measure("plain Python script", async {
                    Ok((run_script(&python_dir, &spec.regions, until.timestamp()).await?, true))
                })
                .await?
            }
            other => {
                eprintln!("skipping unknown variant {other}");
                continue;
            }
        };
        eprintln!("   {:.1} s wall, {:.2} s CPU", run.wall, run.cpu);
        runs.push(run);
    }

    let Some(base) = runs.first() else {
        anyhow::bail!("no variant ran")
    };
    let inv = &base.inventory;
    let resources = inv.resource_count();
    let points: usize = inv.metrics.iter().map(|m| m.len()).sum();
    println!(
        "discovery bench: {} instances seeded in 2 Regions, 14-day hourly lookback: {resources} resources, {} series, {points} datapoints",
        spec.instances,
        inv.metrics.len()
    );
    println!(
        "{:<22} {:>9} {:>8} {:>12} {:>9} {:>9} {:>10}  same inventory as 1st",
        "implementation", "wall s", "CPU s", "CPU ms/res", "wall ×1st", "CPU ×1st", "peak RSS"
    );
    for run in &runs {
        let rss = if run.name.contains("subprocess") || run.name.contains("script") {
            "(child)".to_owned()
        } else {
            format!("{:.0} MiB", run.rss_peak)
        };
        println!(
            "{:<22} {:>9.1} {:>8.2} {:>12.3} {:>9.2} {:>9.2} {:>10}  {}{}",
            run.name,
            run.wall,
            run.cpu,
            run.cpu * 1000.0 / resources as f64,
            run.wall / base.wall,
            run.cpu / base.cpu,
            rss,
            if run.inventory == base.inventory { "yes" } else { "NO" },
            if run.complete { "" } else { " (PARTIAL capture)" }
        );
    }
    Ok(())
}
