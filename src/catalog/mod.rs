//! The price catalog that ships with the crate: on-demand prices for EC2 types, RDS classes, EBS
//! and S3 storage, with vCPU and memory per type.
//!
//! Prices are for the base Region (us-east-1, Linux, USD). Other Regions are priced by an explicit
//! per-Region multiplier. An unknown type or Region is a [`CatalogError`], never a silent $0.
//! A user can replace the whole catalog with a file of the same shape ([`PriceCatalog::load`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub mod offers;

const BUILT_IN: &str = include_str!("prices.json");

/// A price catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceCatalog {
    /// Where the prices come from.
    pub source: String,
    /// The date the prices were read.
    pub as_of: String,
    /// Currency, `USD`.
    pub currency: String,
    /// Hours in a billing month (730).
    pub hours_per_month: f64,
    /// The Region the tables are for.
    pub base_region: String,
    /// Price multiplier per Region, relative to the base Region.
    pub region_multipliers: BTreeMap<String, f64>,
    /// EC2 instance types.
    pub ec2: BTreeMap<String, InstanceSpec>,
    /// RDS instance classes (single-AZ).
    pub rds: BTreeMap<String, InstanceSpec>,
    /// RDS storage per GB-month, by storage type.
    pub rds_storage_gb_month: BTreeMap<String, f64>,
    /// Price factor for a Multi-AZ RDS instance.
    pub rds_multi_az_factor: f64,
    /// EBS storage per GB-month, by volume type.
    pub ebs_gb_month: BTreeMap<String, f64>,
    /// EBS provisioned IOPS per IOPS-month, by volume type (`gp3_above_3000` for gp3).
    pub ebs_iops_month: BTreeMap<String, f64>,
    /// S3 storage per GB-month, by storage class.
    pub s3_gb_month: BTreeMap<String, f64>,
    /// Hourly price of a public IPv4 address (charged for idle Elastic IPs too).
    pub public_ipv4_hourly: f64,
    /// Savings Plans and reserved-instance rates, for purchase recommendations; a catalog
    /// without them recommends no purchase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitments: Option<CommitmentRates>,
}

/// The rates of commitments (Savings Plans, reserved instances), each as a fraction of the
/// on-demand price of the usage it covers, per instance family. Within a family AWS scales
/// these rates with size as it scales on-demand prices, so one fraction serves every size, and
/// the Region multiplier applies as to on-demand prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentRates {
    /// Where the rates come from.
    pub source: String,
    /// The date they were read.
    pub as_of: String,
    /// Compute Savings Plans, per EC2 family (`m5`): they float across families and Regions.
    pub compute_savings_plan: BTreeMap<String, TermRates>,
    /// EC2 Instance Savings Plans, per EC2 family: bound to the family in one Region.
    pub ec2_instance_savings_plan: BTreeMap<String, TermRates>,
    /// RDS reserved instances (MySQL/PostgreSQL), per class family (`db.m5`).
    pub rds_reserved: BTreeMap<String, TermRates>,
}

/// The rates of one commitment for each term.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermRates {
    /// One year.
    #[serde(rename = "1yr")]
    pub one_year: PaymentRates,
    /// Three years.
    #[serde(rename = "3yr")]
    pub three_year: PaymentRates,
}

/// The rates of one commitment and term for each payment option; an option AWS does not offer
/// (RDS sells no 3-year no-upfront reservation) or the source does not give is absent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRates {
    /// Nothing upfront.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_upfront: Option<Rate>,
    /// Part upfront (half, for Savings Plans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_upfront: Option<Rate>,
    /// Everything upfront.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_upfront: Option<Rate>,
}

/// A commitment's price as fractions of the on-demand hourly price of what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// The upfront fee, per hour of the term: the fee is this × the on-demand hourly price ×
    /// the term's hours.
    pub upfront: f64,
    /// The recurring charge per hour.
    pub hourly: f64,
}

impl Rate {
    /// Upfront and recurring together, per hour of the term.
    #[must_use]
    pub fn effective(self) -> f64 {
        self.upfront + self.hourly
    }
}

