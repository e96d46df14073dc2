//! θ6 Learning: what the changes did, and what the next plan should do differently.
//!
//! - [`compare`] sets World n against World n+1: monthly cost, security score, utilisation.
//! - [`judge`] turns θ4's applied steps into [`Outcome`]s on the newer world: a right-sized
//!   instance whose CPU threshold now exceeds the alarm threshold has *breached*.
//! - [`adapt`] gives each instance family with a breach more headroom, which θ3 reads through
//!   [`RightsizingConfig::family_headroom_percent`], so the next plan sizes that family larger.
//! - [`anomalies`] flags datapoints far from their series' median, by the modified z-score of
//!   Iglewicz and Hoaglin (median and MAD: a spike cannot hide itself by inflating the spread).
//! - Outcomes and learned headroom persist in the [`KnowledgeBase`].

pub mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cycle::{CycleContext, Phase, PhaseId, PhaseOutcome};
use crate::knowledge::{ChangeTimes, LearnedHeadroom};
pub use crate::knowledge::{KnowledgeBase, KnowledgeError, Outcome, Verdict};
use crate::phases::deployment::{DeploymentReport, StepOutcome};
use crate::phases::optimization::rightsizing::{percentile, RightsizingConfig};
use crate::plan::execution::ExecutionPlan;
use crate::plan::Action;
use crate::world::{Inventory, MetricSeries, WorldState};
use crate::Result;

/// Settings of θ6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LearningConfig {
    /// The CPU alarm threshold, percent (θ5's default alarm).
    pub cpu_alarm_percent: f64,
    /// Headroom added to a family per iteration with a breach, percentage points.
    pub headroom_step_percent: f64,
    /// Headroom never grows past this, percent.
    pub max_headroom_percent: f64,
    /// |modified z| above this is an anomaly (3.5 after Iglewicz and Hoaglin).
    pub anomaly_threshold: f64,
    /// Where the knowledge base lives; `None` keeps nothing across runs.
    pub knowledge_base: Option<PathBuf>,
}

impl Default for LearningConfig {
    fn default() -> Self {
        Self {
            cpu_alarm_percent: 80.0,
            headroom_step_percent: 10.0,
            max_headroom_percent: 50.0,
            anomaly_threshold: 3.5,
            knowledge_base: None,
        }
    }
}

/// World n against World n+1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorldDelta {
    /// Monthly cost before, USD.
    pub cost_before: f64,
    /// Monthly cost after, USD.
    pub cost_after: f64,
    /// Security score before.
    pub score_before: f64,
    /// Security score after.
    pub score_after: f64,
    /// Utilisation before, percent.
    pub utilisation_before: Option<f64>,
    /// Utilisation after, percent.
    pub utilisation_after: Option<f64>,
}

/// Compares two assessed worlds.
#[must_use]
pub fn compare(before: &WorldState, after: &WorldState) -> WorldDelta {
    let (a, b) = (&before.assessment, &after.assessment);
    WorldDelta {
        cost_before: a.monthly_total_usd,
        cost_after: b.monthly_total_usd,
        score_before: a.security_score,
        score_after: b.security_score,
        utilisation_before: a.utilisation_percent,
        utilisation_after: b.utilisation_percent,
    }
}

/// A datapoint far from its series' median.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Anomaly {
    /// The resource.
    pub resource_id: String,
    /// The metric.
    pub metric_name: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The value.
    pub value: f64,
    /// Its modified z-score, 0.6745 · (value − median) / MAD.
    pub modified_z: f64,
}

/// The anomalies of one series: points whose modified z-score exceeds `threshold` in absolute
/// value. A series whose MAD is zero (over half its points equal) has none: no robust spread to
/// judge by.
#[must_use]
pub fn anomalies(series: &MetricSeries, threshold: f64) -> Vec<Anomaly> {
    let Some(median) = percentile(&series.values, 50.0) else {
        return Vec::new();
    };
    let deviations: Vec<f64> = series.values.iter().map(|v| (v - median).abs()).collect();
    let Some(mad) = percentile(&deviations, 50.0).filter(|m| *m > 0.0) else {
        return Vec::new();
    };
    series
        .timestamps
        .iter()
        .zip(&series.values)
        .filter_map(|(&timestamp, &value)| {
            let modified_z = 0.6745 * (value - median) / mad;
            (modified_z.abs() > threshold).then(|| Anomaly {
                resource_id: series.resource_id.clone(),
                metric_name: series.metric_name.clone(),
                timestamp,
                value,
                modified_z,
            })
        })
        .collect()
}

