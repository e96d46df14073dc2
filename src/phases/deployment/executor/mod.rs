//! How a step touches AWS: the object-safe [`StepExecutor`] and its SDK implementation.
//!
//! Reads reuse θ1's readers (the same conversion into the world model), narrowed to the one
//! resource, so that a precondition or a validation compares exactly what discovery would see.

mod access_logging;
mod account;
mod buckets;
mod db_encryption;
mod groups;
mod volume_swap;

pub use self::db_encryption::{DbMigration, MigrationStage, RDS_KMS_KEY};
pub use self::volume_swap::{SwapStage, VolumeSwap, REPLACED_BY_TAG, REPLACES_TAG};

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeValue, HttpTokensState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DeployError;
use crate::assessment::ResourceKind;
use crate::aws::wait::{self, Coalesced, WaitError};
use crate::aws::{AwsSession, RegionClients};
use crate::owners::OwnerDirectory;
use crate::phases::discovery::{ec2, rds, s3};
use crate::plan::execution::Step;
use crate::plan::Action;

/// The tag every resource θ4 changed carries.
pub const MANAGED_TAG: (&str, &str) = ("MiyabiManaged", "true");

/// What a step saved before changing anything, to undo it or to keep what a destructive step
/// removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Backup {
    /// EBS snapshots, one per volume.
    EbsSnapshots {
        /// Snapshot ids.
        snapshot_ids: Vec<String>,
    },
    /// An RDS snapshot.
    DbSnapshot {
        /// Snapshot identifier.
        snapshot_id: String,
    },
    /// The attribute's previous value, recorded (security-group rules, bucket settings).
    Recorded {
        /// The value as read before the change.
        value: Value,
    },
    /// An encryption swap's progress: what it found and what it made so far.
    VolumeSwap(VolumeSwap),
    /// A storage-encryption migration's names and progress.
    DbMigration(DbMigration),
}

/// Where a multi-step change reports each finished sub-step, before the next begins: θ4
/// journals it, so that a run killed between two sub-steps is undone from what they made.
#[async_trait]
pub trait Checkpoint: Send + Sync {
    /// `progress` holds everything the sub-steps so far found and made; it is durable when
    /// this returns.
    async fn reached(&self, progress: Backup);
}

/// A [`Checkpoint`] that keeps nothing: for single-step changes and callers without a journal.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCheckpoint;

#[async_trait]
impl Checkpoint for NoCheckpoint {
    async fn reached(&self, _: Backup) {}
}

/// The actions on one resource a step needs. Object-safe: θ4 holds `Arc<dyn StepExecutor>`,
/// and decorators (the execution-time guardrails) wrap any implementation.
#[async_trait]
pub trait StepExecutor: Send + Sync {
    /// The live value of the step's attribute; `null` when the resource (or, for a rule, the
    /// rule) is gone.
    async fn read(&self, step: &Step) -> Result<Value, DeployError>;

    /// Takes the backup a risky step needs before it acts.
    async fn backup(&self, step: &Step) -> Result<Option<Backup>, DeployError>;

    /// Makes the change; a multi-step change reports each sub-step to `checkpoint`.
    async fn apply(&self, step: &Step, checkpoint: &dyn Checkpoint) -> Result<(), DeployError>;

    /// Puts the attribute back to the step's precondition.
    async fn revert(&self, step: &Step, backup: Option<&Backup>) -> Result<(), DeployError>;

    /// Tags the resource `MiyabiManaged=true`.
    async fn tag(&self, step: &Step) -> Result<(), DeployError>;

    /// Brings the step's resource back into service if an interrupted step left it down (an
    /// instance stopped for a resize is started). Nothing by default.
    async fn restore_service(&self, step: &Step) -> Result<(), DeployError> {
        let _ = step;
        Ok(())
    }
}

pub use crate::aws::wait::WaitPolicy;

/// [`StepExecutor`] over the AWS SDK clients of the plan's Regions.
#[derive(Debug, Clone)]
pub struct SdkExecutor {
    clients: BTreeMap<String, RegionClients>,
    owners: OwnerDirectory,
    wait: WaitPolicy,
    /// Per Region: the instance states every wait of the Region polls, one read a round.
    states: Arc<BTreeMap<String, Coalesced<String>>>,
}

