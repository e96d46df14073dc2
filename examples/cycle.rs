//! The main job: run the Miyabi cycle with the phases that exist, write the reports, print a
//! summary.
//!
//! ```text
//! cargo run --release --example cycle -- --region us-east-1 [--region eu-west-1 …] \
//!     [--endpoint-url URL] [--profile NAME] [--lookback-days 14] --out DIR
//! ```
//!
//! Regions, credentials and endpoints otherwise come from the standard AWS configuration.
//! Exit codes: 0 success, 1 failure, 3 the capture is partial (the partial state is saved).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use miyabi_aws::aws::AwsOptions;
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::phases::{Discovery, DiscoveryConfig};
use miyabi_aws::progress::{ProgressEvent, ProgressSink};
use miyabi_aws::{Cycle, CycleContext, Error, StopReason};

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
    /// Output folder for world states and reports.
    #[arg(long)]
    out: PathBuf,
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
    let discovery = Discovery::new(DiscoveryConfig {
        regions: args.regions.clone(),
        aws: AwsOptions {
            profile: args.profile.clone(),
            endpoint_url: args.endpoint_url.clone(),
            ..AwsOptions::default()
        },
        lookback_hours: args.lookback_days * 24,
        ..DiscoveryConfig::default()
    })
    .with_progress(progress.clone());

    let cycle = Cycle::new()
        .with_phase(Arc::new(discovery))
        .with_max_iterations(args.max_iterations);
    let mut ctx = CycleContext::with_out_dir(&args.out);
    ctx.catalog = Arc::new(catalog);
    ctx.progress = progress;
    let started = std::time::Instant::now();
    let report = cycle.run(&mut ctx).await;

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
    }
    if let Some(w) = &ctx.world {
        let a = &w.assessment;
        println!(
            "\nWorld0 of {} ({})",
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
    for path in &ctx.reports {
        println!("  wrote {}", path.display());
    }
    println!("{} in {:.1}s", report.stop, started.elapsed().as_secs_f64());
    match &report.stop {
        StopReason::PhaseFailed {
            error: Error::PartialCapture { .. },
            ..
        } => ExitCode::from(EXIT_PARTIAL),
        StopReason::PhaseFailed { .. } => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}
