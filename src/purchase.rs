//! Purchase options: Savings Plans and RDS reserved instances sized to the estate's steady
//! baseline, priced from the catalog's commitment rates.
//!
//! The baseline is what runs every hour: per hour of the lookback, the on-demand spend of the
//! instances that reported a datapoint in it, at the types the plan leaves them with (after
//! right-sizing); its minimum over the hours is what a commitment can cover without ever paying
//! for idle commitment. Each option states its coverage (the baseline over the mean spend), its
//! saving and its break-even.
//!
//! These are recommendations, never purchases. They always need a human's approval (the plan's
//! thresholds name any 3-year term and any Savings Plan of $10,000 or more), they are not
//! execution-plan steps, and they do not keep the loop from converging. The engine's SDK clients
//! (EC2, RDS, S3, CloudWatch) cannot buy either: a human buys them in the console, or through
//! the Savings Plans API and RDS `PurchaseReservedDBInstancesOffering`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::{PriceCatalog, Rate, TermRates};
use crate::world::Inventory;

/// What is bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Commitment {
    /// $/hour of any EC2 usage, any family and Region.
    ComputeSavingsPlan,
    /// $/hour of one EC2 family in one Region.
    Ec2InstanceSavingsPlan,
    /// DB instances of one class in one Region.
    RdsReservedInstance,
}

impl Commitment {
    /// Whether this is a Savings Plan (the $10,000 approval threshold).
    #[must_use]
    pub fn is_savings_plan(self) -> bool {
        !matches!(self, Self::RdsReservedInstance)
    }

    fn name(self) -> &'static str {
        match self {
            Self::ComputeSavingsPlan => "Compute Savings Plan",
            Self::Ec2InstanceSavingsPlan => "EC2 Instance Savings Plan",
            Self::RdsReservedInstance => "RDS reserved instance",
        }
    }
}

/// A commitment's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Term {
    /// One year (8,760 hours).
    #[serde(rename = "1yr")]
    OneYear,
    /// Three years (26,280 hours).
    #[serde(rename = "3yr")]
    ThreeYear,
}

impl Term {
    /// Hours in the term, as AWS bills them (365-day years).
    #[must_use]
    pub fn hours(self) -> f64 {
        match self {
            Self::OneYear => 8760.0,
            Self::ThreeYear => 26_280.0,
        }
    }

    /// Both terms.
    pub const ALL: [Self; 2] = [Self::OneYear, Self::ThreeYear];
}

/// How a commitment is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Payment {
    /// Monthly, nothing upfront.
    NoUpfront,
    /// Part upfront, the rest monthly.
    PartialUpfront,
    /// Everything upfront.
    AllUpfront,
}

impl Payment {
    /// The three options.
    pub const ALL: [Self; 3] = [Self::NoUpfront, Self::PartialUpfront, Self::AllUpfront];
}

fn rate(rates: &TermRates, term: Term, payment: Payment) -> Option<Rate> {
    let by_payment = match term {
        Term::OneYear => &rates.one_year,
        Term::ThreeYear => &rates.three_year,
    };
    match payment {
        Payment::NoUpfront => by_payment.no_upfront,
        Payment::PartialUpfront => by_payment.partial_upfront,
        Payment::AllUpfront => by_payment.all_upfront,
    }
}

/// Settings of the recommendations. Defaults: a 14-day lookback, 1-year no-upfront as the
/// option counted in the cost plan (Cost Explorer's default), and the plan's approval numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseConfig {
    /// Hours of history the baseline is the minimum of.
    pub lookback_hours: u32,
    /// The term of the option counted in the cost plan.
    pub preferred_term: Term,
    /// The payment of the option counted in the cost plan.
    pub preferred_payment: Payment,
    /// A Savings Plan committing this much over its term or more names the threshold, USD.
    pub savings_plan_threshold_usd: f64,
    /// An upfront payment of this much or more names the one-off threshold, USD.
    pub one_off_threshold_usd: f64,
}

impl Default for PurchaseConfig {
    fn default() -> Self {
        Self {
            lookback_hours: 14 * 24,
            preferred_term: Term::OneYear,
            preferred_payment: Payment::NoUpfront,
            savings_plan_threshold_usd: 10_000.0,
            one_off_threshold_usd: 5_000.0,
        }
    }
}

