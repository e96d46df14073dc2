//! Plans: typed changes to the estate, as θ2 and θ3 propose them and θ4 executes them.
//!
//! A [`Change`] names a resource, one attribute with its current and desired value, the rule and
//! the evidence behind it, and what it buys: a monthly saving in USD, or the security findings it
//! removes. [`Change::apply_to`] writes the desired value into an inventory, so that the world
//! *after* a plan can be assessed like any other (projected cost and score), and so that tests
//! can check that a remediation removes exactly the finding it claims.

pub mod execution;

use std::collections::BTreeSet;
use std::fmt::Write;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::assessment::security::run_checks;
use crate::assessment::{FindingStatus, ResourceKind};
use crate::world::{Inventory, PublicAccessBlock};

/// What a change does. Each maps to the AWS API operations that carry it out, which the
/// guardrails check against the deny-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Revoke one ingress rule open to the internet.
    RevokeIngress,
    /// Turn on all four settings of the bucket's public access block.
    BlockPublicAccess,
    /// Turn on default encryption (SSE-S3).
    EnableDefaultEncryption,
    /// Turn on versioning.
    EnableVersioning,
    /// Require IMDSv2 session tokens.
    RequireImdsV2,
    /// Make a DB instance private.
    DisableRdsPublicAccess,
    /// Keep automated backups for 7 days.
    EnableRdsBackups,
    /// Turn on deletion protection.
    EnableRdsDeletionProtection,
    /// Change a volume from gp2 to gp3 (same size, baseline 3,000 IOPS, no downtime).
    MigrateVolumeToGp3,
    /// Change an EC2 instance's type (stop, modify, start).
    ResizeInstance,
    /// Change a DB instance's class.
    ResizeDbInstance,
    /// Stop an idle instance.
    StopInstance,
    /// Release an Elastic IP that is not associated. Destructive.
    ReleaseAddress,
    /// Delete an unattached volume, after a snapshot. Destructive.
    DeleteVolume,
    /// Terminate an instance stopped for over 30 days, after snapshots. Destructive.
    TerminateInstance,
}

impl Action {
    /// Release, delete and terminate: they cannot be rolled back to an equal estate, always
    /// need explicit approval and run last.
    #[must_use]
    pub fn is_destructive(self) -> bool {
        matches!(
            self,
            Self::ReleaseAddress | Self::DeleteVolume | Self::TerminateInstance
        )
    }

    /// The AWS API operations that carry the change out, backups included.
    #[must_use]
    pub fn operations(self) -> &'static [&'static str] {
        match self {
            Self::RevokeIngress => &["RevokeSecurityGroupIngress"],
            Self::BlockPublicAccess => &["PutPublicAccessBlock"],
            Self::EnableDefaultEncryption => &["PutBucketEncryption"],
            Self::EnableVersioning => &["PutBucketVersioning"],
            Self::RequireImdsV2 => &["ModifyInstanceMetadataOptions"],
            Self::DisableRdsPublicAccess | Self::EnableRdsBackups | Self::EnableRdsDeletionProtection => {
                &["ModifyDBInstance"]
            }
            Self::MigrateVolumeToGp3 => &["ModifyVolume"],
            Self::ResizeInstance => &["StopInstances", "ModifyInstanceAttribute", "StartInstances"],
            Self::ResizeDbInstance => &["CreateDBSnapshot", "ModifyDBInstance"],
            Self::StopInstance => &["StopInstances"],
            Self::ReleaseAddress => &["ReleaseAddress"],
            Self::DeleteVolume => &["CreateSnapshot", "DeleteVolume"],
            Self::TerminateInstance => &["CreateSnapshot", "TerminateInstances"],
        }
    }

    /// The service key of the owner directory (`ec2`, `ebs`, `s3`, `rds`).
    #[must_use]
    pub fn service(self) -> &'static str {
        match self {
            Self::BlockPublicAccess | Self::EnableDefaultEncryption | Self::EnableVersioning => "s3",
            Self::DisableRdsPublicAccess
            | Self::EnableRdsBackups
            | Self::EnableRdsDeletionProtection
            | Self::ResizeDbInstance => "rds",
            Self::MigrateVolumeToGp3 | Self::DeleteVolume => "ebs",
            _ => "ec2",
        }
    }
}

/// How likely a change is to hurt a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Configuration only; no downtime.
    Low,
    /// A restart or a behaviour change a client may notice.
    Medium,
    /// Capacity is reduced, or data may be lost.
    High,
}

/// The resource a change is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its id (bucket name for S3, allocation id for Elastic IPs).
    pub id: String,
    /// Its Region.
    pub region: String,
}

