//! The PyO3 bridge, Rust side: the legacy Python discovery scripts as a θ1 phase.
//!
//! A [`PythonBridge`] runs a legacy script once per Region through a [`PhaseTransport`] and
//! feeds what comes back to the same assessment as the Rust discovery. Two transports exist:
//!
//! - [`SubprocessTransport`]: JSON-RPC 2.0 over the child's stdin/stdout, the plan's protocol;
//! - `InProcessTransport`, in the `miyabi-aws-embed` crate: the module is imported into an
//!   embedded interpreter and its objects are converted straight into the Rust model.
//!
//! A phase can so move from Python to Rust one at a time, with the same inputs and outputs.

mod error;
pub mod protocol;
mod subprocess;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use self::error::{BridgeError, RemoteError, RemoteErrorData, RpcCode};
pub use self::protocol::{PhaseConfig, RegionCapture};
pub use self::subprocess::{decode_line, Script, SubprocessTransport};
use crate::aws::AwsSession;
use crate::catalog::PriceCatalog;
use crate::cycle::{CycleContext, Phase, PhaseId, PhaseOutcome};
use crate::phases::discovery::{publish_capture, DiscoveryOutput};
use crate::world::{Inventory, ScanGap};
use crate::{Error, Result};

/// How a legacy phase is reached. Object-safe: a bridge holds `Arc<dyn PhaseTransport>`.
#[async_trait]
pub trait PhaseTransport: Send + Sync {
    /// `subprocess` or `in-process`, for reports and errors.
    fn kind(&self) -> &'static str;

    /// Runs the legacy discovery for one Region.
    ///
    /// # Errors
    /// A [`BridgeError`] naming the script and what went wrong.
    async fn discover_region(&self, config: &PhaseConfig) -> Result<RegionCapture, BridgeError>;
}

/// θ1 through a legacy Python script: one request per Region, concurrently.
#[derive(Clone)]
pub struct PythonBridge {
    transport: Arc<dyn PhaseTransport>,
    regions: Vec<String>,
    lookback_hours: u32,
    until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for PythonBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonBridge")
            .field("transport", &self.transport.kind())
            .field("regions", &self.regions)
            .finish_non_exhaustive()
    }
}

impl PythonBridge {
    /// A bridge over `transport` scanning `regions` with a 14-day lookback.
    #[must_use]
    pub fn new(transport: Arc<dyn PhaseTransport>, regions: Vec<String>) -> Self {
        Self {
            transport,
            regions,
            lookback_hours: 14 * 24,
            until: None,
        }
    }

    /// Sets the metric lookback in hours.
    #[must_use]
    pub fn with_lookback_hours(mut self, hours: u32) -> Self {
        self.lookback_hours = hours;
        self
    }

    /// Ends the metric window at `until` (rounded down to the hour) instead of now.
    #[must_use]
    pub fn with_until(mut self, until: Option<DateTime<Utc>>) -> Self {
        self.until = until;
        self
    }

