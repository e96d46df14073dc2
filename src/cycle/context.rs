//! The [`CycleContext`]: the services every phase may use, and the artefacts they hand on.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Artefacts, Interrupt};
use crate::aws::AwsSession;
use crate::catalog::PriceCatalog;
use crate::clock::{Clock, SystemClock};
use crate::knowledge::{ChangeTimes, KnowledgeBase, KnowledgeError, LearnedHeadroom};
use crate::output::Output;
use crate::progress::{SharedProgress, TracingProgress};

/// What the phases of a cycle share.
///
/// The services (AWS session, catalog, clock, progress, knowledge base, output folder) outlive
/// an iteration and are set by whoever runs the cycle; the [`Artefacts`] are what the phases
/// produce for one another.
pub struct CycleContext {
    /// One account's credentials, per-Region clients and call statistics.
    pub aws: Arc<AwsSession>,
    /// The price catalog.
    pub catalog: Arc<PriceCatalog>,
    /// The time the phases work with.
    pub clock: Arc<dyn Clock>,
    /// Where progress goes.
    pub progress: SharedProgress,
    /// The knowledge base shared by the phases, if any.
    pub knowledge: Option<Arc<KnowledgeBase>>,
    /// Where phases write their files, and what they wrote.
    pub output: Output,
    /// What the phases produced, by type.
    pub artefacts: Artefacts,
    /// Raised to wind the run down: no phase starts after it, and θ4 starts no step.
    pub interrupt: Interrupt,
    pub(crate) iteration: u32,
}

impl std::fmt::Debug for CycleContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CycleContext")
            .field("iteration", &self.iteration)
            .field("artefacts", &self.artefacts)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl Default for CycleContext {
    fn default() -> Self {
        Self::new(Arc::new(AwsSession::default()))
    }
}

impl CycleContext {
    /// A context over `aws`, with the built-in catalog, the system clock, progress to
    /// `tracing`, no knowledge base and no output folder.
    #[must_use]
    pub fn new(aws: Arc<AwsSession>) -> Self {
        Self {
            aws,
            catalog: Arc::clone(PriceCatalog::built_in_shared()),
            clock: Arc::new(SystemClock),
            progress: Arc::new(TracingProgress),
            knowledge: None,
            output: Output::none(),
            artefacts: Artefacts::default(),
            interrupt: Interrupt::new(),
            iteration: 0,
        }
    }

    /// Writes the phases' files into `out_dir`.
    #[must_use]
    pub fn with_out_dir(mut self, out_dir: impl Into<PathBuf>) -> Self {
        self.output = Output::to(out_dir);
        self
    }

    /// Uses `catalog` for prices.
    #[must_use]
    pub fn with_catalog(mut self, catalog: Arc<PriceCatalog>) -> Self {
        self.catalog = catalog;
        self
    }

    /// Uses `clock` for "now".
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends progress to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: SharedProgress) -> Self {
        self.progress = progress;
        self
    }

    /// Shares `knowledge` with the phases, and starts from what it remembers: when resources
    /// were last changed ([`ChangeTimes`]) and the headroom learned per family
    /// ([`LearnedHeadroom`]).
    ///
    /// # Errors
    /// [`KnowledgeError`] when the store cannot be read.
    pub fn with_knowledge_base(mut self, knowledge: Arc<KnowledgeBase>) -> Result<Self, KnowledgeError> {
        self.artefacts.put(ChangeTimes(knowledge.last_changes()?));
        self.artefacts.put(LearnedHeadroom(knowledge.headroom()?));
        self.knowledge = Some(knowledge);
        Ok(self)
    }

    /// The iteration running, 0-based.
    #[must_use]
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// Notes that `resources` changed at Unix time `at`, in the knowledge base first (so that a
    /// later run measures them from then on too), then in [`ChangeTimes`].
    ///
    /// # Errors
    /// [`KnowledgeError`] when the knowledge base cannot commit.
    pub fn record_changes<'a>(
        &mut self,
        resources: impl IntoIterator<Item = &'a str>,
        at: i64,
    ) -> Result<(), KnowledgeError> {
        let changed: std::collections::BTreeMap<String, i64> =
            resources.into_iter().map(|id| (id.to_owned(), at)).collect();
        if changed.is_empty() {
            return Ok(());
        }
        if let Some(kb) = &self.knowledge {
            kb.record_changes(&changed)?;
        }
        match self.artefacts.get_mut::<ChangeTimes>() {
            Some(times) => times.0.extend(changed),
            None => self.artefacts.put(ChangeTimes(changed)),
        }
        Ok(())
    }
}
