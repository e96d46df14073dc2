//! Owner agents ("Service-as-Agent"): each service family has a persona and an autonomy level
//! (0–10) saying how far its changes may be applied without a human. These are configuration
//! defaults from the Miyabi plan, not hard-coded branches.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One owner persona.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OwnerAgent {
    /// Persona name, for example `Bill Gates`.
    pub persona: String,
    /// Service family, for example `compute`.
    pub family: String,
    /// Autonomy level, 0–10.
    pub autonomy: u8,
}

/// Maps AWS services to their owner agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OwnerDirectory {
    /// Owner per service key (`ec2`, `ebs`, `s3`, `rds`, `lambda`, …).
    pub by_service: BTreeMap<String, OwnerAgent>,
    /// Autonomy for services with no owner.
    pub default_autonomy: u8,
}

impl Default for OwnerDirectory {
    fn default() -> Self {
        let agent = |persona: &str, family: &str, autonomy| OwnerAgent {
            persona: persona.into(),
            family: family.into(),
            autonomy,
        };
        let table = [
            ("ec2", agent("Bill Gates", "compute", 6)),
            ("ebs", agent("Bill Gates", "compute", 6)),
            ("ecs", agent("Bill Gates", "compute", 6)),
            ("lambda", agent("Bill Gates", "compute", 8)),
            ("s3", agent("Steve Jobs", "frontend", 5)),
            ("cloudfront", agent("Steve Jobs", "frontend", 5)),
            ("autoscaling", agent("Napoleon", "scaling", 5)),
            ("elb", agent("Napoleon", "scaling", 5)),
            ("cloudwatch", agent("Drucker", "monitoring", 5)),
            ("apigateway", agent("Kotler", "communication", 5)),
            ("sns", agent("Kotler", "communication", 5)),
            ("events", agent("Kotler", "communication", 5)),
            ("rds", agent("Noguchi", "data", 4)),
            ("dynamodb", agent("Noguchi", "data", 4)),
        ];
        Self {
            by_service: table.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            default_autonomy: 5,
        }
    }
}

impl OwnerDirectory {
    /// The persona owning `service`, or `unowned`.
    #[must_use]
    pub fn persona(&self, service: &str) -> &str {
        self.by_service.get(service).map_or("unowned", |a| a.persona.as_str())
    }

    /// The autonomy level for `service`.
    #[must_use]
    pub fn autonomy(&self, service: &str) -> u8 {
        self.by_service
            .get(service)
            .map_or(self.default_autonomy, |a| a.autonomy)
    }
}
