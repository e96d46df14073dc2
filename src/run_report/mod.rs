//! The run report: one self-contained HTML file per cycle run (`report.html`), for people.
//!
//! A [`RunRecorder`] rides along the cycle as a hook and keeps what the phases published: each
//! iteration's world state, and each deployment with the plan it ran. At the end, [`render`]
//! lays them out with a template (minijinja) and SVG charts (plotters): cost, score and
//! utilisation per iteration; cost by service; the failing findings by severity and check,
//! filterable; the changes applied and rolled back; and each right-sized instance's CPU with the
//! load projected onto its new type. The file needs no network when opened: styles, script and
//! charts are inline, and its content security policy forbids any fetch.
//!
//! [`render`]: RunRecorder::render

mod charts;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::Serialize;

pub use charts::ChartError;

use crate::catalog::PriceCatalog;
use crate::cycle::{CycleContext, CycleHook, CycleReport, PhaseId, PhaseOutcome};
use crate::output::Output;
use crate::phases::deployment::{DeploymentReport, StepOutcome};
use crate::plan::execution::ExecutionPlan;
use crate::plan::Action;
use crate::world::{FindingStatus, ResourceKind, Severity, WorldState};
use crate::Result;

/// The file name of the report.
pub const FILE_NAME: &str = "report.html";

/// Why the report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunReportError {
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// The template failed.
    #[error("the report template failed: {0}")]
    Template(String),
}

/// One applied right-sizing: the instance, its types, and its CPU series then.
#[derive(Debug, Clone)]
struct Resized {
    instance: String,
    region: String,
    from: String,
    to: String,
    hours: Vec<f64>,
    observed: Vec<f64>,
    projected: Vec<f64>,
}

#[derive(Debug, Default)]
struct Recorded {
    worlds: Vec<(u32, Arc<WorldState>)>,
    deployments: Vec<(u32, Arc<DeploymentReport>)>,
    resized: Vec<Resized>,
    /// θ3's latest purchase recommendations.
    purchases: Option<Arc<crate::purchase::PurchasePlan>>,
}

/// Keeps what a cycle run produced, for its report. Add it to a cycle with
/// [`crate::Cycle::with_hook`], run the cycle, then [`write`](Self::write) the report.
#[derive(Debug, Default)]
pub struct RunRecorder {
    recorded: Mutex<Recorded>,
}

