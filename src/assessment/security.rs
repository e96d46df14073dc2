//! Built-in security checks. A check with a Prowler id has Prowler's severity (see
//! [`super::prowler`]); a check whose meaning is the engine's own has an id starting `miyabi_`.
//!
//! # Score
//!
//! Each evaluated check on each resource weighs by severity: critical 10, high 5, medium 3,
//! low 1, informational 0. The score is `100 × Σ weight(passed) / Σ weight(evaluated)`, rounded
//! to one decimal; an estate with nothing to check scores 100.

use crate::world::{Finding, FindingStatus, Inventory};

/// Runs every check of [`super::checks::registry`] on every resource of the inventory.
#[must_use]
pub fn run_checks(inv: &Inventory) -> Vec<Finding> {
    super::checks::run(inv)
}

/// The 0–100 security score of a set of findings (see the module documentation).
#[must_use]
pub fn score(findings: &[Finding]) -> f64 {
    let (passed, total) = findings.iter().fold((0.0, 0.0), |(p, t), f| {
        let w = f.severity.weight();
        (if f.status == FindingStatus::Pass { p + w } else { p }, t + w)
    });
    if total == 0.0 {
        100.0
    } else {
        (1000.0 * passed / total).round() / 10.0
    }
}
