//! The `execute_phase` contract of the plan, as serde types shared by both transports.
//!
//! Request params: `{phase, config{aws_region, profile, dry_run}, context{world_state,
//! previous_output}}`. Result: `{status, phase, output{world_state, reports, metrics}}`.
//! `config.lookback_hours`, `config.until` and `config.endpoint_url` are extensions, so that
//! both sides read the same metric window from the same endpoint.

use serde::{Deserialize, Serialize};

use super::error::RemoteError;
use crate::world::Inventory;

/// `config` of a request: one Region per request, as in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseConfig {
    /// The Region to scan.
    pub aws_region: String,
    /// The AWS profile, if any.
    pub profile: Option<String>,
    /// Discovery only reads; the flag is passed for the phases that write.
    pub dry_run: bool,
    /// Metric lookback, hours.
    pub lookback_hours: u32,
    /// End of the metric window, Unix seconds, on the hour.
    pub until: i64,
    /// Overrides the standard endpoint configuration (for a local emulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

/// `params` of `execute_phase`.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutePhaseParams<'a> {
    /// The phase to run, for example `discovery`.
    pub phase: &'a str,
    /// Where and how.
    pub config: &'a PhaseConfig,
    /// What earlier phases produced.
    pub context: PhaseContextParams,
}

/// `context` of a request. Discovery starts from nothing, so both are `null` for it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseContextParams {
    /// The latest world state.
    pub world_state: Option<serde_json::Value>,
    /// The previous phase's output.
    pub previous_output: Option<serde_json::Value>,
}

/// A JSON-RPC 2.0 request line.
#[derive(Debug, Serialize)]
pub struct Request<'a> {
    /// Always `2.0`.
    pub jsonrpc: &'static str,
    /// Matches the response to the request.
    pub id: u64,
    /// Always `execute_phase`.
    pub method: &'static str,
    /// The params.
    pub params: ExecutePhaseParams<'a>,
}

/// A JSON-RPC 2.0 response line, with the result left raw so that its shape errors can name
/// their path.
#[derive(Debug, Deserialize)]
pub(crate) struct Response<'a> {
    pub jsonrpc: String,
    pub id: serde_json::Value,
    #[serde(borrow, default)]
    pub result: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    pub error: Option<RemoteError>,
}

/// The `result` of `execute_phase` for discovery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutePhaseResult {
    /// `success`.
    pub status: String,
    /// The phase that ran.
    pub phase: String,
    /// What it produced.
    pub output: PhaseOutput,
}

/// `output` of a discovery result.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseOutput {
    /// The Region's capture.
    pub world_state: RegionCapture,
    /// Report files the script wrote.
    #[serde(default)]
    pub reports: Vec<String>,
    /// The script's own measurements.
    pub metrics: PhaseMetrics,
}

/// `output.metrics`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseMetrics {
    /// Resources found.
    pub resources_scanned: u64,
    /// The script's wall time.
    pub duration_ms: u64,
}

/// One Region as a legacy script captured it: the world-state inventory schema, before the
/// assessment (which Rust computes for every implementation alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionCapture {
    /// The account, when the script learned it.
    pub account_id: Option<String>,
    /// The Region scanned.
    pub region: String,
    /// Resources and series.
    pub inventory: Inventory,
}
