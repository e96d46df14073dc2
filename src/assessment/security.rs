//! Built-in security checks. A check with a Prowler id has Prowler's severity (see
//! [`super::prowler`]); a check whose meaning is the engine's own has an id starting `miyabi_`.
//!
//! # Score
//!
//! Each evaluated check on each resource weighs by severity: critical 10, high 5, medium 3,
//! low 1, informational 0. The score is `100 × Σ weight(passed) / Σ weight(evaluated)`, rounded
//! to one decimal; an estate with nothing to check scores 100.

use crate::world::{
    EbsVolume, Ec2Instance, ElasticIp, Finding, FindingStatus, Inventory, RdsInstance, ResourceKind, S3Bucket,
    SecurityGroup, SecurityGroupRule, Severity, VersioningStatus,
};

/// The port-by-port Prowler checks: each check's TCP ports and Prowler's severity.
const RED_PORT_CHECKS: &[(&str, &[i32], Severity)] = &[
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22",
        &[22],
        Severity::High,
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_3389",
        &[3389],
        Severity::High,
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_mysql_3306",
        &[3306],
        Severity::High,
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_postgres_5432",
        &[5432],
        Severity::High,
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_sql_server_1433_1434",
        &[1433, 1434],
        Severity::High,
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_ftp_20_21",
        &[20, 21],
        Severity::High,
    ),
    (
        "ec2_securitygroup_allow_ingress_from_internet_to_high_risk_tcp_ports",
        &HIGH_RISK_PORTS,
        Severity::High,
    ),
];

/// Prowler's default `ec2_high_risk_ports`.
const HIGH_RISK_PORTS: [i32; 11] = [25, 110, 135, 143, 445, 3000, 4333, 5000, 5500, 8080, 8088];

/// Ports Trusted Advisor rates green when open to the internet.
const GREEN_PORTS: &[i32] = &[25, 80, 443, 465];

struct Emitter<'a> {
    findings: &'a mut Vec<Finding>,
    kind: ResourceKind,
    id: &'a str,
    region: &'a str,
}

impl<'a> Emitter<'a> {
    fn new(findings: &'a mut Vec<Finding>, kind: ResourceKind, id: &'a str, region: &'a str) -> Self {
        Self {
            findings,
            kind,
            id,
            region,
        }
    }

    fn check(&mut self, check_id: &str, severity: Severity, failed: bool, fail_msg: impl Into<String>, pass_msg: &str) {
        self.findings.push(Finding {
            check_id: check_id.to_owned(),
            severity,
            status: if failed {
                FindingStatus::Fail
            } else {
                FindingStatus::Pass
            },
            resource_id: self.id.to_owned(),
            kind: self.kind,
            region: self.region.to_owned(),
            message: if failed { fail_msg.into() } else { pass_msg.to_owned() },
        });
    }
}

/// Runs every check on every resource of the inventory.
#[must_use]
pub fn run_checks(inv: &Inventory) -> Vec<Finding> {
    let mut findings = Vec::new();
    for sg in &inv.security_groups {
        check_security_group(sg, &mut findings);
    }
    for i in &inv.instances {
        check_instance(i, &mut findings);
    }
    for v in &inv.volumes {
        check_volume(v, &mut findings);
    }
    for a in &inv.addresses {
        check_address(a, &mut findings);
    }
    for b in &inv.buckets {
        check_bucket(b, &mut findings);
    }
    for d in &inv.db_instances {
        check_db_instance(d, &mut findings);
    }
    findings
}

fn check_instance(i: &Ec2Instance, findings: &mut Vec<Finding>) {
    // Prowler judges no terminated instance.
    if i.state == "terminated" {
        return;
    }
    let mut e = Emitter::new(findings, ResourceKind::Ec2Instance, &i.id, &i.region);
    e.check(
        "ec2_instance_imdsv2_enabled",
        Severity::High,
        !i.imds_v2_required,
        "IMDSv2 is not required (HttpTokens=optional)",
        "IMDSv2 is required",
    );
    e.check(
        "ec2_instance_public_ip",
        Severity::Medium,
        i.public_ip.is_some(),
        format!("instance has public IP {}", i.public_ip.as_deref().unwrap_or_default()),
        "instance has no public IP",
    );
}

