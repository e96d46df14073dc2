//! The apply journal: what θ4 is doing, on disk before it does it, so that a run killed midway
//! (SIGKILL, power loss, Ctrl-C) is rolled back by the next one.
//!
//! Each transition (a step started, applied, reverted) is one line of JSON appended to the
//! journal and fsynced before θ4 goes on, so a run of n steps writes O(n) bytes (rewriting the
//! whole journal per step made a 4,500-step apply spend minutes on it). A process killed in the
//! middle of an append leaves at most a torn last line, for a transition whose action had not
//! begun (θ4 acts only after the append returns); reading skips it. A run that ends normally
//! removes the journal.
//!
//! Where the lines go is a [`JournalStore`]: a local file ([`FileJournal`]) for the CLI, or the
//! fleet's results bucket for a worker, so that the worker that takes over an account recovers
//! the apply of one that died.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
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
    /// Reads a journal from `store`; `None` when there is none (the last run ended normally).
    ///
    /// # Errors
    /// [`Error::PlanFile`] naming the store when it holds something that is not a journal, or
    /// the store's own error when it cannot be read.
    pub async fn load(store: &dyn JournalStore) -> Result<Option<Self>> {
        let Some(text) = store.load().await? else {
            return Ok(None);
        };
        Self::parse(&text, store).map(Some)
    }

    fn parse(text: &str, store: &dyn JournalStore) -> Result<Self> {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut journal = Self::default();
        for (n, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Event>(line) {
                Ok(event) => journal.replay(event),
                // A torn last line: the append was cut, so its action never began.
                Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => {}
                Err(e) => {
                    return Err(Error::PlanFile {
                        path: PathBuf::from(store.describe()),
                        message: format!("apply journal, line {}: {e}", n + 1),
                    })
                }
            }
        }
        journal.unsaved.clear();
        Ok(journal)
    }

    /// The transitions not yet stored, as journal lines; taking them marks them stored.
    fn take_unsaved(&mut self) -> Vec<u8> {
        let mut text = Vec::new();
        for event in self.unsaved.drain(..) {
            serde_json::to_writer(&mut text, &event)
                .unwrap_or_else(|e| unreachable!("a journal event serialises: {e}"));
            text.push(b'\n');
        }
        text
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

/// Where a journal is kept. Appends are durable when they return; a store holds the lines of
/// one journal in the order appended.
#[async_trait]
pub trait JournalStore: Send + Sync + std::fmt::Debug {
    /// Appends `lines` (whole JSON lines) and waits until they are durable.
    async fn append(&self, lines: &[u8]) -> Result<()>;
    /// The journal's text, every append in order; `None` when there is none.
    async fn load(&self) -> Result<Option<String>>;
    /// Removes the journal: the apply it recorded is resolved.
    async fn clear(&self) -> Result<()>;
    /// Where it is, for messages: a path or a URL.
    fn describe(&self) -> String;
}

/// A journal in one local file, each append fsynced (the file's name too, when it is new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileJournal {
    path: PathBuf,
}

impl FileJournal {
    /// The journal at `path`.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The journal's default place: beside the reports.
    #[must_use]
    pub fn beside_reports(out_dir: &Path) -> Self {
        Self::new(out_dir.join("apply_journal.jsonl"))
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl JournalStore for FileJournal {
    async fn append(&self, lines: &[u8]) -> Result<()> {
        let path = &self.path;
        let created = !path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.write_all(lines)
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
        Ok(())
    }

    async fn load(&self) -> Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    async fn clear(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.path, e)),
            _ => Ok(()),
        }
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// One apply's journal and its store, shared by the steps in flight. Each transition is
/// recorded in memory at once, then made durable before the step goes on; steps waiting at the
/// same time share one append (group commit), so a store with a round trip per write (S3) costs
/// one write per burst of transitions, not one per transition.
#[derive(Debug)]
pub struct JournalWriter {
    store: Arc<dyn JournalStore>,
    journal: std::sync::Mutex<Journal>,
    /// Serialises appends; held across the store's write.
    flushing: tokio::sync::Mutex<()>,
    /// Transitions recorded, and transitions durable.
    recorded: AtomicU64,
    durable: AtomicU64,
}

impl JournalWriter {
    /// A writer appending to `store` (which holds no journal, or one already recovered).
    #[must_use]
    pub fn new(store: Arc<dyn JournalStore>) -> Self {
        Self {
            store,
            journal: std::sync::Mutex::new(Journal::default()),
            flushing: tokio::sync::Mutex::new(()),
            recorded: AtomicU64::new(0),
            durable: AtomicU64::new(0),
        }
    }

