//! `cost_optimization_plan.md` and `security_improvement_plan.md`: the plan's changes, and the
//! monthly cost and security score of the estate once they are applied.

use std::fmt::Write;

use crate::assessment::assess;
use crate::catalog::PriceCatalog;
use crate::plan::{Change, Plan};
use crate::purchase::PurchasePlan;
use crate::world::WorldState;

/// The cost and score before and after a set of changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    /// Monthly cost now, USD.
    pub cost_before: f64,
    /// Monthly cost after the changes, USD.
    pub cost_after: f64,
    /// Security score now.
    pub score_before: f64,
    /// Security score after the changes.
    pub score_after: f64,
}

/// Projects `changes` onto the world: applies their desired state and assesses the result.
#[must_use]
pub fn project<'a>(
    world: &WorldState,
    changes: impl IntoIterator<Item = &'a Change>,
    catalog: &PriceCatalog,
) -> Projection {
    let mut inventory = world.inventory.clone();
    for change in changes {
        change.apply_to(&mut inventory);
    }
    let after = assess(&inventory, catalog);
    Projection {
        cost_before: world.assessment.monthly_total_usd,
        cost_after: after.monthly_total_usd,
        score_before: world.assessment.security_score,
        score_after: after.security_score,
    }
}

fn table(md: &mut String, changes: &[Change], money: bool) {
    let _ = writeln!(
        md,
        "| id | action | resource | {} | current → desired | risk | rationale |",
        if money { "saving $/month" } else { "findings removed" }
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for c in changes {
        let what = if money {
            format!("{:.2}", c.monthly_saving_usd)
        } else {
            c.removes_findings.join(", ")
        };
        let _ = writeln!(
            md,
            "| `{}` | {:?} | {} ({}) | {} | `{}` → `{}` | {:?} | {} |",
            c.id, c.action, c.resource.id, c.resource.region, what, c.current, c.desired, c.risk, c.rationale
        );
    }
}

/// What the cost plan says beside its changes: the purchases recommended on the estate it
/// leaves, and World0's cost to measure the whole against.
#[derive(Debug, Clone, Copy, Default)]
pub struct CostContext<'a> {
    /// θ3's purchase recommendations.
    pub purchases: Option<&'a PurchasePlan>,
    /// World0's monthly cost, USD.
    pub world0_cost: Option<f64>,
}

