//! The `miyabi-aws` command line: `discover`, `plan`, `apply` and `cycle`, the same from
//! `cargo install` and from the wheel's console script.
//!
//! Exit codes: 0 success, 1 failure, 2 a usage error, 3 the run finished but its latest capture
//! was partial (the world state names its gaps; what they cover was left alone), 130 Ctrl-C or
//! SIGTERM wound the run down.

mod accounts;
mod hooks;
mod progress;
mod summary;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use self::hooks::{CommandHook, FileClock};
pub use self::progress::TerminalProgress;
use crate::aws::{AssumeRole, AwsOptions, AwsSession, LimitOptions};
use crate::bridge::{PhaseTransport, PythonBridge, Script, SubprocessTransport};
use crate::catalog::PriceCatalog;
use crate::cycle::stop::IterationLimit;
use crate::fleet::AccountSource;
use crate::guardrails::Environment;
use crate::knowledge::KnowledgeBase;
use crate::output::Format;
use crate::phases::deployment::{Approval, Deployment, DeploymentConfig, Mode, TerraformMode, DEFAULT_MAX_IN_FLIGHT};
use crate::phases::monitoring::WebhookSink;
use crate::phases::{Discovery, DiscoveryConfig, Learning, LearningConfig, Monitoring, MonitoringConfig};
use crate::phases::{Optimization, OptimizationConfig, Planning};
use crate::plan::execution::ExecutionPlan;
use crate::progress::SharedProgress;
use crate::run_report::RunRecorder;
use crate::world::WorldState;
use crate::{Cycle, CycleContext, CycleReport, Error, Phase, StopReason};

/// Exit code: the world state was captured only in part.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit code: Ctrl-C or SIGTERM wound the run down (θ4 finished the steps it had begun).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "miyabi-aws",
    version,
    about = "Find what an AWS estate wastes and risks, plan the fixes as IaC, apply them safely, and learn from the result",
    long_about = None
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand takes.
#[derive(Args, Debug, Clone)]
struct Global {
    /// Region to work in; repeat for several. Defaults to the configured Region.
    #[arg(long = "region", global = true, value_name = "REGION")]
    regions: Vec<String>,
    /// Named profile from the shared AWS config files (else `AWS_PROFILE`, else `default`).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Endpoint for every service without a per-service `AWS_ENDPOINT_URL_<SERVICE>` variable.
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Folder for world states, reports and `IaC`.
    #[arg(long, global = true, value_name = "DIR", default_value = "miyabi-out")]
    out: PathBuf,
    /// Which files to write: a comma-separated list of `json` (world states, execution plan),
    /// `markdown` (reports), `html` (the run's report), and the security formats `sarif`,
    /// `ocsf` and `asff`. `IaC` is always written.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "json,markdown,html"
    )]
    output_format: Vec<OutputFormat>,
    /// A price catalog file replacing the built-in one.
    #[arg(long, global = true, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// The share of AWS's request quotas to spend, in (0, 1]: `0.5` (the default) for every
    /// bucket, or `CATEGORY=SHARE` for one category (`ec2.mutating=0.2`); repeat for several.
    #[arg(long, global = true, value_name = "SHARE|CATEGORY=SHARE", value_parser = parse_api_share)]
    api_share: Vec<ApiShare>,
    /// A JSON file of request quotas and shares where the account's differ from AWS's
    /// documented defaults (see the README's "Request limits").
    #[arg(long, global = true, value_name = "FILE")]
    quota_file: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(flatten)]
    accounts: AccountArgs,
}

/// Which accounts `discover`, `cycle` and `apply` work in (by default the credentials' own).
#[derive(Args, Debug, Clone)]
struct AccountArgs {
    /// Work in the account of this IAM role, assuming it; repeat for several accounts (each
    /// runs into `OUT/<account>/`, and `OUT/accounts.json` sums them up).
    #[arg(long = "role-arn", global = true, value_name = "ARN", value_parser = parse_role)]
    role_arns: Vec<AssumeRole>,
    /// Work in every active account of the organization (run with its management account's
    /// credentials), assuming the role of this name in each member account.
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "role_arns")]
    org_role: Option<String>,
    /// The external id the roles' trust policies ask for.
    #[arg(long, global = true, value_name = "ID")]
    external_id: Option<String>,
    /// Accounts worked in at once.
    #[arg(long, global = true, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    max_concurrent_accounts: u16,
}