fn check_volume(v: &EbsVolume, findings: &mut Vec<Finding>) {
    let mut e = Emitter::new(findings, ResourceKind::EbsVolume, &v.id, &v.region);
    e.check(
        "ec2_ebs_volume_encryption",
        Severity::High,
        !v.encrypted,
        "volume is not encrypted",
        "volume is encrypted",
    );
}

fn check_address(a: &ElasticIp, findings: &mut Vec<Finding>) {
    let mut e = Emitter::new(findings, ResourceKind::ElasticIp, &a.allocation_id, &a.region);
    e.check(
        "ec2_elastic_ip_unassigned",
        Severity::Low,
        a.association_id.is_none(),
        format!("Elastic IP {} is not associated", a.public_ip),
        "Elastic IP is associated",
    );
}

fn check_bucket(b: &S3Bucket, findings: &mut Vec<Finding>) {
    let mut e = Emitter::new(findings, ResourceKind::S3Bucket, &b.name, &b.region);
    let pab = b.public_access_block;
    e.check(
        "s3_bucket_level_public_access_block",
        Severity::High,
        !pab.is_some_and(|p| p.is_full()),
        match pab {
            None => "bucket has no public access block".to_owned(),
            Some(p) => format!("bucket public access block is partial: {p:?}"),
        },
        "bucket blocks all public access",
    );
    e.check(
        "s3_bucket_public_access",
        Severity::Critical,
        b.policy_is_public == Some(true),
        "bucket policy makes the bucket public",
        "bucket policy is not public",
    );
    let public_read = b
        .acl_grants
        .iter()
        .any(|g| g.is_public() && matches!(g.permission.as_str(), "READ" | "READ_ACP" | "FULL_CONTROL"));
    let public_write = b
        .acl_grants
        .iter()
        .any(|g| g.is_public() && matches!(g.permission.as_str(), "WRITE" | "WRITE_ACP" | "FULL_CONTROL"));
    e.check(
        "s3_bucket_public_list_acl",
        Severity::Critical,
        public_read,
        "bucket ACL grants read to everyone",
        "bucket ACL grants no public read",
    );
    e.check(
        "s3_bucket_public_write_acl",
        Severity::Critical,
        public_write,
        "bucket ACL grants write to everyone",
        "bucket ACL grants no public write",
    );
    e.check(
        "s3_bucket_default_encryption",
        Severity::Medium,
        b.default_encryption.is_none(),
        "bucket has no default encryption configured",
        "bucket has default encryption",
    );
    e.check(
        "s3_bucket_object_versioning",
        Severity::Medium,
        b.versioning != VersioningStatus::Enabled,
        format!("bucket versioning is {:?}", b.versioning).to_lowercase(),
        "bucket versioning is enabled",
    );
    e.check(
        "s3_bucket_server_access_logging_enabled",
        Severity::Medium,
        !b.logging_enabled,
        "bucket server access logging is off",
        "bucket server access logging is on",
    );
}

fn check_db_instance(d: &RdsInstance, findings: &mut Vec<Finding>) {
    let mut e = Emitter::new(findings, ResourceKind::RdsInstance, &d.id, &d.region);
    e.check(
        "rds_instance_no_public_access",
        Severity::Critical,
        d.publicly_accessible,
        "DB instance is publicly accessible",
        "DB instance is not publicly accessible",
    );
    e.check(
        "rds_instance_storage_encrypted",
        Severity::High,
        !d.storage_encrypted,
        "DB storage is not encrypted",
        "DB storage is encrypted",
    );
    e.check(
        "rds_instance_backup_enabled",
        Severity::Medium,
        d.backup_retention_days == 0,
        "automated backups are off (retention 0 days)",
        "automated backups are on",
    );
    e.check(
        "rds_instance_deletion_protection",
        Severity::Medium,
        !d.deletion_protection,
        "deletion protection is off",
        "deletion protection is on",
    );
    e.check(
        "rds_instance_multi_az",
        Severity::Medium,
        !d.multi_az,
        "DB instance is single-AZ",
        "DB instance is Multi-AZ",
    );
    let default_admin = d
        .master_username
        .as_deref()
        // Prowler's two names, for every engine, matched exactly.
        .is_some_and(|u| matches!(u, "admin" | "postgres"));
    e.check(
        "rds_instance_default_admin",
        Severity::Medium,
        default_admin,
        format!(
            "master user name is the default `{}`",
            d.master_username.as_deref().unwrap_or_default()
        ),
        "master user name is not a default",
    );
}

