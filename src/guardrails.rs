//! Guardrails of the plan (DESIGN §6): approval thresholds, the deny-list, a limit on changes
//! per run, and the owner agents' autonomy deciding what may run without a human.
//!
//! θ3 applies them while allocating; θ4 enforces them again, on its own, at execution time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::owners::OwnerDirectory;
use crate::plan::{Change, Risk};

/// The kind of account, which sets the approval threshold for cost increases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Production: increases ≥ $1,000/month need approval.
    Production,
    /// Development: increases ≥ $500/month need approval.
    Development,
}

/// The guardrail policy. Defaults are the plan's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Which threshold applies to cost increases.
    pub environment: Environment,
    /// Monthly increase needing approval in production, USD.
    pub production_increase_usd: f64,
    /// Monthly increase needing approval in development, USD.
    pub development_increase_usd: f64,
    /// API operations never executed, whatever a plan says.
    pub deny_list: Vec<String>,
    /// At most this many changes per run (Cloud Custodian's `max-resources`); `None` for no limit.
    pub max_changes: Option<usize>,
    /// Owner agents and their autonomy levels.
    pub owners: OwnerDirectory,
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            environment: Environment::Production,
            production_increase_usd: 1000.0,
            development_increase_usd: 500.0,
            deny_list: [
                "DeleteVpc",
                "DeleteDBCluster",
                "DeleteBucket",
                "CreateUser",
                "DeleteUser",
                "LeaveOrganization",
                "DeleteOrganization",
            ]
            .map(str::to_owned)
            .to_vec(),
            max_changes: None,
            owners: OwnerDirectory::default(),
        }
    }
}

/// The autonomy an owner agent needs to apply a change of this risk on its own. Destructive
/// changes never qualify.
#[must_use]
pub fn autonomy_required(risk: Risk) -> u8 {
    match risk {
        Risk::Low => 4,
        Risk::Medium => 6,
        Risk::High => 8,
    }
}

impl Guardrails {
    /// The deny-listed operations a change would call, if any.
    #[must_use]
    pub fn denied_operations(&self, change: &Change) -> Vec<&'static str> {
        change
            .action
            .operations()
            .iter()
            .copied()
            .filter(|op| self.deny_list.iter().any(|d| d == op))
            .collect()
    }

    /// Why a change needs a human's approval; empty when it may run on its own.
    #[must_use]
    pub fn approval_reasons(&self, change: &Change) -> Vec<String> {
        let mut reasons = Vec::new();
        if change.is_destructive() {
            reasons.push(format!("{:?} is destructive", change.action));
        }
        if let Some(why) = change.action.inherent_approval_reason() {
            reasons.push(format!("{:?} {why}", change.action));
        }
        let threshold = match self.environment {
            Environment::Production => self.production_increase_usd,
            Environment::Development => self.development_increase_usd,
        };
        if -change.monthly_saving_usd >= threshold {
            reasons.push(format!(
                "raises cost by ${:.2}/month (threshold ${threshold:.0})",
                -change.monthly_saving_usd
            ));
        }
        let service = change.action.service();
        let autonomy = self.owners.autonomy(service);
        let needed = autonomy_required(change.risk);
        if autonomy < needed {
            reasons.push(format!(
                "{} ({service}) has autonomy {autonomy}; a {:?}-risk change needs {needed}",
                self.owners.persona(service),
                change.risk
            ));
        }
        reasons
    }
}
