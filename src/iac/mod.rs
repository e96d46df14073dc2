//! Infrastructure as code: the estate and its planned target state as Terraform and
//! CloudFormation. One renderer serves θ2 (the plan) and θ3 (the execution plan).
//!
//! The target state is the inventory with every change applied that configuration expresses
//! safely. Two kinds are left to θ4, their resources keeping their current block, listed in a
//! comment and in the template's metadata instead:
//! - destructive changes (release, delete, terminate): a resource imported and then missing
//!   from the configuration would be destroyed by an `apply` without the snapshot θ4 takes
//!   first;
//! - a volume's encryption: both engines would replace the volume (a new, empty one, destroying
//!   the old), where θ4 swaps in an encrypted copy of its data;
//! - access logging: it logs into a bucket θ4 creates, with its policy, on first use;
//! - a public IP's removal: both engines would replace the instance, where θ4 changes its
//!   network interface.

pub mod cloudformation;
pub mod terraform;

use std::path::{Path, PathBuf};

use crate::plan::{Action, Change};
use crate::world::{Inventory, WorldState};

/// The inventory after the `changes` configuration expresses, and the others set aside.
#[must_use]
pub fn target_state<'a>(
    world: &WorldState,
    changes: impl IntoIterator<Item = &'a Change>,
) -> (Inventory, Vec<&'a Change>) {
    let mut inventory = world.inventory.clone();
    let mut destructive = Vec::new();
    for change in changes {
        if change.is_destructive()
            || matches!(
                change.action,
                Action::EncryptVolume | Action::EnableAccessLogging | Action::RemovePublicIp
            )
        {
            destructive.push(change);
        } else {
            change.apply_to(&mut inventory);
        }
    }
    (inventory, destructive)
}

/// The files of the target state of `changes`: `terraform/*.tf` and
/// `cloudformation/template.json`, as (path relative to the output folder, text).
#[must_use]
pub fn render<'a>(world: &WorldState, changes: impl IntoIterator<Item = &'a Change>) -> Vec<(PathBuf, String)> {
    let (inventory, destructive) = target_state(world, changes);
    let mut files: Vec<(PathBuf, String)> = terraform::render(&inventory, &world.scope.regions, &destructive)
        .into_iter()
        .map(|(name, text)| (Path::new("terraform").join(name), text))
        .collect();
    let template = cloudformation::render(&inventory, &destructive);
    let text = serde_json::to_string_pretty(&template).unwrap_or_else(|e| unreachable!("JSON value serialises: {e}"));
    files.push((Path::new("cloudformation").join("template.json"), text));
    files
}

/// A Terraform or CloudFormation name for a resource id: letters, digits and underscores,
/// starting with a letter.
#[must_use]
pub fn identifier(prefix: &str, id: &str) -> String {
    let body: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{body}")
}
