//! Infrastructure as code: the estate and its planned target state as Terraform and
//! CloudFormation. One renderer serves θ2 (the plan) and θ3 (the execution plan).
//!
//! The target state is the inventory with every non-destructive change applied. Destructive
//! changes (release, delete, terminate) are not expressed as configuration: a resource imported
//! and then missing from the configuration would be destroyed by an `apply` without the
//! snapshot θ4 takes first, so such resources keep their current block and are listed in a
//! comment and in the template's metadata instead.

pub mod cloudformation;
pub mod terraform;

use std::path::{Path, PathBuf};

use crate::plan::Change;
use crate::world::{Inventory, WorldState};
use crate::Result;

/// The inventory after the non-destructive `changes`, and the destructive ones set aside.
#[must_use]
pub fn target_state<'a>(
    world: &WorldState,
    changes: impl IntoIterator<Item = &'a Change>,
) -> (Inventory, Vec<&'a Change>) {
    let mut inventory = world.inventory.clone();
    let mut destructive = Vec::new();
    for change in changes {
        if change.is_destructive() {
            destructive.push(change);
        } else {
            change.apply_to(&mut inventory);
        }
    }
    (inventory, destructive)
}

/// Writes `terraform/*.tf` and `cloudformation/template.json` for the target state of
/// `changes` into `dir`; returns the files written.
///
/// # Errors
/// [`crate::Error::Io`] naming the file.
pub fn write<'a>(
    dir: &Path,
    world: &WorldState,
    changes: impl IntoIterator<Item = &'a Change>,
) -> Result<Vec<PathBuf>> {
    let (inventory, destructive) = target_state(world, changes);
    let mut written = Vec::new();
    for (name, text) in terraform::render(&inventory, &world.scope.regions, &destructive) {
        let path = dir.join("terraform").join(name);
        crate::report::write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    let path = dir.join("cloudformation").join("template.json");
    let template = cloudformation::render(&inventory, &destructive);
    let text = serde_json::to_string_pretty(&template).unwrap_or_else(|e| unreachable!("JSON value serialises: {e}"));
    crate::report::write_atomic(&path, text.as_bytes())?;
    written.push(path);
    Ok(written)
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