/// One priced option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseOption {
    /// What is bought.
    pub commitment: Commitment,
    /// What it covers: `EC2` (Compute), `m5 in us-east-1`, `db.m5.large in eu-west-1`.
    pub scope: String,
    /// Its length.
    pub term: Term,
    /// How it is paid.
    pub payment: Payment,
    /// Reserved instances bought (RDS); `None` for a Savings Plan.
    pub instances: Option<u32>,
    /// The on-demand spend it covers, USD an hour: the steady baseline.
    pub covered_on_demand_hourly_usd: f64,
    /// The commitment per hour, upfront fee spread over the term included, USD. For a Savings
    /// Plan, the hourly commitment bought.
    pub commitment_hourly_usd: f64,
    /// Paid at purchase, USD.
    pub upfront_usd: f64,
    /// Charged every hour of the term, USD.
    pub recurring_hourly_usd: f64,
    /// Everything paid over the term, USD.
    pub total_usd: f64,
    /// On-demand cost of the covered usage minus the commitment, USD a month.
    pub monthly_saving_usd: f64,
    /// The covered spend over the scope's mean on-demand spend, percent.
    pub coverage_percent: f64,
    /// Months until the saving has paid back the upfront fee (0 without one).
    pub break_even_months: f64,
    /// The share of the covered usage that must keep running for the commitment to cost no
    /// more than on-demand, percent.
    pub break_even_utilisation_percent: f64,
    /// Why it waits for a human; never empty.
    pub approval_reasons: Vec<String>,
}

/// The purchase recommendations of an iteration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchasePlan {
    /// Where the rates come from, and their date.
    pub rates: Option<String>,
    /// Hours of history the baselines are the minimum of.
    pub hours: usize,
    /// Every priced option, per commitment and scope, each term and payment.
    pub options: Vec<PurchaseOption>,
    /// The options counted in the cost plan: the preferred term and payment of a Compute
    /// Savings Plan over EC2 (it follows right-sizing across families and Regions) and of RDS
    /// reserved instances per class.
    pub recommended: Vec<PurchaseOption>,
    /// Usage left on demand, and why: no rates for its family, no steady baseline, ….
    pub not_covered: Vec<String>,
}

impl crate::artefact::Artefact for PurchasePlan {
    const WHAT: &'static str = "the purchase recommendations (θ3)";
}

impl PurchasePlan {
    /// The monthly saving of the recommended options, USD.
    #[must_use]
    pub fn monthly_saving_usd(&self) -> f64 {
        self.recommended.iter().map(|o| o.monthly_saving_usd).sum()
    }
}

/// On-demand spend per hour of the lookback, for one scope.
#[derive(Debug, Clone, Default)]
struct Usage {
    /// USD per hour slot.
    spend: Vec<f64>,
    /// Instances running per hour slot (RDS).
    count: Vec<u32>,
}

impl Usage {
    fn new(hours: usize) -> Self {
        Self {
            spend: vec![0.0; hours],
            count: vec![0; hours],
        }
    }

    #[allow(clippy::cast_precision_loss)] // hours in a lookback
    fn mean(&self) -> f64 {
        if self.spend.is_empty() {
            0.0
        } else {
            self.spend.iter().sum::<f64>() / self.spend.len() as f64
        }
    }
}

/// The hour slots of the lookback: every hour with a datapoint of any running resource's CPU,
/// ending at the latest one.
fn hour_slots(inventory: &Inventory, lookback_hours: u32) -> Vec<i64> {
    let mut hours: Vec<i64> = inventory
        .metrics
        .iter()
        .filter(|m| m.metric_name == "CPUUtilization")
        .flat_map(|m| m.timestamps.iter().map(|t| t.div_euclid(3600)))
        .collect();
    hours.sort_unstable();
    hours.dedup();
    let Some(&last) = hours.last() else {
        return hours;
    };
    let first = last - i64::from(lookback_hours) + 1;
    hours.retain(|h| *h >= first);
    hours
}

fn family(instance_type: &str) -> &str {
    instance_type.rsplit_once('.').map_or(instance_type, |(f, _)| f)
}

