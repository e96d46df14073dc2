//! Findings as SARIF 2.1.0, the format code-scanning tools ingest
//! (`schema/external/sarif-schema-2.1.0.json`, OASIS errata01).
//!
//! One run, whose driver lists every check of the registry as a rule: its severity as a level
//! and as GitHub's `security-severity`, and its CIS AWS Foundations 7.0 and AWS Foundational
//! Security Best Practices controls as tags. Each failing finding is a result. A cloud resource
//! has no file, so a result's location is logical: the resource by its ARN, with its Region and
//! type; `partialFingerprints` keep one finding's identity across runs.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::checks::registry;
use super::prowler;
use super::subject::{subjects, title};
use crate::world::{FindingStatus, Severity, WorldState};

/// The SARIF version written.
pub const SARIF_VERSION: &str = "2.1.0";

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Informational => "note",
    }
}

/// GitHub's bands: ≥ 9 critical, 7–8.9 high, 4–6.9 medium, below 4 low.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.0",
        Severity::High => "7.0",
        Severity::Medium => "4.0",
        Severity::Low => "2.0",
        Severity::Informational => "0.0",
    }
}

/// The SARIF log of `world`'s failing security findings.
#[must_use]
pub fn sarif(world: &WorldState) -> Value {
    let checks = registry();
    let rules: Vec<Value> = checks
        .iter()
        .map(|check| {
            let reference = prowler::check(check.id());
            let mut tags = vec!["security".to_owned(), format!("severity/{}", check.severity().name())];
            if let Some(r) = reference {
                tags.extend(r.cis_7_0.iter().map(|c| format!("CIS-7.0/{c}")));
                tags.extend(r.fsbp.iter().map(|c| format!("AWS-FSBP/{c}")));
            }
            let source = if reference.is_some() {
                format!("Prowler {} check", prowler::source().version)
            } else {
                "a check of miyabi-aws's own".to_owned()
            };
            let mut rule = json!({
                "id": check.id(),
                "name": check.id(),
                "shortDescription": {"text": title(check.id())},
                "fullDescription": {"text": format!("{}: {source}, judging {:?} resources.", check.id(), check.kind())},
                "defaultConfiguration": {"level": level(check.severity())},
                "properties": {"tags": tags, "security-severity": security_severity(check.severity())},
            });
            if reference.is_some() {
                rule["helpUri"] = json!(format!("https://hub.prowler.com/check/{}", check.id()));
            }
            rule
        })
        .collect();
    let index: HashMap<&str, usize> = checks.iter().enumerate().map(|(k, c)| (c.id(), k)).collect();
    let account = world.scope.account_id.clone().unwrap_or_default();
    let results: Vec<Value> = subjects(world)
        .iter()
        .filter(|s| s.finding.status == FindingStatus::Fail)
        .map(|s| {
            let f = s.finding;
            json!({
                "ruleId": f.check_id,
                "ruleIndex": index[s.check.id()],
                "kind": "fail",
                "level": level(f.severity),
                "message": {"text": f.message},
                "locations": [{"logicalLocations": [{
                    "name": f.resource_id,
                    "fullyQualifiedName": s.uid,
                    "kind": "resource",
                    "properties": {"awsAccountId": account, "region": f.region, "resourceType": s.resource_type()},
                }]}],
                "partialFingerprints": {"miyabiFinding/v1": s.key()},
                "properties": {"severity": f.severity.name()},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "miyabi-aws",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "automationDetails": {"id": format!("miyabi-aws/{account}/{}", world.scope.captured_at.to_rfc3339())},
            "results": results,
        }],
    })
}
