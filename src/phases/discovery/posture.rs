//! EC2 reads that only the security checks need: network interfaces, network ACLs, subnets
//! with their route tables, the account's own EBS snapshots, and the account's settings in the
//! Region. Every list call is paginated.

use std::collections::BTreeMap;

use aws_sdk_ec2::operation::describe_network_acls::DescribeNetworkAclsOutput;
use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
use aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput;
use aws_sdk_ec2::types::{PermissionGroup, SnapshotAttributeName};

use super::convert::{tags, time};
use crate::aws::{AwsError, Layered};
use crate::world::{EbsSnapshot, NetworkAcl, NetworkAclEntry, NetworkInterface, RegionSettings, Subnet};

type Ec2 = Layered<aws_sdk_ec2::Client>;

/// Every network interface of the Region.
pub(crate) async fn network_interfaces(ec2: &Ec2) -> Result<Vec<NetworkInterface>, AwsError> {
    let region = ec2.layer.region();
    let mut out = Vec::new();
    let send = |token| {
        ec2.client
            .describe_network_interfaces()
            .max_results(1000)
            .set_next_token(token)
            .send()
    };
    let each = |page: DescribeNetworkInterfacesOutput| {
        for n in page.network_interfaces() {
            let Some(id) = n.network_interface_id() else { continue };
            let attachment = n.attachment();
            out.push(NetworkInterface {
                id: id.to_owned(),
                region: region.to_owned(),
                interface_type: n.interface_type().map_or("interface", |t| t.as_str()).to_owned(),
                status: n.status().map_or("unknown", |s| s.as_str()).to_owned(),
                instance_id: attachment.and_then(|a| a.instance_id()).map(str::to_owned),
                instance_owner_id: attachment.and_then(|a| a.instance_owner_id()).map(str::to_owned),
                group_ids: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect(),
                vpc_id: n.vpc_id().map(str::to_owned),
                subnet_id: n.subnet_id().map(str::to_owned),
            });
        }
    };
    ec2.layer
        .pages(
            "DescribeNetworkInterfaces",
            send,
            DescribeNetworkInterfacesOutput::next_token,
            each,
        )
        .await?;
    Ok(out)
}

/// Every network ACL of the Region, with its entries and associated subnets.
pub(crate) async fn network_acls(ec2: &Ec2) -> Result<Vec<NetworkAcl>, AwsError> {
    let region = ec2.layer.region();
    let mut out = Vec::new();
    let send = |token| {
        ec2.client
            .describe_network_acls()
            .max_results(1000)
            .set_next_token(token)
            .send()
    };
    let each = |page: DescribeNetworkAclsOutput| {
        for a in page.network_acls() {
            let Some(id) = a.network_acl_id() else { continue };
            out.push(NetworkAcl {
                id: id.to_owned(),
                arn: String::new(),
                region: region.to_owned(),
                vpc_id: a.vpc_id().map(str::to_owned),
                is_default: a.is_default().unwrap_or(false),
                entries: a
                    .entries()
                    .iter()
                    .map(|e| NetworkAclEntry {
                        rule_number: e.rule_number().unwrap_or(32767),
                        protocol: e.protocol().unwrap_or("-1").to_owned(),
                        action: e.rule_action().map_or("deny", |r| r.as_str()).to_owned(),
                        egress: e.egress().unwrap_or(false),
                        cidr_block: e.cidr_block().map(str::to_owned),
                        ipv6_cidr_block: e.ipv6_cidr_block().map(str::to_owned),
                        from_port: e.port_range().and_then(aws_sdk_ec2::types::PortRange::from),
                        to_port: e.port_range().and_then(aws_sdk_ec2::types::PortRange::to),
                    })
                    .collect(),
                subnet_ids: a
                    .associations()
                    .iter()
                    .filter_map(|s| s.subnet_id().map(str::to_owned))
                    .collect(),
                tags: tags(a.tags().iter().map(|t| (t.key(), t.value()))),
            });
        }
    };
    ec2.layer
        .pages("DescribeNetworkAcls", send, DescribeNetworkAclsOutput::next_token, each)
        .await?;
    Ok(out)
}

