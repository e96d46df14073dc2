//! The apply journal: what θ4 is doing, on disk before it does it, so that a run killed midway
//! (SIGKILL, power loss, Ctrl-C) is rolled back by the next one.
//!
//! Each transition (a step started, applied, reverted) rewrites the journal atomically
//! (temporary file, fsync, rename): a reader sees the old or the new journal, never half of one.
//! A run that ends normally removes it.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::executor::Backup;
use crate::plan::execution::Step;
use crate::{Error, Result};

/// Where a journaled step got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Begun: it may have acted in part.
    Started,
    /// Applied and validated.
    Applied,
    /// Reverted.
    Reverted,
}

/// One journaled step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The step, whole: recovery needs no plan file.
    pub step: Step,
    /// Where it got to.
    pub progress: Progress,
    /// Its backup, once taken.
    pub backup: Option<Backup>,
}

/// The journal of one apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    /// Steps in the order they began.
    pub entries: Vec<Entry>,
}

impl Journal {
    /// Reads the journal at `path`; `None` when there is none (the last run ended normally).
    ///
    /// # Errors
    /// [`Error::PlanFile`] when the file exists but cannot be read as a journal.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| Error::PlanFile {
                path: path.to_path_buf(),
                message: format!("apply journal: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Writes the journal atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).unwrap_or_else(|e| unreachable!("a journal serialises: {e}"));
        crate::report::write_atomic(path, &text)
    }

    /// Records that `step` begins.
    pub fn start(&mut self, step: &Step) {
        self.entries.push(Entry {
            step: step.clone(),
            progress: Progress::Started,
            backup: None,
        });
    }

    /// Updates the latest entry of step `id`.
    pub fn mark(&mut self, id: &str, progress: Progress, backup: Option<&Backup>) {
        if let Some(entry) = self.entries.iter_mut().rev().find(|e| e.step.id == id) {
            entry.progress = progress;
            if let Some(b) = backup {
                entry.backup = Some(b.clone());
            }
        }
    }

    /// The entries a recovery must revert, newest first: every step of the wave that was
    /// interrupted (the one with a step still `Started`), applied or in flight.
    #[must_use]
    pub fn interrupted(&self) -> Vec<&Entry> {
        let Some(wave) = self
            .entries
            .iter()
            .find(|e| e.progress == Progress::Started)
            .map(|e| e.step.wave)
        else {
            return Vec::new();
        };
        self.entries
            .iter()
            .rev()
            .filter(|e| e.step.wave == wave && e.progress != Progress::Reverted)
            .collect()
    }
}

/// The journal's default place: beside the reports.
#[must_use]
pub fn default_path(out_dir: &Path) -> PathBuf {
    out_dir.join("apply_journal.json")
}
