//! Monthly cost per resource from the price catalog.

use crate::catalog::{CatalogError, PriceCatalog};
use crate::world::{Finding, FindingStatus, Inventory, ResourceCost, ResourceKind, Severity, UNPRICED_CHECK};

impl ResourceCost {
    fn priced(id: &str, kind: ResourceKind, region: &str, result: Result<f64, CatalogError>, basis: String) -> Self {
        let (monthly_usd, basis) = match result {
            Ok(usd) => (Some(round_cents(usd)), basis),
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
            check_id: UNPRICED_CHECK.into(),
            severity: Severity::Informational,
            status: FindingStatus::Fail,
            resource_id: self.resource_id.clone(),
            kind: self.kind,
            region: self.region.clone(),
            message: self.basis.clone(),
        })
    }
}

/// One resource's price as [`visit_prices`] reports it; the basis is only written on request,
/// so that totals (summed once per planned change) build no strings.
pub(crate) struct Priced<'a> {
    pub id: &'a str,
    pub kind: ResourceKind,
    pub region: &'a str,
    pub result: Result<f64, CatalogError>,
    pub basis: &'a dyn Fn() -> String,
}

/// Calls `emit` with the price of every resource that has a cost. Security groups are free and
/// are not visited.
pub(crate) fn visit_prices(inv: &Inventory, catalog: &PriceCatalog, mut emit: impl FnMut(Priced<'_>)) {
    for i in &inv.instances {
        let running = matches!(i.state.as_str(), "running" | "pending");
        emit(Priced {
            id: &i.id,
            kind: ResourceKind::Ec2Instance,
            region: &i.region,
            result: if running {
                catalog.ec2_monthly(&i.instance_type, &i.region)
            } else {
                Ok(0.0)
            },
            basis: &|| {
                if running {
                    format!("{} on-demand × {} h", i.instance_type, catalog.hours_per_month)
                } else {
                    format!("{}: no compute charge (its volumes are priced on their own)", i.state)
                }
            },
        });
    }
    for v in &inv.volumes {
        emit(Priced {
            id: &v.id,
            kind: ResourceKind::EbsVolume,
            region: &v.region,
            result: catalog.ebs_monthly(&v.volume_type, v.size_gib, v.iops, &v.region),
            basis: &|| format!("{} {} GiB", v.volume_type, v.size_gib),
        });
    }
    for a in &inv.addresses {
        emit(Priced {
            id: &a.allocation_id,
            kind: ResourceKind::ElasticIp,
            region: &a.region,
            result: catalog.public_ipv4_monthly(&a.region),
            basis: &|| "public IPv4 address × 730 h".into(),
        });
    }
    for b in &inv.buckets {
        emit(Priced {
            id: &b.name,
            kind: ResourceKind::S3Bucket,
            region: &b.region,
            result: match b.size_bytes {
                Some(bytes) => catalog.s3_standard_monthly(bytes, &b.region),
                None => Err(CatalogError::UnknownItem {
                    kind: "S3 bucket size",
                    name: format!("{} (no BucketSizeBytes metric)", b.name),
                    as_of: catalog.as_of.clone(),
                }),
            },
            basis: &|| {
                b.size_bytes.map_or_else(String::new, |bytes| {
                    format!(
                        "S3 Standard, {:.3} GB from BucketSizeBytes",
                        bytes / f64::from(1u32 << 30)
                    )
                })
            },
        });
    }
    for d in &inv.db_instances {
        let storage = d.storage_type.as_deref().unwrap_or("gp2");
        emit(Priced {
            id: &d.id,
            kind: ResourceKind::RdsInstance,
            region: &d.region,
            result: catalog.rds_monthly(&d.class, d.multi_az, storage, d.allocated_storage_gib, &d.region),
            basis: &|| {
                format!(
                    "{}{} + {} GiB {storage}",
                    d.class,
                    if d.multi_az { " Multi-AZ" } else { "" },
                    d.allocated_storage_gib
                )
            },
        });
    }
}

/// A resource's monthly price as the assessment counts it: rounded to the cent.
pub(crate) fn round_cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

/// Prices every resource that has a cost. Security groups are free and are not listed.
pub(crate) fn price_inventory(inv: &Inventory, catalog: &PriceCatalog) -> Vec<ResourceCost> {
    let mut out = Vec::with_capacity(inv.resource_count());
    visit_prices(inv, catalog, |p| {
        out.push(ResourceCost::priced(p.id, p.kind, p.region, p.result, (p.basis)()));
    });
    out
}