/// One typed change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Derived from resource, action and desired value: rebuilding the plan from the same
    /// world gives the same id, so an approval keeps naming the same change.
    pub id: String,
    /// What is done.
    pub action: Action,
    /// To what.
    pub resource: ResourceRef,
    /// The attribute changed, for example `instance_type`.
    pub attribute: String,
    /// Its value now.
    pub current: Value,
    /// Its value after the change (`null` when the resource goes away).
    pub desired: Value,
    /// The rule that proposed it, for example `compute_optimizer_rightsizing`.
    pub rule: String,
    /// Why, with the evidence, for example "P99.5 CPU 7.8% over 14 days".
    pub rationale: String,
    /// Estimated monthly saving in USD (negative: the change costs more).
    pub monthly_saving_usd: f64,
    /// Security checks this change makes pass on the resource.
    pub removes_findings: Vec<String>,
    /// How risky it is.
    pub risk: Risk,
}

impl Change {
    /// A change with its content-derived id and no findings removed yet.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        action: Action,
        resource: ResourceRef,
        attribute: &str,
        current: Value,
        desired: Value,
        rule: &str,
        rationale: String,
        risk: Risk,
    ) -> Self {
        let id = content_id(action, &resource, attribute, &desired);
        Self {
            id,
            action,
            resource,
            attribute: attribute.to_owned(),
            current,
            desired,
            rule: rule.to_owned(),
            rationale,
            monthly_saving_usd: 0.0,
            removes_findings: Vec::new(),
            risk,
        }
    }

    /// Sets the estimated monthly saving.
    #[must_use]
    pub fn with_saving(mut self, usd: f64) -> Self {
        self.monthly_saving_usd = usd;
        self
    }

    /// Fills `removes_findings` with the checks that fail on the resource now and pass once the
    /// change is applied, judged on the resource alone.
    #[must_use]
    pub fn with_findings_removed(mut self, inventory: &Inventory) -> Self {
        let alone = inventory.only(&self.resource);
        let before = failing_checks(&alone);
        let mut after_inventory = alone;
        self.apply_to(&mut after_inventory);
        let after = failing_checks(&after_inventory);
        self.removes_findings = before.difference(&after).cloned().collect();
        self
    }

    /// The monthly saving of this change on its resource alone: the catalog price before minus
    /// after, so that a plan's savings add up to the change in the assessed total.
    #[must_use]
    pub fn saving_on(&self, inventory: &Inventory, catalog: &crate::catalog::PriceCatalog) -> f64 {
        let alone = inventory.only(&self.resource);
        let mut after = alone.clone();
        self.apply_to(&mut after);
        crate::assessment::monthly_cost(&alone, catalog) - crate::assessment::monthly_cost(&after, catalog)
    }

    /// True for release, delete and terminate.
    #[must_use]
    pub fn is_destructive(&self) -> bool {
        self.action.is_destructive()
    }

    /// Writes the desired state into `inventory`: the world as it will be once the change is
    /// applied. A change whose resource is missing leaves the inventory as it is.
    pub fn apply_to(&self, inventory: &mut Inventory) {
        let id = self.resource.id.as_str();
        match self.action {
            Action::RevokeIngress => {
                if let (Some(g), Ok(rule)) = (
                    inventory.security_groups.iter_mut().find(|g| g.id == id),
                    serde_json::from_value::<crate::world::SecurityGroupRule>(self.current.clone()),
                ) {
                    g.ingress.retain(|r| *r != rule);
                }
            }
            Action::BlockPublicAccess => {
                if let Some(b) = inventory.buckets.iter_mut().find(|b| b.name == id) {
                    b.public_access_block = Some(PublicAccessBlock::ALL);
                }
            }
            Action::EnableDefaultEncryption => {
                if let Some(b) = inventory.buckets.iter_mut().find(|b| b.name == id) {
                    b.default_encryption = self.desired.as_str().map(str::to_owned);
                }
            }
            Action::EnableVersioning => {
                if let Some(b) = inventory.buckets.iter_mut().find(|b| b.name == id) {
                    b.versioning = crate::world::VersioningStatus::Enabled;
                }
            }
            Action::RequireImdsV2 => {
                if let Some(i) = inventory.instances.iter_mut().find(|i| i.id == id) {
                    i.imds_v2_required = true;
                }
            }
            Action::DisableRdsPublicAccess => {
                if let Some(d) = inventory.db_instances.iter_mut().find(|d| d.id == id) {
                    d.publicly_accessible = false;
                }
            }
            Action::EnableRdsBackups => {
                if let Some(d) = inventory.db_instances.iter_mut().find(|d| d.id == id) {
                    d.backup_retention_days = self.desired.as_i64().map_or(7, |v| i32::try_from(v).unwrap_or(7));
                }
            }
            Action::EnableRdsDeletionProtection => {
                if let Some(d) = inventory.db_instances.iter_mut().find(|d| d.id == id) {
                    d.deletion_protection = true;
                }
            }
            Action::MigrateVolumeToGp3 => {
                if let Some(v) = inventory.volumes.iter_mut().find(|v| v.id == id) {
                    // gp3 includes 3,000 IOPS; a large gp2 volume's baseline (3 per GiB) is kept.
                    "gp3".clone_into(&mut v.volume_type);
                    v.iops = Some((v.size_gib.saturating_mul(3)).clamp(3000, 16_000));
                }
            }
            Action::ResizeInstance => {
                if let (Some(i), Some(t)) = (
                    inventory.instances.iter_mut().find(|i| i.id == id),
                    self.desired.as_str(),
                ) {
                    t.clone_into(&mut i.instance_type);
                }
            }
            Action::ResizeDbInstance => {
                if let (Some(d), Some(c)) = (
                    inventory.db_instances.iter_mut().find(|d| d.id == id),
                    self.desired.as_str(),
                ) {
                    c.clone_into(&mut d.class);
                }
            }
            Action::StopInstance => {
                if let Some(i) = inventory.instances.iter_mut().find(|i| i.id == id) {
                    "stopped".clone_into(&mut i.state);
                }
            }
            Action::ReleaseAddress => inventory.addresses.retain(|a| a.allocation_id != id),
            Action::DeleteVolume => inventory.volumes.retain(|v| v.id != id),
            Action::TerminateInstance => {
                inventory.instances.retain(|i| i.id != id);
                inventory.volumes.retain(|v| !v.attached_to.iter().any(|a| a == id));
            }
        }
    }
}

