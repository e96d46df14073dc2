//! EC2 instances, EBS volumes and snapshots, Elastic IPs, and the account's EC2 settings.

use super::network::{is_global, rule_matches};
use super::{every, fail, pass, verdict, Check, Estate, Rule, Verdict};
use crate::world::{
    EbsSnapshot, EbsVolume, Ec2Instance, ElasticIp, Finding, FindingStatus, Inventory, RegionSettings, ResourceKind,
    Severity, UserDataScan,
};

/// The instance port checks: Prowler's id and the TCP ports it looks at. Cassandra's and
/// Oracle's ports differ from the group checks' of the same service, as in Prowler.
pub(super) const INSTANCE_PORT_CHECKS: &[(&str, &[i32])] = &[
    (
        "ec2_instance_port_cassandra_exposed_to_internet",
        &[7000, 7001, 7199, 9042, 9160],
    ),
    ("ec2_instance_port_cifs_exposed_to_internet", &[139, 445]),
    (
        "ec2_instance_port_elasticsearch_kibana_exposed_to_internet",
        &[9200, 9300, 5601],
    ),
    ("ec2_instance_port_ftp_exposed_to_internet", &[20, 21]),
    ("ec2_instance_port_kafka_exposed_to_internet", &[9092]),
    ("ec2_instance_port_kerberos_exposed_to_internet", &[88, 464, 749, 750]),
    ("ec2_instance_port_ldap_exposed_to_internet", &[389, 636]),
    ("ec2_instance_port_memcached_exposed_to_internet", &[11211]),
    ("ec2_instance_port_mongodb_exposed_to_internet", &[27017, 27018]),
    ("ec2_instance_port_mysql_exposed_to_internet", &[3306]),
    ("ec2_instance_port_oracle_exposed_to_internet", &[1521, 2483, 2484]),
    ("ec2_instance_port_postgresql_exposed_to_internet", &[5432]),
    ("ec2_instance_port_rdp_exposed_to_internet", &[3389]),
    ("ec2_instance_port_redis_exposed_to_internet", &[6379]),
    ("ec2_instance_port_sqlserver_exposed_to_internet", &[1433, 1434]),
    ("ec2_instance_port_ssh_exposed_to_internet", &[22]),
    ("ec2_instance_port_telnet_exposed_to_internet", &[23]),
];

/// Ports an enclave host may expose (Prowler's `enclave_sg_allow_ports` default).
const ENCLAVE_ALLOWED_PORTS: &[i32] = &[22, 80, 443];

/// Ports of the Nitro Enclaves vsock proxy (Prowler's `enclave_vsock_ports` default).
fn is_vsock_port(p: i32) -> bool {
    p == 5000 || (8000..=8090).contains(&p) || p == 9000
}

fn is_terminated(i: &Ec2Instance) -> bool {
    i.state == "terminated"
}

/// An instance hosting enclaves that can run: not pending, shutting down or terminated.
fn is_enclave_parent(i: &Ec2Instance) -> bool {
    i.enclave_enabled && !matches!(i.state.as_str(), "pending" | "shutting-down" | "terminated")
}

fn instance_rule(
    id: &'static str,
    severity: Severity,
    judge: fn(&Ec2Instance, &Estate<'_>) -> Verdict,
) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::Ec2Instance,
        resources: |inv: &Inventory| &inv.instances,
        key: |i: &Ec2Instance| (&i.id, &i.region),
        applies: every,
        judge,
    })
}

fn volume_rule(id: &'static str, severity: Severity, judge: fn(&EbsVolume, &Estate<'_>) -> Verdict) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::EbsVolume,
        resources: |inv: &Inventory| &inv.volumes,
        key: |v: &EbsVolume| (&v.id, &v.region),
        applies: every,
        judge,
    })
}

fn snapshot_rule(
    id: &'static str,
    severity: Severity,
    judge: fn(&EbsSnapshot, &Estate<'_>) -> Verdict,
) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::EbsSnapshot,
        resources: |inv: &Inventory| &inv.snapshots,
        key: |s: &EbsSnapshot| (&s.id, &s.region),
        applies: every,
        judge,
    })
}

fn settings_rule(
    id: &'static str,
    severity: Severity,
    judge: fn(&RegionSettings, &Estate<'_>) -> Verdict,
) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::Account,
        resources: |inv: &Inventory| &inv.region_settings,
        key: |s: &RegionSettings| (&s.account_id, &s.region),
        applies: every,
        judge,
    })
}

