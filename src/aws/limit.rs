//! The request-rate limiter in front of every attempt of every AWS call of a session.
//!
//! It keeps AWS's own buckets ([`QuotaTable`]: per account, Region and action, sized by
//! category) at a share of their size, so that the engine leaves the rest of the account's
//! quota to production: a share of 0.5 halves both the burst and the refill. A request waits
//! for a token of every bucket it spends; tokens are reserved in arrival order, so concurrent
//! tasks queue instead of racing.
//!
//! It is adaptive: a throttle that any task of the session meets halves that bucket's rate for
//! every task (once for the requests that were in flight together), and the rate climbs back:
//! quickly to just under the rate that was throttled, then, after a calm spell, slowly above
//! it, so that a bucket that really shrank is probed rarely and one restored is used again.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::quota::{Quota, QuotaTable};

/// The share of AWS's quotas a session spends, and the quotas themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitOptions {
    /// AWS's buckets as the account has them (documented defaults unless a quota file says).
    pub quotas: QuotaTable,
    /// The share of every bucket the engine spends, in (0, 1].
    pub share: f64,
    /// Shares per category, where they differ from `share`.
    pub shares: BTreeMap<String, f64>,
}

impl Default for LimitOptions {
    fn default() -> Self {
        Self {
            quotas: QuotaTable::documented(),
            share: 0.5,
            shares: BTreeMap::new(),
        }
    }
}

/// A quota file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("quota file {path}: {reason}")]
pub struct QuotaFileError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A quota file: `{"share": 0.5, "shares": {"ec2.mutating": 0.2},
/// "quotas": {"ec2.mutating": {"capacity": 50, "refill_per_second": 5}}}`, every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaFile {
    share: Option<f64>,
    #[serde(default)]
    shares: BTreeMap<String, f64>,
    #[serde(default)]
    quotas: BTreeMap<String, Quota>,
}

impl LimitOptions {
    /// The share spent of `category`'s buckets.
    #[must_use]
    pub fn share_of(&self, category: &str) -> f64 {
        self.shares.get(category).copied().unwrap_or(self.share)
    }

    /// These options with every share divided among `holders` (at least 1): what each of the
    /// workers in one account spends, so that together they keep to the account's share.
    #[must_use]
    pub fn divided(&self, holders: usize) -> Self {
        // A count of workers is far below 2^52: exact as a float.
        #[allow(clippy::cast_precision_loss)]
        let n = holders.max(1) as f64;
        Self {
            quotas: self.quotas.clone(),
            share: self.share / n,
            shares: self.shares.iter().map(|(c, s)| (c.clone(), s / n)).collect(),
        }
    }

    /// Reads a quota file over these options: its quotas replace the table's, its shares the
    /// options'.
    ///
    /// # Errors
    /// A file that cannot be read or parsed, a category the table does not know, a share
    /// outside (0, 1] or a quota that is not positive and finite.
    pub fn with_quota_file(mut self, path: &Path) -> Result<Self, QuotaFileError> {
        let fail = |reason: String| QuotaFileError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let file: QuotaFile = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        for (category, quota) in file.quotas {
            if self.quotas.get(&category).is_none() {
                return Err(fail(format!("unknown quota category {category:?}")));
            }
            self.quotas.set(category, quota);
        }
        if let Some(share) = file.share {
            self.share = share;
        }
        self.shares.extend(file.shares);
        self.validate().map_err(fail)?;
        Ok(self)
    }

    /// Checks that every share is in (0, 1], every category named exists, and every quota is
    /// positive and finite.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), String> {
        let share_ok = |s: f64| s > 0.0 && s <= 1.0;
        if !share_ok(self.share) {
            return Err(format!("share {} is not in (0, 1]", self.share));
        }
        for (category, share) in &self.shares {
            if self.quotas.get(category).is_none() {
                return Err(format!("unknown quota category {category:?}"));
            }
            if !share_ok(*share) {
                return Err(format!("share {share} of {category} is not in (0, 1]"));
            }
        }
        for (category, q) in self.quotas.iter() {
            let ok = |v: f64| v.is_finite() && v > 0.0 && v <= 1e9;
            if !ok(q.capacity) || !ok(q.refill_per_second) {
                return Err(format!("quota of {category} must have a positive capacity and refill"));
            }
        }
        Ok(())
    }
}

