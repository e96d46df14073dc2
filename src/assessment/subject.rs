//! What every findings format says about a finding beyond the finding itself: its check (title,
//! Prowler's reference), and its resource as AWS names it (ARN, name, tags, resource type).
//! SARIF, OCSF and ASFF read the same [`Subject`]s, so that one finding has one identity in all
//! three.

use std::collections::HashMap;

use super::checks::{self, Check};
use super::prowler::{self, ProwlerCheck};
use crate::world::{partition, Finding, ResourceKind, Tags, WorldState};

/// One security finding, with its check and its resource.
pub(crate) struct Subject<'a> {
    pub finding: &'a Finding,
    pub check: &'static dyn Check,
    /// Prowler's reference, for a check of Prowler's id.
    pub prowler: Option<&'static ProwlerCheck>,
    /// The resource's ARN, or its id where the inventory has no ARN for it.
    pub uid: String,
    /// The resource's name: its `Name` tag, else its id.
    pub name: String,
    pub tags: Option<&'a Tags>,
    pub account: &'a str,
}

impl Subject<'_> {
    pub fn partition(&self) -> &'static str {
        partition(&self.finding.region)
    }

    /// Prowler's resource type for the check, else the Security Finding Format's for the kind.
    pub fn resource_type(&self) -> &'static str {
        self.prowler
            .map(|p| p.resource_type.as_str())
            .filter(|t| *t != "Other")
            .unwrap_or_else(|| resource_type(self.finding.kind))
    }

    /// The AWS service of the check: `ec2`, `s3` or `rds`.
    pub fn service(&self) -> &'static str {
        service(self.check.kind())
    }

    /// The check's title.
    pub fn title(&self) -> String {
        title(self.check.id())
    }

    /// `key:value` for each tag, as OCSF labels them.
    pub fn labels(&self) -> Vec<String> {
        self.tags
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect()
    }

    /// The address of the check's documentation: Prowler's page for a Prowler check.
    pub fn url(&self) -> Option<String> {
        self.prowler
            .map(|_| format!("https://hub.prowler.com/check/{}", self.check.id()))
    }

    /// A stable identity of the finding across captures: account, Region, check and resource.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.account,
            self.finding.region,
            self.check.id(),
            self.finding.resource_id
        )
    }
}

/// The security findings of `world` (those of the checks of the registry, not the cost
/// notices), in the world's order, with their check and resource.
pub(crate) fn subjects(world: &WorldState) -> Vec<Subject<'_>> {
    let account = world.scope.account_id.as_deref().unwrap_or_default();
    let resources = Resources::of(world);
    world
        .assessment
        .findings
        .iter()
        .filter_map(|finding| {
            let check = checks::find(&finding.check_id)?;
            let known = resources.get(finding);
            let uid = match known {
                Some(r) if !r.arn.is_empty() => r.arn.to_owned(),
                _ if finding.kind == ResourceKind::Account => format!(
                    "arn:{}:ec2:{}:{account}:account",
                    partition(&finding.region),
                    finding.region
                ),
                _ => finding.resource_id.clone(),
            };
            let tags = known.and_then(|r| r.tags);
            let name = tags
                .and_then(|t| t.get("Name"))
                .filter(|n| !n.is_empty())
                .unwrap_or(&finding.resource_id)
                .clone();
            Some(Subject {
                finding,
                check,
                prowler: prowler::check(check.id()),
                uid,
                name,
                tags,
                account,
            })
        })
        .collect()
}

struct Known<'a> {
    arn: &'a str,
    tags: Option<&'a Tags>,
}

/// The inventory's resources by kind, id and Region.
struct Resources<'a>(HashMap<(ResourceKind, &'a str, &'a str), Known<'a>>);

