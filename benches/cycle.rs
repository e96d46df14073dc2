//! The full converging cycle, θ1–θ6 with the workload simulator, on seeded estates of several
//! sizes: wall time per phase and per iteration, and the way from World0 to World_final.
//!
//! ```text
//! cargo bench --bench cycle -- --instances 200 --instances 2000
//! ```
//!
//! Each size gets fresh emulators, a demo estate in 2 Regions (14 days of hourly metrics), and
//! the loop with `--apply --approve all` until it converges. Each phase's start and end are
//! logged on stderr as it goes; the tables are printed on stdout. On the emulators the server
//! side dominates: ministack walks every stored series for each `GetMetricData` query, so
//! θ1's metric reads grow with the store, not with this crate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use miyabi_aws::aws::{AwsOptions, AwsSession};
use miyabi_aws::phases::deployment::{Approval, WaitPolicy};
use miyabi_aws::phases::learning::KnowledgeBase;
use miyabi_aws::phases::{
    Deployment, DeploymentConfig, Discovery, DiscoveryConfig, Learning, LearningConfig, Monitoring, MonitoringConfig,
    Optimization, Planning,
};
use miyabi_aws::{Cycle, CycleContext, CycleReport, PhaseId};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};
use miyabi_aws_testkit::simulator::WorkloadSimulator;

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

/// Seeds `instances`, runs the loop to convergence, and returns the seeding time and the report.
async fn run(instances: usize) -> anyhow::Result<(Duration, Duration, CycleReport)> {
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
    // ministack serves one request at a time and walks every stored series for each query: a
    // GetMetricData batch takes minutes once millions of points are stored.
    let aws = Arc::new(AwsSession::new(AwsOptions {
        attempt_timeout: Duration::from_secs(1800),
        ..AwsOptions::default()
    }));
    let mut ctx = CycleContext::new(aws)
        .with_out_dir(&out)
        .with_clock(simulator.clock())
        .with_knowledge_base(kb)?;
    let cycle = Cycle::new()
        .with_phase(Arc::new(Discovery::new(DiscoveryConfig {
            regions: spec.regions.clone(),
            ..DiscoveryConfig::default()
        })))
        .with_phase(Arc::new(Planning::default()))
        .with_phase(Arc::new(Optimization::default()))
        .with_phase(Arc::new(
            Deployment::new(spec.regions.clone())
                .with_config(DeploymentConfig::applying(Approval::All))
                .with_wait(WaitPolicy {
                    poll: Duration::from_millis(100),
                    timeout: Duration::from_secs(120),
                }),
        ))
        .with_phase(Arc::new(Monitoring::new(MonitoringConfig::default())))
        .with_phase(Arc::new(Learning::new(LearningConfig::default())))
        .with_hook(simulator)
        .with_max_iterations(10);
    let started = Instant::now();
    let report = cycle.run(&mut ctx).await;
    let cycle_in = started.elapsed();
    let _ = std::fs::remove_dir_all(&out);
    Ok((seeded_in, cycle_in, report))
}

fn print(instances: usize, seeded_in: Duration, cycle_in: Duration, report: &CycleReport) {
    println!("\n## {instances} instances (2 Regions)\n");
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
    for instances in sizes() {
        let (seeded_in, cycle_in, report) = run(instances).await?;
        print(instances, seeded_in, cycle_in, &report);
        anyhow::ensure!(report.converged(), "{instances} instances: {}", report.stop);
    }
    Ok(())
}
