//! The full converging cycle, θ1–θ6 with the workload simulator, on seeded estates of several
//! sizes: wall time per phase and per iteration, and the way from World0 to World_final.
//!
//! ```text
//! cargo bench --bench cycle -- --instances 200 --instances 2000
//! cargo bench --bench cycle -- --instances 2000 --aws-like --state-times 30,20 --max-in-flight 64,128
//! ```
//!
//! Each size gets fresh emulators, a demo estate in 2 Regions (14 days of hourly metrics), and
//! the loop with `--apply --approve all` until it converges. With `--aws-like`, every call goes
//! through the test kit's proxy in its AWS-like mode (50 ms a call, AWS's documented buckets),
//! with EC2's stop and start times (`--state-times STOP,START` seconds; 30,20 by default), once
//! per `--max-in-flight` value (steps of a wave at once; 1 is one step after another). θ4's
//! floor is printed beside its time (see [`deployment_floor`]), and the limiter's requests,
//! throttles and waits per quota category after the loop. Each phase's start and end are logged on stderr as it goes; the tables are printed on
//! stdout. On the emulators the server side dominates: ministack serves one request at a time
//! and builds every answer point by point.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use miyabi_aws::aws::{AwsOptions, AwsSession, LimiterCounts, QuotaTable};
use miyabi_aws::phases::deployment::{Approval, DeploymentReport, StepOutcome, WaitPolicy, DEFAULT_MAX_IN_FLIGHT};
use miyabi_aws::phases::learning::KnowledgeBase;
use miyabi_aws::phases::{
    Deployment, DeploymentConfig, Discovery, DiscoveryConfig, Learning, LearningConfig, Monitoring, MonitoringConfig,
    Optimization, Planning,
};
use miyabi_aws::plan::Action;
use miyabi_aws::{Cycle, CycleContext, CycleHook, CycleReport, PhaseId, PhaseOutcome};
use miyabi_aws_testkit::ec2_states::StateTimes;
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::proxy::FaultProxy;
use miyabi_aws_testkit::quota::AwsLike;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};
use miyabi_aws_testkit::simulator::WorkloadSimulator;

mod support;
use support::arg;

fn sizes() -> Vec<usize> {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = args
        .windows(2)
        .filter(|w| w[0] == "--instances")
        .filter_map(|w| w[1].parse().ok())
        .collect();
    if sizes.is_empty() {
        vec![200]
    } else {
        sizes
    }
}

/// How the calls reach the emulators.
#[derive(Clone, Copy)]
struct Mode {
    /// Through the proxy in its AWS-like mode, with these EC2 stop and start times.
    aws_like: Option<StateTimes>,
    /// θ4's steps in flight at once.
    max_in_flight: usize,
}

/// The EC2 calls of one applied step that AWS meters: the change, the tag, and the read before
/// and the read after (θ4's polls are left out: a floor counts the calls no deployment can
/// avoid). S3 and RDS steps are left out: their buckets are far larger than a wave asks.
fn metered_calls(action: Action) -> &'static [&'static str] {
    match action {
        Action::ResizeInstance => &[
            "DescribeInstances",
            "StopInstances",
            "ModifyInstanceAttribute",
            "StartInstances",
            "CreateTags",
            "DescribeInstances",
        ],
        Action::StopInstance => &["DescribeInstances", "StopInstances", "CreateTags", "DescribeInstances"],
        Action::RequireImdsV2 => &[
            "DescribeInstances",
            "ModifyInstanceMetadataOptions",
            "CreateTags",
            "DescribeInstances",
        ],
        Action::MigrateVolumeToGp3 => &["DescribeVolumes", "ModifyVolume", "CreateTags", "DescribeVolumes"],
        Action::RevokeIngress => &[
            "DescribeSecurityGroups",
            "RevokeSecurityGroupIngress",
            "CreateTags",
            "DescribeSecurityGroups",
        ],
        Action::ReleaseAddress => &["DescribeAddresses", "ReleaseAddress", "DescribeAddresses"],
        Action::DeleteVolume => &["DescribeVolumes", "CreateSnapshot", "DeleteVolume", "DescribeVolumes"],
        Action::TerminateInstance => &[
            "DescribeInstances",
            "CreateSnapshot",
            "TerminateInstances",
            "DescribeInstances",
        ],
        _ => &[],
    }
}

