//! RDS DB instances.

use super::{verdict, Check, Estate, Rule, Verdict};
use crate::world::{Inventory, RdsInstance, ResourceKind, Severity};

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
        judge,
    })
}

/// The RDS checks.
pub(super) fn checks() -> Vec<Box<dyn Check>> {
    vec![
        instance_rule("rds_instance_no_public_access", Severity::Critical, |d, _| {
            verdict(
                d.publicly_accessible,
                "DB instance is publicly accessible",
                "DB instance is not publicly accessible",
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
            verdict(
                d.backup_retention_days == 0,
                "automated backups are off (retention 0 days)",
                "automated backups are on",
            )
        }),
        instance_rule("rds_instance_deletion_protection", Severity::Medium, |d, _| {
            verdict(
                !d.deletion_protection,
                "deletion protection is off",
                "deletion protection is on",
            )
        }),
        instance_rule("rds_instance_multi_az", Severity::Medium, |d, _| {
            verdict(!d.multi_az, "DB instance is single-AZ", "DB instance is Multi-AZ")
        }),
        instance_rule("rds_instance_default_admin", Severity::Medium, |d, _| {
            // Prowler's two names, for every engine, matched exactly.
            let default_admin = d
                .master_username
                .as_deref()
                .is_some_and(|u| matches!(u, "admin" | "postgres"));
            verdict(
                default_admin,
                format!(
                    "master user name is the default `{}`",
                    d.master_username.as_deref().unwrap_or_default()
                ),
                "master user name is not a default",
            )
        }),
    ]
}