impl AccountArgs {
    /// Where the accounts come from, when the run is not the credentials' own account.
    fn source(&self) -> Option<AccountSource> {
        let with_id = |role: &AssumeRole| match &self.external_id {
            Some(id) if role.external_id.is_none() => role.clone().with_external_id(id),
            _ => role.clone(),
        };
        match &self.org_role {
            Some(name) => Some(AccountSource::Organization {
                role_name: name.clone(),
                external_id: self.external_id.clone(),
            }),
            None if self.role_arns.is_empty() => None,
            None => Some(AccountSource::Roles(self.role_arns.iter().map(with_id).collect())),
        }
    }
}

fn parse_role(arn: &str) -> Result<AssumeRole, String> {
    AssumeRole::new(arn.trim()).map_err(|e| e.to_string())
}

/// The file formats of `--output-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// World states and the execution plan.
    Json,
    /// The phases' reports.
    Markdown,
    /// Each capture's failing security findings, as SARIF 2.1.0 (`findings_N.sarif`).
    Sarif,
    /// Each capture's security findings, as OCSF 1.5.0 Detection Findings
    /// (`findings_N.ocsf.json`, as Prowler's json-ocsf).
    Ocsf,
    /// Each capture's security findings, in the AWS Security Finding Format that Security Hub
    /// imports (`findings_N.asff.json`).
    Asff,
    /// The run's report, one self-contained HTML page with charts (`report.html`, `cycle` only).
    Html,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// θ1: capture the estate as `world_state_0.json` and `discovery_report.md`.
    Discover(DiscoverArgs),
    /// θ2 and θ3, offline: plan from a world-state file (cost and security plans, `IaC`,
    /// `execution_plan.json`); no AWS call.
    Plan(PlanArgs),
    /// θ4: apply a reviewed `execution_plan.json` (steps whose precondition no longer holds are
    /// refused as drift).
    Apply(ApplyArgs),
    /// The whole loop θ1 → θ6, until it converges.
    Cycle(CycleArgs),
    /// Build a price catalog from AWS Price List bulk offer files (for one Region) into
    /// `OUT/catalog.json`, over the `--catalog` file or the built-in one; no AWS call.
    Catalog(CatalogArgs),
    /// Take cycle requests from an SQS queue and run each, writing its results under
    /// `s3://BUCKET/<tenant>/<request>/`, until SIGTERM (the fleet's worker task).
    Worker(WorkerArgs),
}

#[derive(Args, Debug)]
struct WorkerArgs {
    /// The queue of cycle requests.
    #[arg(long, value_name = "URL")]
    queue_url: String,
    /// The bucket for results, and for the fleet's claims, leases, apply journals and knowledge
    /// bases.
    #[arg(long, value_name = "BUCKET")]
    results_bucket: String,
    /// Requests run at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Seconds a received message stays invisible (and a claim or lease lives) without a
    /// heartbeat; the heartbeat beats at a third of it.
    #[arg(long, value_name = "S", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(2..=43_200))]
    visibility_timeout: u32,
    /// Seconds one receive waits for a message (SQS long polling).
    #[arg(long, value_name = "S", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=20))]
    wait_time: u32,
    /// This worker's name in claims and leases (unique in the fleet); `<host>-<pid>-<random>`
    /// by default.
    #[arg(long, value_name = "NAME")]
    worker_id: Option<String>,
    /// Metric lookback in days.
    #[arg(long, default_value_t = 14)]
    lookback_days: u32,
    /// θ4's steps of a wave in flight at once, per request (never two on one resource).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u16).range(1..=1000))]
    max_in_flight: u16,
}

