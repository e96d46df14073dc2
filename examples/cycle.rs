//! The main job: run the Miyabi loop θ1 Discovery → θ2 Planning → θ3 Optimization → θ4
//! Deployment → θ5 Monitoring → θ6 Learning until it converges, writing `world_state_N.json`
//! and the reports of each phase, and print the way from World0 to World_final.
//!
//! ```text
//! cargo run --release --example cycle -- --region us-east-1 [--region eu-west-1 …] \
//!     [--endpoint-url URL] [--profile NAME] [--lookback-days 14] [--discovery rust] \
//!     [--dry-run | --apply [--approve all|ID,ID…]] [--plan reviewed_execution_plan.json] \
//!     [--backend sdk|terraform] [--max-iterations 10] [--knowledge-base FILE] [--simulation FILE] --out DIR
//! ```
//!
//! θ4 is a dry run unless `--apply` is given (and the loop then stops after one iteration: it
//! would plan the same again); steps needing approval run only when `--approve` names them (or
//! says `all`), and `--approve ID,…` runs exactly those steps. With `--apply` the loop runs
//! until the new plan holds no change that may be applied, and says which rule ended it.
//!
//! `--simulation FILE` (or `MIYABI_SIMULATION`, which `localaws --simulation` sets) runs the
//! demo harness's workload simulator after each apply: the emulated estate then produces the
//! metrics its new instance types would, on a simulated clock.
//!
//! Regions, credentials and endpoints otherwise come from the standard AWS configuration.
//! `--discovery python` runs the legacy boto3 discovery through the JSON-RPC bridge instead of
//! the Rust θ1 (and `python-in-process` through the embedded interpreter, with the `python`
//! feature): the migration story, one phase at a time.
//! Exit codes: 0 success, 1 failure, 3 the capture is partial (the partial state is saved).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use miyabi_aws::aws::AwsOptions;
use miyabi_aws::bridge::{PhaseTransport, PythonBridge, Script, SubprocessTransport};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::cycle::Targets;
use miyabi_aws::phases::deployment::{Approval, Deployment, DeploymentConfig, Mode, TerraformMode};
use miyabi_aws::phases::learning::KnowledgeBase;
use miyabi_aws::phases::monitoring::WebhookSink;
use miyabi_aws::phases::{Discovery, DiscoveryConfig};
use miyabi_aws::phases::{Learning, LearningConfig, Monitoring, MonitoringConfig, Optimization, Planning};
use miyabi_aws::plan::execution::ExecutionPlan;
use miyabi_aws::progress::{ProgressEvent, ProgressSink};
use miyabi_aws::{Cycle, CycleContext, CycleReport, Error, Phase, StopReason};
use miyabi_aws_testkit::seed::Endpoints;
use miyabi_aws_testkit::simulator::WorkloadSimulator;

/// Exit code when the world state was captured only in part.
const EXIT_PARTIAL: u8 = 3;

#[derive(Parser, Debug)]
#[command(about = "Run the Miyabi optimisation cycle over an AWS estate")]
struct Args {
    /// Region to scan; repeat for several. Defaults to the configured Region.
    #[arg(long = "region")]
    regions: Vec<String>,
    /// Endpoint for every service without a per-service `AWS_ENDPOINT_URL_<SERVICE>` variable.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Named profile from the shared AWS config files.
    #[arg(long)]
    profile: Option<String>,
    /// Metric lookback in days (14, 32 or 93 are the usual values).
    #[arg(long, default_value_t = 14)]
    lookback_days: u32,
    /// A price catalog file replacing the built-in one.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Iteration limit of the loop.
    #[arg(long, default_value_t = 10)]
    max_iterations: u32,
    /// The knowledge base (outcomes, learned headroom, change times); `OUT/knowledge.redb` by
    /// default. Give the same file to a later run of the same estate.
    #[arg(long)]
    knowledge_base: Option<PathBuf>,
    /// Workload simulator state written by `localaws --simulation` (demo and tests only).
    #[arg(long, env = "MIYABI_SIMULATION")]
    simulation: Option<PathBuf>,
    /// Which θ1 implementation runs.
    #[arg(long, value_enum, default_value_t = DiscoveryImpl::Rust)]
    discovery: DiscoveryImpl,
    /// θ4 only reads and reports what it would do (the default).
    #[arg(long, conflicts_with = "apply")]
    dry_run: bool,
    /// Apply the plan; without it θ4 is a dry run that changes nothing.
    #[arg(long)]
    apply: bool,
    /// Approve `all` steps, or exactly these comma-separated step ids.
    #[arg(long)]
    approve: Option<String>,
    /// How θ4 changes AWS: through the SDK (default), or by running `terraform init/plan/apply`
    /// on the rendered target state (the CLI and the AWS provider must be installable).
    #[arg(long, value_enum, default_value_t = Backend::Sdk)]
    backend: Backend,
    /// Deploy this reviewed `execution_plan.json` instead of θ3's (drifted steps are refused).
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Send each iteration's result as JSON to this `http://` URL.
    #[arg(long)]
    webhook: Option<String>,
    /// Output folder for world states and reports.
    #[arg(long)]
    out: PathBuf,
}

