//! The [`Phase`] trait and the [`Cycle`] runner.
//!
//! A cycle holds six θ slots. Each iteration runs the phases present, in order, on one shared
//! [`CycleContext`], and records each phase's timing and error. The loop stops when the rule of
//! convergence holds (no applicable change remains in the plan), when θ4 applied nothing (a dry
//! run, or every step refused or rolled back: another pass would plan the same), at
//! `max_iterations`, or when a phase fails; the [`CycleReport`] says which.
//!
//! [`CycleHook`]s run after a given phase; a test or demo harness uses one to publish the
//! metrics a changed estate would produce and to move the [`Clock`](crate::clock::Clock) on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

use crate::catalog::PriceCatalog;
use crate::clock::{Clock, SystemClock};
use crate::phases::learning::KnowledgeBase;
use crate::progress::{SharedProgress, TracingProgress};
use crate::world::WorldState;
use crate::{Error, Result};

/// The six phases of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseId {
    /// θ1: understand the estate as a world state.
    Discovery,
    /// θ2: plan cost and security changes, rendered as `IaC`.
    Planning,
    /// θ3: right-size and allocate.
    Optimization,
    /// θ4: execute safely, with rollback.
    Deployment,
    /// θ5: watch through CloudWatch.
    Monitoring,
    /// θ6: learn from the outcome.
    Learning,
}

impl PhaseId {
    /// All phases in loop order.
    pub const ALL: [Self; 6] = [
        Self::Discovery,
        Self::Planning,
        Self::Optimization,
        Self::Deployment,
        Self::Monitoring,
        Self::Learning,
    ];

    /// θ number, 1–6.
    #[must_use]
    pub fn theta(self) -> u8 {
        match self {
            Self::Discovery => 1,
            Self::Planning => 2,
            Self::Optimization => 3,
            Self::Deployment => 4,
            Self::Monitoring => 5,
            Self::Learning => 6,
        }
    }

    /// Lower-case name, for example `discovery`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Planning => "planning",
            Self::Optimization => "optimization",
            Self::Deployment => "deployment",
            Self::Monitoring => "monitoring",
            Self::Learning => "learning",
        }
    }

    fn slot(self) -> usize {
        usize::from(self.theta() - 1)
    }
}

impl std::fmt::Display for PhaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "θ{} {}", self.theta(), self.name())
    }
}

/// One phase of the loop. Object-safe, so that a cycle holds `Arc<dyn Phase>` and a phase
/// written in Python (through the bridge) fits the same slot as a Rust one.
#[async_trait]
pub trait Phase: Send + Sync {
    /// Which θ slot the phase fills.
    fn id(&self) -> PhaseId;

    /// A name for reports, for example `discovery (rust)`.
    fn name(&self) -> String {
        self.id().name().to_owned()
    }

    /// Reads and extends the shared context.
    ///
    /// # Errors
    /// Whatever stops the phase; the cycle records it and stops.
    async fn run(&self, ctx: &mut CycleContext) -> Result<()>;
}

