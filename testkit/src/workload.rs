//! The workload demand model behind the demo estate's metrics.
//!
//! Emulators produce no metrics by themselves. Each seeded instance has a demand in
//! vCPU-seconds per hour with a daily pattern; its CPUUtilization is that demand divided by the
//! capacity of its *current* type, so a resize shows its real effect in the next period.

/// How an instance's demand behaves over a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Almost nothing: ~2% CPU, kilobytes of network.
    Idle,
    /// Steady and far below capacity: ~8% CPU (over-provisioned).
    SteadyLow,
    /// A daily wave between ~35% and ~65% CPU.
    WellSized,
    /// Mostly quiet with two hours a day near full load.
    Spiky,
    /// Demand 1.7 times the capacity it was sized for, all day: under-provisioned, and the
    /// CPU pinned at 100% hides by how much, so right-sizing takes two steps up.
    Saturated,
}

impl Pattern {
    /// All patterns.
    pub const ALL: [Self; 5] = [
        Self::Idle,
        Self::SteadyLow,
        Self::WellSized,
        Self::Spiky,
        Self::Saturated,
    ];

    /// Lower-case name, used as the `Pattern` tag.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::SteadyLow => "steady-low",
            Self::WellSized => "well-sized",
            Self::Spiky => "spiky",
            Self::Saturated => "saturated",
        }
    }
}

/// One instance's demand.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Workload {
    /// The daily shape.
    pub pattern: Pattern,
    /// The vCPU count the demand was sized against (the instance's type at seeding time).
    pub sized_for_vcpus: u32,
    /// Per-instance seed for noise and the spike hour.
    pub seed: u64,
}

/// A deterministic hash of (seed, n) to [0, 1).
fn unit(seed: u64, n: i64) -> f64 {
    // splitmix64: cheap, stateless, and the same on every platform.
    let mut z = seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Workload {
    /// Demand in vCPU-seconds during absolute hour `hour` (hours since the Unix epoch).
    #[must_use]
    pub fn demand_vcpu_seconds(&self, hour: i64) -> f64 {
        let v = f64::from(self.sized_for_vcpus);
        let noise = unit(self.seed, hour) - 0.5; // ±0.5
        let hour_of_day = hour.rem_euclid(24);
        let share = match self.pattern {
            Pattern::Idle => 0.02 + 0.01 * noise,
            Pattern::SteadyLow => 0.08 + 0.01 * noise,
            Pattern::WellSized => {
                let wave = (std::f64::consts::TAU * (hour_of_day as f64) / 24.0).sin();
                0.5 + 0.15 * wave + 0.04 * noise
            }
            Pattern::Spiky => {
                let spike_start = (self.seed % 22) as i64;
                if (spike_start..spike_start + 2).contains(&hour_of_day) {
                    0.95 + 0.04 * noise
                } else {
                    0.05 + 0.02 * noise
                }
            }
            Pattern::Saturated => 1.7 + 0.02 * noise,
        };
        share.max(0.0) * v * 3600.0
    }

    /// CPUUtilization (%) in `hour` on an instance with `vcpus`.
    #[must_use]
    pub fn cpu_percent(&self, hour: i64, vcpus: u32) -> f64 {
        let capacity = f64::from(vcpus.max(1)) * 3600.0;
        (self.demand_vcpu_seconds(hour) / capacity * 100.0).min(100.0)
    }

    /// Bytes in (and, the same, out) during `hour`.
    #[must_use]
    pub fn network_bytes(&self, hour: i64) -> f64 {
        match self.pattern {
            Pattern::Idle => 20_000.0 * (0.5 + unit(self.seed ^ 1, hour)),
            _ => self.demand_vcpu_seconds(hour) * 40_000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resize_changes_cpu_but_not_demand() {
        let w = Workload {
            pattern: Pattern::SteadyLow,
            sized_for_vcpus: 8,
            seed: 7,
        };
        let on_8 = w.cpu_percent(100, 8);
        let on_2 = w.cpu_percent(100, 2);
        assert!((on_2 - on_8 * 4.0).abs() < 1e-9, "{on_8} {on_2}");
        assert!(on_8 > 6.0 && on_8 < 10.0);
    }

    #[test]
    fn idle_traffic_stays_under_five_megabytes_a_day() {
        let w = Workload {
            pattern: Pattern::Idle,
            sized_for_vcpus: 2,
            seed: 3,
        };
        let day: f64 = (0..24).map(|h| w.network_bytes(h)).sum();
        assert!(day < 5_000_000.0, "{day}");
    }
}
