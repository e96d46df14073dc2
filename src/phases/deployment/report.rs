//! `deployment_report.md`: what θ4 did to each step, what it rolled back and why.

use std::fmt::Write;

use crate::phases::deployment::{DeploymentReport, Mode, StepOutcome};

/// The report as Markdown.
#[must_use]
pub fn render(report: &DeploymentReport) -> String {
    let mut md = String::new();
    let mode = match report.mode {
        Mode::DryRun => "dry run (no change made)",
        Mode::Apply => "apply",
    };
    let _ = writeln!(
        md,
        "# Deployment report\n\nMode: {mode}. Steps: {}.\n",
        report.steps.len()
    );
    let _ = writeln!(
        md,
        "| applied | would apply | already applied | skipped | refused | failed | rolled back |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} | {} |\n",
        report.count("applied"),
        report.count("would_apply"),
        report.count("already_applied"),
        report.count("skipped"),
        report.count("refused"),
        report.count("failed"),
        report.count("rolled_back"),
    );
    if let Some(wave) = report.failed_wave {
        let _ = writeln!(
            md,
            "Wave {wave} failed: its applied steps were rolled back in reverse order, and later waves did not run.\n"
        );
    }
    let _ = writeln!(
        md,
        "| step | wave | action | resource | outcome | backup |\n|---|---|---|---|---|---|"
    );
    for s in &report.steps {
        let outcome = match &s.outcome {
            StepOutcome::WouldApply => "would apply".to_owned(),
            StepOutcome::Applied => "applied".to_owned(),
            StepOutcome::AlreadyApplied => "already applied".to_owned(),
            StepOutcome::Skipped { reason } => format!("skipped: {reason}"),
            StepOutcome::Refused { reason } => format!("refused: {reason}"),
            StepOutcome::Failed { error } => format!("failed: {error}"),
            StepOutcome::RolledBack { reason } => format!("rolled back: {reason}"),
        };
        let backup = s
            .backup
            .as_ref()
            .and_then(|b| serde_json::to_string(b).ok())
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| `{}` | {} | {:?} | {} {} | {} | {} |",
            s.id,
            s.wave,
            s.action,
            s.resource.id,
            s.resource.region,
            outcome.replace('|', "\\|"),
            backup.replace('|', "\\|")
        );
    }
    md
}
