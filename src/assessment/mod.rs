//! The assessment: cost per resource and in total, security findings and score, utilisation.
//!
//! It is computed from an [`Inventory`] by one function, [`assess`], so that every discovery
//! implementation (the Rust one, the legacy Python one through the bridge) feeds the same rules.

pub mod asff;
pub mod checks;
mod cost;
pub mod ocsf;
pub mod prowler;
pub mod sarif;
pub mod secrets;
pub mod security;
mod subject;

pub use crate::world::{Assessment, CatalogStamp, Finding, FindingStatus, ResourceCost, ResourceKind, Severity};

use crate::catalog::PriceCatalog;
use crate::world::Inventory;

/// Computes the assessment of an inventory with a price catalog.
#[must_use]
pub fn assess(inventory: &Inventory, catalog: &PriceCatalog) -> Assessment {
    let costs = cost::price_inventory(inventory, catalog);
    let monthly_total_usd = costs.iter().filter_map(|c| c.monthly_usd).sum();
    let unpriced: Vec<Finding> = costs.iter().filter_map(ResourceCost::unpriced_finding).collect();
    let mut findings = security::run_checks(inventory);
    let security_score = security::score(&findings);
    findings.extend(unpriced);
    Assessment {
        catalog: CatalogStamp {
            source: catalog.source.clone(),
            as_of: catalog.as_of.clone(),
        },
        unpriced_count: costs.iter().filter(|c| c.monthly_usd.is_none()).count(),
        monthly_total_usd: round_cents(monthly_total_usd),
        costs,
        findings,
        security_score,
        utilisation_percent: utilisation(inventory, catalog),
    }
}

/// The monthly cost of the priced resources of `inventory`, USD, unrounded: the basis of every
/// saving estimate, so that a plan's savings add up to the change in the assessed total.
#[must_use]
pub fn monthly_cost(inventory: &Inventory, catalog: &PriceCatalog) -> f64 {
    let mut total = 0.0;
    cost::visit_prices(inventory, catalog, |p| {
        if let Ok(usd) = p.result {
            total += cost::round_cents(usd);
        }
    });
    total
}

/// vCPU-weighted mean of the average CPU of running instances that have a CPU series and a
/// known type.
#[must_use]
pub fn utilisation(inventory: &Inventory, catalog: &PriceCatalog) -> Option<f64> {
    let index = inventory.series_index();
    let (weighted, vcpus) = inventory
        .instances
        .iter()
        .filter(|i| i.state == "running")
        .filter_map(|i| {
            let mean = index.get(&(i.id.as_str(), "CPUUtilization"))?.mean()?;
            let vcpu = f64::from(catalog.ec2_type(&i.instance_type).ok()?.vcpu);
            Some((mean * vcpu, vcpu))
        })
        .fold((0.0, 0.0), |(w, v), (dw, dv)| (w + dw, v + dv));
    (vcpus > 0.0).then(|| (weighted / vcpus * 100.0).round() / 100.0)
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
