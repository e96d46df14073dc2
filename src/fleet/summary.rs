//! How each account's run ended, and the summary over all of them (`accounts.json`).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AccountTarget;
use crate::aws::CallStats;
use crate::cycle::{CycleReport, StopReason};
use crate::Error;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every phase ran, on whole captures.
    Succeeded,
    /// The run ended, but its latest capture was partial: what its gaps name was left alone.
    Partial,
    /// A phase (or the account's credentials) failed; `error` says which and why.
    Failed,
    /// The request was refused before any AWS call (malformed, or not allowed).
    Refused,
}

/// The figures of one iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IterationFigures {
    /// 0-based.
    pub index: u32,
    /// Estimated monthly cost of the estate captured, USD.
    pub monthly_cost_usd: Option<f64>,
    /// Its security score, 0–100.
    pub security_score: Option<f64>,
    /// Changes applied and kept.
    pub applied_changes: Option<usize>,
    /// Seconds per phase, by phase name.
    pub phase_seconds: BTreeMap<String, f64>,
}

/// One account's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountRun {
    /// The account.
    pub account_id: String,
    /// The role assumed in it, if any.
    pub role_arn: Option<String>,
    /// How it ended.
    pub status: RunStatus,
    /// Why the loop stopped, in words.
    pub stop: String,
    /// What failed, naming the account, when something did.
    pub error: Option<String>,
    /// Each iteration's figures.
    pub iterations: Vec<IterationFigures>,
    /// API requests sent, per service (retries included).
    pub api_calls: BTreeMap<String, u64>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl AccountRun {
    /// The run of `report` in `target`, with the requests counted in `calls`.
    #[must_use]
    pub fn of(target: &AccountTarget, report: &CycleReport, calls: &CallStats, elapsed: Duration) -> Self {
        let error = match &report.stop {
            StopReason::PhaseFailed { error, .. } | StopReason::HookFailed { error, .. } => {
                Some(naming(&target.account_id, &report.stop.to_string(), error))
            }
            StopReason::Interrupted { .. } => Some(format!("account {}: {}", target.account_id, report.stop)),
            _ => None,
        };
        let status = if error.is_some() {
            RunStatus::Failed
        } else if report.partial() {
            RunStatus::Partial
        } else {
            RunStatus::Succeeded
        };
        Self {
            account_id: target.account_id.clone(),
            role_arn: target.role.as_ref().map(|r| r.role_arn.clone()),
            status,
            stop: report.stop.to_string(),
            error,
            iterations: report
                .iterations
                .iter()
                .map(|it| IterationFigures {
                    index: it.index,
                    monthly_cost_usd: it.world.map(|w| w.monthly_cost_usd),
                    security_score: it.world.map(|w| w.security_score),
                    applied_changes: it.applied_changes,
                    phase_seconds: it
                        .phases
                        .iter()
                        .map(|p| (p.name.clone(), p.duration.as_secs_f64()))
                        .collect(),
                })
                .collect(),
            api_calls: calls.per_service(),
            seconds: elapsed.as_secs_f64(),
        }
    }

    /// A run that failed before its cycle could start (a role that cannot be assumed, say).
    #[must_use]
    pub fn failed(target: &AccountTarget, error: &Error, stats: &CallStats, elapsed: Duration) -> Self {
        Self {
            account_id: target.account_id.clone(),
            role_arn: target.role.as_ref().map(|r| r.role_arn.clone()),
            status: RunStatus::Failed,
            stop: "not started".to_owned(),
            error: Some(naming(&target.account_id, &error.to_string(), error)),
            iterations: Vec::new(),
            api_calls: stats.per_service(),
            seconds: elapsed.as_secs_f64(),
        }
    }

    /// The last iteration's cost and score, when it captured the estate.
    #[must_use]
    pub fn last_figures(&self) -> Option<(f64, f64)> {
        self.iterations
            .iter()
            .rev()
            .find_map(|it| Some((it.monthly_cost_usd?, it.security_score?)))
    }
}

/// `text`, prefixed with the account unless `error` (an AWS error of a session that knew its
/// account) already names it.
fn naming(account: &str, text: &str, error: &Error) -> String {
    let named = matches!(error, Error::Aws(e) if e.account.as_deref() == Some(account));
    if named {
        text.to_owned()
    } else {
        format!("account {account}: {text}")
    }
}

/// Every account's run, and the totals over them: `accounts.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetSummary {
    /// Each account, in the order they were listed.
    pub accounts: Vec<AccountRun>,
    /// Accounts per status.
    pub by_status: BTreeMap<RunStatus, usize>,
    /// The sum of the accounts' last estimated monthly costs, USD.
    pub monthly_cost_usd: f64,
    /// The lowest security score among the accounts.
    pub lowest_security_score: Option<f64>,
}

impl FleetSummary {
    /// The summary of `accounts`.
    #[must_use]
    pub fn new(accounts: Vec<AccountRun>) -> Self {
        let mut by_status = BTreeMap::new();
        for run in &accounts {
            *by_status.entry(run.status).or_default() += 1;
        }
        let figures: Vec<(f64, f64)> = accounts.iter().filter_map(AccountRun::last_figures).collect();
        Self {
            monthly_cost_usd: figures.iter().map(|(cost, _)| cost).sum(),
            lowest_security_score: figures.iter().map(|(_, score)| *score).reduce(f64::min),
            by_status,
            accounts,
        }
    }

    /// The worst status among the accounts (`Succeeded` when there are none).
    #[must_use]
    pub fn worst(&self) -> RunStatus {
        self.by_status.keys().copied().max().unwrap_or(RunStatus::Succeeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(account: &str, status: RunStatus, figures: Option<(f64, f64)>) -> AccountRun {
        AccountRun {
            account_id: account.to_owned(),
            role_arn: None,
            status,
            stop: String::new(),
            error: None,
            iterations: vec![IterationFigures {
                index: 0,
                monthly_cost_usd: figures.map(|f| f.0),
                security_score: figures.map(|f| f.1),
                applied_changes: None,
                phase_seconds: BTreeMap::new(),
            }],
            api_calls: BTreeMap::new(),
            seconds: 0.0,
        }
    }

    #[test]
    fn the_summary_adds_costs_keeps_the_lowest_score_and_the_worst_status() {
        let summary = FleetSummary::new(vec![
            run("1", RunStatus::Succeeded, Some((100.0, 90.0))),
            run("2", RunStatus::Partial, Some((50.5, 70.0))),
            run("3", RunStatus::Failed, None),
        ]);
        assert!((summary.monthly_cost_usd - 150.5).abs() < 1e-9);
        assert_eq!(summary.lowest_security_score, Some(70.0));
        assert_eq!(summary.worst(), RunStatus::Failed);
        assert_eq!(summary.by_status[&RunStatus::Partial], 1);
        assert_eq!(FleetSummary::new(Vec::new()).worst(), RunStatus::Succeeded);
    }

    #[test]
    fn an_error_names_its_account_once() {
        let target = AccountTarget {
            account_id: "111111111111".into(),
            role: None,
        };
        let error = Error::Config("boom".into());
        let run = AccountRun::failed(&target, &error, &CallStats::default(), Duration::ZERO);
        assert_eq!(
            run.error.as_deref(),
            Some("account 111111111111: invalid configuration: boom")
        );
        assert_eq!(run.status, RunStatus::Failed);
    }
}
