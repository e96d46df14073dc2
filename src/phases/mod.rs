//! The phases of the loop, one module each.

pub mod discovery;

pub use discovery::{Discovery, DiscoveryConfig};
