//! Right-sizing after AWS Compute Optimizer, and idle detection after Trusted Advisor.
//!
//! The CPU threshold (P99.5 by default) of the lookback is projected onto a candidate type by
//! the vCPU ratio; the cheapest type keeping it ≤ 100% − headroom wins, searched in the same
//! family first, then in compatible families (same architecture and class). Memory is projected
//! like CPU where the CloudWatch agent publishes it. Where it does not, a memory guard keeps every
//! step at or above half the current memory: an over-provisioned instance steps down over
//! several iterations, each watched by θ5 and θ6 before the next, instead of in one blind cut.
//! Under 30 hours of data, nothing is recommended.

use schemars::JsonSchema;
use std::collections::HashMap;
use std::fmt::Write as _;

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
    /// Without a memory metric, no single resize leaves less than this share of the current
    /// memory (0.5: at most a halving per step). 0 turns the guard off.
    #[serde(default = "default_memory_guard")]
    pub memory_guard_fraction: f64,
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
        if !(0.0..=1.0).contains(&self.memory_guard_fraction) {
            return Err(format!(
                "memory_guard_fraction must be in 0–1, got {}",
                self.memory_guard_fraction
            ));
        }
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

fn default_memory_guard() -> f64 {
    0.5
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
            memory_guard_fraction: default_memory_guard(),
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
    /// Memory used at the threshold percentile, where the CloudWatch agent publishes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_threshold: Option<f64>,
    /// The type CPU alone would have chosen, where the memory guard held the step back to one
    /// that keeps more memory (no memory metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by_memory_guard: Option<String>,
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
            memory_threshold: None,
            held_by_memory_guard: None,
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

/// Adds the memory side of a resize to its evidence: the projection where memory is measured;
/// otherwise the risk of a cut, and what the memory guard left for a later iteration.
fn describe_memory(rec: &mut Recommendation, current_gib: f64, target_gib: f64, config: &RightsizingConfig) {
    let p = config.percentile;
    match rec.memory_threshold {
        Some(m) => {
            let projected = m * current_gib / target_gib;
            let _ = write!(rec.evidence, "; P{p} memory {m:.1}%, {projected:.1}% projected");
        }
        None if target_gib < current_gib => {
            let _ = write!(
                rec.evidence,
                "; memory risk: not measured (no CloudWatch agent metric), {current_gib} → {target_gib} GiB"
            );
            if let Some(cpu_only) = &rec.held_by_memory_guard {
                let _ = write!(
                    rec.evidence,
                    "; the memory guard keeps ≥ {:.0}% of it, so CPU alone ({cpu_only}) is left for a later iteration",
                    config.memory_guard_fraction * 100.0
                );
            }
        }
        None => {}
    }
}

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
        rec.memory_threshold = memory_threshold;
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
        let cpu_fits = |t: &str, s: &InstanceSpec| {
            let cpu = threshold * f64::from(spec.vcpu) / f64::from(s.vcpu);
            (cpu <= limit_of(t)).then_some(cpu)
        };
        // Measured memory is projected like CPU; unmeasured memory is never more than halved.
        let memory_fits = |t: &str, s: &InstanceSpec| match memory_threshold {
            Some(m) => m * spec.memory_gib / s.memory_gib <= limit_of(t),
            None => s.memory_gib >= spec.memory_gib * config.memory_guard_fraction,
        };
        let fits = |t: &str, s: &InstanceSpec| cpu_fits(t, s).filter(|_| memory_fits(t, s));
        for (families, list) in self.search.get(current).map_or(&[][..], Vec::as_slice) {
            rec.searched_families.clone_from(families);
            if let Some((target, projected)) = list.iter().find_map(|(t, s)| fits(t, s).map(|p| (*t, p))) {
                rec.projected_cpu = Some(projected);
                let p = config.percentile;
                let current_fits = fits(current, spec).is_some();
                let target_spec = catalog.ec2_type(target).ok();
                let cheaper = target_spec.is_some_and(|s| s.hourly_usd < spec.hourly_usd);
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
                    if memory_threshold.is_none() {
                        // Anything cheaper that fits on CPU failed the memory guard.
                        rec.held_by_memory_guard = list
                            .iter()
                            .take_while(|(t, _)| *t != target)
                            .find(|(t, s)| cpu_fits(t, s).is_some())
                            .map(|(t, _)| (*t).to_owned());
                    }
                    rec.evidence = format!(
                        "P{p} CPU {threshold:.1}% over {days:.0} days on {} vCPU; {projected:.1}% projected on {target} ({} vCPU), limit {:.0}%",
                        spec.vcpu,
                        target_spec.map_or(0, |s| s.vcpu),
                        limit_of(target),
                    );
                    let target_memory = target_spec.map_or(0.0, |s| s.memory_gib);
                    describe_memory(&mut rec, spec.memory_gib, target_memory, config);
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

#[cfg(test)]
#[allow(clippy::float_cmp)] // catalog memory sizes are small exact binary fractions
mod memory_guard {
    use super::*;

    /// `hours` hourly datapoints of `metric`, all at `percent`.
    fn flat(metric: &str, percent: f64, hours: i64) -> MetricSeries {
        MetricSeries {
            resource_id: "i-1".into(),
            region: "us-east-1".into(),
            namespace: "AWS/EC2".into(),
            metric_name: metric.into(),
            dimensions: std::collections::BTreeMap::new(),
            stat: "Average".into(),
            period_seconds: 3600,
            values: vec![percent; usize::try_from(hours).unwrap()],
            timestamps: (0..hours).map(|h| 1_700_000_000 + h * 3600).collect(),
        }
    }

    /// The loop on one instance whose work stays the same: each iteration right-sizes on the
    /// CPU the current type shows (the work scaled by its vCPU count), applies the resize, and
    /// measures again. Returns the types it went through.
    fn walk(start: &str, work_vcpus: f64, memory_percent: Option<f64>) -> Vec<String> {
        let catalog = PriceCatalog::built_in();
        let config = RightsizingConfig::default();
        let rightsizer = Rightsizer::new(catalog, &config);
        let mut path = vec![start.to_owned()];
        for _ in 0..10 {
            let current = path.last().unwrap().clone();
            let spec = catalog.ec2_type(&current).unwrap();
            let cpu = flat("CPUUtilization", work_vcpus / f64::from(spec.vcpu) * 100.0, 14 * 24);
            let memory = memory_percent.map(|used| {
                flat(
                    "mem_used_percent",
                    used * catalog.ec2_type(start).unwrap().memory_gib / spec.memory_gib,
                    14 * 24,
                )
            });
            let rec = rightsizer.rightsize(&current, Some(&cpu), memory.as_ref());
            let Some(target) = rec.target_type else { break };
            path.push(target);
        }
        path
    }

    #[test]
    fn without_a_memory_metric_no_step_halves_memory_more_than_once() {
        let catalog = PriceCatalog::built_in();
        // Half a vCPU of work on 16 vCPUs: 3.1% CPU. By CPU alone m5.large (2 vCPU, 25%) fits.
        let path = walk("m5.4xlarge", 0.5, None);
        assert_eq!(path, ["m5.4xlarge", "m5.2xlarge", "m5.xlarge", "m5.large"]);
        for step in path.windows(2) {
            let (from, to) = (catalog.ec2_type(&step[0]).unwrap(), catalog.ec2_type(&step[1]).unwrap());
            assert!(
                to.memory_gib >= from.memory_gib / 2.0,
                "{step:?} cuts memory below half"
            );
        }
        // The first step says what the guard held back, and why.
        let cpu = flat("CPUUtilization", 0.5 / 16.0 * 100.0, 14 * 24);
        let rec = rightsize("m5.4xlarge", Some(&cpu), None, catalog, &RightsizingConfig::default());
        assert_eq!(rec.held_by_memory_guard.as_deref(), Some("m5.large"));
        assert!(rec.evidence.contains("memory risk: not measured"), "{}", rec.evidence);
        assert!(rec.evidence.contains("64 → 32 GiB"), "{}", rec.evidence);
    }

    #[test]
    fn a_burstable_instance_steps_down_too() {
        // t3.medium (4 GiB) with a trickle of work: t3.nano (0.5 GiB) by CPU alone.
        let path = walk("t3.medium", 0.05, None);
        assert_eq!(path, ["t3.medium", "t3.small", "t3.micro", "t3.nano"]);
    }

    #[test]
    fn with_a_memory_metric_the_guard_steps_aside() {
        // 10% of 64 GiB used is 6.4 GiB: 80% of m5.large's 8 GiB, just inside the headroom.
        assert_eq!(walk("m5.4xlarge", 0.5, Some(10.0)), ["m5.4xlarge", "m5.large"]);
        // At 12% it is not: m5.xlarge (16 GiB, 48%) is as far as memory allows.
        assert_eq!(walk("m5.4xlarge", 0.5, Some(12.0)), ["m5.4xlarge", "m5.xlarge"]);
        let cpu = flat("CPUUtilization", 0.5 / 16.0 * 100.0, 14 * 24);
        let memory = flat("mem_used_percent", 10.0, 14 * 24);
        let rec = rightsize(
            "m5.4xlarge",
            Some(&cpu),
            Some(&memory),
            PriceCatalog::built_in(),
            &RightsizingConfig::default(),
        );
        assert_eq!(rec.held_by_memory_guard, None);
        assert_eq!(rec.memory_threshold, Some(10.0));
    }

    #[test]
    fn the_guard_can_be_turned_off_and_is_range_checked() {
        let catalog = PriceCatalog::built_in();
        let config = RightsizingConfig {
            memory_guard_fraction: 0.0,
            ..RightsizingConfig::default()
        };
        let cpu = flat("CPUUtilization", 0.5 / 16.0 * 100.0, 14 * 24);
        let rec = rightsize("m5.4xlarge", Some(&cpu), None, catalog, &config);
        assert_eq!(rec.target_type.as_deref(), Some("m5.large"));
        let bad = RightsizingConfig {
            memory_guard_fraction: 1.5,
            ..RightsizingConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("memory_guard_fraction"));
    }
}
