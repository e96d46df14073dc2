//! S3 buckets, as Prowler's `s3_service.py` and `iam/lib/policy.py` read them.
//!
//! The account-level Block Public Access setting needs `aws-sdk-s3control`, which the engine does
//! not link: every bucket is judged on its own settings, as Prowler judges them when it cannot
//! read the account's.

use serde_json::Value;

use super::network::is_private;
use super::{every, verdict, Check, Estate, Rule, Verdict};
use crate::world::{Inventory, ResourceKind, S3Bucket, Severity, VersioningStatus};

fn bucket_rule(id: &'static str, severity: Severity, judge: fn(&S3Bucket, &Estate<'_>) -> Verdict) -> Box<dyn Check> {
    Box::new(Rule {
        id,
        severity,
        kind: ResourceKind::S3Bucket,
        resources: |inv: &Inventory| &inv.buckets,
        key: |b: &S3Bucket| (&b.name, &b.region),
        applies: every,
        judge,
    })
}

/// Prowler's test of a bucket's Block Public Access: on when it ignores public ACLs and
/// restricts public buckets (the other two settings are not looked at).
fn blocks_public_access(b: &S3Bucket) -> bool {
    b.public_access_block
        .is_some_and(|p| p.ignore_public_acls && p.restrict_public_buckets)
}

fn grants_publicly(b: &S3Bucket, permissions: &[&str]) -> bool {
    b.acl_grants
        .iter()
        .any(|g| g.is_public() && (permissions.is_empty() || permissions.contains(&g.permission.as_str())))
}

/// A policy's statements: its `Statement` list, or the one statement it holds.
fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

/// A string, or each string of a list.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Prowler's `has_public_principal`: `*` as the principal, or as (or inside) an `AWS` or
/// `CanonicalUser` principal, or any account's root.
fn has_public_principal(statement: &Value) -> bool {
    const ANY_ROOT: &str = "arn:aws:iam::*:root";
    match statement.get("Principal") {
        Some(Value::String(p)) => p.contains('*'),
        Some(p @ Value::Object(_)) => {
            let aws = match p.get("AWS") {
                Some(Value::String(a)) => a.contains('*') || a.contains(ANY_ROOT),
                Some(Value::Array(list)) => list.iter().any(|a| a == "*" || a == ANY_ROOT),
                _ => false,
            };
            let canonical = match p.get("CanonicalUser") {
                Some(Value::String(c)) => c.contains('*'),
                Some(Value::Array(list)) => list.iter().any(|c| c == "*"),
                _ => false,
            };
            aws || canonical
        }
        _ => false,
    }
}

/// Condition keys that, present under a string or ARN operator, make a statement restrictive
/// when cross-account access is allowed (Prowler's `is_condition_block_restrictive`).
const RESTRICTIVE_STRING_KEYS: &[&str] = &[
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:sourcearn",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:resourceaccount",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:userid",
    "aws:username",
    "aws:calledvia",
    "aws:calledviafirst",
    "aws:calledvialast",
    "kms:calleraccount",
    "kms:viaservice",
    "s3:resourceaccount",
    "lambda:eventsourcetoken",
];

fn condition_is_restrictive(condition: &Value) -> bool {
    let Value::Object(operators) = condition else {
        return false;
    };
    let keys = |op: &str| -> Vec<String> {
        operators
            .get(op)
            .and_then(Value::as_object)
            .map(|m| m.keys().map(|k| k.to_lowercase()).collect())
            .unwrap_or_default()
    };
    let by_string = ["StringEquals", "StringLike"]
        .iter()
        .flat_map(|op| keys(op))
        .any(|k| RESTRICTIVE_STRING_KEYS.contains(&k.as_str()));
    let by_arn = ["ArnLike", "ArnEquals"]
        .iter()
        .flat_map(|op| keys(op))
        .any(|k| k == "aws:sourcearn" || k == "aws:principalarn");
    // `IpAddress` on `aws:SourceIp` with private ranges only.
    let from_private_ip = operators
        .get("IpAddress")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("aws:SourceIp")))
        .is_some_and(|(_, v)| {
            let ips = strings(Some(v));
            !ips.is_empty() && ips.iter().all(|ip| *ip != "*" && *ip != "0.0.0.0/0" && is_private(ip))
        });
    by_string || by_arn || from_private_ip
}

/// Prowler's `is_policy_public` with cross-account access allowed: an `Allow` statement with a
/// public principal and no restrictive condition. With `actions` given, the statement must also
/// allow one of them, or `*`, by exact name. Deny statements are not weighed, as in Prowler.
fn is_policy_public(policy: &Value, actions: &[&str]) -> bool {
    statements(policy).into_iter().any(|s| {
        if s.get("Effect").and_then(Value::as_str) != Some("Allow") || !has_public_principal(s) {
            return false;
        }
        if !actions.is_empty() {
            let allowed = strings(s.get("Action"));
            if !allowed.iter().any(|a| *a == "*" || actions.contains(a)) {
                return false;
            }
        }
        match s.get("Condition") {
            None => true,
            Some(Value::Object(c)) if c.is_empty() => true,
            Some(c) => !condition_is_restrictive(c),
        }
    })
}