impl TermRates {
    fn each(&self) -> [(&'static str, Option<Rate>); 6] {
        let (a, b) = (&self.one_year, &self.three_year);
        [
            ("1yr.no_upfront", a.no_upfront),
            ("1yr.partial_upfront", a.partial_upfront),
            ("1yr.all_upfront", a.all_upfront),
            ("3yr.no_upfront", b.no_upfront),
            ("3yr.partial_upfront", b.partial_upfront),
            ("3yr.all_upfront", b.all_upfront),
        ]
    }
}

/// vCPU, memory and price of one instance type or class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// Virtual CPUs.
    pub vcpu: u32,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// On-demand price per hour in the base Region.
    pub hourly_usd: f64,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// True for burstable (t-family) types.
    pub burstable: bool,
}

/// Why the catalog could not price something, or could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The item is not in the catalog.
    #[error("{kind} `{name}` is not in the price catalog (as of {as_of})")]
    UnknownItem {
        /// What kind of item: `EC2 instance type`, `RDS class`, `EBS volume type`, …
        kind: &'static str,
        /// The item's name.
        name: String,
        /// The catalog's date.
        as_of: String,
    },
    /// The Region has no multiplier.
    #[error("region `{region}` has no price multiplier in the catalog (as of {as_of})")]
    UnknownRegion {
        /// The Region.
        region: String,
        /// The catalog's date.
        as_of: String,
    },
    /// A catalog file could not be read or parsed.
    #[error("cannot load price catalog {path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The highest price a catalog may hold, USD.
const MAX_PRICE_USD: f64 = 1_000_000.0;