impl SdkExecutor {
    /// The clients of `regions` from the session `aws`.
    pub async fn connect(regions: &[String], aws: &AwsSession) -> Self {
        let mut clients = BTreeMap::new();
        for region in regions {
            clients.insert(region.clone(), aws.clients(region).await);
        }
        let wait = WaitPolicy::default();
        Self {
            states: Self::shared_state_reads(&clients, wait),
            clients,
            owners: OwnerDirectory::default(),
            wait,
        }
    }

    /// Replaces the wait policy.
    #[must_use]
    pub fn with_wait(mut self, wait: WaitPolicy) -> Self {
        self.wait = wait;
        self.states = Self::shared_state_reads(&self.clients, wait);
        self
    }

    /// A round at most every half poll: each wait's poll finds one started within half a poll.
    fn shared_state_reads(
        clients: &BTreeMap<String, RegionClients>,
        wait: WaitPolicy,
    ) -> Arc<BTreeMap<String, Coalesced<String>>> {
        Arc::new(
            clients
                .keys()
                .map(|region| (region.clone(), Coalesced::new(wait.poll / 2)))
                .collect(),
        )
    }

    fn clients(&self, step: &Step) -> Result<&RegionClients, DeployError> {
        let region = &step.change.resource.region;
        self.clients.get(region).ok_or_else(|| DeployError::Unsupported {
            step: step.id.clone(),
            reason: format!("no client for Region {region}"),
        })
    }

    /// The resource as θ1 would capture it, as JSON; `None` when it is gone.
    async fn resource(&self, step: &Step) -> Result<Option<Value>, DeployError> {
        let c = self.clients(step)?;
        let id = step.change.resource.id.clone();
        let ids = std::slice::from_ref(&id);
        let found = match step.change.resource.kind {
            ResourceKind::Ec2Instance => first(ec2::instances(&c.ec2, &self.owners, ids).await.map(|(v, _)| v)),
            ResourceKind::EbsVolume => first(ec2::volumes(&c.ec2, &self.owners, ids).await),
            ResourceKind::SecurityGroup => first(ec2::security_groups(&c.ec2, &self.owners, ids).await.map(|(v, _)| v)),
            ResourceKind::ElasticIp => ec2::addresses(&c.ec2, &self.owners)
                .await
                .map_err(DeployError::from)
                .map(|all| {
                    all.into_iter()
                        .find(|a| a.allocation_id == id)
                        .and_then(|a| to_json(&a))
                }),
            ResourceKind::RdsInstance => first(rds::db_instances(&c.rds, &self.owners, Some(&id)).await),
            ResourceKind::S3Bucket => {
                let listed = s3::ListedBucket {
                    name: id,
                    region: Some(c.region.clone()),
                    created: None,
                };
                Box::pin(s3::describe(&c.s3, listed, self.owners.persona("s3")))
                    .await
                    .map(|b| to_json(&b))
                    .map_err(DeployError::from)
            }
            other => Err(no_changes_on(step, other)),
        };
        match found {
            // Describing a deleted resource by id is an error in EC2 and RDS: the resource is gone.
            Err(DeployError::Aws(e)) if e.code().is_some_and(is_not_found) => Ok(None),
            other => other,
        }
    }

    /// The Region's shared reads of instance states.
    fn state_reads(&self, step: &Step) -> Result<&Coalesced<String>, DeployError> {
        let region = &step.change.resource.region;
        self.states.get(region).ok_or_else(|| DeployError::Unsupported {
            step: step.id.clone(),
            reason: format!("no client for Region {region}"),
        })
    }

    /// The state of instance `id` (`gone` when EC2 no longer lists it), from a read that
    /// started after this call.
    async fn instance_state(&self, step: &Step, id: &str) -> Result<String, DeployError> {
        let c = self.clients(step)?;
        let found = self
            .state_reads(step)?
            .get(id, |ids: Vec<String>| async move {
                ec2::instance_states(&c.ec2, &ids).await
            })
            .await?;
        Ok(found.unwrap_or_else(|| "gone".to_owned()))
    }

    /// Polls `read` under the wait policy until it returns `want`.
    pub(super) async fn wait_until<F, Fut>(
        &self,
        step: &Step,
        what: &str,
        read: F,
        want: &str,
    ) -> Result<(), DeployError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<String, DeployError>>,
    {
        match wait::until(self.wait, read, |state| state == want).await {
            Ok(_) => Ok(()),
            Err(WaitError::Read(e)) => Err(e),
            Err(WaitError::Timeout { last, after }) => Err(DeployError::Timeout {
                step: step.id.clone(),
                waiting_for: format!("{what} (still {last})"),
                after,
            }),
        }
    }