/// The anomalies of every series of an inventory.
#[must_use]
pub fn detect_anomalies(inventory: &Inventory, threshold: f64) -> Vec<Anomaly> {
    inventory.metrics.iter().flat_map(|s| anomalies(s, threshold)).collect()
}

/// The outcomes of the steps θ4 applied or rolled back, judged on the newer world `after`.
#[must_use]
pub fn judge(
    iteration: u32,
    plan: &ExecutionPlan,
    report: &DeploymentReport,
    after: &WorldState,
    config: &LearningConfig,
) -> Vec<Outcome> {
    let series = after.inventory.series_index();
    // A changed resource is judged on its datapoints since the apply alone.
    let since = report.applied_at.map_or(i64::MIN, |t| t.timestamp());
    report
        .steps
        .iter()
        .zip(&plan.steps)
        .filter_map(|(record, step)| {
            let rolled_back = matches!(record.outcome, StepOutcome::RolledBack { .. });
            if record.outcome != StepOutcome::Applied && !rolled_back {
                return None;
            }
            let cpu_after = series
                .get(&(step.change.resource.id.as_str(), "CPUUtilization"))
                .and_then(|s| {
                    let first = s.timestamps.partition_point(|&t| t < since);
                    percentile(&s.values[first.min(s.values.len())..], 99.5)
                });
            let verdict = if rolled_back {
                Verdict::RolledBack
            } else if step.change.action == Action::ResizeInstance
                && cpu_after.is_some_and(|c| c > config.cpu_alarm_percent)
            {
                Verdict::Breached
            } else {
                Verdict::Held
            };
            Some(Outcome {
                iteration,
                change_id: step.id.clone(),
                action: step.change.action,
                resource: step.change.resource.clone(),
                desired: step.change.desired.clone(),
                estimated_saving_usd: step.change.monthly_saving_usd,
                cpu_after,
                verdict,
            })
        })
        .collect()
}

/// The headroom per family after `outcomes`: each family a breached resize moved into gets one
/// step more than it had (starting from `base`), up to the maximum.
#[must_use]
pub fn adapt(
    outcomes: &[Outcome],
    learned: &BTreeMap<String, f64>,
    base: &RightsizingConfig,
    config: &LearningConfig,
) -> BTreeMap<String, f64> {
    let mut headroom = learned.clone();
    let breached: std::collections::BTreeSet<String> = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Breached)
        .filter_map(|o| {
            o.desired
                .as_str()
                .and_then(|t| t.split_once('.'))
                .map(|(f, _)| f.to_owned())
        })
        .collect();
    for family in breached {
        let now = headroom.get(&family).copied().unwrap_or(base.headroom_percent);
        headroom.insert(
            family,
            (now + config.headroom_step_percent).min(config.max_headroom_percent),
        );
    }
    headroom
}

/// What θ6 learned in one iteration, written as `learning_report.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LearningReport {
    /// World n against World n+1, when both exist.
    pub delta: Option<WorldDelta>,
    /// The outcomes judged this iteration.
    pub outcomes: Vec<Outcome>,
    /// Headroom per family for the next plan, percent.
    pub headroom: BTreeMap<String, f64>,
    /// Anomalies in the newer world's series.
    pub anomalies: Vec<Anomaly>,
    /// What the next iteration should do, in words.
    pub recommendations: Vec<String>,
}

/// θ6 as a cycle phase. It compares the world this iteration's θ1 captured with the previous
/// iteration's, judges the previous iteration's deployment on it, records the outcomes and the
/// adapted headroom in the knowledge base, and leaves the headroom in the context for θ3.
#[derive(Debug, Clone, Default)]
pub struct Learning {
    config: LearningConfig,
}