/// The state shared by the phases of a cycle. Each phase reads it and extends it.
pub struct CycleContext {
    /// Iteration number, 0-based.
    pub iteration: u32,
    /// The latest world state.
    pub world: Option<WorldState>,
    /// The first world state of the run, for the targets.
    pub world0: Option<WorldState>,
    /// Changes in the current plan that may be applied (approved, or needing no approval).
    /// Planning phases set it; with none present it stays 0 and the loop converges.
    pub applicable_changes: usize,
    /// θ2's plan of the current iteration.
    pub plan: Option<crate::plan::Plan>,
    /// θ3's right-sizing verdicts of the current iteration.
    pub recommendations: Vec<crate::phases::optimization::ResourceRecommendation>,
    /// θ3's execution plan of the current iteration.
    pub execution_plan: Option<crate::plan::execution::ExecutionPlan>,
    /// θ4's report of the current iteration.
    pub deployment: Option<crate::phases::deployment::DeploymentReport>,
    /// Changes θ4 applied in the current iteration.
    pub applied_changes: usize,
    /// The world state of the previous iteration, for θ6's comparison.
    pub previous_world: Option<WorldState>,
    /// The previous iteration's execution plan and deployment, which θ6 judges.
    pub previous_execution_plan: Option<crate::plan::execution::ExecutionPlan>,
    /// See `previous_execution_plan`.
    pub previous_deployment: Option<crate::phases::deployment::DeploymentReport>,
    /// Headroom per instance family learned by θ6, percent; θ3 sizes with it.
    pub learned_headroom: std::collections::BTreeMap<String, f64>,
    /// θ6's report of the current iteration.
    pub learning: Option<crate::phases::learning::LearningReport>,
    /// θ5's report of the current iteration.
    pub monitoring: Option<crate::phases::monitoring::MonitoringReport>,
    /// Reports written so far.
    pub reports: Vec<PathBuf>,
    /// Where phases write their files; `None` writes nothing.
    pub out_dir: Option<PathBuf>,
    /// The price catalog.
    pub catalog: Arc<PriceCatalog>,
    /// Where progress goes.
    pub progress: SharedProgress,
    /// The time the phases work with.
    pub clock: Arc<dyn Clock>,
    /// The knowledge base shared by the phases, if any.
    pub knowledge: Option<Arc<KnowledgeBase>>,
    /// When θ4 last changed each resource, Unix seconds (kept in the knowledge base too): θ3
    /// and θ6 judge a changed resource only on its datapoints since then.
    pub last_changes: std::collections::BTreeMap<String, i64>,
}

impl std::fmt::Debug for CycleContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CycleContext")
            .field("iteration", &self.iteration)
            .field("world", &self.world.as_ref().map(|w| w.inventory.resource_count()))
            .field("applicable_changes", &self.applicable_changes)
            .field("out_dir", &self.out_dir)
            .finish_non_exhaustive()
    }
}

impl Default for CycleContext {
    fn default() -> Self {
        Self {
            iteration: 0,
            world: None,
            world0: None,
            applicable_changes: 0,
            plan: None,
            recommendations: Vec::new(),
            execution_plan: None,
            deployment: None,
            applied_changes: 0,
            previous_world: None,
            previous_execution_plan: None,
            previous_deployment: None,
            learned_headroom: std::collections::BTreeMap::new(),
            learning: None,
            monitoring: None,
            reports: Vec::new(),
            out_dir: None,
            catalog: Arc::new(PriceCatalog::built_in().clone()),
            progress: Arc::new(TracingProgress),
            clock: Arc::new(SystemClock),
            knowledge: None,
            last_changes: std::collections::BTreeMap::new(),
        }
    }
}

impl CycleContext {
    /// A context writing into `out_dir`.
    #[must_use]
    pub fn with_out_dir(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: Some(out_dir.into()),
            ..Self::default()
        }
    }

    /// Shares `knowledge` with the phases, and starts from what it remembers: when resources
    /// were last changed, and the headroom learned per family.
    ///
    /// # Errors
    /// [`Error::Knowledge`] when the store cannot be read.
    pub fn with_knowledge_base(mut self, knowledge: Arc<KnowledgeBase>) -> Result<Self> {
        self.last_changes = knowledge.last_changes()?;
        self.learned_headroom = knowledge.headroom()?;
        self.knowledge = Some(knowledge);
        Ok(self)
    }

    /// Notes that θ4 changed `resources` at Unix time `at`, in the knowledge base first (so
    /// that a later run measures them from then on too).
    ///
    /// # Errors
    /// [`Error::Knowledge`] when the knowledge base cannot commit.
    pub fn record_changes<'a>(&mut self, resources: impl IntoIterator<Item = &'a str>, at: i64) -> Result<()> {
        let changed: std::collections::BTreeMap<String, i64> =
            resources.into_iter().map(|id| (id.to_owned(), at)).collect();
        if changed.is_empty() {
            return Ok(());
        }
        if let Some(kb) = &self.knowledge {
            kb.record_changes(&changed)?;
        }
        self.last_changes.extend(changed);
        Ok(())
    }

    /// Stores a new world state, keeping the first one as World0 and the one it replaces as
    /// the previous world.
    pub fn set_world(&mut self, world: WorldState) {
        if self.world0.is_none() {
            self.world0 = Some(world.clone());
        }
        self.previous_world = self.world.replace(world);
    }
}

