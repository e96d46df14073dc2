//! Findings in the AWS Security Finding Format, the input of Security Hub's
//! `BatchImportFindings`: one JSON array, one finding per (check, resource), PASS and FAIL alike,
//! as Prowler's `json-asff` output. ASFF has no JSON Schema; the tests validate it against the
//! operation's input shape in botocore's service model, shipped in `schema/external`.
//!
//! The product is the account's own (`product/<account>/default`, Security Hub's custom
//! integration). `Id` is stable across captures (account, Region, check, resource), so that
//! Security Hub updates a finding instead of adding one. Where Security Hub caps a field (title
//! 256 characters, description 1,024, tags without empty values) the value is cut to fit.

use serde_json::{json, Map, Value};

use super::subject::{subjects, Subject};
use crate::world::{FindingStatus, Severity, WorldState};

/// The ASFF schema version written.
pub const ASFF_SCHEMA_VERSION: &str = "2018-10-08";

/// At most this many findings per `BatchImportFindings` call.
pub const BATCH_LIMIT: usize = 100;

fn label(severity: Severity) -> &'static str {
    match severity {
        Severity::Informational => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

/// The ASFF findings of `world`'s security findings, as one JSON array, or `None` when the
/// capture did not learn the account id, which every ASFF finding must carry.
#[must_use]
pub fn asff(world: &WorldState) -> Option<Value> {
    let account = world.scope.account_id.as_deref()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let stamp = world.scope.captured_at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    Some(Value::Array(
        subjects(world).iter().map(|s| finding(s, account, &stamp)).collect(),
    ))
}

/// `text` cut to at most `max` characters, ending in `...` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

fn finding(s: &Subject<'_>, account: &str, stamp: &str) -> Value {
    let f = s.finding;
    let id = s.check.id();
    let partition = s.partition();
    let mut resource = json!({
        "Type": s.resource_type(),
        "Id": s.uid,
        "Partition": partition,
        "Region": f.region,
    });
    let tags: Map<String, Value> = s
        .tags
        .into_iter()
        .flatten()
        .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
        .take(50)
        .map(|(k, v)| (cut(k, 128), json!(cut(v, 256))))
        .collect();
    if !tags.is_empty() {
        resource["Tags"] = Value::Object(tags);
    }
    let mut requirements = Vec::new();
    let mut standards = Vec::new();
    if let Some(p) = s.prowler {
        if !p.cis_7_0.is_empty() {
            requirements.push(cut(&format!("CIS-7.0 {}", p.cis_7_0.join(" ")), 63));
            standards.push(json!({"StandardsId": "CIS-7.0"}));
        }
        if !p.fsbp.is_empty() {
            requirements.push(cut(&format!("AWS-FSBP {}", p.fsbp.join(" ")), 63));
            standards.push(json!({"StandardsId": "AWS-Foundational-Security-Best-Practices"}));
        }
    }
    let mut compliance = json!({
        "Status": match f.status { FindingStatus::Pass => "PASSED", FindingStatus::Fail => "FAILED" },
    });
    if !requirements.is_empty() {
        compliance["RelatedRequirements"] = json!(requirements);
        compliance["AssociatedStandards"] = json!(standards);
    }
    let types = s
        .prowler
        .map(|p| p.types.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| vec!["Software and Configuration Checks".to_owned()]);
    let mut recommendation = json!({
        "Text": cut(
            &format!("Change the {} so that it passes {id}; `miyabi-aws plan` writes the change as IaC where the engine has one.", s.resource_type()),
            512,
        ),
    });
    if let Some(url) = s.url() {
        recommendation["Url"] = json!(url);
    }
    json!({
        "SchemaVersion": ASFF_SCHEMA_VERSION,
        "Id": cut(&format!("miyabi-aws/{account}/{}/{id}/{}", f.region, f.resource_id), 512),
        "ProductArn": format!("arn:{partition}:securityhub:{}:{account}:product/{account}/default", f.region),
        "GeneratorId": format!("miyabi-aws-{id}"),
        "AwsAccountId": account,
        "Types": types,
        "FirstObservedAt": stamp,
        "CreatedAt": stamp,
        "UpdatedAt": stamp,
        "Severity": {"Label": label(f.severity)},
        "Title": cut(&s.title(), 256),
        "Description": cut(&f.message, 1024),
        "Resources": [resource],
        "Compliance": compliance,
        "Remediation": {"Recommendation": recommendation},
        "RecordState": "ACTIVE",
        "ProductFields": {
            "ProviderName": "miyabi-aws",
            "ProviderVersion": env!("CARGO_PKG_VERSION"),
            "ResourceName": cut(&s.name, 2048),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cut_keeps_short_text_and_marks_what_it_shortens() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abcdef", 5), "ab...");
        assert_eq!(cut("ééééé", 5), "ééééé");
    }
}
