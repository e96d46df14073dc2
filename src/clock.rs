//! Where the phases get the time from.
//!
//! Every phase that needs "now" (θ1's metric window, θ4's change times, θ5's read-back window)
//! asks the cycle's [`Clock`] rather than the system, so that a harness can run the loop on
//! simulated time: a workload simulator publishes the next period of metrics and moves the
//! clock past it, and the next θ1 sees that period as the latest data.

use chrono::{DateTime, Utc};

/// A source of the current time. Object-safe, so a cycle holds `Arc<dyn Clock>`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock; the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
