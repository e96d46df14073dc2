//! EC2: instances, EBS volumes, Elastic IPs and security groups. Every list call is paginated.

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput;
use aws_sdk_ec2::types::{Filter, HttpTokensState, InstanceAttributeName, IpPermission};
use futures::StreamExt as _;

use super::convert::{stopped_since, tags, time};
use crate::assessment::secrets;
use crate::aws::{AwsError, Layered};
use crate::owners::OwnerDirectory;
use crate::world::{EbsVolume, Ec2Instance, ElasticIp, SecurityGroup, SecurityGroupRule, UserDataScan};

type Ec2 = Layered<aws_sdk_ec2::Client>;

/// Instances (all, or those of `ids`), and the account id seen in their reservations.
pub(crate) async fn instances(
    ec2: &Ec2,
    owners: &OwnerDirectory,
    ids: &[String],
) -> Result<(Vec<Ec2Instance>, Option<String>), AwsError> {
    let region = ec2.layer.region();
    let mut out = Vec::new();
    let mut account = None;
    let send = |token| {
        // EC2 refuses a page size together with an id list.
        let request = ec2.client.describe_instances().set_next_token(token);
        if ids.is_empty() {
            request.max_results(1000).send()
        } else {
            request.set_instance_ids(Some(ids.to_vec())).send()
        }
    };
    let each = |page: DescribeInstancesOutput| {
        for reservation in page.reservations() {
            if account.is_none() {
                account = reservation.owner_id().map(str::to_owned);
            }
            for i in reservation.instances() {
                let Some(id) = i.instance_id() else { continue };
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map_or("unknown", |n| n.as_str())
                    .to_owned();
                out.push(Ec2Instance {
                    id: id.to_owned(),
                    arn: String::new(),
                    region: region.to_owned(),
                    availability_zone: i.placement().and_then(|p| p.availability_zone()).map(str::to_owned),
                    instance_type: i.instance_type().map_or("unknown", |t| t.as_str()).to_owned(),
                    image_id: i.image_id().map(str::to_owned),
                    stopped_since: if state == "stopped" {
                        stopped_since(i.state_transition_reason())
                    } else {
                        None
                    },
                    state,
                    launch_time: time(i.launch_time()),
                    architecture: i.architecture().map(|a| a.as_str().to_owned()),
                    platform: i.platform_details().map(str::to_owned),
                    vpc_id: i.vpc_id().map(str::to_owned),
                    subnet_id: i.subnet_id().map(str::to_owned),
                    public_ip: i.public_ip_address().map(str::to_owned),
                    security_group_ids: security_groups_of(i),
                    volume_ids: i
                        .block_device_mappings()
                        .iter()
                        .filter_map(|b| b.ebs().and_then(|e| e.volume_id()).map(str::to_owned))
                        .collect(),
                    imds_v2_required: i
                        .metadata_options()
                        .and_then(|m| m.http_tokens())
                        .is_some_and(|t| *t == HttpTokensState::Required),
                    imds_endpoint: i
                        .metadata_options()
                        .and_then(|m| m.http_endpoint())
                        .map(|e| e.as_str().to_owned()),
                    instance_profile_arn: i.iam_instance_profile().and_then(|p| p.arn()).map(str::to_owned),
                    monitoring: i.monitoring().and_then(|m| m.state()).map(|s| s.as_str().to_owned()),
                    virtualization_type: i.virtualization_type().map(|v| v.as_str().to_owned()),
                    enclave_enabled: i
                        .enclave_options()
                        .and_then(aws_sdk_ec2::types::EnclaveOptions::enabled)
                        .unwrap_or(false),
                    network_interface_ids: i
                        .network_interfaces()
                        .iter()
                        .filter_map(|n| n.network_interface_id().map(str::to_owned))
                        .collect(),
                    user_data: None,
                    tags: tags(i.tags().iter().map(|t| (t.key(), t.value()))),
                    owner_agent: owners.persona("ec2").to_owned(),
                });
            }
        }
    };
    ec2.layer
        .pages("DescribeInstances", send, DescribeInstancesOutput::next_token, each)
        .await?;
    scan_user_data(ec2, &mut out).await?;
    Ok((out, account))
}

