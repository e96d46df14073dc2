//! RDS DB instances, DB clusters and snapshots, as Prowler's `rds_service.py` reads them. Like
//! Prowler, no check judges Amazon `DocumentDB` (engine `docdb`), which shares RDS's API.

use super::network::rule_matches;
use super::{verdict, Check, Estate, Rule, Verdict};
use crate::world::{Inventory, RdsCluster, RdsInstance, RdsSnapshot, ResourceKind, Severity};

fn not_docdb_instance(d: &RdsInstance) -> bool {
    d.engine != "docdb"
}

fn not_docdb_cluster(c: &RdsCluster) -> bool {
    c.engine != "docdb"
}

fn instance_rule(
    id: &'static str,
    severity: Severity,
    judge: fn(&RdsInstance, &Estate<'_>) -> Verdict,
) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::RdsInstance,
        resources: |inv: &Inventory| &inv.db_instances,
        key: |d: &RdsInstance| (&d.id, &d.region),
        applies: not_docdb_instance,
        judge,
    })
}

fn cluster_rule(
    id: &'static str,
    severity: Severity,
    judge: fn(&RdsCluster, &Estate<'_>) -> Verdict,
) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::RdsCluster,
        resources: |inv: &Inventory| &inv.db_clusters,
        key: |c: &RdsCluster| (&c.id, &c.region),
        applies: not_docdb_cluster,
        judge,
    })
}

fn snapshot_rule(
    id: &'static str,
    severity: Severity,
    judge: fn(&RdsSnapshot, &Estate<'_>) -> Verdict,
) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::RdsSnapshot,
        resources: |inv: &Inventory| &inv.db_snapshots,
        key: |s: &RdsSnapshot| (&s.id, &s.region),
        applies: |_| true,
        judge,
    })
}

/// Prowler's default admin names, for every engine, matched exactly.
fn is_default_admin(user: Option<&str>) -> bool {
    matches!(user, Some("admin" | "postgres"))
}

/// Prowler's default ports: a port and the engines (substrings of the engine name) that use it.
fn on_default_port(engine: &str, port: Option<i32>) -> bool {
    let engines: &[&str] = match port {
        Some(3306) => &["mysql", "mariadb", "aurora-mysql"],
        Some(5432) => &["postgres", "aurora-postgresql"],
        Some(1521) => &["oracle"],
        Some(1433) => &["sqlserver"],
        Some(50000) => &["db2"],
        _ => &[],
    };
    let engine = engine.to_lowercase();
    engines.iter().any(|e| engine.contains(e))
}

/// A member's setting read from its cluster (a member of a cluster that was not captured fails),
/// or the instance's own.
fn from_cluster_or_own(d: &RdsInstance, e: &Estate<'_>, of_cluster: fn(&RdsCluster) -> bool, own: bool) -> bool {
    match &d.cluster_id {
        Some(id) => e.cluster(&d.region, id).is_some_and(of_cluster),
        None => own,
    }
}

/// Prowler's public-access test: the flag, an active group open to the internet on the
/// endpoint's port, and an active subnet that routes to an internet gateway.
fn publicly_reachable(d: &RdsInstance, e: &Estate<'_>) -> bool {
    let Some(port) = d.port else { return false };
    let open = d
        .security_group_ids
        .iter()
        .filter_map(|g| e.group(g))
        .any(|g| g.ingress.iter().any(|r| rule_matches(r, "tcp", &[port], true, false)));
    d.publicly_accessible && open && d.subnet_ids.iter().filter_map(|s| e.subnet(s)).any(|s| s.public)
}