impl<'a> Resources<'a> {
    fn of(world: &'a WorldState) -> Self {
        let inv = &world.inventory;
        let mut map = HashMap::new();
        let mut add = |kind, id: &'a str, region: &'a str, arn: &'a str, tags: Option<&'a Tags>| {
            map.insert((kind, id, region), Known { arn, tags });
        };
        for r in &inv.instances {
            add(ResourceKind::Ec2Instance, &r.id, &r.region, &r.arn, Some(&r.tags));
        }
        for r in &inv.volumes {
            add(ResourceKind::EbsVolume, &r.id, &r.region, &r.arn, Some(&r.tags));
        }
        for r in &inv.addresses {
            add(
                ResourceKind::ElasticIp,
                &r.allocation_id,
                &r.region,
                &r.arn,
                Some(&r.tags),
            );
        }
        for r in &inv.security_groups {
            add(ResourceKind::SecurityGroup, &r.id, &r.region, &r.arn, Some(&r.tags));
        }
        for r in &inv.buckets {
            add(ResourceKind::S3Bucket, &r.name, &r.region, &r.arn, Some(&r.tags));
        }
        for r in &inv.db_instances {
            add(ResourceKind::RdsInstance, &r.id, &r.region, &r.arn, Some(&r.tags));
        }
        for r in &inv.network_acls {
            add(ResourceKind::NetworkAcl, &r.id, &r.region, &r.arn, Some(&r.tags));
        }
        for r in &inv.snapshots {
            add(ResourceKind::EbsSnapshot, &r.id, &r.region, &r.arn, Some(&r.tags));
        }
        for r in &inv.db_clusters {
            add(ResourceKind::RdsCluster, &r.id, &r.region, &r.arn, Some(&r.tags));
        }
        for r in &inv.db_snapshots {
            add(ResourceKind::RdsSnapshot, &r.id, &r.region, &r.arn, None);
        }
        Self(map)
    }

    fn get(&self, f: &'a Finding) -> Option<&Known<'a>> {
        self.0.get(&(f.kind, f.resource_id.as_str(), f.region.as_str()))
    }
}

/// A check's title, from its id: `ec2_instance_imdsv2_enabled` reads "EC2 instance IMDSv2
/// enabled".
pub(crate) fn title(id: &str) -> String {
    let id = id.strip_prefix("miyabi_").unwrap_or(id);
    let words: Vec<&str> = id
        .split('_')
        .map(|w| match w {
            "ec2" => "EC2",
            "s3" => "S3",
            "rds" => "RDS",
            "ebs" => "EBS",
            "kms" => "KMS",
            "acl" => "ACL",
            "mfa" => "MFA",
            "iam" => "IAM",
            "ip" => "IP",
            "eni" => "ENI",
            "imdsv2" => "IMDSv2",
            "tcp" => "TCP",
            "az" => "AZ",
            "ssh" => "SSH",
            "rdp" => "RDP",
            "ftp" => "FTP",
            "cifs" => "CIFS",
            "ldap" => "LDAP",
            "securitygroup" => "security group",
            "networkacl" => "network ACL",
            "cloudwatch" => "CloudWatch",
            other => other,
        })
        .collect();
    words.join(" ")
}

fn service(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::S3Bucket => "s3",
        ResourceKind::RdsInstance
        | ResourceKind::RdsCluster
        | ResourceKind::RdsSnapshot
        | ResourceKind::RdsEventSubscription => "rds",
        ResourceKind::Ec2Instance
        | ResourceKind::EbsVolume
        | ResourceKind::ElasticIp
        | ResourceKind::SecurityGroup
        | ResourceKind::NetworkAcl
        | ResourceKind::EbsSnapshot
        | ResourceKind::Account => "ec2",
    }
}

/// The Security Finding Format's resource type of a kind (`Other` where it has none).
fn resource_type(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Ec2Instance => "AwsEc2Instance",
        ResourceKind::EbsVolume => "AwsEc2Volume",
        ResourceKind::ElasticIp => "AwsEc2Eip",
        ResourceKind::SecurityGroup => "AwsEc2SecurityGroup",
        ResourceKind::S3Bucket => "AwsS3Bucket",
        ResourceKind::RdsInstance => "AwsRdsDbInstance",
        ResourceKind::NetworkAcl => "AwsEc2NetworkAcl",
        ResourceKind::RdsCluster => "AwsRdsDbCluster",
        ResourceKind::RdsSnapshot => "AwsRdsDbSnapshot",
        ResourceKind::RdsEventSubscription => "AwsRdsEventSubscription",
        ResourceKind::EbsSnapshot | ResourceKind::Account => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_read_as_words_with_aws_spellings() {
        assert_eq!(title("ec2_instance_imdsv2_enabled"), "EC2 instance IMDSv2 enabled");
        assert_eq!(
            title("miyabi_securitygroup_ingress_from_internet_to_unlisted_port"),
            "security group ingress from internet to unlisted port"
        );
        assert_eq!(title("s3_bucket_no_mfa_delete"), "S3 bucket no MFA delete");
    }
}
