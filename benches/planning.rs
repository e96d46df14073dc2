//! θ2 + θ3 over a synthetic in-memory world (no emulator): the Rust phases against the legacy
//! planning script in plain Python (`python -m miyabi_legacy.planning`) and its numpy version
//! (`python -m miyabi_legacy.planning_numpy`), in one run over one generated world.
//!
//! ```text
//! cargo bench --bench planning -- [--instances 100000] [--runs 3] [--variants rust,numpy,python]
//! ```
//!
//! The world has `--instances` running instances in three Regions, each with CPUUtilization,
//! NetworkIn and NetworkOut over 336 hourly points, in five workload profiles (steady low,
//! spiky, saturated, idle, busy) and a third of them without IMDSv2. Rust generates it; the
//! Python variants read the very same values from a dataset this bench writes (raw
//! little-endian f64 plus a JSON sidecar), so all three plan the same world and must produce the
//! same execution plan, step for step.
//!
//! Printed per variant: the best wall time of `--runs` (the plain-Python variant runs once), the
//! peak RSS during planning above the RSS before it, and the process's total peak against the raw
//! size of the metric data (timestamps and values, 16 bytes a point).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use miyabi_aws::assessment::assess;
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::phases::optimization::{optimize, OptimizationConfig};
use miyabi_aws::phases::planning::{plan, PlanningConfig};
use miyabi_aws::plan::execution::ExecutionPlan;
use miyabi_aws::world::{Completeness, Ec2Instance, Inventory, MetricSeries, Scope, WorldState, SCHEMA_VERSION};
use serde_json::json;

mod support;
use support::arg;

const HOURS: usize = 14 * 24;
const METRICS: [&str; 3] = ["CPUUtilization", "NetworkIn", "NetworkOut"];
const TYPES: [&str; 8] = [
    "m5.2xlarge",
    "m5.xlarge",
    "c5.2xlarge",
    "r5.2xlarge",
    "m5.4xlarge",
    "c5.xlarge",
    "r5.xlarge",
    "m5.large",
];
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "eu-central-1"];
/// The last hour of every series (2026-09-21T12:00:00Z).
const END: i64 = 1_790_000_000 - 1_790_000_000 % 3600;

