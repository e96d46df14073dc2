//! A price catalog built from AWS Price List bulk offer files: `AmazonEC2` (instances and EBS
//! volumes), `AmazonRDS`, `AmazonS3` and the `AWSComputeSavingsPlan` price list.
//!
//! Offer files hold `products` keyed by SKU and `terms.OnDemand` / `terms.Reserved` keyed by SKU
//! then term code; each term's `priceDimensions` carry a `unit` (`Hrs`, `GB-Mo`, `Quantity` for
//! an upfront fee) and `pricePerUnit.USD` as a decimal string. Reserved terms say what they are in
//! `termAttributes` (`LeaseContractLength`, `OfferingClass`, `PurchaseOption`). The Savings Plans
//! file is shaped differently: `products` and `terms.savingsPlan` are arrays, and each plan's
//! `rates` name the on-demand SKU they discount (`discountedSku`).
//!
//! Only what the engine prices is read: Linux, shared tenancy, no pre-installed software, used
//! capacity for EC2; Single-AZ MySQL for RDS (the catalog's reference engine); S3 Standard's first
//! tier. What the files do not give (Regions other than the file's, RDS storage, EBS IOPS, public
//! IPv4) is kept from a base catalog, and the result's `source` says which tables came from where.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{CommitmentRates, InstanceSpec, PaymentRates, PriceCatalog, Rate, TermRates};

/// Why offer files could not become a catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// A file could not be read.
    #[error("cannot read offer file {path}: {message}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        message: String,
    },
    /// A file is not an offer file of the expected shape.
    #[error("{file}: not an offer file: {message}")]
    Shape {
        /// Which file (`AmazonEC2`, `AWSComputeSavingsPlan`, …).
        file: &'static str,
        /// The parser's message, with its line and column.
        message: String,
    },
    /// A price is not a decimal number.
    #[error("{file}: SKU {sku}: price {price:?} is not a number")]
    Price {
        /// Which file.
        file: &'static str,
        /// The product.
        sku: String,
        /// The text found.
        price: String,
    },
    /// The file holds nothing the engine prices.
    #[error("{file}: no {what} in the file")]
    Empty {
        /// Which file.
        file: &'static str,
        /// What was looked for.
        what: &'static str,
    },
    /// The catalog built breaks a catalog rule.
    #[error("the catalog built from the offer files is invalid: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct OfferFile {
    #[serde(rename = "publicationDate")]
    publication_date: String,
    version: String,
    products: HashMap<String, Product>,
    #[serde(default)]
    terms: Terms,
}

