//! What a security verdict needs beyond the priced resources: network interfaces (which groups
//! are in use, and by what), network ACLs, subnets (which are public), EBS snapshots, and the
//! per-Region account settings.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Tags;

/// An elastic network interface: it is what makes a security group "in use".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkInterface {
    /// Interface id, `eni-…`.
    pub id: String,
    /// Region.
    pub region: String,
    /// `interface`, `efa`, `trunk`, `vpc_endpoint`, `api_gateway_managed`, `nat_gateway`, …
    pub interface_type: String,
    /// `in-use` or `available`.
    pub status: String,
    /// The instance it is attached to, if any.
    pub instance_id: Option<String>,
    /// Who owns that instance: an account id, or a service alias such as `amazon-elb`.
    pub instance_owner_id: Option<String>,
    /// Its security groups.
    pub group_ids: Vec<String>,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Subnet.
    pub subnet_id: Option<String>,
}

/// A network ACL and its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkAcl {
    /// ACL id, `acl-…`.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Whether it is its VPC's default ACL.
    pub is_default: bool,
    /// Entries, both directions, as EC2 lists them (the implicit deny-all included).
    pub entries: Vec<NetworkAclEntry>,
    /// Subnets associated with it.
    pub subnet_ids: Vec<String>,
    /// Tags.
    pub tags: Tags,
}

/// One entry of a network ACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkAclEntry {
    /// Rule number; lower numbers are evaluated first.
    pub rule_number: i32,
    /// Protocol number as a string: `6` TCP, `17` UDP, `1` ICMP, `-1` all.
    pub protocol: String,
    /// `allow` or `deny`.
    pub action: String,
    /// True for an outbound entry.
    pub egress: bool,
    /// IPv4 range, when the entry is IPv4.
    pub cidr_block: Option<String>,
    /// IPv6 range, when the entry is IPv6.
    pub ipv6_cidr_block: Option<String>,
    /// First port, where the protocol has ports.
    pub from_port: Option<i32>,
    /// Last port.
    pub to_port: Option<i32>,
}

/// A subnet, and whether the internet can reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    /// Subnet id, `subnet-…`.
    pub id: String,
    /// Region.
    pub region: String,
    /// VPC.
    pub vpc_id: String,
    /// True when its route table (its own, or else its VPC's main table) sends `0.0.0.0/0` to
    /// an internet gateway (`igw-…`; an egress-only `eigw-…` does not count).
    pub public: bool,
}

/// An EBS snapshot owned by the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EbsSnapshot {
    /// Snapshot id, `snap-…`.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// The volume it was taken from.
    pub volume_id: Option<String>,
    /// Size in GiB.
    pub size_gib: u32,
    /// Whether it is encrypted.
    pub encrypted: bool,
    /// True when its `createVolumePermission` lets everyone (`group: all`) create volumes.
    pub public: bool,
    /// When it was started.
    pub start_time: Option<DateTime<Utc>>,
    /// Tags.
    pub tags: Tags,
}

/// The account's settings in one Region. `None` where the read was not possible (the caller
/// lacks the permission, or the endpoint does not offer it): such a setting is not judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionSettings {
    /// The account.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// `GetEbsEncryptionByDefault`.
    pub ebs_encryption_by_default: Option<bool>,
    /// `GetSnapshotBlockPublicAccessState`: `block-all-sharing`, `block-new-sharing` or
    /// `unblocked`.
    pub snapshot_block_public_access: Option<String>,
    /// `GetInstanceMetadataDefaults`' account-level `HttpTokens`; `no-preference` when the
    /// account set none.
    pub instance_metadata_http_tokens: Option<String>,
}
