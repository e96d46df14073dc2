//! AWS's documented request quotas, and which bucket a request spends.
//!
//! AWS throttles per account and Region, with token buckets: a bucket holds up to `capacity`
//! tokens (the burst), refills at `refill_per_second` (the sustained rate), and a request that
//! finds it empty is refused with the service's throttling error. The table here is the
//! engine's model of those buckets; the limiter ([`super::limit`]) spends a share of each, and
//! the test kit's AWS-like proxy enforces the whole of each.
//!
//! | service | bucket | documented size |
//! |---|---|---|
//! | EC2 | one per action, sized by category: non-mutating (`Describe*`, `Get*`, `List*`, `Search*`) | 100, 20/s |
//! | | the same seven describes without a filter and without pagination | 50, 10/s |
//! | | mutating (resource-intensive ones included) | 50, 5/s |
//! | | uncategorized actions with a row of their own (`StartInstances` 5, 2/s; `CreateTags` 100, 10/s; …) | per row |
//! | | resource buckets that `RunInstances`, `StartInstances`, `StopInstances` and `TerminateInstances` also spend, one token per instance | 1000, 2/s or 20/s |
//! | CloudWatch | one per API (`GetMetricData` 50/s, `ListMetrics` 25/s, `PutMetricAlarm` 3/s, `DescribeAlarms` 9/s, …) | per API |
//! | RDS | one per account and Region, shared by every action | 300, 12/s |
//! | S3 | per prefix: reads 5,500/s, writes 3,500/s (here per action, which is stricter) | per second |
//!
//! Sources: the EC2 developer guide's "Request throttling for the Amazon EC2 API", the
//! CloudWatch user guide's service quotas, the RDS user guide's "API throttling", the S3 user
//! guide's "Optimizing performance". `GetMetricData` is 50 per second here, the figure of
//! DESIGN §8 and of AWS's knowledge-center article; newer quota pages list 500, which a quota
//! file can set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A token bucket's size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Tokens when full: the burst.
    pub capacity: f64,
    /// Tokens added per second: the sustained rate.
    pub refill_per_second: f64,
}

impl Quota {
    /// A bucket of `capacity` tokens refilled at `refill_per_second`.
    #[must_use]
    pub const fn new(capacity: f64, refill_per_second: f64) -> Self {
        Self {
            capacity,
            refill_per_second,
        }
    }

    /// A per-second rate: a burst of one second's worth, refilled at that rate.
    #[must_use]
    pub const fn per_second(rate: f64) -> Self {
        Self::new(rate, rate)
    }

    /// The same bucket with its size and refill multiplied by `factor` (at least one token).
    #[must_use]
    pub fn scaled(self, factor: f64) -> Self {
        Self::new((self.capacity * factor).max(1.0), self.refill_per_second * factor)
    }
}

/// One bucket a request spends: the quota category that sizes it, and the bucket's name within
/// the account and Region (an action's name, or a name shared by the actions that share it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Spend {
    /// The category, as the quota table and quota files name it (`ec2.mutating`).
    pub category: String,
    /// The bucket, unique within a service, account and Region.
    pub bucket: String,
}

/// EC2's describes that fall in the smaller bucket when called without a filter and without
/// pagination.
const EC2_UNFILTERED_SENSITIVE: [&str; 7] = [
    "DescribeInstances",
    "DescribeInstanceStatus",
    "DescribeNetworkInterfaces",
    "DescribeSecurityGroups",
    "DescribeSnapshots",
    "DescribeSpotInstanceRequests",
    "DescribeVolumes",
];

/// EC2 actions with a request bucket of their own ("uncategorized actions").
const EC2_OWN_BUCKETS: [(&str, Quota); 20] = [
    ("RunInstances", Quota::new(5.0, 2.0)),
    ("StartInstances", Quota::new(5.0, 2.0)),
    ("TerminateInstances", Quota::new(100.0, 5.0)),
    ("CreateTags", Quota::new(100.0, 10.0)),
    ("DeleteTags", Quota::new(100.0, 10.0)),
    ("CreateVolume", Quota::new(100.0, 5.0)),
    ("DeleteVolume", Quota::new(100.0, 5.0)),
    ("CreateSnapshot", Quota::new(100.0, 5.0)),
    ("DeleteSnapshot", Quota::new(100.0, 5.0)),
    ("CreateNetworkInterface", Quota::new(100.0, 5.0)),
    ("DeleteNetworkInterface", Quota::new(100.0, 5.0)),
    ("ModifyNetworkInterfaceAttribute", Quota::new(100.0, 5.0)),
    ("ModifyImageAttribute", Quota::new(100.0, 5.0)),
    ("ModifyInstanceMetadataOptions", Quota::new(100.0, 5.0)),
    ("ModifySnapshotAttribute", Quota::new(100.0, 5.0)),
    ("AssociateIamInstanceProfile", Quota::new(100.0, 5.0)),
    ("CreateLaunchTemplateVersion", Quota::new(100.0, 5.0)),
    ("ModifyLaunchTemplate", Quota::new(100.0, 5.0)),
    ("CopyImage", Quota::new(100.0, 1.0)),
    ("CreateNatGateway", Quota::new(10.0, 1.0)),
];

