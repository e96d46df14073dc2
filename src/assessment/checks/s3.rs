//! S3 buckets.

use super::{verdict, Check, Estate, Rule, Verdict};
use crate::world::{Inventory, ResourceKind, S3Bucket, Severity, VersioningStatus};

fn bucket_rule(id: &'static str, severity: Severity, judge: fn(&S3Bucket, &Estate<'_>) -> Verdict) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::S3Bucket,
        resources: |inv: &Inventory| &inv.buckets,
        key: |b: &S3Bucket| (&b.name, &b.region),
        judge,
    })
}

fn grants_publicly(b: &S3Bucket, permissions: &[&str]) -> bool {
    b.acl_grants
        .iter()
        .any(|g| g.is_public() && permissions.contains(&g.permission.as_str()))
}

/// The bucket checks.
pub(super) fn checks() -> Vec<Box<dyn Check>> {
    vec![
        bucket_rule("s3_bucket_level_public_access_block", Severity::High, |b, _| {
            let pab = b.public_access_block;
            verdict(
                !pab.is_some_and(|p| p.is_full()),
                match pab {
                    None => "bucket has no public access block".to_owned(),
                    Some(p) => format!("bucket public access block is partial: {p:?}"),
                },
                "bucket blocks all public access",
            )
        }),
        bucket_rule("s3_bucket_public_access", Severity::Critical, |b, _| {
            verdict(
                b.policy_is_public == Some(true),
                "bucket policy makes the bucket public",
                "bucket policy is not public",
            )
        }),
        bucket_rule("s3_bucket_public_list_acl", Severity::Critical, |b, _| {
            verdict(
                grants_publicly(b, &["READ", "READ_ACP", "FULL_CONTROL"]),
                "bucket ACL grants read to everyone",
                "bucket ACL grants no public read",
            )
        }),
        bucket_rule("s3_bucket_public_write_acl", Severity::Critical, |b, _| {
            verdict(
                grants_publicly(b, &["WRITE", "WRITE_ACP", "FULL_CONTROL"]),
                "bucket ACL grants write to everyone",
                "bucket ACL grants no public write",
            )
        }),
        bucket_rule("s3_bucket_default_encryption", Severity::Medium, |b, _| {
            verdict(
                b.default_encryption.is_none(),
                "bucket has no default encryption configured",
                "bucket has default encryption",
            )
        }),
        bucket_rule("s3_bucket_object_versioning", Severity::Medium, |b, _| {
            verdict(
                b.versioning != VersioningStatus::Enabled,
                format!("bucket versioning is {:?}", b.versioning).to_lowercase(),
                "bucket versioning is enabled",
            )
        }),
        bucket_rule("s3_bucket_server_access_logging_enabled", Severity::Medium, |b, _| {
            verdict(
                !b.logging_enabled,
                "bucket server access logging is off",
                "bucket server access logging is on",
            )
        }),
    ]
}
