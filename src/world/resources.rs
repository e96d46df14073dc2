//! Resource records. Each carries id, ARN, Region, type, state, tags and owner agent, plus the
//! attributes that the assessment and the rules read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Resource tags, ordered for stable output.
pub type Tags = BTreeMap<String, String>;

/// An EC2 instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ec2Instance {
    /// Instance id, `i-…`.
    pub id: String,
    /// Instance ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Availability Zone.
    pub availability_zone: Option<String>,
    /// Instance type, for example `m5.large`.
    pub instance_type: String,
    /// The AMI it was launched from (absent in documents written before it was captured).
    #[serde(default)]
    pub image_id: Option<String>,
    /// Lifecycle state: `running`, `stopped`, …
    pub state: String,
    /// When the instance last entered `stopped`, parsed from the state-transition reason.
    pub stopped_since: Option<DateTime<Utc>>,
    /// Launch time.
    pub launch_time: Option<DateTime<Utc>>,
    /// CPU architecture, `x86_64` or `arm64`.
    pub architecture: Option<String>,
    /// Platform details, for example `Linux/UNIX`.
    pub platform: Option<String>,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Subnet.
    pub subnet_id: Option<String>,
    /// Public IPv4 address, when it has one.
    pub public_ip: Option<String>,
    /// Attached security groups.
    pub security_group_ids: Vec<String>,
    /// Attached EBS volumes.
    pub volume_ids: Vec<String>,
    /// Whether IMDSv2 (session tokens) is required.
    pub imds_v2_required: bool,
    /// `MetadataOptions.HttpEndpoint`: `enabled` or `disabled` (absent in documents written
    /// before it was captured, and when EC2 did not say).
    #[serde(default)]
    pub imds_endpoint: Option<String>,
    /// The IAM instance profile's ARN, when one is attached.
    #[serde(default)]
    pub instance_profile_arn: Option<String>,
    /// `Monitoring.State`: `disabled`, `pending` or `enabled` (detailed monitoring).
    #[serde(default)]
    pub monitoring: Option<String>,
    /// `hvm` or `paravirtual`.
    #[serde(default)]
    pub virtualization_type: Option<String>,
    /// Whether Nitro Enclaves are enabled: the instance hosts a confidential workload.
    #[serde(default)]
    pub enclave_enabled: bool,
    /// Its network interfaces.
    #[serde(default)]
    pub network_interface_ids: Vec<String>,
    /// What θ1 found scanning the instance's user data; `None` when it was not read. The user
    /// data itself is never kept: a world state names the kind and line of a secret, never
    /// the secret.
    #[serde(default)]
    pub user_data: Option<UserDataScan>,
    /// Tags. A tag θ1 took for a credential (by its key, or its value's form) has its value
    /// replaced by `[redacted]`.
    pub tags: Tags,
    /// Owner agent persona, from the service family.
    pub owner_agent: String,
}

/// The outcome of scanning an instance's user data for secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum UserDataScan {
    /// The instance has no user data.
    Empty,
    /// The user data was read and scanned.
    Scanned {
        /// What looks like a secret, in order of line.
        secrets: Vec<SecretHit>,
    },
    /// The user data is neither text nor gzip-compressed text.
    Undecodable,
}

/// Something that looks like a secret: its kind and line, never its value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretHit {
    /// 1-based line number.
    pub line: u32,
    /// The rule that matched, for example `AWS Access Key`.
    pub kind: String,
}

/// An EBS volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EbsVolume {
    /// Volume id, `vol-…`.
    pub id: String,
    /// Volume ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Availability Zone.
    pub availability_zone: Option<String>,
    /// Volume type: `gp2`, `gp3`, `io1`, …
    pub volume_type: String,
    /// Size in GiB.
    pub size_gib: u32,
    /// Provisioned IOPS, where the type has them.
    pub iops: Option<u32>,
    /// Provisioned throughput in MiB/s (gp3).
    pub throughput_mibps: Option<u32>,
    /// Whether the volume is encrypted.
    pub encrypted: bool,
    /// State: `available` (unattached), `in-use`, …
    pub state: String,
    /// Instances it is attached to.
    pub attached_to: Vec<String>,
    /// Creation time.
    pub create_time: Option<DateTime<Utc>>,
    /// Tags.
    pub tags: Tags,
    /// Owner agent persona.
    pub owner_agent: String,
}