#[derive(Deserialize)]
struct Product {
    #[serde(rename = "productFamily", default)]
    family: String,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

impl Product {
    fn attr(&self, name: &str) -> &str {
        self.attributes.get(name).map_or("", String::as_str)
    }
}

#[derive(Deserialize, Default)]
struct Terms {
    #[serde(rename = "OnDemand", default)]
    on_demand: HashMap<String, HashMap<String, Term>>,
    #[serde(rename = "Reserved", default)]
    reserved: HashMap<String, HashMap<String, Term>>,
}

#[derive(Deserialize)]
struct Term {
    #[serde(rename = "priceDimensions")]
    dimensions: HashMap<String, Dimension>,
    #[serde(rename = "termAttributes", default)]
    attributes: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Dimension {
    unit: String,
    #[serde(rename = "pricePerUnit")]
    price: HashMap<String, String>,
    #[serde(rename = "beginRange", default)]
    begin: Option<String>,
}

#[derive(Deserialize)]
struct SavingsPlanFile {
    #[serde(rename = "publicationDate")]
    publication_date: String,
    products: Vec<SavingsPlanProduct>,
    terms: SavingsPlanTerms,
}

#[derive(Deserialize)]
struct SavingsPlanProduct {
    sku: String,
    #[serde(rename = "productFamily")]
    family: String,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

#[derive(Deserialize)]
struct SavingsPlanTerms {
    #[serde(rename = "savingsPlan")]
    plans: Vec<SavingsPlanTerm>,
}

#[derive(Deserialize)]
struct SavingsPlanTerm {
    sku: String,
    rates: Vec<SavingsPlanRate>,
}

#[derive(Deserialize)]
struct SavingsPlanRate {
    #[serde(rename = "discountedSku")]
    discounted_sku: String,
    #[serde(rename = "discountedOperation", default)]
    operation: String,
    #[serde(rename = "discountedRate")]
    rate: DiscountedRate,
}

#[derive(Deserialize)]
struct DiscountedRate {
    price: String,
}

/// The text of each offer file; those absent keep the base catalog's tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfferTexts<'a> {
    /// `AmazonEC2` for the Region: instances and EBS volumes.
    pub ec2: Option<&'a str>,
    /// `AmazonRDS` for the Region.
    pub rds: Option<&'a str>,
    /// `AmazonS3` for the Region.
    pub s3: Option<&'a str>,
    /// `AWSComputeSavingsPlan` for the Region.
    pub savings_plans: Option<&'a str>,
}

fn parse<T: for<'de> Deserialize<'de>>(file: &'static str, text: &str) -> Result<T, OfferError> {
    serde_json::from_str(text).map_err(|e| OfferError::Shape {
        file,
        message: e.to_string(),
    })
}

fn number(file: &'static str, sku: &str, text: &str) -> Result<f64, OfferError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| OfferError::Price {
            file,
            sku: sku.to_owned(),
            price: text.to_owned(),
        })
}

/// The USD price of the first dimension of `term` with `unit` (the lowest tier when tiered).
fn price_in(file: &'static str, sku: &str, term: &Term, unit: &str) -> Result<Option<f64>, OfferError> {
    let mut tiers: Vec<(f64, f64)> = Vec::new();
    for d in term.dimensions.values().filter(|d| d.unit == unit) {
        let Some(usd) = d.price.get("USD") else { continue };
        let begin = d.begin.as_deref().map_or(Ok(0.0), |b| number(file, sku, b))?;
        tiers.push((begin, number(file, sku, usd)?));
    }
    Ok(tiers.into_iter().min_by(|a, b| a.0.total_cmp(&b.0)).map(|(_, usd)| usd))
}

/// The single on-demand price of `sku` in `unit`, if the file has one.
fn on_demand(file: &'static str, offer: &OfferFile, sku: &str, unit: &str) -> Result<Option<f64>, OfferError> {
    let Some(terms) = offer.terms.on_demand.get(sku) else {
        return Ok(None);
    };
    for term in terms.values() {
        if let Some(usd) = price_in(file, sku, term, unit)? {
            return Ok(Some(usd));
        }
    }
    Ok(None)
}

/// `"8 GiB"`, `"0.5 GiB"`, `"1,952 GiB"` → GiB.
fn gib(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.replace(',', "").parse().ok()
}

fn family(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(f, _)| f)
}

/// Instance types (or DB classes) by name, with the SKU of each: (name, SKU, spec).
type Specs = Vec<(String, String, InstanceSpec)>;

