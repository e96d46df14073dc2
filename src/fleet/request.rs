//! The fleet's messages: a cycle request (the body of an SQS message) and its result
//! (`result.json`). Both have JSON Schemas in `schema/`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::summary::{AccountRun, RunStatus};
use crate::aws::AssumeRole;

/// The version of the request and result formats this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
/// The longest tenant or request id: a key under the results bucket stays far below S3's
/// 1,024 bytes.
pub const MAX_ID_LEN: usize = 128;
/// The most iterations a request may ask for.
pub const MAX_ITERATIONS: u32 = 20;

/// Whether θ4 changes the estate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestMode {
    /// Read, plan and report; change nothing.
    DryRun,
    /// Apply the approved steps.
    Apply,
}

/// The keyword `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AllSteps {
    /// Every step.
    #[serde(rename = "all")]
    All,
}

/// What a human approved: every step, or the steps with these ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Approve {
    /// `"all"`.
    All(AllSteps),
    /// Step ids.
    Ids(Vec<String>),
}

/// One cycle request: run the loop for a tenant in an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CycleRequest {
    /// The format's version: 1.
    pub schema_version: u32,
    /// Unique per request; a redelivered or repeated request with the same id runs once.
    /// Letters, digits, `_`, `-` and `.`, starting with a letter or digit, at most 128.
    pub request_id: String,
    /// The tenant the request is for: its results go under `<tenant_id>/`. Same rules as
    /// `request_id`.
    pub tenant_id: String,
    /// The account to work in, through its role; absent means the worker's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AssumeRole>,
    /// The Regions to work in, at least one.
    pub regions: Vec<String>,
    /// `dry_run` or `apply`.
    pub mode: RequestMode,
    /// What was approved (`"all"` or step ids); nothing when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<Approve>,
    /// The iteration limit of the loop (1–20); 10 when absent, 1 in a dry run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
}

/// Why a message is not a request this build will run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Not a request at all (not JSON, missing or unknown fields, a bad id): nothing in it can
    /// be trusted to name a prefix, so it is left for the queue's dead-letter queue.
    #[error("malformed cycle request at {path}: {message}")]
    Malformed {
        /// Where in the message (`.` for the whole).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A well-formed request that cannot be run as asked: its result says why (`refused`).
    #[error("refused cycle request {} of tenant {}: {reason}", request.request_id, request.tenant_id)]
    Refused {
        /// The request.
        request: Box<CycleRequest>,
        /// Why.
        reason: String,
    },
}

/// Checks a tenant or request id: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most [`MAX_ID_LEN`], no
/// `..`. So it is one key segment that can name neither a parent (`..`), another segment
/// (`/`), nor the `.miyabi/` state.
///
/// # Errors
/// Why it is refused, in words.
pub fn check_id(id: &str) -> Result<(), String> {
    let first_ok = id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if id.is_empty() {
        Err("is empty".to_owned())
    } else if id.len() > MAX_ID_LEN {
        Err(format!("is {} bytes long, over {MAX_ID_LEN}", id.len()))
    } else if !first_ok {
        Err(format!("{id:?} does not start with a letter or digit"))
    } else if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Err(format!("{id:?} holds {c:?} (letters, digits, '_', '-' and '.' only)"))
    } else if id.contains("..") {
        Err(format!("{id:?} holds \"..\""))
    } else {
        Ok(())
    }
}

