//! The [`Phase`] trait: one θ slot of the loop.

use async_trait::async_trait;
use serde::Serialize;

use super::CycleContext;
use crate::Result;

/// The six phases of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseId {
    /// θ1: understand the estate as a world state.
    Discovery,
    /// θ2: plan cost and security changes, rendered as `IaC`.
    Planning,
    /// θ3: right-size and allocate.
    Optimization,
    /// θ4: execute safely, with rollback.
    Deployment,
    /// θ5: watch through CloudWatch.
    Monitoring,
    /// θ6: learn from the outcome.
    Learning,
}

impl PhaseId {
    /// All phases in loop order.
    pub const ALL: [Self; 6] = [
        Self::Discovery,
        Self::Planning,
        Self::Optimization,
        Self::Deployment,
        Self::Monitoring,
        Self::Learning,
    ];

    /// θ number, 1–6.
    #[must_use]
    pub fn theta(self) -> u8 {
        match self {
            Self::Discovery => 1,
            Self::Planning => 2,
            Self::Optimization => 3,
            Self::Deployment => 4,
            Self::Monitoring => 5,
            Self::Learning => 6,
        }
    }

    /// Lower-case name, for example `discovery`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Planning => "planning",
            Self::Optimization => "optimization",
            Self::Deployment => "deployment",
            Self::Monitoring => "monitoring",
            Self::Learning => "learning",
        }
    }

    /// The phase with θ number `theta`.
    #[must_use]
    pub fn from_theta(theta: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.theta() == theta)
    }

    /// The phase called `name` (any case).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn slot(self) -> usize {
        usize::from(self.theta() - 1)
    }
}

impl std::fmt::Display for PhaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "θ{} {}", self.theta(), self.name())
    }
}

/// What a phase run means for the loop's stop rules.
///
/// `None` says the phase does not count that figure (θ1 plans nothing, θ2 applies nothing).
/// The last phase of an iteration that reports a figure sets it for the iteration: θ3 refines
/// θ2's count, and θ4 counts what its approval lets run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PhaseOutcome {
    /// Changes found that may be applied (approved, or needing no approval).
    pub applicable: Option<usize>,
    /// Changes applied and kept.
    pub applied: Option<usize>,
}

impl PhaseOutcome {
    /// A phase that neither plans nor applies.
    #[must_use]
    pub fn nothing() -> Self {
        Self::default()
    }

    /// A planning phase that found `applicable` changes that may be applied.
    #[must_use]
    pub fn planned(applicable: usize) -> Self {
        Self {
            applicable: Some(applicable),
            applied: None,
        }
    }

    /// A deploying phase: `applicable` may run under its approval, `applied` did.
    #[must_use]
    pub fn deployed(applicable: usize, applied: usize) -> Self {
        Self {
            applicable: Some(applicable),
            applied: Some(applied),
        }
    }
}

/// One phase of the loop. Object-safe, so that a cycle holds `Arc<dyn Phase>` and a phase
/// written in Python (through the bindings) fits the same slot as a Rust one.
#[async_trait]
pub trait Phase: Send + Sync {
    /// Which θ slot the phase fills.
    fn id(&self) -> PhaseId;

    /// A name for reports, for example `discovery (rust)`.
    fn name(&self) -> String {
        self.id().name().to_owned()
    }

    /// Reads the artefacts it needs from the context, and puts its own there.
    ///
    /// # Errors
    /// Whatever stops the phase; the cycle records it and stops.
    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome>;
}