#[async_trait]
impl CycleHook for RunRecorder {
    async fn after(&self, phase: PhaseId, _: &PhaseOutcome, ctx: &mut CycleContext) -> Result<()> {
        let iteration = ctx.iteration();
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        match phase {
            PhaseId::Discovery => {
                if let Some(world) = ctx.artefacts.get_shared::<WorldState>() {
                    recorded.worlds.retain(|(i, _)| *i != iteration);
                    recorded.worlds.push((iteration, world));
                }
            }
            PhaseId::Optimization => {
                if let Some(purchases) = ctx.artefacts.get_shared::<crate::purchase::PurchasePlan>() {
                    recorded.purchases = Some(purchases);
                }
            }
            PhaseId::Deployment => {
                if let Some(report) = ctx.artefacts.get_shared::<DeploymentReport>() {
                    let world = recorded.worlds.last().map(|(_, w)| Arc::clone(w));
                    if let (Some(plan), Some(world)) = (ctx.artefacts.get::<ExecutionPlan>(), world) {
                        let resized = resized(&report, plan, &world, &ctx.catalog);
                        recorded.resized.extend(resized);
                    }
                    recorded.deployments.push((iteration, report));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The instances `report` resized and kept, with their CPU in `world` and its projection.
fn resized(
    report: &DeploymentReport,
    plan: &ExecutionPlan,
    world: &WorldState,
    catalog: &PriceCatalog,
) -> Vec<Resized> {
    let series = world.inventory.series_index();
    report
        .steps
        .iter()
        .filter(|s| s.action == Action::ResizeInstance && matches!(s.outcome, StepOutcome::Applied))
        .filter_map(|s| {
            let step = plan.steps.iter().find(|p| p.id == s.id)?;
            let (from, to) = (step.change.current.as_str()?, step.change.desired.as_str()?);
            let ratio = f64::from(catalog.ec2_type(from).ok()?.vcpu) / f64::from(catalog.ec2_type(to).ok()?.vcpu);
            let cpu = series.get(&(s.resource.id.as_str(), "CPUUtilization"))?;
            let last = *cpu.timestamps.last()?;
            #[allow(clippy::cast_precision_loss)] // hours within a lookback
            let hours = cpu.timestamps.iter().map(|t| (t - last) as f64 / 3600.0).collect();
            Some(Resized {
                instance: s.resource.id.clone(),
                region: s.resource.region.clone(),
                from: from.to_owned(),
                to: to.to_owned(),
                hours,
                observed: cpu.values.clone(),
                projected: cpu.values.iter().map(|v| v * ratio).collect(),
            })
        })
        .collect()
}

impl RunRecorder {
    /// A recorder with nothing recorded.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the report of the run `report` ended as [`FILE_NAME`] in `output`, when it wants
    /// HTML. Returns the path, or `None`.
    ///
    /// # Errors
    /// [`crate::Error::Io`] when the file cannot be written, [`crate::Error::Report`] when it cannot be
    /// rendered.
    pub fn write(&self, report: &CycleReport, output: &mut Output) -> Result<Option<PathBuf>> {
        if !output.wants(FILE_NAME) {
            return Ok(None);
        }
        let html = self.render(report)?;
        output.write(FILE_NAME, html.as_bytes())
    }

    /// The report of the run `report` ended, as one HTML document.
    ///
    /// # Errors
    /// [`RunReportError`] when a chart or the template fails.
    pub fn render(&self, report: &CycleReport) -> std::result::Result<String, RunReportError> {
        let recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let page = Page::of(&recorded, report)?;
        let mut env = minijinja::Environment::new();
        env.add_template("report.html", include_str!("report.html"))
            .map_err(|e| RunReportError::Template(e.to_string()))?;
        env.get_template("report.html")
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&page))))
            .map_err(|e| RunReportError::Template(e.to_string()))
    }
}

#[derive(Serialize)]
struct Page {
    account: String,
    regions: Vec<String>,
    generated_at: String,
    stop: String,
    utilisation_known: bool,
    iterations: Vec<IterationRow>,
    charts: BTreeMap<&'static str, String>,
    services: Vec<ServiceRow>,
    checks: Vec<CheckRow>,
    severities: Vec<&'static str>,
    findings: Vec<FindingRow>,
    changes: Vec<ChangeRow>,
    resized: Vec<ResizedRow>,
    purchases: Option<PurchaseSummary>,
}

/// θ3's recommended purchases: recorded, never bought.
#[derive(Serialize)]
struct PurchaseSummary {
    rates: String,
    monthly_saving: String,
    /// The latest world's cost less the purchases' saving, as a change from World0.
    with_purchases: String,
    recommended: Vec<PurchaseRow>,
}

#[derive(Serialize)]
struct PurchaseRow {
    option: String,
    commitment_hourly: String,
    upfront: String,
    monthly_saving: String,
    coverage: String,
    break_even_months: String,
    approval: String,
}

#[derive(Serialize)]
struct IterationRow {
    index: u32,
    monthly_cost: String,
    score: String,
    utilisation: String,
    applied: String,
    gaps: usize,
}

#[derive(Serialize)]
struct ServiceRow {
    service: &'static str,
    first: String,
    latest: String,
    change: String,
}

#[derive(Serialize)]
struct CheckRow {
    check: String,
    severity: &'static str,
    failing: usize,
}

#[derive(Serialize)]
struct FindingRow {
    severity: &'static str,
    check: String,
    resource: String,
    region: String,
    message: String,
}

#[derive(Serialize)]
struct ChangeRow {
    iteration: u32,
    step: String,
    action: String,
    resource: String,
    region: String,
    status: &'static str,
    detail: String,
}

#[derive(Serialize)]
struct ResizedRow {
    instance: String,
    region: String,
    from: String,
    to: String,
    observed_peak: String,
    projected_peak: String,
    chart: String,
}

/// The service a resource's cost is billed under.
fn service(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Ec2Instance => "EC2 instances",
        ResourceKind::EbsVolume | ResourceKind::EbsSnapshot => "EBS",
        ResourceKind::ElasticIp => "Elastic IPs",
        ResourceKind::S3Bucket => "S3",
        ResourceKind::RdsInstance
        | ResourceKind::RdsCluster
        | ResourceKind::RdsSnapshot
        | ResourceKind::RdsEventSubscription => "RDS",
        ResourceKind::SecurityGroup | ResourceKind::NetworkAcl | ResourceKind::Account => "other",
    }
}

fn cost_by_service(world: &WorldState) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    for c in &world.assessment.costs {
        *out.entry(service(c.kind)).or_insert(0.0) += c.monthly_usd.unwrap_or(0.0);
    }
    out
}

fn peak(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

const SEVERITY_ORDER: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Informational,
];

