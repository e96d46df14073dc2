//! EBS encryption by swap. EBS cannot encrypt a volume in place, so an encrypted copy takes
//! its place: stop the instance (so that the copy holds every write), snapshot, create an
//! encrypted volume from the snapshot, detach the old volume, attach the copy at the same
//! device, start the instance, mark the old volume as replaced, delete the snapshot.
//!
//! Each sub-step reports to the [`Checkpoint`] before the next begins, so that θ4's journal
//! knows what exists. Reverting works from the live estate as much as from that record: the
//! copy and the snapshot carry a `MiyabiReplaces` tag from their creation, so that one made by
//! a process killed before it could journal it is found and removed too.
//!
//! The old volume is kept, detached, with a `MiyabiReplacedBy` tag: until it is deleted (a
//! destructive step of a later iteration) the swap can be undone to an equal estate.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, Volume, VolumeState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Backup, Checkpoint, SdkExecutor, MANAGED_TAG};
use crate::phases::deployment::DeployError;
use crate::plan::execution::Step;

pub use crate::plan::{REPLACED_BY_TAG, REPLACES_TAG};

/// How far a swap got, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwapStage {
    /// The attachment and the instance's state are recorded; nothing changed yet.
    Read,
    /// The instance is stopped.
    Stopped,
    /// The snapshot exists.
    Snapshotted,
    /// The encrypted copy exists, available.
    Created,
    /// The old volume is detached.
    Detached,
    /// The copy is attached in its place.
    Attached,
    /// The instance runs again (or stays stopped, if it was).
    Started,
    /// The old volume carries `MiyabiReplacedBy`.
    Marked,
    /// The snapshot is deleted: done.
    Cleaned,
}

/// A swap's record: what it found and what it made, as each sub-step finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeSwap {
    /// The instance the volume is attached to.
    pub instance_id: String,
    /// The volume's device name on it.
    pub device: String,
    /// Whether the instance was running (it is started again only then).
    pub was_running: bool,
    /// The snapshot, once taken.
    pub snapshot_id: Option<String>,
    /// The encrypted copy, once created.
    pub encrypted_volume_id: Option<String>,
    /// The last sub-step finished.
    pub reached: SwapStage,
}

impl SdkExecutor {
    /// `{"encrypted", "instance_id"}` of the volume in the step's place: the encrypted copy
    /// once the old volume names one, the volume itself before.
    pub(super) async fn swap_read(&self, step: &Step) -> Result<Value, DeployError> {
        let Some(volume) = self.describe_volume(step, &step.change.resource.id).await? else {
            return Ok(Value::Null);
        };
        let in_place = match tag(&volume, REPLACED_BY_TAG) {
            Some(copy) => self.describe_volume(step, &copy).await?,
            None => Some(volume),
        };
        Ok(in_place.map_or(Value::Null, |v| {
            json!({
                "encrypted": v.encrypted().unwrap_or(false),
                "instance_id": v.attachments().first().and_then(|a| a.instance_id()),
            })
        }))
    }

    /// Runs the swap, reporting each sub-step to `checkpoint`.
    pub(super) async fn swap_apply(&self, step: &Step, checkpoint: &dyn Checkpoint) -> Result<(), DeployError> {
        let volume_id = &step.change.resource.id;
        let volume = self
            .describe_volume(step, volume_id)
            .await?
            .ok_or_else(|| unsupported(step, format!("{volume_id} no longer exists")))?;
        let attachment = volume
            .attachments()
            .first()
            .ok_or_else(|| unsupported(step, format!("{volume_id} is not attached")))?;
        let (Some(instance_id), Some(device)) = (attachment.instance_id(), attachment.device()) else {
            return Err(unsupported(
                step,
                format!("{volume_id}'s attachment names no instance or device"),
            ));
        };
        let state = self.instance_state(step, instance_id).await?;
        let mut swap = VolumeSwap {
            instance_id: instance_id.to_owned(),
            device: device.to_owned(),
            was_running: matches!(state.as_str(), "running" | "pending"),
            snapshot_id: None,
            encrypted_volume_id: None,
            reached: SwapStage::Read,
        };
        reach(checkpoint, &mut swap, SwapStage::Read).await;

        self.ensure_stopped(step, instance_id).await?;
        reach(checkpoint, &mut swap, SwapStage::Stopped).await;

        let snapshot_id = self.snapshot(step, volume_id).await?;
        swap.snapshot_id = Some(snapshot_id.clone());
        reach(checkpoint, &mut swap, SwapStage::Snapshotted).await;

        let copy = self.create_encrypted_copy(step, &volume, &snapshot_id).await?;
        swap.encrypted_volume_id = Some(copy.clone());
        reach(checkpoint, &mut swap, SwapStage::Created).await;

        self.detach(step, volume_id, instance_id, device).await?;
        reach(checkpoint, &mut swap, SwapStage::Detached).await;

        self.attach(step, &copy, instance_id, device).await?;
        reach(checkpoint, &mut swap, SwapStage::Attached).await;

        if swap.was_running {
            self.start(step, instance_id).await?;
        }
        reach(checkpoint, &mut swap, SwapStage::Started).await;

        self.set_tag(step, volume_id, REPLACED_BY_TAG, &copy).await?;
        reach(checkpoint, &mut swap, SwapStage::Marked).await;

        self.delete_snapshot(step, &snapshot_id).await?;
        reach(checkpoint, &mut swap, SwapStage::Cleaned).await;
        Ok(())
    }