/// Every subnet of the Region, public when its route table (its own, else its VPC's main
/// table) sends `0.0.0.0/0` to an internet gateway.
pub(crate) async fn subnets(ec2: &Ec2) -> Result<Vec<Subnet>, AwsError> {
    let region = ec2.layer.region();
    // Route tables first: which subnets and which VPCs' main tables route to the internet.
    let mut explicit: BTreeMap<String, bool> = BTreeMap::new();
    let mut main: BTreeMap<String, bool> = BTreeMap::new();
    let send = |token| {
        ec2.client
            .describe_route_tables()
            .max_results(100)
            .set_next_token(token)
            .send()
    };
    let each = |page: DescribeRouteTablesOutput| {
        for t in page.route_tables() {
            let to_internet = t.routes().iter().any(|r| {
                r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id().is_some_and(|g| g.starts_with("igw-"))
            });
            for a in t.associations() {
                if a.main() == Some(true) {
                    if let Some(vpc) = t.vpc_id() {
                        main.insert(vpc.to_owned(), to_internet);
                    }
                } else if let Some(subnet) = a.subnet_id() {
                    explicit.insert(subnet.to_owned(), to_internet);
                }
            }
        }
    };
    ec2.layer
        .pages("DescribeRouteTables", send, DescribeRouteTablesOutput::next_token, each)
        .await?;
    let mut out = Vec::new();
    let send = |token| {
        ec2.client
            .describe_subnets()
            .max_results(1000)
            .set_next_token(token)
            .send()
    };
    let each = |page: DescribeSubnetsOutput| {
        for s in page.subnets() {
            let (Some(id), Some(vpc)) = (s.subnet_id(), s.vpc_id()) else {
                continue;
            };
            let public = explicit.get(id).or_else(|| main.get(vpc)).copied().unwrap_or(false);
            out.push(Subnet {
                id: id.to_owned(),
                region: region.to_owned(),
                vpc_id: vpc.to_owned(),
                public,
            });
        }
    };
    ec2.layer
        .pages("DescribeSubnets", send, DescribeSubnetsOutput::next_token, each)
        .await?;
    Ok(out)
}

/// The EBS snapshots the account owns, each with whether everyone may create volumes from it.
pub(crate) async fn snapshots(ec2: &Ec2) -> Result<Vec<EbsSnapshot>, AwsError> {
    let region = ec2.layer.region();
    let mut out = Vec::new();
    let send = |token| {
        ec2.client
            .describe_snapshots()
            .owner_ids("self")
            .max_results(1000)
            .set_next_token(token)
            .send()
    };
    let each = |page: DescribeSnapshotsOutput| {
        for s in page.snapshots() {
            let Some(id) = s.snapshot_id() else { continue };
            out.push(EbsSnapshot {
                id: id.to_owned(),
                arn: String::new(),
                region: region.to_owned(),
                volume_id: s.volume_id().filter(|v| !v.is_empty()).map(str::to_owned),
                size_gib: s.volume_size().and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
                encrypted: s.encrypted().unwrap_or(false),
                public: false,
                start_time: time(s.start_time()),
                tags: tags(s.tags().iter().map(|t| (t.key(), t.value()))),
            });
        }
    };
    ec2.layer
        .pages("DescribeSnapshots", send, DescribeSnapshotsOutput::next_token, each)
        .await?;
    // One attribute read per snapshot: EC2 has no list form of it.
    for snapshot in &mut out {
        let id = snapshot.id.as_str();
        let attribute = ec2
            .layer
            .call("DescribeSnapshotAttribute", || {
                ec2.client
                    .describe_snapshot_attribute()
                    .snapshot_id(id)
                    .attribute(SnapshotAttributeName::CreateVolumePermission)
                    .send()
            })
            .await?;
        snapshot.public = attribute
            .create_volume_permissions()
            .iter()
            .any(|p| p.group() == Some(&PermissionGroup::All));
    }
    Ok(out)
}

/// The account's EBS-encryption, snapshot-sharing and instance-metadata defaults in the Region.
pub(crate) async fn region_settings(ec2: &Ec2) -> Result<RegionSettings, AwsError> {
    let c = &ec2.client;
    let l = &ec2.layer;
    let (encryption, snapshots, metadata) = tokio::join!(
        l.call("GetEbsEncryptionByDefault", || c.get_ebs_encryption_by_default().send()),
        l.call("GetSnapshotBlockPublicAccessState", || c
            .get_snapshot_block_public_access_state()
            .send()),
        l.call("GetInstanceMetadataDefaults", || c
            .get_instance_metadata_defaults()
            .send()),
    );
    Ok(RegionSettings {
        // Filled in once the scan has learned the account.
        account_id: String::new(),
        region: l.region().to_owned(),
        ebs_encryption_by_default: encryption?.ebs_encryption_by_default(),
        snapshot_block_public_access: snapshots?.state().map(|s| s.as_str().to_owned()),
        instance_metadata_http_tokens: Some(
            metadata?
                .account_level()
                .and_then(|a| a.http_tokens())
                .map_or("no-preference", |t| t.as_str())
                .to_owned(),
        ),
    })
}
