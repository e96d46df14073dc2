//! θ3 Optimization: the changes that follow from metrics (right-sizing, idle instances, RDS
//! classes), then allocation of every θ2 and θ3 change into the execution plan under the
//! guardrails.

pub mod rightsizing;

use std::collections::BTreeSet;

use async_trait::async_trait;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::rightsizing::{idle_days, percentile, Recommendation, Rightsizer, RightsizingConfig, RightsizingFinding};
use crate::artefact::Artefact;
use crate::assessment::{ResourceKind, Severity};
use crate::catalog::PriceCatalog;
use crate::cycle::{CycleContext, Phase, PhaseId, PhaseOutcome};
use crate::guardrails::Guardrails;
use crate::knowledge::{ChangeTimes, LearnedHeadroom};
use crate::plan::execution::{allocate, hold_partial, ExecutionPlan};
use crate::plan::{Action, Change, InventoryIndex, Plan, ResourceRef, Risk};
use crate::world::{Ec2Instance, SeriesIndex, WorldState};
use crate::Result;

/// Settings of θ3.
#[derive(Debug, Clone, Default)]
pub struct OptimizationConfig {
    /// Right-sizing and idle rules.
    pub rightsizing: RightsizingConfig,
    /// Guardrails of the allocation.
    pub guardrails: Guardrails,
    /// Purchase recommendations on the estate the plan leaves.
    pub purchases: crate::purchase::PurchaseConfig,
}

/// The right-sizing verdict on one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRecommendation {
    /// The instance or DB instance.
    pub resource: ResourceRef,
    /// The verdict.
    pub recommendation: Recommendation,
}

/// θ3's right-sizing verdicts of an iteration, as an artefact of the cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Recommendations(pub Vec<ResourceRecommendation>);

impl Artefact for Recommendations {
    const WHAT: &'static str = "the right-sizing recommendations (θ3)";
}

/// What θ3 produced.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizationOutput {
    /// A verdict for every running instance and available DB instance.
    pub recommendations: Vec<ResourceRecommendation>,
    /// θ3's own changes (resizes, stops).
    pub changes: Vec<Change>,
    /// Every change of θ2 and θ3, allocated.
    pub execution_plan: ExecutionPlan,
}

/// A DB instance's maximum connections, after MySQL's default: class memory in bytes divided by
/// 9,531,392.
fn max_connections(memory_gib: f64) -> f64 {
    memory_gib * 1024.0 * 1024.0 * 1024.0 / 9_531_392.0
}

/// θ3 over a world state and θ2's plan.
#[must_use]
pub fn optimize(
    world: &WorldState,
    plan: &Plan,
    catalog: &PriceCatalog,
    config: &OptimizationConfig,
) -> OptimizationOutput {
    let inv = &world.inventory;
    let series = inv.series_index();
    let resources = inv.index();
    let leaving: BTreeSet<&str> = plan
        .changes()
        .filter(|c| c.is_destructive())
        .map(|c| c.resource.id.as_str())
        .collect();
    let rs = &config.rightsizing;
    let rightsizer = Rightsizer::new(catalog, rs);
    // Each instance is judged on its own series alone, so the estate is split across cores.
    let running: Vec<&Ec2Instance> = inv
        .instances
        .iter()
        .filter(|i| i.state == "running" && !leaving.contains(i.id.as_str()))
        .collect();
    let judged: Vec<(ResourceRecommendation, Option<Change>)> = running
        .par_iter()
        .map(|i| judge_instance(i, &series, &rightsizer, &resources, catalog, rs))
        .collect();
    let mut recommendations = Vec::with_capacity(judged.len());
    let mut changes = Vec::new();
    for (rec, change) in judged {
        recommendations.push(rec);
        changes.extend(change);
    }
    for d in inv.db_instances.iter().filter(|d| d.status == "available") {
        let resource = ResourceRef {
            kind: ResourceKind::RdsInstance,
            id: d.id.clone(),
            region: d.region.clone(),
        };
        let rec = rightsize_db(
            &d.class,
            series.get(&(d.id.as_str(), "CPUUtilization")).copied(),
            series.get(&(d.id.as_str(), "DatabaseConnections")).copied(),
            catalog,
            rs,
        );
        if let Some(target) = &rec.target_type {
            let change = Change::new(
                Action::ResizeDbInstance,
                resource.clone(),
                "class",
                json!(d.class),
                json!(target),
                "compute_optimizer_rds_rightsizing",
                format!("{:?}: {}", rec.finding, rec.evidence),
                Risk::High,
            );
            let usd = change.saving_on(&resources, catalog);
            changes.push(change.with_saving(usd));
        }
        recommendations.push(ResourceRecommendation {
            resource,
            recommendation: rec,
        });
    }
    let severities: std::collections::HashMap<&str, Severity, foldhash::fast::RandomState> = world
        .assessment
        .findings
        .iter()
        .map(|f| (f.check_id.as_str(), f.severity))
        .collect();
    let severity = |check: &str| severities.get(check).copied();
    let all: Vec<Change> = plan.changes().cloned().chain(changes.iter().cloned()).collect();
    // θ2 may be another implementation than ours: the hold is checked on every change here.
    let (all, held) = hold_partial(all, &world.coverage());
    let mut execution_plan = allocate(all, &config.guardrails, severity);
    execution_plan.excluded.extend(plan.held.iter().cloned().chain(held));
    OptimizationOutput {
        recommendations,
        changes,
        execution_plan,
    }
}

