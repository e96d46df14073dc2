//! The loop: the [`Phase`] trait, the [`CycleContext`] the phases share, the [`Cycle`] runner
//! with its [`stop`] rules, and the [`CycleReport`] of a run.
//!
//! Nothing here names a concrete phase. A phase reads the artefacts it needs from the
//! context's typed [`Artefacts`] store and puts its own there; it tells the runner only how
//! many changes it found applicable and applied ([`PhaseOutcome`]).

mod context;
mod interrupt;
mod phase;
mod report;
mod runner;
pub mod stop;

pub use self::context::CycleContext;
pub use self::interrupt::Interrupt;
pub use self::phase::{Phase, PhaseId, PhaseOutcome};
pub use self::report::{CycleReport, IterationRecord, PhaseRecord, StopReason, Targets, WorldSummary};
pub use self::runner::{Cycle, CycleHook};
pub use self::stop::{StopRule, CONVERGENCE_RULE};
pub use crate::artefact::{Artefact, Artefacts, MissingInput};
