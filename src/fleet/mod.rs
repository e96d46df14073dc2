//! The fleet: the engine over many accounts, and as a worker of AWS's own queue.
//!
//! The engine never distributes work itself. Within one process, [`accounts`] runs a cycle per
//! account (each with its own session, limiter and reports) up to a concurrency cap; across
//! processes, workers take cycle requests from SQS, and ECS scales them on the queue's depth.

pub mod accounts;
pub mod client;
pub mod journal;
pub mod lease;
pub mod request;
pub mod scaling;
pub mod store;
pub mod summary;
pub mod worker;

pub use accounts::{for_each_account, resolve, AccountSource, AccountTarget};
pub use journal::BucketJournal;
pub use lease::{Lease, Taken};
pub use request::{Approve, CycleRequest, CycleResult, RequestError, RequestMode};
pub use store::{ResultsBucket, Written};
pub use summary::{AccountRun, FleetSummary, IterationFigures, RunStatus};
pub use worker::{Handled, Worker, WorkerConfig, WorkerStats};