/// Purchase recommendations on the estate `plan` leaves. `world` keeps its series whole (not cut
/// at recent changes): the baseline is which resources ran each hour, whatever changed since.
#[must_use]
pub fn purchases(
    world: &WorldState,
    plan: &ExecutionPlan,
    catalog: &PriceCatalog,
    config: &crate::purchase::PurchaseConfig,
) -> crate::purchase::PurchasePlan {
    crate::purchase::recommend(&plan.project(&world.inventory, |_| true), catalog, config)
}

/// Right-sizing and the idle rule on one running instance: its verdict and the change it calls
/// for, if any.
fn judge_instance(
    i: &Ec2Instance,
    series: &SeriesIndex<'_>,
    rightsizer: &Rightsizer<'_>,
    resources: &InventoryIndex<'_>,
    catalog: &PriceCatalog,
    rs: &RightsizingConfig,
) -> (ResourceRecommendation, Option<Change>) {
    let resource = ResourceRef {
        kind: ResourceKind::Ec2Instance,
        id: i.id.clone(),
        region: i.region.clone(),
    };
    let cpu = series.get(&(i.id.as_str(), "CPUUtilization")).copied();
    let memory = series.get(&(i.id.as_str(), "mem_used_percent")).copied();
    let mut rec = rightsizer.rightsize(&i.instance_type, cpu, memory);
    let network: Vec<_> = ["NetworkIn", "NetworkOut"]
        .iter()
        .filter_map(|m| series.get(&(i.id.as_str(), *m)).copied())
        .collect();
    // Without both network series the rule cannot be judged, so nothing is called idle.
    let idle = match cpu {
        Some(cpu) if rec.finding != RightsizingFinding::InsufficientData && network.len() == 2 => {
            idle_days(cpu, &network, rs)
        }
        _ => 0,
    };
    let change = if idle >= rs.idle_days {
        rec.finding = RightsizingFinding::Idle;
        rec.target_type = None;
        rec.evidence = format!(
            "daily CPU ≤ {}% and network ≤ {:.0} MB on {idle} of the last 14 days",
            rs.idle_cpu_percent,
            rs.idle_network_bytes / 1024.0 / 1024.0
        );
        Some(Change::new(
            Action::StopInstance,
            resource.clone(),
            "state",
            json!("running"),
            json!("stopped"),
            "trusted_advisor_low_utilization_ec2",
            rec.evidence.clone(),
            Risk::Medium,
        ))
    } else {
        rec.target_type.as_ref().map(|target| {
            let risk = if rec.finding == RightsizingFinding::Underprovisioned {
                Risk::Medium
            } else {
                Risk::High
            };
            Change::new(
                Action::ResizeInstance,
                resource.clone(),
                "instance_type",
                json!(i.instance_type),
                json!(target),
                "compute_optimizer_rightsizing",
                format!("{:?}: {}", rec.finding, rec.evidence),
                risk,
            )
        })
    };
    let change = change.map(|c| {
        let usd = c.saving_on(resources, catalog);
        c.with_saving(usd)
    });
    (
        ResourceRecommendation {
            resource,
            recommendation: rec,
        },
        change,
    )
}

