//! What the CLI prints when a run ends: timings, the last world, plan and deployment, the files
//! written, and the way from World0 to the last world.

use crate::cycle::{CycleReport, Targets};
use crate::phases::deployment::DeploymentReport;
use crate::phases::planning::report::project;
use crate::plan::execution::ExecutionPlan;
use crate::plan::Plan;
use crate::world::WorldState;
use crate::CycleContext;

/// Timings, the last plan and deployment, and the table `World0` → `World_final`.
pub(super) fn print(ctx: &CycleContext, report: &CycleReport, applying: bool) {
    for it in &report.iterations {
        for p in &it.phases {
            eprintln!(
                "iteration {} {}: {:.2}s{}",
                it.index,
                p.name,
                p.duration.as_secs_f64(),
                p.error.as_deref().map(|e| format!(" FAILED: {e}")).unwrap_or_default()
            );
        }
        if !it.hooks_duration.is_zero() {
            eprintln!(
                "iteration {} hooks (workload simulator): {:.2}s",
                it.index,
                it.hooks_duration.as_secs_f64()
            );
        }
    }
    let world = ctx.artefacts.get::<WorldState>();
    if let Some(w) = world {
        let a = &w.assessment;
        println!(
            "\nWorld{} (the last captured) of {} ({})",
            ctx.iteration(),
            w.scope.regions.join(", "),
            w.scope.account_id.as_deref().unwrap_or("unknown account")
        );
        println!("  resources     {}", w.inventory.resource_count());
        println!("  metric series {}", w.inventory.metrics.len());
        println!(
            "  monthly cost  ${:.2} ({} unpriced)",
            a.monthly_total_usd, a.unpriced_count
        );
        println!("  security      {:.1} / 100", a.security_score);
        println!(
            "  utilisation   {}",
            a.utilisation_percent.map_or("no data".into(), |u| format!("{u:.1}%"))
        );
        println!(
            "  capture       {}",
            if w.scope.completeness.is_complete() {
                "complete"
            } else {
                "PARTIAL"
            }
        );
    }
    // The last iteration's plan: on convergence, what is left for a human.
    if let (Some(w), Some(plan), Some(ep)) = (world, ctx.artefacts.get::<Plan>(), ctx.artefacts.get::<ExecutionPlan>())
    {
        let cost = project(w, &plan.cost, &ctx.catalog);
        let security = project(w, &plan.security, &ctx.catalog);
        let approval = ep.steps.iter().filter(|s| s.needs_approval).count();
        println!(
            "\nPlan: {} cost and {} security change(s), {} for a human",
            plan.cost.len(),
            plan.security.len(),
            plan.manual.len()
        );
        println!(
            "  cost after the cost plan      ${:.2}/month ({:+.2})",
            cost.cost_after,
            cost.cost_after - cost.cost_before
        );
        println!("  score after the security plan {:.1} / 100", security.score_after);
        println!(
            "  execution plan: {} step(s) in {} wave(s), {approval} awaiting approval, {} excluded; saving ${:.2}/month",
            ep.steps.len(),
            ep.waves.len(),
            ep.excluded.len(),
            ep.monthly_saving_usd
        );
    }
    if let Some(d) = ctx.artefacts.get::<DeploymentReport>() {
        let count = |status: &str| d.count(status);
        println!(
            "\nDeployment ({}): {} applied, {} would apply, {} skipped, {} refused, {} failed, {} rolled back{}",
            if applying { "apply" } else { "dry run" },
            count("applied"),
            count("would_apply"),
            count("skipped"),
            count("refused"),
            count("failed"),
            count("rolled_back"),
            d.failed_wave
                .map(|w| format!("; wave {w} failed and was rolled back"))
                .unwrap_or_default()
        );
    }
    let written: std::collections::BTreeSet<_> = ctx.output.written().iter().collect();
    for path in written {
        println!("  wrote {}", path.display());
    }
    print_worlds(report);
}

/// The way from World0 to the last world captured, one row per iteration.
fn print_worlds(report: &CycleReport) {
    let rows: Vec<_> = report
        .iterations
        .iter()
        .filter_map(|it| it.world.map(|w| (it, w)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let utilisation = |u: Option<f64>| u.map_or("-".to_owned(), |u| format!("{u:.1}%"));
    println!("\n| world | monthly cost | security score | utilisation | changes applied |");
    println!("|---|---:|---:|---:|---:|");
    for (i, (it, w)) in rows.iter().enumerate() {
        let name = if i + 1 == rows.len() && i > 0 {
            format!("World{} (final)", it.index)
        } else {
            format!("World{}", it.index)
        };
        println!(
            "| {name} | ${:.2} | {:.1} | {} | {} |",
            w.monthly_cost_usd,
            w.security_score,
            utilisation(w.utilisation_percent),
            it.applied_changes.unwrap_or(0)
        );
    }
    let Some(targets) = report.iterations.iter().rev().find_map(|it| it.targets.as_ref()) else {
        return;
    };
    let met = |yes: bool| if yes { "met" } else { "not met" };
    let down = targets.cost_reduction_percent;
    println!(
        "cost {} {:.1}% from World0 (target ≥ {:.0}% down: {}), score {:.1} → {:.1} (target ≥ {:.0}: {})",
        if down >= 0.0 { "down" } else { "up" },
        down.abs(),
        Targets::COST_REDUCTION_PERCENT,
        met(targets.cost_met),
        first.security_score,
        targets.security_score,
        Targets::SECURITY_SCORE,
        met(targets.score_met),
    );
    if let Some(with_purchases) = targets.with_purchases_percent {
        println!(
            "with the recommended purchases (not bought, they wait for approval): cost {} {:.1}% from World0",
            if with_purchases >= 0.0 { "down" } else { "up" },
            with_purchases.abs()
        );
    }
}
