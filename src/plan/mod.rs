//! Plans: typed changes to the estate, as θ2 and θ3 propose them and θ4 executes them.
//!
//! A [`Change`] names a resource, one attribute with its current and desired value, the rule and
//! the evidence behind it, and what it buys: a monthly saving in USD, or the security findings it
//! removes. [`Change::apply_to`] writes the desired value into an inventory, so that the world
//! *after* a plan can be assessed like any other (projected cost and score), and so that tests
//! can check that a remediation removes exactly the finding it claims.

pub mod execution;

use std::collections::{BTreeSet, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::assessment::security::run_checks;
use crate::assessment::{FindingStatus, ResourceKind};
use crate::world::{
    EbsSnapshot, EbsVolume, Ec2Instance, ElasticIp, Inventory, NetworkInterface, PublicAccessBlock, RdsInstance,
    RegionSettings, S3Bucket, SecurityGroup, Subnet,
};

/// On a volume an encryption swap replaced: the id of the encrypted copy in its place.
pub const REPLACED_BY_TAG: &str = "MiyabiReplacedBy";
/// On the encrypted copy and on the snapshot it was made from: the id of the volume replaced.
pub const REPLACES_TAG: &str = "MiyabiReplaces";

/// The tag that marks the engine's S3 access-log bucket of an account and Region.
pub const LOG_BUCKET_ROLE: (&str, &str) = ("MiyabiRole", "access-logs");

const LOG_BUCKET_PREFIX: &str = "miyabi-access-logs-";

/// The engine's access-log bucket of `account` in `region`.
#[must_use]
pub fn log_bucket_name(account: &str, region: &str) -> String {
    format!("{LOG_BUCKET_PREFIX}{account}-{region}")
}

/// The account of a bucket named by [`log_bucket_name`].
#[must_use]
pub fn log_bucket_account(name: &str) -> Option<&str> {
    let (account, _) = name.strip_prefix(LOG_BUCKET_PREFIX)?.split_once('-')?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

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
    /// Put an encrypted copy in place of an unencrypted volume: stop the instance, snapshot,
    /// create an encrypted volume from the snapshot, swap, start. The old volume stays,
    /// detached and tagged, so that the swap can be undone; a later iteration deletes it.
    EncryptVolume,
    /// Keep a synchronous standby of a DB instance in a second Availability Zone.
    EnableRdsMultiAz,
    /// Encrypt the account's new EBS volumes in the Region by default.
    EnableEbsDefaultEncryption,
    /// Block public sharing of the account's EBS snapshots in the Region.
    BlockSnapshotPublicAccess,
    /// Make IMDSv2 the account's default for instances launched in the Region.
    RequireImdsV2ByDefault,
    /// Turn on server access logging into the engine's log bucket of the Region (created,
    /// with its policy, when missing).
    EnableAccessLogging,
    /// Remove every rule of a default security group in use: members that need to reach each
    /// other get a group of their own.
    RestrictDefaultGroup,
    /// Remove an instance's auto-assigned public IPv4 address, where no security group of it
    /// admits traffic from outside private address space.
    RemovePublicIp,
    /// Encrypt a DB instance's storage: restore an encrypted snapshot copy and cut over to it
    /// under the same identifier, then delete the old instance. Destructive.
    EncryptDbStorage,
}

impl Action {
    /// Whether the change alters the capacity the resource's metrics are measured against (a
    /// new type or class), so that its earlier datapoints no longer describe it.
    #[must_use]
    pub fn changes_capacity(self) -> bool {
        matches!(self, Self::ResizeInstance | Self::ResizeDbInstance)
    }

    /// Release, delete and terminate: they cannot be rolled back to an equal estate, always
    /// need explicit approval and run last.
    #[must_use]
    pub fn is_destructive(self) -> bool {
        matches!(
            self,
            Self::ReleaseAddress | Self::DeleteVolume | Self::TerminateInstance | Self::EncryptDbStorage
        )
    }

    /// Why the change always waits for a human, whatever its cost and risk: it stops a
    /// workload or costs money by its nature.
    #[must_use]
    pub fn inherent_approval_reason(self) -> Option<&'static str> {
        match self {
            Self::EncryptVolume => Some("stops the instance while its volume is swapped (downtime)"),
            Self::EnableRdsMultiAz => Some("adds a standby DB instance, billed like the primary"),
            Self::EncryptDbStorage => Some("cuts clients over to a restored instance (downtime)"),
            Self::RemovePublicIp => {
                Some("cuts off clients reaching the instance at its public IP; one given back is a new address")
            }
            _ => None,
        }
    }

    /// Whether the change sets an account-wide default in one Region.
    #[must_use]
    pub fn is_account_setting(self) -> bool {
        matches!(
            self,
            Self::EnableEbsDefaultEncryption | Self::BlockSnapshotPublicAccess | Self::RequireImdsV2ByDefault
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
            Self::EncryptVolume => &[
                "StopInstances",
                "CreateSnapshot",
                "CreateVolume",
                "DetachVolume",
                "AttachVolume",
                "StartInstances",
                "CreateTags",
                "DeleteSnapshot",
            ],
            Self::EnableRdsMultiAz => &["ModifyDBInstance"],
            Self::RemovePublicIp => &["ModifyNetworkInterfaceAttribute"],
            Self::RestrictDefaultGroup => &["RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"],
            Self::EnableAccessLogging => &[
                "CreateBucket",
                "PutBucketTagging",
                "PutPublicAccessBlock",
                "PutBucketOwnershipControls",
                "PutBucketEncryption",
                "PutBucketVersioning",
                "PutBucketLifecycleConfiguration",
                "PutBucketPolicy",
                "PutBucketLogging",
            ],
            Self::EncryptDbStorage => &[
                "CreateDBSnapshot",
                "CopyDBSnapshot",
                "RestoreDBInstanceFromDBSnapshot",
                "ModifyDBInstance",
                "DeleteDBSnapshot",
                "DeleteDBInstance",
            ],
            Self::EnableEbsDefaultEncryption => &["EnableEbsEncryptionByDefault"],
            Self::BlockSnapshotPublicAccess => &["EnableSnapshotBlockPublicAccess"],
            Self::RequireImdsV2ByDefault => &["ModifyInstanceMetadataDefaults"],
        }
    }

    /// The service key of the owner directory (`ec2`, `ebs`, `s3`, `rds`).
    #[must_use]
    pub fn service(self) -> &'static str {
        match self {
            Self::BlockPublicAccess
            | Self::EnableDefaultEncryption
            | Self::EnableVersioning
            | Self::EnableAccessLogging => "s3",
            Self::DisableRdsPublicAccess
            | Self::EnableRdsBackups
            | Self::EnableRdsDeletionProtection
            | Self::ResizeDbInstance
            | Self::EnableRdsMultiAz
            | Self::EncryptDbStorage => "rds",
            Self::MigrateVolumeToGp3
            | Self::DeleteVolume
            | Self::EncryptVolume
            | Self::EnableEbsDefaultEncryption
            | Self::BlockSnapshotPublicAccess => "ebs",
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
    pub fn with_findings_removed(mut self, index: &InventoryIndex<'_>) -> Self {
        let alone = index.only(&self.resource);
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
    pub fn saving_on(&self, index: &InventoryIndex<'_>, catalog: &crate::catalog::PriceCatalog) -> f64 {
        let mut alone = index.only(&self.resource);
        let before = crate::assessment::monthly_cost(&alone, catalog);
        self.apply_to(&mut alone);
        before - crate::assessment::monthly_cost(&alone, catalog)
    }

    /// What θ4 must not touch twice at once: the instance an encryption swap stops, the log
    /// bucket a logging change may create, otherwise the resource itself. Steps with the same
    /// key run one after another.
    #[must_use]
    pub fn serialised_on(&self) -> &str {
        match self.action {
            Action::EnableAccessLogging => self.desired.as_str().unwrap_or(&self.resource.id),
            Action::EncryptVolume => self
                .current
                .get("instance_id")
                .and_then(Value::as_str)
                .unwrap_or(&self.resource.id),
            _ => &self.resource.id,
        }
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
            Action::RestrictDefaultGroup => {
                if let Some(g) = inventory.security_groups.iter_mut().find(|g| g.id == id) {
                    g.ingress.clear();
                    g.egress.clear();
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
            Action::EnableAccessLogging => {
                if let Some(b) = inventory.buckets.iter_mut().find(|b| b.name == id) {
                    b.logging_enabled = !self.desired.is_null();
                }
            }
            Action::RequireImdsV2 => {
                if let Some(i) = inventory.instances.iter_mut().find(|i| i.id == id) {
                    i.imds_v2_required = true;
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
            Action::StopInstance => {
                if let Some(i) = inventory.instances.iter_mut().find(|i| i.id == id) {
                    "stopped".clone_into(&mut i.state);
                }
            }
            Action::RemovePublicIp => {
                if let Some(i) = inventory.instances.iter_mut().find(|i| i.id == id) {
                    i.public_ip = None;
                }
            }
            Action::ReleaseAddress => inventory.addresses.retain(|a| a.allocation_id != id),
            Action::DeleteVolume => inventory.volumes.retain(|v| v.id != id),
            Action::TerminateInstance => {
                inventory.instances.retain(|i| i.id != id);
                inventory.volumes.retain(|v| !v.attached_to.iter().any(|a| a == id));
            }
            // The projection keeps the volume's place and its id: the encrypted copy takes both.
            Action::EncryptVolume => {
                if let Some(v) = inventory.volumes.iter_mut().find(|v| v.id == id) {
                    v.encrypted = self.desired.get("encrypted").and_then(Value::as_bool).unwrap_or(true);
                }
            }
            Action::EnableEbsDefaultEncryption | Action::BlockSnapshotPublicAccess | Action::RequireImdsV2ByDefault => {
                self.apply_account_setting(inventory);
            }
            Action::DisableRdsPublicAccess
            | Action::EnableRdsBackups
            | Action::EnableRdsDeletionProtection
            | Action::ResizeDbInstance
            | Action::EnableRdsMultiAz
            | Action::EncryptDbStorage => {
                if let Some(d) = inventory.db_instances.iter_mut().find(|d| d.id == id) {
                    self.apply_to_db(d);
                }
            }
        }
    }

    /// [`Change::apply_to`] for a DB instance.
    fn apply_to_db(&self, d: &mut RdsInstance) {
        match self.action {
            Action::DisableRdsPublicAccess => d.publicly_accessible = false,
            Action::EnableRdsBackups => {
                d.backup_retention_days = self.desired.as_i64().map_or(7, |v| i32::try_from(v).unwrap_or(7));
            }
            Action::EnableRdsDeletionProtection => d.deletion_protection = true,
            Action::EnableRdsMultiAz => d.multi_az = true,
            Action::EncryptDbStorage => d.storage_encrypted = true,
            _ => {
                if let Some(c) = self.desired.as_str() {
                    c.clone_into(&mut d.class);
                }
            }
        }
    }

    /// [`Change::apply_to`] for the account's defaults in the change's Region.
    fn apply_account_setting(&self, inventory: &mut Inventory) {
        let (account, region) = (self.resource.id.as_str(), self.resource.region.as_str());
        let Some(s) = inventory
            .region_settings
            .iter_mut()
            .find(|s| s.account_id == account && s.region == region)
        else {
            return;
        };
        let desired = self.desired.as_str().map(str::to_owned);
        match self.action {
            Action::EnableEbsDefaultEncryption => s.ebs_encryption_by_default = self.desired.as_bool(),
            Action::BlockSnapshotPublicAccess => s.snapshot_block_public_access = desired,
            _ => s.instance_metadata_http_tokens = desired,
        }
    }
}

/// The first 16 hex digits of SHA-256 over the change's identity.
fn content_id(action: Action, resource: &ResourceRef, attribute: &str, desired: &Value) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    /// Feeds serialised JSON straight into the digest, so no text is built.
    struct Digesting(Sha256);
    impl std::io::Write for Digesting {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let identity = (
        resource.kind,
        &resource.region,
        &resource.id,
        action,
        attribute,
        desired,
    );
    let mut digest = Digesting(Sha256::new());
    // Writing into a digest cannot fail, and the tuple always serialises: the JSON array text
    // is `[kind,region,id,action,attribute,desired]`, as it always was.
    let _ = serde_json::to_writer(&mut digest, &identity);
    digest
        .0
        .finalize()
        .iter()
        .take(8)
        .fold(String::with_capacity(16), |mut hex, b| {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
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
    /// Changes held back because their resource's capture is partial, with why; θ3 lists them
    /// among its plan's exclusions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<execution::Excluded>,
}

impl crate::artefact::Artefact for Plan {
    const WHAT: &'static str = "a plan (θ2)";
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

/// The resources of an inventory by id, built once so that judging many changes each on its
/// resource alone stays linear in the size of the estate.
#[derive(Debug)]
pub struct InventoryIndex<'a> {
    instances: HashMap<&'a str, &'a Ec2Instance>,
    volumes: HashMap<&'a str, &'a EbsVolume>,
    volumes_of_instance: HashMap<&'a str, Vec<&'a EbsVolume>>,
    addresses: HashMap<&'a str, &'a ElasticIp>,
    security_groups: HashMap<&'a str, &'a SecurityGroup>,
    buckets: HashMap<&'a str, &'a S3Bucket>,
    db_instances: HashMap<&'a str, &'a RdsInstance>,
    /// What the checks read about a resource besides the resource itself.
    interfaces_by_group: HashMap<&'a str, Vec<&'a NetworkInterface>>,
    interfaces_by_instance: HashMap<&'a str, Vec<&'a NetworkInterface>>,
    subnets: HashMap<&'a str, &'a Subnet>,
    /// Per Region: the account's settings, and one instance, volume and snapshot, which make
    /// the account-level checks apply there.
    regions: HashMap<&'a str, RegionSlice<'a>>,
}

/// What an account-level change is judged on in one Region.
#[derive(Debug, Default)]
struct RegionSlice<'a> {
    settings: Vec<&'a RegionSettings>,
    instance: Option<&'a Ec2Instance>,
    volume: Option<&'a EbsVolume>,
    snapshot: Option<&'a EbsSnapshot>,
}

impl InventoryIndex<'_> {
    /// A copy holding only `resource` and what the checks read about it: an instance's
    /// volumes, groups, interfaces and subnet; the interfaces that use a group. For judging a
    /// change on the resource alone.
    #[must_use]
    pub fn only(&self, resource: &ResourceRef) -> Inventory {
        fn one<T: Clone>(map: &HashMap<&str, &T>, id: &str) -> Vec<T> {
            map.get(id).map(|r| vec![(*r).clone()]).unwrap_or_default()
        }
        fn all<T: Clone>(map: &HashMap<&str, Vec<&T>>, id: &str) -> Vec<T> {
            map.get(id)
                .map(|rs| rs.iter().map(|r| (*r).clone()).collect())
                .unwrap_or_default()
        }
        let id = resource.id.as_str();
        let mut alone = Inventory::default();
        match resource.kind {
            ResourceKind::Ec2Instance => {
                alone.instances = one(&self.instances, id);
                alone.volumes = all(&self.volumes_of_instance, id);
                alone.network_interfaces = all(&self.interfaces_by_instance, id);
                for i in &alone.instances {
                    for g in &i.security_group_ids {
                        alone.security_groups.extend(one(&self.security_groups, g));
                    }
                    if let Some(subnet) = &i.subnet_id {
                        alone.subnets.extend(one(&self.subnets, subnet));
                    }
                }
            }
            ResourceKind::EbsVolume => alone.volumes = one(&self.volumes, id),
            ResourceKind::ElasticIp => alone.addresses = one(&self.addresses, id),
            ResourceKind::SecurityGroup => {
                alone.security_groups = one(&self.security_groups, id);
                alone.network_interfaces = all(&self.interfaces_by_group, id);
            }
            ResourceKind::S3Bucket => alone.buckets = one(&self.buckets, id),
            ResourceKind::RdsInstance => alone.db_instances = one(&self.db_instances, id),
            ResourceKind::Account => {
                if let Some(slice) = self.regions.get(resource.region.as_str()) {
                    alone.region_settings = slice
                        .settings
                        .iter()
                        .filter(|s| s.account_id == id)
                        .map(|s| (*s).clone())
                        .collect();
                    alone.instances.extend(slice.instance.cloned());
                    alone.volumes.extend(slice.volume.cloned());
                    alone.snapshots.extend(slice.snapshot.cloned());
                }
            }
            // No change is planned on these kinds: nothing of theirs is indexed.
            ResourceKind::NetworkAcl
            | ResourceKind::EbsSnapshot
            | ResourceKind::RdsCluster
            | ResourceKind::RdsSnapshot
            | ResourceKind::RdsEventSubscription => {}
        }
        alone
    }
}

impl Inventory {
    /// Indexes the resources by id (metric series are not indexed; see [`Inventory::series_index`]).
    #[must_use]
    pub fn index(&self) -> InventoryIndex<'_> {
        let mut volumes_of_instance: HashMap<&str, Vec<&EbsVolume>> = HashMap::new();
        for v in &self.volumes {
            for instance in &v.attached_to {
                volumes_of_instance.entry(instance.as_str()).or_default().push(v);
            }
        }
        let mut interfaces_by_instance: HashMap<&str, Vec<&NetworkInterface>> = HashMap::new();
        for n in &self.network_interfaces {
            if let Some(instance) = &n.instance_id {
                interfaces_by_instance.entry(instance.as_str()).or_default().push(n);
            }
        }
        let mut regions: HashMap<&str, RegionSlice<'_>> = HashMap::new();
        for s in &self.region_settings {
            regions.entry(s.region.as_str()).or_default().settings.push(s);
        }
        for i in &self.instances {
            regions.entry(i.region.as_str()).or_default().instance.get_or_insert(i);
        }
        for v in &self.volumes {
            regions.entry(v.region.as_str()).or_default().volume.get_or_insert(v);
        }
        for s in &self.snapshots {
            regions.entry(s.region.as_str()).or_default().snapshot.get_or_insert(s);
        }
        InventoryIndex {
            regions,
            interfaces_by_group: self.interfaces_by_group(),
            interfaces_by_instance,
            subnets: self.subnets.iter().map(|s| (s.id.as_str(), s)).collect(),
            instances: self.instances.iter().map(|i| (i.id.as_str(), i)).collect(),
            volumes: self.volumes.iter().map(|v| (v.id.as_str(), v)).collect(),
            volumes_of_instance,
            addresses: self.addresses.iter().map(|a| (a.allocation_id.as_str(), a)).collect(),
            security_groups: self.security_groups.iter().map(|g| (g.id.as_str(), g)).collect(),
            buckets: self.buckets.iter().map(|b| (b.name.as_str(), b)).collect(),
            db_instances: self.db_instances.iter().map(|d| (d.id.as_str(), d)).collect(),
        }
    }

    /// A copy holding only `resource`; to judge many changes, build [`Inventory::index`] once.
    #[must_use]
    pub fn only(&self, resource: &ResourceRef) -> Inventory {
        self.index().only(resource)
    }
}