/// Reads the user data of every instance but the terminated ones and keeps only what a scan
/// for secrets finds in it (see [`secrets::scan`]): one `DescribeInstanceAttribute` per
/// instance, EC2 has no list form, a few at a time under the request limiter.
async fn scan_user_data(ec2: &Ec2, instances: &mut [Ec2Instance]) -> Result<(), AwsError> {
    let ids: Vec<(usize, String)> = instances
        .iter()
        .enumerate()
        .filter(|(_, i)| i.state != "terminated")
        .map(|(k, i)| (k, i.id.clone()))
        .collect();
    let reads: Vec<_> = ids
        .into_iter()
        .map(|(k, id)| async move {
            let out = ec2
                .layer
                .call("DescribeInstanceAttribute", || {
                    ec2.client
                        .describe_instance_attribute()
                        .instance_id(&id)
                        .attribute(InstanceAttributeName::UserData)
                        .send()
                })
                .await?;
            Ok::<_, AwsError>((k, user_data_scan(out.user_data().and_then(|v| v.value()))))
        })
        .collect();
    let scans: Vec<_> = futures::stream::iter(reads).buffer_unordered(8).collect().await;
    for scan in scans {
        let (k, scan) = scan?;
        instances[k].user_data = Some(scan);
    }
    Ok(())
}

/// The scan of base64 user data: decoded, gunzipped when it starts with gzip's magic number
/// (as cloud-init accepts it), read as UTF-8.
pub(crate) fn user_data_scan(base64: Option<&str>) -> UserDataScan {
    use base64::Engine as _;
    use std::io::Read as _;
    let Some(text) = base64.filter(|b| !b.is_empty()) else {
        return UserDataScan::Empty;
    };
    let Ok(mut bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim()) else {
        return UserDataScan::Undecodable;
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut unzipped = Vec::new();
        if flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut unzipped)
            .is_err()
        {
            return UserDataScan::Undecodable;
        }
        bytes = unzipped;
    }
    match String::from_utf8(bytes) {
        Ok(text) => UserDataScan::Scanned {
            secrets: secrets::scan(&text),
        },
        Err(_) => UserDataScan::Undecodable,
    }
}

/// The state of each of `ids` that exists, by id.
///
/// A filter on `instance-id`, not an id list: EC2 fails a whole id list when one id is unknown,
/// and a wait for a terminated instance must not fail the waits it shares a read with. At most
/// 200 values per filter, as EC2's filters take.
pub(crate) async fn instance_states(
    ec2: &Ec2,
    ids: &[String],
) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    let mut out = std::collections::BTreeMap::new();
    for chunk in ids.chunks(200) {
        let filter = Filter::builder()
            .name("instance-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        let send = |token| {
            ec2.client
                .describe_instances()
                .filters(filter.clone())
                .max_results(1000)
                .set_next_token(token)
                .send()
        };
        let each = |page: DescribeInstancesOutput| {
            for i in page
                .reservations()
                .iter()
                .flat_map(aws_sdk_ec2::types::Reservation::instances)
            {
                if let (Some(id), Some(state)) = (i.instance_id(), i.state().and_then(|s| s.name())) {
                    out.insert(id.to_owned(), state.as_str().to_owned());
                }
            }
        };
        ec2.layer
            .pages("DescribeInstances", send, DescribeInstancesOutput::next_token, each)
            .await?;
    }
    Ok(out)
}

/// Volumes: all, or those of `ids`.
pub(crate) async fn volumes(ec2: &Ec2, owners: &OwnerDirectory, ids: &[String]) -> Result<Vec<EbsVolume>, AwsError> {
    let region = ec2.layer.region();
    let mut out = Vec::new();
    let send = |token| {
        let request = ec2.client.describe_volumes().set_next_token(token);
        if ids.is_empty() {
            request.max_results(500).send()
        } else {
            request.set_volume_ids(Some(ids.to_vec())).send()
        }
    };
    let each = |page: DescribeVolumesOutput| {
        for v in page.volumes() {
            let Some(id) = v.volume_id() else { continue };
            out.push(EbsVolume {
                id: id.to_owned(),
                arn: String::new(),
                region: region.to_owned(),
                availability_zone: v.availability_zone().map(str::to_owned),
                volume_type: v.volume_type().map_or("unknown", |t| t.as_str()).to_owned(),
                size_gib: v.size().and_then(|s| u32::try_from(s).ok()).unwrap_or(0),
                iops: v.iops().and_then(|s| u32::try_from(s).ok()),
                throughput_mibps: v.throughput().and_then(|s| u32::try_from(s).ok()),
                encrypted: v.encrypted().unwrap_or(false),
                state: v.state().map_or("unknown", |s| s.as_str()).to_owned(),
                attached_to: v
                    .attachments()
                    .iter()
                    .filter_map(|a| a.instance_id().map(str::to_owned))
                    .collect(),
                create_time: time(v.create_time()),
                tags: tags(v.tags().iter().map(|t| (t.key(), t.value()))),
                owner_agent: owners.persona("ebs").to_owned(),
            });
        }
    };
    ec2.layer
        .pages("DescribeVolumes", send, DescribeVolumesOutput::next_token, each)
        .await?;
    Ok(out)
}