    /// Puts the old volume back in its place and removes what the swap made, from wherever it
    /// stopped. Without a record nothing was changed (the first record precedes any change).
    pub(super) async fn swap_revert(&self, step: &Step, backup: Option<&Backup>) -> Result<(), DeployError> {
        let Some(Backup::VolumeSwap(swap)) = backup else {
            return Ok(());
        };
        let volume_id = &step.change.resource.id;
        let instance = swap.instance_id.as_str();
        let mut copies = self.tagged_volumes(step, volume_id).await?;
        if let Some(known) = &swap.encrypted_volume_id {
            if !copies.iter().any(|c| c.volume_id() == Some(known)) {
                copies.extend(self.describe_volume(step, known).await?);
            }
        }
        let original = self
            .describe_volume(step, volume_id)
            .await?
            .ok_or_else(|| unsupported(step, format!("{volume_id}, the volume to put back, no longer exists")))?;
        let in_place = original.attachments().iter().any(|a| a.instance_id() == Some(instance));
        if !in_place {
            self.ensure_stopped(step, instance).await?;
            for copy in &copies {
                let attached_here = copy.attachments().iter().any(|a| a.instance_id() == Some(instance));
                if let (true, Some(id)) = (attached_here, copy.volume_id()) {
                    self.detach(step, id, instance, &swap.device).await?;
                }
            }
            self.attach(step, volume_id, instance, &swap.device).await?;
        }
        if tag(&original, REPLACED_BY_TAG).is_some() {
            self.remove_tag(step, volume_id, REPLACED_BY_TAG).await?;
        }
        for id in copies.iter().filter_map(Volume::volume_id) {
            self.delete_volume(step, id).await?;
        }
        let mut snapshots = self.tagged_snapshots(step, volume_id).await?;
        if let Some(known) = swap.snapshot_id.as_ref().filter(|k| !snapshots.contains(k)) {
            snapshots.push(known.clone());
        }
        for id in &snapshots {
            self.delete_snapshot(step, id).await?;
        }
        if swap.was_running {
            self.ensure_running(step, instance).await?;
        }
        Ok(())
    }

    /// Whether the volume a delete step removes was replaced by an encrypted copy that still
    /// exists: that copy, made while the instance was stopped, is its backup, and a snapshot
    /// (unencrypted, like the volume) would only leave a new finding behind.
    pub(super) async fn replacement_holds_data(&self, step: &Step) -> Result<bool, DeployError> {
        let Some(copy) = step.change.current.get("replaced_by").and_then(Value::as_str) else {
            return Ok(false);
        };
        let copy = self.describe_volume(step, copy).await?;
        Ok(copy.is_some_and(|v| {
            v.encrypted() == Some(true) && tag(&v, REPLACES_TAG).as_deref() == Some(step.change.resource.id.as_str())
        }))
    }