/// The plan's targets, checked each iteration: cost down ≥ 30% from World0 and score ≥ 90.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Targets {
    /// Monthly cost reduction from World0, percent.
    pub cost_reduction_percent: f64,
    /// Cost target met.
    pub cost_met: bool,
    /// Security score now.
    pub security_score: f64,
    /// Score target met.
    pub score_met: bool,
}

impl Targets {
    /// Cost reduction target, percent.
    pub const COST_REDUCTION_PERCENT: f64 = 30.0;
    /// Security score target.
    pub const SECURITY_SCORE: f64 = 90.0;

    fn of(world0: &WorldState, world: &WorldState) -> Self {
        let before = world0.assessment.monthly_total_usd;
        let after = world.assessment.monthly_total_usd;
        let cost_reduction_percent = if before > 0.0 {
            (before - after) / before * 100.0
        } else {
            0.0
        };
        let security_score = world.assessment.security_score;
        Self {
            cost_reduction_percent,
            cost_met: cost_reduction_percent >= Self::COST_REDUCTION_PERCENT,
            security_score,
            score_met: security_score >= Self::SECURITY_SCORE,
        }
    }
}

/// Timing and outcome of one phase run.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRecord {
    /// Which slot.
    pub id: PhaseId,
    /// The phase's name.
    pub name: String,
    /// Wall time.
    pub duration: Duration,
    /// The error, if the phase failed.
    pub error: Option<String>,
}

/// The figures of one captured world: `World_n` of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WorldSummary {
    /// Estimated monthly cost, USD.
    pub monthly_cost_usd: f64,
    /// Security score, 0–100.
    pub security_score: f64,
    /// Mean CPU of running instances, weighted by vCPU, percent.
    pub utilisation_percent: Option<f64>,
}

impl WorldSummary {
    /// The figures of `world`.
    #[must_use]
    pub fn of(world: &WorldState) -> Self {
        Self {
            monthly_cost_usd: world.assessment.monthly_total_usd,
            security_score: world.assessment.security_score,
            utilisation_percent: world.assessment.utilisation_percent,
        }
    }
}

/// One pass over the six slots.
#[derive(Debug, Clone, Serialize)]
pub struct IterationRecord {
    /// 0-based.
    pub index: u32,
    /// The phases run, in order.
    pub phases: Vec<PhaseRecord>,
    /// The world this iteration's θ1 captured (`World_index`), when one exists.
    pub world: Option<WorldSummary>,
    /// Changes θ4 applied and kept in this iteration.
    pub applied_changes: usize,
    /// Wall time spent in hooks (for example a workload simulator) during this iteration.
    pub hooks_duration: Duration,
    /// The targets after this iteration, when a world state exists.
    pub targets: Option<Targets>,
}