    /// Waits until instance `id` is in state `want`. Every wait in the Region polls through
    /// one `DescribeInstances` a round.
    async fn wait_for_state(&self, step: &Step, id: &str, want: &str) -> Result<(), DeployError> {
        let _watching = self.state_reads(step)?.watch(id);
        match wait::until(self.wait, || self.instance_state(step, id), |state| state == want).await {
            Ok(_) => Ok(()),
            Err(WaitError::Read(e)) => Err(e),
            Err(WaitError::Timeout { last, after }) => Err(DeployError::Timeout {
                step: step.id.clone(),
                waiting_for: format!("{id} to be {want} (still {last})"),
                after,
            }),
        }
    }

    async fn stop(&self, step: &Step, id: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        c.ec2
            .layer
            .call("StopInstances", || {
                c.ec2.client.stop_instances().instance_ids(id).send()
            })
            .await?;
        self.wait_for_state(step, id, "stopped").await
    }

    async fn start(&self, step: &Step, id: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        c.ec2
            .layer
            .call("StartInstances", || {
                c.ec2.client.start_instances().instance_ids(id).send()
            })
            .await?;
        self.wait_for_state(step, id, "running").await
    }

    /// Brings instance `id` to `stopped` from wherever it is (a stop in flight is awaited).
    async fn ensure_stopped(&self, step: &Step, id: &str) -> Result<(), DeployError> {
        match self.instance_state(step, id).await?.as_str() {
            "stopped" => Ok(()),
            "stopping" => self.wait_for_state(step, id, "stopped").await,
            "pending" => {
                self.wait_for_state(step, id, "running").await?;
                self.stop(step, id).await
            }
            _ => self.stop(step, id).await,
        }
    }

    /// Brings instance `id` back to `running` from wherever an interrupted step left it.
    async fn ensure_running(&self, step: &Step, id: &str) -> Result<(), DeployError> {
        match self.instance_state(step, id).await?.as_str() {
            "running" => Ok(()),
            "pending" => self.wait_for_state(step, id, "running").await,
            "stopping" => {
                self.wait_for_state(step, id, "stopped").await?;
                self.start(step, id).await
            }
            _ => self.start(step, id).await,
        }
    }

    /// Stop, wait until stopped, modify the type, start, wait until running: EC2 only changes
    /// the type of a stopped instance.
    async fn resize(&self, step: &Step, to: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        self.stop(step, id).await?;
        c.ec2
            .layer
            .call("ModifyInstanceAttribute", || {
                c.ec2
                    .client
                    .modify_instance_attribute()
                    .instance_id(id)
                    .instance_type(AttributeValue::builder().value(to).build())
                    .send()
            })
            .await?;
        self.start(step, id).await
    }

    async fn set_imds(&self, step: &Step, tokens: HttpTokensState) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        c.ec2
            .layer
            .call("ModifyInstanceMetadataOptions", || {
                c.ec2
                    .client
                    .modify_instance_metadata_options()
                    .instance_id(id)
                    .http_tokens(tokens.clone())
                    .send()
            })
            .await?;
        Ok(())
    }

    /// Removes (`false`) or assigns (`true`) the public IPv4 address of the instance's primary
    /// network interface.
    async fn set_public_ip(&self, step: &Step, assign: bool) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        let out = c
            .ec2
            .layer
            .call("DescribeInstances", || {
                c.ec2.client.describe_instances().instance_ids(id).send()
            })
            .await?;
        let primary = out
            .reservations()
            .iter()
            .flat_map(aws_sdk_ec2::types::Reservation::instances)
            .flat_map(aws_sdk_ec2::types::Instance::network_interfaces)
            .find(|n| {
                n.attachment()
                    .and_then(aws_sdk_ec2::types::InstanceNetworkInterfaceAttachment::device_index)
                    == Some(0)
            })
            .and_then(|n| n.network_interface_id())
            .ok_or_else(|| DeployError::Unsupported {
                step: step.id.clone(),
                reason: format!("{id} has no primary network interface"),
            })?;
        c.ec2
            .layer
            .call("ModifyNetworkInterfaceAttribute", || {
                c.ec2
                    .client
                    .modify_network_interface_attribute()
                    .network_interface_id(primary)
                    .associate_public_ip_address(assign)
                    .send()
            })
            .await?;
        Ok(())
    }

    async fn set_volume_type(&self, step: &Step, to: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        c.ec2
            .layer
            .call("ModifyVolume", || {
                c.ec2.client.modify_volume().volume_id(id).volume_type(to.into()).send()
            })
            .await?;
        Ok(())
    }

    async fn db_setting(&self, step: &Step, value: &Value) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        let request = || {
            let r = c
                .rds
                .client
                .modify_db_instance()
                .db_instance_identifier(id)
                .apply_immediately(true);
            match step.change.action {
                Action::DisableRdsPublicAccess => r.set_publicly_accessible(value.as_bool()),
                Action::EnableRdsDeletionProtection => r.set_deletion_protection(value.as_bool()),
                Action::EnableRdsBackups => {
                    r.set_backup_retention_period(value.as_i64().and_then(|v| i32::try_from(v).ok()))
                }
                Action::EnableRdsMultiAz => r.set_multi_az(value.as_bool()),
                _ => r.set_db_instance_class(value.as_str().map(str::to_owned)),
            }
        };
        c.rds.layer.call("ModifyDBInstance", || request().send()).await?;
        Ok(())
    }
}

