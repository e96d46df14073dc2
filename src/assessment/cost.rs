//! Monthly cost per resource from the price catalog.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::security::{Finding, FindingStatus, Severity};
use super::ResourceKind;
use crate::catalog::{CatalogError, PriceCatalog};
use crate::world::Inventory;

/// The monthly cost of one resource, or why it could not be priced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceCost {
    /// Resource id.
    pub resource_id: String,
    /// Resource kind.
    pub kind: ResourceKind,
    /// Region.
    pub region: String,
    /// Monthly USD; `None` when unpriced.
    pub monthly_usd: Option<f64>,
    /// How the price was computed, or why it could not be.
    pub basis: String,
}

impl ResourceCost {
    fn priced(id: &str, kind: ResourceKind, region: &str, result: Result<f64, CatalogError>, basis: String) -> Self {
        let (monthly_usd, basis) = match result {
            Ok(usd) => (Some((usd * 100.0).round() / 100.0), basis),
            Err(e) => (None, format!("unpriced: {e}")),
        };
        Self {
            resource_id: id.to_owned(),
            kind,
            region: region.to_owned(),
            monthly_usd,
            basis,
        }
    }

    /// The informational finding that says a resource is missing from the total.
    #[must_use]
    pub fn unpriced_finding(&self) -> Option<Finding> {
        self.monthly_usd.is_none().then(|| Finding {
            check_id: "cost_resource_unpriced".into(),
            severity: Severity::Informational,
            status: FindingStatus::Fail,
            resource_id: self.resource_id.clone(),
            kind: self.kind,
            region: self.region.clone(),
            message: self.basis.clone(),
        })
    }
}

/// Prices every resource that has a cost. Security groups are free and are not listed.
pub(crate) fn price_inventory(inv: &Inventory, catalog: &PriceCatalog) -> Vec<ResourceCost> {
    let mut out = Vec::with_capacity(inv.resource_count());
    for i in &inv.instances {
        let (result, basis) = if matches!(i.state.as_str(), "running" | "pending") {
            (
                catalog.ec2_monthly(&i.instance_type, &i.region),
                format!("{} on-demand × {} h", i.instance_type, catalog.hours_per_month),
            )
        } else {
            (
                Ok(0.0),
                format!("{}: no compute charge (its volumes are priced on their own)", i.state),
            )
        };
        out.push(ResourceCost::priced(
            &i.id,
            ResourceKind::Ec2Instance,
            &i.region,
            result,
            basis,
        ));
    }
    for v in &inv.volumes {
        out.push(ResourceCost::priced(
            &v.id,
            ResourceKind::EbsVolume,
            &v.region,
            catalog.ebs_monthly(&v.volume_type, v.size_gib, v.iops, &v.region),
            format!("{} {} GiB", v.volume_type, v.size_gib),
        ));
    }
    for a in &inv.addresses {
        out.push(ResourceCost::priced(
            &a.allocation_id,
            ResourceKind::ElasticIp,
            &a.region,
            catalog.public_ipv4_monthly(&a.region),
            "public IPv4 address × 730 h".into(),
        ));
    }
    for b in &inv.buckets {
        let (result, basis) = match b.size_bytes {
            Some(bytes) => (
                catalog.s3_standard_monthly(bytes, &b.region),
                format!(
                    "S3 Standard, {:.3} GB from BucketSizeBytes",
                    bytes / f64::from(1u32 << 30)
                ),
            ),
            None => (
                Err(CatalogError::UnknownItem {
                    kind: "S3 bucket size",
                    name: format!("{} (no BucketSizeBytes metric)", b.name),
                    as_of: catalog.as_of.clone(),
                }),
                String::new(),
            ),
        };
        out.push(ResourceCost::priced(
            &b.name,
            ResourceKind::S3Bucket,
            &b.region,
            result,
            basis,
        ));
    }
    for d in &inv.db_instances {
        let storage = d.storage_type.as_deref().unwrap_or("gp2");
        out.push(ResourceCost::priced(
            &d.id,
            ResourceKind::RdsInstance,
            &d.region,
            catalog.rds_monthly(&d.class, d.multi_az, storage, d.allocated_storage_gib, &d.region),
            format!(
                "{}{} + {} GiB {storage}",
                d.class,
                if d.multi_az { " Multi-AZ" } else { "" },
                d.allocated_storage_gib
            ),
        ));
    }
    out
}