/// Why the loop stopped.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per run; boxing would only add noise
#[non_exhaustive]
pub enum StopReason {
    /// The convergence rule held.
    Converged {
        /// The rule, in words.
        rule: &'static str,
    },
    /// `max_iterations` was reached while applicable changes remained.
    MaxIterations {
        /// The limit.
        limit: u32,
        /// Applicable changes left.
        remaining_changes: usize,
    },
    /// θ4 ran and applied nothing (a dry run, or every step skipped, refused or rolled
    /// back), so another iteration would find the same estate and plan the same changes.
    NothingApplied {
        /// Applicable changes left.
        remaining_changes: usize,
    },
    /// A phase failed.
    PhaseFailed {
        /// Which phase.
        phase: PhaseId,
        /// Its error.
        error: Error,
    },
    /// A hook run after a phase failed.
    HookFailed {
        /// The phase it followed.
        after: PhaseId,
        /// Its error.
        error: Error,
    },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Converged { rule } => write!(f, "converged: {rule}"),
            Self::MaxIterations {
                limit,
                remaining_changes,
            } => write!(
                f,
                "not converged: stopped at max_iterations = {limit} with {remaining_changes} applicable change(s) left"
            ),
            Self::NothingApplied { remaining_changes } => write!(
                f,
                "stopped: θ4 applied none of the {remaining_changes} applicable change(s) (dry run, or all skipped, refused or rolled back); another iteration would plan the same"
            ),
            Self::PhaseFailed { phase, error } => write!(f, "stopped: {phase} failed: {error}"),
            Self::HookFailed { after, error } => write!(f, "stopped: the hook after {after} failed: {error}"),
        }
    }
}

/// What a cycle run did.
#[derive(Debug)]
pub struct CycleReport {
    /// Each iteration.
    pub iterations: Vec<IterationRecord>,
    /// Why the loop stopped.
    pub stop: StopReason,
}

impl CycleReport {
    /// True when the loop converged.
    #[must_use]
    pub fn converged(&self) -> bool {
        matches!(self.stop, StopReason::Converged { .. })
    }
}

/// Something a harness runs after a phase of every iteration, for example a workload simulator
/// publishing the metrics of the changed estate after θ4.
#[async_trait]
pub trait CycleHook: Send + Sync {
    /// Runs after `phase` succeeded.
    ///
    /// # Errors
    /// Whatever stops the hook; the cycle records it and stops.
    async fn after(&self, phase: PhaseId, ctx: &mut CycleContext) -> Result<()>;
}

/// The loop: six θ slots, hooks and an iteration limit.
#[derive(Clone)]
pub struct Cycle {
    slots: [Option<Arc<dyn Phase>>; 6],
    hooks: Vec<Arc<dyn CycleHook>>,
    max_iterations: u32,
}

impl std::fmt::Debug for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.slots.iter().flatten().map(|p| p.name()).collect();
        f.debug_struct("Cycle")
            .field("phases", &names)
            .field("hooks", &self.hooks.len())
            .field("max_iterations", &self.max_iterations)
            .finish()
    }
}

impl Default for Cycle {
    fn default() -> Self {
        Self {
            slots: Default::default(),
            hooks: Vec::new(),
            max_iterations: 10,
        }
    }
}

/// The convergence rule, in words.
pub const CONVERGENCE_RULE: &str = "the new plan holds no change that may be applied";

impl Cycle {
    /// An empty cycle with `max_iterations = 10`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `phase` into its θ slot, replacing what was there.
    #[must_use]
    pub fn with_phase(mut self, phase: Arc<dyn Phase>) -> Self {
        let slot = phase.id().slot();
        self.slots[slot] = Some(phase);
        self
    }

