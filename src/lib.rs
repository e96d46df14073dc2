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
//! - [`world`]: the versioned, serde world-state model (inventory + assessment);
//! - [`catalog`]: the price catalog that ships with the crate;
//! - [`assessment`]: cost, security checks and utilisation, computed from an inventory;
//! - [`aws`]: access to AWS: configuration, the retry layer, typed errors;
//! - [`phases`]: one module per phase: θ1 [`phases::discovery`], θ2 [`phases::planning`], θ3
//!   [`phases::optimization`], θ4 [`phases::deployment`], θ5 [`phases::monitoring`], θ6
//!   [`phases::learning`];
//! - [`plan`]: typed changes, plans and the execution plan; [`guardrails`]: what may run, and how;
//! - [`bridge`]: the legacy Python discovery scripts as a θ1 phase (subprocess JSON-RPC, or
//!   in process with the `python` feature);
//! - [`cycle`]: the [`Phase`] trait and the [`Cycle`] runner with its convergence rule;
//! - [`clock`]: the time the phases work with (the system's, or a simulation's);
//! - [`iac`]: the estate and its target state as Terraform and CloudFormation;
//! - [`report`]: the Markdown reports written to the output folder.
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::pedantic)]
// Errors carry their context (service, operation, Region, cause); they are rare, so their size
// on the cold path is worth the detail.
#![allow(clippy::result_large_err)]

pub mod assessment;
pub mod aws;
pub mod bridge;
pub mod catalog;
pub mod clock;
pub mod cycle;
mod error;
pub mod guardrails;
pub mod iac;
pub mod owners;
pub mod phases;
pub mod plan;
pub mod progress;
pub mod report;
pub mod world;

pub use cycle::{Cycle, CycleContext, CycleHook, CycleReport, Phase, PhaseId, StopReason};
pub use error::{Error, ForeignPayload, Result};
pub use world::WorldState;
