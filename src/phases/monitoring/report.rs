//! `integration_report.md`: the alarms θ5 put on the changed resources, the dashboard, the CPU
//! read back after the change, and where the result was sent.

use std::fmt::Write;

use crate::phases::monitoring::{BudgetSource, MonitoringReport};

/// The report as Markdown.
#[must_use]
pub fn render(report: &MonitoringReport) -> String {
    let mut md = String::from("# Integration report\n\n");
    let _ = writeln!(md, "## Alarms ({})\n", report.alarms.len());
    if !report.alarms.is_empty() {
        md.push_str("| alarm | resource | threshold | state |\n|---|---|---|---|\n");
        for a in &report.alarms {
            let _ = writeln!(
                md,
                "| `{}` | {} {} | CPU > {:.0}% | {} |",
                a.name,
                a.resource.id,
                a.resource.region,
                a.threshold,
                a.state.as_deref().unwrap_or("not found on read-back")
            );
        }
        md.push('\n');
    }
    for (resource, why) in &report.not_alarmed {
        let _ = writeln!(md, "- not alarmed: {} ({why})", resource.id);
    }
    let _ = writeln!(
        md,
        "\nDashboard: {}\n\n## CPU after the change\n",
        report.dashboard.as_deref().unwrap_or("none (no alarmed resource)")
    );
    if !report.readings.is_empty() {
        md.push_str("| resource | hourly points | average | maximum |\n|---|---|---|---|\n");
        let pct = |v: Option<f64>| v.map_or("no data yet".to_owned(), |x| format!("{x:.1}%"));
        for r in &report.readings {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                r.resource.id,
                r.points,
                pct(r.average),
                pct(r.maximum)
            );
        }
        md.push('\n');
    }
    md.push_str("## Cost alarm\n\n");
    match &report.cost_alarm {
        Some(a) => {
            let from = match a.budget_from {
                BudgetSource::Configured => "configured",
                BudgetSource::World0 => "World0's estimate",
            };
            let _ = writeln!(
                md,
                "`{}` ({}): estimate **${:.2}**/month against a budget of ${:.2} ({from}); state {}\n",
                a.name,
                a.region,
                a.estimate_usd,
                a.budget_usd,
                a.state.as_deref().unwrap_or("not found on read-back")
            );
        }
        None => {
            md.push_str("None: nothing was applied, so the estimate did not move (a dry run publishes nothing).\n\n");
        }
    }
    md.push_str("## Notifications\n\n");
    if report.notifications.is_empty() {
        md.push_str("No sink configured.\n");
    }
    for (sink, error) in &report.notifications {
        let _ = writeln!(md, "- {sink}: {}", error.as_deref().unwrap_or("delivered"));
    }
    md
}
