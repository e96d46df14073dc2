//! Progress of long work, for terminals and services. Phases report through a [`ProgressSink`];
//! the default sink forwards to `tracing`.

use std::sync::Arc;

/// One step of progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    /// The phase reporting, for example `discovery`.
    pub phase: &'static str,
    /// What is being worked on, for example `us-east-1 ec2`.
    pub scope: String,
    /// What happened.
    pub message: String,
    /// Units done so far, when countable.
    pub done: Option<u64>,
    /// Units in all, when known.
    pub total: Option<u64>,
}

/// Receives progress events. Implementations must be cheap: they are called on the scan path.
pub trait ProgressSink: Send + Sync {
    /// Called for each event.
    fn report(&self, event: &ProgressEvent);
}

/// Forwards progress to `tracing` at info level.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingProgress;

impl ProgressSink for TracingProgress {
    fn report(&self, e: &ProgressEvent) {
        tracing::info!(phase = e.phase, scope = %e.scope, done = e.done, total = e.total, "{}", e.message);
    }
}

/// A shared progress sink.
pub type SharedProgress = Arc<dyn ProgressSink>;