/// A Region name as AWS spells them: `us-east-1`, `us-gov-west-1`, `ap-southeast-2`.
fn region_ok(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

impl CycleRequest {
    /// Reads and checks a message body.
    ///
    /// # Errors
    /// [`RequestError::Malformed`] when it is not a request, [`RequestError::Refused`] when it
    /// is one that cannot be run as asked.
    pub fn parse(body: &str) -> Result<Self, RequestError> {
        let de = &mut serde_json::Deserializer::from_str(body);
        let request: Self = serde_path_to_error::deserialize(de).map_err(|e| RequestError::Malformed {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        for (field, id) in [("tenant_id", &request.tenant_id), ("request_id", &request.request_id)] {
            check_id(id).map_err(|why| RequestError::Malformed {
                path: field.to_owned(),
                message: why,
            })?;
        }
        match request.check() {
            Ok(()) => Ok(request),
            Err(reason) => Err(RequestError::Refused {
                request: Box::new(request),
                reason,
            }),
        }
    }

    /// What makes a well-formed request unrunnable.
    fn check(&self) -> Result<(), String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "schema_version {} is not supported (this worker reads {SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        if let Some(role) = &self.account {
            role.account().map_err(|e| e.to_string())?;
        }
        if self.regions.is_empty() {
            return Err("regions is empty".to_owned());
        }
        if let Some(bad) = self.regions.iter().find(|r| !region_ok(r)) {
            return Err(format!("{bad:?} is not a Region name"));
        }
        if let Some(n) = self.max_iterations.filter(|n| !(1..=MAX_ITERATIONS).contains(n)) {
            return Err(format!("max_iterations {n} is outside 1–{MAX_ITERATIONS}"));
        }
        Ok(())
    }

    /// The results prefix: `<tenant_id>/<request_id>/`.
    #[must_use]
    pub fn prefix(&self) -> String {
        format!("{}/{}/", self.tenant_id, self.request_id)
    }

    /// The iteration limit: as asked, else 10 when applying and 1 in a dry run (another
    /// iteration of a dry run would find the same estate).
    #[must_use]
    pub fn iterations(&self) -> u32 {
        match (self.max_iterations, self.mode) {
            (Some(n), _) => n,
            (None, RequestMode::Apply) => 10,
            (None, RequestMode::DryRun) => 1,
        }
    }
}

/// `result.json`: how a request ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CycleResult {
    /// The format's version: 1.
    pub schema_version: u32,
    /// `succeeded`, `partial`, `failed` or `refused`.
    pub status: RunStatus,
    /// The request, as received.
    pub request: CycleRequest,
    /// The worker that ran it.
    pub worker: String,
    /// When the worker began and ended.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// What failed or why it was refused, naming the account.
    pub error: Option<String>,
    /// The account's run: per iteration its cost, score and phase timings, and the API calls
    /// made in the account. Absent when refused.
    pub run: Option<AccountRun>,
    /// The worker's own API calls for the request (queue, results bucket), per service.
    pub worker_api_calls: BTreeMap<String, u64>,
    /// `GetMetricData` metrics θ1 requested in the account over the request's iterations:
    /// what CloudWatch bills (USD 0.01 per 1,000 in us-east-1).
    #[serde(default)]
    pub metrics_requested: u64,
    /// The share of the account's API quotas the request's calls kept to: the worker's,
    /// divided among the workers present in the account when its cycle began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_share: Option<f64>,
    /// Steps of an interrupted apply (a worker killed mid-cycle) this run found and reverted.
    pub recovered_steps: usize,
    /// The objects written under the request's prefix, result.json aside.
    pub outputs: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(extra: &str) -> String {
        format!(
            r#"{{"schema_version":1,"request_id":"r-1","tenant_id":"acme","regions":["us-east-1"],"mode":"dry_run"{extra}}}"#
        )
    }

    #[test]
    fn a_well_formed_request_reads_back() {
        let r = CycleRequest::parse(&body(
            r#","account":{"role_arn":"arn:aws:iam::111111111111:role/R","external_id":"e"},"approve":"all","max_iterations":3"#,
        ))
        .unwrap();
        assert_eq!(r.prefix(), "acme/r-1/");
        assert_eq!(r.approve, Some(Approve::All(AllSteps::All)));
        assert_eq!(r.iterations(), 3);
        let ids = CycleRequest::parse(&body(r#","approve":["s1","s2"]"#)).unwrap();
        assert_eq!(ids.approve, Some(Approve::Ids(vec!["s1".into(), "s2".into()])));
        assert_eq!(ids.iterations(), 1, "a dry run needs one iteration");
    }

    #[test]
    fn crafted_ids_are_malformed_so_nothing_escapes_its_prefix() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        for id in [
            "",
            "..",
            "../other",
            "a/b",
            "a/../../b",
            ".miyabi",
            "-x",
            "a..b",
            "a b",
            "é",
            "a\\b",
            long.as_str(),
        ] {
            for field in ["tenant_id", "request_id"] {
                let mut v: serde_json::Value = serde_json::from_str(&body("")).unwrap();
                v[field] = serde_json::Value::String(id.to_owned());
                match CycleRequest::parse(&v.to_string()) {
                    Err(RequestError::Malformed { path, .. }) => assert_eq!(path, field),
                    other => panic!("{field} = {id:?} gave {other:?}"),
                }
            }
        }
        assert!(check_id(&"a".repeat(MAX_ID_LEN)).is_ok());
        assert!(check_id("Tenant_7.v2-x").is_ok());
    }

    #[test]
    fn what_is_not_a_request_is_malformed_and_what_cannot_run_is_refused() {
        let malformed = |text: &str| matches!(CycleRequest::parse(text), Err(RequestError::Malformed { .. }));
        assert!(malformed("not json"));
        assert!(malformed("{}"));
        assert!(malformed(&body(r#","colour":"red""#)), "unknown fields are refused");
        assert!(malformed(&body(r#","mode":"yolo""#)));
        assert!(malformed(&body(r#","approve":"some""#)));
        let refused = |extra: &str| matches!(CycleRequest::parse(&body(extra)), Err(RequestError::Refused { .. }));
        let with = |field: &str, value: &str| {
            let mut v: serde_json::Value = serde_json::from_str(&body("")).unwrap();
            v[field] = serde_json::from_str(value).unwrap();
            matches!(CycleRequest::parse(&v.to_string()), Err(RequestError::Refused { .. }))
        };
        assert!(with("schema_version", "2"));
        assert!(with("regions", "[]"));
        assert!(with("regions", r#"["US-EAST-1"]"#));
        assert!(with("regions", r#"["us-east-1/../x"]"#));
        assert!(refused(r#","max_iterations":0"#));
        assert!(refused(r#","max_iterations":21"#));
        assert!(refused(r#","account":{"role_arn":"arn:aws:iam::1:role/R"}"#));
        assert!(!with("regions", r#"["us-gov-west-1","ap-southeast-2"]"#));
    }
}
