//! S3 server access logging, delivered to a log bucket the engine creates once per account and
//! Region. S3 refuses a target that does not let its logging service write, so the log bucket
//! gets its policy before any bucket logs into it. It is made to pass the checks a log bucket
//! can: public access blocked, encrypted, versioned, ACLs disabled, TLS only, and its logs
//! expire.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    LoggingEnabled, NoncurrentVersionExpiration, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use serde_json::{json, Value};

use super::{SdkExecutor, MANAGED_TAG};
use crate::phases::deployment::DeployError;
use crate::plan::execution::Step;
use crate::plan::{log_bucket_account, LOG_BUCKET_ROLE};

/// Days a log object is kept.
pub const LOG_RETENTION_DAYS: i32 = 365;

impl SdkExecutor {
    /// The bucket's logging target, `null` when logging is off.
    pub(super) async fn logging_target(&self, step: &Step) -> Result<Value, DeployError> {
        let c = self.clients(step)?;
        let bucket = &step.change.resource.id;
        let out =
            c.s3.layer
                .call("GetBucketLogging", || {
                    c.s3.client.get_bucket_logging().bucket(bucket).send()
                })
                .await?;
        Ok(out.logging_enabled().map_or(Value::Null, |l| json!(l.target_bucket())))
    }

    /// Logs the step's bucket into the log bucket `target` (created first when missing), or
    /// turns logging off when `target` is `null`.
    pub(super) async fn set_logging(&self, step: &Step, target: &Value) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let bucket = &step.change.resource.id;
        let status = match target.as_str() {
            Some(log_bucket) => {
                self.ensure_log_bucket(step, log_bucket).await?;
                let enabled = LoggingEnabled::builder()
                    .target_bucket(log_bucket)
                    .target_prefix(format!("{bucket}/"))
                    .build()
                    .map_err(|e| invalid(step, &e))?;
                BucketLoggingStatus::builder().logging_enabled(enabled).build()
            }
            None => BucketLoggingStatus::builder().build(),
        };
        c.s3.layer
            .call("PutBucketLogging", || {
                c.s3.client
                    .put_bucket_logging()
                    .bucket(bucket)
                    .bucket_logging_status(status.clone())
                    .send()
            })
            .await?;
        Ok(())
    }

    /// Creates and configures the log bucket `name`, unless the engine already did; a bucket of
    /// that name without the engine's tag is refused, not written into.
    async fn ensure_log_bucket(&self, step: &Step, name: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let (s3, layer) = (&c.s3.client, &c.s3.layer);
        let account = log_bucket_account(name).ok_or_else(|| DeployError::Unsupported {
            step: step.id.clone(),
            reason: format!("{name} is not a log bucket name of the engine"),
        })?;
        match layer
            .call("GetBucketTagging", || s3.get_bucket_tagging().bucket(name).send())
            .await
        {
            Ok(tags)
                if tags
                    .tag_set()
                    .iter()
                    .any(|t| t.key() == LOG_BUCKET_ROLE.0 && t.value() == LOG_BUCKET_ROLE.1) =>
            {
                return Ok(());
            }
            Err(e) if e.code() == Some("NoSuchBucket") => {}
            _ => {
                return Err(DeployError::Unsupported {
                    step: step.id.clone(),
                    reason: format!("bucket {name} exists and is not the engine's log bucket"),
                })
            }
        }
        let region = c.region.as_str();
        let location = (region != "us-east-1").then(|| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build()
        });
        layer
            .call("CreateBucket", || {
                s3.create_bucket()
                    .bucket(name)
                    .set_create_bucket_configuration(location.clone())
                    .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                    .send()
            })
            .await?;
        // Tagged first: a run stopped midway leaves a bucket the next one recognises and finishes.
        let tagging = Tagging::builder()
            .tag_set(tag(step, MANAGED_TAG)?)
            .tag_set(tag(step, LOG_BUCKET_ROLE)?)
            .build()
            .map_err(|e| invalid(step, &e))?;
        layer
            .call("PutBucketTagging", || {
                s3.put_bucket_tagging().bucket(name).tagging(tagging.clone()).send()
            })
            .await?;
        self.secure_log_bucket(step, name, account).await
    }

    /// Blocks public access, disables ACLs, encrypts, versions, expires and policies the log
    /// bucket `name` of `account`.
    async fn secure_log_bucket(&self, step: &Step, name: &str, account: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let (s3, layer) = (&c.s3.client, &c.s3.layer);
        let block = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        layer
            .call("PutPublicAccessBlock", || {
                s3.put_public_access_block()
                    .bucket(name)
                    .public_access_block_configuration(block.clone())
                    .send()
            })
            .await?;
        let ownership = OwnershipControls::builder()
            .rules(
                OwnershipControlsRule::builder()
                    .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                    .build()
                    .map_err(|e| invalid(step, &e))?,
            )
            .build()
            .map_err(|e| invalid(step, &e))?;
        layer
            .call("PutBucketOwnershipControls", || {
                s3.put_bucket_ownership_controls()
                    .bucket(name)
                    .ownership_controls(ownership.clone())
                    .send()
            })
            .await?;
        let encryption = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(
                        ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(ServerSideEncryption::Aes256)
                            .build()
                            .map_err(|e| invalid(step, &e))?,
                    )
                    .build(),
            )
            .build()
            .map_err(|e| invalid(step, &e))?;
        layer
            .call("PutBucketEncryption", || {
                s3.put_bucket_encryption()
                    .bucket(name)
                    .server_side_encryption_configuration(encryption.clone())
                    .send()
            })
            .await?;
        let versioning = VersioningConfiguration::builder()
            .status(BucketVersioningStatus::Enabled)
            .build();
        layer
            .call("PutBucketVersioning", || {
                s3.put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(versioning.clone())
                    .send()
            })
            .await?;
        let lifecycle = BucketLifecycleConfiguration::builder()
            .rules(
                LifecycleRule::builder()
                    .id("miyabi-expire-access-logs")
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .expiration(LifecycleExpiration::builder().days(LOG_RETENTION_DAYS).build())
                    .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(30).build())
                    .build()
                    .map_err(|e| invalid(step, &e))?,
            )
            .build()
            .map_err(|e| invalid(step, &e))?;
        layer
            .call("PutBucketLifecycleConfiguration", || {
                s3.put_bucket_lifecycle_configuration()
                    .bucket(name)
                    .lifecycle_configuration(lifecycle.clone())
                    .send()
            })
            .await?;
        let policy = log_bucket_policy(name, account);
        layer
            .call("PutBucketPolicy", || {
                s3.put_bucket_policy().bucket(name).policy(&policy).send()
            })
            .await?;
        Ok(())
    }
}

/// Lets S3's logging service write into `name` for `account`'s buckets, and refuses any
/// request without TLS.
fn log_bucket_policy(name: &str, account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3ServerAccessLogsPolicy",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": format!("arn:aws:s3:::{name}/*"),
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [format!("arn:aws:s3:::{name}"), format!("arn:aws:s3:::{name}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    })
    .to_string()
}

fn tag(step: &Step, (key, value): (&str, &str)) -> Result<Tag, DeployError> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| invalid(step, &e))
}

fn invalid(step: &Step, e: &dyn std::fmt::Display) -> DeployError {
    DeployError::Unsupported {
        step: step.id.clone(),
        reason: e.to_string(),
    }
}
