//! The assessment's schema: what a world state says the estate costs and risks. The rules that
//! compute it are pure functions in [`crate::assessment`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Cost, findings, score and utilisation of one inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assessment {
    /// Which catalog priced the estate.
    pub catalog: CatalogStamp,
    /// Monthly cost per priced or unpriced resource.
    pub costs: Vec<ResourceCost>,
    /// Sum of the priced resources' monthly cost, USD.
    pub monthly_total_usd: f64,
    /// How many resources could not be priced (they are not in the total).
    pub unpriced_count: usize,
    /// Check results, passing and failing.
    pub findings: Vec<Finding>,
    /// 0–100, see [`crate::assessment::security::score`].
    pub security_score: f64,
    /// Mean over running instances of their average CPU %, weighted by vCPU; `None` without data.
    pub utilisation_percent: Option<f64>,
}

/// The catalog's identity, so a reader knows which prices were used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogStamp {
    /// The catalog's source.
    pub source: String,
    /// The catalog's date.
    pub as_of: String,
}

/// The kinds of resource in an inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// EC2 instance.
    Ec2Instance,
    /// EBS volume.
    EbsVolume,
    /// Elastic IP.
    ElasticIp,
    /// Security group.
    SecurityGroup,
    /// S3 bucket.
    S3Bucket,
    /// RDS DB instance.
    RdsInstance,
    /// Network ACL.
    NetworkAcl,
    /// EBS snapshot.
    EbsSnapshot,
    /// RDS DB cluster.
    RdsCluster,
    /// RDS DB snapshot or DB cluster snapshot.
    RdsSnapshot,
    /// RDS event subscription.
    RdsEventSubscription,
    /// The account in one Region: a finding about an account-level setting.
    Account,
}

/// Severity of a check, after Prowler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Does not count in the score.
    Informational,
    /// Weight 1.
    Low,
    /// Weight 3.
    Medium,
    /// Weight 5.
    High,
    /// Weight 10.
    Critical,
}

impl Severity {
    /// Its name, lower-case, as Prowler and the world-state documents write it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Informational => "informational",
        }
    }

    /// The weight of the severity in the score.
    #[must_use]
    pub fn weight(self) -> f64 {
        match self {
            Self::Informational => 0.0,
            Self::Low => 1.0,
            Self::Medium => 3.0,
            Self::High => 5.0,
            Self::Critical => 10.0,
        }
    }
}

/// Outcome of one check on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum FindingStatus {
    /// The resource passes.
    Pass,
    /// The resource fails.
    Fail,
}

/// One check's result on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// Prowler-style check id.
    pub check_id: String,
    /// Severity.
    pub severity: Severity,
    /// Pass or fail.
    pub status: FindingStatus,
    /// The resource checked.
    pub resource_id: String,
    /// Its kind.
    pub kind: ResourceKind,
    /// Its Region.
    pub region: String,
    /// What was found.
    pub message: String,
}

/// The check id of the notice that a resource is missing from the cost total.
pub const UNPRICED_CHECK: &str = "cost_resource_unpriced";

impl Finding {
    /// Whether a security check produced it, rather than the cost notice that a resource is
    /// unpriced ([`UNPRICED_CHECK`]), which sits among the findings but is no security verdict.
    #[must_use]
    pub fn is_security(&self) -> bool {
        self.check_id != UNPRICED_CHECK
    }
}

/// The monthly cost of one resource, or why it could not be priced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceCost {
    /// Resource id.
    pub resource_id: String,
    /// Resource kind.
    pub kind: ResourceKind,
    /// Region.
    pub region: String,
    /// Monthly USD; `None` when unpriced.
    pub monthly_usd: Option<f64>,
    /// How the price was computed, or why it could not be.
    pub basis: String,
}