/// RDS right-sizing from CPU (projected by vCPU, as for EC2) and connections (the P-threshold
/// of `DatabaseConnections` must stay under the target class's maximum less headroom), within
/// the class family. No connection at all over the last 7 days is Idle.
#[must_use]
pub fn rightsize_db(
    class: &str,
    cpu: Option<&crate::world::MetricSeries>,
    connections: Option<&crate::world::MetricSeries>,
    catalog: &PriceCatalog,
    config: &RightsizingConfig,
) -> Recommendation {
    let mut rec = Recommendation::insufficient_data(class);
    let Ok(spec) = catalog.rds_class(class) else {
        rec.evidence = format!("{class} is not in the price catalog");
        return rec;
    };
    let (Some(cpu), Some(connections)) = (cpu, connections) else {
        rec.evidence = "no CPU or connection series".into();
        return rec;
    };
    rec.hours = cpu.values.len();
    if cpu.values.len() < config.min_hours {
        rec.evidence = format!("{} h of CPU data; {} h needed", cpu.values.len(), config.min_hours);
        return rec;
    }
    let last_week = connections.values.len().saturating_sub(7 * 24);
    if connections.values[last_week..].iter().all(|&c| c <= 0.0) {
        rec.finding = RightsizingFinding::Idle;
        rec.evidence = "no connection in the last 7 days".into();
        return rec;
    }
    let (Some(threshold), Some(peak_connections)) = (
        percentile(&cpu.values, config.percentile),
        percentile(&connections.values, config.percentile),
    ) else {
        return rec;
    };
    rec.cpu_threshold = Some(threshold);
    let limit = 100.0 - config.headroom_percent;
    let family = class.rsplit_once('.').map_or(class, |(f, _)| f);
    rec.searched_families = vec![family.to_owned()];
    let mut list: Vec<_> = catalog
        .rds
        .iter()
        .filter(|(c, _)| c.rsplit_once('.').map_or(c.as_str(), |(f, _)| f) == family)
        .collect();
    list.sort_by(|a, b| a.1.hourly_usd.total_cmp(&b.1.hourly_usd).then(a.0.cmp(b.0)));
    let fit = list.into_iter().find_map(|(c, s)| {
        let projected = threshold * f64::from(spec.vcpu) / f64::from(s.vcpu);
        let conns_ok = peak_connections <= max_connections(s.memory_gib) * limit / 100.0;
        (projected <= limit && conns_ok).then_some((c, s, projected))
    });
    let Some((target, target_spec, projected)) = fit else {
        rec.finding = RightsizingFinding::Underprovisioned;
        rec.evidence = format!("P{} CPU {threshold:.1}%; no {family} class fits", config.percentile);
        return rec;
    };
    rec.projected_cpu = Some(projected);
    let evidence = format!(
        "P{} CPU {threshold:.1}% and P{} connections {peak_connections:.0}; {projected:.1}% projected on {target}",
        config.percentile, config.percentile
    );
    if target == class || target_spec.hourly_usd >= spec.hourly_usd && threshold <= limit {
        rec.finding = RightsizingFinding::Optimized;
    } else {
        rec.finding = if threshold <= limit {
            RightsizingFinding::Overprovisioned
        } else {
            RightsizingFinding::Underprovisioned
        };
        rec.target_type = Some(target.clone());
    }
    rec.evidence = evidence;
    rec
}

/// θ3 as a phase: optimises from θ2's plan, adds its changes to the plan (rendering the plan
/// reports again), writes `execution_plan.json`, and counts the steps that may run without
/// approval for the convergence rule.
#[derive(Debug, Clone, Default)]
pub struct Optimization {
    config: OptimizationConfig,
}

impl Optimization {
    /// Optimization with `config`.
    #[must_use]
    pub fn new(config: OptimizationConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Phase for Optimization {
    fn id(&self) -> PhaseId {
        PhaseId::Optimization
    }

    fn name(&self) -> String {
        "optimization (rust)".into()
    }

    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let world = ctx.artefacts.require::<WorldState>("optimization")?;
        let plan = ctx.artefacts.require::<Plan>("optimization")?;
        // What θ6 learned overrides the configured headroom of those families.
        let mut config = self.config.clone();
        if let Some(learned) = ctx.artefacts.get::<LearnedHeadroom>() {
            config
                .rightsizing
                .family_headroom_percent
                .extend(learned.0.iter().map(|(f, h)| (f.clone(), *h)));
        }
        config
            .rightsizing
            .validate()
            .map_err(|e| crate::Error::Config(format!("optimization: {e}")))?;
        // A resource θ4 changed is judged on its datapoints since the change alone.
        let out = match ctx.artefacts.get::<ChangeTimes>() {
            Some(times) => optimize(&world.since_changes(&times.0), plan, &ctx.catalog, &config),
            None => optimize(world, plan, &ctx.catalog, &config),
        };
        let purchases = purchases(world, &out.execution_plan, &ctx.catalog, &config.purchases);
        // The plan of the iteration now holds θ3's changes too; its reports are rendered again,
        // with the IaC of the execution plan's target state.
        let mut plan = plan.clone();
        plan.cost.extend(out.changes.iter().cloned());
        ctx.artefacts.put(purchases);
        super::planning::write_plan(ctx, &plan, out.execution_plan.steps.iter().map(|s| &s.change))?;
        ctx.output
            .write("execution_plan.json", out.execution_plan.to_json().as_bytes())?;
        let applicable = out.execution_plan.steps.iter().filter(|s| !s.needs_approval).count();
        ctx.artefacts.put(out.execution_plan);
        ctx.artefacts.put(plan);
        ctx.artefacts.put(Recommendations(out.recommendations));
        Ok(PhaseOutcome::planned(applicable))
    }
}