/// One instance port check: does a group of the instance open one of the ports to the internet?
/// A failure is critical when the instance has a public IP in a public subnet, high with a public
/// IP elsewhere, and medium without a public IP, as Prowler grades it.
struct InstancePorts {
    id: &'static str,
    ports: &'static [i32],
}

impl Check for InstancePorts {
    fn id(&self) -> &'static str {
        self.id
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn kind(&self) -> ResourceKind {
        ResourceKind::Ec2Instance
    }

    fn run(&self, estate: &Estate<'_>, out: &mut Vec<Finding>) {
        for i in &estate.inventory.instances {
            let open = i.security_group_ids.iter().filter_map(|g| estate.group(g)).any(|g| {
                g.ingress
                    .iter()
                    .any(|r| rule_matches(r, "tcp", self.ports, true, false))
            });
            let (status, severity, message) = if open {
                let public_subnet = i
                    .subnet_id
                    .as_deref()
                    .and_then(|s| estate.subnet(s))
                    .is_some_and(|s| s.public);
                let (severity, where_) = match (&i.public_ip, public_subnet) {
                    (None, _) => (Severity::Medium, "but it has no public IP"),
                    (Some(_), false) => (Severity::High, "and it has a public IP, in a subnet that is not public"),
                    (Some(_), true) => (Severity::Critical, "and it has a public IP in a public subnet"),
                };
                (
                    FindingStatus::Fail,
                    severity,
                    format!(
                        "a group of the instance opens TCP {:?} to the internet, {where_}",
                        self.ports
                    ),
                )
            } else {
                (
                    FindingStatus::Pass,
                    Severity::Critical,
                    format!("no group of the instance opens TCP {:?} to the internet", self.ports),
                )
            };
            out.push(Finding {
                check_id: self.id.to_owned(),
                severity,
                status,
                resource_id: i.id.clone(),
                kind: ResourceKind::Ec2Instance,
                region: i.region.clone(),
                message,
            });
        }
    }
}

fn imdsv2(i: &Ec2Instance, _: &Estate<'_>) -> Verdict {
    if is_terminated(i) {
        return Verdict::Skip;
    }
    match i.imds_endpoint.as_deref() {
        Some("disabled") => pass("the metadata service is disabled"),
        Some("enabled") if i.imds_v2_required => pass("IMDSv2 is required"),
        Some("enabled") => super::fail("IMDSv2 is not required (HttpTokens=optional)"),
        _ => super::fail("the metadata options are unknown"),
    }
}

/// The ports a rule opens.
#[derive(Clone, Copy)]
enum Reach {
    /// Every port.
    All,
    /// `from..=to`.
    Range(i32, i32),
}

/// Which ports of `protocols` a group rule opens to public addresses, if any. Any global address
/// counts here, not only the two wildcards, as in Prowler's enclave helper.
fn world_facing_range(rule: &crate::world::SecurityGroupRule, protocols: &[&str]) -> Option<Reach> {
    let public = rule
        .ipv4_ranges
        .iter()
        .chain(&rule.ipv6_ranges)
        .any(|c| c == "0.0.0.0/0" || c == "::/0" || is_global(c));
    if !public {
        return None;
    }
    if rule.protocol == "-1" {
        return Some(Reach::All);
    }
    if !protocols.contains(&rule.protocol.as_str()) {
        return None;
    }
    match (rule.from_port, rule.to_port) {
        (Some(0), Some(65535)) => Some(Reach::All),
        (Some(from), Some(to)) => Some(Reach::Range(from, to)),
        _ => None,
    }
}