#[derive(Args, Debug)]
struct CatalogArgs {
    /// The `AmazonEC2` offer file (instances, EBS storage).
    #[arg(long, value_name = "FILE")]
    ec2: Option<PathBuf>,
    /// The `AmazonRDS` offer file (classes, reservations).
    #[arg(long, value_name = "FILE")]
    rds: Option<PathBuf>,
    /// The `AmazonS3` offer file (Standard storage).
    #[arg(long, value_name = "FILE")]
    s3: Option<PathBuf>,
    /// The `AWSComputeSavingsPlan` price list (needs `--ec2`).
    #[arg(long, value_name = "FILE")]
    savings_plans: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DiscoverArgs {
    #[command(flatten)]
    scan: ScanArgs,
}

/// How θ1 scans, for `discover` and `cycle`.
#[derive(Args, Debug)]
struct ScanArgs {
    /// Metric lookback in days (14, 32 or 93 are the usual values).
    #[arg(long, default_value_t = 14)]
    lookback_days: u32,
    /// Which θ1 implementation runs.
    #[arg(long, value_enum, default_value_t = DiscoveryImpl::Rust)]
    discovery: DiscoveryImpl,
    /// A world state of an earlier run (`world_state_N.json`): CloudWatch is asked only for the
    /// datapoints it does not hold yet. Within a cycle, each iteration builds on the one before.
    #[arg(long, value_name = "FILE")]
    previous_world: Option<PathBuf>,
    /// Ask CloudWatch for the whole lookback every iteration, building on nothing.
    #[arg(long, conflicts_with = "previous_world")]
    full_scan: bool,
}

#[derive(Args, Debug)]
struct PlanArgs {
    /// The world-state file to plan from (a `world_state_N.json`).
    #[arg(long, value_name = "FILE")]
    world: PathBuf,
    /// At most this many changes in the execution plan.
    #[arg(long)]
    max_changes: Option<usize>,
    /// Actions never to plan (comma-separated, for example `terminate_instance`).
    #[arg(long, value_delimiter = ',')]
    deny: Vec<String>,
    /// The account's environment, for the approval thresholds.
    #[arg(long, value_enum, default_value_t = EnvironmentArg::Production)]
    environment: EnvironmentArg,
    /// The knowledge base whose learned headroom and change times θ3 uses.
    #[arg(long, value_name = "FILE")]
    knowledge_base: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ApplyArgs {
    /// The reviewed execution plan.
    #[arg(long, value_name = "FILE")]
    plan: PathBuf,
    #[command(flatten)]
    deploy: DeployArgs,
}

/// How θ4 runs.
#[derive(Args, Debug)]
struct DeployArgs {
    /// Only read and report what would be done.
    #[arg(long)]
    dry_run: bool,
    /// Approve `all` steps, or exactly these comma-separated step ids.
    #[arg(long, value_name = "all|IDS")]
    approve: Option<String>,
    /// How θ4 changes AWS.
    #[arg(long, value_enum, default_value_t = Backend::Sdk)]
    backend: Backend,
    /// Steps of a wave in flight at once (never two on one resource).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u16).range(1..=1000))]
    max_in_flight: u16,
}

#[derive(Args, Debug)]
struct CycleArgs {
    #[command(flatten)]
    scan: ScanArgs,
    /// Apply the plan; without it θ4 is a dry run and the loop stops after one iteration.
    #[arg(long)]
    apply: bool,
    /// Approve `all` steps, or exactly these comma-separated step ids.
    #[arg(long, value_name = "all|IDS")]
    approve: Option<String>,
    /// How θ4 changes AWS.
    #[arg(long, value_enum, default_value_t = Backend::Sdk)]
    backend: Backend,
    /// Steps of a wave in flight at once (never two on one resource).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u16).range(1..=1000))]
    max_in_flight: u16,
    /// Deploy this reviewed `execution_plan.json` instead of θ3's.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Iteration limit of the loop.
    #[arg(long, default_value_t = 10)]
    max_iterations: u32,
    /// The knowledge base (outcomes, learned headroom, change times); `OUT/knowledge.redb` by
    /// default. Give the same file to a later run of the same estate.
    #[arg(long, value_name = "FILE")]
    knowledge_base: Option<PathBuf>,
    /// Send each iteration's result as JSON to this `http://` URL.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// The monthly budget, USD, of the cost alarm θ5 puts on the engine's own estimate; World0's
    /// estimate by default.
    #[arg(long, value_name = "USD", value_parser = parse_budget)]
    cost_budget: Option<f64>,
    /// Run a command after a phase: `PHASE=COMMAND` (through `sh -c`; repeatable). It gets
    /// `MIYABI_PHASE`, `MIYABI_ITERATION`, `MIYABI_APPLICABLE`, `MIYABI_APPLIED` and
    /// `MIYABI_OUT`; a non-zero exit stops the loop.
    #[arg(long = "hook-after", value_name = "PHASE=COMMAND")]
    hooks: Vec<String>,
    /// Read "now" from this file (Unix seconds or RFC 3339), re-read at every use, instead of
    /// the system clock: for simulations.
    #[arg(long, value_name = "FILE")]
    clock_file: Option<PathBuf>,
}

/// θ4's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The AWS SDK, step by step with backups.
    Sdk,
    /// Terraform on the rendered target state (the CLI and its AWS provider must be installable).
    Terraform,
}

/// The θ1 implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiscoveryImpl {
    /// The Rust discovery over the AWS SDK.
    Rust,
    /// The legacy Python script, over JSON-RPC in a child process (`MIYABI_PYTHON_PATH`).
    Python,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EnvironmentArg {
    Production,
    Development,
}

/// Runs the CLI with `args` (the program name first) on a runtime of its own; returns the exit
/// code.
pub fn main_with(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            1
        }
    }
}

