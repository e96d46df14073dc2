//! The knowledge base: each applied change's outcome, and what the agent learned from them,
//! kept across runs in an embedded ACID store (redb). A write is one transaction committed with
//! an fsync, so a process killed at any point leaves either the old or the new state, never a
//! torn one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::artefact::Artefact;
use crate::plan::{Action, ResourceRef};

/// Headroom per instance family learned by θ6, percent: θ3 sizes those families with it
/// instead of the configured headroom.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct LearnedHeadroom(pub BTreeMap<String, f64>);

impl Artefact for LearnedHeadroom {
    const WHAT: &'static str = "the headroom learned per family (θ6)";
}

/// When θ4 last changed each resource, Unix seconds by resource id: θ3 and θ6 judge a changed
/// resource only on its datapoints since then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ChangeTimes(pub BTreeMap<String, i64>);

impl Artefact for ChangeTimes {
    const WHAT: &'static str = "the change times of resources (θ4)";
}

/// Outcomes by `"{iteration:08}/{change id}"`, as JSON.
const OUTCOMES: TableDefinition<'_, &str, &str> = TableDefinition::new("outcomes");
/// Learned headroom per instance family, percent.
const HEADROOM: TableDefinition<'_, &str, f64> = TableDefinition::new("family_headroom");
/// When each resource was last changed by θ4, Unix seconds: θ3 and θ6 judge it only on the
/// datapoints after that.
const LAST_CHANGE: TableDefinition<'_, &str, i64> = TableDefinition::new("last_change");

/// Why the knowledge base could not be used.
#[derive(Debug, thiserror::Error)]
#[error("knowledge base {path}: {message}")]
pub struct KnowledgeError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// What became of one applied change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It held: the resource stayed within its limits.
    Held,
    /// The resource breached its CPU alarm threshold after the change.
    Breached,
    /// θ4 rolled it back.
    RolledBack,
}

/// One change's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The cycle iteration that applied it.
    pub iteration: u32,
    /// The change (and step) id.
    pub change_id: String,
    /// What was done.
    pub action: Action,
    /// To what.
    pub resource: ResourceRef,
    /// The desired value it set, for example the new instance type.
    pub desired: serde_json::Value,
    /// The saving θ2/θ3 estimated, USD per month.
    pub estimated_saving_usd: f64,
    /// The CPU threshold measured after the change, when there is one.
    pub cpu_after: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// The embedded knowledge base.
#[derive(Debug)]
pub struct KnowledgeBase {
    db: Database,
    path: PathBuf,
}

impl KnowledgeBase {
    /// Opens (or creates) the knowledge base at `path`. A file left by a killed writer is
    /// recovered to its last committed transaction.
    ///
    /// # Errors
    /// [`KnowledgeError`] naming the file: unreadable, not a knowledge base, or locked by
    /// another process.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, KnowledgeError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|e| KnowledgeError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let kb = Self { db, path };
        // Both tables exist from the first open on, so that readers never see "no such table".
        kb.write(|txn| {
            txn.open_table(OUTCOMES)?;
            txn.open_table(HEADROOM)?;
            txn.open_table(LAST_CHANGE)?;
            Ok(())
        })?;
        Ok(kb)
    }

    fn error(&self, e: impl std::fmt::Display) -> KnowledgeError {
        KnowledgeError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn write(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>) -> Result<(), KnowledgeError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        f(&txn).map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e))
    }

    /// Records outcomes, all in one transaction.
    ///
    /// # Errors
    /// [`KnowledgeError`] when the transaction cannot commit.
    pub fn record(&self, outcomes: &[Outcome]) -> Result<(), KnowledgeError> {
        let rows: Vec<(String, String)> = outcomes
            .iter()
            .map(|o| {
                let key = format!("{:08}/{}", o.iteration, o.change_id);
                serde_json::to_string(o).map(|v| (key, v))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))?;
        self.write(|txn| {
            let mut table = txn.open_table(OUTCOMES)?;
            for (key, value) in &rows {
                table.insert(key.as_str(), value.as_str())?;
            }
            Ok(())
        })
    }

    /// Every outcome, oldest iteration first.
    ///
    /// # Errors
    /// [`KnowledgeError`] when the store cannot be read or holds a record this build cannot.
    pub fn outcomes(&self) -> Result<Vec<Outcome>, KnowledgeError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(OUTCOMES).map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.error(e))? {
            let (key, value) = row.map_err(|e| self.error(e))?;
            out.push(
                serde_json::from_str(value.value()).map_err(|e| self.error(format!("record {}: {e}", key.value())))?,
            );
        }
        Ok(out)
    }

    /// Sets the learned headroom of instance families, in one transaction.
    ///
    /// # Errors
    /// [`KnowledgeError`] when the transaction cannot commit.
    pub fn set_headroom(&self, headroom: &BTreeMap<String, f64>) -> Result<(), KnowledgeError> {
        self.write_map(HEADROOM, headroom)
    }

    /// The learned headroom per instance family, percent.
    ///
    /// # Errors
    /// [`KnowledgeError`] when the store cannot be read.
    pub fn headroom(&self) -> Result<BTreeMap<String, f64>, KnowledgeError> {
        self.read_map(HEADROOM)
    }

    /// Records that θ4 changed these resources at these times (Unix seconds), in one
    /// transaction; a later time replaces an earlier one.
    ///
    /// # Errors
    /// [`KnowledgeError`] when the transaction cannot commit.
    pub fn record_changes(&self, changes: &BTreeMap<String, i64>) -> Result<(), KnowledgeError> {
        self.write_map(LAST_CHANGE, changes)
    }

    /// When each resource θ4 changed was last changed, Unix seconds.
    ///
    /// # Errors
    /// [`KnowledgeError`] when the store cannot be read.
    pub fn last_changes(&self) -> Result<BTreeMap<String, i64>, KnowledgeError> {
        self.read_map(LAST_CHANGE)
    }

    /// Inserts `entries` into a table keyed by text, in one transaction.
    fn write_map<V, T>(
        &self,
        definition: TableDefinition<'_, &str, V>,
        entries: &BTreeMap<String, T>,
    ) -> Result<(), KnowledgeError>
    where
        V: redb::Value + 'static,
        for<'a> V: redb::Value<SelfType<'a> = T>,
    {
        self.write(|txn| {
            let mut table = txn.open_table(definition)?;
            for (key, value) in entries {
                table.insert(key.as_str(), value)?;
            }
            Ok(())
        })
    }

    /// A whole table keyed by text.
    fn read_map<V, T>(&self, definition: TableDefinition<'_, &str, V>) -> Result<BTreeMap<String, T>, KnowledgeError>
    where
        V: redb::Value + 'static,
        for<'a> V: redb::Value<SelfType<'a> = T>,
    {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(definition).map_err(|e| self.error(e))?;
        let mut out = BTreeMap::new();
        for row in table.iter().map_err(|e| self.error(e))? {
            let (key, value) = row.map_err(|e| self.error(e))?;
            out.insert(key.value().to_owned(), value.value());
        }
        Ok(out)
    }
}