/// The time AWS's buckets and EC2's state times set for θ4 to apply `report`'s steps at
/// `share`, wave after wave as θ4 runs them. Per wave: the slowest bucket its applied steps'
/// metered calls spend (each bucket full at the wave's start; buckets are per Region and
/// action), plus one stop and one start when the wave resizes (the last resize waits for both).
fn deployment_floor(report: &DeploymentReport, share: f64, times: StateTimes) -> f64 {
    let table = QuotaTable::documented().scaled(share);
    /// Tokens spent per (Region, category, bucket), and the longest state time, of one wave.
    type WaveSpend = (BTreeMap<(String, String, String), f64>, f64);
    let mut waves: BTreeMap<usize, WaveSpend> = BTreeMap::new();
    for step in report.steps.iter().filter(|s| s.outcome == StepOutcome::Applied) {
        let (spent, state_time) = waves.entry(step.wave).or_default();
        for call in metered_calls(step.action) {
            for spend in table.spends("ec2", call, false) {
                *spent
                    .entry((step.resource.region.clone(), spend.category, spend.bucket))
                    .or_default() += 1.0;
            }
        }
        let settles = match step.action {
            Action::ResizeInstance => times.stopping + times.pending,
            Action::StopInstance => times.stopping,
            _ => Duration::ZERO,
        };
        *state_time = state_time.max(settles.as_secs_f64());
    }
    waves
        .values()
        .map(|(spent, state_time)| {
            let drain = spent
                .iter()
                .filter_map(|((_, category, _), n)| {
                    table
                        .get(category)
                        .map(|q| ((n - q.capacity) / q.refill_per_second).max(0.0))
                })
                .fold(0.0, f64::max);
            drain + state_time
        })
        .sum::<f64>()
        .max(0.0) // an empty sum is -0.0
}

/// Keeps each iteration's deployment report, for the floors.
#[derive(Default)]
struct Deployments(std::sync::Mutex<Vec<DeploymentReport>>);

#[async_trait::async_trait]
impl CycleHook for Deployments {
    async fn after(&self, phase: PhaseId, _: &PhaseOutcome, ctx: &mut CycleContext) -> miyabi_aws::Result<()> {
        if phase == PhaseId::Deployment {
            if let Some(report) = ctx.artefacts.get::<DeploymentReport>() {
                self.0.lock().expect("deployments lock").push(report.clone());
            }
        }
        Ok(())
    }
}

/// What one run of the loop took and did.
struct Run {
    seeded_in: Duration,
    cycle_in: Duration,
    report: CycleReport,
    /// Each iteration's deployment report.
    deployed: Vec<DeploymentReport>,
    /// The session limiter's counts per quota category, over the whole loop.
    limits: BTreeMap<String, LimiterCounts>,
}