/// The SDK's log events that carry credentials or response bodies (an access key id in the
/// endpoint resolver's parameters at debug, signed headers, session tokens and user data in the
/// signer's and the orchestrator's trace dumps): each target is capped at the level below them,
/// whatever `MIYABI_LOG` asks. A cap only lowers: `MIYABI_LOG` still decides the rest.
const CREDENTIAL_LOGS: [(&str, tracing::Level); 3] = [
    (
        "aws_smithy_runtime::client::orchestrator::endpoints",
        tracing::Level::INFO,
    ),
    ("aws_smithy_runtime::client::orchestrator", tracing::Level::DEBUG),
    ("aws_sigv4", tracing::Level::DEBUG),
];

/// Logs to stderr, filtered by `MIYABI_LOG` (default `warn,miyabi_aws::cycle=info`) and the
/// [`CREDENTIAL_LOGS`] caps.
fn init_logging() {
    use tracing_subscriber::filter::{FilterExt as _, LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let asked = tracing_subscriber::EnvFilter::try_from_env("MIYABI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,miyabi_aws::cycle=info"));
    let caps = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CREDENTIAL_LOGS);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(asked.and(caps));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Runs the CLI with `args` (the program name first) on the current runtime; returns the exit
/// code.
pub async fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    init_logging();
    match execute(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn execute(cli: Cli) -> Result<u8, Error> {
    let g = &cli.global;
    let mut options = aws_options(g)?;
    if let Command::Worker(args) = &cli.command {
        return worker(g, args, options).await;
    }
    match (g.accounts.source(), &cli.command) {
        (None, _) => {}
        (Some(source), Command::Discover(_) | Command::Cycle(_)) => {
            return accounts::run(g, &cli.command, source).await;
        }
        (Some(AccountSource::Roles(roles)), Command::Apply(_)) if roles.len() == 1 => {
            options.assume_role = roles.into_iter().next();
        }
        (Some(_), _) => {
            return Err(Error::Config(
                "--role-arn and --org-role apply to discover and cycle, and to apply with one --role-arn".into(),
            ))
        }
    }
    let ctx = context(g, Arc::new(AwsSession::new(options)))?;
    match &cli.command {
        Command::Discover(_) | Command::Cycle(_) => Ok(in_account(g, &cli.command, ctx, true).await?.0),
        Command::Worker(_) => unreachable!("the worker returned above"),
        Command::Plan(args) => {
            let mut ctx = match &args.knowledge_base {
                Some(path) => ctx.with_knowledge_base(Arc::new(KnowledgeBase::open(path)?))?,
                None => ctx,
            };
            ctx.artefacts.put(WorldState::load(&args.world)?);
            let mut config = OptimizationConfig::default();
            config.guardrails.max_changes = args.max_changes;
            config.guardrails.deny_list.extend(args.deny.iter().cloned());
            config.guardrails.environment = match args.environment {
                EnvironmentArg::Production => Environment::Production,
                EnvironmentArg::Development => Environment::Development,
            };
            let cycle = one_pass()
                .with_phase(Arc::new(Planning::default()))
                .with_phase(Arc::new(Optimization::new(config)));
            Ok(run_cycle(&cycle, ctx, false, None, true).await?.0)
        }
        Command::Apply(args) => {
            let plan = ExecutionPlan::load(&args.plan)?;
            let d = &args.deploy;
            let deployment = deployment_phase(
                g,
                !d.dry_run,
                d.approve.as_deref(),
                d.backend,
                d.max_in_flight,
                Some(plan),
            );
            let cycle = one_pass().with_phase(Arc::new(deployment));
            Ok(run_cycle(&cycle, ctx, !d.dry_run, None, true).await?.0)
        }
        Command::Catalog(args) => {
            let paths = crate::catalog::offers::OfferPaths {
                ec2: args.ec2.clone(),
                rds: args.rds.clone(),
                s3: args.s3.clone(),
                savings_plans: args.savings_plans.clone(),
            };
            let catalog = crate::catalog::offers::build_from_files(&ctx.catalog, &paths)?;
            let path = g.out.join("catalog.json");
            let write = |path: &std::path::Path| -> std::io::Result<()> {
                std::fs::create_dir_all(&g.out)?;
                let text = serde_json::to_string_pretty(&catalog).map_err(std::io::Error::other)?;
                std::fs::write(path, text + "\n")
            };
            write(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            println!(
                "{}: {} EC2 types, {} RDS classes; {}",
                path.display(),
                catalog.ec2.len(),
                catalog.rds.len(),
                catalog.source
            );
            Ok(0)
        }
    }
}

/// Runs `discover` or `cycle` in the account of `ctx`'s session; returns the exit code and the
/// cycle's report. `print`: the summary goes to stdout (a multi-account run prints a table of
/// the accounts instead).
async fn in_account(g: &Global, command: &Command, ctx: CycleContext, print: bool) -> Result<(u8, CycleReport), Error> {
    let (cycle, ctx, applying) = match command {
        Command::Discover(args) => {
            let discovery = discovery_phase(g, &args.scan, ctx.progress.clone())?;
            (one_pass().with_phase(discovery), ctx, false)
        }
        Command::Cycle(args) => {
            let (cycle, ctx) = full_cycle(g, args, ctx)?;
            (cycle, ctx, args.apply)
        }
        _ => return Err(Error::Config("only discover and cycle run in many accounts".into())),
    };
    let recorder = Arc::new(RunRecorder::new());
    let cycle = cycle.with_hook(recorder.clone());
    run_cycle(&cycle, ctx, applying, Some(&recorder), print).await
}

/// A cycle of one iteration: for the subcommands that run single phases.
fn one_pass() -> Cycle {
    Cycle::new().with_stop_rules(vec![Arc::new(IterationLimit(1))])
}

/// How the CLI reaches AWS: profile, endpoint and request limits from the flags.
fn aws_options(g: &Global) -> Result<AwsOptions, Error> {
    Ok(AwsOptions {
        profile: g.profile.clone(),
        endpoint_url: g.endpoint_url.clone(),
        limits: limits(g)?,
        ..AwsOptions::default()
    })
}

/// The context of a command over `aws`: catalog, output folder and formats, progress.
fn context(g: &Global, aws: Arc<AwsSession>) -> Result<CycleContext, Error> {
    let catalog = match &g.catalog {
        Some(path) => PriceCatalog::load(path)?,
        None => PriceCatalog::built_in().clone(),
    };
    let formats = g
        .output_format
        .iter()
        .map(|f| match f {
            OutputFormat::Json => Format::Json,
            OutputFormat::Markdown => Format::Markdown,
            OutputFormat::Sarif => Format::Sarif,
            OutputFormat::Ocsf => Format::Ocsf,
            OutputFormat::Asff => Format::Asff,
            OutputFormat::Html => Format::Html,
        })
        .collect();
    let mut ctx = CycleContext::new(aws)
        .with_out_dir(&g.out)
        .with_catalog(Arc::new(catalog));
    ctx.output = ctx.output.with_formats(formats);
    if let Some(progress) = TerminalProgress::new(g.quiet) {
        ctx.progress = Arc::new(progress);
    }
    Ok(ctx)
}

/// One `--api-share`: for every bucket, or for one category.
#[derive(Debug, Clone)]
enum ApiShare {
    All(f64),
    Category(String, f64),
}

/// Parses `0.4` or `ec2.mutating=0.2`; a share outside (0, 1] or an unknown category is a usage
/// error.
fn parse_api_share(v: &str) -> Result<ApiShare, String> {
    let share = |s: &str| match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!("{s:?} is not a share in (0, 1]")),
    };
    match v.split_once('=') {
        None => share(v).map(ApiShare::All),
        Some((category, s)) => {
            let category = category.trim();
            if crate::aws::QuotaTable::documented().get(category).is_none() {
                return Err(format!("unknown quota category {category:?}"));
            }
            Ok(ApiShare::Category(category.to_owned(), share(s)?))
        }
    }
}