/// The usage of running EC2 instances per (family, Region) and of available DB instances per
/// (class, Region, Multi-AZ), over `slots`.
struct Estate {
    ec2: BTreeMap<(String, String), Usage>,
    rds: BTreeMap<(String, String, bool), (f64, Usage)>,
    unpriced: Vec<String>,
}

fn usage(inventory: &Inventory, catalog: &PriceCatalog, slots: &[i64]) -> Estate {
    let series = inventory.series_index();
    let slot_of: std::collections::HashMap<i64, usize> = slots.iter().enumerate().map(|(k, h)| (*h, k)).collect();
    let present = |id: &str| -> Vec<usize> {
        series
            .get(&(id, "CPUUtilization"))
            .map(|s| {
                let mut at: Vec<usize> = s
                    .timestamps
                    .iter()
                    .filter_map(|t| slot_of.get(&t.div_euclid(3600)).copied())
                    .collect();
                at.dedup();
                at
            })
            .unwrap_or_default()
    };
    let mut estate = Estate {
        ec2: BTreeMap::new(),
        rds: BTreeMap::new(),
        unpriced: Vec::new(),
    };
    for i in inventory.instances.iter().filter(|i| i.state == "running") {
        let Ok(monthly) = catalog.ec2_monthly(&i.instance_type, &i.region) else {
            estate
                .unpriced
                .push(format!("{} ({}): not in the price catalog", i.id, i.instance_type));
            continue;
        };
        let hourly = monthly / catalog.hours_per_month;
        let key = (family(&i.instance_type).to_owned(), i.region.clone());
        let u = estate.ec2.entry(key).or_insert_with(|| Usage::new(slots.len()));
        for k in present(&i.id) {
            u.spend[k] += hourly;
            u.count[k] += 1;
        }
    }
    for d in inventory.db_instances.iter().filter(|d| d.status == "available") {
        let (Ok(spec), Ok(multiplier)) = (catalog.rds_class(&d.class), catalog.region_multiplier(&d.region)) else {
            estate
                .unpriced
                .push(format!("{} ({}): not in the price catalog", d.id, d.class));
            continue;
        };
        let az = if d.multi_az { catalog.rds_multi_az_factor } else { 1.0 };
        let hourly = spec.hourly_usd * multiplier * az;
        let key = (d.class.clone(), d.region.clone(), d.multi_az);
        let (_, u) = estate
            .rds
            .entry(key)
            .or_insert_with(|| (hourly, Usage::new(slots.len())));
        for k in present(&d.id) {
            u.spend[k] += hourly;
            u.count[k] += 1;
        }
    }
    estate
}

/// The figures of one option from what it covers and what it costs per hour.
#[allow(clippy::too_many_arguments)]
fn priced(
    commitment: Commitment,
    scope: String,
    term: Term,
    payment: Payment,
    instances: Option<u32>,
    covered: f64,
    upfront_hourly: f64,
    recurring_hourly: f64,
    mean: f64,
    catalog: &PriceCatalog,
    config: &PurchaseConfig,
) -> PurchaseOption {
    let month = catalog.hours_per_month;
    let commitment_hourly = upfront_hourly + recurring_hourly;
    let upfront_usd = upfront_hourly * term.hours();
    let total_usd = commitment_hourly * term.hours();
    let monthly_gain_after_upfront = (covered - recurring_hourly) * month;
    let break_even_months = if upfront_usd <= 0.0 {
        0.0
    } else if monthly_gain_after_upfront > 0.0 {
        upfront_usd / monthly_gain_after_upfront
    } else {
        f64::INFINITY
    };
    let mut approval_reasons = Vec::new();
    if term == Term::ThreeYear {
        approval_reasons.push("a 3-year term".to_owned());
    }
    if commitment.is_savings_plan() && total_usd >= config.savings_plan_threshold_usd {
        approval_reasons.push(format!(
            "a Savings Plan of ${total_usd:.0} over its term (threshold ${:.0})",
            config.savings_plan_threshold_usd
        ));
    }
    if upfront_usd >= config.one_off_threshold_usd {
        approval_reasons.push(format!(
            "${upfront_usd:.0} upfront (one-off threshold ${:.0})",
            config.one_off_threshold_usd
        ));
    }
    if approval_reasons.is_empty() {
        approval_reasons.push(format!("a purchase: ${total_usd:.0} committed over its term"));
    }
    PurchaseOption {
        commitment,
        scope,
        term,
        payment,
        instances,
        covered_on_demand_hourly_usd: covered,
        commitment_hourly_usd: commitment_hourly,
        upfront_usd,
        recurring_hourly_usd: recurring_hourly,
        total_usd,
        monthly_saving_usd: (covered - commitment_hourly) * month,
        coverage_percent: if mean > 0.0 { covered / mean * 100.0 } else { 0.0 },
        break_even_months,
        break_even_utilisation_percent: if covered > 0.0 {
            commitment_hourly / covered * 100.0
        } else {
            0.0
        },
        approval_reasons,
    }
}

