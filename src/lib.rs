//! # miyabi-aws
//!
//! The engine of the Miyabi AWS optimisation agent. An agent improves an AWS estate in a closed
//! loop of six phases (θ1 Discovery … θ6 Learning) until the estate converges:
//!
//! ```text
//! Agent(Intent, World0) = lim n→∞ (θ6 ∘ θ5 ∘ θ4 ∘ θ3 ∘ θ2 ∘ θ1)^n (Intent, World0)
//! ```
//!
//! The crate is organised so that each part has its own room:
//!
//! - [`world`]: the versioned, serde world-state model (inventory + assessment), its schema;
//! - [`catalog`]: the price catalog that ships with the crate;
//! - [`assessment`]: the rules: cost, security checks and utilisation, pure functions of an
//!   inventory;
//! - [`aws`]: access to AWS: one [`aws::AwsSession`] per account, the retry layer, typed errors;
//! - [`phases`]: one module per phase: θ1 [`phases::discovery`], θ2 [`phases::planning`], θ3
//!   [`phases::optimization`], θ4 [`phases::deployment`], θ5 [`phases::monitoring`], θ6
//!   [`phases::learning`];
//! - [`plan`]: typed changes, plans and the execution plan; [`guardrails`]: what may run, and how;
//! - [`bridge`]: the legacy Python discovery scripts as a θ1 phase (subprocess JSON-RPC here,
//!   in process with the `miyabi-aws-embed` crate);
//! - [`cycle`]: the [`Phase`] trait, the [`CycleContext`] (services and the typed
//!   [`artefact`] store), the [`Cycle`] runner and its stop rules; it knows no concrete phase;
//! - [`fleet`]: many accounts (STS, Organizations) and the SQS worker of the event-driven
//!   platform;
//! - [`knowledge`]: the knowledge base kept across runs (outcomes, learned headroom, change
//!   times);
//! - [`clock`]: the time the phases work with (the system's, or a simulation's);
//! - [`output`]: the output folder, written atomically;
//! - [`iac`]: the estate and its target state as Terraform and CloudFormation;
//! - `cli` (feature `cli`, on by default): the `miyabi-aws` command line.
//!
//! Each phase renders its own Markdown report (`phases::*::report`).
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::pedantic)]
// Errors carry their context (service, operation, Region, cause); they are rare, so their size
// on the cold path is worth the detail.
#![allow(clippy::result_large_err)]

pub mod artefact;
pub mod assessment;
pub mod aws;
pub mod bridge;
pub mod catalog;
#[cfg(feature = "cli")]
pub mod cli;
pub mod clock;
pub mod cycle;
mod error;
pub mod fleet;
pub mod guardrails;
pub mod iac;
pub mod knowledge;
pub mod output;
pub mod owners;
pub mod phases;
pub mod plan;
pub mod progress;
pub mod purchase;
pub mod run_report;
pub mod world;

pub use cycle::{Cycle, CycleContext, CycleHook, CycleReport, Phase, PhaseId, PhaseOutcome, StopReason};
pub use error::{Error, ForeignPayload, Result};
pub use world::WorldState;