/// SplitMix64: a fixed, seedable stream that needs no crate.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) for instance `i`, metric `m`, hour `t`.
#[allow(clippy::cast_precision_loss)] // 53 bits, exactly representable
fn unit(i: usize, m: usize, t: usize) -> f64 {
    let key = ((i as u64) << 12) | ((m as u64) << 10) | t as u64;
    (splitmix64(key) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Hourly value of metric `m` of instance `i` at hour `t` (0 = oldest).
fn value(i: usize, m: usize, t: usize) -> f64 {
    let u = unit(i, m, t);
    let network = |low: f64, spread: f64| low + spread * u;
    match (i % 10, m) {
        // steady low: P99.5 ≈ 10% → a quarter of the vCPUs fits
        (0..=3, 0) => 4.0 + 6.0 * u,
        // spiky: 60–70% for an hour a day → no smaller type fits
        (4 | 5, 0) if t % 24 == 14 => 60.0 + 10.0 * u,
        (4 | 5, 0) => 8.0 + 4.0 * u,
        // saturated → upsize
        (6, 0) => 88.0 + 10.0 * u,
        // idle: Trusted Advisor's rule holds on every day
        (7, 0) => 1.0 + 3.0 * u,
        (7, _) => network(0.0, 10_000.0),
        // busy and fitting
        (8 | 9, 0) => 30.0 + 25.0 * u,
        _ => network(2.0e7, 1.0e7),
    }
}

fn timestamps() -> Vec<i64> {
    (0..HOURS).map(|t| END - (HOURS - 1 - t) as i64 * 3600).collect()
}

/// The synthetic world, assessed.
fn world(instances: usize, catalog: &PriceCatalog) -> WorldState {
    let stamps = timestamps();
    let mut inventory = Inventory::default();
    for i in 0..instances {
        let id = format!("i-{i:017x}");
        let region = REGIONS[i % REGIONS.len()];
        inventory.instances.push(Ec2Instance {
            id: id.clone(),
            arn: format!("arn:aws:ec2:{region}:123456789012:instance/{id}"),
            region: region.to_owned(),
            availability_zone: Some(format!("{region}a")),
            instance_type: TYPES[(i / 10) % TYPES.len()].to_owned(),
            image_id: Some("ami-0123456789abcdef0".to_owned()),
            state: "running".to_owned(),
            stopped_since: None,
            launch_time: None,
            architecture: Some("x86_64".to_owned()),
            platform: Some("Linux/UNIX".to_owned()),
            vpc_id: None,
            subnet_id: None,
            public_ip: None,
            security_group_ids: Vec::new(),
            volume_ids: Vec::new(),
            imds_v2_required: i % 3 != 0,
            imds_endpoint: Some("enabled".to_owned()),
            instance_profile_arn: None,
            monitoring: Some("disabled".to_owned()),
            virtualization_type: Some("hvm".to_owned()),
            enclave_enabled: false,
            network_interface_ids: Vec::new(),
            user_data: None,
            tags: BTreeMap::new(),
            owner_agent: "Bill Gates".to_owned(),
        });
        for (m, name) in METRICS.iter().enumerate() {
            inventory.metrics.push(MetricSeries {
                resource_id: id.clone(),
                region: region.to_owned(),
                namespace: "AWS/EC2".to_owned(),
                metric_name: (*name).to_owned(),
                dimensions: BTreeMap::from([("InstanceId".to_owned(), id.clone())]),
                stat: "Average".to_owned(),
                period_seconds: 3600,
                timestamps: stamps.clone(),
                values: (0..HOURS).map(|t| value(i, m, t)).collect(),
            });
        }
    }
    let assessment = assess(&inventory, catalog);
    WorldState {
        schema_version: SCHEMA_VERSION,
        scope: Scope {
            account_id: Some("123456789012".to_owned()),
            regions: REGIONS.map(str::to_owned).to_vec(),
            captured_at: DateTime::<Utc>::from_timestamp(END + 3600, 0).unwrap_or_default(),
            lookback_hours: u32::try_from(HOURS).unwrap_or(u32::MAX),
            metrics_until: DateTime::<Utc>::from_timestamp(END + 3600, 0),
            completeness: Completeness::Complete,
        },
        inventory,
        assessment,
    }
}

/// Writes the world for the Python variants: `values.f64` (instance-major, metric, hour) and
/// `meta.json` (instances, timestamps, metric names, capture time).
fn write_dataset(dir: &Path, world: &WorldState) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("values.f64"))?);
    for series in &world.inventory.metrics {
        for v in &series.values {
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.flush()?;
    let instances: Vec<_> = world
        .inventory
        .instances
        .iter()
        .map(|i| {
            json!({"id": i.id, "region": i.region, "instance_type": i.instance_type,
                   "state": i.state, "imds_v2_required": i.imds_v2_required})
        })
        .collect();
    let meta = json!({
        "instances": instances,
        "metrics": METRICS,
        "timestamps": timestamps(),
        "captured_at": world.scope.captured_at.timestamp(),
    });
    std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta)?)?;
    Ok(())
}

/// Resident and peak-resident MiB of this process, from /proc.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One variant's figures.
struct Measured {
    name: String,
    seconds: f64,
    runs: u64,
    working_mib: f64,
    peak_mib: f64,
    steps: Vec<String>,
    saving: f64,
}

fn run_rust(world: &WorldState, catalog: &PriceCatalog, runs: u64) -> Measured {
    let (before, _) = rss();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut best = f64::INFINITY;
    let mut last: Option<ExecutionPlan> = None;
    for _ in 0..runs {
        drop(last.take());
        let started = Instant::now();
        let p = plan(world, catalog, &PlanningConfig::default());
        let out = optimize(world, &p, catalog, &OptimizationConfig::default());
        best = best.min(started.elapsed().as_secs_f64());
        last = Some(out.execution_plan);
    }
    let (_, peak) = rss();
    let plan = last.unwrap_or_else(|| unreachable!("runs ≥ 1"));
    Measured {
        name: "Rust θ2+θ3".to_owned(),
        seconds: best,
        runs,
        working_mib: peak - before,
        peak_mib: peak,
        steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
        saving: plan.monthly_saving_usd,
    }
}