/// θ5 from the command line: CPU alarms and a dashboard, and the webhook if one is given.
fn monitoring_phase(args: &Args) -> Monitoring {
    let mut phase = Monitoring::new(MonitoringConfig::default()).with_aws(AwsOptions {
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
        ..AwsOptions::default()
    });
    if let Some(url) = &args.webhook {
        phase = phase.with_sink(Arc::new(WebhookSink::new(url)));
    }
    phase
}

/// θ4 from the command line.
fn deployment_phase(args: &Args) -> Result<Deployment, String> {
    let approval = match args.approve.as_deref() {
        None => Approval::Nothing,
        Some("all") => Approval::All,
        Some(ids) => Approval::Ids(
            ids.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    let config = DeploymentConfig {
        mode: if args.apply { Mode::Apply } else { Mode::DryRun },
        approval,
        ..DeploymentConfig::default()
    };
    let mut phase = Deployment::new(args.regions.clone())
        .with_config(config)
        .with_aws(AwsOptions {
            profile: args.profile.clone(),
            endpoint_url: args.endpoint_url.clone(),
            ..AwsOptions::default()
        });
    if args.backend == Backend::Terraform {
        phase = phase.with_terraform(TerraformMode::default());
    }
    if let Some(path) = &args.plan {
        phase = phase.with_reviewed_plan(ExecutionPlan::load(path).map_err(|e| e.to_string())?);
    }
    Ok(phase)
}

/// θ4's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    /// The AWS SDK, step by step with backups.
    Sdk,
    /// Terraform on the rendered target state (destructive steps are left to the SDK backend).
    Terraform,
}

/// The θ1 implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DiscoveryImpl {
    /// The Rust discovery over the AWS SDK.
    Rust,
    /// The legacy Python script, over JSON-RPC in a child process (`MIYABI_PYTHON_PATH`).
    Python,
    /// The legacy Python script in the embedded interpreter (needs `--features python`).
    PythonInProcess,
}

/// The legacy scripts: `python/` of this checkout, unless `MIYABI_LEGACY_PATH` says otherwise.
fn legacy_dir() -> PathBuf {
    std::env::var_os("MIYABI_LEGACY_PATH").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python"),
        PathBuf::from,
    )
}

/// The chosen θ1 as a phase.
/// Errors are configuration errors, returned as text for the command line.
fn discovery_phase(args: &Args, progress: Arc<dyn ProgressSink>) -> Result<Arc<dyn Phase>, String> {
    let bridge = |transport: Arc<dyn PhaseTransport>| -> Arc<dyn Phase> {
        Arc::new(
            PythonBridge::new(transport, args.regions.clone())
                .with_profile(args.profile.clone())
                .with_endpoint_url(args.endpoint_url.clone())
                .with_lookback_hours(args.lookback_days * 24),
        )
    };
    Ok(match args.discovery {
        DiscoveryImpl::Rust => Arc::new(
            Discovery::new(DiscoveryConfig {
                regions: args.regions.clone(),
                aws: AwsOptions {
                    profile: args.profile.clone(),
                    endpoint_url: args.endpoint_url.clone(),
                    ..AwsOptions::default()
                },
                lookback_hours: args.lookback_days * 24,
                ..DiscoveryConfig::default()
            })
            .with_progress(progress),
        ),
        DiscoveryImpl::Python => bridge(Arc::new(
            SubprocessTransport::from_env(Script::legacy_rpc())
                .map_err(|e| e.to_string())?
                .with_python_path([legacy_dir()]),
        )),
        #[cfg(feature = "python")]
        DiscoveryImpl::PythonInProcess => bridge(Arc::new(
            miyabi_aws::bridge::InProcessTransport::legacy_discovery().with_python_path([legacy_dir()]),
        )),
        #[cfg(not(feature = "python"))]
        DiscoveryImpl::PythonInProcess => {
            return Err("--discovery python-in-process needs the example built with --features python".into())
        }
    })
}