    /// Runs the script for every Region, with the profile and endpoint of `aws`, and assesses
    /// the merged inventory with `catalog`.
    ///
    /// # Errors
    /// [`Error::Bridge`] when the script cannot be run or answers wrongly, or AWS refused the
    /// credentials. An AWS failure in one Region does not error: that Region becomes a gap and
    /// the world state is marked partial.
    pub async fn discover(&self, aws: &AwsSession, catalog: &PriceCatalog) -> Result<DiscoveryOutput> {
        if self.regions.is_empty() {
            return Err(Error::Config("the Python bridge needs at least one Region".into()));
        }
        if self.lookback_hours == 0 {
            return Err(Error::Config("lookback_hours must be at least 1".into()));
        }
        let until = self.until.unwrap_or_else(Utc::now).timestamp();
        let requests: Vec<PhaseConfig> = self
            .regions
            .iter()
            .map(|region| PhaseConfig {
                aws_region: region.clone(),
                profile: aws.options().profile.clone(),
                dry_run: true,
                lookback_hours: self.lookback_hours,
                until: until - until.rem_euclid(3600),
                endpoint_url: aws.options().endpoint_url.clone(),
            })
            .collect();
        let replies =
            futures::future::join_all(requests.iter().map(|config| self.transport.discover_region(config))).await;

        let mut inventory = Inventory::default();
        let mut account = None;
        let mut gaps = Vec::new();
        for (config, reply) in requests.iter().zip(replies) {
            match reply {
                Ok(capture) => {
                    account = account.or(capture.account_id);
                    merge_region(&mut inventory, capture.inventory);
                }
                Err(BridgeError::Remote { error, .. }) if error.kind().is_scan_failure() => {
                    let data = error.data.clone().unwrap_or_default();
                    tracing::warn!(region = %config.aws_region, %error, "legacy scan failed; the capture will be partial");
                    gaps.push(ScanGap {
                        region: data.region.unwrap_or_else(|| config.aws_region.clone()),
                        service: data.service.unwrap_or_else(|| "unknown".into()),
                        operation: data.operation.unwrap_or_else(|| "unknown".into()),
                        resources: Vec::new(),
                        error: error.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(account) = &account {
            aws.learn_account(account);
        }
        let world = crate::phases::discovery::capture_world(
            inventory,
            account,
            self.regions.clone(),
            (self.lookback_hours, until - until.rem_euclid(3600)),
            gaps,
            catalog,
        );
        let calls = BTreeMap::from([(
            format!("{} bridge requests", self.transport.kind()),
            requests.len() as u64,
        )]);
        Ok(DiscoveryOutput {
            world,
            calls_per_service: calls,
            metrics: None,
        })
    }
}

/// Adds one Region's capture of a legacy script. Every Region's run lists all buckets (S3 is
/// global) with their size series, so buckets and bucket series are kept once.
pub fn merge_region(into: &mut Inventory, mut from: Inventory) {
    let known_buckets: BTreeSet<String> = into.buckets.iter().map(|b| b.name.clone()).collect();
    from.buckets.retain(|b| !known_buckets.contains(&b.name));
    from.metrics
        .retain(|m| !(m.namespace == "AWS/S3" && known_buckets.contains(&m.resource_id)));
    into.extend_from(from);
}

#[async_trait]
impl Phase for PythonBridge {
    fn id(&self) -> PhaseId {
        PhaseId::Discovery
    }

    fn name(&self) -> String {
        format!("discovery (python, {})", self.transport.kind())
    }

    /// Like the Rust discovery: writes `world_state_N.json` and `discovery_report.md`; a failed
    /// Region is a gap of the world state, not a failure of the phase.
    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let out = if self.until.is_some() {
            self.discover(&ctx.aws, &ctx.catalog).await?
        } else {
            // The metric window ends at the cycle's time, which a simulation may have moved.
            let at_clock = self.clone().with_until(Some(ctx.clock.now()));
            at_clock.discover(&ctx.aws, &ctx.catalog).await?
        };
        publish_capture(ctx, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{MetricSeries, S3Bucket};

    fn bucket(name: &str) -> S3Bucket {
        serde_json::from_value(serde_json::json!({
            "name": name, "arn": format!("arn:aws:s3:::{name}"), "region": "us-east-1", "created": null,
            "public_access_block": null, "policy_is_public": null, "acl_grants": [], "default_encryption": null,
            "versioning": "off", "logging_enabled": false, "size_bytes": 1.0, "tags": {}, "owner_agent": "Steve Jobs"
        }))
        .unwrap()
    }

    fn size_series(name: &str) -> MetricSeries {
        serde_json::from_value(serde_json::json!({
            "resource_id": name, "region": "us-east-1", "namespace": "AWS/S3", "metric_name": "BucketSizeBytes",
            "dimensions": {"BucketName": name}, "stat": "Average", "period_seconds": 86400,
            "timestamps": [1], "values": [1.0]
        }))
        .unwrap()
    }

    #[test]
    fn buckets_listed_by_every_region_are_kept_once() {
        let region = || Inventory {
            buckets: vec![bucket("a"), bucket("b")],
            metrics: vec![size_series("a"), size_series("b")],
            ..Inventory::default()
        };
        let mut merged = Inventory::default();
        merge_region(&mut merged, region());
        merge_region(&mut merged, region());
        assert_eq!(merged.buckets.len(), 2);
        assert_eq!(merged.metrics.len(), 2);
    }
}