fn check_security_group(sg: &SecurityGroup, findings: &mut Vec<Finding>) {
    let open: Vec<&SecurityGroupRule> = sg.ingress.iter().filter(|r| r.is_world_open()).collect();
    let mut e = Emitter::new(findings, ResourceKind::SecurityGroup, &sg.id, &sg.region);
    let all_ports = open.iter().any(|r| r.covers_all_ports());
    e.check(
        "ec2_securitygroup_allow_ingress_from_internet_to_all_ports",
        Severity::Critical,
        all_ports,
        "ingress from the internet to all ports",
        "no ingress from the internet to all ports",
    );
    for (check_id, ports, severity) in RED_PORT_CHECKS {
        // As Prowler: a group already failed for all ports is not judged port by port.
        if all_ports {
            e.check(
                check_id,
                *severity,
                false,
                "",
                "not judged port by port: the group is open to the internet on all ports",
            );
            continue;
        }
        let exposed: Vec<i32> = ports
            .iter()
            .copied()
            .filter(|&p| open.iter().any(|r| r.covers_tcp_port(p)))
            .collect();
        e.check(
            check_id,
            *severity,
            !exposed.is_empty(),
            format!("ingress from the internet to TCP port(s) {exposed:?}"),
            "no ingress from the internet to these ports",
        );
    }
    // Trusted Advisor's yellow: any other port open to the internet, green ports excepted.
    let red: Vec<i32> = RED_PORT_CHECKS.iter().flat_map(|(_, p, _)| p.iter().copied()).collect();
    let yellow = open.iter().any(|r| {
        !r.covers_all_ports()
            && match (r.from_port, r.to_port) {
                (Some(from), Some(to)) if r.protocol != "icmp" => {
                    (from..=to).any(|p| !GREEN_PORTS.contains(&p) && !red.contains(&p))
                }
                _ => false,
            }
    });
    // Not Prowler's `…_to_any_port`, which fails on any port open to the internet: an id of
    // our own.
    e.check(
        "miyabi_securitygroup_ingress_from_internet_to_unlisted_port",
        Severity::Low,
        yellow,
        "ingress from the internet to a port that is neither well-known web/mail nor high-risk",
        "no other port open to the internet",
    );
    if sg.name == "default" {
        e.check(
            "ec2_securitygroup_default_restrict_traffic",
            Severity::High,
            !sg.ingress.is_empty() || !sg.egress.is_empty(),
            format!(
                "default security group has {} inbound and {} outbound rule(s)",
                sg.ingress.len(),
                sg.egress.len()
            ),
            "default security group has no rules",
        );
    }
}

/// The 0–100 security score of a set of findings (see the module documentation).
#[must_use]
pub fn score(findings: &[Finding]) -> f64 {
    let (passed, total) = findings.iter().fold((0.0, 0.0), |(p, t), f| {
        let w = f.severity.weight();
        (if f.status == FindingStatus::Pass { p + w } else { p }, t + w)
    });
    if total == 0.0 {
        100.0
    } else {
        (1000.0 * passed / total).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::WorldState;

    /// Every finding of the demo world names a Prowler check with Prowler's severity, or a
    /// check of the engine's own.
    #[test]
    fn prowler_ids_carry_prowlers_severity_and_other_ids_are_the_engines() {
        let world: WorldState =
            serde_json::from_str(include_str!("../../fuzz/corpus/world_state/demo.json")).expect("the demo world");
        let findings = run_checks(&world.inventory);
        let ids: std::collections::BTreeSet<&str> = findings.iter().map(|f| f.check_id.as_str()).collect();
        assert!(ids.len() >= 20, "the demo world exercises most checks: {ids:?}");
        for f in &findings {
            match super::super::prowler::check(&f.check_id) {
                Some(prowler) => assert_eq!(f.severity, prowler.severity, "{}", f.check_id),
                None => assert!(
                    f.check_id.starts_with("miyabi_"),
                    "{} is neither Prowler's nor ours",
                    f.check_id
                ),
            }
        }
    }
}