/// Purchase recommendations for `inventory`, which should be the estate as the plan leaves
/// it (right-sized), with its metric series whole (not cut at recent changes: the baseline is
/// about which resources ran, not how busy they were).
#[must_use]
#[allow(clippy::too_many_lines)] // three commitments, read top to bottom
pub fn recommend(inventory: &Inventory, catalog: &PriceCatalog, config: &PurchaseConfig) -> PurchasePlan {
    let Some(rates) = &catalog.commitments else {
        return PurchasePlan {
            not_covered: vec!["the price catalog has no commitment rates".into()],
            ..PurchasePlan::default()
        };
    };
    let slots = hour_slots(inventory, config.lookback_hours);
    let estate = usage(inventory, catalog, &slots);
    let mut plan = PurchasePlan {
        rates: Some(format!("{} as of {}", rates.source, rates.as_of)),
        hours: slots.len(),
        not_covered: estate.unpriced,
        ..PurchasePlan::default()
    };
    let preferred = |o: &PurchaseOption| o.term == config.preferred_term && o.payment == config.preferred_payment;

    // Compute Savings Plan: one commitment over every family with rates. Per option, the
    // commitment is the least hourly cost at its rates, so that no hour leaves it unused.
    let compute: Vec<(&(String, String), &Usage, &TermRates)> = estate
        .ec2
        .iter()
        .filter_map(|(key, u)| rates.compute_savings_plan.get(&key.0).map(|r| (key, u, r)))
        .collect();
    for (key, _) in estate
        .ec2
        .iter()
        .filter(|(k, _)| !rates.compute_savings_plan.contains_key(&k.0))
    {
        plan.not_covered
            .push(format!("{} in {}: no Savings Plans rates for the family", key.0, key.1));
    }
    if !compute.is_empty() && !slots.is_empty() {
        let mean: f64 = compute.iter().map(|(_, u, _)| u.mean()).sum();
        for term in Term::ALL {
            for payment in Payment::ALL {
                // Every family must offer the option for one plan to cover them all.
                let Some(priced_rates) = compute
                    .iter()
                    .map(|(_, u, r)| rate(r, term, payment).map(|rate| (*u, rate)))
                    .collect::<Option<Vec<_>>>()
                else {
                    continue;
                };
                // (on-demand, upfront part, recurring part) per hour slot.
                let at = |k: usize| {
                    priced_rates.iter().fold((0.0, 0.0, 0.0), |(od, up, rec), (u, rate)| {
                        let spend = u.spend[k];
                        (od + spend, up + spend * rate.upfront, rec + spend * rate.hourly)
                    })
                };
                let (covered, upfront, recurring) = (0..slots.len())
                    .map(at)
                    .min_by(|a, b| (a.1 + a.2).total_cmp(&(b.1 + b.2)))
                    .unwrap_or_default();
                if covered <= 0.0 {
                    continue;
                }
                plan.options.push(priced(
                    Commitment::ComputeSavingsPlan,
                    "EC2".into(),
                    term,
                    payment,
                    None,
                    covered,
                    upfront,
                    recurring,
                    mean,
                    catalog,
                    config,
                ));
            }
        }
    }
    plan.recommended.extend(
        plan.options
            .iter()
            .filter(|o| o.commitment == Commitment::ComputeSavingsPlan && preferred(o))
            .cloned(),
    );

    // EC2 Instance Savings Plans: per family and Region, an alternative to the Compute plan.
    for ((fam, region), u, r) in compute.iter().filter_map(|(key, u, _)| {
        rates
            .ec2_instance_savings_plan
            .get(&key.0)
            .map(|r| ((&key.0, &key.1), *u, r))
    }) {
        let steady = u.spend.iter().copied().fold(f64::INFINITY, f64::min);
        if !(steady.is_finite() && steady > 0.0) {
            continue;
        }
        for term in Term::ALL {
            for payment in Payment::ALL {
                let Some(rate) = rate(r, term, payment) else { continue };
                plan.options.push(priced(
                    Commitment::Ec2InstanceSavingsPlan,
                    format!("{fam} in {region}"),
                    term,
                    payment,
                    None,
                    steady,
                    steady * rate.upfront,
                    steady * rate.hourly,
                    u.mean(),
                    catalog,
                    config,
                ));
            }
        }
    }

    // RDS reserved instances: as many of a class as ran every hour.
    for ((class, region, multi_az), (hourly, u)) in &estate.rds {
        let scope = format!("{class}{} in {region}", if *multi_az { " Multi-AZ" } else { "" });
        let Some(r) = rates.rds_reserved.get(family(class)) else {
            plan.not_covered
                .push(format!("{scope}: no reserved-instance rates for the family"));
            continue;
        };
        let steady = u.count.iter().copied().min().unwrap_or(0);
        if steady == 0 {
            plan.not_covered
                .push(format!("{scope}: no instance ran every hour of the lookback"));
            continue;
        }
        let covered = f64::from(steady) * hourly;
        for term in Term::ALL {
            for payment in Payment::ALL {
                let Some(rate) = rate(r, term, payment) else { continue };
                let option = priced(
                    Commitment::RdsReservedInstance,
                    scope.clone(),
                    term,
                    payment,
                    Some(steady),
                    covered,
                    covered * rate.upfront,
                    covered * rate.hourly,
                    u.mean(),
                    catalog,
                    config,
                );
                if preferred(&option) {
                    plan.recommended.push(option.clone());
                }
                plan.options.push(option);
            }
        }
    }
    plan
}