    async fn describe_volume(&self, step: &Step, id: &str) -> Result<Option<Volume>, DeployError> {
        let c = self.clients(step)?;
        let found = c
            .ec2
            .layer
            .call("DescribeVolumes", || {
                c.ec2.client.describe_volumes().volume_ids(id).send()
            })
            .await;
        match found {
            Ok(out) => Ok(out.volumes().first().cloned()),
            Err(e) if e.code().is_some_and(super::is_not_found) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Volumes created to replace `volume_id`, found by their tag.
    async fn tagged_volumes(&self, step: &Step, volume_id: &str) -> Result<Vec<Volume>, DeployError> {
        let c = self.clients(step)?;
        let filter = Filter::builder()
            .name(format!("tag:{REPLACES_TAG}"))
            .values(volume_id)
            .build();
        let out = c
            .ec2
            .layer
            .call("DescribeVolumes", || {
                c.ec2.client.describe_volumes().filters(filter.clone()).send()
            })
            .await?;
        Ok(out.volumes().to_vec())
    }

    /// Snapshots taken to replace `volume_id`, found by their tag.
    async fn tagged_snapshots(&self, step: &Step, volume_id: &str) -> Result<Vec<String>, DeployError> {
        let c = self.clients(step)?;
        let filter = Filter::builder()
            .name(format!("tag:{REPLACES_TAG}"))
            .values(volume_id)
            .build();
        let out = c
            .ec2
            .layer
            .call("DescribeSnapshots", || {
                c.ec2
                    .client
                    .describe_snapshots()
                    .owner_ids("self")
                    .filters(filter.clone())
                    .send()
            })
            .await?;
        Ok(out
            .snapshots()
            .iter()
            .filter_map(|s| s.snapshot_id().map(str::to_owned))
            .collect())
    }

    /// Snapshots `volume_id` and waits until the snapshot is complete.
    async fn snapshot(&self, step: &Step, volume_id: &str) -> Result<String, DeployError> {
        let c = self.clients(step)?;
        let tags = tags(ResourceType::Snapshot, [(REPLACES_TAG, volume_id)]);
        let out = c
            .ec2
            .layer
            .call("CreateSnapshot", || {
                c.ec2
                    .client
                    .create_snapshot()
                    .volume_id(volume_id)
                    .description(format!("miyabi: {volume_id}, to make its encrypted copy"))
                    .tag_specifications(tags.clone())
                    .send()
            })
            .await?;
        let id = out
            .snapshot_id()
            .ok_or_else(|| unsupported(step, "CreateSnapshot returned no snapshot id".into()))?
            .to_owned();
        let read = || async {
            let out = c
                .ec2
                .layer
                .call("DescribeSnapshots", || {
                    c.ec2.client.describe_snapshots().snapshot_ids(&id).send()
                })
                .await?;
            Ok::<_, DeployError>(
                out.snapshots()
                    .first()
                    .and_then(|s| s.state())
                    .map_or_else(|| "gone".to_owned(), |s| s.as_str().to_owned()),
            )
        };
        self.wait_until(step, &format!("snapshot {id} to be completed"), read, "completed")
            .await?;
        Ok(id)
    }

    /// An encrypted volume from `snapshot_id`, like `volume` in zone, type, IOPS, throughput
    /// and tags; waits until it is available.
    async fn create_encrypted_copy(
        &self,
        step: &Step,
        volume: &Volume,
        snapshot_id: &str,
    ) -> Result<String, DeployError> {
        let c = self.clients(step)?;
        let replaced = volume.volume_id().unwrap_or_default();
        let mut kept: Vec<Tag> = volume
            .tags()
            .iter()
            .filter(|t| t.key().is_some_and(|k| !k.starts_with("aws:") && k != MANAGED_TAG.0))
            .cloned()
            .collect();
        kept.push(Tag::builder().key(REPLACES_TAG).value(replaced).build());
        kept.push(Tag::builder().key(MANAGED_TAG.0).value(MANAGED_TAG.1).build());
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Volume)
            .set_tags(Some(kept))
            .build();
        let out = c
            .ec2
            .layer
            .call("CreateVolume", || {
                c.ec2
                    .client
                    .create_volume()
                    .set_availability_zone(volume.availability_zone().map(str::to_owned))
                    .snapshot_id(snapshot_id)
                    .encrypted(true)
                    .set_volume_type(volume.volume_type().cloned())
                    .set_iops(volume.iops().filter(|_| provisioned_iops(volume)))
                    .set_throughput(volume.throughput())
                    .tag_specifications(tags.clone())
                    .send()
            })
            .await?;
        let id = out
            .volume_id()
            .ok_or_else(|| unsupported(step, "CreateVolume returned no volume id".into()))?
            .to_owned();
        self.wait_for_volume(step, &id, &VolumeState::Available).await?;
        Ok(id)
    }

    async fn detach(&self, step: &Step, volume_id: &str, instance_id: &str, device: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        c.ec2
            .layer
            .call("DetachVolume", || {
                c.ec2
                    .client
                    .detach_volume()
                    .volume_id(volume_id)
                    .instance_id(instance_id)
                    .device(device)
                    .send()
            })
            .await?;
        self.wait_for_volume(step, volume_id, &VolumeState::Available).await
    }

    async fn attach(&self, step: &Step, volume_id: &str, instance_id: &str, device: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        c.ec2
            .layer
            .call("AttachVolume", || {
                c.ec2
                    .client
                    .attach_volume()
                    .volume_id(volume_id)
                    .instance_id(instance_id)
                    .device(device)
                    .send()
            })
            .await?;
        self.wait_for_volume(step, volume_id, &VolumeState::InUse).await
    }

    async fn delete_volume(&self, step: &Step, volume_id: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let deleted = c
            .ec2
            .layer
            .call("DeleteVolume", || {
                c.ec2.client.delete_volume().volume_id(volume_id).send()
            })
            .await;
        gone_is_done(deleted)
    }

    async fn delete_snapshot(&self, step: &Step, snapshot_id: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let deleted = c
            .ec2
            .layer
            .call("DeleteSnapshot", || {
                c.ec2.client.delete_snapshot().snapshot_id(snapshot_id).send()
            })
            .await;
        gone_is_done(deleted)
    }

    async fn set_tag(&self, step: &Step, id: &str, key: &str, value: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let tag = Tag::builder().key(key).value(value).build();
        c.ec2
            .layer
            .call("CreateTags", || {
                c.ec2.client.create_tags().resources(id).tags(tag.clone()).send()
            })
            .await?;
        Ok(())
    }

    async fn remove_tag(&self, step: &Step, id: &str, key: &str) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let tag = Tag::builder().key(key).build();
        c.ec2
            .layer
            .call("DeleteTags", || {
                c.ec2.client.delete_tags().resources(id).tags(tag.clone()).send()
            })
            .await?;
        Ok(())
    }