    /// Adds a hook run after every phase.
    #[must_use]
    pub fn with_hook(mut self, hook: Arc<dyn CycleHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Sets the iteration limit (at least 1).
    #[must_use]
    pub fn with_max_iterations(mut self, max_iterations: u32) -> Self {
        self.max_iterations = max_iterations.max(1);
        self
    }

    /// The phases present, in loop order.
    pub fn phases(&self) -> impl Iterator<Item = &Arc<dyn Phase>> {
        self.slots.iter().flatten()
    }

    /// Runs iterations until convergence, the limit, or a failure, and logs which rule ended
    /// the loop.
    pub async fn run(&self, ctx: &mut CycleContext) -> CycleReport {
        let report = self.iterate(ctx).await;
        tracing::info!(iterations = report.iterations.len(), "loop ended: {}", report.stop);
        report
    }

    async fn iterate(&self, ctx: &mut CycleContext) -> CycleReport {
        let mut iterations = Vec::new();
        for index in 0..self.max_iterations {
            ctx.iteration = index;
            ctx.applicable_changes = 0;
            ctx.applied_changes = 0;
            // This iteration's θ3 and θ4 start afresh; θ6 judges what the last one did.
            ctx.previous_execution_plan = ctx.execution_plan.take();
            ctx.previous_deployment = ctx.deployment.take();
            let mut phases = Vec::new();
            let mut hooks_duration = Duration::ZERO;
            let mut failure = None;
            for phase in self.phases() {
                let started = Instant::now();
                tracing::info!(iteration = index, phase = %phase.id(), "phase started");
                let result = phase.run(ctx).await;
                let duration = started.elapsed();
                tracing::info!(iteration = index, phase = %phase.id(), ?duration, ok = result.is_ok(), "phase finished");
                phases.push(PhaseRecord {
                    id: phase.id(),
                    name: phase.name(),
                    duration,
                    error: result.as_ref().err().map(ToString::to_string),
                });
                if let Err(error) = result {
                    failure = Some(StopReason::PhaseFailed {
                        phase: phase.id(),
                        error,
                    });
                    break;
                }
                let hooks_started = Instant::now();
                let hook_error = self.run_hooks(phase.id(), ctx).await;
                hooks_duration += hooks_started.elapsed();
                if let Some(error) = hook_error {
                    failure = Some(StopReason::HookFailed {
                        after: phase.id(),
                        error,
                    });
                    break;
                }
            }
            let targets = match (&ctx.world0, &ctx.world) {
                (Some(w0), Some(w)) => Some(Targets::of(w0, w)),
                _ => None,
            };
            iterations.push(IterationRecord {
                index,
                phases,
                world: ctx.world.as_ref().map(WorldSummary::of),
                applied_changes: ctx.applied_changes,
                hooks_duration,
                targets,
            });
            let stop = if let Some(failure) = failure {
                Some(failure)
            } else if ctx.applicable_changes == 0 {
                Some(StopReason::Converged { rule: CONVERGENCE_RULE })
            } else if ctx.deployment.is_some() && ctx.applied_changes == 0 {
                Some(StopReason::NothingApplied {
                    remaining_changes: ctx.applicable_changes,
                })
            } else {
                None
            };
            if let Some(stop) = stop {
                return CycleReport { iterations, stop };
            }
        }
        CycleReport {
            iterations,
            stop: StopReason::MaxIterations {
                limit: self.max_iterations,
                remaining_changes: ctx.applicable_changes,
            },
        }
    }

    /// Runs every hook after `phase`, in order; the first error stops the rest.
    async fn run_hooks(&self, phase: PhaseId, ctx: &mut CycleContext) -> Option<Error> {
        for hook in &self.hooks {
            if let Err(error) = hook.after(phase, ctx).await {
                return Some(error);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A phase that pretends to plan `changes[i]` applicable changes on iteration `i`.
    struct Planner {
        changes: Vec<usize>,
    }

    #[async_trait]
    impl Phase for Planner {
        fn id(&self) -> PhaseId {
            PhaseId::Planning
        }
        async fn run(&self, ctx: &mut CycleContext) -> Result<()> {
            ctx.applicable_changes = self.changes.get(ctx.iteration as usize).copied().unwrap_or(0);
            Ok(())
        }
    }

    struct Failing;

    #[async_trait]
    impl Phase for Failing {
        fn id(&self) -> PhaseId {
            PhaseId::Discovery
        }
        async fn run(&self, _: &mut CycleContext) -> Result<()> {
            Err(Error::Config("boom".into()))
        }
    }

    #[tokio::test]
    async fn converges_when_no_applicable_change_remains() {
        let cycle = Cycle::new().with_phase(Arc::new(Planner { changes: vec![3, 1, 0] }));
        let report = cycle.run(&mut CycleContext::default()).await;
        assert!(report.converged(), "{}", report.stop);
        assert_eq!(report.iterations.len(), 3);
        assert_eq!(report.iterations[0].phases[0].id, PhaseId::Planning);
    }

    #[tokio::test]
    async fn stops_at_max_iterations_and_says_it_did_not_converge() {
        let cycle = Cycle::new()
            .with_phase(Arc::new(Planner { changes: vec![5; 10] }))
            .with_max_iterations(4);
        let report = cycle.run(&mut CycleContext::default()).await;
        assert!(matches!(
            report.stop,
            StopReason::MaxIterations {
                limit: 4,
                remaining_changes: 5
            }
        ));
        assert_eq!(report.iterations.len(), 4);
        assert!(report.stop.to_string().contains("not converged"));
    }

    /// A θ4 that deploys nothing, as a dry run does.
    struct DryRun;

    #[async_trait]
    impl Phase for DryRun {
        fn id(&self) -> PhaseId {
            PhaseId::Deployment
        }
        async fn run(&self, ctx: &mut CycleContext) -> Result<()> {
            ctx.deployment = Some(crate::phases::deployment::DeploymentReport {
                mode: crate::phases::deployment::Mode::DryRun,
                steps: Vec::new(),
                failed_wave: None,
                recovered: Vec::new(),
                applied_at: None,
            });
            ctx.applied_changes = 0;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_deployment_that_applies_nothing_ends_the_loop_after_one_iteration() {
        let cycle = Cycle::new()
            .with_phase(Arc::new(Planner { changes: vec![4; 10] }))
            .with_phase(Arc::new(DryRun));
        let report = cycle.run(&mut CycleContext::default()).await;
        assert_eq!(report.iterations.len(), 1);
        assert!(matches!(
            report.stop,
            StopReason::NothingApplied { remaining_changes: 4 }
        ));
        assert!(report.stop.to_string().contains("applied none of the 4"));
    }

    /// Counts the phases it follows, and fails after θ`fail_after`.
    struct Counter {
        seen: std::sync::Mutex<Vec<PhaseId>>,
        fail_after: PhaseId,
    }

    #[async_trait]
    impl CycleHook for Counter {
        async fn after(&self, phase: PhaseId, _: &mut CycleContext) -> Result<()> {
            self.seen.lock().unwrap().push(phase);
            if phase == self.fail_after {
                return Err(Error::Config("simulator down".into()));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn hooks_run_after_each_phase_and_a_failing_hook_stops_the_loop() {
        let hook = Arc::new(Counter {
            seen: std::sync::Mutex::default(),
            fail_after: PhaseId::Deployment,
        });
        let cycle = Cycle::new()
            .with_phase(Arc::new(Planner { changes: vec![1; 10] }))
            .with_phase(Arc::new(DryRun))
            .with_hook(hook.clone());
        let report = cycle.run(&mut CycleContext::default()).await;
        assert_eq!(*hook.seen.lock().unwrap(), [PhaseId::Planning, PhaseId::Deployment]);
        assert!(
            matches!(
                report.stop,
                StopReason::HookFailed {
                    after: PhaseId::Deployment,
                    ..
                }
            ),
            "{}",
            report.stop
        );
    }

    #[tokio::test]
    async fn a_failing_phase_stops_the_loop_and_is_recorded() {
        let cycle = Cycle::new()
            .with_phase(Arc::new(Failing))
            .with_phase(Arc::new(Planner { changes: vec![1] }));
        let report = cycle.run(&mut CycleContext::default()).await;
        let phases = &report.iterations[0].phases;
        assert_eq!(phases.len(), 1, "the planner must not run after discovery failed");
        assert!(phases[0].error.as_deref().unwrap().contains("boom"));
        assert!(matches!(
            report.stop,
            StopReason::PhaseFailed {
                phase: PhaseId::Discovery,
                ..
            }
        ));
    }
}
