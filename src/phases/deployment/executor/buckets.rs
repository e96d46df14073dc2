//! A bucket's public access block, default encryption and versioning, set and put back.

use serde_json::Value;

use super::{unsupported, SdkExecutor};
use crate::phases::deployment::DeployError;
use crate::plan::execution::Step;
use crate::plan::Action;

impl SdkExecutor {
    pub(super) async fn bucket_setting(&self, step: &Step, value: &Value) -> Result<(), DeployError> {
        use aws_sdk_s3::types::{
            BucketVersioningStatus, PublicAccessBlockConfiguration, ServerSideEncryption,
            ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
            VersioningConfiguration,
        };
        let c = self.clients(step)?;
        let bucket = &step.change.resource.id;
        let invalid = |e: &dyn std::fmt::Display| DeployError::Unsupported {
            step: step.id.clone(),
            reason: e.to_string(),
        };
        match step.change.action {
            Action::EnableVersioning => {
                // S3 cannot return a bucket to never-versioned: reverting suspends it.
                let status = if value.as_str() == Some("enabled") {
                    BucketVersioningStatus::Enabled
                } else {
                    BucketVersioningStatus::Suspended
                };
                let config = VersioningConfiguration::builder().status(status).build();
                c.s3.layer
                    .call("PutBucketVersioning", || {
                        c.s3.client
                            .put_bucket_versioning()
                            .bucket(bucket)
                            .versioning_configuration(config.clone())
                            .send()
                    })
                    .await?;
            }
            Action::EnableDefaultEncryption => match value.as_str() {
                Some(algorithm) => {
                    let default = ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::from(algorithm))
                        .build()
                        .map_err(|e| invalid(&e))?;
                    let config = ServerSideEncryptionConfiguration::builder()
                        .rules(
                            ServerSideEncryptionRule::builder()
                                .apply_server_side_encryption_by_default(default)
                                .build(),
                        )
                        .build()
                        .map_err(|e| invalid(&e))?;
                    c.s3.layer
                        .call("PutBucketEncryption", || {
                            c.s3.client
                                .put_bucket_encryption()
                                .bucket(bucket)
                                .server_side_encryption_configuration(config.clone())
                                .send()
                        })
                        .await?;
                }
                None => {
                    c.s3.layer
                        .call("DeleteBucketEncryption", || {
                            c.s3.client.delete_bucket_encryption().bucket(bucket).send()
                        })
                        .await?;
                }
            },
            Action::BlockPublicAccess => {
                if value.is_null() {
                    c.s3.layer
                        .call("DeletePublicAccessBlock", || {
                            c.s3.client.delete_public_access_block().bucket(bucket).send()
                        })
                        .await?;
                } else {
                    let flag = |k: &str| value.get(k).and_then(Value::as_bool).unwrap_or(false);
                    let config = PublicAccessBlockConfiguration::builder()
                        .block_public_acls(flag("block_public_acls"))
                        .ignore_public_acls(flag("ignore_public_acls"))
                        .block_public_policy(flag("block_public_policy"))
                        .restrict_public_buckets(flag("restrict_public_buckets"))
                        .build();
                    c.s3.layer
                        .call("PutPublicAccessBlock", || {
                            c.s3.client
                                .put_public_access_block()
                                .bucket(bucket)
                                .public_access_block_configuration(config.clone())
                                .send()
                        })
                        .await?;
                }
            }
            _ => return Err(unsupported(step)),
        }
        Ok(())
    }
}
