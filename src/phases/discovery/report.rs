//! `discovery_report.md`: inventory, monthly cost, top findings and score.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::assessment::{Assessment, FindingStatus, ResourceKind};
use crate::world::{Completeness, WorldState};

/// How many failing findings the report lists.
const TOP_FINDINGS: usize = 15;

/// Renders the discovery report of a world state. `calls_per_service` is the API calls made,
/// `metrics` what was asked of CloudWatch.
#[must_use]
pub fn render(
    world: &WorldState,
    calls_per_service: &BTreeMap<String, u64>,
    metrics: Option<&super::MetricScan>,
) -> String {
    let inv = &world.inventory;
    let a = &world.assessment;
    let mut md = String::new();
    let _ = writeln!(md, "# Discovery report\n");
    let _ = writeln!(
        md,
        "- Account: {}\n- Regions: {}\n- Captured at: {}\n- Lookback: {} h",
        world.scope.account_id.as_deref().unwrap_or("unknown"),
        world.scope.regions.join(", "),
        world.scope.captured_at.to_rfc3339(),
        world.scope.lookback_hours
    );
    match &world.scope.completeness {
        Completeness::Complete => {
            let _ = writeln!(md, "- Capture: **complete**");
        }
        Completeness::Partial { gaps } => {
            let _ = writeln!(
                md,
                "- Capture: **PARTIAL**: {} read(s) failed; what each names is left alone by planning and deployment:",
                gaps.len()
            );
            for g in gaps {
                let scope = if g.resources.is_empty() {
                    format!("every resource of {}", g.region)
                } else {
                    g.resources.join(", ")
                };
                let _ = writeln!(
                    md,
                    "  - {} {} in {} ({scope}): {}",
                    g.service, g.operation, g.region, g.error
                );
            }
        }
    }

    let _ = writeln!(md, "\n## Inventory\n\n| kind | count |\n|---|---:|");
    for (kind, n) in [
        ("EC2 instances", inv.instances.len()),
        ("EBS volumes", inv.volumes.len()),
        ("Elastic IPs", inv.addresses.len()),
        ("Security groups", inv.security_groups.len()),
        ("S3 buckets", inv.buckets.len()),
        ("RDS instances", inv.db_instances.len()),
        ("Metric series", inv.metrics.len()),
    ] {
        let _ = writeln!(md, "| {kind} | {n} |");
    }

    let _ = writeln!(md, "\n## Monthly cost\n");
    let _ = writeln!(
        md,
        "**${:.2} / month** (prices: {}, as of {}).\n",
        a.monthly_total_usd, a.catalog.source, a.catalog.as_of
    );
    let mut by_kind: BTreeMap<ResourceKind, f64> = BTreeMap::new();
    for c in &a.costs {
        *by_kind.entry(c.kind).or_default() += c.monthly_usd.unwrap_or(0.0);
    }
    let _ = writeln!(md, "| kind | USD / month |\n|---|---:|");
    for (kind, usd) in &by_kind {
        let _ = writeln!(md, "| {kind:?} | {usd:.2} |");
    }
    if a.unpriced_count > 0 {
        let _ = writeln!(
            md,
            "\n{} resource(s) are **unpriced** and not in the total:\n",
            a.unpriced_count
        );
        for c in a.costs.iter().filter(|c| c.monthly_usd.is_none()) {
            let _ = writeln!(md, "- {} ({:?}, {}): {}", c.resource_id, c.kind, c.region, c.basis);
        }
    }
    let _ = writeln!(
        md,
        "\nUtilisation (vCPU-weighted mean CPU of running instances): {}",
        a.utilisation_percent
            .map_or("no data".to_owned(), |u| format!("{u:.1}%"))
    );

    security_section(&mut md, a);

    if !calls_per_service.is_empty() {
        let _ = writeln!(md, "\n## API calls\n\n| service | requests |\n|---|---:|");
        for (service, n) in calls_per_service {
            let _ = writeln!(md, "| {service} | {n} |");
        }
    }
    if let Some(m) = metrics {
        metric_scan_section(&mut md, m);
    }
    md
}

/// What the scan asked CloudWatch for, and what that costs.
fn metric_scan_section(md: &mut String, m: &super::MetricScan) {
    let mode = if m.incremental {
        "incremental (each series from its last datapoint held)"
    } else {
        "full lookback"
    };
    let _ = writeln!(
        md,
        "\n## Metric scan\n\n- Mode: {mode}\n- GetMetricData batches: {}\n- Metrics requested: {} (estimated cost ${:.4} at ${} per 1,000)\n- Datapoints requested: {}; returned: {}",
        m.batches,
        m.series_requested,
        m.estimated_cost_usd(),
        super::MetricScan::USD_PER_1000_METRICS,
        m.datapoints_requested,
        m.datapoints_returned
    );
}

/// The score, failing resources per check, and the worst findings first.
fn security_section(md: &mut String, a: &Assessment) {
    let _ = writeln!(md, "\n## Security\n\n**Score: {:.1} / 100**\n", a.security_score);
    let mut failing: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.status == FindingStatus::Fail && f.severity.weight() > 0.0)
        .collect();
    failing.sort_by(|x, y| y.severity.cmp(&x.severity).then_with(|| x.check_id.cmp(&y.check_id)));
    let mut per_check: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &failing {
        *per_check.entry(&f.check_id).or_default() += 1;
    }
    let _ = writeln!(md, "| check | failing resources |\n|---|---:|");
    for (check, n) in &per_check {
        let _ = writeln!(md, "| {check} | {n} |");
    }
    let _ = writeln!(md, "\n### Top findings\n");
    for f in failing.iter().take(TOP_FINDINGS) {
        let _ = writeln!(
            md,
            "- **{:?}** `{}` {} ({}): {}",
            f.severity, f.check_id, f.resource_id, f.region, f.message
        );
    }
    if failing.len() > TOP_FINDINGS {
        let _ = writeln!(
            md,
            "- … and {} more in `world_state_N.json`",
            failing.len() - TOP_FINDINGS
        );
    }
}