/// Seeds `instances` and runs the loop to convergence.
async fn run(instances: usize, mode: Mode) -> anyhow::Result<Run> {
    let spec = DemoSpec {
        instances,
        ..DemoSpec::default()
    };
    let local = LocalAws::start()?;
    let seeding = Instant::now();
    let estate = seed_demo(&local.endpoints(), &spec).await?;
    let seeded_in = seeding.elapsed();
    // After seeding, which clears endpoint variables a developer's shell may have set: every
    // phase finds the emulators through the standard variables.
    for (key, value) in local.endpoint_env() {
        std::env::set_var(key, value);
    }
    let simulator = Arc::new(WorkloadSimulator::new(
        local.endpoints(),
        spec.clone(),
        &estate,
        estate.metrics_until,
    ));
    let out = std::env::temp_dir().join(format!("miyabi-bench-cycle-{instances}-{}", std::process::id()));
    std::fs::create_dir_all(&out)?;
    let kb = Arc::new(KnowledgeBase::open(out.join("knowledge.redb"))?);
    // ministack serves one request at a time: under load a GetMetricData batch takes seconds.
    let endpoints = local.endpoints();
    let proxy = FaultProxy::start(&endpoints.moto, &endpoints.cloudwatch).await?;
    if let Some(times) = mode.aws_like {
        proxy.set_aws_like(Some(AwsLike::default()));
        proxy.set_ec2_state_times(Some(times));
    }
    let aws = Arc::new(AwsSession::new(AwsOptions {
        attempt_timeout: Duration::from_secs(1800),
        endpoint_url: mode.aws_like.map(|_| proxy.url.clone()),
        ..AwsOptions::default()
    }));
    let mut ctx = CycleContext::new(aws)
        .with_out_dir(&out)
        .with_clock(simulator.clock())
        .with_knowledge_base(kb)?;
    let deployments = Arc::new(Deployments::default());
    let cycle = Cycle::new()
        .with_phase(Arc::new(Discovery::new(DiscoveryConfig {
            regions: spec.regions.clone(),
            ..DiscoveryConfig::default()
        })))
        .with_phase(Arc::new(Planning::default()))
        .with_phase(Arc::new(Optimization::default()))
        .with_phase(Arc::new(
            Deployment::new(spec.regions.clone())
                .with_config(DeploymentConfig {
                    max_in_flight: mode.max_in_flight,
                    ..DeploymentConfig::applying(Approval::All)
                })
                .with_wait(WaitPolicy {
                    poll: Duration::from_millis(if mode.aws_like.is_some() { 2000 } else { 100 }),
                    timeout: Duration::from_secs(600),
                }),
        ))
        .with_phase(Arc::new(Monitoring::new(MonitoringConfig::default())))
        .with_phase(Arc::new(Learning::new(LearningConfig::default())))
        .with_hook(simulator)
        .with_hook(deployments.clone())
        .with_max_iterations(10);
    let started = Instant::now();
    let report = cycle.run(&mut ctx).await;
    let cycle_in = started.elapsed();
    let _ = std::fs::remove_dir_all(&out);
    let deployed = std::mem::take(&mut *deployments.0.lock().expect("deployments lock"));
    Ok(Run {
        seeded_in,
        cycle_in,
        report,
        deployed,
        limits: ctx.aws.limiter().counts(),
    })
}

fn print(instances: usize, mode: Mode, seeded_in: Duration, cycle_in: Duration, report: &CycleReport) {
    match mode.aws_like {
        Some(t) => println!(
            "\n## {instances} instances (2 Regions), AWS-like: 50 ms a call, AWS's buckets at share 0.5, stop {} s / start {} s, {} step(s) in flight\n",
            t.stopping.as_secs(),
            t.pending.as_secs(),
            mode.max_in_flight
        ),
        None => println!("\n## {instances} instances (2 Regions)\n"),
    }
    println!(
        "seeding {:.1} s; cycle {:.1} s over {} iteration(s); {}\n",
        seeded_in.as_secs_f64(),
        cycle_in.as_secs_f64(),
        report.iterations.len(),
        report.stop
    );
    let header: Vec<String> = PhaseId::ALL.iter().map(ToString::to_string).collect();
    println!(
        "| iteration | {} | simulator | total s | applied | cost | score |",
        header.join(" | ")
    );
    println!("|---|{}---:|---:|---:|---:|---:|", "---:|".repeat(PhaseId::ALL.len()));
    for it in &report.iterations {
        let per_phase: Vec<String> = PhaseId::ALL
            .iter()
            .map(|id| {
                it.phases
                    .iter()
                    .find(|p| p.id == *id)
                    .map_or("-".into(), |p| format!("{:.2}", p.duration.as_secs_f64()))
            })
            .collect();
        let total: Duration = it.phases.iter().map(|p| p.duration).sum::<Duration>() + it.hooks_duration;
        let (cost, score) = it.world.map_or(("-".into(), "-".into()), |w| {
            (
                format!("${:.2}", w.monthly_cost_usd),
                format!("{:.1}", w.security_score),
            )
        });
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {cost} | {score} |",
            it.index,
            per_phase.join(" | "),
            it.hooks_duration.as_secs_f64(),
            total.as_secs_f64(),
            it.applied_changes.unwrap_or(0)
        );
    }
    let phase_total = |id: PhaseId| -> f64 {
        report
            .iterations
            .iter()
            .flat_map(|it| &it.phases)
            .filter(|p| p.id == id)
            .map(|p| p.duration.as_secs_f64())
            .sum()
    };
    let shares: Vec<String> = PhaseId::ALL
        .iter()
        .map(|id| format!("{id} {:.0}%", 100.0 * phase_total(*id) / cycle_in.as_secs_f64()))
        .collect();
    println!("\nshare of the cycle's wall time: {}", shares.join(", "));
}

