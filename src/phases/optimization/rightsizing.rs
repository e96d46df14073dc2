//! Right-sizing after AWS Compute Optimizer, and idle detection after Trusted Advisor.
//!
//! The CPU threshold (P99.5 by default) of the lookback is projected onto a candidate type by
//! the vCPU ratio; the cheapest type keeping it ≤ 100% − headroom wins, searched in the same
//! family first, then in compatible families (same architecture and class). Memory counts only
//! where the CloudWatch agent publishes it. Under 30 hours of data, nothing is recommended.

use schemars::JsonSchema;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{InstanceSpec, PriceCatalog};
use crate::world::MetricSeries;

/// Compute Optimizer's finding for one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RightsizingFinding {
    /// A cheaper type fits.
    Overprovisioned,
    /// The threshold exceeds 100% − headroom: a larger type is needed.
    Underprovisioned,
    /// The current type is the cheapest that fits.
    Optimized,
    /// Trusted Advisor's low-utilisation rule holds.
    Idle,
    /// Under the minimum hours of data.
    InsufficientData,
}

/// Settings, with AWS's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RightsizingConfig {
    /// Hours of history considered (14, 32 or 93 days).
    pub lookback_hours: u32,
    /// CPU threshold percentile: 99.5 (default), 95 or 90.
    pub percentile: f64,
    /// Headroom kept free, percent: 20 (default), 30 or 0.
    pub headroom_percent: f64,
    /// Headroom per target instance family where θ6 learned it must be larger, percent.
    #[serde(default)]
    pub family_headroom_percent: std::collections::BTreeMap<String, f64>,
    /// Fewer hourly datapoints than this is `InsufficientData`.
    pub min_hours: usize,
    /// Families that may replace each other (same architecture and class).
    pub compatible_families: Vec<Vec<String>>,
    /// Whether burstable types may replace a non-burstable one.
    pub allow_burstable: bool,
    /// Whether another architecture (Graviton) may be chosen.
    pub allow_other_architecture: bool,
    /// Trusted Advisor: daily average CPU at most this, percent…
    pub idle_cpu_percent: f64,
    /// …and daily network I/O at most this many bytes…
    pub idle_network_bytes: f64,
    /// …on at least this many of the last 14 days.
    pub idle_days: usize,
}

impl RightsizingConfig {
    /// Lookback of at least one hour, percentile in 0–100, headrooms in 0–100 (below 100, so
    /// that some type can fit), idle thresholds not negative and at most 14 idle days.
    ///
    /// # Errors
    /// What is out of range, in words.
    pub fn validate(&self) -> Result<(), String> {
        let in_range = |name: &str, v: f64, range: std::ops::Range<f64>| {
            if range.contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be in {}–{}, got {v}", range.start, range.end))
            }
        };
        if self.lookback_hours == 0 {
            return Err("lookback_hours must be at least 1".into());
        }
        if !(0.0..=100.0).contains(&self.percentile) {
            return Err(format!("percentile must be in 0–100, got {}", self.percentile));
        }
        in_range("headroom_percent", self.headroom_percent, 0.0..100.0)?;
        for (family, h) in &self.family_headroom_percent {
            in_range(&format!("the headroom of family {family}"), *h, 0.0..100.0)?;
        }
        in_range("idle_cpu_percent", self.idle_cpu_percent, 0.0..100.0)?;
        if !(self.idle_network_bytes.is_finite() && self.idle_network_bytes >= 0.0) {
            return Err(format!(
                "idle_network_bytes must not be negative, got {}",
                self.idle_network_bytes
            ));
        }
        if self.idle_days > 14 {
            return Err(format!("idle_days is out of the last 14 days, got {}", self.idle_days));
        }
        Ok(())
    }
}

impl Default for RightsizingConfig {
    fn default() -> Self {
        let group = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect();
        Self {
            lookback_hours: 14 * 24,
            percentile: 99.5,
            headroom_percent: 20.0,
            family_headroom_percent: std::collections::BTreeMap::new(),
            min_hours: 30,
            compatible_families: vec![
                group(&["m5", "m6i", "m7i"]),
                group(&["c5", "c6i", "c7i"]),
                group(&["r5", "r6i", "r7i"]),
                group(&["t3", "t3a"]),
                group(&["m7g"]),
                group(&["c7g"]),
                group(&["r7g"]),
                group(&["t4g"]),
            ],
            allow_burstable: false,
            allow_other_architecture: false,
            idle_cpu_percent: 10.0,
            idle_network_bytes: 5.0 * 1024.0 * 1024.0,
            idle_days: 4,
        }
    }
}

