//! Integration tests: one binary (the SDK crates link once), one module per area.
//!
//! Tests that need AWS start the local emulators themselves (once per process) and talk to them
//! through a recording, fault-injecting proxy. Each such test uses a Region of its own, so the
//! tests can run in parallel on one pair of emulators.

mod assessment;
mod bridge;
mod browser;
mod cycle;
mod deployment;
mod discovery;
mod faults;
mod fleet;
mod fleet_deploy;
mod fuzz;
mod iac;
mod incremental;
mod learning;
mod limits;
mod monitoring;
mod optimization;
mod partial;
mod remediation;
mod secrets;
mod support;
mod terraform;
mod world;
