//! S3: the bucket list (global) and each bucket's access settings, read through a client of the
//! bucket's own Region.

use crate::aws::{AwsError, Layered};
use crate::world::{AclGrant, PublicAccessBlock, ReplicationRule, S3Bucket, Tags, VersioningStatus};
use aws_sdk_s3::operation::list_buckets::ListBucketsOutput;

type S3 = Layered<aws_sdk_s3::Client>;

/// A bucket from the list, before its settings are read.
pub(crate) struct ListedBucket {
    pub name: String,
    pub region: Option<String>,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

/// Lists every bucket, following continuation tokens.
pub(super) async fn list(s3: &S3) -> Result<Vec<ListedBucket>, AwsError> {
    let mut out = Vec::new();
    let send = |token| s3.client.list_buckets().set_continuation_token(token).send();
    let each = |page: ListBucketsOutput| {
        out.extend(page.buckets().iter().filter_map(|b| {
            Some(ListedBucket {
                name: b.name()?.to_owned(),
                region: b.bucket_region().map(str::to_owned),
                created: super::convert::time(b.creation_date()),
            })
        }));
    };
    s3.layer
        .pages("ListBuckets", send, ListBucketsOutput::continuation_token, each)
        .await?;
    Ok(out)
}

/// The Region of a bucket that the list did not say.
pub(super) async fn location(s3: &S3, bucket: &str) -> Result<String, AwsError> {
    let out = s3
        .layer
        .call("GetBucketLocation", || {
            s3.client.get_bucket_location().bucket(bucket).send()
        })
        .await?;
    Ok(
        match out
            .location_constraint()
            .map(aws_sdk_s3::types::BucketLocationConstraint::as_str)
        {
            None | Some("") => "us-east-1".to_owned(),
            Some("EU") => "eu-west-1".to_owned(),
            Some(other) => other.to_owned(),
        },
    )
}

/// `Ok(None)` when AWS answers with one of the codes that mean "not configured".
fn absent_if<T>(result: Result<T, AwsError>, codes: &[&str]) -> Result<Option<T>, AwsError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code().is_some_and(|c| codes.contains(&c)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A bucket's policy document and its governance settings, beyond access and encryption.
struct Controls {
    policy: Option<serde_json::Value>,
    object_ownership: Option<String>,
    object_lock: bool,
    lifecycle_enabled: bool,
    replication_rules: Vec<ReplicationRule>,
    event_notifications: bool,
}

/// Reads a bucket's [`Controls`]; the reads run concurrently.
async fn controls(s3: &S3, name: &str) -> Result<Controls, AwsError> {
    let c = &s3.client;
    let l = &s3.layer;
    let (document, ownership, lock, lifecycle, replication, notifications) = tokio::join!(
        l.call("GetBucketPolicy", || c.get_bucket_policy().bucket(name).send()),
        l.call("GetBucketOwnershipControls", || c
            .get_bucket_ownership_controls()
            .bucket(name)
            .send()),
        l.call("GetObjectLockConfiguration", || c
            .get_object_lock_configuration()
            .bucket(name)
            .send()),
        l.call("GetBucketLifecycleConfiguration", || c
            .get_bucket_lifecycle_configuration()
            .bucket(name)
            .send()),
        l.call("GetBucketReplication", || c
            .get_bucket_replication()
            .bucket(name)
            .send()),
        l.call("GetBucketNotificationConfiguration", || c
            .get_bucket_notification_configuration()
            .bucket(name)
            .send()),
    );
    // A document S3 accepted is JSON; one that is not is kept as its text.
    let policy = absent_if(document, &["NoSuchBucketPolicy"])?
        .and_then(|o| o.policy)
        .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
    let object_ownership = absent_if(ownership, &["OwnershipControlsNotFoundError"])?.and_then(|o| {
        o.ownership_controls()?
            .rules()
            .first()
            .map(|r| r.object_ownership().as_str().to_owned())
    });
    let object_lock = absent_if(lock, &["ObjectLockConfigurationNotFoundError"])?.is_some();
    let lifecycle_enabled = absent_if(lifecycle, &["NoSuchLifecycleConfiguration"])?.is_some_and(|o| {
        o.rules()
            .iter()
            .any(|r| *r.status() == aws_sdk_s3::types::ExpirationStatus::Enabled)
    });
    let replication_rules = absent_if(replication, &["ReplicationConfigurationNotFoundError"])?
        .and_then(|o| o.replication_configuration)
        .map(|r| {
            r.rules()
                .iter()
                .map(|rule| ReplicationRule {
                    status: rule.status().as_str().to_owned(),
                    destination_bucket: rule.destination().map(|d| d.bucket().to_owned()),
                })
                .collect()
        })
        .unwrap_or_default();
    let notifications = notifications?;
    let event_notifications = !notifications.topic_configurations().is_empty()
        || !notifications.queue_configurations().is_empty()
        || !notifications.lambda_function_configurations().is_empty()
        || notifications.event_bridge_configuration().is_some();
    Ok(Controls {
        policy,
        object_ownership,
        object_lock,
        lifecycle_enabled,
        replication_rules,
        event_notifications,
    })
}

/// Reads one bucket's settings. The reads run concurrently.
pub(crate) async fn describe(s3: &S3, listed: ListedBucket, owner_agent: &str) -> Result<S3Bucket, AwsError> {
    let name = listed.name.as_str();
    let c = &s3.client;
    let l = &s3.layer;
    let (controls, pab, policy, acl, encryption, versioning, logging, tagging) = tokio::join!(
        Box::pin(controls(s3, name)),
        l.call("GetPublicAccessBlock", || c
            .get_public_access_block()
            .bucket(name)
            .send()),
        l.call("GetBucketPolicyStatus", || c
            .get_bucket_policy_status()
            .bucket(name)
            .send()),
        l.call("GetBucketAcl", || c.get_bucket_acl().bucket(name).send()),
        l.call("GetBucketEncryption", || c.get_bucket_encryption().bucket(name).send()),
        l.call("GetBucketVersioning", || c.get_bucket_versioning().bucket(name).send()),
        l.call("GetBucketLogging", || c.get_bucket_logging().bucket(name).send()),
        l.call("GetBucketTagging", || c.get_bucket_tagging().bucket(name).send()),
    );
    let controls = controls?;
    let public_access_block = absent_if(pab, &["NoSuchPublicAccessBlockConfiguration"])?
        .and_then(|o| o.public_access_block_configuration().cloned())
        .map(|p| PublicAccessBlock {
            block_public_acls: p.block_public_acls().unwrap_or(false),
            ignore_public_acls: p.ignore_public_acls().unwrap_or(false),
            block_public_policy: p.block_public_policy().unwrap_or(false),
            restrict_public_buckets: p.restrict_public_buckets().unwrap_or(false),
        });
    let policy_is_public = absent_if(policy, &["NoSuchBucketPolicy"])?
        .and_then(|o| o.policy_status().and_then(aws_sdk_s3::types::PolicyStatus::is_public));
    let acl_grants = acl?
        .grants()
        .iter()
        .filter_map(|g| {
            let grantee = g.grantee()?;
            let who = grantee.uri().or(grantee.id()).or(grantee.email_address())?;
            Some(AclGrant {
                grantee: who.to_owned(),
                permission: g.permission().map_or("UNKNOWN", |p| p.as_str()).to_owned(),
            })
        })
        .collect();
    let default_encryption =
        absent_if(encryption, &["ServerSideEncryptionConfigurationNotFoundError"])?.and_then(|o| {
            o.server_side_encryption_configuration()?
                .rules()
                .iter()
                .find_map(|r| r.apply_server_side_encryption_by_default())
                .map(|d| d.sse_algorithm().as_str().to_owned())
        });
    let versioning = versioning?;
    let mfa_delete = versioning.mfa_delete() == Some(&aws_sdk_s3::types::MfaDeleteStatus::Enabled);
    let versioning = match versioning
        .status()
        .map(aws_sdk_s3::types::BucketVersioningStatus::as_str)
    {
        Some("Enabled") => VersioningStatus::Enabled,
        Some("Suspended") => VersioningStatus::Suspended,
        _ => VersioningStatus::Off,
    };
    let logging_enabled = logging?.logging_enabled().is_some();
    let tags: Tags = absent_if(tagging, &["NoSuchTagSet", "NoSuchTagSetError"])?
        .map(|o| {
            o.tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Ok(S3Bucket {
        arn: format!("arn:aws:s3:::{name}"),
        name: listed.name.clone(),
        region: s3.layer.region().to_owned(),
        created: listed.created,
        public_access_block,
        policy_is_public,
        acl_grants,
        default_encryption,
        versioning,
        logging_enabled,
        size_bytes: None,
        tags,
        owner_agent: owner_agent.to_owned(),
        policy: controls.policy,
        mfa_delete,
        object_ownership: controls.object_ownership,
        object_lock: controls.object_lock,
        lifecycle_enabled: controls.lifecycle_enabled,
        replication_rules: controls.replication_rules,
        event_notifications: controls.event_notifications,
    })
}
