//! The proxy's AWS-like mode: a latency per call, and AWS's request-rate throttling as AWS
//! documents it, so that benches and tests meet the limits the engine meets on AWS.
//!
//! The buckets are AWS's documented ones ([`QuotaTable::documented`]: EC2 per action sized by
//! category plus the resource buckets of `StartInstances` and `StopInstances`, CloudWatch per
//! API, RDS per account, S3 reads and writes), enforced whole: the engine's limiter spends a
//! share of the same table, and this mode checks it never needs more. What the proxy adds is
//! AWS's side of the rule: it reads each request's body to tell an EC2 describe sent without
//! filter, ids or page size (the smaller bucket), and it spends one resource token per
//! instance a call names. A request that finds a bucket empty is answered with the service's
//! own throttling error.
//!
//! The proxy serves one account, so a bucket is keyed by service, Region and bucket name.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use miyabi_aws::aws::{Quota, QuotaTable};
use rand::{Rng, SeedableRng};

/// A token bucket: `capacity` tokens, refilled continuously at `refill_per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    #[must_use]
    pub fn new(quota: Quota, now: Instant) -> Self {
        Self {
            capacity: quota.capacity,
            refill_per_second: quota.refill_per_second,
            tokens: quota.capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_second).min(self.capacity);
        self.updated = now;
    }

    /// Whether `n` tokens are there.
    pub fn has(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= n
    }

    /// Takes `n` tokens (call [`Self::has`] first).
    pub fn take(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.tokens -= n;
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let ok = self.has(1.0, now);
        if ok {
            self.take(1.0, now);
        }
        ok
    }

    /// Changes the bucket's size and refill, keeping the tokens it has (up to the new size).
    pub fn resize(&mut self, quota: Quota, now: Instant) {
        self.refill(now);
        self.capacity = quota.capacity;
        self.refill_per_second = quota.refill_per_second;
        self.tokens = self.tokens.min(self.capacity);
    }
}

/// Whether an EC2 query-protocol `body` carries no filter, no ids and no page size: AWS's
/// "unfiltered and unpaginated" describe.
#[must_use]
pub fn ec2_unfiltered(body: &str) -> bool {
    !body.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or_default();
        key.starts_with("Filter.") || key == "MaxResults" || key == "NextToken" || key.contains("Id.")
    })
}

/// How many instances an EC2 request names (`InstanceId.N`), at least one.
fn instances_named(body: &str) -> usize {
    body.split('&')
        .filter(|kv| kv.starts_with("InstanceId."))
        .count()
        .max(1)
}

/// The settings of the AWS-like mode.
#[derive(Debug, Clone)]
pub struct AwsLike {
    /// Added to every call before it is answered.
    pub latency: Duration,
    /// The latency varies by up to this fraction either way.
    pub jitter: f64,
    /// Latency per service, where it differs from `latency`.
    pub service_latency: BTreeMap<String, Duration>,
    /// The buckets, AWS's documented ones unless a test changes them.
    pub quotas: QuotaTable,
    /// Multiplies every bucket's size and refill, so that a test reaches the limits with
    /// fewer requests.
    pub scale: f64,
}

impl Default for AwsLike {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(50),
            jitter: 0.2,
            service_latency: BTreeMap::new(),
            quotas: QuotaTable::documented(),
            scale: 1.0,
        }
    }
}

/// One bucket a request spends at the proxy: its key, its size and the tokens it takes.
struct Charge {
    key: (String, String, String),
    quota: Quota,
    tokens: f64,
}

impl AwsLike {
    /// The request bucket's category of a request, as the engine's limiter names it.
    #[must_use]
    pub fn category(&self, service: &str, action: &str, body: &str) -> Option<String> {
        self.quotas
            .category(service, action, service == "ec2" && ec2_unfiltered(body))
    }

    fn charges(&self, service: &str, region: &str, action: &str, body: &str) -> Vec<Charge> {
        let unfiltered = service == "ec2" && ec2_unfiltered(body);
        self.quotas
            .spends(service, action, unfiltered)
            .into_iter()
            .filter_map(|spend| {
                let quota = self.quotas.get(&spend.category)?.scaled(self.scale);
                let tokens = if spend.category.starts_with("ec2.resource.") {
                    instances_named(body) as f64
                } else {
                    1.0
                };
                Some(Charge {
                    key: (service.to_owned(), region.to_owned(), spend.bucket),
                    quota,
                    tokens,
                })
            })
            .collect()
    }
}

/// The live state of the AWS-like mode: one bucket per service, Region and bucket name.
pub(crate) struct Quotas {
    config: AwsLike,
    buckets: Mutex<HashMap<(String, String, String), TokenBucket>>,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
}

