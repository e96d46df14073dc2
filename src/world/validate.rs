//! What a world state must hold beyond its JSON shape, checked wherever one comes in (a file, a
//! Python dict, a legacy script's capture), so that no phase meets a series whose values and
//! timestamps disagree, a timestamp out of order, a value that is not a number, two resources
//! with one id, or an instance state EC2 does not have.

use std::collections::HashSet;

use super::{Assessment, Inventory, MetricSeries, WorldState, WorldStateError};

/// One rule broken, and where: a JSON path such as `inventory.metrics[3].timestamps[7]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at `{path}`: {message}")]
pub struct Violation {
    /// Where in the document.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl Violation {
    fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same violation inside `prefix`, for example `inventory`.
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        Self {
            path: format!("{prefix}.{}", self.path),
            message: self.message,
        }
    }
}

impl From<Violation> for WorldStateError {
    fn from(v: Violation) -> Self {
        Self::Invalid {
            path: v.path,
            message: v.message,
        }
    }
}

/// The states `DescribeInstances` reports.
const INSTANCE_STATES: [&str; 6] = [
    "pending",
    "running",
    "shutting-down",
    "terminated",
    "stopping",
    "stopped",
];

fn unique<'a, T>(kind: &str, field: &str, items: &'a [T], id: impl Fn(&'a T) -> &'a str) -> Result<(), Violation> {
    let mut seen = HashSet::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let id = id(item);
        if !seen.insert(id) {
            return Err(Violation::at(
                format!("{kind}[{k}].{field}"),
                format!("{id:?} appears twice"),
            ));
        }
    }
    Ok(())
}

fn finite(path: impl FnOnce() -> String, value: f64) -> Result<(), Violation> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Violation::at(path(), format!("{value} is not a finite number")))
    }
}

impl MetricSeries {
    /// One timestamp per value, timestamps strictly ascending, every value finite, a period of
    /// at least a second. Paths are relative to the series.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), Violation> {
        if self.timestamps.len() != self.values.len() {
            return Err(Violation::at(
                "values",
                format!("{} values for {} timestamps", self.values.len(), self.timestamps.len()),
            ));
        }
        if self.period_seconds == 0 {
            return Err(Violation::at("period_seconds", "must be at least 1"));
        }
        if let Some(k) = self.timestamps.windows(2).position(|w| w[0] >= w[1]) {
            return Err(Violation::at(
                format!("timestamps[{}]", k + 1),
                format!(
                    "{} does not come after {}: timestamps must ascend",
                    self.timestamps[k + 1],
                    self.timestamps[k]
                ),
            ));
        }
        for (k, v) in self.values.iter().enumerate() {
            finite(|| format!("values[{k}]"), *v)?;
        }
        Ok(())
    }
}

impl Inventory {
    /// Unique ids per kind of resource, known instance states, and valid series. Paths are
    /// relative to the inventory.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), Violation> {
        unique("instances", "id", &self.instances, |r| &r.id)?;
        unique("volumes", "id", &self.volumes, |r| &r.id)?;
        unique("addresses", "allocation_id", &self.addresses, |r| &r.allocation_id)?;
        unique("security_groups", "id", &self.security_groups, |r| &r.id)?;
        unique("buckets", "name", &self.buckets, |r| &r.name)?;
        unique("db_instances", "id", &self.db_instances, |r| &r.id)?;
        for (k, i) in self.instances.iter().enumerate() {
            if !INSTANCE_STATES.contains(&i.state.as_str()) {
                return Err(Violation::at(
                    format!("instances[{k}].state"),
                    format!(
                        "{:?} is not an EC2 instance state ({})",
                        i.state,
                        INSTANCE_STATES.join(", ")
                    ),
                ));
            }
        }
        for (k, g) in self.security_groups.iter().enumerate() {
            // AWS refuses a rule a group already has (`InvalidPermission.Duplicate`).
            for (name, rules) in [("ingress", &g.ingress), ("egress", &g.egress)] {
                if let Some(j) = (1..rules.len()).find(|&j| rules[..j].contains(&rules[j])) {
                    return Err(Violation::at(
                        format!("security_groups[{k}].{name}[{j}]"),
                        "the same rule twice in one group",
                    ));
                }
            }
        }
        for (k, v) in self.volumes.iter().enumerate() {
            if v.size_gib == 0 {
                return Err(Violation::at(format!("volumes[{k}].size_gib"), "must be at least 1"));
            }
        }
        let mut series = HashSet::with_capacity(self.metrics.len());
        for (k, m) in self.metrics.iter().enumerate() {
            m.validate().map_err(|v| v.within(&format!("metrics[{k}]")))?;
            if !series.insert((m.resource_id.as_str(), m.metric_name.as_str(), m.stat.as_str())) {
                return Err(Violation::at(
                    format!("metrics[{k}]"),
                    format!("a second {} {} series of {:?}", m.stat, m.metric_name, m.resource_id),
                ));
            }
        }
        Ok(())
    }
}

