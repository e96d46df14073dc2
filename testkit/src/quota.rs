//! The proxy's AWS-like mode: a latency per call, and AWS's request-rate throttling as AWS
//! documents it, so that benches and tests meet the limits the engine meets on AWS.
//!
//! EC2 throttles each API on its own, with one token bucket per account, Region and action
//! whose size and refill depend on the action's category (DESIGN §8; the EC2 developer guide's
//! "Request throttling for the Amazon EC2 API"): non-mutating calls 100 tokens at 20/s,
//! unfiltered and unpaginated describes 50 at 10/s, mutating calls 50 at 5/s. CloudWatch
//! throttles per API at a rate in transactions per second (`GetMetricData` 50). A request that
//! finds its bucket empty is answered with the service's own throttling error.
//!
//! The proxy serves one account, so a bucket is keyed by service, Region and action.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    pub fn new(spec: BucketSpec, now: Instant) -> Self {
        Self {
            capacity: spec.capacity,
            refill_per_second: spec.refill_per_second,
            tokens: spec.capacity,
            updated: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_second).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    /// Tokens when full: the burst.
    pub capacity: f64,
    /// Tokens added per second: the sustained rate.
    pub refill_per_second: f64,
}

impl BucketSpec {
    /// A bucket of `capacity` tokens refilled at `refill_per_second`.
    #[must_use]
    pub const fn new(capacity: f64, refill_per_second: f64) -> Self {
        Self {
            capacity,
            refill_per_second,
        }
    }

    /// A per-second rate: a burst of one second's worth, refilled at the rate.
    #[must_use]
    pub const fn per_second(rate: f64) -> Self {
        Self::new(rate, rate)
    }

    fn scaled(self, factor: f64) -> Self {
        Self::new((self.capacity * factor).max(1.0), self.refill_per_second * factor)
    }
}

/// EC2's request categories, each with its own bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ec2Category {
    /// Describe and list calls that are filtered, paginated or name their resources.
    NonMutating,
    /// Describe calls with no filter, no page size and no resource ids.
    UnfilteredDescribe,
    /// Everything that changes something.
    Mutating,
}

/// The category of EC2 `action`, from its name and its query-protocol `body`.
#[must_use]
pub fn ec2_category(action: &str, body: &str) -> Ec2Category {
    let reads = ["Describe", "Get", "List"].iter().any(|p| action.starts_with(p));
    if !reads {
        return Ec2Category::Mutating;
    }
    let narrowed = body.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or_default();
        key.starts_with("Filter.") || key == "MaxResults" || key == "NextToken" || key.contains("Id.")
    });
    if action.starts_with("Describe") && !narrowed {
        Ec2Category::UnfilteredDescribe
    } else {
        Ec2Category::NonMutating
    }
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
    /// EC2's non-mutating bucket.
    pub ec2_non_mutating: BucketSpec,
    /// EC2's bucket of unfiltered, unpaginated describes.
    pub ec2_unfiltered_describe: BucketSpec,
    /// EC2's mutating bucket.
    pub ec2_mutating: BucketSpec,
    /// CloudWatch's per-API rates; an API not listed is not throttled.
    pub cloudwatch: BTreeMap<String, BucketSpec>,
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
            ec2_non_mutating: BucketSpec::new(100.0, 20.0),
            ec2_unfiltered_describe: BucketSpec::new(50.0, 10.0),
            ec2_mutating: BucketSpec::new(50.0, 5.0),
            cloudwatch: BTreeMap::from([("GetMetricData".to_owned(), BucketSpec::per_second(50.0))]),
            scale: 1.0,
        }
    }
}

impl AwsLike {
    /// The bucket a request of `service` and `action` spends, if that service is throttled.
    #[must_use]
    pub fn bucket(&self, service: &str, action: &str, body: &str) -> Option<BucketSpec> {
        let spec = match service {
            "ec2" => Some(match ec2_category(action, body) {
                Ec2Category::NonMutating => self.ec2_non_mutating,
                Ec2Category::UnfilteredDescribe => self.ec2_unfiltered_describe,
                Ec2Category::Mutating => self.ec2_mutating,
            }),
            "cloudwatch" => self.cloudwatch.get(action).copied(),
            _ => None,
        };
        spec.map(|s| s.scaled(self.scale))
    }
}

/// The live state of the AWS-like mode: one bucket per service, Region and action.
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

    /// Whether the request may go on: true when its bucket has a token (or it has no bucket).
    pub(crate) fn admit(&self, service: &str, region: &str, action: &str, body: &str) -> bool {
        let Some(spec) = self.config.bucket(service, action, body) else {
            return true;
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("buckets lock");
        buckets
            .entry((service.to_owned(), region.to_owned(), action.to_owned()))
            .or_insert_with(|| TokenBucket::new(spec, now))
            .try_take(now)
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
        let mut b = TokenBucket::new(BucketSpec::new(50.0, 10.0), start);
        assert_eq!((0..80).filter(|_| b.try_take(start)).count(), 50);
        // Half a second refills 5 tokens, not more.
        let later = start + Duration::from_millis(500);
        assert_eq!((0..80).filter(|_| b.try_take(later)).count(), 5);
        // A long pause refills to the capacity and no further.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!((0..80).filter(|_| b.try_take(much_later)).count(), 50);
    }

    #[test]
    fn ec2_actions_fall_into_the_documented_categories() {
        let v = "Version=2016-11-15";
        assert_eq!(
            ec2_category("DescribeInstances", &format!("Action=DescribeInstances&{v}")),
            Ec2Category::UnfilteredDescribe
        );
        assert_eq!(
            ec2_category(
                "DescribeInstances",
                &format!("Action=DescribeInstances&MaxResults=1000&{v}")
            ),
            Ec2Category::NonMutating
        );
        assert_eq!(
            ec2_category(
                "DescribeVolumes",
                &format!("Action=DescribeVolumes&VolumeId.1=vol-1&{v}")
            ),
            Ec2Category::NonMutating
        );
        assert_eq!(
            ec2_category(
                "DescribeInstances",
                &format!("Action=DescribeInstances&Filter.1.Name=x&{v}")
            ),
            Ec2Category::NonMutating
        );
        assert_eq!(
            ec2_category("StopInstances", "Action=StopInstances&InstanceId.1=i-1"),
            Ec2Category::Mutating
        );
        assert_eq!(ec2_category("CreateTags", "Action=CreateTags"), Ec2Category::Mutating);
    }

    #[test]
    fn the_defaults_are_the_documented_sizes_and_the_scale_applies_to_all() {
        let aws = AwsLike::default();
        assert_eq!(aws.bucket("ec2", "ModifyVolume", ""), Some(BucketSpec::new(50.0, 5.0)));
        assert_eq!(
            aws.bucket("cloudwatch", "GetMetricData", ""),
            Some(BucketSpec::new(50.0, 50.0))
        );
        assert_eq!(aws.bucket("s3", "GetObject", ""), None);
        let tenth = AwsLike {
            scale: 0.1,
            ..AwsLike::default()
        };
        assert_eq!(
            tenth.bucket("ec2", "DescribeInstances", "MaxResults=5"),
            Some(BucketSpec::new(10.0, 2.0))
        );
    }
}