/// The enclave-host port checks: the ports of the instance's groups that `exposed` keeps. An
/// instance with a group that was not captured is not judged.
fn enclave_exposure(
    i: &Ec2Instance,
    estate: &Estate<'_>,
    protocols: &[&str],
    exposed: fn(Reach) -> Vec<i32>,
) -> Option<Vec<i32>> {
    let mut ports = Vec::new();
    for id in &i.security_group_ids {
        let group = estate.group(id)?;
        for rule in &group.ingress {
            if let Some(range) = world_facing_range(rule, protocols) {
                ports.extend(exposed(range));
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Some(ports)
}

fn account_setting(s: &RegionSettings, has_resources: bool, value: Option<&str>, good: &str, what: &str) -> Verdict {
    match value {
        Some(_) if !has_resources => Verdict::Skip,
        None => Verdict::Skip,
        Some(v) => verdict(
            v != good,
            format!("{what} is {v} in {}", s.region),
            format!("{what} is {good} in {}", s.region),
        ),
    }
}

/// The instance, volume, snapshot, Elastic IP and account checks.
#[allow(clippy::too_many_lines)] // one entry per check, read top to bottom
pub(super) fn checks() -> Vec<Box<dyn Check>> {
    let mut all: Vec<Box<dyn Check>> = INSTANCE_PORT_CHECKS
        .iter()
        .map(|&(id, ports)| Box::new(InstancePorts { id, ports }) as Box<dyn Check>)
        .collect();
    all.extend([
        instance_rule("ec2_instance_imdsv2_enabled", Severity::High, imdsv2),
        instance_rule("ec2_instance_public_ip", Severity::Medium, |i, _| {
            if is_terminated(i) {
                return Verdict::Skip;
            }
            verdict(
                i.public_ip.is_some(),
                format!("instance has public IP {}", i.public_ip.as_deref().unwrap_or_default()),
                "instance has no public IP",
            )
        }),
        instance_rule("ec2_instance_profile_attached", Severity::Medium, |i, _| {
            if is_terminated(i) {
                return Verdict::Skip;
            }
            verdict(
                i.instance_profile_arn.is_none(),
                "no IAM instance profile is attached",
                "an IAM instance profile is attached",
            )
        }),
        instance_rule(
            "ec2_instance_internet_facing_with_instance_profile",
            Severity::High,
            |i, _| {
                if is_terminated(i) {
                    return Verdict::Skip;
                }
                verdict(
                    i.public_ip.is_some() && i.instance_profile_arn.is_some(),
                    "the instance has a public IP and an IAM instance profile",
                    "the instance is not internet-facing with an instance profile",
                )
            },
        ),
        instance_rule("ec2_instance_paravirtual_type", Severity::Medium, |i, _| {
            if is_terminated(i) {
                return Verdict::Skip;
            }
            verdict(
                i.virtualization_type.as_deref() == Some("paravirtual"),
                "the instance uses paravirtual virtualization",
                "the instance does not use paravirtual virtualization",
            )
        }),
        // Prowler's check of this name scans with Kingfisher's rule set; ours are the engine's
        // own (`assessment::secrets`), hence an id of our own.
        instance_rule("miyabi_ec2_instance_secrets_user_data", Severity::Critical, |i, _| {
            if is_terminated(i) {
                return Verdict::Skip;
            }
            match &i.user_data {
                None | Some(UserDataScan::Undecodable) => Verdict::Skip,
                Some(UserDataScan::Empty) => pass("no secrets found: the user data is empty"),
                Some(UserDataScan::Scanned { secrets }) if secrets.is_empty() => {
                    pass("no secrets found in the user data")
                }
                Some(UserDataScan::Scanned { secrets }) => {
                    let hits: Vec<String> = secrets
                        .iter()
                        .map(|h| format!("{} on line {}", h.kind, h.line))
                        .collect();
                    fail(format!("potential secret in the user data: {}", hits.join(", ")))
                }
            }
        }),
        instance_rule("ec2_instance_detailed_monitoring_enabled", Severity::Low, |i, _| {
            verdict(
                i.monitoring.as_deref() != Some("enabled"),
                "detailed monitoring is not enabled",
                "detailed monitoring is enabled",
            )
        }),
        instance_rule("ec2_instance_uses_single_eni", Severity::Low, |i, e| {
            let counted = i
                .network_interface_ids
                .iter()
                .filter_map(|n| e.interface(n))
                .filter(|n| matches!(n.interface_type.as_str(), "efa" | "interface" | "trunk"))
                .count();
            verdict(
                counted > 1,
                format!("the instance has {counted} network interfaces"),
                "the instance has at most one network interface",
            )
        }),
        instance_rule(
            "ec2_confidential_workload_host_imdsv2_not_enforced",
            Severity::High,
            |i, _| {
                if !is_enclave_parent(i) {
                    return Verdict::Skip;
                }
                verdict(
                    !i.imds_v2_required,
                    "the enclave host does not require IMDSv2",
                    "the enclave host requires IMDSv2",
                )
            },
        ),
        instance_rule(
            "ec2_confidential_workload_host_not_running",
            Severity::Medium,
            |i, _| {
                if !i.enclave_enabled {
                    return Verdict::Skip;
                }
                verdict(
                    matches!(i.state.as_str(), "stopped" | "shutting-down" | "terminated"),
                    format!("the enclave host is {}", i.state),
                    format!("the enclave host is {}", i.state),
                )
            },
        ),
        instance_rule(
            "ec2_confidential_workload_host_unrestricted_ingress",
            Severity::High,
            |i, e| {
                if !is_enclave_parent(i) {
                    return Verdict::Skip;
                }
                let exposed = enclave_exposure(i, e, &["tcp", "udp"], |range| match range {
                    Reach::All => vec![-1],
                    Reach::Range(from, to) => (from..=to).filter(|p| !ENCLAVE_ALLOWED_PORTS.contains(p)).collect(),
                });
                match exposed {
                    None => Verdict::Skip,
                    Some(p) => verdict(
                        !p.is_empty(),
                        "the enclave host's groups open ports beyond 22, 80 and 443 to public addresses",
                        "the enclave host's groups open no port beyond 22, 80 and 443 to public addresses",
                    ),
                }
            },
        ),
        instance_rule(
            "ec2_confidential_workload_host_vsock_proxy_exposed",
            Severity::Medium,
            |i, e| {
                if !is_enclave_parent(i) {
                    return Verdict::Skip;
                }
                let exposed = enclave_exposure(i, e, &["tcp"], |range| match range {
                    Reach::All => vec![5000, 8000, 9000],
                    Reach::Range(from, to) => (from..=to).filter(|&p| is_vsock_port(p)).collect(),
                });
                match exposed {
                    None => Verdict::Skip,
                    Some(p) => verdict(
                        !p.is_empty(),
                        format!("the enclave host's groups open vsock proxy ports {p:?} to public addresses"),
                        "the enclave host's groups open no vsock proxy port to public addresses",
                    ),
                }
            },
        ),
        volume_rule("ec2_ebs_volume_encryption", Severity::High, |v, _| {
            verdict(!v.encrypted, "volume is not encrypted", "volume is encrypted")
        }),
        volume_rule("ec2_ebs_volume_snapshots_exists", Severity::High, |v, e| {
            verdict(
                !e.snapshotted_volumes.contains(v.id.as_str()),
                "the volume has no snapshot",
                "the volume has a snapshot",
            )
        }),
        snapshot_rule("ec2_ebs_public_snapshot", Severity::Critical, |s, _| {
            verdict(
                s.public,
                "everyone may create volumes from the snapshot",
                "the snapshot is not public",
            )
        }),
        snapshot_rule("ec2_ebs_snapshots_encrypted", Severity::High, |s, _| {
            verdict(
                !s.encrypted,
                "the snapshot is not encrypted",
                "the snapshot is encrypted",
            )
        }),
        Box::new(Rule {
            id: "ec2_elastic_ip_unassigned",
            severity: Severity::Low,
            kind: ResourceKind::ElasticIp,
            resources: |inv: &Inventory| &inv.addresses,
            key: |a: &ElasticIp| (&a.allocation_id, &a.region),
            applies: every,
            judge: |a: &ElasticIp, _: &Estate<'_>| {
                if a.public_ip.is_empty() {
                    return Verdict::Skip;
                }
                verdict(
                    a.association_id.is_none(),
                    format!("Elastic IP {} is not associated", a.public_ip),
                    "Elastic IP is associated",
                )
            },
        }),
        settings_rule("ec2_ebs_default_encryption", Severity::High, |s, e| {
            let value = s.ebs_encryption_by_default.map(|on| if on { "on" } else { "off" });
            account_setting(
                s,
                e.regions_with_volumes.contains(s.region.as_str()),
                value,
                "on",
                "EBS encryption by default",
            )
        }),
        settings_rule(
            "ec2_ebs_snapshot_account_block_public_access",
            Severity::High,
            |s, e| {
                account_setting(
                    s,
                    e.regions_with_snapshots.contains(s.region.as_str()),
                    s.snapshot_block_public_access.as_deref(),
                    "block-all-sharing",
                    "snapshot block public access",
                )
            },
        ),
        settings_rule("ec2_instance_account_imdsv2_enabled", Severity::High, |s, e| {
            account_setting(
                s,
                e.regions_with_instances.contains(s.region.as_str()),
                s.instance_metadata_http_tokens.as_deref(),
                "required",
                "the account's default HttpTokens",
            )
        }),
    ]);
    all
}
