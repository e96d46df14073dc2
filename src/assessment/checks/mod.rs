//! The security checks. Each is a [`Check`]: Prowler's id and severity (or an id of the engine's
//! own, starting `miyabi_`), and a judgement of every resource it applies to. [`registry`] lists
//! them all; [`run`] runs them over an inventory.
//!
//! A check whose id is Prowler's means what Prowler's check of that id means at the pinned
//! commit (see [`super::prowler`]), including which resources it does not judge at all: a
//! security group no network interface uses, a terminated instance, a Region with nothing of the
//! kind an account setting protects. Such a resource gets no finding, neither PASS nor FAIL.

mod ec2;
#[cfg(test)]
pub(crate) mod fixtures;
mod network;
mod rds;
mod s3;

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use crate::world::{
    Finding, FindingStatus, Inventory, NetworkInterface, RdsCluster, ResourceKind, SecurityGroup, Severity, Subnet,
};

/// One security check.
pub trait Check: Send + Sync {
    /// Its id: Prowler's, or one of the engine's own starting `miyabi_`.
    fn id(&self) -> &'static str;
    /// Its severity: Prowler's for a Prowler id. A finding may carry another where Prowler
    /// grades its failures (the instance port checks).
    fn severity(&self) -> Severity;
    /// The kind of resource it judges.
    fn kind(&self) -> ResourceKind;
    /// Judges every resource of `estate` it applies to, appending one finding per resource.
    fn run(&self, estate: &Estate<'_>, out: &mut Vec<Finding>);
}

/// A check's judgement of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The check does not apply to the resource: no finding.
    Skip,
    /// The resource passes.
    Pass(String),
    /// The resource fails, at the check's severity.
    Fail(String),
    /// The resource fails, at this severity.
    FailAs(Severity, String),
}

/// A PASS verdict.
pub(crate) fn pass(message: impl Into<String>) -> Verdict {
    Verdict::Pass(message.into())
}

/// A FAIL verdict.
pub(crate) fn fail(message: impl Into<String>) -> Verdict {
    Verdict::Fail(message.into())
}

/// PASS or FAIL on `failed`.
pub(crate) fn verdict(failed: bool, fail_message: impl Into<String>, pass_message: impl Into<String>) -> Verdict {
    if failed {
        fail(fail_message)
    } else {
        pass(pass_message)
    }
}

/// A check of one kind of resource, judged one resource at a time: most checks are one of these.
pub(crate) struct Rule<R: 'static> {
    pub id: &'static str,
    pub severity: Severity,
    pub kind: ResourceKind,
    /// The resources it judges.
    pub resources: fn(&Inventory) -> &[R],
    /// A resource's id and Region, as its finding names them.
    pub key: fn(&R) -> (&str, &str),
    /// Whether the check judges the resource at all (see [`every`]).
    pub applies: fn(&R) -> bool,
    pub judge: fn(&R, &Estate<'_>) -> Verdict,
}

impl<R: Sync + 'static> Check for Rule<R> {
    fn id(&self) -> &'static str {
        self.id
    }

    fn severity(&self) -> Severity {
        self.severity
    }

    fn kind(&self) -> ResourceKind {
        self.kind
    }

    fn run(&self, estate: &Estate<'_>, out: &mut Vec<Finding>) {
        for r in (self.resources)(estate.inventory).iter().filter(|r| (self.applies)(r)) {
            let (status, severity, message) = match (self.judge)(r, estate) {
                Verdict::Skip => continue,
                Verdict::Pass(m) => (FindingStatus::Pass, self.severity, m),
                Verdict::Fail(m) => (FindingStatus::Fail, self.severity, m),
                Verdict::FailAs(severity, m) => (FindingStatus::Fail, severity, m),
            };
            let (id, region) = (self.key)(r);
            out.push(Finding {
                check_id: self.id.to_owned(),
                severity,
                status,
                resource_id: id.to_owned(),
                kind: self.kind,
                region: region.to_owned(),
                message,
            });
        }
    }
}

/// A [`Rule`]'s `applies` for a check that judges every resource of its kind.
pub(crate) fn every<R>(_: &R) -> bool {
    true
}

/// An inventory with the lookups the checks share, built once per run.
pub struct Estate<'a> {
    /// The inventory judged.
    pub inventory: &'a Inventory,
    groups: HashMap<&'a str, &'a SecurityGroup>,
    interfaces_by_group: HashMap<&'a str, Vec<&'a NetworkInterface>>,
    interfaces: HashMap<&'a str, &'a NetworkInterface>,
    subnets: HashMap<&'a str, &'a Subnet>,
    /// Groups that fail `…_to_all_ports`: Prowler's port-by-port checks do not judge them.
    open_on_all_ports: HashSet<&'a str>,
    snapshotted_volumes: HashSet<&'a str>,
    regions_with_instances: HashSet<&'a str>,
    regions_with_volumes: HashSet<&'a str>,
    regions_with_snapshots: HashSet<&'a str>,
    regions_with_custom_groups: HashSet<&'a str>,
    bucket_regions: HashMap<&'a str, &'a str>,
    clusters: HashMap<(&'a str, &'a str), &'a RdsCluster>,
}