/// θ4's wall time per iteration beside its floor.
fn print_deployment_floors(report: &CycleReport, floors: &[f64]) {
    println!("\n| iteration | θ4 s | θ4 floor s | ratio |\n|---|---:|---:|---:|");
    for (it, floor) in report.iterations.iter().zip(floors) {
        let theta4 = it
            .phases
            .iter()
            .find(|p| p.id == PhaseId::Deployment)
            .map_or(0.0, |p| p.duration.as_secs_f64());
        println!(
            "| {} | {theta4:.1} | {floor:.1} | {} |",
            it.index,
            if *floor > 0.0 {
                format!("{:.2}", theta4 / floor)
            } else {
                "-".into()
            }
        );
    }
}

/// Where the loop's requests waited: per quota category, the requests the limiter let through,
/// the throttles it met, and the time requests spent waiting for tokens (summed over requests,
/// so concurrent waits add up).
fn print_limits(limits: &BTreeMap<String, LimiterCounts>) {
    println!("\n| quota category | requests | throttles | waited s (summed) |\n|---|---:|---:|---:|");
    for (category, c) in limits {
        println!(
            "| {category} | {} | {} | {:.1} |",
            c.requests,
            c.throttles,
            c.waited.as_secs_f64()
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Progress on stderr: each phase's start and end (RUST_LOG overrides), so that a run of an
    // hour shows where it is; the tables go to stdout.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,miyabi_aws::cycle=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    miyabi_aws_testkit::init_test_env();
    let aws_like = std::env::args().any(|a| a == "--aws-like");
    let state_times = arg("--state-times").map_or(Ok(StateTimes::default()), |v| {
        let parts: Vec<u64> = v.split(',').map(str::parse).collect::<Result<_, _>>()?;
        anyhow::ensure!(parts.len() == 2, "--state-times takes STOP,START seconds");
        Ok::<_, anyhow::Error>(StateTimes {
            stopping: Duration::from_secs(parts[0]),
            pending: Duration::from_secs(parts[1]),
        })
    })?;
    let in_flight: Vec<usize> = arg("--max-in-flight")
        .unwrap_or_else(|| DEFAULT_MAX_IN_FLIGHT.to_string())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    for instances in sizes() {
        for &max_in_flight in &in_flight {
            let mode = Mode {
                aws_like: aws_like.then_some(state_times),
                max_in_flight,
            };
            let run = run(instances, mode).await?;
            print(instances, mode, run.seeded_in, run.cycle_in, &run.report);
            if let Some(times) = mode.aws_like {
                let floors: Vec<f64> = run.deployed.iter().map(|d| deployment_floor(d, 0.5, times)).collect();
                print_deployment_floors(&run.report, &floors);
                print_limits(&run.limits);
            }
            anyhow::ensure!(run.report.converged(), "{instances} instances: {}", run.report.stop);
        }
    }
    Ok(())
}