/// Elastic IPs. `DescribeAddresses` has no pagination: it returns every address at once.
pub(crate) async fn addresses(ec2: &Ec2, owners: &OwnerDirectory) -> Result<Vec<ElasticIp>, AwsError> {
    let region = ec2.layer.region();
    let page = ec2
        .layer
        .call("DescribeAddresses", || ec2.client.describe_addresses().send())
        .await?;
    Ok(page
        .addresses()
        .iter()
        .filter_map(|a| {
            Some(ElasticIp {
                allocation_id: a.allocation_id()?.to_owned(),
                arn: String::new(),
                region: region.to_owned(),
                public_ip: a.public_ip().unwrap_or_default().to_owned(),
                association_id: a.association_id().map(str::to_owned),
                instance_id: a.instance_id().filter(|i| !i.is_empty()).map(str::to_owned),
                network_interface_id: a.network_interface_id().map(str::to_owned),
                tags: tags(a.tags().iter().map(|t| (t.key(), t.value()))),
                owner_agent: owners.persona("ec2").to_owned(),
            })
        })
        .collect())
}

/// Security groups (all, or those of `ids`), and the account id that owns them.
pub(crate) async fn security_groups(
    ec2: &Ec2,
    owners: &OwnerDirectory,
    ids: &[String],
) -> Result<(Vec<SecurityGroup>, Option<String>), AwsError> {
    let region = ec2.layer.region();
    let mut out = Vec::new();
    let mut account = None;
    let send = |token| {
        let request = ec2.client.describe_security_groups().set_next_token(token);
        if ids.is_empty() {
            request.max_results(1000).send()
        } else {
            request.set_group_ids(Some(ids.to_vec())).send()
        }
    };
    let each = |page: DescribeSecurityGroupsOutput| {
        for g in page.security_groups() {
            let Some(id) = g.group_id() else { continue };
            if account.is_none() {
                account = g.owner_id().map(str::to_owned);
            }
            out.push(SecurityGroup {
                id: id.to_owned(),
                arn: String::new(),
                region: region.to_owned(),
                name: g.group_name().unwrap_or_default().to_owned(),
                description: g.description().map(str::to_owned),
                vpc_id: g.vpc_id().map(str::to_owned),
                ingress: g.ip_permissions().iter().map(rule).collect(),
                egress: g.ip_permissions_egress().iter().map(rule).collect(),
                tags: tags(g.tags().iter().map(|t| (t.key(), t.value()))),
                owner_agent: owners.persona("ec2").to_owned(),
            });
        }
    };
    ec2.layer
        .pages(
            "DescribeSecurityGroups",
            send,
            DescribeSecurityGroupsOutput::next_token,
            each,
        )
        .await?;
    Ok((out, account))
}

/// The groups of an instance and of its network interfaces (EC2 reports a group on either).
fn security_groups_of(i: &aws_sdk_ec2::types::Instance) -> Vec<String> {
    let mut ids: Vec<String> = i
        .security_groups()
        .iter()
        .chain(
            i.network_interfaces()
                .iter()
                .flat_map(aws_sdk_ec2::types::InstanceNetworkInterface::groups),
        )
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn rule(p: &IpPermission) -> SecurityGroupRule {
    let protocol = p.ip_protocol().unwrap_or("-1").to_owned();
    let all = protocol == "-1";
    SecurityGroupRule {
        from_port: p.from_port().filter(|_| !all),
        to_port: p.to_port().filter(|_| !all),
        protocol,
        ipv4_ranges: p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip().map(str::to_owned))
            .collect(),
        ipv6_ranges: p
            .ipv6_ranges()
            .iter()
            .filter_map(|r| r.cidr_ipv6().map(str::to_owned))
            .collect(),
        group_ids: p
            .user_id_group_pairs()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect(),
    }
}