fn run_python(module: &str, name: &str, dataset: &Path, catalog: &Path, runs: u64) -> anyhow::Result<Measured> {
    eprintln!("== {name}");
    let python_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = std::process::Command::new(python)
        .args(["-m", module, "--dataset"])
        .arg(dataset)
        .arg("--catalog")
        .arg(catalog)
        .args(["--runs", &runs.to_string()])
        .env("PYTHONPATH", python_dir)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(out.status.success(), "{module} failed with {}", out.status);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    Ok(Measured {
        name: name.to_owned(),
        seconds: f("seconds"),
        runs,
        working_mib: f("working_mib"),
        peak_mib: f("peak_mib"),
        steps: serde_json::from_value(report["steps"].clone())?,
        saving: f("monthly_saving_usd"),
    })
}

fn main() -> anyhow::Result<()> {
    let instances: usize = arg("--instances").map_or(Ok(100_000), |v| v.parse())?;
    let runs: u64 = arg("--runs").map_or(Ok(3), |v| v.parse())?;
    let variants = arg("--variants").unwrap_or_else(|| "rust,numpy,python".to_owned());
    let catalog = PriceCatalog::built_in();
    eprintln!(
        "generating {instances} instances × {} series × {HOURS} points",
        METRICS.len()
    );
    let started = Instant::now();
    let world = world(instances, catalog);
    let points = world.inventory.metrics.iter().map(MetricSeries::len).sum::<usize>();
    #[allow(clippy::cast_precision_loss)]
    let raw_mib = (points * 16) as f64 / 1024.0 / 1024.0;
    eprintln!(
        "  {points} points, {raw_mib:.0} MiB raw, in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    if variants.contains("rust") {
        eprintln!("== Rust θ2+θ3");
        results.push(run_rust(&world, catalog, runs));
    }
    if variants.contains("numpy") || variants.contains("python") {
        let dir: PathBuf = std::env::temp_dir().join(format!("miyabi-planning-bench-{}", std::process::id()));
        write_dataset(&dir, &world)?;
        drop(world);
        let catalog_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/catalog/prices.json");
        let outcome = (|| -> anyhow::Result<()> {
            if variants.contains("numpy") {
                results.push(run_python(
                    "miyabi_legacy.planning_numpy",
                    "numpy",
                    &dir,
                    &catalog_path,
                    runs,
                )?);
            }
            if variants.split(',').any(|v| v == "python") {
                results.push(run_python(
                    "miyabi_legacy.planning",
                    "plain Python",
                    &dir,
                    &catalog_path,
                    1,
                )?);
            }
            Ok(())
        })();
        let _ = std::fs::remove_dir_all(&dir);
        outcome?;
    }

    let Some(reference) = results.first() else {
        anyhow::bail!("no variant selected");
    };
    println!();
    println!("θ2+θ3 over {instances} instances × 3 series × {HOURS} points ({points} points, raw metric data {raw_mib:.0} MiB)");
    println!();
    println!("| variant | best of | wall s | × first | working MiB | peak RSS MiB | peak / raw | steps | saving $/month | plan equal to first |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.0} | {:.0} | {:.2} | {} | {:.2} | {} |",
            r.name,
            r.runs,
            r.seconds,
            r.seconds / reference.seconds,
            r.working_mib,
            r.peak_mib,
            r.peak_mib / raw_mib,
            r.steps.len(),
            r.saving,
            if r.steps == reference.steps && (r.saving - reference.saving).abs() < 0.01 {
                "yes"
            } else {
                "NO"
            },
        );
    }
    Ok(())
}
