//! The apply journal: what θ4 is doing, on disk before it does it, so that a run killed midway
//! (SIGKILL, power loss, Ctrl-C) is rolled back by the next one.
//!
//! Each transition (a step started, applied, reverted) is one line of JSON appended to the
//! journal and fsynced before θ4 goes on, so a run of n steps writes O(n) bytes (rewriting the
//! whole journal per step made a 4,500-step apply spend minutes on it). A process killed in the
//! middle of an append leaves at most a torn last line, for a transition whose action had not
//! begun (θ4 acts only after the append returns); reading skips it. A run that ends normally
//! removes the journal.

use std::io::Write;
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

/// One line of the journal file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
enum Event {
    /// A step begins.
    Start { step: Box<Step> },
    /// The latest entry of step `id` got to `progress` (with its backup, once taken).
    Mark {
        id: String,
        progress: Progress,
        backup: Option<Backup>,
    },
}

/// The journal of one apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journal {
    /// Steps in the order they began.
    pub entries: Vec<Entry>,
    /// Transitions not yet on disk.
    unsaved: Vec<Event>,
}

impl Journal {
    /// Reads the journal at `path`; `None` when there is none (the last run ended normally).
    ///
    /// # Errors
    /// [`Error::PlanFile`] when the file exists but cannot be read as a journal.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut journal = Self::default();
        for (n, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Event>(line) {
                Ok(event) => journal.replay(event),
                // A torn last line: the append was cut, so its action never began.
                Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => {}
                Err(e) => {
                    return Err(Error::PlanFile {
                        path: path.to_path_buf(),
                        message: format!("apply journal, line {}: {e}", n + 1),
                    })
                }
            }
        }
        journal.unsaved.clear();
        Ok(Some(journal))
    }

    /// Appends the transitions not yet on disk and waits until they are durable.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        if self.unsaved.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for event in &self.unsaved {
            serde_json::to_writer(&mut text, event).unwrap_or_else(|e| unreachable!("a journal event serialises: {e}"));
            text.push(b'\n');
        }
        let created = !path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(path, e))?;
        if created {
            // The new file's name must be durable too.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| Error::io(dir, e))?;
            }
        }
        self.unsaved.clear();
        Ok(())
    }

    /// Records that `step` begins.
    pub fn start(&mut self, step: &Step) {
        self.replay(Event::Start {
            step: Box::new(step.clone()),
        });
    }

    /// Updates the latest entry of step `id`.
    pub fn mark(&mut self, id: &str, progress: Progress, backup: Option<&Backup>) {
        self.replay(Event::Mark {
            id: id.to_owned(),
            progress,
            backup: backup.cloned(),
        });
    }

    /// Applies `event` to the entries and keeps it for the next [`Journal::save`].
    fn replay(&mut self, event: Event) {
        match &event {
            Event::Start { step } => self.entries.push(Entry {
                step: (**step).clone(),
                progress: Progress::Started,
                backup: None,
            }),
            Event::Mark { id, progress, backup } => {
                if let Some(entry) = self.entries.iter_mut().rev().find(|e| &e.step.id == id) {
                    entry.progress = *progress;
                    if let Some(b) = backup {
                        entry.backup = Some(b.clone());
                    }
                }
            }
        }
        self.unsaved.push(event);
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
    out_dir.join("apply_journal.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::execution::allocate;
    use crate::plan::{Action, Change, ResourceRef};

    fn steps() -> Vec<Step> {
        let changes = ["i-1", "i-2"]
            .iter()
            .map(|id| {
                Change::new(
                    Action::RequireImdsV2,
                    ResourceRef {
                        kind: crate::assessment::ResourceKind::Ec2Instance,
                        id: (*id).to_owned(),
                        region: "us-east-1".into(),
                    },
                    "imds_v2_required",
                    serde_json::json!(false),
                    serde_json::json!(true),
                    "test",
                    "test".into(),
                    crate::plan::Risk::Low,
                )
            })
            .collect();
        allocate(changes, &crate::guardrails::Guardrails::default(), |_| None).steps
    }

    #[test]
    fn appends_each_transition_and_reads_them_back_skipping_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("miyabi-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.jsonl");
        let steps = steps();
        let mut journal = Journal::default();
        journal.start(&steps[0]);
        journal.save(&path).unwrap();
        journal.mark(&steps[0].id, Progress::Applied, None);
        journal.start(&steps[1]);
        journal.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "one line per transition, appended");

        let read = Journal::load(&path).unwrap().unwrap();
        assert_eq!(read.entries, journal.entries);
        assert_eq!(read.interrupted().len(), 2, "the wave in flight, applied step included");

        // A kill in the middle of an append leaves half a line: it is skipped.
        std::fs::write(&path, format!("{text}{{\"event\":\"mark\",\"id\":\"")).unwrap();
        assert_eq!(Journal::load(&path).unwrap().unwrap().entries, journal.entries);
        // Garbage before the end is an error, not silently dropped history.
        std::fs::write(&path, format!("not json\n{text}")).unwrap();
        assert!(matches!(Journal::load(&path), Err(Error::PlanFile { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
