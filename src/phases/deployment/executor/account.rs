//! The account's defaults in one Region: EBS encryption by default, snapshot block public
//! access and the instance-metadata default. Each is one call to set and one to put back; the
//! value read is the one θ1 records in [`crate::world::RegionSettings`].

use aws_sdk_ec2::types::{MetadataDefaultHttpTokensState, SnapshotBlockPublicAccessState};
use serde_json::{json, Value};

use super::SdkExecutor;
use crate::phases::deployment::DeployError;
use crate::phases::discovery::posture;
use crate::plan::execution::Step;
use crate::plan::Action;

impl SdkExecutor {
    /// The live value of the step's setting, in the form θ1 records it.
    pub(super) async fn account_setting(&self, step: &Step) -> Result<Value, DeployError> {
        let c = self.clients(step)?;
        let settings = posture::region_settings(&c.ec2).await?;
        Ok(match step.change.action {
            Action::EnableEbsDefaultEncryption => json!(settings.ebs_encryption_by_default),
            Action::BlockSnapshotPublicAccess => json!(settings.snapshot_block_public_access),
            _ => json!(settings.instance_metadata_http_tokens),
        })
    }

    /// Sets the step's setting to `value` (a boolean for EBS encryption, a state otherwise).
    pub(super) async fn set_account_setting(&self, step: &Step, value: &Value) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let (ec2, layer) = (&c.ec2.client, &c.ec2.layer);
        match (step.change.action, value) {
            (Action::EnableEbsDefaultEncryption, Value::Bool(true)) => {
                layer
                    .call("EnableEbsEncryptionByDefault", || {
                        ec2.enable_ebs_encryption_by_default().send()
                    })
                    .await?;
            }
            (Action::EnableEbsDefaultEncryption, _) => {
                layer
                    .call("DisableEbsEncryptionByDefault", || {
                        ec2.disable_ebs_encryption_by_default().send()
                    })
                    .await?;
            }
            (Action::BlockSnapshotPublicAccess, Value::String(state)) if state != "unblocked" => {
                let state = SnapshotBlockPublicAccessState::from(state.as_str());
                layer
                    .call("EnableSnapshotBlockPublicAccess", || {
                        ec2.enable_snapshot_block_public_access().state(state.clone()).send()
                    })
                    .await?;
            }
            (Action::BlockSnapshotPublicAccess, _) => {
                layer
                    .call("DisableSnapshotBlockPublicAccess", || {
                        ec2.disable_snapshot_block_public_access().send()
                    })
                    .await?;
            }
            (Action::RequireImdsV2ByDefault, value) => {
                // "no-preference" clears the account's default.
                let tokens = MetadataDefaultHttpTokensState::from(value.as_str().unwrap_or("no-preference"));
                layer
                    .call("ModifyInstanceMetadataDefaults", || {
                        ec2.modify_instance_metadata_defaults()
                            .http_tokens(tokens.clone())
                            .send()
                    })
                    .await?;
            }
            _ => {
                return Err(DeployError::Unsupported {
                    step: step.id.clone(),
                    reason: format!("{:?} is not an account setting", step.change.action),
                })
            }
        }
        Ok(())
    }
}