/// EC2's resource buckets: one token per instance the call acts on.
const EC2_RESOURCE_BUCKETS: [(&str, Quota); 4] = [
    ("RunInstances", Quota::new(1000.0, 2.0)),
    ("StartInstances", Quota::new(1000.0, 2.0)),
    ("StopInstances", Quota::new(1000.0, 20.0)),
    ("TerminateInstances", Quota::new(1000.0, 20.0)),
];

/// CloudWatch's per-API rates (transactions per second, per account and Region).
const CLOUDWATCH_RATES: [(&str, f64); 17] = [
    ("GetMetricData", 50.0),
    ("GetMetricStatistics", 400.0),
    ("ListMetrics", 25.0),
    ("PutMetricData", 500.0),
    ("PutMetricAlarm", 3.0),
    ("PutCompositeAlarm", 3.0),
    ("DescribeAlarms", 9.0),
    ("DescribeAlarmsForMetric", 9.0),
    ("DescribeAlarmHistory", 20.0),
    ("DeleteAlarms", 3.0),
    ("SetAlarmState", 3.0),
    ("EnableAlarmActions", 3.0),
    ("DisableAlarmActions", 3.0),
    ("PutDashboard", 10.0),
    ("GetDashboard", 10.0),
    ("ListDashboards", 10.0),
    ("DeleteDashboards", 10.0),
];