impl Quotas {
    pub(crate) fn new(config: AwsLike) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
            rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(7)),
        }
    }

    /// Whether the request may go on: true when every bucket it spends has its tokens (which
    /// it then takes), false when one is short (and none is spent).
    pub(crate) fn admit(&self, service: &str, region: &str, action: &str, body: &str) -> bool {
        let charges = self.config.charges(service, region, action, body);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("buckets lock");
        for c in &charges {
            let bucket = buckets
                .entry(c.key.clone())
                .or_insert_with(|| TokenBucket::new(c.quota, now));
            if !bucket.has(c.tokens, now) {
                return false;
            }
        }
        for c in &charges {
            if let Some(b) = buckets.get_mut(&c.key) {
                b.take(c.tokens, now);
            }
        }
        true
    }

    /// Resizes the buckets of `action` in `region` to `factor` of their configured size, as
    /// AWS does when it lowers an account's quota (or a competing client drains it).
    pub(crate) fn resize(&self, service: &str, region: &str, action: &str, factor: f64) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("buckets lock");
        // Both buckets of an EC2 describe: the unfiltered one and the paginated one.
        let mut charges = self.config.charges(service, region, action, "");
        charges.extend(self.config.charges(service, region, action, "MaxResults=1"));
        for c in charges {
            buckets
                .entry(c.key)
                .or_insert_with(|| TokenBucket::new(c.quota, now))
                .resize(c.quota.scaled(factor), now);
        }
    }

    pub(crate) fn config(&self) -> &AwsLike {
        &self.config
    }

    /// This call's latency.
    pub(crate) fn latency(&self, service: &str) -> Duration {
        let base = self
            .config
            .service_latency
            .get(service)
            .copied()
            .unwrap_or(self.config.latency);
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || base.is_zero() {
            return base;
        }
        let factor = self
            .rng
            .lock()
            .expect("rng lock")
            .random_range(1.0 - jitter..=1.0 + jitter);
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_bursts_to_its_capacity_then_refills_at_its_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(Quota::new(50.0, 10.0), start);
        assert_eq!((0..80).filter(|_| b.try_take(start)).count(), 50);
        // Half a second refills 5 tokens, not more.
        let later = start + Duration::from_millis(500);
        assert_eq!((0..80).filter(|_| b.try_take(later)).count(), 5);
        // A long pause refills to the capacity and no further.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!((0..80).filter(|_| b.try_take(much_later)).count(), 50);
    }

    #[test]
    fn the_proxy_tells_unfiltered_describes_from_the_body() {
        let aws = AwsLike::default();
        let v = "Version=2016-11-15";
        let cat = |action: &str, body: &str| aws.category("ec2", action, body).unwrap_or_default();
        assert_eq!(
            cat("DescribeInstances", &format!("Action=DescribeInstances&{v}")),
            "ec2.unfiltered-describe"
        );
        assert_eq!(
            cat(
                "DescribeInstances",
                &format!("Action=DescribeInstances&MaxResults=1000&{v}")
            ),
            "ec2.non-mutating"
        );
        assert_eq!(
            cat(
                "DescribeVolumes",
                &format!("Action=DescribeVolumes&VolumeId.1=vol-1&{v}")
            ),
            "ec2.non-mutating"
        );
        assert_eq!(
            cat(
                "DescribeInstances",
                &format!("Action=DescribeInstances&Filter.1.Name=x&{v}")
            ),
            "ec2.non-mutating"
        );
        // DescribeAddresses is not one of the seven with the smaller bucket.
        assert_eq!(cat("DescribeAddresses", "Action=DescribeAddresses"), "ec2.non-mutating");
        assert_eq!(
            cat("StopInstances", "Action=StopInstances&InstanceId.1=i-1"),
            "ec2.mutating"
        );
        assert_eq!(cat("CreateTags", "Action=CreateTags"), "ec2.CreateTags");
    }

    #[test]
    fn start_instances_spends_one_resource_token_per_instance() {
        let quotas = Quotas::new(AwsLike {
            scale: 0.01,
            ..AwsLike::default()
        });
        // Resource bucket: 10 tokens at 0.02/s; the request bucket: 1 token at 0.02/s.
        let ten = (1..=10)
            .map(|i| format!("InstanceId.{i}=i-{i}"))
            .collect::<Vec<_>>()
            .join("&");
        assert!(quotas.admit("ec2", "r", "StartInstances", &ten));
        // The request bucket is empty now, and the resource bucket too.
        assert!(!quotas.admit("ec2", "r", "StartInstances", "InstanceId.1=i-1"));
        // StopInstances has buckets of its own.
        assert!(quotas.admit("ec2", "r", "StopInstances", &ten));
    }

    #[test]
    fn the_defaults_are_the_documented_sizes_and_the_scale_applies_to_all() {
        let aws = AwsLike::default();
        let size = |a: &AwsLike, service: &str, action: &str, body: &str| {
            a.charges(service, "r", action, body).first().map(|c| c.quota)
        };
        assert_eq!(size(&aws, "ec2", "ModifyVolume", ""), Some(Quota::new(50.0, 5.0)));
        assert_eq!(
            size(&aws, "cloudwatch", "GetMetricData", ""),
            Some(Quota::new(50.0, 50.0))
        );
        assert_eq!(
            size(&aws, "cloudwatch", "PutMetricAlarm", ""),
            Some(Quota::new(3.0, 3.0))
        );
        assert_eq!(
            size(&aws, "rds", "DescribeDBInstances", ""),
            Some(Quota::new(300.0, 12.0))
        );
        let tenth = AwsLike {
            scale: 0.1,
            ..AwsLike::default()
        };
        assert_eq!(
            size(&tenth, "ec2", "DescribeInstances", "MaxResults=5"),
            Some(Quota::new(10.0, 2.0))
        );
    }

    #[test]
    fn a_resized_bucket_keeps_no_more_than_its_new_size() {
        let quotas = Quotas::new(AwsLike::default());
        quotas.resize("ec2", "r", "ModifyVolume", 0.1);
        let admitted = (0..20).filter(|_| quotas.admit("ec2", "r", "ModifyVolume", "")).count();
        assert_eq!(admitted, 5);
    }
}
