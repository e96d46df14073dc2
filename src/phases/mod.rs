//! The phases of the loop, one module each.

pub mod deployment;
pub mod discovery;
pub mod learning;
pub mod monitoring;
pub mod optimization;
pub mod planning;

pub use deployment::{Deployment, DeploymentConfig};
pub use discovery::{Discovery, DiscoveryConfig};
pub use learning::{Learning, LearningConfig};
pub use monitoring::{Monitoring, MonitoringConfig};
pub use optimization::{Optimization, OptimizationConfig};
pub use planning::{Planning, PlanningConfig};
