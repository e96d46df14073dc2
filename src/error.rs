//! The crate's error type. Each family keeps its own typed error; this enum only gathers them.

use std::path::PathBuf;

use crate::aws::AwsError;
use crate::catalog::CatalogError;
use crate::world::WorldStateError;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the engine reports. Each variant names what failed, where and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An AWS call failed: AWS said no, or we could not ask.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A world-state document could not be read, parsed or validated.
    #[error(transparent)]
    WorldState(#[from] WorldStateError),
    /// The price catalog could not be loaded or does not know an item.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A Python phase could not be run, or answered wrongly.
    #[error(transparent)]
    Bridge(#[from] crate::bridge::BridgeError),
    /// A phase written outside Rust (in Python, through the bindings) failed. The embedding
    /// keeps its original error in `payload`, so that it can be re-raised unchanged.
    #[error("phase {phase} failed: {message}")]
    Foreign {
        /// The phase's name.
        phase: String,
        /// The error, as text.
        message: String,
        /// The original error, for the embedding that raised it to downcast.
        payload: ForeignPayload,
    },
    /// A [`CycleHook`](crate::cycle::CycleHook), for example a harness's workload simulator, failed.
    #[error("hook {hook} failed: {source}")]
    Hook {
        /// The hook's name.
        hook: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A phase needs an artefact an earlier phase should have produced.
    #[error(transparent)]
    MissingInput(#[from] crate::artefact::MissingInput),
    /// Writing a report or world-state file failed.
    #[error("could not write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// An execution-plan file could not be read or is not a plan of this build.
    #[error("malformed execution plan {path}: {message}")]
    PlanFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its JSON path.
        message: String,
    },
    /// An apply journal in a store (the results bucket) could not be used.
    #[error("apply journal {location}: {message}")]
    Journal {
        /// Where it is (`s3://bucket/prefix`).
        location: String,
        /// What went wrong.
        message: String,
    },
    /// The knowledge base could not be opened, read or written.
    #[error(transparent)]
    Knowledge(#[from] crate::knowledge::KnowledgeError),
    /// Invalid configuration given by the caller.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Offer files could not become a price catalog.
    #[error(transparent)]
    Offers(#[from] crate::catalog::offers::OfferError),
    /// The run report could not be rendered.
    #[error(transparent)]
    Report(#[from] crate::run_report::RunReportError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// An error object owned by an embedding (for example a Python exception), carried through
/// Rust untouched. Only the embedding that created it knows its type.
#[derive(Clone)]
pub struct ForeignPayload(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for ForeignPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignPayload(..)")
    }
}