impl Assessment {
    /// Finite figures, and a score in 0–100. Paths are relative to the assessment.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), Violation> {
        finite(|| "monthly_total_usd".into(), self.monthly_total_usd)?;
        if !(0.0..=100.0).contains(&self.security_score) {
            return Err(Violation::at(
                "security_score",
                format!("{} is not in 0–100", self.security_score),
            ));
        }
        if let Some(u) = self.utilisation_percent {
            finite(|| "utilisation_percent".into(), u)?;
        }
        for (k, c) in self.costs.iter().enumerate() {
            if let Some(usd) = c.monthly_usd {
                finite(|| format!("costs[{k}].monthly_usd"), usd)?;
            }
        }
        Ok(())
    }
}

impl WorldState {
    /// Everything [`Inventory::validate`] and [`Assessment::validate`] check, with paths from
    /// the document's root.
    ///
    /// # Errors
    /// [`WorldStateError::Invalid`] naming the first rule broken and where.
    pub fn validate(&self) -> Result<(), WorldStateError> {
        self.inventory.validate().map_err(|v| v.within("inventory"))?;
        self.assessment.validate().map_err(|v| v.within("assessment"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(timestamps: Vec<i64>, values: Vec<f64>) -> MetricSeries {
        MetricSeries {
            resource_id: "i-1".into(),
            region: "us-east-1".into(),
            namespace: "AWS/EC2".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: std::collections::BTreeMap::new(),
            stat: "Average".into(),
            period_seconds: 3600,
            timestamps,
            values,
        }
    }

    fn inventory(metrics: Vec<MetricSeries>) -> Inventory {
        Inventory {
            metrics,
            ..Inventory::default()
        }
    }

    #[test]
    fn each_series_rule_names_its_path() {
        let cases = [
            (
                series(vec![0, 3600], vec![1.0]),
                "metrics[0].values",
                "1 values for 2 timestamps",
            ),
            (
                series(vec![3600, 0], vec![1.0, 2.0]),
                "metrics[0].timestamps[1]",
                "must ascend",
            ),
            (
                series(vec![0, 0], vec![1.0, 2.0]),
                "metrics[0].timestamps[1]",
                "must ascend",
            ),
            (
                series(vec![0, 3600], vec![1.0, f64::NAN]),
                "metrics[0].values[1]",
                "not a finite number",
            ),
        ];
        for (s, path, message) in cases {
            let v = inventory(vec![s]).validate().unwrap_err();
            assert_eq!(v.path, path);
            assert!(v.message.contains(message), "{v}");
        }
        assert!(inventory(vec![series(vec![0, 3600], vec![1.0, 2.0])])
            .validate()
            .is_ok());
    }

    fn bucket(name: &str) -> crate::world::S3Bucket {
        serde_json::from_value(serde_json::json!({
            "name": name, "arn": format!("arn:aws:s3:::{name}"), "region": "us-east-1", "created": null,
            "public_access_block": null, "policy_is_public": null, "acl_grants": [], "default_encryption": null,
            "versioning": "off", "logging_enabled": false, "size_bytes": 1.0, "tags": {}, "owner_agent": "a"
        }))
        .unwrap()
    }

    fn instance(id: &str, state: &str) -> crate::world::Ec2Instance {
        serde_json::from_value(serde_json::json!({
            "id": id, "arn": format!("arn:aws:ec2:us-east-1:1:instance/{id}"), "region": "us-east-1",
            "availability_zone": null, "instance_type": "m5.large", "image_id": null, "state": state,
            "stopped_since": null, "launch_time": null, "architecture": null, "platform": null, "vpc_id": null,
            "subnet_id": null, "public_ip": null, "security_group_ids": [], "volume_ids": [],
            "imds_v2_required": true, "tags": {}, "owner_agent": "a"
        }))
        .unwrap()
    }

    #[test]
    fn a_second_series_of_one_metric_and_a_repeated_id_are_refused() {
        let s = series(vec![0], vec![1.0]);
        let v = inventory(vec![s.clone(), s]).validate().unwrap_err();
        assert_eq!(v.path, "metrics[1]");
        let twice = Inventory {
            buckets: vec![bucket("b"), bucket("c"), bucket("b")],
            ..Inventory::default()
        };
        let v = twice.validate().unwrap_err().within("inventory");
        assert_eq!(v.path, "inventory.buckets[2].name");
        assert!(v.message.contains("appears twice"), "{v}");
    }

    #[test]
    fn an_unknown_instance_state_is_refused() {
        let ok = Inventory {
            instances: vec![instance("i-1", "running"), instance("i-2", "stopped")],
            ..Inventory::default()
        };
        assert!(ok.validate().is_ok());
        let odd = Inventory {
            instances: vec![instance("i-1", "running"), instance("i-2", "hibernating")],
            ..Inventory::default()
        };
        assert_eq!(odd.validate().unwrap_err().path, "instances[1].state");
    }
}