/// An Elastic IP address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElasticIp {
    /// Allocation id, `eipalloc-…`.
    pub allocation_id: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// The public address.
    pub public_ip: String,
    /// Association id, when associated.
    pub association_id: Option<String>,
    /// Instance it is associated with.
    pub instance_id: Option<String>,
    /// Network interface it is associated with.
    pub network_interface_id: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// Owner agent persona.
    pub owner_agent: String,
}

/// A security group and its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    /// Group id, `sg-…`.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Group name (`default` for a VPC's default group).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Inbound rules.
    pub ingress: Vec<SecurityGroupRule>,
    /// Outbound rules.
    pub egress: Vec<SecurityGroupRule>,
    /// Tags.
    pub tags: Tags,
    /// Owner agent persona.
    pub owner_agent: String,
}

/// One permission of a security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupRule {
    /// `tcp`, `udp`, `icmp` or `-1` for all protocols.
    pub protocol: String,
    /// First port; absent for all protocols.
    pub from_port: Option<i32>,
    /// Last port; absent for all protocols.
    pub to_port: Option<i32>,
    /// IPv4 source or destination ranges.
    pub ipv4_ranges: Vec<String>,
    /// IPv6 source or destination ranges.
    pub ipv6_ranges: Vec<String>,
    /// Referenced security groups.
    pub group_ids: Vec<String>,
}

impl SecurityGroupRule {
    /// True when the rule is open to the whole internet (`0.0.0.0/0` or `::/0`).
    #[must_use]
    pub fn is_world_open(&self) -> bool {
        self.ipv4_ranges.iter().any(|r| r == "0.0.0.0/0") || self.ipv6_ranges.iter().any(|r| r == "::/0")
    }

    /// True when the rule admits a source outside private address space: an IPv4 range that
    /// is not within RFC 1918 or shared (100.64.0.0/10) space, or an IPv6 range that is not
    /// unique-local or link-local. A rule naming only security groups admits none.
    #[must_use]
    pub fn admits_public_sources(&self) -> bool {
        fn private_v4(cidr: &str) -> bool {
            let Some(Ok(ip)) = cidr.split('/').next().map(str::parse::<std::net::Ipv4Addr>) else {
                return false;
            };
            let prefix: u8 = cidr.split_once('/').and_then(|(_, p)| p.parse().ok()).unwrap_or(32);
            let [a, b, ..] = ip.octets();
            let within = |bits: u8| prefix >= bits;
            (a == 10 && within(8))
                || (a == 172 && (16..32).contains(&b) && within(12))
                || (a == 192 && b == 168 && within(16))
                || (a == 100 && (64..128).contains(&b) && within(10))
        }
        fn private_v6(cidr: &str) -> bool {
            let Some(Ok(ip)) = cidr.split('/').next().map(str::parse::<std::net::Ipv6Addr>) else {
                return false;
            };
            let prefix: u8 = cidr.split_once('/').and_then(|(_, p)| p.parse().ok()).unwrap_or(128);
            let first = ip.segments()[0];
            (first & 0xfe00 == 0xfc00 && prefix >= 7) || (first & 0xffc0 == 0xfe80 && prefix >= 10)
        }
        self.ipv4_ranges.iter().any(|c| !private_v4(c)) || self.ipv6_ranges.iter().any(|c| !private_v6(c))
    }

    /// True when the rule covers every port: all protocols, or any protocol's ports 0–65535
    /// (UDP too), as Prowler's all-ports check reads a rule.
    #[must_use]
    pub fn covers_all_ports(&self) -> bool {
        self.protocol == "-1" || (self.from_port == Some(0) && self.to_port == Some(65535))
    }
}