/// The RDS checks.
#[allow(clippy::too_many_lines)] // one entry per check, read top to bottom
pub(super) fn checks() -> Vec<Box<dyn Check>> {
    vec![
        instance_rule("rds_instance_no_public_access", Severity::Critical, |d, e| {
            verdict(
                publicly_reachable(d, e),
                "DB instance is publicly accessible, a group opens its port to the internet, and a subnet routes to an internet gateway",
                if d.publicly_accessible {
                    "DB instance is flagged public, but no open group and public subnet expose it"
                } else {
                    "DB instance is not publicly accessible"
                },
            )
        }),
        instance_rule("rds_instance_storage_encrypted", Severity::High, |d, _| {
            verdict(
                !d.storage_encrypted,
                "DB storage is not encrypted",
                "DB storage is encrypted",
            )
        }),
        instance_rule("rds_instance_backup_enabled", Severity::Medium, |d, _| {
            // Prowler's default `check_rds_instance_replicas: False` leaves read replicas out.
            if d.replica_source.is_some() {
                return Verdict::Skip;
            }
            verdict(
                d.backup_retention_days == 0,
                "automated backups are off (retention 0 days)",
                "automated backups are on",
            )
        }),
        instance_rule("rds_instance_deletion_protection", Severity::Medium, |d, e| {
            verdict(
                !from_cluster_or_own(d, e, |c| c.deletion_protection, d.deletion_protection),
                "deletion protection is off",
                "deletion protection is on",
            )
        }),
        instance_rule("rds_instance_multi_az", Severity::Medium, |d, e| {
            verdict(
                !from_cluster_or_own(d, e, |c| c.multi_az, d.multi_az),
                "DB instance is single-AZ",
                "DB instance is Multi-AZ",
            )
        }),
        instance_rule("rds_instance_default_admin", Severity::Medium, |d, e| {
            let default_admin = match &d.cluster_id {
                Some(id) => e
                    .cluster(&d.region, id)
                    .is_none_or(|c| is_default_admin(c.master_username.as_deref())),
                None => is_default_admin(d.master_username.as_deref()),
            };
            verdict(
                default_admin,
                "master user name is a default (`admin` or `postgres`)",
                "master user name is not a default",
            )
        }),
        instance_rule(
            "rds_instance_minor_version_upgrade_enabled",
            Severity::Medium,
            |d, _| {
                verdict(
                    !d.auto_minor_version_upgrade,
                    "minor version upgrades are not automatic",
                    "minor version upgrades are automatic",
                )
            },
        ),
        instance_rule("rds_instance_iam_authentication_enabled", Severity::Medium, |d, _| {
            const ENGINES: &[&str] = &[
                "postgres",
                "aurora-postgresql",
                "mysql",
                "mariadb",
                "aurora-mysql",
                "aurora",
            ];
            if !ENGINES.iter().any(|e| d.engine.contains(e)) {
                return Verdict::Skip;
            }
            verdict(!d.iam_auth, "IAM authentication is off", "IAM authentication is on")
        }),
        instance_rule("rds_instance_integration_cloudwatch_logs", Severity::Medium, |d, _| {
            verdict(
                d.cloudwatch_logs_exports.is_empty(),
                "no log is exported to CloudWatch Logs",
                "logs are exported to CloudWatch Logs",
            )
        }),
        instance_rule("rds_instance_enhanced_monitoring_enabled", Severity::Low, |d, _| {
            verdict(
                d.enhanced_monitoring_arn.as_deref().is_none_or(str::is_empty),
                "Enhanced Monitoring is off",
                "Enhanced Monitoring is on",
            )
        }),
        instance_rule("rds_instance_copy_tags_to_snapshots", Severity::Low, |d, _| {
            if matches!(d.engine.as_str(), "aurora" | "aurora-mysql" | "aurora-postgresql") {
                return Verdict::Skip;
            }
            verdict(
                !d.copy_tags_to_snapshot,
                "tags are not copied to snapshots",
                "tags are copied to snapshots",
            )
        }),
        instance_rule("rds_instance_inside_vpc", Severity::High, |d, _| {
            verdict(
                d.vpc_id.is_none(),
                "DB instance is not in a VPC",
                "DB instance is in a VPC",
            )
        }),
        instance_rule("rds_instance_non_default_port", Severity::Low, |d, _| {
            verdict(
                on_default_port(&d.engine, d.port),
                "DB instance listens on its engine's default port",
                "DB instance does not listen on its engine's default port",
            )
        }),
        instance_rule("rds_instance_extended_support", Severity::Medium, |d, _| {
            verdict(
                d.engine_lifecycle_support.as_deref() == Some("open-source-rds-extended-support"),
                "DB instance runs under RDS Extended Support",
                "DB instance is not under RDS Extended Support",
            )
        }),
        cluster_rule("rds_cluster_storage_encrypted", Severity::High, |c, _| {
            verdict(
                !c.storage_encrypted,
                "cluster storage is not encrypted",
                "cluster storage is encrypted",
            )
        }),
        cluster_rule("rds_cluster_deletion_protection", Severity::Medium, |c, _| {
            verdict(
                !c.deletion_protection,
                "deletion protection is off",
                "deletion protection is on",
            )
        }),
        cluster_rule("rds_cluster_multi_az", Severity::Medium, |c, _| {
            verdict(!c.multi_az, "cluster is single-AZ", "cluster is Multi-AZ")
        }),
        cluster_rule("rds_cluster_default_admin", Severity::Medium, |c, _| {
            verdict(
                is_default_admin(c.master_username.as_deref()),
                "master user name is a default (`admin` or `postgres`)",
                "master user name is not a default",
            )
        }),
        cluster_rule("rds_cluster_minor_version_upgrade_enabled", Severity::Medium, |c, _| {
            // Prowler judges Multi-AZ DB clusters only.
            if !c.multi_az {
                return Verdict::Skip;
            }
            verdict(
                !c.auto_minor_version_upgrade,
                "minor version upgrades are not automatic",
                "minor version upgrades are automatic",
            )
        }),
        cluster_rule("rds_cluster_iam_authentication_enabled", Severity::Medium, |c, _| {
            verdict(!c.iam_auth, "IAM authentication is off", "IAM authentication is on")
        }),
        cluster_rule("rds_cluster_integration_cloudwatch_logs", Severity::Medium, |c, _| {
            if !matches!(
                c.engine.as_str(),
                "aurora-mysql" | "aurora-postgresql" | "mysql" | "postgres"
            ) {
                return Verdict::Skip;
            }
            verdict(
                c.cloudwatch_logs_exports.is_empty(),
                "no log is exported to CloudWatch Logs",
                "logs are exported to CloudWatch Logs",
            )
        }),
        cluster_rule("rds_cluster_backtrack_enabled", Severity::Low, |c, _| {
            if c.engine != "aurora-mysql" {
                return Verdict::Skip;
            }
            verdict(c.backtrack_window <= 0, "Backtrack is off", "Backtrack is on")
        }),
        cluster_rule("rds_cluster_copy_tags_to_snapshots", Severity::Low, |c, _| {
            verdict(
                !c.copy_tags_to_snapshot,
                "tags are not copied to snapshots",
                "tags are copied to snapshots",
            )
        }),
        cluster_rule("rds_cluster_non_default_port", Severity::Low, |c, _| {
            verdict(
                on_default_port(&c.engine, c.port),
                "cluster listens on its engine's default port",
                "cluster does not listen on its engine's default port",
            )
        }),
        snapshot_rule("rds_snapshots_encrypted", Severity::High, |s, _| {
            verdict(!s.encrypted, "snapshot is not encrypted", "snapshot is encrypted")
        }),
        snapshot_rule("rds_snapshots_public_access", Severity::Critical, |s, _| {
            verdict(
                s.public,
                "everyone may restore the snapshot",
                "the snapshot is not public",
            )
        }),
    ]
}