#[async_trait]
impl StepExecutor for SdkExecutor {
    async fn read(&self, step: &Step) -> Result<Value, DeployError> {
        match step.change.action {
            Action::EncryptVolume => return self.swap_read(step).await,
            Action::EnableAccessLogging => return self.logging_target(step).await,
            a if a.is_account_setting() => return self.account_setting(step).await,
            _ => {}
        }
        let Some(resource) = Box::pin(self.resource(step)).await? else {
            return Ok(Value::Null);
        };
        let change = &step.change;
        Ok(match change.action {
            // The rule is the value: present or not.
            Action::RevokeIngress => {
                let present = resource
                    .get("ingress")
                    .and_then(Value::as_array)
                    .is_some_and(|rules| rules.contains(&change.current));
                if present {
                    change.current.clone()
                } else {
                    Value::Null
                }
            }
            Action::ReleaseAddress => resource.get("public_ip").cloned().unwrap_or(Value::Null),
            Action::RestrictDefaultGroup => serde_json::json!({
                "ingress": resource.get("ingress"),
                "egress": resource.get("egress"),
            }),
            Action::DeleteVolume => {
                let mut found = serde_json::json!({
                    "volume_type": resource.get("volume_type"),
                    "size_gib": resource.get("size_gib"),
                    "state": resource.get("state"),
                });
                if let Some(copy) = resource.pointer(&format!("/tags/{REPLACED_BY_TAG}")) {
                    found["replaced_by"] = copy.clone();
                }
                found
            }
            _ => resource.get(&change.attribute).cloned().unwrap_or(Value::Null),
        })
    }