/// The request limits: the documented quotas, then the quota file, then `--api-share`.
fn limits(g: &Global) -> Result<LimitOptions, Error> {
    let mut limits = LimitOptions::default();
    if let Some(path) = &g.quota_file {
        limits = limits.with_quota_file(path).map_err(|e| Error::Config(e.to_string()))?;
    }
    for share in &g.api_share {
        match share {
            ApiShare::All(v) => limits.share = *v,
            ApiShare::Category(category, v) => {
                limits.shares.insert(category.clone(), *v);
            }
        }
    }
    Ok(limits)
}

/// A budget in USD: a finite number, not negative.
fn parse_budget(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(usd),
        _ => Err(format!("{text:?} is not an amount of USD (a number ≥ 0)")),
    }
}

fn full_cycle(g: &Global, args: &CycleArgs, ctx: CycleContext) -> Result<(Cycle, CycleContext), Error> {
    let discovery = discovery_phase(g, &args.scan, ctx.progress.clone())?;
    let reviewed = args.plan.as_ref().map(ExecutionPlan::load).transpose()?;
    let deployment = deployment_phase(
        g,
        args.apply,
        args.approve.as_deref(),
        args.backend,
        args.max_in_flight,
        reviewed,
    );
    let mut monitoring = Monitoring::new(MonitoringConfig {
        cost_budget_usd: args.cost_budget,
        ..MonitoringConfig::default()
    });
    if let Some(url) = &args.webhook {
        monitoring = monitoring.with_sink(Arc::new(WebhookSink::new(url)));
    }
    let mut cycle = Cycle::new()
        .with_phase(discovery)
        .with_phase(Arc::new(Planning::default()))
        .with_phase(Arc::new(Optimization::default()))
        .with_phase(Arc::new(deployment))
        .with_phase(Arc::new(monitoring))
        .with_phase(Arc::new(Learning::new(LearningConfig::default())))
        .with_max_iterations(args.max_iterations);
    for spec in &args.hooks {
        cycle = cycle.with_hook(Arc::new(CommandHook::parse(spec)?));
    }
    std::fs::create_dir_all(&g.out).map_err(|e| Error::io(&g.out, e))?;
    let kb_path = args
        .knowledge_base
        .clone()
        .unwrap_or_else(|| g.out.join("knowledge.redb"));
    let mut ctx = ctx.with_knowledge_base(Arc::new(KnowledgeBase::open(&kb_path)?))?;
    if let Some(file) = &args.clock_file {
        ctx.clock = Arc::new(FileClock::open(file)?);
    }
    Ok((cycle, ctx))
}