/// Prowler's `s3_bucket_secure_transport_policy`: some Deny statement on `s3:PutObject`, `s3:*`
/// or `*` with the condition `Bool: {aws:SecureTransport: "false"}`.
fn denies_plain_http(policy: &Value) -> bool {
    statements(policy).into_iter().any(|s| {
        let on_writes = match s.get("Action") {
            Some(Value::String(a)) => ["s3:PutObject", "*", "s3:*"].iter().any(|x| a.contains(x)),
            Some(Value::Array(list)) => list.iter().any(|a| a == "s3:PutObject" || a == "*" || a == "s3:*"),
            _ => false,
        };
        s.get("Effect").and_then(Value::as_str) == Some("Deny")
            && on_writes
            && s.get("Condition")
                .and_then(|c| c.get("Bool"))
                .and_then(|b| b.get("aws:SecureTransport"))
                .and_then(Value::as_str)
                == Some("false")
    })
}

/// Actions whose public grant makes a policy publicly writable (Prowler's list).
const WRITE_ACTIONS: &[&str] = &["s3:PutObject", "s3:DeleteObject", "s3:*", "s3:Put*", "s3:Delete*"];

/// The bucket checks.
#[allow(clippy::too_many_lines)] // one entry per check, read top to bottom
pub(super) fn checks() -> Vec<Box<dyn Check>> {
    vec![
        bucket_rule("s3_bucket_level_public_access_block", Severity::High, |b, _| {
            verdict(
                !blocks_public_access(b),
                match b.public_access_block {
                    None => "bucket has no public access block".to_owned(),
                    Some(p) => format!(
                        "bucket public access block does not ignore public ACLs and restrict public buckets: {p:?}"
                    ),
                },
                "bucket ignores public ACLs and restricts public buckets",
            )
        }),
        bucket_rule("s3_bucket_public_access", Severity::Critical, |b, _| {
            if blocks_public_access(b) {
                return verdict(false, "", "bucket blocks public access");
            }
            let by_policy = b.policy.as_ref().is_some_and(|p| is_policy_public(p, &[]));
            let by_acl = grants_publicly(b, &[]);
            verdict(
                by_policy || by_acl,
                if by_policy {
                    "bucket policy grants access to everyone"
                } else {
                    "bucket ACL grants access to everyone"
                },
                "neither the policy nor the ACL makes the bucket public",
            )
        }),
        bucket_rule("s3_bucket_public_list_acl", Severity::Critical, |b, _| {
            verdict(
                !blocks_public_access(b) && grants_publicly(b, &["READ", "READ_ACP", "FULL_CONTROL"]),
                "bucket ACL grants read to everyone",
                "bucket ACL grants no public read",
            )
        }),
        bucket_rule("s3_bucket_public_write_acl", Severity::Critical, |b, _| {
            verdict(
                !blocks_public_access(b) && grants_publicly(b, &["WRITE", "WRITE_ACP", "FULL_CONTROL"]),
                "bucket ACL grants write to everyone",
                "bucket ACL grants no public write",
            )
        }),
        bucket_rule("s3_bucket_policy_public_write_access", Severity::Critical, |b, _| {
            let restricted = b.public_access_block.is_some_and(|p| p.restrict_public_buckets);
            verdict(
                !restricted && b.policy.as_ref().is_some_and(|p| is_policy_public(p, WRITE_ACTIONS)),
                "bucket policy lets everyone write or delete objects",
                "bucket policy does not let everyone write",
            )
        }),
        bucket_rule("s3_bucket_secure_transport_policy", Severity::Medium, |b, _| {
            verdict(
                !b.policy.as_ref().is_some_and(denies_plain_http),
                "bucket policy does not deny requests over plain HTTP",
                "bucket policy denies requests over plain HTTP",
            )
        }),
        bucket_rule("s3_bucket_default_encryption", Severity::Medium, |b, _| {
            verdict(
                b.default_encryption.is_none(),
                "bucket has no default encryption configured",
                "bucket has default encryption",
            )
        }),
        bucket_rule("s3_bucket_kms_encryption", Severity::Medium, |b, _| {
            verdict(
                !matches!(b.default_encryption.as_deref(), Some("aws:kms" | "aws:kms:dsse")),
                "bucket is not encrypted with KMS by default",
                "bucket is encrypted with KMS by default",
            )
        }),
        bucket_rule("s3_bucket_object_versioning", Severity::Medium, |b, _| {
            verdict(
                b.versioning != VersioningStatus::Enabled,
                format!("bucket versioning is {:?}", b.versioning).to_lowercase(),
                "bucket versioning is enabled",
            )
        }),
        bucket_rule("s3_bucket_no_mfa_delete", Severity::Medium, |b, _| {
            verdict(!b.mfa_delete, "MFA delete is not enabled", "MFA delete is enabled")
        }),
        bucket_rule("s3_bucket_server_access_logging_enabled", Severity::Medium, |b, _| {
            verdict(
                !b.logging_enabled,
                "bucket server access logging is off",
                "bucket server access logging is on",
            )
        }),
        bucket_rule("s3_bucket_acl_prohibited", Severity::Medium, |b, _| {
            verdict(
                !b.object_ownership
                    .as_deref()
                    .is_some_and(|o| o.contains("BucketOwnerEnforced")),
                "bucket ACLs are not disabled (Object Ownership is not BucketOwnerEnforced)",
                "bucket ACLs are disabled",
            )
        }),
        bucket_rule("s3_bucket_object_lock", Severity::Low, |b, _| {
            verdict(
                !b.object_lock,
                "Object Lock is not configured",
                "Object Lock is configured",
            )
        }),
        bucket_rule("s3_bucket_lifecycle_enabled", Severity::Low, |b, _| {
            verdict(
                !b.lifecycle_enabled,
                "no lifecycle rule is enabled",
                "a lifecycle rule is enabled",
            )
        }),
        bucket_rule("s3_bucket_event_notifications_enabled", Severity::Low, |b, _| {
            verdict(
                !b.event_notifications,
                "no event notification is configured",
                "an event notification is configured",
            )
        }),
        bucket_rule("s3_bucket_cross_region_replication", Severity::Low, |b, e| {
            // An enabled rule of a versioned bucket, to a scanned bucket in another Region.
            let elsewhere = b.versioning == VersioningStatus::Enabled
                && b.replication_rules.iter().any(|r| {
                    r.status == "Enabled"
                        && r.destination_bucket
                            .as_deref()
                            .and_then(|arn| e.bucket_region(arn))
                            .is_some_and(|region| region != b.region)
                });
            verdict(
                !elsewhere,
                "bucket does not replicate to a bucket in another Region",
                "bucket replicates to a bucket in another Region",
            )
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_policy_is_public_as_prowler_reads_it() {
        let allow = |principal: Value, condition: Option<Value>| {
            let mut s = json!({"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject", "Resource": "*"});
            if let Some(c) = condition {
                s["Condition"] = c;
            }
            json!({"Statement": [s]})
        };
        assert!(is_policy_public(&allow(json!("*"), None), &[]));
        assert!(is_policy_public(
            &allow(json!({"AWS": ["arn:aws:iam::*:root"]}), None),
            &[]
        ));
        assert!(!is_policy_public(&allow(json!({"Service": "*"}), None), &[]));
        assert!(!is_policy_public(
            &allow(json!({"AWS": "arn:aws:iam::111122223333:root"}), None),
            &[]
        ));
        // Any value of a recognised key restricts, even `*`; other conditions do not.
        assert!(!is_policy_public(
            &allow(json!("*"), Some(json!({"StringEquals": {"AWS:SourceAccount": "*"}}))),
            &[]
        ));
        assert!(is_policy_public(
            &allow(json!("*"), Some(json!({"Bool": {"aws:SecureTransport": "true"}}))),
            &[]
        ));
        assert!(!is_policy_public(
            &allow(json!("*"), Some(json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}))),
            &[]
        ));
        assert!(is_policy_public(
            &allow(json!("*"), Some(json!({"IpAddress": {"aws:SourceIp": "8.8.8.0/24"}}))),
            &[]
        ));
        // The write check asks for a write action by exact name.
        assert!(!is_policy_public(&allow(json!("*"), None), WRITE_ACTIONS));
        let put = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:PutObject"]}]});
        assert!(is_policy_public(&put, WRITE_ACTIONS));
        // A Deny is not weighed.
        let denied = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*"}]});
        assert!(!is_policy_public(&denied, &[]));
    }

    #[test]
    fn secure_transport_needs_the_exact_false_string() {
        let deny = |action: Value, value: Value| {
            json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": action,
                "Condition": {"Bool": {"aws:SecureTransport": value}}}]})
        };
        assert!(denies_plain_http(&deny(json!("s3:*"), json!("false"))));
        assert!(denies_plain_http(&deny(json!(["s3:PutObject"]), json!("false"))));
        assert!(!denies_plain_http(&deny(json!(["s3:GetObject"]), json!("false"))));
        assert!(!denies_plain_http(&deny(json!("s3:*"), json!(false))));
        assert!(!denies_plain_http(&deny(json!("s3:*"), json!(["false"]))));
    }
}
