//! RDS storage encryption by migration. RDS cannot encrypt a DB instance's storage in place: a
//! snapshot is copied with a KMS key, a new instance is restored from the encrypted copy with
//! the old one's settings, and the two swap identifiers, so that the new instance takes the old
//! one's endpoint. Then the unencrypted snapshot and the old instance are deleted; the encrypted
//! copy is kept as the backup.
//!
//! Every name the migration creates is derived from the step up front and recorded before the
//! first change, so that reverting (after a fault, or in the next run after a SIGKILL) finds
//! what exists from the live estate. Until the old instance is deleted, reverting gives the
//! estate back as it was; after that, only the encrypted copy remains: the step is destructive
//! and waits for approval.
//!
//! Writes that reach the old instance between the snapshot and the cutover stay on it, and go
//! with it: the cutover is for a maintenance window, which is one more reason for approval.

use aws_sdk_rds::types::{DbInstance, Tag};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Backup, Checkpoint, SdkExecutor, MANAGED_TAG};
use crate::phases::deployment::DeployError;
use crate::plan::execution::Step;

/// The KMS key the copy is encrypted with: the account's AWS-managed key for RDS.
pub const RDS_KMS_KEY: &str = "alias/aws/rds";

/// How far a migration got, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationStage {
    /// The names are recorded; nothing changed yet.
    Named,
    /// The unencrypted snapshot exists.
    Snapshotted,
    /// Its encrypted copy exists.
    Copied,
    /// The new instance is restored, under its temporary identifier.
    Restored,
    /// The old instance carries its temporary identifier.
    OldRenamed,
    /// The new instance carries the old one's identifier: the cutover is done.
    NewRenamed,
    /// The unencrypted snapshot is deleted.
    Cleaned,
    /// The old instance is deleted: done, and no longer reversible.
    OldDeleted,
}

/// A migration's names and progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbMigration {
    /// The unencrypted snapshot.
    pub snapshot_id: String,
    /// Its encrypted copy, kept as the backup.
    pub encrypted_snapshot_id: String,
    /// The new instance's identifier until the cutover.
    pub new_instance_id: String,
    /// The old instance's identifier after the cutover, until it is deleted.
    pub old_instance_id: String,
    /// The last sub-step finished.
    pub reached: MigrationStage,
}

impl DbMigration {
    /// The names for migrating `id` in step `step_id`: valid RDS identifiers (a letter first,
    /// at most 63 characters, no double or trailing hyphen).
    #[must_use]
    pub fn named(id: &str, step_id: &str) -> Self {
        let stem: String = id.chars().take(40).collect();
        let stem = stem.trim_end_matches('-');
        let tag = &step_id[..8.min(step_id.len())];
        Self {
            snapshot_id: format!("miyabi-{tag}-{stem}-plain"),
            encrypted_snapshot_id: format!("miyabi-{tag}-{stem}-encrypted"),
            new_instance_id: format!("{stem}-enc-{tag}"),
            old_instance_id: format!("{stem}-old-{tag}"),
            reached: MigrationStage::Named,
        }
    }
}

impl SdkExecutor {
    /// Runs the migration, reporting each sub-step to `checkpoint`.
    pub(super) async fn migrate_apply(&self, step: &Step, checkpoint: &dyn Checkpoint) -> Result<(), DeployError> {
        let id = step.change.resource.id.as_str();
        // RDS snapshots only an available instance: a class change or a Multi-AZ conversion
        // earlier in the run may still be in progress.
        self.wait_for_db(step, id).await?;
        let old = self
            .describe_db(step, id)
            .await?
            .ok_or_else(|| unsupported(step, format!("{id} no longer exists")))?;
        let mut m = DbMigration::named(id, &step.id);
        reach(checkpoint, &mut m, MigrationStage::Named).await;

        let c = self.clients(step)?;
        let (rds, layer) = (&c.rds.client, &c.rds.layer);
        layer
            .call("CreateDBSnapshot", || {
                rds.create_db_snapshot()
                    .db_instance_identifier(id)
                    .db_snapshot_identifier(&m.snapshot_id)
                    .send()
            })
            .await?;
        self.wait_for_snapshot(step, &m.snapshot_id).await?;
        reach(checkpoint, &mut m, MigrationStage::Snapshotted).await;

        layer
            .call("CopyDBSnapshot", || {
                rds.copy_db_snapshot()
                    .source_db_snapshot_identifier(&m.snapshot_id)
                    .target_db_snapshot_identifier(&m.encrypted_snapshot_id)
                    .kms_key_id(RDS_KMS_KEY)
                    .copy_tags(true)
                    .send()
            })
            .await?;
        self.wait_for_snapshot(step, &m.encrypted_snapshot_id).await?;
        reach(checkpoint, &mut m, MigrationStage::Copied).await;

        self.restore_like(step, &old, &m).await?;
        reach(checkpoint, &mut m, MigrationStage::Restored).await;

        self.rename_db(step, id, &m.old_instance_id).await?;
        reach(checkpoint, &mut m, MigrationStage::OldRenamed).await;

        self.rename_db(step, &m.new_instance_id, id).await?;
        reach(checkpoint, &mut m, MigrationStage::NewRenamed).await;

        self.delete_db_snapshot(step, &m.snapshot_id).await?;
        reach(checkpoint, &mut m, MigrationStage::Cleaned).await;

        self.delete_db(step, &m.old_instance_id).await?;
        reach(checkpoint, &mut m, MigrationStage::OldDeleted).await;
        Ok(())
    }