    async fn backup(&self, step: &Step) -> Result<Option<Backup>, DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        match step.change.action {
            Action::DeleteVolume if self.replacement_holds_data(step).await? => Ok(Some(Backup::Recorded {
                value: step.change.current.clone(),
            })),
            Action::DeleteVolume => {
                let snapshot = c
                    .ec2
                    .layer
                    .call("CreateSnapshot", || {
                        c.ec2
                            .client
                            .create_snapshot()
                            .volume_id(id)
                            .description(format!("miyabi backup of {id} before deletion"))
                            .send()
                    })
                    .await?;
                Ok(Some(Backup::EbsSnapshots {
                    snapshot_ids: snapshot.snapshot_id().into_iter().map(str::to_owned).collect(),
                }))
            }
            Action::TerminateInstance => {
                let (found, _) = ec2::instances(&c.ec2, &self.owners, std::slice::from_ref(id)).await?;
                let mut snapshot_ids = Vec::new();
                for volume in found.iter().flat_map(|i| i.volume_ids.iter()) {
                    let snapshot = c
                        .ec2
                        .layer
                        .call("CreateSnapshot", || {
                            c.ec2
                                .client
                                .create_snapshot()
                                .volume_id(volume)
                                .description(format!("miyabi backup of {volume} of {id} before termination"))
                                .send()
                        })
                        .await?;
                    snapshot_ids.extend(snapshot.snapshot_id().map(str::to_owned));
                }
                Ok(Some(Backup::EbsSnapshots { snapshot_ids }))
            }
            Action::ResizeDbInstance => {
                let snapshot_id = format!("miyabi-{id}-{}", &step.id[..8.min(step.id.len())]);
                c.rds
                    .layer
                    .call("CreateDBSnapshot", || {
                        c.rds
                            .client
                            .create_db_snapshot()
                            .db_instance_identifier(id)
                            .db_snapshot_identifier(&snapshot_id)
                            .send()
                    })
                    .await?;
                Ok(Some(Backup::DbSnapshot { snapshot_id }))
            }
            Action::RevokeIngress
            | Action::RestrictDefaultGroup
            | Action::ReleaseAddress
            | Action::BlockPublicAccess
            | Action::EnableDefaultEncryption
            | Action::EnableVersioning
            | Action::EnableAccessLogging
            | Action::EnableEbsDefaultEncryption
            | Action::BlockSnapshotPublicAccess
            | Action::RequireImdsV2ByDefault => Ok(Some(Backup::Recorded {
                value: self.read(step).await?,
            })),
            _ => Ok(None),
        }
    }

    async fn apply(&self, step: &Step, checkpoint: &dyn Checkpoint) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        let desired = &step.change.desired;
        match step.change.action {
            Action::RequireImdsV2 => self.set_imds(step, HttpTokensState::Required).await,
            Action::ResizeInstance => self.resize(step, desired.as_str().unwrap_or_default()).await,
            Action::StopInstance => self.stop(step, id).await,
            Action::MigrateVolumeToGp3 => self.set_volume_type(step, desired.as_str().unwrap_or("gp3")).await,
            Action::RevokeIngress => self.ingress(step, true).await,
            Action::BlockPublicAccess | Action::EnableDefaultEncryption | Action::EnableVersioning => {
                self.bucket_setting(step, desired).await
            }
            Action::DisableRdsPublicAccess
            | Action::EnableRdsBackups
            | Action::EnableRdsDeletionProtection
            | Action::EnableRdsMultiAz
            | Action::ResizeDbInstance => self.db_setting(step, desired).await,
            Action::EncryptVolume => self.swap_apply(step, checkpoint).await,
            Action::RemovePublicIp => self.set_public_ip(step, false).await,
            Action::RestrictDefaultGroup => self.group_rules(step, &step.change.current, false).await,
            Action::EnableAccessLogging => self.set_logging(step, desired).await,
            Action::EncryptDbStorage => self.migrate_apply(step, checkpoint).await,
            Action::EnableEbsDefaultEncryption | Action::BlockSnapshotPublicAccess | Action::RequireImdsV2ByDefault => {
                self.set_account_setting(step, desired).await
            }
            Action::ReleaseAddress => {
                c.ec2
                    .layer
                    .call("ReleaseAddress", || {
                        c.ec2.client.release_address().allocation_id(id).send()
                    })
                    .await?;
                Ok(())
            }
            Action::DeleteVolume => {
                c.ec2
                    .layer
                    .call("DeleteVolume", || c.ec2.client.delete_volume().volume_id(id).send())
                    .await?;
                Ok(())
            }
            Action::TerminateInstance => {
                c.ec2
                    .layer
                    .call("TerminateInstances", || {
                        c.ec2.client.terminate_instances().instance_ids(id).send()
                    })
                    .await?;
                Ok(())
            }
        }
    }

    async fn revert(&self, step: &Step, backup: Option<&Backup>) -> Result<(), DeployError> {
        let before = match backup {
            Some(Backup::Recorded { value }) => value,
            _ => &step.precondition.equals,
        };
        match step.change.action {
            Action::RequireImdsV2 => self.set_imds(step, HttpTokensState::Optional).await,
            Action::ResizeInstance => self.resize(step, before.as_str().unwrap_or_default()).await,
            Action::StopInstance => self.start(step, &step.change.resource.id).await,
            Action::MigrateVolumeToGp3 => self.set_volume_type(step, before.as_str().unwrap_or("gp2")).await,
            Action::RevokeIngress => self.ingress(step, false).await,
            Action::BlockPublicAccess | Action::EnableDefaultEncryption | Action::EnableVersioning => {
                self.bucket_setting(step, before).await
            }
            Action::DisableRdsPublicAccess
            | Action::EnableRdsBackups
            | Action::EnableRdsDeletionProtection
            | Action::EnableRdsMultiAz
            | Action::ResizeDbInstance => self.db_setting(step, before).await,
            Action::EncryptVolume => self.swap_revert(step, backup).await,
            Action::RemovePublicIp => self.set_public_ip(step, true).await,
            Action::RestrictDefaultGroup => self.group_rules(step, before, true).await,
            Action::EnableAccessLogging => self.set_logging(step, before).await,
            Action::EncryptDbStorage => self.migrate_revert(step, backup).await,
            Action::EnableEbsDefaultEncryption | Action::BlockSnapshotPublicAccess | Action::RequireImdsV2ByDefault => {
                self.set_account_setting(step, before).await
            }
            Action::ReleaseAddress | Action::DeleteVolume | Action::TerminateInstance => {
                Err(DeployError::Irreversible {
                    step: step.id.clone(),
                    backup: backup.cloned(),
                })
            }
        }
    }

    async fn restore_service(&self, step: &Step) -> Result<(), DeployError> {
        let stops_by_design = matches!(step.change.action, Action::StopInstance | Action::TerminateInstance);
        if step.change.resource.kind != ResourceKind::Ec2Instance || stops_by_design {
            return Ok(());
        }
        let id = &step.change.resource.id;
        match self.instance_state(step, id).await?.as_str() {
            "stopped" | "stopping" => self.ensure_running(step, id).await,
            _ => Ok(()),
        }
    }

    async fn tag(&self, step: &Step) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        let (key, value) = MANAGED_TAG;
        match step.change.resource.kind {
            ResourceKind::Ec2Instance
            | ResourceKind::EbsVolume
            | ResourceKind::SecurityGroup
            | ResourceKind::ElasticIp => {
                let tag = aws_sdk_ec2::types::Tag::builder().key(key).value(value).build();
                c.ec2
                    .layer
                    .call("CreateTags", || {
                        c.ec2.client.create_tags().resources(id).tags(tag.clone()).send()
                    })
                    .await?;
            }
            ResourceKind::RdsInstance => {
                let (found,) = (rds::db_instances(&c.rds, &self.owners, Some(id)).await?,);
                let Some(arn) = found.first().map(|d| d.arn.clone()) else {
                    return Ok(());
                };
                let tag = aws_sdk_rds::types::Tag::builder().key(key).value(value).build();
                c.rds
                    .layer
                    .call("AddTagsToResource", || {
                        c.rds
                            .client
                            .add_tags_to_resource()
                            .resource_name(&arn)
                            .tags(tag.clone())
                            .send()
                    })
                    .await?;
            }
            ResourceKind::S3Bucket => {
                // PutBucketTagging replaces the set: keep what is there.
                let existing =
                    c.s3.layer
                        .call("GetBucketTagging", || {
                            c.s3.client.get_bucket_tagging().bucket(id).send()
                        })
                        .await
                        .map(|o| o.tag_set().to_vec());
                let mut tags = match existing {
                    Ok(tags) => tags,
                    Err(e) if e.code() == Some("NoSuchTagSet") => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
                tags.retain(|t| t.key() != key);
                let invalid = |e: &dyn std::fmt::Display| DeployError::Unsupported {
                    step: step.id.clone(),
                    reason: e.to_string(),
                };
                tags.push(
                    aws_sdk_s3::types::Tag::builder()
                        .key(key)
                        .value(value)
                        .build()
                        .map_err(|e| invalid(&e))?,
                );
                let tagging = aws_sdk_s3::types::Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .map_err(|e| invalid(&e))?;
                c.s3.layer
                    .call("PutBucketTagging", || {
                        c.s3.client
                            .put_bucket_tagging()
                            .bucket(id)
                            .tagging(tagging.clone())
                            .send()
                    })
                    .await?;
            }
            // An account setting has nothing to carry a tag.
            ResourceKind::Account => {}
            other => return Err(no_changes_on(step, other)),
        }
        Ok(())
    }
}

/// No action of a plan changes a resource of this kind.
fn no_changes_on(step: &Step, kind: ResourceKind) -> DeployError {
    DeployError::Unsupported {
        step: step.id.clone(),
        reason: format!("no change is applied to a resource of kind {kind:?}"),
    }
}

fn first<T: Serialize>(found: Result<Vec<T>, crate::aws::AwsError>) -> Result<Option<Value>, DeployError> {
    Ok(found?.first().and_then(to_json))
}

fn to_json<T: Serialize>(value: &T) -> Option<Value> {
    serde_json::to_value(value).ok()
}

/// Error codes that mean the resource is gone.
fn is_not_found(code: &str) -> bool {
    code.contains("NotFound") || code.starts_with("InvalidInstanceID") || code.starts_with("InvalidVolume")
}

fn unsupported(step: &Step) -> DeployError {
    DeployError::Unsupported {
        step: step.id.clone(),
        reason: format!("{:?} has no SDK implementation", step.change.action),
    }
}
