//! θ1 under AWS's own limits: the Rust discovery through the test kit's proxy in its AWS-like
//! mode (50 ms a call with jitter, AWS's documented token buckets enforced, each service's own
//! throttling error), against the floor those limits set, at several shares of the quota; then
//! an incremental re-scan one simulator period later.
//!
//! ```text
//! cargo bench --bench aws_like -- [--instances 2000] [--shares 0.5,1.0] [--seed 42]
//! ```
//!
//! The floor counts the fewest calls a scan of the estate needs (pages of 1,000 instances, of
//! 500 volumes, of 100 DB instances; `GetMetricData` calls of at most 500 queries and 100,800
//! datapoints; seven reads per bucket), the time each bucket needs to let them through at the
//! share (its burst first, then its refill), and one latency per dependent step (each page
//! waits for the one before; metrics wait for the inventory). Beside it stands the time the
//! emulators spent answering, measured at the proxy (the union of their busy intervals), since
//! that is what this machine, not AWS, costs. The goal is a wall time of at most 1.5 × (floor +
//! upstream).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use miyabi_aws::aws::{AwsOptions, AwsSession, LimitOptions, Quota, QuotaTable};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::phases::discovery::{DiscoveryOutput, MetricScan};
use miyabi_aws::phases::{Discovery, DiscoveryConfig};
use miyabi_aws::world::{Inventory, WorldState};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::proxy::{upstream_busy, FaultProxy};
use miyabi_aws_testkit::quota::AwsLike;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};
use miyabi_aws_testkit::simulator::WorkloadSimulator;

mod support;
use support::{arg, usage, StderrProgress};

/// Seconds for `calls` requests through a bucket of `quota` spent at `share`, starting full.
fn drain(calls: u64, quota: Quota, share: f64) -> f64 {
    let q = quota.scaled(share);
    ((calls as f64 - q.capacity) / q.refill_per_second).max(0.0)
}

