//! Stop rules: values given to a [`Cycle`](super::Cycle), checked in order after every
//! iteration. The first that holds ends the loop.
//!
//! The defaults are today's rules of the plan, in this order: [`Convergence`] (no change that
//! may be applied remains), [`NothingApplied`] (a deploying phase ran and applied nothing, so
//! another pass would plan the same) and [`IterationLimit`] (10 iterations).

use super::{IterationRecord, StopReason};

/// A rule that may end the loop after an iteration. Object-safe: a cycle holds
/// `Arc<dyn StopRule>`.
pub trait StopRule: Send + Sync {
    /// A short id, for example `convergence`; a cycle keeps one rule per id.
    fn id(&self) -> &str;

    /// `Some` ends the loop after `iteration`, for the reason given.
    fn check(&self, iteration: &IterationRecord) -> Option<StopReason>;
}

/// The convergence rule, in words.
pub const CONVERGENCE_RULE: &str = "the new plan holds no change that may be applied";

/// Converged: the iteration's plan holds no change that may be applied (none remains, or all
/// that remain wait for an approval that was not given).
#[derive(Debug, Clone, Copy, Default)]
pub struct Convergence;

impl StopRule for Convergence {
    fn id(&self) -> &'static str {
        "convergence"
    }

    fn check(&self, iteration: &IterationRecord) -> Option<StopReason> {
        (iteration.applicable_changes == 0).then_some(StopReason::Converged { rule: CONVERGENCE_RULE })
    }
}

/// A deploying phase ran and applied nothing (a dry run, or every step skipped, refused or
/// rolled back): another iteration would find the same estate and plan the same.
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingApplied;

impl StopRule for NothingApplied {
    fn id(&self) -> &'static str {
        "nothing_applied"
    }

    fn check(&self, iteration: &IterationRecord) -> Option<StopReason> {
        (iteration.applied_changes == Some(0)).then_some(StopReason::NothingApplied {
            remaining_changes: iteration.applicable_changes,
        })
    }
}

/// Stops after `0` iterations (at least 1), saying the loop did not converge.
#[derive(Debug, Clone, Copy)]
pub struct IterationLimit(pub u32);

impl Default for IterationLimit {
    fn default() -> Self {
        Self(10)
    }
}

impl StopRule for IterationLimit {
    fn id(&self) -> &'static str {
        "max_iterations"
    }

    fn check(&self, iteration: &IterationRecord) -> Option<StopReason> {
        (iteration.index + 1 >= self.0.max(1)).then_some(StopReason::MaxIterations {
            limit: self.0.max(1),
            remaining_changes: iteration.applicable_changes,
        })
    }
}