/// Runs `cycle`, writes the run report when `recorder` rode along, prints the summary (when
/// `print`), and maps the stop reason to an exit code.
async fn run_cycle(
    cycle: &Cycle,
    mut ctx: CycleContext,
    applying: bool,
    recorder: Option<&RunRecorder>,
    print: bool,
) -> Result<(u8, CycleReport), Error> {
    let started = std::time::Instant::now();
    let signals = wind_down_on_signal(ctx.interrupt.clone());
    let report = cycle.run(&mut ctx).await;
    signals.abort();
    if let Some(recorder) = recorder {
        recorder.write(&report, &mut ctx.output)?;
    }
    if print {
        summary::print(&ctx, &report, applying);
        println!("{} in {:.1}s", report.stop, started.elapsed().as_secs_f64());
    }
    let code = match &report.stop {
        StopReason::PhaseFailed { .. } | StopReason::HookFailed { .. } => 1,
        StopReason::Interrupted { .. } => EXIT_INTERRUPTED,
        _ if report.partial() => EXIT_PARTIAL,
        _ => 0,
    };
    Ok((code, report))
}

/// `worker`: runs until SIGTERM or Ctrl-C, then winds down (see [`crate::fleet::worker`]).
async fn worker(g: &Global, args: &WorkerArgs, options: AwsOptions) -> Result<u8, Error> {
    use crate::fleet::{Worker, WorkerConfig};
    if g.accounts.source().is_some() {
        return Err(Error::Config(
            "a worker takes its accounts from the requests, not from --role-arn or --org-role".into(),
        ));
    }
    let region = match g.regions.as_slice() {
        [region] => region.clone(),
        [] => AwsSession::new(options.clone())
            .default_region()
            .await
            .ok_or_else(|| Error::Config("no Region for the queue: give --region or set AWS_REGION".into()))?,
        _ => return Err(Error::Config("a worker takes one --region: the queue's".into())),
    };
    let mut config = WorkerConfig::new(&args.queue_url, &args.results_bucket, region);
    config.concurrency = args.concurrency.into();
    config.visibility_timeout = std::time::Duration::from_secs(args.visibility_timeout.into());
    config.wait_time = std::time::Duration::from_secs(args.wait_time.into());
    config.lookback_hours = args.lookback_days.saturating_mul(24);
    config.max_in_flight = args.max_in_flight.into();
    config.aws = options;
    if let Some(id) = &args.worker_id {
        crate::fleet::request::check_id(id).map_err(|why| Error::Config(format!("--worker-id {why}")))?;
        config.worker_id.clone_from(id);
    }
    let worker = Arc::new(Worker::new(config.clone()));
    let signals = wind_down_on_signal(worker.interrupt());
    if !g.quiet {
        eprintln!(
            "worker {} on {} ({} at a time); SIGTERM or Ctrl-C winds it down",
            config.worker_id, config.queue_url, config.concurrency
        );
    }
    let stats = worker.run().await;
    signals.abort();
    let stats = stats?;
    eprintln!(
        "worker {} stopped: {} message(s) received, {:?}",
        config.worker_id, stats.received, stats.handled
    );
    Ok(0)
}