    async fn wait_for_volume(&self, step: &Step, volume_id: &str, want: &VolumeState) -> Result<(), DeployError> {
        let read = || async {
            Ok::<_, DeployError>(
                self.describe_volume(step, volume_id)
                    .await?
                    .and_then(|v| v.state().map(|s| s.as_str().to_owned()))
                    .unwrap_or_else(|| "gone".to_owned()),
            )
        };
        self.wait_until(
            step,
            &format!("{volume_id} to be {}", want.as_str()),
            read,
            want.as_str(),
        )
        .await
    }
}

/// A delete's result, where "not found" means already deleted: a revert may meet what an
/// earlier, interrupted revert removed.
fn gone_is_done<T>(deleted: Result<T, crate::aws::AwsError>) -> Result<(), DeployError> {
    match deleted {
        Err(e) if !e.code().is_some_and(super::is_not_found) => Err(e.into()),
        _ => Ok(()),
    }
}

/// The value of tag `key` on `volume`.
fn tag(volume: &Volume, key: &str) -> Option<String> {
    volume
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_owned))
}

fn tags<'a>(kind: ResourceType, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            pairs
                .into_iter()
                .chain([MANAGED_TAG])
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// Only io1, io2 and gp3 take an IOPS figure at creation (gp2 derives its own from the size).
fn provisioned_iops(volume: &Volume) -> bool {
    volume
        .volume_type()
        .is_some_and(|t| matches!(t.as_str(), "io1" | "io2" | "gp3"))
}

fn unsupported(step: &Step, reason: String) -> DeployError {
    DeployError::Unsupported {
        step: step.id.clone(),
        reason,
    }
}

/// Records that `swap` reached `stage`, at `checkpoint`, before the next sub-step begins.
async fn reach(checkpoint: &dyn Checkpoint, swap: &mut VolumeSwap, stage: SwapStage) {
    swap.reached = stage;
    checkpoint.reached(Backup::VolumeSwap(swap.clone())).await;
}