/// The recommendation for one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recommendation {
    /// The finding.
    pub finding: RightsizingFinding,
    /// The type now.
    pub current_type: String,
    /// The type to move to, when it differs.
    pub target_type: Option<String>,
    /// The CPU threshold measured, percent.
    pub cpu_threshold: Option<f64>,
    /// Its projection on the target, percent.
    pub projected_cpu: Option<f64>,
    /// Hourly datapoints used.
    pub hours: usize,
    /// The families searched, in order.
    pub searched_families: Vec<String>,
    /// The evidence, in words.
    pub evidence: String,
}

impl Recommendation {
    /// `InsufficientData` on `current`, the verdict until the evidence says otherwise.
    #[must_use]
    pub fn insufficient_data(current: &str) -> Self {
        Self {
            finding: RightsizingFinding::InsufficientData,
            current_type: current.to_owned(),
            target_type: None,
            cpu_threshold: None,
            projected_cpu: None,
            hours: 0,
            searched_families: Vec::new(),
            evidence: String::new(),
        }
    }
}

/// The `p`-th percentile (0–100) of `values`, linearly interpolated; `None` when empty.
#[must_use]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // ranks of short series
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    thread_local! {
        /// Reused between calls: a percentile per instance would otherwise allocate per instance.
        static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|finite| {
        finite.clear();
        finite.extend(values.iter().copied().filter(|v| v.is_finite()));
        if finite.is_empty() {
            return None;
        }
        let rank = (p / 100.0).clamp(0.0, 1.0) * (finite.len() - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        // Selection, not a sort: linear in the series length.
        let (_, &mut low, above) = finite.select_nth_unstable_by(lo, f64::total_cmp);
        let high = if hi == lo {
            low
        } else {
            above.iter().copied().min_by(f64::total_cmp).unwrap_or(low)
        };
        Some(low + (high - low) * (rank - lo as f64))
    })
}

/// The values of `series` inside the lookback that ends at its last datapoint.
fn window(series: &MetricSeries, lookback_hours: u32) -> &[f64] {
    let stamps = &series.timestamps;
    let Some(&last) = stamps.last() else {
        return &[];
    };
    let start = last - i64::from(lookback_hours) * 3600;
    // A gap-free hourly series starts exactly `lookback_hours` from its end; check that guess
    // before bisecting (each probe of a bisection is a likely cache miss).
    let guess = stamps.len().saturating_sub(lookback_hours as usize);
    let first = if stamps.get(guess).is_some_and(|&t| t > start) && (guess == 0 || stamps[guess - 1] <= start) {
        guess
    } else {
        stamps.partition_point(|&t| t <= start)
    };
    // A loaded world has one value per timestamp; one built in code may not, and gets the
    // values it has rather than a panic.
    series.values.get(first..).unwrap_or_default()
}

fn family(instance_type: &str) -> &str {
    instance_type.split_once('.').map_or(instance_type, |(f, _)| f)
}

/// Sums per UTC day of `series` in the window, as (day, sum, count).
fn daily(series: &MetricSeries, lookback_hours: u32) -> Vec<(i64, f64, usize)> {
    let values = window(series, lookback_hours);
    let stamps = &series.timestamps[series.timestamps.len().saturating_sub(values.len())..];
    let values = &values[..values.len().min(stamps.len())];
    let mut days = Vec::with_capacity(16);
    let mut start = 0;
    // Timestamps ascend: each day ends at the first stamp past the next midnight. A linear scan,
    // not a bisection: the series is read once front to back, which the prefetcher follows.
    while let Some(&t) = stamps.get(start) {
        let day = t.div_euclid(86_400);
        let next_midnight = (day + 1) * 86_400;
        let end = stamps[start..]
            .iter()
            .position(|&t| t >= next_midnight)
            .map_or(stamps.len(), |n| start + n);
        days.push((day, lane_sum(&values[start..end]), end - start));
        start = end;
    }
    days
}

/// A sum in four interleaved lanes, which the compiler vectorises; one running sum would wait
/// on every addition.
fn lane_sum(values: &[f64]) -> f64 {
    let mut lanes = [0.0; 4];
    let chunks = values.chunks_exact(4);
    let rest: f64 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + rest
}

/// Trusted Advisor's low-utilisation rule: daily average CPU ≤ 10% and network I/O ≤ 5 MB on
/// at least 4 of the last 14 days. Returns the number of such days.
#[must_use]
pub fn idle_days(cpu: &MetricSeries, network: &[&MetricSeries], config: &RightsizingConfig) -> usize {
    let lookback = 14 * 24;
    #[allow(clippy::cast_precision_loss)] // at most 24 points a day
    let quiet_cpu: Vec<i64> = daily(cpu, lookback)
        .iter()
        .rev()
        .take(14)
        .filter(|(_, sum, n)| sum / *n as f64 <= config.idle_cpu_percent)
        .map(|(day, _, _)| *day)
        .collect();
    if quiet_cpu.is_empty() {
        return 0; // network is only read when some day was quiet on CPU
    }
    let net_days: Vec<Vec<(i64, f64, usize)>> = network.iter().map(|s| daily(s, lookback)).collect();
    quiet_cpu
        .iter()
        .filter(|day| {
            let io: f64 = net_days
                .iter()
                .filter_map(|d| d.iter().find(|(x, _, _)| x == *day).map(|(_, s, _)| *s))
                .sum();
            io <= config.idle_network_bytes
        })
        .count()
}