/// Raises `interrupt` at the first SIGINT (Ctrl-C) or SIGTERM: the run starts no phase and
/// no θ4 step after it, and finishes the steps in flight. A second signal ends the process at
/// once, as a user pressing Ctrl-C twice expects.
fn wind_down_on_signal(interrupt: crate::cycle::Interrupt) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        eprintln!("winding down: the steps in flight finish, no new one starts (signal again to stop at once)");
        interrupt.raise();
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    })
}

/// The legacy scripts: `MIYABI_LEGACY_PATH`, else the `python/` folder of the source tree this
/// binary was built from (they are not installed with it).
fn legacy_dir() -> PathBuf {
    std::env::var_os("MIYABI_LEGACY_PATH").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python"),
        PathBuf::from,
    )
}

fn discovery_phase(g: &Global, scan: &ScanArgs, progress: SharedProgress) -> Result<Arc<dyn Phase>, Error> {
    let lookback_hours = scan.lookback_days.saturating_mul(24);
    if scan.previous_world.is_some() && scan.discovery != DiscoveryImpl::Rust {
        return Err(Error::Config(
            "--previous-world needs the Rust discovery (the legacy scripts always scan in full)".into(),
        ));
    }
    let bridge = |transport: Arc<dyn PhaseTransport>| -> Arc<dyn Phase> {
        Arc::new(PythonBridge::new(transport, g.regions.clone()).with_lookback_hours(lookback_hours))
    };
    Ok(match scan.discovery {
        DiscoveryImpl::Rust => {
            let config = DiscoveryConfig {
                regions: g.regions.clone(),
                lookback_hours,
                incremental: !scan.full_scan,
                ..DiscoveryConfig::default()
            };
            config.validate()?;
            let mut discovery = Discovery::new(config).with_progress(progress);
            if let Some(file) = &scan.previous_world {
                discovery = discovery.with_previous(Arc::new(WorldState::load(file)?));
            }
            Arc::new(discovery)
        }
        DiscoveryImpl::Python => bridge(Arc::new(
            SubprocessTransport::from_env(Script::legacy_rpc())?.with_python_path([legacy_dir()]),
        )),
    })
}