/// The failing security findings of `world` (not the cost notices).
fn failing(world: &WorldState) -> Vec<&crate::world::Finding> {
    world
        .assessment
        .findings
        .iter()
        .filter(|f| f.status == FindingStatus::Fail && f.is_security())
        .collect()
}

impl Page {
    fn of(recorded: &Recorded, report: &CycleReport) -> std::result::Result<Self, RunReportError> {
        let worlds = &recorded.worlds;
        let latest = worlds.last().map(|(_, w)| &**w);
        let mut charts = BTreeMap::new();
        let per = |f: &dyn Fn(&WorldState) -> Option<f64>| -> Vec<(u32, f64)> {
            worlds.iter().filter_map(|(i, w)| Some((*i, f(w)?))).collect()
        };
        let cost = per(&|w| Some(w.assessment.monthly_total_usd));
        charts.insert("cost", charts::per_iteration("Monthly cost", "USD", &cost)?);
        let score = per(&|w| Some(w.assessment.security_score));
        charts.insert("score", charts::per_iteration("Security score", "score", &score)?);
        let utilisation = per(&|w| w.assessment.utilisation_percent);
        charts.insert(
            "utilisation",
            charts::per_iteration("Utilisation", "CPU %", &utilisation)?,
        );
        let services = services(worlds.first().map(|(_, w)| &**w), latest, &mut charts)?;
        let failing = latest.map(failing).unwrap_or_default();
        let by_severity: Vec<(String, f64)> = SEVERITY_ORDER
            .iter()
            .map(|s| {
                #[allow(clippy::cast_precision_loss)] // a count of findings
                let n = failing.iter().filter(|f| f.severity == *s).count() as f64;
                (s.name().to_owned(), n)
            })
            .collect();
        charts.insert(
            "severity",
            charts::bars("Failing findings", "findings", &by_severity, true)?,
        );
        let findings = finding_rows(&failing);
        Ok(Self {
            account: latest
                .and_then(|w| w.scope.account_id.clone())
                .unwrap_or_else(|| "unknown".into()),
            regions: latest.map(|w| w.scope.regions.clone()).unwrap_or_default(),
            generated_at: latest.map_or_else(String::new, |w| {
                w.scope.captured_at.format("%Y-%m-%d %H:%M UTC").to_string()
            }),
            stop: report.stop.to_string(),
            utilisation_known: !utilisation.is_empty(),
            iterations: iteration_rows(worlds, report),
            charts,
            services,
            checks: check_rows(&failing),
            severities: SEVERITY_ORDER
                .iter()
                .map(|s| s.name())
                .filter(|s| findings.iter().any(|f| f.severity == *s))
                .collect(),
            findings,
            changes: change_rows(&recorded.deployments),
            resized: resized_rows(&recorded.resized)?,
            purchases: recorded
                .purchases
                .as_deref()
                .map(|p| purchase_summary(p, worlds.first().map(|(_, w)| &**w), latest)),
        })
    }
}

fn purchase_summary(
    plan: &crate::purchase::PurchasePlan,
    first: Option<&WorldState>,
    latest: Option<&WorldState>,
) -> PurchaseSummary {
    let saving = plan.monthly_saving_usd();
    let with_purchases = match (first, latest) {
        (Some(w0), Some(w)) if w0.assessment.monthly_total_usd > 0.0 => {
            let before = w0.assessment.monthly_total_usd;
            let after = w.assessment.monthly_total_usd - saving;
            format!("{:.1}%", (after - before) / before * 100.0)
        }
        _ => "unknown".into(),
    };
    PurchaseSummary {
        rates: plan
            .rates
            .clone()
            .unwrap_or_else(|| "no commitment rates in the catalog".into()),
        monthly_saving: format!("{saving:.2}"),
        with_purchases,
        recommended: plan
            .recommended
            .iter()
            .map(|o| PurchaseRow {
                option: o.to_string(),
                commitment_hourly: format!("{:.4}", o.commitment_hourly_usd),
                upfront: format!("{:.2}", o.upfront_usd),
                monthly_saving: format!("{:.2}", o.monthly_saving_usd),
                coverage: format!("{:.1}%", o.coverage_percent),
                break_even_months: format!("{:.1}", o.break_even_months),
                approval: o.approval_reasons.join("; "),
            })
            .collect(),
    }
}