/// The first 16 hex digits of SHA-256 over the change's identity.
fn content_id(action: Action, resource: &ResourceRef, attribute: &str, desired: &Value) -> String {
    let identity = json!([resource.kind, resource.region, resource.id, action, attribute, desired]);
    let digest = Sha256::digest(identity.to_string().as_bytes());
    digest.iter().take(8).fold(String::with_capacity(16), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// Check ids failing on anything in `inventory`.
fn failing_checks(inventory: &Inventory) -> BTreeSet<String> {
    run_checks(inventory)
        .into_iter()
        .filter(|f| f.status == FindingStatus::Fail)
        .map(|f| f.check_id)
        .collect()
}

/// θ2's output: changes that follow from configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Changes that save money: clean-up, gp2 → gp3, right-sizing, idle.
    pub cost: Vec<Change>,
    /// Remediations of security findings.
    pub security: Vec<Change>,
    /// Failing checks with no safe automatic fix, for a human: `(check id, resource id)`.
    pub manual: Vec<(String, String)>,
}

impl Plan {
    /// Every change, cost first.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.cost.iter().chain(&self.security)
    }

    /// The inventory after every change of the plan.
    #[must_use]
    pub fn project(&self, inventory: &Inventory) -> Inventory {
        let mut projected = inventory.clone();
        for change in self.changes() {
            change.apply_to(&mut projected);
        }
        projected
    }
}

impl Inventory {
    /// A copy holding only `resource` (and, for an instance, its attached volumes), for judging
    /// a change on the resource alone.
    #[must_use]
    pub fn only(&self, resource: &ResourceRef) -> Inventory {
        let id = resource.id.as_str();
        let mut alone = Inventory::default();
        match resource.kind {
            ResourceKind::Ec2Instance => {
                alone.instances = self.instances.iter().filter(|i| i.id == id).cloned().collect();
                alone.volumes = self
                    .volumes
                    .iter()
                    .filter(|v| v.attached_to.iter().any(|a| a == id))
                    .cloned()
                    .collect();
            }
            ResourceKind::EbsVolume => alone.volumes = self.volumes.iter().filter(|v| v.id == id).cloned().collect(),
            ResourceKind::ElasticIp => {
                alone.addresses = self
                    .addresses
                    .iter()
                    .filter(|a| a.allocation_id == id)
                    .cloned()
                    .collect();
            }
            ResourceKind::SecurityGroup => {
                alone.security_groups = self.security_groups.iter().filter(|g| g.id == id).cloned().collect();
            }
            ResourceKind::S3Bucket => alone.buckets = self.buckets.iter().filter(|b| b.name == id).cloned().collect(),
            ResourceKind::RdsInstance => {
                alone.db_instances = self.db_instances.iter().filter(|d| d.id == id).cloned().collect();
            }
        }
        alone
    }
}