fn deployment_phase(
    g: &Global,
    apply: bool,
    approve: Option<&str>,
    backend: Backend,
    max_in_flight: u16,
    reviewed: Option<ExecutionPlan>,
) -> Deployment {
    let approval = match approve {
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
        mode: if apply { Mode::Apply } else { Mode::DryRun },
        approval,
        max_in_flight: max_in_flight.into(),
        ..DeploymentConfig::default()
    };
    let mut phase = Deployment::new(g.regions.clone()).with_config(config);
    if backend == Backend::Terraform {
        phase = phase.with_terraform(TerraformMode::default());
    }
    if let Some(plan) = reviewed {
        phase = phase.with_reviewed_plan(plan);
    }
    phase
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_flags_parse_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "miyabi-aws",
            "--out",
            "somewhere",
            "cycle",
            "--region",
            "us-east-1",
            "--region",
            "eu-west-1",
            "--output-format",
            "json",
            "--apply",
            "--approve",
            "all",
            "--hook-after",
            "deployment=true",
        ])
        .unwrap();
        assert_eq!(cli.global.regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(cli.global.out, PathBuf::from("somewhere"));
        assert_eq!(cli.global.output_format, [OutputFormat::Json]);
        let Command::Cycle(args) = cli.command else { panic!() };
        assert!(args.apply);
        assert_eq!(args.approve.as_deref(), Some("all"));
        assert_eq!(args.hooks, ["deployment=true"]);
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        let code = |args: &[&str]| {
            let e = Cli::try_parse_from(args).unwrap_err();
            e.exit_code()
        };
        assert_eq!(code(&["miyabi-aws", "cycle", "--no-such-flag"]), 2);
        assert_eq!(code(&["miyabi-aws", "--output-format", "yaml", "discover"]), 2);
        assert_eq!(code(&["miyabi-aws", "plan"]), 2, "plan needs --world");
        assert_eq!(code(&["miyabi-aws", "--help"]), 0);
        assert_eq!(code(&["miyabi-aws", "--api-share", "0", "discover"]), 2);
        assert_eq!(code(&["miyabi-aws", "cycle", "--max-in-flight", "0"]), 2);
        assert_eq!(code(&["miyabi-aws", "--api-share", "ec2.mutatin=0.2", "discover"]), 2);
        assert_eq!(
            code(&["miyabi-aws", "discover", "--full-scan", "--previous-world", "w.json"]),
            2,
            "a full scan builds on nothing"
        );
    }

    #[test]
    fn a_previous_world_is_read_for_the_rust_discovery_only() {
        let global = |args: &[&str]| Cli::try_parse_from(args).unwrap();
        let cli = global(&[
            "miyabi-aws",
            "discover",
            "--previous-world",
            "/nonexistent/world_state_3.json",
        ]);
        let Command::Discover(args) = &cli.command else {
            panic!()
        };
        let progress: SharedProgress = Arc::new(crate::progress::TracingProgress);
        let Err(err) = discovery_phase(&cli.global, &args.scan, progress.clone()) else {
            panic!("a missing world file is an error")
        };
        assert!(err.to_string().contains("world_state_3.json"), "{err}");
        let cli = global(&[
            "miyabi-aws",
            "cycle",
            "--discovery",
            "python",
            "--previous-world",
            "world_state_3.json",
        ]);
        let Command::Cycle(args) = &cli.command else { panic!() };
        let Err(err) = discovery_phase(&cli.global, &args.scan, progress) else {
            panic!("the legacy discovery cannot build on a world")
        };
        assert!(
            err.to_string().contains("--previous-world needs the Rust discovery"),
            "{err}"
        );
    }

    #[test]
    fn api_shares_apply_after_the_quota_file() {
        let dir = std::env::temp_dir().join(format!("miyabi-cli-quota-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("quotas.json");
        std::fs::write(&file, r#"{"share": 0.8, "shares": {"ec2.mutating": 0.1}}"#).unwrap();
        let cli = Cli::try_parse_from([
            "miyabi-aws",
            "--quota-file",
            file.to_str().unwrap(),
            "--api-share",
            "0.3",
            "--api-share",
            "cloudwatch.GetMetricData=1",
            "discover",
        ])
        .unwrap();
        let limits = limits(&cli.global).unwrap();
        assert!((limits.share_of("ec2.non-mutating") - 0.3).abs() < 1e-12);
        assert!(
            (limits.share_of("ec2.mutating") - 0.1).abs() < 1e-12,
            "the file's category share stays"
        );
        assert!((limits.share_of("cloudwatch.GetMetricData") - 1.0).abs() < 1e-12);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
