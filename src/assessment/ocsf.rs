//! Findings as OCSF 1.5.0 Detection Findings (class 2004, profiles `cloud` and `datetime`), the
//! shape of Prowler's `json-ocsf` output: one JSON array, one event per finding, PASS and FAIL
//! alike. Validated against `schema/external/ocsf-1.5.0-detection_finding.schema.json`.
//!
//! Prowler's field mapping is followed: the check id is `metadata.event_code` and the analytic's
//! uid, the verdict is `status_code` and the finding's sentence `status_detail` and `message`,
//! the resource is `resources[0]` by ARN, and the compliance requirements go to
//! `unmapped.compliance`. Titles, descriptions and remediation text are the engine's own.

use serde_json::{json, Map, Value};

use super::prowler;
use super::subject::{subjects, Subject};
use crate::world::{FindingStatus, Severity, WorldState};

/// The OCSF version written.
pub const OCSF_VERSION: &str = "1.5.0";

/// The OCSF severity id: 1 Informational to 5 Critical.
fn severity_id(severity: Severity) -> u8 {
    match severity {
        Severity::Informational => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

fn capitalised(severity: Severity) -> &'static str {
    match severity {
        Severity::Informational => "Informational",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

/// The OCSF events of `world`'s security findings, as one JSON array.
#[must_use]
pub fn ocsf(world: &WorldState) -> Value {
    let time = world.scope.captured_at;
    let (seconds, stamp) = (time.timestamp(), time.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    Value::Array(subjects(world).iter().map(|s| event(s, seconds, &stamp)).collect())
}

fn event(s: &Subject<'_>, seconds: i64, stamp: &str) -> Value {
    let f = s.finding;
    let id = s.check.id();
    let status_code = match f.status {
        FindingStatus::Pass => "PASS",
        FindingStatus::Fail => "FAIL",
    };
    let mut compliance = Map::new();
    let mut types: Vec<String> = Vec::new();
    if let Some(p) = s.prowler {
        if !p.cis_7_0.is_empty() {
            compliance.insert("CIS-7.0".into(), json!(p.cis_7_0));
        }
        if !p.fsbp.is_empty() {
            compliance.insert("AWS-Foundational-Security-Best-Practices".into(), json!(p.fsbp));
        }
        types.clone_from(&p.types);
    }
    let origin = match s.prowler {
        Some(_) => format!(
            "the meaning of Prowler {}'s check of this id",
            prowler::source().version
        ),
        None => "a meaning of miyabi-aws's own".to_owned(),
    };
    let mut cloud = json!({"provider": "aws", "region": f.region});
    if !s.account.is_empty() {
        cloud["account"] = json!({"uid": s.account, "type_id": 10, "type": "AWS Account"});
    }
    let mut remediation = json!({
        "desc": format!(
            "Change the {} so that it passes {id}; `miyabi-aws plan` writes the change as IaC where the engine has one.",
            s.resource_type()
        ),
    });
    let mut unmapped = json!({"compliance": compliance, "provider": "aws"});
    if let Some(url) = s.url() {
        remediation["references"] = json!([url]);
        unmapped["related_url"] = json!(url);
    }
    json!({
        "message": f.message,
        "metadata": {
            "event_code": id,
            "product": {
                "uid": "miyabi-aws",
                "name": "miyabi-aws",
                "vendor_name": "miyabi-aws",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "profiles": ["cloud", "datetime"],
            "version": OCSF_VERSION,
        },
        "severity_id": severity_id(f.severity),
        "severity": capitalised(f.severity),
        "status": "New",
        "status_id": 1,
        "status_code": status_code,
        "status_detail": f.message,
        "time": seconds,
        "time_dt": stamp,
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200_401,
        "type_name": "Detection Finding: Create",
        "finding_info": {
            "uid": format!("miyabi-aws-{id}-{}-{}-{}", s.account, f.region, f.resource_id),
            "title": s.title(),
            "desc": format!("{id} judges each {} by {origin}.", s.resource_type()),
            "types": types,
            "created_time": seconds,
            "created_time_dt": stamp,
            "analytic": {"name": s.title(), "uid": id, "type_id": 1, "type": "Rule", "category": s.service()},
        },
        "resources": [{
            "uid": s.uid,
            "name": s.name,
            "type": s.resource_type(),
            "region": f.region,
            "cloud_partition": s.partition(),
            "group": {"name": s.service()},
            "labels": s.labels(),
            "data": {"details": f.resource_id, "metadata": {"kind": f.kind}},
        }],
        "cloud": cloud,
        "risk_details": format!("Rated {} by {}.", s.check.severity().name(),
            if s.prowler.is_some() { "Prowler" } else { "miyabi-aws" }),
        "remediation": remediation,
        "unmapped": unmapped,
    })
}