/// A type the search may pick.
type Candidate<'a> = (&'a str, &'a InstanceSpec);

/// Candidate types, cheapest first, in the order the search visits families.
fn candidates<'a>(
    current: &str,
    spec: &InstanceSpec,
    catalog: &'a PriceCatalog,
    config: &RightsizingConfig,
) -> Vec<(Vec<String>, Vec<Candidate<'a>>)> {
    let own = family(current).to_owned();
    let compatible: Vec<String> = config
        .compatible_families
        .iter()
        .find(|g| g.contains(&own))
        .map(|g| g.iter().filter(|f| **f != own).cloned().collect())
        .unwrap_or_default();
    let allowed = |s: &InstanceSpec| {
        (config.allow_other_architecture || s.architecture == spec.architecture)
            && (config.allow_burstable || spec.burstable || !s.burstable)
    };
    let of = |families: &[String]| {
        let mut list: Vec<(&str, &InstanceSpec)> = catalog
            .ec2
            .iter()
            .filter(|(t, s)| families.iter().any(|f| f == family(t)) && allowed(s))
            .map(|(t, s)| (t.as_str(), s))
            .collect();
        list.sort_by(|a, b| a.1.hourly_usd.total_cmp(&b.1.hourly_usd).then(a.0.cmp(b.0)));
        list
    };
    let same = vec![own];
    let mut both = same.clone();
    both.extend(compatible.iter().cloned());
    vec![(same.clone(), of(&same)), (both.clone(), of(&both))]
}

/// Right-sizes one instance of type `current` from its CPU series (and memory, if published).
/// To right-size many, build a [`Rightsizer`] once.
#[must_use]
pub fn rightsize(
    current: &str,
    cpu: Option<&MetricSeries>,
    memory: Option<&MetricSeries>,
    catalog: &PriceCatalog,
    config: &RightsizingConfig,
) -> Recommendation {
    Rightsizer::new(catalog, config).rightsize(current, cpu, memory)
}

/// Candidate lists of one type: (families searched, candidates cheapest first), per search step.
type SearchOrder<'a> = Vec<(Vec<String>, Vec<Candidate<'a>>)>;

/// Right-sizing against one catalog and configuration, with every type's candidate lists
/// computed once rather than per instance.
#[derive(Debug)]
pub struct Rightsizer<'a> {
    catalog: &'a PriceCatalog,
    config: &'a RightsizingConfig,
    search: HashMap<&'a str, SearchOrder<'a>>,
}

impl<'a> Rightsizer<'a> {
    /// Prepares the search for every EC2 type of `catalog`.
    #[must_use]
    pub fn new(catalog: &'a PriceCatalog, config: &'a RightsizingConfig) -> Self {
        let search = catalog
            .ec2
            .iter()
            .map(|(t, spec)| (t.as_str(), candidates(t, spec, catalog, config)))
            .collect();
        Self {
            catalog,
            config,
            search,
        }
    }