/// An S3 bucket and its access settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)]
pub struct S3Bucket {
    /// Bucket name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Region the bucket lives in.
    pub region: String,
    /// Creation time.
    pub created: Option<DateTime<Utc>>,
    /// The bucket-level public access block; `None` when none is configured.
    pub public_access_block: Option<PublicAccessBlock>,
    /// Whether the bucket policy makes it public; `None` when it has no policy.
    pub policy_is_public: Option<bool>,
    /// ACL grants.
    pub acl_grants: Vec<AclGrant>,
    /// Default encryption algorithm (`AES256`, `aws:kms`); `None` when none is configured.
    pub default_encryption: Option<String>,
    /// Versioning status.
    pub versioning: VersioningStatus,
    /// Whether server access logging is on.
    pub logging_enabled: bool,
    /// Size from the `BucketSizeBytes` metric, when CloudWatch has it.
    pub size_bytes: Option<f64>,
    /// Tags.
    pub tags: Tags,
    /// Owner agent persona.
    pub owner_agent: String,
    /// The bucket policy document; `None` when the bucket has none.
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// Whether versioning's MFA delete is enabled.
    #[serde(default)]
    pub mfa_delete: bool,
    /// Object Ownership (`BucketOwnerEnforced` disables ACLs); `None` when not configured.
    #[serde(default)]
    pub object_ownership: Option<String>,
    /// Whether an Object Lock configuration exists.
    #[serde(default)]
    pub object_lock: bool,
    /// Whether some lifecycle rule is enabled.
    #[serde(default)]
    pub lifecycle_enabled: bool,
    /// Replication rules.
    #[serde(default)]
    pub replication_rules: Vec<ReplicationRule>,
    /// Whether any event notification (SNS, SQS, Lambda or `EventBridge`) is configured.
    #[serde(default)]
    pub event_notifications: bool,
}

/// One replication rule of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicationRule {
    /// `Enabled` or `Disabled`.
    pub status: String,
    /// The destination bucket's ARN.
    pub destination_bucket: Option<String>,
}

/// The four settings of an S3 public access block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)]
pub struct PublicAccessBlock {
    /// Block public ACLs.
    pub block_public_acls: bool,
    /// Ignore public ACLs.
    pub ignore_public_acls: bool,
    /// Block public policy.
    pub block_public_policy: bool,
    /// Restrict public buckets.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four settings on.
    pub const ALL: Self = Self {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    /// True when all four settings are on.
    #[must_use]
    pub fn is_full(&self) -> bool {
        *self == Self::ALL
    }
}

/// One ACL grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AclGrant {
    /// Grantee: a group URI, a canonical user id or an e-mail.
    pub grantee: String,
    /// `READ`, `WRITE`, `READ_ACP`, `WRITE_ACP` or `FULL_CONTROL`.
    pub permission: String,
}

impl AclGrant {
    /// True when the grantee is everyone or every authenticated AWS user.
    #[must_use]
    pub fn is_public(&self) -> bool {
        self.grantee.ends_with("/global/AllUsers") || self.grantee.ends_with("/global/AuthenticatedUsers")
    }
}

/// S3 versioning status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersioningStatus {
    /// Never enabled.
    Off,
    /// Enabled.
    Enabled,
    /// Enabled once, now suspended.
    Suspended,
}

/// An RDS DB instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)]
pub struct RdsInstance {
    /// DB instance identifier.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Instance class, for example `db.m5.large`.
    pub class: String,
    /// Engine, for example `postgres`.
    pub engine: String,
    /// Engine version.
    pub engine_version: Option<String>,
    /// Status, for example `available`.
    pub status: String,
    /// Allocated storage in GiB.
    pub allocated_storage_gib: u32,
    /// Storage type, for example `gp2`.
    pub storage_type: Option<String>,
    /// Whether the instance has a public endpoint.
    pub publicly_accessible: bool,
    /// Whether storage is encrypted.
    pub storage_encrypted: bool,
    /// Automated backup retention in days (0 = off).
    pub backup_retention_days: i32,
    /// Whether deletion protection is on.
    pub deletion_protection: bool,
    /// Whether the instance is Multi-AZ.
    pub multi_az: bool,
    /// Master user name.
    pub master_username: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// Owner agent persona.
    pub owner_agent: String,
    /// The cluster it belongs to, if any.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// The instance it replicates, when it is a read replica.
    #[serde(default)]
    pub replica_source: Option<String>,
    /// Whether minor engine upgrades apply automatically.
    #[serde(default)]
    pub auto_minor_version_upgrade: bool,
    /// Whether IAM database authentication is on.
    #[serde(default)]
    pub iam_auth: bool,
    /// Log types exported to CloudWatch Logs.
    #[serde(default)]
    pub cloudwatch_logs_exports: Vec<String>,
    /// The Enhanced Monitoring log stream's ARN, when Enhanced Monitoring is on.
    #[serde(default)]
    pub enhanced_monitoring_arn: Option<String>,
    /// Whether tags are copied to snapshots.
    #[serde(default)]
    pub copy_tags_to_snapshot: bool,
    /// The endpoint's port, once it has one.
    #[serde(default)]
    pub port: Option<i32>,
    /// The VPC of its subnet group.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// The active subnets of its subnet group.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Its active VPC security groups.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// `EngineLifecycleSupport`: `open-source-rds-extended-support` when RDS Extended Support
    /// (a paid extension past end of standard support) applies.
    #[serde(default)]
    pub engine_lifecycle_support: Option<String>,
}