    /// Puts the old instance back under its identifier and removes what the migration made.
    /// Without a record nothing was changed; once the old instance is deleted it cannot be.
    pub(super) async fn migrate_revert(&self, step: &Step, backup: Option<&Backup>) -> Result<(), DeployError> {
        let Some(Backup::DbMigration(m)) = backup else {
            return Ok(());
        };
        if m.reached == MigrationStage::OldDeleted {
            return Err(DeployError::Irreversible {
                step: step.id.clone(),
                backup: backup.cloned(),
            });
        }
        let id = step.change.resource.id.as_str();
        if self.describe_db(step, &m.old_instance_id).await?.is_some() {
            // The cutover began: whatever holds the identifier now is the new instance.
            if self.describe_db(step, id).await?.is_some() {
                self.rename_db(step, id, &m.new_instance_id).await?;
            }
            self.rename_db(step, &m.old_instance_id, id).await?;
        }
        if self.describe_db(step, &m.new_instance_id).await?.is_some() {
            self.delete_db(step, &m.new_instance_id).await?;
        }
        for snapshot in [&m.encrypted_snapshot_id, &m.snapshot_id] {
            self.delete_db_snapshot(step, snapshot).await?;
        }
        Ok(())
    }

    async fn describe_db(&self, step: &Step, id: &str) -> Result<Option<DbInstance>, DeployError> {
        let c = self.clients(step)?;
        let found = c
            .rds
            .layer
            .call("DescribeDBInstances", || {
                c.rds.client.describe_db_instances().db_instance_identifier(id).send()
            })
            .await;
        match found {
            Ok(out) => Ok(out.db_instances().first().cloned()),
            Err(e) if e.code() == Some("DBInstanceNotFound") || e.code() == Some("DBInstanceNotFoundFault") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Restores the encrypted copy as `m.new_instance_id` with `old`'s settings and waits
    /// until it is available.
    async fn restore_like(&self, step: &Step, old: &DbInstance, m: &DbMigration) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let mut tags: Vec<Tag> = old
            .tag_list()
            .iter()
            .filter(|t| t.key().is_some_and(|k| !k.starts_with("aws:") && k != MANAGED_TAG.0))
            .cloned()
            .collect();
        tags.push(Tag::builder().key(MANAGED_TAG.0).value(MANAGED_TAG.1).build());
        let groups: Vec<String> = old
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
            .collect();
        c.rds
            .layer
            .call("RestoreDBInstanceFromDBSnapshot", || {
                c.rds
                    .client
                    .restore_db_instance_from_db_snapshot()
                    .db_instance_identifier(&m.new_instance_id)
                    .db_snapshot_identifier(&m.encrypted_snapshot_id)
                    .set_db_instance_class(old.db_instance_class().map(str::to_owned))
                    .set_db_subnet_group_name(
                        old.db_subnet_group()
                            .and_then(|g| g.db_subnet_group_name())
                            .map(str::to_owned),
                    )
                    .set_vpc_security_group_ids(Some(groups.clone()).filter(|g| !g.is_empty()))
                    .set_multi_az(old.multi_az())
                    .set_publicly_accessible(old.publicly_accessible())
                    .set_port(old.endpoint().and_then(aws_sdk_rds::types::Endpoint::port))
                    .set_storage_type(old.storage_type().map(str::to_owned))
                    .set_auto_minor_version_upgrade(old.auto_minor_version_upgrade())
                    .set_copy_tags_to_snapshot(old.copy_tags_to_snapshot())
                    .set_deletion_protection(old.deletion_protection())
                    .set_enable_iam_database_authentication(old.iam_database_authentication_enabled())
                    .set_backup_retention_period(old.backup_retention_period())
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        self.wait_for_db(step, &m.new_instance_id).await
    }

    /// Renames DB instance `from` to `to` at once and waits until it answers under `to`.
    async fn rename_db(&self, step: &Step, from: &str, to: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        c.rds
            .layer
            .call("ModifyDBInstance", || {
                c.rds
                    .client
                    .modify_db_instance()
                    .db_instance_identifier(from)
                    .new_db_instance_identifier(to)
                    .apply_immediately(true)
                    .send()
            })
            .await?;
        self.wait_for_db(step, to).await
    }

    /// Deletes DB instance `id` without a final snapshot (its data is in the encrypted copy,
    /// or, on a revert, it was made by this step), lifting deletion protection first.
    async fn delete_db(&self, step: &Step, id: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        if self
            .describe_db(step, id)
            .await?
            .is_some_and(|d| d.deletion_protection() == Some(true))
        {
            c.rds
                .layer
                .call("ModifyDBInstance", || {
                    c.rds
                        .client
                        .modify_db_instance()
                        .db_instance_identifier(id)
                        .deletion_protection(false)
                        .apply_immediately(true)
                        .send()
                })
                .await?;
        }
        c.rds
            .layer
            .call("DeleteDBInstance", || {
                c.rds
                    .client
                    .delete_db_instance()
                    .db_instance_identifier(id)
                    .skip_final_snapshot(true)
                    .delete_automated_backups(true)
                    .send()
            })
            .await?;
        self.wait_until_db(step, id, "gone").await
    }

    async fn delete_db_snapshot(&self, step: &Step, id: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let deleted = c
            .rds
            .layer
            .call("DeleteDBSnapshot", || {
                c.rds.client.delete_db_snapshot().db_snapshot_identifier(id).send()
            })
            .await;
        match deleted {
            Err(e) if e.code() != Some("DBSnapshotNotFound") && e.code() != Some("DBSnapshotNotFoundFault") => {
                Err(e.into())
            }
            _ => Ok(()),
        }
    }

    async fn wait_for_db(&self, step: &Step, id: &str) -> Result<(), DeployError> {
        self.wait_until_db(step, id, "available").await
    }

    /// Waits until DB instance `id`'s status is `want` (`gone` once RDS no longer lists it).
    async fn wait_until_db(&self, step: &Step, id: &str, want: &str) -> Result<(), DeployError> {
        let read = || async {
            Ok::<_, DeployError>(
                self.describe_db(step, id)
                    .await?
                    .and_then(|d| d.db_instance_status().map(str::to_owned))
                    .unwrap_or_else(|| "gone".to_owned()),
            )
        };
        self.wait_until(step, &format!("DB instance {id} to be {want}"), read, want)
            .await
    }

    async fn wait_for_snapshot(&self, step: &Step, id: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let read = || async {
            let out = c
                .rds
                .layer
                .call("DescribeDBSnapshots", || {
                    c.rds.client.describe_db_snapshots().db_snapshot_identifier(id).send()
                })
                .await?;
            Ok::<_, DeployError>(
                out.db_snapshots()
                    .first()
                    .and_then(|s| s.status().map(str::to_owned))
                    .unwrap_or_else(|| "gone".to_owned()),
            )
        };
        self.wait_until(step, &format!("DB snapshot {id} to be available"), read, "available")
            .await
    }
}

fn unsupported(step: &Step, reason: String) -> DeployError {
    DeployError::Unsupported {
        step: step.id.clone(),
        reason,
    }
}

/// Records that `m` reached `stage`, at `checkpoint`, before the next sub-step begins.
async fn reach(checkpoint: &dyn Checkpoint, m: &mut DbMigration, stage: MigrationStage) {
    m.reached = stage;
    checkpoint.reached(Backup::DbMigration(m.clone())).await;
}
