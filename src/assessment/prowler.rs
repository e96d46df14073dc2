//! What the engine takes from Prowler for the checks named after Prowler's: each check's
//! severity, resource type and finding types, and the CIS AWS Foundations Benchmark 7.0 and AWS
//! Foundational Security Best Practices requirements that list it.
//!
//! `prowler_reference.json` is generated from Prowler's repository at a pinned commit by
//! `scripts/gen_prowler_reference.py` (identifiers, severities and mappings only). A check the
//! engine runs under a Prowler id has Prowler's severity; a check whose meaning is the engine's
//! own has an id of its own, outside Prowler's (`miyabi_…`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::world::Severity;

/// One Prowler check, as the reference gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProwlerCheck {
    /// Prowler's service (`ec2`, `s3`, `rds`).
    pub service: String,
    /// Prowler's severity.
    pub severity: Severity,
    /// Prowler's resource type (`AwsEc2Instance`, …).
    pub resource_type: String,
    /// Its AWS Security Finding Format types (`Software and Configuration Checks/…`).
    pub types: Vec<String>,
    /// CIS AWS Foundations Benchmark 7.0 requirement ids that list the check.
    pub cis_7_0: Vec<String>,
    /// AWS Foundational Security Best Practices control ids that list the check.
    pub fsbp: Vec<String>,
}

/// The Prowler version and commit the reference was read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProwlerSource {
    /// Prowler's version at that commit.
    pub version: String,
    /// The commit.
    pub commit: String,
}

#[derive(Debug, Deserialize)]
struct Reference {
    prowler: ProwlerSource,
    checks: BTreeMap<String, ProwlerCheck>,
}

static REFERENCE: LazyLock<Reference> = LazyLock::new(|| {
    serde_json::from_str(include_str!("prowler_reference.json"))
        // The file is part of the crate and checked by a unit test: a failure is a build defect.
        .unwrap_or_else(|e| panic!("prowler_reference.json does not parse: {e}"))
});

/// Where the reference comes from.
#[must_use]
pub fn source() -> &'static ProwlerSource {
    &REFERENCE.prowler
}

/// Prowler's check `id`, if Prowler has one of that name (EC2, S3 and RDS only).
#[must_use]
pub fn check(id: &str) -> Option<&'static ProwlerCheck> {
    REFERENCE.checks.get(id)
}

/// Every Prowler check of the reference, by id.
pub fn checks() -> impl Iterator<Item = (&'static str, &'static ProwlerCheck)> {
    REFERENCE.checks.iter().map(|(id, c)| (id.as_str(), c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_parses_and_holds_prowlers_ec2_s3_and_rds_checks() {
        assert_eq!(source().version, "5.40.0");
        assert_eq!(source().commit.len(), 40);
        let per_service = |s: &str| checks().filter(|(_, c)| c.service == s).count();
        assert_eq!(
            (per_service("ec2"), per_service("s3"), per_service("rds")),
            (78, 22, 35)
        );
        let imds = check("ec2_instance_imdsv2_enabled").expect("a Prowler check");
        assert_eq!(imds.severity, Severity::High);
        assert_eq!(
            (imds.cis_7_0.as_slice(), imds.fsbp.as_slice()),
            (&["6.7".to_owned()][..], &["EC2.8".to_owned()][..])
        );
        assert!(check("ec2_securitygroup_allow_ingress_from_internet_to_tcp_ftp_port_20_21").is_none());
    }
}