impl std::fmt::Display for PurchaseOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let term = match self.term {
            Term::OneYear => "1-year",
            Term::ThreeYear => "3-year",
        };
        let payment = match self.payment {
            Payment::NoUpfront => "no upfront",
            Payment::PartialUpfront => "partial upfront",
            Payment::AllUpfront => "all upfront",
        };
        write!(f, "{} ({term}, {payment}) for {}", self.commitment.name(), self.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assessment::checks::fixtures::{db, instance};
    use crate::catalog::{CommitmentRates, PaymentRates};
    use crate::world::MetricSeries;

    fn rates(one: [(f64, f64); 3], three: [(f64, f64); 3]) -> TermRates {
        let payments = |r: [(f64, f64); 3]| {
            let rate = |(upfront, hourly)| Some(Rate { upfront, hourly });
            PaymentRates {
                no_upfront: rate(r[0]),
                partial_upfront: rate(r[1]),
                all_upfront: rate(r[2]),
            }
        };
        TermRates {
            one_year: payments(one),
            three_year: payments(three),
        }
    }

    fn catalog() -> PriceCatalog {
        let mut catalog = PriceCatalog::built_in().clone();
        catalog.commitments = Some(CommitmentRates {
            source: "hand-made for the test".into(),
            as_of: "2026-12-06".into(),
            compute_savings_plan: BTreeMap::from([(
                "m5".into(),
                rates(
                    [(0.0, 0.72), (0.35, 0.35), (0.68, 0.0)],
                    [(0.0, 0.5), (0.24, 0.24), (0.46, 0.0)],
                ),
            )]),
            ec2_instance_savings_plan: BTreeMap::from([(
                "m5".into(),
                rates(
                    [(0.0, 0.62), (0.3, 0.3), (0.58, 0.0)],
                    [(0.0, 0.42), (0.2, 0.2), (0.38, 0.0)],
                ),
            )]),
            rds_reserved: BTreeMap::from([(
                "db.m5".into(),
                rates(
                    [(0.0, 0.7), (0.3, 0.3), (0.58, 0.0)],
                    [(0.0, 0.5), (0.2, 0.2), (0.37, 0.0)],
                ),
            )]),
        });
        // As AWS: RDS sells no 3-year reservation without an upfront payment.
        if let Some(c) = catalog.commitments.as_mut() {
            if let Some(db) = c.rds_reserved.get_mut("db.m5") {
                db.three_year.no_upfront = None;
            }
        }
        catalog
    }

    /// CPU datapoints of `id` at the hours `hours` (from a fixed start).
    fn ran(id: &str, hours: std::ops::Range<i64>) -> MetricSeries {
        MetricSeries {
            resource_id: id.into(),
            region: "us-east-1".into(),
            namespace: "AWS/EC2".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: BTreeMap::new(),
            stat: "Average".into(),
            period_seconds: 3600,
            values: hours.clone().map(|_| 10.0).collect(),
            timestamps: hours.map(|h| 1_800_000_000 + h * 3600).collect(),
        }
    }

    /// Two m5.large running all 48 hours and a third for the last 24; one Multi-AZ
    /// db.m5.large all 48 hours.
    fn estate() -> Inventory {
        let mut inv = db(|d| d.multi_az = true);
        inv.instances = ["i-a", "i-b", "i-c"].map(instance).to_vec();
        inv.metrics = vec![
            ran("i-a", 0..48),
            ran("i-b", 0..48),
            ran("i-c", 24..48),
            ran("db-1", 0..48),
        ];
        inv
    }

    fn option(plan: &PurchasePlan, c: Commitment, term: Term, payment: Payment) -> &PurchaseOption {
        plan.options
            .iter()
            .find(|o| o.commitment == c && o.term == term && o.payment == payment)
            .unwrap_or_else(|| panic!("no {c:?} {term:?} {payment:?} in {:?}", plan.options))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_baseline_is_the_hourly_minimum_and_coverage_is_over_the_mean() {
        let plan = recommend(&estate(), &catalog(), &PurchaseConfig::default());
        assert_eq!(plan.hours, 48);
        let sp = option(&plan, Commitment::ComputeSavingsPlan, Term::OneYear, Payment::NoUpfront);
        // Two m5.large every hour: 2 × 0.096; the mean adds the third for half the hours.
        assert!(close(sp.covered_on_demand_hourly_usd, 0.192), "{sp:?}");
        assert!(close(sp.coverage_percent, 0.192 / 0.24 * 100.0), "{sp:?}");
        // 72% of on-demand, monthly: (0.192 − 0.13824) × 730.
        assert!(close(sp.commitment_hourly_usd, 0.138_24), "{sp:?}");
        assert!(close(sp.monthly_saving_usd, 39.2448), "{sp:?}");
        assert!(close(sp.upfront_usd, 0.0) && close(sp.break_even_months, 0.0), "{sp:?}");
        assert!(close(sp.break_even_utilisation_percent, 72.0), "{sp:?}");
        assert_eq!(sp.approval_reasons, ["a purchase: $1211 committed over its term"]);
        assert_eq!(plan.recommended.len(), 2, "{:?}", plan.recommended);
    }

    #[test]
    fn break_even_pays_back_the_upfront_fee() {
        let plan = recommend(&estate(), &catalog(), &PurchaseConfig::default());
        // All upfront, 1 year: 0.192 × 0.68 × 8,760 = 1,143.7056 paid at once, nothing after;
        // paid back by 0.192 × 730 = 140.16 a month of on-demand avoided: 8.16 months.
        let all = option(
            &plan,
            Commitment::ComputeSavingsPlan,
            Term::OneYear,
            Payment::AllUpfront,
        );
        assert!(close(all.upfront_usd, 1143.7056), "{all:?}");
        assert!(close(all.recurring_hourly_usd, 0.0), "{all:?}");
        assert!(close(all.break_even_months, 1143.7056 / 140.16), "{all:?}");
        assert!(close(all.monthly_saving_usd, (0.192 - 0.130_56) * 730.0), "{all:?}");
        // Partial upfront, 3 years: 0.04608 × 26,280 upfront and 0.04608 an hour after, paid
        // back by (0.192 − 0.04608) × 730 a month.
        let partial = option(
            &plan,
            Commitment::ComputeSavingsPlan,
            Term::ThreeYear,
            Payment::PartialUpfront,
        );
        assert!(close(partial.upfront_usd, 0.046_08 * 26_280.0), "{partial:?}");
        assert!(
            close(
                partial.break_even_months,
                0.046_08 * 26_280.0 / ((0.192 - 0.046_08) * 730.0)
            ),
            "{partial:?}"
        );
        assert_eq!(partial.approval_reasons, ["a 3-year term"]);
    }

    #[test]
    fn rds_reserves_what_ran_every_hour_and_large_plans_name_their_thresholds() {
        let catalog = catalog();
        let plan = recommend(&estate(), &catalog, &PurchaseConfig::default());
        let ri = option(
            &plan,
            Commitment::RdsReservedInstance,
            Term::OneYear,
            Payment::PartialUpfront,
        );
        assert_eq!(ri.instances, Some(1));
        assert_eq!(ri.scope, "db.m5.large Multi-AZ in us-east-1");
        // Multi-AZ doubles the on-demand 0.171; the fee is 30% of it over the 8,760 hours.
        let od = 0.171 * 2.0;
        assert!(close(ri.covered_on_demand_hourly_usd, od), "{ri:?}");
        assert!(close(ri.upfront_usd, od * 0.3 * 8760.0), "{ri:?}");
        assert!(close(ri.monthly_saving_usd, od * 0.4 * 730.0), "{ri:?}");
        assert!(close(ri.coverage_percent, 100.0), "{ri:?}");
        let rds = |term, payment| {
            plan.options
                .iter()
                .any(|o| o.commitment == Commitment::RdsReservedInstance && o.term == term && o.payment == payment)
        };
        assert!(rds(Term::OneYear, Payment::NoUpfront) && !rds(Term::ThreeYear, Payment::NoUpfront));
        // An estate 20 times larger: the 1-year Compute plan commits 20 × 1,211 = $24,220.
        let mut big = estate();
        let more: Vec<_> = (0..40)
            .map(|k| {
                let mut i = instance(&format!("i-{k}"));
                i.instance_type = "m5.large".into();
                i
            })
            .collect();
        big.metrics.extend(more.iter().map(|i| ran(&i.id, 0..48)));
        big.instances = more;
        let plan = recommend(&big, &catalog, &PurchaseConfig::default());
        let sp = option(&plan, Commitment::ComputeSavingsPlan, Term::OneYear, Payment::NoUpfront);
        assert!(close(sp.total_usd, 40.0 * 0.096 * 0.72 * 8760.0), "{sp:?}");
        assert_eq!(
            sp.approval_reasons,
            ["a Savings Plan of $24220 over its term (threshold $10000)"]
        );
    }

    #[test]
    fn the_instance_plan_is_per_family_and_region_and_unrated_usage_is_named() {
        let mut inv = estate();
        let mut c5 = instance("i-c5");
        c5.instance_type = "c5.large".into();
        inv.instances.push(c5);
        inv.metrics.push(ran("i-c5", 0..48));
        let plan = recommend(&inv, &catalog(), &PurchaseConfig::default());
        let isp = option(
            &plan,
            Commitment::Ec2InstanceSavingsPlan,
            Term::ThreeYear,
            Payment::NoUpfront,
        );
        assert_eq!(isp.scope, "m5 in us-east-1");
        assert!(close(isp.commitment_hourly_usd, 0.192 * 0.42), "{isp:?}");
        assert!(
            plan.not_covered
                .iter()
                .any(|n| n == "c5 in us-east-1: no Savings Plans rates for the family"),
            "{:?}",
            plan.not_covered
        );
        // A catalog without rates recommends nothing and says why.
        let mut without = PriceCatalog::built_in().clone();
        without.commitments = None;
        let bare = recommend(&inv, &without, &PurchaseConfig::default());
        assert!(bare.options.is_empty() && bare.recommended.is_empty());
        assert_eq!(bare.not_covered, ["the price catalog has no commitment rates"]);
    }
}
