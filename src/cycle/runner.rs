//! The [`Cycle`] runner: six θ slots, hooks and stop rules.
//!
//! Each iteration runs the phases present, in order, on one shared [`CycleContext`], records
//! each phase's timing, outcome and error, then asks the stop rules whether to go on. A failing
//! phase or hook ends the loop at once. The runner knows no concrete phase: it reads only the
//! phases' [`PhaseOutcome`]s and the world state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::stop::{Convergence, IterationLimit, NothingApplied, StopRule};
use super::{
    CycleContext, CycleReport, IterationRecord, Phase, PhaseId, PhaseOutcome, PhaseRecord, StopReason, Targets,
    WorldSummary,
};
use crate::world::WorldState;
use crate::{Error, Result};

/// Something a harness runs after a phase of every iteration, for example a workload simulator
/// publishing the metrics of the changed estate after θ4.
#[async_trait]
pub trait CycleHook: Send + Sync {
    /// Runs after `phase` succeeded with `outcome`.
    ///
    /// # Errors
    /// Whatever stops the hook; the cycle records it and stops.
    async fn after(&self, phase: PhaseId, outcome: &PhaseOutcome, ctx: &mut CycleContext) -> Result<()>;
}

/// The loop: six θ slots, hooks and stop rules.
#[derive(Clone)]
pub struct Cycle {
    slots: [Option<Arc<dyn Phase>>; 6],
    hooks: Vec<Arc<dyn CycleHook>>,
    stop_rules: Vec<Arc<dyn StopRule>>,
}

impl std::fmt::Debug for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.phases().map(|p| p.name()).collect();
        let rules: Vec<&str> = self.stop_rules.iter().map(|r| r.id()).collect();
        f.debug_struct("Cycle")
            .field("phases", &names)
            .field("hooks", &self.hooks.len())
            .field("stop_rules", &rules)
            .finish_non_exhaustive()
    }
}

impl Default for Cycle {
    fn default() -> Self {
        Self {
            slots: Default::default(),
            hooks: Vec::new(),
            stop_rules: vec![
                Arc::new(Convergence),
                Arc::new(NothingApplied),
                Arc::new(IterationLimit::default()),
            ],
        }
    }
}

impl Cycle {
    /// An empty cycle with the default stop rules: convergence, nothing applied, 10 iterations.
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

    /// Adds `rule`, replacing a rule with the same id; rules are checked in the order added.
    #[must_use]
    pub fn with_stop_rule(mut self, rule: Arc<dyn StopRule>) -> Self {
        match self.stop_rules.iter_mut().find(|r| r.id() == rule.id()) {
            Some(slot) => *slot = rule,
            None => self.stop_rules.push(rule),
        }
        self
    }

    /// Replaces every stop rule. Without an [`IterationLimit`] among them, the loop runs until
    /// another rule holds or a phase fails.
    #[must_use]
    pub fn with_stop_rules(mut self, rules: Vec<Arc<dyn StopRule>>) -> Self {
        self.stop_rules = rules;
        self
    }

    /// Sets the iteration limit (at least 1), replacing the [`IterationLimit`] rule.
    #[must_use]
    pub fn with_max_iterations(self, max_iterations: u32) -> Self {
        self.with_stop_rule(Arc::new(IterationLimit(max_iterations.max(1))))
    }

    /// The phases present, in loop order.
    pub fn phases(&self) -> impl Iterator<Item = &Arc<dyn Phase>> {
        self.slots.iter().flatten()
    }

    /// The stop rules' ids, in the order they are checked.
    pub fn stop_rules(&self) -> impl Iterator<Item = &str> {
        self.stop_rules.iter().map(|r| r.id())
    }

    /// Runs iterations until a stop rule holds or something fails, and logs why the loop ended.
    pub async fn run(&self, ctx: &mut CycleContext) -> CycleReport {
        let report = self.iterate(ctx).await;
        tracing::info!(iterations = report.iterations.len(), "loop ended: {}", report.stop);
        report
    }