/// The rate-limit floor of a full scan of `inv` at `share`, with `latency` per call.
fn floor(inv: &Inventory, scan: &MetricScan, share: f64, latency: f64, table: &QuotaTable) -> f64 {
    let quota = |category: &str| table.get(category).unwrap_or(Quota::per_second(f64::INFINITY));
    let mut per_region: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for i in &inv.instances {
        per_region.entry(&i.region).or_default()[0] += 1;
    }
    for v in &inv.volumes {
        per_region.entry(&v.region).or_default()[1] += 1;
    }
    for g in &inv.security_groups {
        per_region.entry(&g.region).or_default()[2] += 1;
    }
    for d in &inv.db_instances {
        per_region.entry(&d.region).or_default()[3] += 1;
    }
    // Regions have buckets of their own and are scanned at once: the slowest one counts.
    let inventory_stage = per_region
        .values()
        .map(|&[instances, volumes, groups, dbs]| {
            let pages = [
                (instances.div_ceil(1000).max(1), "ec2.non-mutating"),
                (volumes.div_ceil(500).max(1), "ec2.non-mutating"),
                (groups.div_ceil(1000).max(1), "ec2.non-mutating"),
                (dbs.div_ceil(100).max(1), "rds.account"),
            ];
            pages
                .iter()
                .map(|&(n, category)| drain(n, quota(category), share).max(n as f64 * latency))
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max);
    // ListBuckets, then every bucket's seven reads at once.
    let buckets = inv.buckets.len() as u64;
    let s3_stage = 2.0 * latency + drain(7 * buckets, quota("s3.read"), share);
    // ListMetrics, then the GetMetricData calls, all in one Region's bucket at worst.
    let regions = per_region.len().max(1) as u64;
    let calls = (scan.series_requested.div_ceil(500)).max(scan.datapoints_requested.div_ceil(100_800));
    let metrics_stage = 2.0 * latency + drain(calls.div_ceil(regions), quota("cloudwatch.GetMetricData"), share);
    inventory_stage + s3_stage + metrics_stage
}

struct Run {
    label: String,
    wall: f64,
    cpu: f64,
    floor: f64,
    upstream: f64,
    throttled: usize,
    requests: usize,
    out: DiscoveryOutput,
}

async fn run(
    label: String,
    proxy: &FaultProxy,
    share: f64,
    until: chrono::DateTime<chrono::Utc>,
    regions: &[String],
    previous: Option<Arc<WorldState>>,
    latency: f64,
) -> anyhow::Result<Run> {
    eprintln!("== {label}");
    let session = AwsSession::new(AwsOptions {
        endpoint_url: Some(proxy.url.clone()),
        limits: LimitOptions {
            share,
            ..LimitOptions::default()
        },
        attempt_timeout: Duration::from_secs(600),
        ..AwsOptions::default()
    });
    let mut discovery = Discovery::new(DiscoveryConfig {
        regions: regions.to_vec(),
        until: Some(until),
        ..DiscoveryConfig::default()
    })
    .with_progress(Arc::new(StderrProgress));
    if let Some(previous) = previous {
        discovery = discovery.with_previous(previous);
    }
    proxy.reset_log();
    let cpu0 = usage().0;
    let started = Instant::now();
    let out = discovery.discover(&session, PriceCatalog::built_in()).await?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = usage().0 - cpu0;
    let log = proxy.requests();
    let scan = out.metrics.unwrap_or_default();
    Ok(Run {
        label,
        wall,
        cpu,
        floor: floor(&out.world.inventory, &scan, share, latency, &QuotaTable::documented()),
        upstream: upstream_busy(&log).as_secs_f64(),
        throttled: log.iter().filter(|r| r.over_quota).count(),
        requests: log.len(),
        out,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let spec = DemoSpec {
        instances: arg("--instances").and_then(|v| v.parse().ok()).unwrap_or(2000),
        seed: arg("--seed").and_then(|v| v.parse().ok()).unwrap_or(42),
        ..DemoSpec::default()
    };
    let shares: Vec<f64> = arg("--shares")
        .unwrap_or_else(|| "0.5,1.0".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let local = LocalAws::start()?;
    let seeding = Instant::now();
    let estate = seed_demo(&local.endpoints(), &spec).await?;
    eprintln!(
        "seeded {} instances and {} datapoints in {:.1}s",
        estate.instances.len(),
        estate.datapoints,
        seeding.elapsed().as_secs_f64()
    );
    let endpoints = local.endpoints();
    let proxy = FaultProxy::start(&endpoints.moto, &endpoints.cloudwatch).await?;
    let aws_like = AwsLike::default();
    let latency = aws_like.latency.as_secs_f64();
    proxy.set_aws_like(Some(aws_like));
    let simulator = WorkloadSimulator::new(endpoints, spec.clone(), &estate, estate.metrics_until);
    let clock = simulator.clock();
    let until = |hour: i64| chrono::DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default();

    let scan = |label: String, share: f64, previous: Option<Arc<WorldState>>| {
        run(
            label,
            &proxy,
            share,
            until(clock.hour()),
            &spec.regions,
            previous,
            latency,
        )
    };
    let mut runs = Vec::new();
    for &share in &shares {
        runs.push(scan(format!("full scan, share {share}"), share, None).await?);
    }
    // One simulator period later: built on the first full scan, then in full to compare.
    let previous = Arc::new(runs[0].out.world.clone());
    let period = simulator.advance().await?;
    eprintln!("published one period: {period:?}");
    let share = shares[0];
    for (label, base) in [("incremental", Some(previous)), ("full re-scan", None)] {
        runs.push(scan(format!("{label}, share {share}"), share, base).await?);
    }

    let base = &runs[0].out.world.inventory;
    let resources = base.resource_count();
    println!(
        "aws-like θ1 bench: {} instances in {} Regions, {resources} resources, {} series; latency {:.0} ms, AWS's documented buckets",
        spec.instances,
        spec.regions.len(),
        base.metrics.len(),
        latency * 1000.0
    );
    println!(
        "{:<26} {:>8} {:>8} {:>9} {:>13} {:>9} {:>9} {:>10} {:>12} {:>10} {:>10}",
        "run",
        "wall s",
        "floor s",
        "upstream",
        "wall/(fl+up)",
        "requests",
        "throttled",
        "CPU ms/res",
        "datapoints",
        "metrics",
        "API $"
    );
    for r in &runs {
        let scan = r.out.metrics.unwrap_or_default();
        println!(
            "{:<26} {:>8.1} {:>8.1} {:>9.1} {:>13.2} {:>9} {:>9} {:>10.3} {:>12} {:>10} {:>10.4}",
            r.label,
            r.wall,
            r.floor,
            r.upstream,
            r.wall / (r.floor + r.upstream),
            r.requests,
            r.throttled,
            r.cpu * 1000.0 / resources as f64,
            scan.datapoints_requested,
            scan.series_requested,
            scan.estimated_cost_usd()
        );
    }
    let n = runs.len();
    let (inc, full) = (&runs[n - 2], &runs[n - 1]);
    let (inc_scan, first_scan) = (
        inc.out.metrics.unwrap_or_default(),
        runs[0].out.metrics.unwrap_or_default(),
    );
    let lookback = f64::from(runs[0].out.world.scope.lookback_hours);
    println!(
        "incremental: datapoints requested {:.6} of the first scan's (goal ≤ (period + 1 h) / lookback = {:.6}); merged series equal a full re-scan's: {}",
        inc_scan.datapoints_requested as f64 / first_scan.datapoints_requested.max(1) as f64,
        (f64::from(simulator_period_hours(&period)) + 1.0) / lookback,
        if inc.out.world.inventory.metrics == full.out.world.inventory.metrics {
            "yes"
        } else {
            "NO"
        }
    );
    Ok(())
}

fn simulator_period_hours(period: &miyabi_aws_testkit::simulator::Period) -> u32 {
    u32::try_from(period.to_hour - period.from_hour).unwrap_or(0)
}