fn is_read(action: &str) -> bool {
    ["Describe", "Get", "List", "Search", "Head"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// The buckets of AWS's request quotas, by category, and the rule that assigns a request its
/// buckets. [`QuotaTable::documented`] holds AWS's documented sizes; a quota file replaces any
/// of them (an account whose quotas AWS raised, a test that wants small buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaTable {
    quotas: BTreeMap<String, Quota>,
}

impl Default for QuotaTable {
    fn default() -> Self {
        Self::documented()
    }
}

impl QuotaTable {
    /// AWS's documented default quotas (see the module documentation).
    #[must_use]
    pub fn documented() -> Self {
        let mut quotas = BTreeMap::from([
            ("ec2.non-mutating".to_owned(), Quota::new(100.0, 20.0)),
            ("ec2.unfiltered-describe".to_owned(), Quota::new(50.0, 10.0)),
            ("ec2.mutating".to_owned(), Quota::new(50.0, 5.0)),
            ("rds.account".to_owned(), Quota::new(300.0, 12.0)),
            ("s3.read".to_owned(), Quota::per_second(5500.0)),
            ("s3.write".to_owned(), Quota::per_second(3500.0)),
        ]);
        for (action, q) in EC2_OWN_BUCKETS {
            quotas.insert(format!("ec2.{action}"), q);
        }
        for (action, q) in EC2_RESOURCE_BUCKETS {
            quotas.insert(format!("ec2.resource.{action}"), q);
        }
        for (api, rate) in CLOUDWATCH_RATES {
            quotas.insert(format!("cloudwatch.{api}"), Quota::per_second(rate));
        }
        Self { quotas }
    }

    /// The quota of `category`, if the table has it.
    #[must_use]
    pub fn get(&self, category: &str) -> Option<Quota> {
        self.quotas.get(category).copied()
    }

    /// Sets (or adds) the quota of `category`.
    pub fn set(&mut self, category: impl Into<String>, quota: Quota) {
        self.quotas.insert(category.into(), quota);
    }

    /// Every category and its quota.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Quota)> {
        self.quotas.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The same table with every quota multiplied by `factor`.
    #[must_use]
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            quotas: self.quotas.iter().map(|(k, q)| (k.clone(), q.scaled(factor))).collect(),
        }
    }

    /// The buckets a request of `service` and `action` spends, one token each; `unfiltered`
    /// says that an EC2 describe carried no filter, no ids and no page size. A service or API
    /// the table does not throttle spends none.
    #[must_use]
    pub fn spends(&self, service: &str, action: &str, unfiltered: bool) -> Vec<Spend> {
        let spend = |category: String, bucket: &str| Spend {
            category,
            bucket: bucket.to_owned(),
        };
        let mut out = Vec::new();
        match service {
            "ec2" => {
                let (category, bucket) = if self.quotas.contains_key(&format!("ec2.{action}")) {
                    (format!("ec2.{action}"), action.to_owned())
                } else if !is_read(action) {
                    ("ec2.mutating".to_owned(), action.to_owned())
                } else if unfiltered && EC2_UNFILTERED_SENSITIVE.contains(&action) {
                    // A bucket of its own beside the action's paginated one.
                    ("ec2.unfiltered-describe".to_owned(), format!("{action}.unfiltered"))
                } else {
                    ("ec2.non-mutating".to_owned(), action.to_owned())
                };
                out.push(spend(category, &bucket));
                let resource = format!("ec2.resource.{action}");
                if self.quotas.contains_key(&resource) {
                    out.push(spend(resource, &format!("resource.{action}")));
                }
            }
            "cloudwatch" => {
                let category = format!("cloudwatch.{action}");
                if self.quotas.contains_key(&category) {
                    out.push(spend(category, action));
                }
            }
            "rds" => out.push(spend("rds.account".to_owned(), "account")),
            "s3" => {
                let category = if is_read(action) { "s3.read" } else { "s3.write" };
                out.push(spend(category.to_owned(), action));
            }
            _ => {}
        }
        out
    }

    /// The category of the first bucket a request spends (its request bucket), for counting.
    #[must_use]
    pub fn category(&self, service: &str, action: &str, unfiltered: bool) -> Option<String> {
        self.spends(service, action, unfiltered)
            .into_iter()
            .next()
            .map(|s| s.category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn categories(t: &QuotaTable, service: &str, action: &str, unfiltered: bool) -> Vec<String> {
        t.spends(service, action, unfiltered)
            .into_iter()
            .map(|s| s.category)
            .collect()
    }

    #[test]
    fn ec2_actions_fall_into_the_documented_categories() {
        let t = QuotaTable::documented();
        assert_eq!(categories(&t, "ec2", "DescribeInstances", false), ["ec2.non-mutating"]);
        assert_eq!(
            categories(&t, "ec2", "DescribeInstances", true),
            ["ec2.unfiltered-describe"]
        );
        // Only the seven listed describes have the smaller unfiltered bucket.
        assert_eq!(categories(&t, "ec2", "DescribeAddresses", true), ["ec2.non-mutating"]);
        assert_eq!(
            categories(&t, "ec2", "ModifyInstanceAttribute", false),
            ["ec2.mutating"]
        );
        assert_eq!(categories(&t, "ec2", "CreateTags", false), ["ec2.CreateTags"]);
        assert_eq!(
            categories(&t, "ec2", "StopInstances", false),
            ["ec2.mutating", "ec2.resource.StopInstances"]
        );
        assert_eq!(
            categories(&t, "ec2", "StartInstances", false),
            ["ec2.StartInstances", "ec2.resource.StartInstances"]
        );
        assert_eq!(t.get("ec2.StartInstances"), Some(Quota::new(5.0, 2.0)));
        assert_eq!(t.get("ec2.resource.StopInstances"), Some(Quota::new(1000.0, 20.0)));
    }

    #[test]
    fn each_ec2_action_has_its_own_bucket_but_rds_shares_one() {
        let t = QuotaTable::documented();
        let volumes = t.spends("ec2", "DescribeVolumes", false);
        let instances = t.spends("ec2", "DescribeInstances", false);
        assert_eq!(volumes[0].category, instances[0].category);
        assert_ne!(volumes[0].bucket, instances[0].bucket);
        let read = t.spends("rds", "DescribeDBInstances", false);
        let write = t.spends("rds", "ModifyDBInstance", false);
        assert_eq!(read, write);
        assert_eq!(t.get("rds.account"), Some(Quota::new(300.0, 12.0)));
    }

    #[test]
    fn cloudwatch_throttles_the_listed_apis_only() {
        let t = QuotaTable::documented();
        assert_eq!(t.get("cloudwatch.GetMetricData"), Some(Quota::per_second(50.0)));
        assert_eq!(t.get("cloudwatch.PutMetricAlarm"), Some(Quota::per_second(3.0)));
        assert!(t.spends("cloudwatch", "TagResource", false).is_empty());
        assert!(t.spends("sts", "GetCallerIdentity", false).is_empty());
        assert_eq!(categories(&t, "s3", "GetBucketAcl", false), ["s3.read"]);
        assert_eq!(categories(&t, "s3", "PutBucketTagging", false), ["s3.write"]);
    }

    #[test]
    fn scaling_keeps_at_least_one_token() {
        let half = QuotaTable::documented().scaled(0.5);
        assert_eq!(half.get("ec2.StartInstances"), Some(Quota::new(2.5, 1.0)));
        assert_eq!(half.get("ec2.non-mutating"), Some(Quota::new(50.0, 10.0)));
        let tenth = QuotaTable::documented().scaled(0.1);
        assert_eq!(tenth.get("ec2.StartInstances").map(|q| q.capacity), Some(1.0));
    }
}