impl Learning {
    /// θ6 with `config`.
    #[must_use]
    pub fn new(config: LearningConfig) -> Self {
        Self { config }
    }

    /// What θ6 concludes from one iteration, without side effects. `last_changes` (resource
    /// id → Unix seconds) limits the anomaly search of changed resources to their datapoints
    /// since the change.
    #[must_use]
    #[allow(clippy::too_many_arguments)] // each is one input of the judgement; a struct would only rename them
    pub fn learn(
        &self,
        iteration: u32,
        before: Option<&WorldState>,
        after: &WorldState,
        applied: Option<(&ExecutionPlan, &DeploymentReport)>,
        learned: &BTreeMap<String, f64>,
        base: &RightsizingConfig,
        last_changes: &BTreeMap<String, i64>,
    ) -> LearningReport {
        let outcomes = applied
            .map(|(plan, report)| judge(iteration, plan, report, after, &self.config))
            .unwrap_or_default();
        let headroom = adapt(&outcomes, learned, base, &self.config);
        let mut recommendations: Vec<String> = headroom
            .iter()
            .filter(|(f, h)| learned.get(*f) != Some(*h))
            .map(|(f, h)| {
                format!(
                    "size {f} with {h:.0}% headroom: a right-sized {f} instance breached {:.0}% CPU",
                    self.config.cpu_alarm_percent
                )
            })
            .collect();
        // A resize shifts a series' level; only the datapoints since the last change say what
        // is normal for the resource now.
        let anomalies = detect_anomalies(
            &after.inventory.since_changes(last_changes),
            self.config.anomaly_threshold,
        );
        if !anomalies.is_empty() {
            let resources: std::collections::BTreeSet<&str> =
                anomalies.iter().map(|a| a.resource_id.as_str()).collect();
            recommendations.push(format!(
                "look at {} resource(s) with anomalous datapoints before resizing them",
                resources.len()
            ));
        }
        LearningReport {
            delta: before.map(|b| compare(b, after)),
            outcomes,
            headroom,
            anomalies,
            recommendations,
        }
    }
}

#[async_trait]
impl Phase for Learning {
    fn id(&self) -> PhaseId {
        PhaseId::Learning
    }

    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let after = ctx.artefacts.require::<WorldState>("learning")?;
        // The context's knowledge base if the cycle shares one, else this phase's own.
        let kb = match (&ctx.knowledge, &self.config.knowledge_base) {
            (Some(shared), _) => Some(shared.clone()),
            (None, Some(path)) => Some(std::sync::Arc::new(KnowledgeBase::open(path)?)),
            (None, None) => None,
        };
        let learned = match &kb {
            Some(kb) => kb.headroom()?,
            None => ctx
                .artefacts
                .get::<LearnedHeadroom>()
                .map(|h| h.0.clone())
                .unwrap_or_default(),
        };
        // θ6 judges what the previous iteration deployed, on the world this one captured.
        let applied = ctx
            .artefacts
            .previous::<ExecutionPlan>()
            .zip(ctx.artefacts.previous::<DeploymentReport>());
        let no_changes = BTreeMap::new();
        let report = self.learn(
            ctx.iteration(),
            ctx.artefacts.previous::<WorldState>(),
            after,
            applied,
            &learned,
            &RightsizingConfig::default(),
            ctx.artefacts.get::<ChangeTimes>().map_or(&no_changes, |t| &t.0),
        );
        if let Some(kb) = &kb {
            kb.record(&report.outcomes)?;
            kb.set_headroom(&report.headroom)?;
        }
        ctx.output
            .write("learning_report.md", report::render(&report).as_bytes())?;
        ctx.artefacts.put(LearnedHeadroom(report.headroom.clone()));
        ctx.artefacts.put(report);
        Ok(PhaseOutcome::nothing())
    }
}

impl crate::artefact::Artefact for LearningReport {
    const WHAT: &'static str = "a learning report (θ6)";
}
