//! θ1 over the demo estate on the local emulators.
//!
//! ```text
//! cargo bench --bench discovery -- [--instances 2000] [--seed 42]
//! ```
//!
//! Seeds the estate (2 Regions, 14 days of hourly metrics), then runs discovery once in this
//! process and prints resources/s, API calls per service, wall time, the CPU seconds (user + sys)
//! this process spent scanning, and its peak RSS. The emulators run in child processes, so their
//! CPU is not counted: on emulators the server dominates wall time, and the client's own CPU is
//! the figure that shows what the implementation costs.

use std::time::Instant;

use miyabi_aws::aws::AwsOptions;
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::phases::{Discovery, DiscoveryConfig};
use miyabi_aws::progress::{ProgressEvent, ProgressSink};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};

/// User and system CPU seconds of this process so far, and its peak RSS in MiB, from /proc.
fn usage() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let utime = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / ticks;
    let stime = fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / ticks;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (utime, stime, hwm_kib / 1024.0)
}

/// Progress lines on stderr.
struct StderrProgress;

impl ProgressSink for StderrProgress {
    fn report(&self, e: &ProgressEvent) {
        eprintln!("  [{}] {} {}", e.phase, e.scope, e.message);
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let spec = DemoSpec {
        instances: usize::try_from(arg("--instances", 2000))?,
        seed: arg("--seed", 42),
        ..DemoSpec::default()
    };
    let local = LocalAws::start()?;
    let seeding = Instant::now();
    let estate = seed_demo(&local.endpoints(), &spec).await?;
    eprintln!(
        "seeded {} instances and {} datapoints in {:.1}s",
        estate.instances.len(),
        estate.datapoints,
        seeding.elapsed().as_secs_f64()
    );

    std::env::set_var("AWS_ENDPOINT_URL_CLOUDWATCH", &local.cloudwatch_url);
    let discovery = Discovery::new(DiscoveryConfig {
        regions: spec.regions.clone(),
        aws: AwsOptions {
            endpoint_url: Some(local.moto_url.clone()),
            // ministack serves one request at a time and scans its whole store for each: a
            // 300-series batch can take minutes once millions of points are stored.
            attempt_timeout: std::time::Duration::from_secs(1800),
            ..AwsOptions::default()
        },
        ..DiscoveryConfig::default()
    })
    .with_progress(std::sync::Arc::new(StderrProgress));
    // Reset the peak-RSS mark, so that the figure is the scan's and not the seeding's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (u0, s0, rss_before) = usage();
    let started = Instant::now();
    let out = discovery.discover(PriceCatalog::built_in()).await?;
    let wall = started.elapsed().as_secs_f64();
    let (u1, s1, rss_peak) = usage();

    let inv = &out.world.inventory;
    let points: usize = inv.metrics.iter().map(|m| m.len()).sum();
    let resources = inv.resource_count();
    println!(
        "discovery bench: {} instances seeded, 2 Regions, 14-day hourly lookback",
        spec.instances
    );
    println!(
        "  capture            {}",
        if out.world.scope.completeness.is_complete() {
            "complete"
        } else {
            "PARTIAL"
        }
    );
    println!("  resources          {resources}");
    println!("  metric series      {} ({points} datapoints)", inv.metrics.len());
    println!("  wall time          {wall:.2} s");
    println!("  resources/s        {:.1}", resources as f64 / wall);
    println!(
        "  CPU user + sys     {:.2} s + {:.2} s = {:.2} s",
        u1 - u0,
        s1 - s0,
        (u1 - u0) + (s1 - s0)
    );
    println!(
        "  CPU per resource   {:.3} ms",
        ((u1 - u0) + (s1 - s0)) * 1000.0 / resources as f64
    );
    println!("  peak RSS           {rss_peak:.0} MiB during the scan (resident before it: {rss_before:.0} MiB)");
    println!("  API calls:");
    for (service, n) in &out.calls_per_service {
        println!("    {service:<11} {n}");
    }
    Ok(())
}
