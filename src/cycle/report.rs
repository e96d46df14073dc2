//! What a cycle run did: per-iteration records, the targets, and why the loop stopped.

use std::time::Duration;

use serde::Serialize;

use super::{PhaseId, PhaseOutcome};
use crate::purchase::PurchasePlan;
use crate::world::WorldState;
use crate::Error;

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
    /// The cost reduction from World0 should the iteration's recommended purchases be bought,
    /// percent: reported beside the target, which measures the estate as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_purchases_percent: Option<f64>,
}

impl Targets {
    /// Cost reduction target, percent.
    pub const COST_REDUCTION_PERCENT: f64 = 30.0;
    /// Security score target.
    pub const SECURITY_SCORE: f64 = 90.0;

    /// The targets of `world` against `world0`.
    #[must_use]
    pub fn of(world0: &WorldState, world: &WorldState) -> Self {
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
            with_purchases_percent: None,
        }
    }

    /// Adds what the recommended `purchases` would take off the estate's cost.
    #[must_use]
    pub fn with_purchases(mut self, world0: &WorldState, world: &WorldState, purchases: &PurchasePlan) -> Self {
        let before = world0.assessment.monthly_total_usd;
        let after = world.assessment.monthly_total_usd - purchases.monthly_saving_usd();
        if before > 0.0 && !purchases.recommended.is_empty() {
            self.with_purchases_percent = Some((before - after) / before * 100.0);
        }
        self
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
    /// What the phase found applicable and applied, when it succeeded.
    pub outcome: Option<PhaseOutcome>,
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
    /// Reads that failed in its capture (0 when it is whole).
    pub gaps: usize,
}

impl WorldSummary {
    /// The figures of `world`.
    #[must_use]
    pub fn of(world: &WorldState) -> Self {
        Self {
            monthly_cost_usd: world.assessment.monthly_total_usd,
            security_score: world.assessment.security_score,
            utilisation_percent: world.assessment.utilisation_percent,
            gaps: match &world.scope.completeness {
                crate::world::Completeness::Complete => 0,
                crate::world::Completeness::Partial { gaps } => gaps.len(),
            },
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
    /// The latest world state at the end of the iteration (`World_index` when θ1 ran).
    pub world: Option<WorldSummary>,
    /// Changes that may still be applied, as the last phase that counted them said; 0 when
    /// none did.
    pub applicable_changes: usize,
    /// Changes applied and kept, when a deploying phase ran.
    pub applied_changes: Option<usize>,
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
    /// The iteration limit was reached while applicable changes remained.
    MaxIterations {
        /// The limit.
        limit: u32,
        /// Applicable changes left.
        remaining_changes: usize,
    },
    /// A deploying phase ran and applied nothing (a dry run, or every step skipped, refused or
    /// rolled back), so another iteration would find the same estate and plan the same changes.
    NothingApplied {
        /// Applicable changes left.
        remaining_changes: usize,
    },
    /// A stop rule of the caller's held.
    Rule {
        /// The rule's id.
        rule: String,
        /// Why, in words.
        reason: String,
    },
    /// A phase failed.
    PhaseFailed {
        /// Which phase.
        phase: PhaseId,
        /// Its error.
        error: Error,
    },
    /// The run was interrupted ([`Interrupt`](super::Interrupt)) before this phase: what
    /// ran before it is whole (θ4 finished the steps it had begun).
    Interrupted {
        /// The phase that did not start.
        before: PhaseId,
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
            Self::Rule { rule, reason } => write!(f, "stopped by rule {rule}: {reason}"),
            Self::PhaseFailed { phase, error } => write!(f, "stopped: {phase} failed: {error}"),
            Self::HookFailed { after, error } => write!(f, "stopped: the hook after {after} failed: {error}"),
            Self::Interrupted { before } => write!(f, "interrupted before {before}: the steps begun were finished"),
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

    /// True when the latest world state was captured in part: what its gaps name was left
    /// alone, so the estate may not be where the loop would have taken it.
    #[must_use]
    pub fn partial(&self) -> bool {
        self.iterations
            .iter()
            .rev()
            .find_map(|it| it.world)
            .is_some_and(|w| w.gaps > 0)
    }
}