/// Renders the cost plan.
#[must_use]
pub fn render_cost(world: &WorldState, plan: &Plan, catalog: &PriceCatalog, context: CostContext<'_>) -> String {
    let p = project(world, &plan.cost, catalog);
    let total: f64 = plan.cost.iter().map(|c| c.monthly_saving_usd).sum();
    let mut md = String::from("# Cost optimization plan\n\n");
    let _ = writeln!(
        md,
        "- Monthly cost now: **${:.2}**\n- Monthly cost after this plan: **${:.2}** ({:+.1}%)",
        p.cost_before,
        p.cost_after,
        percent_change(p.cost_before, p.cost_after),
    );
    let purchased = context
        .purchases
        .map(|purchases| p.cost_after - purchases.monthly_saving_usd());
    if let Some(with_purchases) = purchased {
        let _ = writeln!(
            md,
            "- With the recommended purchases (not bought: they wait for approval): **${with_purchases:.2}** ({:+.1}%)",
            percent_change(p.cost_before, with_purchases)
        );
    }
    if let Some(w0) = context.world0_cost {
        let _ = write!(
            md,
            "- From World0 (${w0:.2}): this plan {:+.1}%",
            percent_change(w0, p.cost_after)
        );
        if let Some(with_purchases) = purchased {
            let _ = write!(md, "; with the purchases {:+.1}%", percent_change(w0, with_purchases));
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "- Changes: {}, estimated saving ${total:.2}/month\n- Prices: {} as of {}\n",
        plan.cost.len(),
        world.assessment.catalog.source,
        world.assessment.catalog.as_of,
    );
    let mut changes = plan.cost.clone();
    changes.sort_by(|a, b| b.monthly_saving_usd.total_cmp(&a.monthly_saving_usd));
    table(&mut md, &changes, true);
    if let Some(purchases) = context.purchases {
        purchase_section(&mut md, purchases);
    }
    md
}

/// The purchase options: the recommended ones first, then every alternative.
fn purchase_section(md: &mut String, purchases: &PurchasePlan) {
    let _ = writeln!(
        md,
        "\n## Purchase options (recommended, not bought)\n\nSized to the steady baseline of the estate this plan leaves: the hourly minimum of its on-demand spend over {} hours. \
         Every option waits for a human's approval, and the engine cannot buy: its SDK clients (EC2, RDS, S3, CloudWatch) have no purchase operation. \
         Buy in the console, or with the Savings Plans API and RDS `PurchaseReservedDBInstancesOffering`.\n\n- Rates: {}\n- Recommended saving: **${:.2}/month**\n",
        purchases.hours,
        purchases.rates.as_deref().unwrap_or("none"),
        purchases.monthly_saving_usd()
    );
    if !purchases.options.is_empty() {
        md.push_str("| | option | covers $/h | commitment $/h | upfront $ | saving $/month | coverage | break-even | approval because |\n|---|---|---|---|---|---|---|---|---|\n");
        let rows = purchases.recommended.iter().map(|o| (true, o)).chain(
            purchases
                .options
                .iter()
                .filter(|o| !purchases.recommended.contains(o))
                .map(|o| (false, o)),
        );
        for (recommended, o) in rows {
            let _ = writeln!(
                md,
                "| {} | {o} | {:.4} | {:.4} | {:.2} | {:.2} | {:.1}% | {:.1} months, {:.0}% use | {} |",
                if recommended { "**recommended**" } else { "" },
                o.covered_on_demand_hourly_usd,
                o.commitment_hourly_usd,
                o.upfront_usd,
                o.monthly_saving_usd,
                o.coverage_percent,
                o.break_even_months,
                o.break_even_utilisation_percent,
                o.approval_reasons.join("; ")
            );
        }
    }
    for gap in &purchases.not_covered {
        let _ = writeln!(md, "- on demand: {gap}");
    }
}

/// Renders the security plan.
#[must_use]
pub fn render_security(world: &WorldState, plan: &Plan, catalog: &PriceCatalog) -> String {
    let p = project(world, &plan.security, catalog);
    let mut md = String::from("# Security improvement plan\n\n");
    let _ = writeln!(
        md,
        "- Security score now: **{:.1}** / 100\n- Security score after this plan: **{:.1}** / 100\n- Remediations: {}\n- Failing checks with no safe automatic fix (for a human): {}\n",
        p.score_before,
        p.score_after,
        plan.security.len(),
        plan.manual.len()
    );
    table(&mut md, &plan.security, false);
    if !plan.manual.is_empty() {
        let _ = writeln!(md, "\n## Needs a human\n");
        let mut by_check: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
        for (check, resource) in &plan.manual {
            by_check.entry(check).or_default().push(resource);
        }
        for (check, resources) in by_check {
            let _ = writeln!(
                md,
                "- `{check}` ({} resources): {}.\n  {}",
                resources.len(),
                super::manual::why_not_automatic(check),
                resources.join(", ")
            );
        }
    }
    if !plan.held.is_empty() {
        let _ = writeln!(
            md,
            "\n## Held: capture partial\n\nThese changes wait for a capture that reads their resource whole.\n"
        );
        for held in &plan.held {
            let _ = writeln!(
                md,
                "- {:?} on {}: {}",
                held.change.action, held.change.resource.id, held.reason
            );
        }
    }
    md
}

fn percent_change(before: f64, after: f64) -> f64 {
    if before == 0.0 {
        0.0
    } else {
        (after - before) / before * 100.0
    }
}