/// Prints progress on stderr, one line per event.
struct TerminalProgress;

impl ProgressSink for TerminalProgress {
    fn report(&self, e: &ProgressEvent) {
        match (e.done, e.total) {
            (Some(d), Some(t)) => eprintln!("[{}] {:<12} {:>4}/{:<4} {}", e.phase, e.scope, d, t, e.message),
            _ => eprintln!("[{}] {:<12} {}", e.phase, e.scope, e.message),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let catalog = match &args.catalog {
        Some(path) => match PriceCatalog::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => PriceCatalog::built_in().clone(),
    };
    let progress: Arc<dyn ProgressSink> = Arc::new(TerminalProgress);
    let discovery = match discovery_phase(&args, progress.clone()) {
        Ok(phase) => phase,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    let deployment = match deployment_phase(&args) {
        Ok(phase) => phase,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let kb_path = args
        .knowledge_base
        .clone()
        .unwrap_or_else(|| args.out.join("knowledge.redb"));
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let knowledge = match KnowledgeBase::open(&kb_path) {
        Ok(kb) => Arc::new(kb),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ctx = match CycleContext::with_out_dir(&args.out).with_knowledge_base(knowledge) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let simulator = match &args.simulation {
        Some(file) => match Endpoints::from_env().and_then(|endpoints| WorkloadSimulator::load(file, endpoints)) {
            Ok(sim) => Some(Arc::new(sim)),
            Err(e) => {
                eprintln!("error: --simulation: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let mut cycle = Cycle::new()
        .with_phase(discovery)
        .with_phase(Arc::new(Planning::default()))
        .with_phase(Arc::new(Optimization::default()))
        .with_phase(Arc::new(deployment))
        .with_phase(Arc::new(monitoring_phase(&args)))
        .with_phase(Arc::new(Learning::new(LearningConfig::default())))
        .with_max_iterations(args.max_iterations);
    if let Some(sim) = &simulator {
        cycle = cycle.with_hook(sim.clone());
        ctx.clock = sim.clock();
    }
    ctx.catalog = Arc::new(catalog);
    ctx.progress = progress;
    let started = std::time::Instant::now();
    let report = cycle.run(&mut ctx).await;
    print_summary(&args, &ctx, &report);
    println!("{} in {:.1}s", report.stop, started.elapsed().as_secs_f64());
    match &report.stop {
        StopReason::PhaseFailed {
            error: Error::PartialCapture { .. },
            ..
        } => ExitCode::from(EXIT_PARTIAL),
        StopReason::PhaseFailed { .. } | StopReason::HookFailed { .. } => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

/// Timings, the last plan and deployment, and the table World0 → World_final.
fn print_summary(args: &Args, ctx: &CycleContext, report: &CycleReport) {
    for it in &report.iterations {
        for p in &it.phases {
            eprintln!(
                "iteration {} {}: {:.2}s{}",
                it.index,
                p.name,
                p.duration.as_secs_f64(),
                p.error.as_deref().map(|e| format!(" FAILED: {e}")).unwrap_or_default()
            );
        }
        if !it.hooks_duration.is_zero() {
            eprintln!(
                "iteration {} hooks (workload simulator): {:.2}s",
                it.index,
                it.hooks_duration.as_secs_f64()
            );
        }
    }
    if let Some(w) = &ctx.world {
        let a = &w.assessment;
        println!(
            "\nWorld{} (the last captured) of {} ({})",
            ctx.iteration,
            w.scope.regions.join(", "),
            w.scope.account_id.as_deref().unwrap_or("unknown account")
        );
        println!("  resources     {}", w.inventory.resource_count());
        println!("  metric series {}", w.inventory.metrics.len());
        println!(
            "  monthly cost  ${:.2} ({} unpriced)",
            a.monthly_total_usd, a.unpriced_count
        );
        println!("  security      {:.1} / 100", a.security_score);
        println!(
            "  utilisation   {}",
            a.utilisation_percent.map_or("no data".into(), |u| format!("{u:.1}%"))
        );
        println!(
            "  capture       {}",
            if w.scope.completeness.is_complete() {
                "complete"
            } else {
                "PARTIAL"
            }
        );
    }
    // The last iteration's plan: on convergence, what is left for a human.
    if let (Some(w), Some(plan), Some(ep)) = (&ctx.world, &ctx.plan, &ctx.execution_plan) {
        let cost = miyabi_aws::report::planning::project(w, &plan.cost, &ctx.catalog);
        let security = miyabi_aws::report::planning::project(w, &plan.security, &ctx.catalog);
        let approval = ep.steps.iter().filter(|s| s.needs_approval).count();
        println!(
            "\nPlan: {} cost and {} security change(s), {} for a human",
            plan.cost.len(),
            plan.security.len(),
            plan.manual.len()
        );
        println!(
            "  cost after the cost plan      ${:.2}/month ({:+.2})",
            cost.cost_after,
            cost.cost_after - cost.cost_before
        );
        println!("  score after the security plan {:.1} / 100", security.score_after);
        println!(
            "  execution plan: {} step(s) in {} wave(s), {approval} awaiting approval, {} excluded; saving ${:.2}/month",
            ep.steps.len(),
            ep.waves.len(),
            ep.excluded.len(),
            ep.monthly_saving_usd
        );
    }
    if let Some(d) = &ctx.deployment {
        let count = |status: &str| d.count(status);
        println!(
            "\nDeployment ({}): {} applied, {} would apply, {} skipped, {} refused, {} failed, {} rolled back{}",
            if args.apply { "apply" } else { "dry run" },
            count("applied"),
            count("would_apply"),
            count("skipped"),
            count("refused"),
            count("failed"),
            count("rolled_back"),
            d.failed_wave
                .map(|w| format!("; wave {w} failed and was rolled back"))
                .unwrap_or_default()
        );
    }
    let written: std::collections::BTreeSet<_> = ctx.reports.iter().collect();
    for path in written {
        println!("  wrote {}", path.display());
    }
    print_worlds(report);
}

/// The way from World0 to the last world captured, one row per iteration.
fn print_worlds(report: &CycleReport) {
    let rows: Vec<_> = report
        .iterations
        .iter()
        .filter_map(|it| it.world.map(|w| (it, w)))
        .collect();
    let Some(((_, first), (_, last))) = rows.first().zip(rows.last()) else {
        return;
    };
    let utilisation = |u: Option<f64>| u.map_or("-".to_owned(), |u| format!("{u:.1}%"));
    println!("\n| world | monthly cost | security score | utilisation | changes applied |");
    println!("|---|---:|---:|---:|---:|");
    for (i, (it, w)) in rows.iter().enumerate() {
        let name = if i + 1 == rows.len() && i > 0 {
            format!("World{} (final)", it.index)
        } else {
            format!("World{}", it.index)
        };
        println!(
            "| {name} | ${:.2} | {:.1} | {} | {} |",
            w.monthly_cost_usd,
            w.security_score,
            utilisation(w.utilisation_percent),
            it.applied_changes
        );
    }
    let down = if first.monthly_cost_usd > 0.0 {
        (first.monthly_cost_usd - last.monthly_cost_usd) / first.monthly_cost_usd * 100.0
    } else {
        0.0
    };
    let direction = if down >= 0.0 { "down" } else { "up" };
    println!(
        "cost {direction} {:.1}% from World0 (target ≥ {:.0}% down: {}), score {:.1} → {:.1} (target ≥ {:.0}: {})",
        down.abs(),
        Targets::COST_REDUCTION_PERCENT,
        if down >= Targets::COST_REDUCTION_PERCENT {
            "met"
        } else {
            "not met"
        },
        first.security_score,
        last.security_score,
        Targets::SECURITY_SCORE,
        if last.security_score >= Targets::SECURITY_SCORE {
            "met"
        } else {
            "not met"
        },
    );
}