fn ec2_instances(offer: &OfferFile) -> Result<Specs, OfferError> {
    let mut out = Vec::new();
    for (sku, p) in &offer.products {
        let linux_shared = p.family == "Compute Instance"
            && p.attr("operatingSystem") == "Linux"
            && p.attr("tenancy") == "Shared"
            && p.attr("preInstalledSw") == "NA"
            && p.attr("capacitystatus") == "Used";
        if !linux_shared {
            continue;
        }
        let name = p.attr("instanceType");
        let (Ok(vcpu), Some(memory_gib)) = (p.attr("vcpu").parse::<u32>(), gib(p.attr("memory"))) else {
            continue;
        };
        let Some(hourly_usd) = on_demand("AmazonEC2", offer, sku, "Hrs")? else {
            continue;
        };
        let graviton = p.attr("physicalProcessor").contains("Graviton");
        out.push((
            name.to_owned(),
            sku.clone(),
            InstanceSpec {
                vcpu,
                memory_gib,
                hourly_usd,
                architecture: if graviton { "arm64" } else { "x86_64" }.into(),
                burstable: name.starts_with('t'),
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn ebs_volumes(offer: &OfferFile) -> Result<BTreeMap<String, f64>, OfferError> {
    let mut out = BTreeMap::new();
    for (sku, p) in offer.products.iter().filter(|(_, p)| p.family == "Storage") {
        let api_name = p.attr("volumeApiName");
        if api_name.is_empty() {
            continue;
        }
        if let Some(usd) = on_demand("AmazonEC2", offer, sku, "GB-Mo")? {
            out.insert(api_name.to_owned(), usd);
        }
    }
    Ok(out)
}

fn rds_classes(offer: &OfferFile) -> Result<Specs, OfferError> {
    let mut out = Vec::new();
    for (sku, p) in &offer.products {
        if !(p.family == "Database Instance"
            && p.attr("deploymentOption") == "Single-AZ"
            && p.attr("databaseEngine") == "MySQL")
        {
            continue;
        }
        let (Ok(vcpu), Some(memory_gib)) = (p.attr("vcpu").parse::<u32>(), gib(p.attr("memory"))) else {
            continue;
        };
        let Some(hourly_usd) = on_demand("AmazonRDS", offer, sku, "Hrs")? else {
            continue;
        };
        let name = p.attr("instanceType");
        out.push((
            name.to_owned(),
            sku.clone(),
            InstanceSpec {
                vcpu,
                memory_gib,
                hourly_usd,
                // Graviton classes: db.m6g, db.r7g, db.t4g, …
                architecture: if family(name).ends_with('g') { "arm64" } else { "x86_64" }.into(),
                burstable: name.starts_with("db.t"),
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Term and payment of a reservation's or Savings Plan's attributes.
fn slot(term: &str, payment: &str) -> Option<(bool, usize)> {
    let three = match term {
        "1yr" => false,
        "3yr" => true,
        _ => return None,
    };
    let k = match payment {
        "No Upfront" => 0,
        "Partial Upfront" => 1,
        "All Upfront" => 2,
        _ => return None,
    };
    Some((three, k))
}

/// Rates per family name.
type ByFamily = BTreeMap<String, TermRates>;

/// Sums of (upfront, hourly, sizes) per (three-year, payment index).
type SlotSums = BTreeMap<(bool, usize), (f64, f64, u32)>;

/// The Savings Plans rates of a price list.
struct PlanRates {
    date: String,
    compute: ByFamily,
    instance: ByFamily,
}

/// Averages of per-size fractions, per family and (term, payment).
#[derive(Default)]
struct FractionSums(BTreeMap<String, SlotSums>);

impl FractionSums {
    fn add(&mut self, family: &str, at: (bool, usize), upfront: f64, hourly: f64) {
        let e = self.0.entry(family.to_owned()).or_default().entry(at).or_default();
        e.0 += upfront;
        e.1 += hourly;
        e.2 += 1;
    }

    fn rates(self) -> ByFamily {
        self.0
            .into_iter()
            .map(|(family, slots)| {
                let rate = |three: bool, k: usize| {
                    slots.get(&(three, k)).map(|(u, h, n)| Rate {
                        upfront: u / f64::from(*n),
                        hourly: h / f64::from(*n),
                    })
                };
                let payments = |three| PaymentRates {
                    no_upfront: rate(three, 0),
                    partial_upfront: rate(three, 1),
                    all_upfront: rate(three, 2),
                };
                (
                    family,
                    TermRates {
                        one_year: payments(false),
                        three_year: payments(true),
                    },
                )
            })
            .collect()
    }
}

/// RDS standard reservations as fractions of on-demand, per class family.
fn rds_reserved(offer: &OfferFile, classes: &Specs) -> Result<ByFamily, OfferError> {
    let mut sums = FractionSums::default();
    for (name, sku, spec) in classes {
        let Some(terms) = offer.terms.reserved.get(sku) else {
            continue;
        };
        for term in terms.values() {
            let a = |k: &str| term.attributes.get(k).map_or("", String::as_str);
            if a("OfferingClass") != "standard" && !a("OfferingClass").is_empty() {
                continue;
            }
            let Some(at) = slot(a("LeaseContractLength"), a("PurchaseOption")) else {
                continue;
            };
            let hours = if at.0 { 26_280.0 } else { 8760.0 };
            let upfront = price_in("AmazonRDS", sku, term, "Quantity")?.unwrap_or(0.0);
            let hourly = price_in("AmazonRDS", sku, term, "Hrs")?.unwrap_or(0.0);
            if spec.hourly_usd > 0.0 {
                sums.add(
                    family(name),
                    at,
                    upfront / hours / spec.hourly_usd,
                    hourly / spec.hourly_usd,
                );
            }
        }
    }
    Ok(sums.rates())
}

/// Savings Plans rates as fractions of on-demand per EC2 family: (Compute, EC2 Instance).
fn savings_plans(text: &str, instances: &Specs) -> Result<PlanRates, OfferError> {
    const FILE: &str = "AWSComputeSavingsPlan";
    let file: SavingsPlanFile = parse(FILE, text)?;
    let by_sku: HashMap<&str, (&str, f64)> = instances
        .iter()
        .map(|(name, sku, spec)| (sku.as_str(), (name.as_str(), spec.hourly_usd)))
        .collect();
    let plans: HashMap<&str, &SavingsPlanProduct> = file.products.iter().map(|p| (p.sku.as_str(), p)).collect();
    let (mut compute, mut instance) = (FractionSums::default(), FractionSums::default());
    for term in &file.terms.plans {
        let Some(plan) = plans.get(term.sku.as_str()) else {
            continue;
        };
        let a = |k: &str| plan.attributes.get(k).map_or("", String::as_str);
        let Some(at) = slot(a("purchaseTerm"), a("purchaseOption")) else {
            continue;
        };
        let sums = match plan.family.as_str() {
            "ComputeSavingsPlans" => &mut compute,
            "EC2InstanceSavingsPlans" => &mut instance,
            _ => continue,
        };
        for r in term.rates.iter().filter(|r| r.operation == "RunInstances") {
            let Some((name, od)) = by_sku.get(r.discounted_sku.as_str()) else {
                continue;
            };
            let effective = number(FILE, &r.discounted_sku, &r.rate.price)?;
            if *od <= 0.0 {
                continue;
            }
            // A Savings Plan rate is the effective hourly price; the payment option splits the
            // commitment: all of it upfront, half, or none.
            let fraction = effective / od;
            let upfront_share = [0.0, 0.5, 1.0][at.1];
            sums.add(
                family(name),
                at,
                fraction * upfront_share,
                fraction * (1.0 - upfront_share),
            );
        }
    }
    Ok(PlanRates {
        date: file.publication_date,
        compute: compute.rates(),
        instance: instance.rates(),
    })
}

/// The paths of the offer files to read; those absent keep the base catalog's tables.
#[derive(Debug, Clone, Default)]
pub struct OfferPaths {
    /// `AmazonEC2` for the Region.
    pub ec2: Option<std::path::PathBuf>,
    /// `AmazonRDS` for the Region.
    pub rds: Option<std::path::PathBuf>,
    /// `AmazonS3` for the Region.
    pub s3: Option<std::path::PathBuf>,
    /// `AWSComputeSavingsPlan` for the Region.
    pub savings_plans: Option<std::path::PathBuf>,
}

/// [`build`] from files.
///
/// # Errors
/// [`OfferError::Read`] naming the file, or what [`build`] finds wrong in it.
pub fn build_from_files(base: &PriceCatalog, paths: &OfferPaths) -> Result<PriceCatalog, OfferError> {
    let read = |path: &Option<std::path::PathBuf>| {
        path.as_ref()
            .map(|p| {
                std::fs::read_to_string(p).map_err(|e| OfferError::Read {
                    path: p.clone(),
                    message: e.to_string(),
                })
            })
            .transpose()
    };
    let (ec2, rds, s3, savings_plans) = (
        read(&paths.ec2)?,
        read(&paths.rds)?,
        read(&paths.s3)?,
        read(&paths.savings_plans)?,
    );
    build(
        base,
        OfferTexts {
            ec2: ec2.as_deref(),
            rds: rds.as_deref(),
            s3: s3.as_deref(),
            savings_plans: savings_plans.as_deref(),
        },
    )
}

/// Savings Plans from their price list, RDS reservations from the RDS offer, whichever was read;
/// the other kept from the base catalog.
fn commitments(
    base: Option<&CommitmentRates>,
    reserved: Option<(String, ByFamily)>,
    plans: Option<PlanRates>,
) -> CommitmentRates {
    let mut sources = Vec::new();
    let (compute_savings_plan, ec2_instance_savings_plan, plans_date) = if let Some(p) = plans {
        sources.push("Savings Plans from the AWSComputeSavingsPlan price list".to_owned());
        (p.compute, p.instance, Some(p.date))
    } else {
        if let Some(b) = base {
            sources.push(format!("Savings Plans from {} as of {}", b.source, b.as_of));
        }
        (
            base.map(|b| b.compute_savings_plan.clone()).unwrap_or_default(),
            base.map(|b| b.ec2_instance_savings_plan.clone()).unwrap_or_default(),
            None,
        )
    };
    let rds_reserved = match reserved {
        Some((version, rates)) => {
            sources.push(format!("RDS standard reservations from AmazonRDS {version}"));
            rates
        }
        None => base.map(|b| b.rds_reserved.clone()).unwrap_or_default(),
    };
    CommitmentRates {
        source: format!(
            "fractions of on-demand, averaged over each family's sizes: {}",
            sources.join("; ")
        ),
        as_of: plans_date
            .map(|d| d.chars().take(10).collect())
            .or_else(|| base.map(|b| b.as_of.clone()))
            .unwrap_or_default(),
        compute_savings_plan,
        ec2_instance_savings_plan,
        rds_reserved,
    }
}

/// A catalog from `texts` over `base`: the tables the files give replace the base's, for the
/// base Region; everything else is kept, and `source` and `as_of` say which is which.
///
/// # Errors
/// [`OfferError`] naming the file and what is wrong with it.
pub fn build(base: &PriceCatalog, texts: OfferTexts<'_>) -> Result<PriceCatalog, OfferError> {
    let mut catalog = base.clone();
    let mut read = Vec::new();
    let mut instances: Specs = Vec::new();
    let mut dates = Vec::new();
    let mut reserved = None;
    let mut plans = None;
    if let Some(text) = texts.ec2 {
        let offer: OfferFile = parse("AmazonEC2", text)?;
        instances = ec2_instances(&offer)?;
        if instances.is_empty() {
            return Err(OfferError::Empty {
                file: "AmazonEC2",
                what: "Linux shared-tenancy instance with an on-demand price",
            });
        }
        catalog.ec2 = instances.iter().map(|(n, _, s)| (n.clone(), s.clone())).collect();
        let volumes = ebs_volumes(&offer)?;
        if !volumes.is_empty() {
            catalog.ebs_gb_month = volumes;
        }
        read.push(format!("AmazonEC2 {} (instances, EBS storage)", offer.version));
        dates.push(offer.publication_date);
    }
    if let Some(text) = texts.rds {
        let offer: OfferFile = parse("AmazonRDS", text)?;
        let classes = rds_classes(&offer)?;
        if classes.is_empty() {
            return Err(OfferError::Empty {
                file: "AmazonRDS",
                what: "Single-AZ MySQL DB instance with an on-demand price",
            });
        }
        reserved = Some((offer.version.clone(), rds_reserved(&offer, &classes)?));
        catalog.rds = classes.into_iter().map(|(n, _, s)| (n, s)).collect();
        read.push(format!("AmazonRDS {} (classes, reservations)", offer.version));
        dates.push(offer.publication_date);
    }
    if let Some(text) = texts.s3 {
        let offer: OfferFile = parse("AmazonS3", text)?;
        let standard = offer.products.iter().find(|(_, p)| {
            p.family == "Storage" && p.attr("volumeType") == "Standard" && p.attr("storageClass") == "General Purpose"
        });
        let Some((sku, _)) = standard else {
            return Err(OfferError::Empty {
                file: "AmazonS3",
                what: "S3 Standard storage product",
            });
        };
        if let Some(usd) = on_demand("AmazonS3", &offer, sku, "GB-Mo")? {
            catalog.s3_gb_month.insert("STANDARD".into(), usd);
        }
        read.push(format!("AmazonS3 {} (Standard storage)", offer.version));
        dates.push(offer.publication_date);
    }
    if let Some(text) = texts.savings_plans {
        if instances.is_empty() {
            return Err(OfferError::Empty {
                file: "AmazonEC2",
                what: "instance to join the Savings Plans rates to (give the EC2 offer file too)",
            });
        }
        let rates = savings_plans(text, &instances)?;
        read.push("AWSComputeSavingsPlan (Savings Plans rates)".into());
        dates.push(rates.date.clone());
        plans = Some(rates);
    }
    if reserved.is_some() || plans.is_some() {
        catalog.commitments = Some(commitments(base.commitments.as_ref(), reserved, plans));
    }
    if read.is_empty() {
        return Ok(catalog);
    }
    dates.sort();
    catalog.as_of = dates.last().map(|d| d.chars().take(10).collect()).unwrap_or_default();
    catalog.source = format!(
        "AWS Price List offer files for {}: {}; other tables and Regions from {} as of {}",
        base.base_region,
        read.join(", "),
        base.source,
        base.as_of
    );
    catalog.validate().map_err(|v| OfferError::Invalid(v.to_string()))?;
    Ok(catalog)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // prices parsed from decimal strings, compared with the same literals
mod tests {
    use super::*;

    const EC2: &str = include_str!("../../testdata/offers/ec2.json");
    const RDS: &str = include_str!("../../testdata/offers/rds.json");
    const S3: &str = include_str!("../../testdata/offers/s3.json");
    const SAVINGS_PLANS: &str = include_str!("../../testdata/offers/savings_plans.json");

    fn all() -> OfferTexts<'static> {
        OfferTexts {
            ec2: Some(EC2),
            rds: Some(RDS),
            s3: Some(S3),
            savings_plans: Some(SAVINGS_PLANS),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn on_demand_prices_come_from_linux_shared_single_az_products_only() {
        let catalog = build(PriceCatalog::built_in(), all()).expect("a catalog");
        // Windows (0.188) and Dedicated (0.106) m5.large are other products.
        assert_eq!(catalog.ec2.len(), 4, "{:?}", catalog.ec2.keys());
        let m5 = &catalog.ec2["m5.large"];
        assert_eq!((m5.vcpu, m5.memory_gib, m5.hourly_usd), (2, 8.0, 0.096));
        assert_eq!((m5.architecture.as_str(), m5.burstable), ("x86_64", false));
        assert!(catalog.ec2["t3.micro"].burstable);
        assert_eq!(catalog.ec2["m7g.large"].architecture, "arm64");
        assert_eq!(catalog.ebs_gb_month["gp3"], 0.08);
        // MySQL Single-AZ only: neither Multi-AZ (0.342) nor PostgreSQL (0.178).
        assert_eq!(catalog.rds["db.m5.large"].hourly_usd, 0.171);
        assert_eq!(catalog.rds.len(), 2);
        // S3 Standard's first tier, whatever the order of the tiers in the file.
        assert_eq!(catalog.s3_gb_month["STANDARD"], 0.023);
        // What the files do not give is kept, and the source says so.
        assert_eq!(catalog.region_multipliers, PriceCatalog::built_in().region_multipliers);
        assert_eq!(catalog.as_of, "2026-11-20");
        assert!(
            catalog.source.contains("AmazonEC2 20261120180000"),
            "{}",
            catalog.source
        );
        assert!(
            catalog.source.contains("other tables and Regions from"),
            "{}",
            catalog.source
        );
        assert!(close(
            catalog.ec2_monthly("m5.large", "us-east-1").unwrap(),
            0.096 * 730.0
        ));
    }

    #[test]
    fn commitments_are_fractions_of_on_demand_per_family() {
        let catalog = build(PriceCatalog::built_in(), all()).expect("a catalog");
        let c = catalog.commitments.expect("commitment rates");
        // Compute SP 1-year no upfront: 0.069 / 0.096 on m5.large and 0.138 / 0.192 on
        // m5.xlarge, both 0.71875; the Windows rate (RunInstances:0002) is not Linux.
        let compute = c.compute_savings_plan["m5"].one_year.no_upfront.unwrap();
        assert!(close(compute.hourly, 0.718_75) && compute.upfront == 0.0, "{compute:?}");
        assert!(c.compute_savings_plan["m5"].three_year.no_upfront.is_none());
        // EC2 Instance SP 3-year all upfront: all of 0.036 / 0.096 paid upfront.
        let instance = c.ec2_instance_savings_plan["m5"].three_year.all_upfront.unwrap();
        assert!(close(instance.upfront, 0.375) && instance.hourly == 0.0, "{instance:?}");
        // RDS 3-year partial: a $1,300 fee over 26,280 hours plus $0.05/h, on 0.171/h; the
        // xlarge's doubled prices give the same fractions.
        let rds = c.rds_reserved["db.m5"].three_year.partial_upfront.unwrap();
        assert!(close(rds.upfront, 1300.0 / 26_280.0 / 0.171), "{rds:?}");
        assert!(close(rds.hourly, 0.05 / 0.171), "{rds:?}");
        assert!(close(
            c.rds_reserved["db.m5"].one_year.no_upfront.unwrap().hourly,
            0.118 / 0.171
        ));
        assert_eq!(c.as_of, "2026-11-20");
    }

    #[test]
    fn bad_files_are_typed_errors_naming_the_file() {
        let base = PriceCatalog::built_in();
        let broken = OfferTexts {
            ec2: Some("{\"products\": "),
            ..OfferTexts::default()
        };
        let err = build(base, broken).unwrap_err();
        assert!(matches!(err, OfferError::Shape { file: "AmazonEC2", .. }), "{err}");
        let garbled = EC2.replace("\"0.0960000000\"", "\"ninety\"");
        let err = build(
            base,
            OfferTexts {
                ec2: Some(&garbled),
                ..OfferTexts::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, OfferError::Price { sku, .. } if sku == "M5LARGE"),
            "{err}"
        );
        let alone = OfferTexts {
            savings_plans: Some(SAVINGS_PLANS),
            ..OfferTexts::default()
        };
        assert!(matches!(
            build(base, alone).unwrap_err(),
            OfferError::Empty { file: "AmazonEC2", .. }
        ));
        let empty_s3 = S3.replace("\"General Purpose\"", "\"Archive\"");
        let err = build(
            base,
            OfferTexts {
                s3: Some(&empty_s3),
                ..OfferTexts::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "AmazonS3: no S3 Standard storage product in the file");
        // No file: the base catalog as it is.
        assert_eq!(&build(base, OfferTexts::default()).unwrap(), base);
    }
}