    /// Right-sizes one instance of type `current` from its CPU series (and memory, if
    /// published).
    #[must_use]
    pub fn rightsize(
        &self,
        current: &str,
        cpu: Option<&MetricSeries>,
        memory: Option<&MetricSeries>,
    ) -> Recommendation {
        let (catalog, config) = (self.catalog, self.config);
        let mut rec = Recommendation::insufficient_data(current);
        let Ok(spec) = catalog.ec2_type(current) else {
            rec.evidence = format!("{current} is not in the price catalog");
            return rec;
        };
        let values = cpu.map_or(&[][..], |s| window(s, config.lookback_hours));
        rec.hours = values.len();
        if values.len() < config.min_hours {
            rec.evidence = format!("{} h of CPU data; {} h needed", values.len(), config.min_hours);
            return rec;
        }
        let Some(threshold) = percentile(values, config.percentile) else {
            return rec;
        };
        let memory_threshold = memory.and_then(|m| percentile(window(m, config.lookback_hours), config.percentile));
        rec.cpu_threshold = Some(threshold);
        let limit = 100.0 - config.headroom_percent;
        // A family θ6 saw breach after a resize keeps its own, larger headroom.
        let limit_of = |t: &str| {
            100.0
                - config
                    .family_headroom_percent
                    .get(family(t))
                    .copied()
                    .unwrap_or(config.headroom_percent)
        };
        let days = f64::from(config.lookback_hours) / 24.0;
        let fits = |t: &str, s: &InstanceSpec| {
            let limit = limit_of(t);
            let cpu = threshold * f64::from(spec.vcpu) / f64::from(s.vcpu);
            let mem_ok = memory_threshold.is_none_or(|m| m * spec.memory_gib / s.memory_gib <= limit);
            (cpu <= limit && mem_ok).then_some(cpu)
        };
        for (families, list) in self.search.get(current).map_or(&[][..], Vec::as_slice) {
            rec.searched_families.clone_from(families);
            if let Some((target, projected)) = list.iter().find_map(|(t, s)| fits(t, s).map(|p| (*t, p))) {
                rec.projected_cpu = Some(projected);
                let p = config.percentile;
                let current_fits = fits(current, spec).is_some();
                let cheaper = catalog.ec2_type(target).is_ok_and(|s| s.hourly_usd < spec.hourly_usd);
                if current_fits && !cheaper {
                    rec.finding = RightsizingFinding::Optimized;
                    rec.projected_cpu = Some(threshold);
                    rec.evidence =
                        format!("P{p} CPU {threshold:.1}% over {days:.0} days; {current} is the cheapest fit");
                } else {
                    rec.finding = if current_fits {
                        RightsizingFinding::Overprovisioned
                    } else {
                        RightsizingFinding::Underprovisioned
                    };
                    rec.target_type = Some(target.to_owned());
                    rec.evidence = format!(
                    "P{p} CPU {threshold:.1}% over {days:.0} days on {} vCPU; {projected:.1}% projected on {target} ({} vCPU), limit {:.0}%",
                    spec.vcpu,
                    catalog.ec2_type(target).map_or(0, |s| s.vcpu),
                    limit_of(target),
                );
                }
                return rec;
            }
        }
        rec.finding = RightsizingFinding::Underprovisioned;
        rec.evidence = format!(
            "P{} CPU {threshold:.1}% over {days:.0} days; no type in {:?} keeps it under {limit:.0}%",
            config.percentile, rec.searched_families
        );
        rec
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::float_cmp
)] // small indices and counts; sums of small integers are exact
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_between_ranks() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        // rank = 0.995 × 199 = 198.005 → 199 + 0.005 × (200 − 199)
        assert!((percentile(&v, 99.5).unwrap() - 199.005).abs() < 1e-9);
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn percentile_by_selection_equals_percentile_by_sorting() {
        // Shuffled, with duplicates and a NaN that must be ignored.
        let mut v: Vec<f64> = (0..337).map(|k| f64::from((k * 7919) % 101)).collect();
        v.push(f64::NAN);
        let mut sorted: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        for p in [0.0, 50.0, 90.0, 95.0, 99.5, 100.0] {
            let rank = p / 100.0 * (sorted.len() - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            let expected = sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64);
            assert_eq!(percentile(&v, p), Some(expected), "P{p}");
        }
    }

    fn series(stamps: Vec<i64>) -> MetricSeries {
        MetricSeries {
            resource_id: "i-1".into(),
            region: "us-east-1".into(),
            namespace: "AWS/EC2".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: std::collections::BTreeMap::new(),
            stat: "Average".into(),
            period_seconds: 3600,
            values: (1..=stamps.len()).map(|k| k as f64).collect(),
            timestamps: stamps,
        }
    }

    #[test]
    fn window_and_days_hold_for_gap_free_and_gapped_series() {
        let midnight = 20_000 * 86_400;
        // 48 gap-free hours: the guess is right.
        let even = series((0..48).map(|h| midnight + h * 3600).collect());
        assert_eq!(window(&even, 24), &even.values[24..]);
        assert_eq!(
            daily(&even, 48),
            vec![
                (20_000, (1..=24).sum::<i64>() as f64, 24),
                (20_001, (25..=48).sum::<i64>() as f64, 24)
            ]
        );
        // A day missing in the middle: the guess is wrong and bisection decides.
        let gapped = series((0..24).chain(48..72).map(|h| midnight + h * 3600).collect());
        assert_eq!(window(&gapped, 36), &gapped.values[24..]);
        assert_eq!(window(&gapped, 60), &gapped.values[12..]);
        let days = daily(&gapped, 72);
        assert_eq!(
            days.iter().map(|d| (d.0, d.2)).collect::<Vec<_>>(),
            vec![(20_000, 24), (20_002, 24)]
        );
        assert_eq!(days[1].1, (25..=48).sum::<i64>() as f64);
    }
}