impl PriceCatalog {
    /// The catalog shipped with the crate.
    #[must_use]
    pub fn built_in() -> &'static Self {
        Self::built_in_shared()
    }

    /// The catalog shipped with the crate, shared: every context that uses it holds the same one.
    #[must_use]
    pub fn built_in_shared() -> &'static std::sync::Arc<Self> {
        static CATALOG: OnceLock<std::sync::Arc<PriceCatalog>> = OnceLock::new();
        CATALOG.get_or_init(|| {
            std::sync::Arc::new(
                serde_json::from_str(BUILT_IN)
                    .unwrap_or_else(|e| unreachable!("built-in catalog is valid JSON, checked by tests: {e}")),
            )
        })
    }

    /// Loads a catalog from a JSON file of the same shape as the built-in one.
    ///
    /// # Errors
    /// [`CatalogError::Load`] naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let path = path.as_ref();
        let load_err = |message: String| CatalogError::Load {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| load_err(e.to_string()))?;
        Self::parse(&text).map_err(load_err)
    }

    /// Parses a catalog document (the text of a file [`PriceCatalog::load`] reads).
    ///
    /// # Errors
    /// [`CatalogError::Load`] without a file, when the text is not a valid catalog.
    pub fn from_json(text: &str) -> Result<Self, CatalogError> {
        Self::parse(text).map_err(|message| CatalogError::Load {
            path: PathBuf::from("<text>"),
            message,
        })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let catalog: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        catalog.validate().map_err(|v| v.to_string())?;
        Ok(catalog)
    }

    /// Every price in 0–1,000,000 USD, hours per month in 1–744, multipliers in (0, 100], each
    /// type's vCPUs and memory positive, and the base Region priced: bounds far above AWS's
    /// prices that keep every cost the engine sums finite.
    ///
    /// # Errors
    /// The first rule broken, and where.
    pub fn validate(&self) -> Result<(), crate::world::Violation> {
        let bad = |path: String, message: &str| crate::world::Violation {
            path,
            message: message.to_owned(),
        };
        let price = |path: String, v: f64| {
            if (0.0..=MAX_PRICE_USD).contains(&v) {
                Ok(())
            } else {
                Err(bad(path, "must be a price in 0–1,000,000 USD"))
            }
        };
        if !(1.0..=744.0).contains(&self.hours_per_month) {
            return Err(bad("hours_per_month".into(), "must be in 1–744"));
        }
        if !self.region_multipliers.contains_key(&self.base_region) {
            return Err(bad("region_multipliers".into(), "lacks the base Region"));
        }
        for (region, m) in &self.region_multipliers {
            if !(*m > 0.0 && *m <= 100.0) {
                return Err(bad(format!("region_multipliers.{region}"), "must be in (0, 100]"));
            }
        }
        for (family, specs) in [("ec2", &self.ec2), ("rds", &self.rds)] {
            for (name, spec) in specs {
                if spec.vcpu == 0 {
                    return Err(bad(format!("{family}.{name}.vcpu"), "must be at least 1"));
                }
                if !(spec.memory_gib > 0.0 && spec.memory_gib <= 1e6) {
                    return Err(bad(format!("{family}.{name}.memory_gib"), "must be in (0, 1,000,000]"));
                }
                price(format!("{family}.{name}.hourly_usd"), spec.hourly_usd)?;
            }
        }
        for (table, prices) in [
            ("rds_storage_gb_month", &self.rds_storage_gb_month),
            ("ebs_gb_month", &self.ebs_gb_month),
            ("ebs_iops_month", &self.ebs_iops_month),
            ("s3_gb_month", &self.s3_gb_month),
        ] {
            for (key, v) in prices {
                price(format!("{table}.{key}"), *v)?;
            }
        }
        price("rds_multi_az_factor".into(), self.rds_multi_az_factor)?;
        price("public_ipv4_hourly".into(), self.public_ipv4_hourly)?;
        if let Some(c) = &self.commitments {
            for (table, rates) in [
                ("compute_savings_plan", &c.compute_savings_plan),
                ("ec2_instance_savings_plan", &c.ec2_instance_savings_plan),
                ("rds_reserved", &c.rds_reserved),
            ] {
                for (family, terms) in rates {
                    for (option, rate) in terms.each() {
                        let Some(rate) = rate else { continue };
                        let fraction = |v: f64| (0.0..=1.0).contains(&v);
                        if !(fraction(rate.upfront) && fraction(rate.hourly) && rate.effective() <= 1.0) {
                            return Err(bad(
                                format!("commitments.{table}.{family}.{option}"),
                                "must be fractions of the on-demand price, together at most 1",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The multiplier for a Region.
    ///
    /// # Errors
    /// [`CatalogError::UnknownRegion`].
    pub fn region_multiplier(&self, region: &str) -> Result<f64, CatalogError> {
        self.region_multipliers
            .get(region)
            .copied()
            .ok_or_else(|| CatalogError::UnknownRegion {
                region: region.to_owned(),
                as_of: self.as_of.clone(),
            })
    }

    /// The spec of an EC2 instance type.
    ///
    /// # Errors
    /// [`CatalogError::UnknownItem`].
    pub fn ec2_type(&self, instance_type: &str) -> Result<&InstanceSpec, CatalogError> {
        self.ec2
            .get(instance_type)
            .ok_or_else(|| self.unknown("EC2 instance type", instance_type))
    }

    /// The spec of an RDS instance class.
    ///
    /// # Errors
    /// [`CatalogError::UnknownItem`].
    pub fn rds_class(&self, class: &str) -> Result<&InstanceSpec, CatalogError> {
        self.rds
            .get(class)
            .ok_or_else(|| self.unknown("RDS instance class", class))
    }

    /// Monthly on-demand price of an EC2 instance running all month in `region`.
    ///
    /// # Errors
    /// Unknown type or Region.
    pub fn ec2_monthly(&self, instance_type: &str, region: &str) -> Result<f64, CatalogError> {
        let spec = self.ec2_type(instance_type)?;
        Ok(spec.hourly_usd * self.hours_per_month * self.region_multiplier(region)?)
    }

    /// Monthly price of an RDS instance: compute (doubled for Multi-AZ) plus storage.
    ///
    /// # Errors
    /// Unknown class, storage type or Region.
    pub fn rds_monthly(
        &self,
        class: &str,
        multi_az: bool,
        storage_type: &str,
        storage_gib: u32,
        region: &str,
    ) -> Result<f64, CatalogError> {
        let spec = self.rds_class(class)?;
        let storage = self
            .rds_storage_gb_month
            .get(storage_type)
            .ok_or_else(|| self.unknown("RDS storage type", storage_type))?;
        let az_factor = if multi_az { self.rds_multi_az_factor } else { 1.0 };
        let compute = spec.hourly_usd * self.hours_per_month * az_factor;
        Ok((compute + storage * f64::from(storage_gib) * az_factor) * self.region_multiplier(region)?)
    }

    /// Monthly price of an EBS volume: storage plus provisioned IOPS where charged.
    ///
    /// # Errors
    /// Unknown volume type or Region.
    pub fn ebs_monthly(
        &self,
        volume_type: &str,
        size_gib: u32,
        iops: Option<u32>,
        region: &str,
    ) -> Result<f64, CatalogError> {
        let per_gb = self
            .ebs_gb_month
            .get(volume_type)
            .ok_or_else(|| self.unknown("EBS volume type", volume_type))?;
        let iops_cost = match (volume_type, iops) {
            ("io1" | "io2", Some(iops)) => {
                self.ebs_iops_month.get(volume_type).copied().unwrap_or(0.0) * f64::from(iops)
            }
            ("gp3", Some(iops)) if iops > 3000 => {
                self.ebs_iops_month.get("gp3_above_3000").copied().unwrap_or(0.0) * f64::from(iops - 3000)
            }
            _ => 0.0,
        };
        Ok((per_gb * f64::from(size_gib) + iops_cost) * self.region_multiplier(region)?)
    }

    /// Monthly price of S3 Standard storage for `bytes` (GB = 2^30 bytes, as AWS bills).
    ///
    /// # Errors
    /// Unknown Region.
    pub fn s3_standard_monthly(&self, bytes: f64, region: &str) -> Result<f64, CatalogError> {
        let per_gb = self
            .s3_gb_month
            .get("STANDARD")
            .ok_or_else(|| self.unknown("S3 storage class", "STANDARD"))?;
        Ok(per_gb * bytes / f64::from(1u32 << 30) * self.region_multiplier(region)?)
    }

    /// Monthly price of one public IPv4 address (an Elastic IP).
    ///
    /// # Errors
    /// Unknown Region.
    pub fn public_ipv4_monthly(&self, region: &str) -> Result<f64, CatalogError> {
        Ok(self.public_ipv4_hourly * self.hours_per_month * self.region_multiplier(region)?)
    }

    fn unknown(&self, kind: &'static str, name: &str) -> CatalogError {
        CatalogError::UnknownItem {
            kind,
            name: name.to_owned(),
            as_of: self.as_of.clone(),
        }
    }
}

#[cfg(test)]
// The catalog's numbers are parsed from JSON and must equal the published prices exactly.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_holds_its_rules_and_a_broken_one_is_refused_with_its_path() {
        assert!(PriceCatalog::built_in().validate().is_ok());
        let mut doc: serde_json::Value = serde_json::from_str(BUILT_IN).unwrap();
        doc["ec2"]["m5.large"]["vcpu"] = serde_json::json!(0);
        let e = PriceCatalog::from_json(&doc.to_string()).unwrap_err().to_string();
        assert!(e.contains("ec2.m5.large.vcpu"), "{e}");
        doc["ec2"]["m5.large"]["vcpu"] = serde_json::json!(2);
        doc["hours_per_month"] = serde_json::json!(1e308);
        let e = PriceCatalog::from_json(&doc.to_string()).unwrap_err().to_string();
        assert!(e.contains("hours_per_month"), "{e}");
    }

    #[test]
    fn reference_prices_from_the_design_brief() {
        let c = PriceCatalog::built_in();
        let hourly = |t: &str| c.ec2_type(t).unwrap().hourly_usd;
        assert_eq!(hourly("t3.micro"), 0.0104);
        assert_eq!(hourly("m5.large"), 0.096);
        assert_eq!(hourly("m5.xlarge"), 0.192);
        assert_eq!(hourly("c5.large"), 0.085);
        assert_eq!(hourly("r5.large"), 0.126);
        assert_eq!(c.ebs_gb_month["gp2"], 0.10);
        assert_eq!(c.ebs_gb_month["gp3"], 0.08);
        assert_eq!(c.s3_gb_month["STANDARD"], 0.023);
        assert_eq!(c.hours_per_month, 730.0);
        assert_eq!(c.as_of, "2025-11-01");
    }

    #[test]
    fn covers_the_common_current_families() {
        let c = PriceCatalog::built_in();
        for family in [
            "t3", "t3a", "t4g", "m5", "m6i", "m7i", "c5", "c6i", "c7i", "r5", "r6i", "r7i",
        ] {
            assert!(c.ec2.contains_key(&format!("{family}.large")), "{family}.large missing");
        }
        for class in [
            "db.t3.micro",
            "db.m5.large",
            "db.m6i.large",
            "db.r5.large",
            "db.r6i.large",
        ] {
            assert!(c.rds.contains_key(class), "{class} missing");
        }
    }

    #[test]
    fn unknown_type_and_region_are_errors_not_zero() {
        let c = PriceCatalog::built_in();
        assert!(matches!(
            c.ec2_monthly("z9.mega", "us-east-1"),
            Err(CatalogError::UnknownItem { .. })
        ));
        assert!(matches!(
            c.ec2_monthly("m5.large", "mars-north-1"),
            Err(CatalogError::UnknownRegion { .. })
        ));
    }

    #[test]
    fn monthly_prices_use_730_hours_and_region_multipliers() {
        let c = PriceCatalog::built_in();
        assert!((c.ec2_monthly("m5.large", "us-east-1").unwrap() - 70.08).abs() < 1e-9);
        let eu = c.ec2_monthly("m5.large", "eu-west-1").unwrap();
        assert!((eu - 70.08 * 1.115).abs() < 1e-9);
        assert!((c.ebs_monthly("gp2", 100, None, "us-east-1").unwrap() - 10.0).abs() < 1e-9);
        assert!((c.ebs_monthly("io1", 100, Some(1000), "us-east-1").unwrap() - 77.5).abs() < 1e-9);
    }

    #[test]
    fn override_file_replaces_the_catalog_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("miyabi-catalog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut custom = PriceCatalog::built_in().clone();
        custom.ec2.get_mut("m5.large").unwrap().hourly_usd = 0.05;
        let good = dir.join("good.json");
        std::fs::write(&good, serde_json::to_string(&custom).unwrap()).unwrap();
        assert_eq!(
            PriceCatalog::load(&good)
                .unwrap()
                .ec2_type("m5.large")
                .unwrap()
                .hourly_usd,
            0.05
        );
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"source\": 3}").unwrap();
        let err = PriceCatalog::load(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.json"), "{err}");
    }

    #[test]
    fn shipped_commitment_rates_reproduce_the_transcribed_reservations() {
        let catalog = PriceCatalog::built_in();
        let c = catalog
            .commitments
            .as_ref()
            .expect("the shipped catalog has commitment rates");
        assert_eq!(c.as_of, "2020-07-09");
        let m5 = catalog.ec2_type("m5.large").unwrap().hourly_usd;
        let near = |a: f64, b: f64, tolerance: f64| (a - b).abs() <= tolerance;
        // Compute Savings Plans at the convertible reservation: 1-year no upfront $0.071/h,
        // 3-year all upfront $1,161 for the term.
        let compute = &c.compute_savings_plan["m5"];
        assert!(near(compute.one_year.no_upfront.unwrap().hourly * m5, 0.071, 1e-5));
        let all3 = compute.three_year.all_upfront.unwrap();
        assert!(near(all3.upfront * m5 * 26_280.0, 1161.0, 1.0) && all3.hourly == 0.0);
        // EC2 Instance Savings Plans at the standard reservation: 1-year partial upfront $252
        // plus $0.029/h, paid half upfront as a Savings Plan is.
        let partial = c.ec2_instance_savings_plan["m5"].one_year.partial_upfront.unwrap();
        assert!(near(partial.effective() * m5, 252.0 / 8760.0 + 0.029, 1e-5));
        assert!(near(partial.upfront, partial.hourly, 1e-9));
        // Every EC2 family the demo estate runs has rates; RDS has none yet.
        for family in ["c5", "m5", "m6i", "r5", "t3"] {
            assert!(c.compute_savings_plan.contains_key(family), "{family}");
        }
        assert!(c.rds_reserved.is_empty());
    }
}