impl<'a> Estate<'a> {
    /// Indexes `inventory`.
    #[must_use]
    pub fn new(inventory: &'a Inventory) -> Self {
        Self {
            inventory,
            groups: inventory.security_groups.iter().map(|g| (g.id.as_str(), g)).collect(),
            interfaces_by_group: inventory.interfaces_by_group(),
            interfaces: inventory
                .network_interfaces
                .iter()
                .map(|n| (n.id.as_str(), n))
                .collect(),
            subnets: inventory.subnets.iter().map(|s| (s.id.as_str(), s)).collect(),
            open_on_all_ports: inventory
                .security_groups
                .iter()
                .filter(|g| network::open_on_all_ports(g))
                .map(|g| g.id.as_str())
                .collect(),
            snapshotted_volumes: inventory
                .snapshots
                .iter()
                .filter_map(|s| s.volume_id.as_deref())
                .collect(),
            regions_with_instances: inventory.instances.iter().map(|i| i.region.as_str()).collect(),
            regions_with_volumes: inventory.volumes.iter().map(|v| v.region.as_str()).collect(),
            regions_with_snapshots: inventory.snapshots.iter().map(|s| s.region.as_str()).collect(),
            regions_with_custom_groups: inventory
                .security_groups
                .iter()
                .filter(|g| g.name != "default")
                .map(|g| g.region.as_str())
                .collect(),
            clusters: inventory
                .db_clusters
                .iter()
                .map(|c| ((c.region.as_str(), c.id.as_str()), c))
                .collect(),
            bucket_regions: inventory
                .buckets
                .iter()
                .map(|b| (b.arn.as_str(), b.region.as_str()))
                .collect(),
        }
    }

    /// The DB cluster `id` of `region`, if captured.
    #[must_use]
    pub fn cluster(&self, region: &str, id: &str) -> Option<&'a RdsCluster> {
        self.clusters.get(&(region, id)).copied()
    }

    /// The Region of the scanned bucket whose ARN is `arn`.
    #[must_use]
    pub fn bucket_region(&self, arn: &str) -> Option<&'a str> {
        self.bucket_regions.get(arn).copied()
    }

    /// The security group of `id`, if captured.
    #[must_use]
    pub fn group(&self, id: &str) -> Option<&'a SecurityGroup> {
        self.groups.get(id).copied()
    }

    /// The network interfaces that use group `id`.
    #[must_use]
    pub fn interfaces_of_group(&self, id: &str) -> &[&'a NetworkInterface] {
        self.interfaces_by_group.get(id).map_or(&[], Vec::as_slice)
    }

    /// True when some network interface uses the group: Prowler judges only such groups.
    #[must_use]
    pub fn in_use(&self, group: &SecurityGroup) -> bool {
        !self.interfaces_of_group(&group.id).is_empty()
    }

    /// The network interface of `id`, if captured.
    #[must_use]
    pub fn interface(&self, id: &str) -> Option<&'a NetworkInterface> {
        self.interfaces.get(id).copied()
    }

    /// The subnet of `id`, if captured.
    #[must_use]
    pub fn subnet(&self, id: &str) -> Option<&'a Subnet> {
        self.subnets.get(id).copied()
    }

    /// True when the group fails `…_to_all_ports`.
    #[must_use]
    pub fn open_on_all_ports(&self, group: &str) -> bool {
        self.open_on_all_ports.contains(group)
    }
}

static REGISTRY: LazyLock<Vec<Box<dyn Check>>> = LazyLock::new(|| {
    let mut all: Vec<Box<dyn Check>> = Vec::new();
    all.extend(network::checks());
    all.extend(ec2::checks());
    all.extend(s3::checks());
    all.extend(rds::checks());
    all.sort_by_key(|c| c.id());
    all
});

/// Every check, in id order.
#[must_use]
pub fn registry() -> &'static [Box<dyn Check>] {
    &REGISTRY
}

/// The check of id `id`, if the registry has one.
#[must_use]
pub fn find(id: &str) -> Option<&'static dyn Check> {
    let all = registry();
    all.binary_search_by(|c| c.id().cmp(id)).ok().map(|k| &*all[k])
}

/// Runs every check of the [`registry`] over `inventory`.
#[must_use]
pub fn run(inventory: &Inventory) -> Vec<Finding> {
    let estate = Estate::new(inventory);
    let mut findings = Vec::new();
    for check in registry() {
        check.run(&estate, &mut findings);
    }
    findings
}
