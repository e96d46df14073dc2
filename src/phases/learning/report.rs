//! `learning_report.md`: World n against World n+1, the outcomes of the applied changes, the
//! headroom the next plan uses, anomalies, and the next iteration's recommendations.

use std::fmt::Write;

use crate::phases::learning::LearningReport;

/// The report as Markdown.
#[must_use]
pub fn render(report: &LearningReport) -> String {
    let mut md = String::from("# Learning report\n\n");
    match &report.delta {
        Some(d) => {
            let pct = |v: Option<f64>| v.map_or("no data".to_owned(), |u| format!("{u:.1}%"));
            let _ = writeln!(
                md,
                "| | World n | World n+1 |\n|---|---|---|\n| monthly cost | ${:.2} | ${:.2} |\n| security score | {:.1} | {:.1} |\n| utilisation | {} | {} |\n",
                d.cost_before,
                d.cost_after,
                d.score_before,
                d.score_after,
                pct(d.utilisation_before),
                pct(d.utilisation_after)
            );
        }
        None => md.push_str("First iteration: nothing to compare yet.\n\n"),
    }
    let _ = writeln!(md, "## Outcomes ({})\n", report.outcomes.len());
    if !report.outcomes.is_empty() {
        md.push_str(
            "| change | action | resource | verdict | CPU after | estimated saving |\n|---|---|---|---|---|---|\n",
        );
        for o in &report.outcomes {
            let _ = writeln!(
                md,
                "| `{}` | {:?} | {} | {:?} | {} | ${:.2} |",
                o.change_id,
                o.action,
                o.resource.id,
                o.verdict,
                o.cpu_after.map_or("-".to_owned(), |c| format!("{c:.1}%")),
                o.estimated_saving_usd
            );
        }
        md.push('\n');
    }
    md.push_str("## Headroom for the next plan\n\n");
    if report.headroom.is_empty() {
        md.push_str("The defaults (no family has breached).\n\n");
    } else {
        for (family, percent) in &report.headroom {
            let _ = writeln!(md, "- {family}: {percent:.0}%");
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Anomalies ({})\n", report.anomalies.len());
    for a in report.anomalies.iter().take(50) {
        let _ = writeln!(
            md,
            "- {} {} at {}: {:.2} (modified z {:.1})",
            a.resource_id, a.metric_name, a.timestamp, a.value, a.modified_z
        );
    }
    if report.anomalies.len() > 50 {
        let _ = writeln!(md, "- … and {} more", report.anomalies.len() - 50);
    }
    md.push_str("\n## Next iteration\n\n");
    if report.recommendations.is_empty() {
        md.push_str("Nothing to change in how the next plan is made.\n");
    }
    for r in &report.recommendations {
        let _ = writeln!(md, "- {r}");
    }
    md
}