    /// Records that `step` begins, durably.
    pub async fn start(&self, step: &Step) {
        self.record(|j| j.start(step)).await;
    }

    /// Records where step `id` got to, durably.
    pub async fn mark(&self, id: &str, progress: Progress, backup: Option<&Backup>) {
        self.record(|j| j.mark(id, progress, backup)).await;
    }

    /// The store's place, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Removes the journal from its store.
    ///
    /// # Errors
    /// The store's error.
    pub async fn clear(&self) -> Result<()> {
        self.store.clear().await
    }

    async fn record(&self, change: impl FnOnce(&mut Journal)) {
        let seq = {
            let mut journal = self.journal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            change(&mut journal);
            self.recorded.fetch_add(1, Ordering::SeqCst) + 1
        };
        let _flushing = self.flushing.lock().await;
        if self.durable.load(Ordering::SeqCst) >= seq {
            return; // an append made while this one waited carried it
        }
        let (lines, through) = {
            let mut journal = self.journal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (journal.take_unsaved(), self.recorded.load(Ordering::SeqCst))
        };
        // A journal that cannot be written is logged, not fatal: the apply goes on with the
        // guarantees of a run without one.
        if let Err(e) = self.store.append(&lines).await {
            tracing::warn!(journal = %self.store.describe(), error = %e, "could not write the apply journal");
        }
        self.durable.store(through, Ordering::SeqCst);
    }
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

    #[tokio::test]
    async fn appends_each_transition_and_reads_them_back_skipping_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("miyabi-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.jsonl");
        let store = Arc::new(FileJournal::new(&path));
        let steps = steps();
        let writer = JournalWriter::new(store.clone());
        writer.start(&steps[0]).await;
        writer.mark(&steps[0].id, Progress::Applied, None).await;
        writer.start(&steps[1]).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "one line per transition, appended");

        let read = Journal::load(store.as_ref()).await.unwrap().unwrap();
        let written = writer.journal.lock().unwrap().entries.clone();
        assert_eq!(read.entries, written);
        assert_eq!(read.interrupted().len(), 2, "the wave in flight, applied step included");

        // A kill in the middle of an append leaves half a line: it is skipped.
        std::fs::write(&path, format!("{text}{{\"event\":\"mark\",\"id\":\"")).unwrap();
        assert_eq!(Journal::load(store.as_ref()).await.unwrap().unwrap().entries, written);
        // Garbage before the end is an error, not silently dropped history.
        std::fs::write(&path, format!("not json\n{text}")).unwrap();
        assert!(matches!(
            Journal::load(store.as_ref()).await,
            Err(Error::PlanFile { .. })
        ));
        writer.clear().await.unwrap();
        assert!(Journal::load(store.as_ref()).await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store that counts appends and is slow, as S3 is.
    #[derive(Debug, Default)]
    struct Slow {
        appends: std::sync::Mutex<Vec<Vec<u8>>>,
    }

    #[async_trait]
    impl JournalStore for Slow {
        async fn append(&self, lines: &[u8]) -> Result<()> {
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            self.appends.lock().unwrap().push(lines.to_vec());
            Ok(())
        }
        async fn load(&self) -> Result<Option<String>> {
            let appends = self.appends.lock().unwrap();
            Ok((!appends.is_empty()).then(|| appends.iter().map(|a| String::from_utf8_lossy(a)).collect()))
        }
        async fn clear(&self) -> Result<()> {
            self.appends.lock().unwrap().clear();
            Ok(())
        }
        fn describe(&self) -> String {
            "slow".into()
        }
    }

    #[tokio::test]
    async fn transitions_waiting_together_share_one_append_and_each_is_durable_when_it_returns() {
        let store = Arc::new(Slow::default());
        let writer = JournalWriter::new(store.clone());
        let steps: Vec<Step> = (0..8).flat_map(|_| steps()).collect();
        // Eight steps start at once: the first append carries one, the next carries the rest.
        futures::future::join_all(steps.iter().map(|s| async {
            writer.start(s).await;
            let lines = store.load().await.unwrap().unwrap_or_default();
            assert!(lines.contains(&s.id), "a start returns only once it is stored");
        }))
        .await;
        let appends = store.appends.lock().unwrap().len();
        assert!(
            appends < steps.len() / 2,
            "{appends} appends for {} starts",
            steps.len()
        );
        let read = Journal::load(store.as_ref()).await.unwrap().unwrap();
        assert_eq!(read.entries.len(), steps.len(), "no transition lost");
    }
}