/// The slowest a throttled bucket goes, as a fraction of its configured rate.
const MIN_FACTOR: f64 = 1.0 / 32.0;
/// How fast the rate climbs back to just under the throttled rate (fraction per second).
const FAST_RECOVERY: f64 = 0.25;
/// How fast it climbs above that (fraction per second).
const SLOW_RECOVERY: f64 = 0.2;
/// How long after a throttle the rate stays under the throttled one before it probes above.
const PROBE_AFTER: Duration = Duration::from_secs(5);
/// Throttles closer together than this lower the rate once.
const LOWER_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// One bucket at its share, with its adaptive factor.
#[derive(Debug)]
struct AdaptiveBucket {
    quota: Quota,
    tokens: f64,
    updated: Instant,
    /// The fraction of `quota` in force.
    factor: f64,
    /// The factor that was throttled last (1 when none was).
    ceiling: f64,
    /// When the factor was last lowered: the throttles of requests already in flight then
    /// answer for the old rate, so they do not lower it again.
    lowered: Option<Instant>,
}

impl AdaptiveBucket {
    fn new(quota: Quota, now: Instant) -> Self {
        Self {
            quota,
            tokens: quota.capacity,
            updated: now,
            factor: 1.0,
            ceiling: 1.0,
            lowered: None,
        }
    }

    fn capacity(&self) -> f64 {
        (self.quota.capacity * self.factor).max(1.0)
    }

    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        let rate = self.quota.refill_per_second * self.factor;
        self.tokens = (self.tokens + dt * rate).min(self.capacity());
        let knee = self.ceiling * 0.9;
        let mut left = dt;
        if self.factor < knee {
            let step = (knee - self.factor).min(left * FAST_RECOVERY);
            self.factor += step;
            left -= step / FAST_RECOVERY;
        }
        let calm = self
            .lowered
            .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_AFTER);
        if self.factor >= knee && left > 0.0 && calm {
            self.factor = (self.factor + left * SLOW_RECOVERY).min(1.0);
        }
        if self.factor >= 1.0 {
            self.ceiling = 1.0;
        }
    }

    /// Reserves one token and says how long to wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        self.advance(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        let rate = (self.quota.refill_per_second * self.factor).max(f64::MIN_POSITIVE);
        Duration::from_secs_f64((-self.tokens / rate).min(3600.0))
    }

    fn throttled(&mut self, now: Instant) {
        self.advance(now);
        self.tokens = self.tokens.min(0.0);
        if self
            .lowered
            .is_some_and(|t| now.saturating_duration_since(t) < LOWER_AT_MOST_EVERY)
        {
            return;
        }
        self.lowered = Some(now);
        self.ceiling = self.factor;
        self.factor = (self.factor * 0.5).max(MIN_FACTOR);
    }
}

type BucketKey = (String, &'static str, String);

/// What a limiter did, per category of the request bucket: requests let through, throttles
/// seen, and the time requests spent waiting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimiterCounts {
    /// Attempts let through.
    pub requests: u64,
    /// Throttling answers reported back.
    pub throttles: u64,
    /// Time spent waiting for tokens, summed over requests.
    pub waited: Duration,
}

/// The session's limiter: one adaptive bucket per (Region, service, bucket) of the quota
/// table, created on first use.
#[derive(Debug)]
pub struct Limiter {
    options: LimitOptions,
    buckets: Mutex<HashMap<BucketKey, AdaptiveBucket>>,
    counts: Mutex<BTreeMap<String, LimiterCounts>>,
}