    async fn iterate(&self, ctx: &mut CycleContext) -> CycleReport {
        let mut iterations = Vec::new();
        for index in 0.. {
            ctx.iteration = index;
            ctx.artefacts.begin_iteration();
            let (record, failure) = self.iteration(index, ctx).await;
            let stop = failure.or_else(|| self.stop_rules.iter().find_map(|rule| rule.check(&record)));
            iterations.push(record);
            if let Some(stop) = stop {
                return CycleReport { iterations, stop };
            }
        }
        unreachable!("the loop above returns")
    }

    /// One pass over the slots: its record, and the failure that ended it early, if any.
    async fn iteration(&self, index: u32, ctx: &mut CycleContext) -> (IterationRecord, Option<StopReason>) {
        let mut phases = Vec::new();
        let mut hooks_duration = Duration::ZERO;
        let mut failure = None;
        let (mut applicable, mut applied) = (None, None);
        for phase in self.phases() {
            if ctx.interrupt.is_raised() {
                failure = Some(StopReason::Interrupted { before: phase.id() });
                break;
            }
            let started = Instant::now();
            tracing::info!(iteration = index, phase = %phase.id(), "phase started");
            let result = phase.run(ctx).await;
            let duration = started.elapsed();
            tracing::info!(iteration = index, phase = %phase.id(), ?duration, ok = result.is_ok(), "phase finished");
            phases.push(PhaseRecord {
                id: phase.id(),
                name: phase.name(),
                duration,
                outcome: result.as_ref().ok().copied(),
                error: result.as_ref().err().map(ToString::to_string),
            });
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(error) => {
                    failure = Some(StopReason::PhaseFailed {
                        phase: phase.id(),
                        error,
                    });
                    break;
                }
            };
            applicable = outcome.applicable.or(applicable);
            applied = outcome.applied.or(applied);
            let hooks_started = Instant::now();
            let hook_error = self.run_hooks(phase.id(), &outcome, ctx).await;
            hooks_duration += hooks_started.elapsed();
            if let Some(error) = hook_error {
                failure = Some(StopReason::HookFailed {
                    after: phase.id(),
                    error,
                });
                break;
            }
        }
        let world = ctx.artefacts.get::<WorldState>();
        let targets = ctx.artefacts.first::<WorldState>().zip(world).map(|(w0, w)| {
            let targets = Targets::of(w0, w);
            match ctx.artefacts.get::<crate::purchase::PurchasePlan>() {
                Some(purchases) => targets.with_purchases(w0, w, purchases),
                None => targets,
            }
        });
        let record = IterationRecord {
            index,
            phases,
            world: world.map(WorldSummary::of),
            applicable_changes: applicable.unwrap_or(0),
            applied_changes: applied,
            hooks_duration,
            targets,
        };
        (record, failure)
    }

    /// Runs every hook after `phase`, in order; the first error stops the rest.
    async fn run_hooks(&self, phase: PhaseId, outcome: &PhaseOutcome, ctx: &mut CycleContext) -> Option<Error> {
        for hook in &self.hooks {
            if let Err(error) = hook.after(phase, outcome, ctx).await {
                return Some(error);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artefact::Artefact;

    /// A phase that pretends to plan `changes[i]` applicable changes on iteration `i`.
    struct Planner {
        changes: Vec<usize>,
    }

    #[async_trait]
    impl Phase for Planner {
        fn id(&self) -> PhaseId {
            PhaseId::Planning
        }
        async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
            let n = self.changes.get(ctx.iteration() as usize).copied().unwrap_or(0);
            Ok(PhaseOutcome::planned(n))
        }
    }

    struct Failing;

    #[async_trait]
    impl Phase for Failing {
        fn id(&self) -> PhaseId {
            PhaseId::Discovery
        }
        async fn run(&self, _: &mut CycleContext) -> Result<PhaseOutcome> {
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
        assert_eq!(report.iterations[0].applicable_changes, 3);
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
        async fn run(&self, _: &mut CycleContext) -> Result<PhaseOutcome> {
            Ok(PhaseOutcome {
                applicable: None,
                applied: Some(0),
            })
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

    /// Stops once the iteration's planner found fewer than `below` changes.
    struct FewChanges {
        below: usize,
    }

    impl StopRule for FewChanges {
        fn id(&self) -> &'static str {
            "few_changes"
        }
        fn check(&self, it: &IterationRecord) -> Option<StopReason> {
            (it.applicable_changes < self.below).then(|| StopReason::Rule {
                rule: self.id().to_owned(),
                reason: format!("{} change(s) left", it.applicable_changes),
            })
        }
    }

    #[tokio::test]
    async fn stop_rules_are_values_the_caller_gives() {
        let planner = || {
            Arc::new(Planner {
                changes: vec![9, 5, 2, 1],
            })
        };
        let report = Cycle::new()
            .with_phase(planner())
            .with_stop_rule(Arc::new(FewChanges { below: 3 }))
            .run(&mut CycleContext::default())
            .await;
        assert_eq!(report.iterations.len(), 3);
        assert_eq!(report.stop.to_string(), "stopped by rule few_changes: 2 change(s) left");
        // Without the default rules the loop goes on past a plan with nothing left, to the limit.
        let report = Cycle::new()
            .with_phase(planner())
            .with_stop_rules(vec![Arc::new(IterationLimit(6))])
            .run(&mut CycleContext::default())
            .await;
        assert_eq!(report.iterations.len(), 6);
        assert!(matches!(report.stop, StopReason::MaxIterations { limit: 6, .. }));
    }

    /// Counts the phases it follows, and fails after θ`fail_after`.
    struct Counter {
        seen: std::sync::Mutex<Vec<(PhaseId, PhaseOutcome)>>,
        fail_after: PhaseId,
    }

    #[async_trait]
    impl CycleHook for Counter {
        async fn after(&self, phase: PhaseId, outcome: &PhaseOutcome, _: &mut CycleContext) -> Result<()> {
            self.seen.lock().unwrap().push((phase, *outcome));
            if phase == self.fail_after {
                return Err(Error::Config("simulator down".into()));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn hooks_run_after_each_phase_with_its_outcome_and_a_failing_hook_stops_the_loop() {
        let hook = Arc::new(Counter {
            seen: std::sync::Mutex::default(),
            fail_after: PhaseId::Deployment,
        });
        let cycle = Cycle::new()
            .with_phase(Arc::new(Planner { changes: vec![1; 10] }))
            .with_phase(Arc::new(DryRun))
            .with_hook(hook.clone());
        let report = cycle.run(&mut CycleContext::default()).await;
        assert_eq!(
            *hook.seen.lock().unwrap(),
            [
                (PhaseId::Planning, PhaseOutcome::planned(1)),
                (
                    PhaseId::Deployment,
                    PhaseOutcome {
                        applicable: None,
                        applied: Some(0)
                    }
                )
            ]
        );
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

    #[derive(Debug, Clone, PartialEq)]
    struct Note(u32);

    impl Artefact for Note {
        const WHAT: &'static str = "a note (test)";
    }

    /// Writes the iteration number as a note, after checking the last iteration's.
    struct Writer;

    #[async_trait]
    impl Phase for Writer {
        fn id(&self) -> PhaseId {
            PhaseId::Learning
        }
        async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
            let i = ctx.iteration();
            let previous = ctx.artefacts.previous::<Note>().map(|n| n.0);
            assert_eq!(previous, i.checked_sub(1), "the previous iteration's note");
            ctx.artefacts.put(Note(i));
            Ok(PhaseOutcome::planned(1))
        }
    }

    #[tokio::test]
    async fn each_iteration_sees_what_the_last_one_ended_with() {
        let mut ctx = CycleContext::default();
        let report = Cycle::new()
            .with_phase(Arc::new(Writer))
            .with_max_iterations(3)
            .run(&mut ctx)
            .await;
        assert_eq!(report.iterations.len(), 3, "{}", report.stop);
        assert_eq!(ctx.artefacts.get::<Note>(), Some(&Note(2)));
        assert_eq!(ctx.artefacts.first::<Note>(), Some(&Note(0)));
    }
}