/// An RDS DB cluster (Aurora, Multi-AZ DB cluster, Neptune).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)]
pub struct RdsCluster {
    /// DB cluster identifier.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Engine, for example `aurora-postgresql`.
    pub engine: String,
    /// Status, for example `available`.
    pub status: String,
    /// Whether storage is encrypted.
    pub storage_encrypted: bool,
    /// Whether deletion protection is on.
    pub deletion_protection: bool,
    /// Whether the cluster spans several Availability Zones.
    pub multi_az: bool,
    /// Master user name.
    pub master_username: Option<String>,
    /// Whether minor engine upgrades apply automatically.
    pub auto_minor_version_upgrade: bool,
    /// Whether IAM database authentication is on.
    pub iam_auth: bool,
    /// Log types exported to CloudWatch Logs.
    pub cloudwatch_logs_exports: Vec<String>,
    /// Backtrack window in seconds (Aurora MySQL); 0 when off.
    pub backtrack_window: i64,
    /// Whether tags are copied to snapshots.
    pub copy_tags_to_snapshot: bool,
    /// The port.
    pub port: Option<i32>,
    /// Automated backup retention in days.
    pub backup_retention_days: i32,
    /// Tags.
    pub tags: Tags,
}

/// An RDS DB snapshot or DB cluster snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RdsSnapshot {
    /// Snapshot identifier.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// `db` for a DB snapshot, `cluster` for a DB cluster snapshot.
    pub of: String,
    /// The DB instance or cluster it was taken from.
    pub source_id: Option<String>,
    /// `manual` or `automated`.
    pub snapshot_type: Option<String>,
    /// Whether it is encrypted.
    pub encrypted: bool,
    /// True when its `restore` attribute lets everyone (`all`) restore it.
    pub public: bool,
}

/// A CloudWatch series of one metric of one resource.
///
/// Timestamps (Unix seconds) and values are parallel arrays in ascending time order; this keeps
/// large captures compact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSeries {
    /// The resource the series belongs to (instance id, volume id, DB identifier, bucket name).
    pub resource_id: String,
    /// Region.
    pub region: String,
    /// Namespace, for example `AWS/EC2`.
    pub namespace: String,
    /// Metric name, for example `CPUUtilization`.
    pub metric_name: String,
    /// Dimensions, name → value.
    pub dimensions: BTreeMap<String, String>,
    /// Statistic, for example `Average`.
    pub stat: String,
    /// Period in seconds.
    pub period_seconds: u32,
    /// Unix timestamps in seconds, ascending.
    pub timestamps: Vec<i64>,
    /// Values, one per timestamp.
    pub values: Vec<f64>,
}

impl MetricSeries {
    /// Number of datapoints.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the series holds no datapoint.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Arithmetic mean of the values, if any.
    #[must_use]
    pub fn mean(&self) -> Option<f64> {
        if self.values.is_empty() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        Some(self.values.iter().sum::<f64>() / self.values.len() as f64)
    }

    /// The latest value, if any.
    #[must_use]
    pub fn last(&self) -> Option<f64> {
        self.values.last().copied()
    }

    /// Drops the datapoints before `since` (Unix seconds): what was measured before a change
    /// says nothing about the resource after it.
    pub fn keep_since(&mut self, since: i64) {
        let first = self.timestamps.partition_point(|&t| t < since);
        self.timestamps.drain(..first);
        self.values.drain(..first.min(self.values.len()));
    }
}