impl Limiter {
    /// A limiter with `options`.
    #[must_use]
    pub fn new(options: LimitOptions) -> Self {
        Self {
            options,
            buckets: Mutex::new(HashMap::new()),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// The options it enforces.
    #[must_use]
    pub fn options(&self) -> &LimitOptions {
        &self.options
    }

    /// Waits until a request of `action` may be sent: a token of each bucket it spends.
    pub async fn acquire(&self, service: &'static str, region: &str, action: &str) {
        let spends = self.options.quotas.spends(service, action, false);
        let Some(first) = spends.first() else { return };
        let now = Instant::now();
        let wait = {
            let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            spends
                .iter()
                .filter_map(|spend| {
                    let quota = self.options.quotas.get(&spend.category)?;
                    let share = self.options.share_of(&spend.category);
                    let bucket = buckets
                        .entry((region.to_owned(), service, spend.bucket.clone()))
                        .or_insert_with(|| AdaptiveBucket::new(quota.scaled(share), now));
                    Some(bucket.reserve(now))
                })
                .max()
                .unwrap_or_default()
        };
        self.count(&first.category, |c| {
            c.requests += 1;
            c.waited += wait;
        });
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Reports that AWS throttled a request of `action`: its buckets slow down for every task.
    pub fn throttled(&self, service: &'static str, region: &str, action: &str) {
        let spends = self.options.quotas.spends(service, action, false);
        let Some(first) = spends.first() else { return };
        let now = Instant::now();
        {
            let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for spend in &spends {
                if let Some(b) = buckets.get_mut(&(region.to_owned(), service, spend.bucket.clone())) {
                    b.throttled(now);
                }
            }
        }
        self.count(&first.category, |c| c.throttles += 1);
    }

    /// The fraction of its configured rate that `action`'s request bucket runs at now (1 until
    /// a throttle).
    #[must_use]
    pub fn factor(&self, service: &'static str, region: &str, action: &str) -> f64 {
        let spends = self.options.quotas.spends(service, action, false);
        let Some(first) = spends.first() else { return 1.0 };
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets
            .get_mut(&(region.to_owned(), service, first.bucket.clone()))
            .map_or(1.0, |b| {
                b.advance(Instant::now());
                b.factor
            })
    }

    /// What the limiter did, per category.
    #[must_use]
    pub fn counts(&self) -> BTreeMap<String, LimiterCounts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn count(&self, category: &str, f: impl FnOnce(&mut LimiterCounts)) {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(counts.entry(category.to_owned()).or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-6;

    fn at(start: Instant, secs: f64) -> Instant {
        start + Duration::from_secs_f64(secs)
    }

    #[test]
    fn dividing_among_workers_divides_every_share() {
        let mut o = LimitOptions::default();
        o.shares.insert("ec2.mutating".into(), 0.2);
        let third = o.divided(3);
        assert!((third.share_of("ec2.non-mutating") - 0.5 / 3.0).abs() < EPS);
        assert!((third.share_of("ec2.mutating") - 0.2 / 3.0).abs() < EPS);
        assert_eq!(o.divided(0), o, "no one present counts as this worker alone");
        assert!(third.validate().is_ok());
    }

    #[test]
    fn half_the_share_halves_the_burst_and_the_refill() {
        // Mutating: 50 tokens at 5/s; half of it is a burst of 25, then 2.5 a second.
        let t0 = Instant::now();
        let mut b = AdaptiveBucket::new(Quota::new(50.0, 5.0).scaled(0.5), t0);
        assert!((0..25).all(|_| b.reserve(t0).is_zero()));
        // Reservations queue: the 26th waits 0.4 s, the 27th 0.8 s.
        assert!((b.reserve(t0).as_secs_f64() - 0.4).abs() < EPS);
        assert!((b.reserve(t0).as_secs_f64() - 0.8).abs() < EPS);
        // Twenty seconds later the bucket holds its 25 again, not more.
        let later = at(t0, 20.0);
        assert!((0..25).all(|_| b.reserve(later).is_zero()));
        assert!(!b.reserve(later).is_zero());
    }

    #[test]
    fn a_throttle_halves_the_rate_once_per_spell_and_it_recovers_after_a_calm() {
        let t0 = Instant::now();
        let mut b = AdaptiveBucket::new(Quota::new(50.0, 5.0), t0);
        b.reserve(t0);
        b.throttled(t0);
        assert!((b.factor - 0.5).abs() < EPS);
        // The burst is gone and the rate in force is 2.5/s.
        assert!((b.reserve(t0).as_secs_f64() - 0.4).abs() < EPS);
        // Throttles of requests that were in flight together lower it once.
        for _ in 0..8 {
            b.throttled(at(t0, 0.01));
        }
        assert!(b.factor < 0.51, "{}", b.factor);
        // Quickly back to 90% of the throttled rate, where it stays for a calm spell ...
        b.advance(at(t0, 2.0));
        assert!((b.factor - 0.9).abs() < EPS, "{}", b.factor);
        b.advance(at(t0, 4.0));
        assert!((b.factor - 0.9).abs() < EPS, "{}", b.factor);
        // ... then it probes above, up to the whole rate.
        b.advance(at(t0, 5.5));
        assert!((b.factor - 1.0).abs() < EPS, "{}", b.factor);
        // Throttles that go on, a second apart, never stop it altogether.
        for i in 0..30 {
            b.throttled(at(t0, 10.0 + f64::from(i) * 1.01));
        }
        assert!(b.factor >= MIN_FACTOR && b.factor < 0.5, "{}", b.factor);
    }

    #[tokio::test]
    async fn a_request_waits_for_every_bucket_it_spends() {
        // StartInstances spends its request bucket (5, 2/s) and its resource bucket; with a
        // resource bucket of 2 tokens at 10/s, the resource bucket sets the pace.
        let mut options = LimitOptions {
            share: 1.0,
            ..LimitOptions::default()
        };
        options.quotas.set("ec2.resource.StartInstances", Quota::new(2.0, 10.0));
        let l = Limiter::new(options);
        let start = Instant::now();
        for _ in 0..4 {
            l.acquire("ec2", "us-east-1", "StartInstances").await;
        }
        let took = start.elapsed().as_secs_f64();
        assert!((0.19..0.5).contains(&took), "two tokens, then two at 10/s: {took}");
        let counts = l.counts();
        assert_eq!(counts["ec2.StartInstances"].requests, 4);
        assert!(counts["ec2.StartInstances"].waited >= Duration::from_millis(190));
        // Another Region has buckets of its own.
        let start = Instant::now();
        l.acquire("ec2", "eu-west-1", "StartInstances").await;
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_throttle_reported_slows_every_later_request_of_the_action() {
        let l = Limiter::new(LimitOptions::default());
        l.acquire("ec2", "us-east-1", "ModifyVolume").await;
        assert!((l.factor("ec2", "us-east-1", "ModifyVolume") - 1.0).abs() < EPS);
        l.throttled("ec2", "us-east-1", "ModifyVolume");
        assert!(l.factor("ec2", "us-east-1", "ModifyVolume") < 0.51);
        assert!((l.factor("ec2", "us-east-1", "ModifyInstanceAttribute") - 1.0).abs() < EPS);
        assert_eq!(l.counts()["ec2.mutating"].throttles, 1);
    }

    #[tokio::test]
    async fn services_without_a_quota_are_not_limited() {
        let l = Limiter::new(LimitOptions {
            share: 0.01,
            ..LimitOptions::default()
        });
        let start = Instant::now();
        for _ in 0..100 {
            l.acquire("sts", "us-east-1", "GetCallerIdentity").await;
        }
        assert!(start.elapsed() < Duration::from_millis(50));
        assert!(l.counts().is_empty());
    }

    #[test]
    fn a_quota_file_overrides_shares_and_quotas_and_refuses_nonsense() {
        let dir = std::env::temp_dir().join(format!("miyabi-quota-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("q.json");
        std::fs::write(
            &path,
            r#"{"share": 0.4, "shares": {"ec2.mutating": 0.2},
                "quotas": {"cloudwatch.GetMetricData": {"capacity": 500, "refill_per_second": 500}}}"#,
        )
        .expect("write");
        let o = LimitOptions::default().with_quota_file(&path).expect("valid file");
        assert!((o.share_of("ec2.mutating") - 0.2).abs() < 1e-12);
        assert!((o.share_of("ec2.non-mutating") - 0.4).abs() < 1e-12);
        assert_eq!(o.quotas.get("cloudwatch.GetMetricData"), Some(Quota::per_second(500.0)));
        for bad in [
            r#"{"share": 0}"#,
            r#"{"share": 1.5}"#,
            r#"{"shares": {"ec2.mutatin": 0.2}}"#,
            r#"{"quotas": {"ec2.mutating": {"capacity": -1, "refill_per_second": 5}}}"#,
            r#"{"quotas": {"nope": {"capacity": 1, "refill_per_second": 5}}}"#,
            r#"{"sharez": 0.5}"#,
            "not json",
        ] {
            std::fs::write(&path, bad).expect("write");
            let err = LimitOptions::default().with_quota_file(&path).expect_err(bad);
            assert!(err.to_string().contains("q.json"), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