fn iteration_rows(worlds: &[(u32, Arc<WorldState>)], report: &CycleReport) -> Vec<IterationRow> {
    let applied: BTreeMap<u32, usize> = report
        .iterations
        .iter()
        .filter_map(|it| Some((it.index, it.applied_changes?)))
        .collect();
    worlds
        .iter()
        .map(|(i, w)| {
            let a = &w.assessment;
            IterationRow {
                index: *i,
                monthly_cost: format!("{:.2}", a.monthly_total_usd),
                score: format!("{:.1}", a.security_score),
                utilisation: a.utilisation_percent.map_or("–".into(), |u| format!("{u:.2}")),
                applied: applied.get(i).map_or("–".into(), ToString::to_string),
                gaps: match &w.scope.completeness {
                    crate::world::Completeness::Complete => 0,
                    crate::world::Completeness::Partial { gaps } => gaps.len(),
                },
            }
        })
        .collect()
}

/// The cost per service of World0 and the latest world; charts the latest.
fn services(
    first: Option<&WorldState>,
    latest: Option<&WorldState>,
    charts: &mut BTreeMap<&'static str, String>,
) -> std::result::Result<Vec<ServiceRow>, ChartError> {
    let first = first.map(cost_by_service).unwrap_or_default();
    let latest = latest.map(cost_by_service).unwrap_or_default();
    let bars: Vec<(String, f64)> = latest.iter().map(|(s, v)| ((*s).to_owned(), *v)).collect();
    charts.insert(
        "services",
        charts::bars("Cost by service", "USD / month", &bars, false)?,
    );
    let mut names: Vec<&'static str> = first.keys().chain(latest.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    Ok(names
        .iter()
        .map(|s| {
            let then = first.get(s).copied().unwrap_or(0.0);
            let now = latest.get(s).copied().unwrap_or(0.0);
            ServiceRow {
                service: s,
                first: format!("{then:.2}"),
                latest: format!("{now:.2}"),
                change: format!("{:.2}", now - then),
            }
        })
        .collect())
}

/// One row per check, at the highest severity it failed with (the instance port checks grade
/// their failures), most failing first.
fn check_rows(failing: &[&crate::world::Finding]) -> Vec<CheckRow> {
    let mut per_check: BTreeMap<&str, (Severity, usize)> = BTreeMap::new();
    for f in failing {
        let entry = per_check.entry(f.check_id.as_str()).or_insert((f.severity, 0));
        entry.0 = entry.0.max(f.severity);
        entry.1 += 1;
    }
    let mut checks: Vec<CheckRow> = per_check
        .into_iter()
        .map(|(c, (s, n))| CheckRow {
            check: c.to_owned(),
            severity: s.name(),
            failing: n,
        })
        .collect();
    checks.sort_by(|a, b| b.failing.cmp(&a.failing).then_with(|| a.check.cmp(&b.check)));
    checks
}

/// The failing findings, most severe first.
fn finding_rows(failing: &[&crate::world::Finding]) -> Vec<FindingRow> {
    let mut rows: Vec<FindingRow> = failing
        .iter()
        .map(|f| FindingRow {
            severity: f.severity.name(),
            check: f.check_id.clone(),
            resource: f.resource_id.clone(),
            region: f.region.clone(),
            message: f.message.clone(),
        })
        .collect();
    rows.sort_by_key(|f| SEVERITY_ORDER.iter().position(|s| s.name() == f.severity));
    rows
}

/// The steps that changed something or tried to: applied, rolled back, failed or refused
/// (recovered steps of an interrupted apply included).
fn change_rows(deployments: &[(u32, Arc<DeploymentReport>)]) -> Vec<ChangeRow> {
    deployments
        .iter()
        .flat_map(|(i, d)| d.recovered.iter().chain(&d.steps).map(move |s| (*i, s)))
        .filter_map(|(i, s)| {
            let detail = match &s.outcome {
                StepOutcome::Applied | StepOutcome::AlreadyApplied => String::new(),
                StepOutcome::RolledBack { reason: why }
                | StepOutcome::Failed { error: why }
                | StepOutcome::Refused { reason: why } => why.clone(),
                _ => return None,
            };
            Some(ChangeRow {
                iteration: i,
                step: s.id.clone(),
                action: format!("{:?}", s.action),
                resource: s.resource.id.clone(),
                region: s.resource.region.clone(),
                status: s.outcome.status(),
                detail,
            })
        })
        .collect()
}

fn resized_rows(resized: &[Resized]) -> std::result::Result<Vec<ResizedRow>, ChartError> {
    resized
        .iter()
        .map(|r| {
            Ok(ResizedRow {
                instance: r.instance.clone(),
                region: r.region.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
                observed_peak: format!("{:.1}", peak(&r.observed)),
                projected_peak: format!("{:.1}", peak(&r.projected)),
                chart: charts::cpu(&r.instance, &r.hours, &r.observed, &r.projected, &r.to)?,
            })
        })
        .collect()
}
