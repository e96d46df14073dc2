//! The workload simulator (DESIGN §2): what makes a demo or test estate answer to its changes.
//!
//! Emulators produce no metrics by themselves. The simulator keeps each seeded instance's demand
//! and a simulated clock. After θ4 applied something, it reads every instance's *current* type
//! and state from EC2, publishes the next period of metrics from the demand and that type (a
//! stopped instance publishes nothing), and moves the clock past the period. The next θ1 then
//! sees the period as the latest data, θ5 and θ6 see what the changes did, and θ3 judges a
//! changed instance on the period alone.
//!
//! The state (demands, clock) lives in a JSON file, so that a second run of the main job on the
//! same estate continues the same simulated time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use miyabi_aws::clock::Clock;
use miyabi_aws::{CycleContext, CycleHook, PhaseId, PhaseOutcome};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::seed::{
    publish_instance_metrics, publish_other_metrics, Clients, DemoSpec, Endpoints, SeededEstate, SeededInstance,
};

/// Hours of metrics published per iteration by default: two days, so that θ3 has more than the
/// 30 hours of post-change data it needs to judge a changed instance.
pub const DEFAULT_PERIOD_HOURS: u32 = 48;

/// Simulated time, in whole hours since the Unix epoch.
#[derive(Debug)]
pub struct SimulatedClock {
    hour: AtomicI64,
}

impl SimulatedClock {
    /// A clock standing at `hour`.
    #[must_use]
    pub fn at_hour(hour: i64) -> Self {
        Self {
            hour: AtomicI64::new(hour),
        }
    }

    /// The current hour.
    #[must_use]
    pub fn hour(&self) -> i64 {
        self.hour.load(Ordering::SeqCst)
    }

    fn advance(&self, hours: u32) -> i64 {
        self.hour.fetch_add(i64::from(hours), Ordering::SeqCst) + i64::from(hours)
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.hour() * 3600, 0).unwrap_or_default()
    }
}

/// What the simulator keeps between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SimulationState {
    /// The seeded estate's size, seed and Regions (names of its databases and buckets).
    spec: DemoSpec,
    /// Every seeded instance and its demand; `instance_type` is the type last published with.
    instances: Vec<SeededInstance>,
    /// The simulated clock, hours since the Unix epoch.
    clock_hour: i64,
    /// Hours published per iteration.
    period_hours: u32,
}

/// One period published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// First hour published.
    pub from_hour: i64,
    /// The hour after the last one published; the clock now stands here.
    pub to_hour: i64,
    /// Instances that published (the running ones).
    pub running: usize,
    /// Instances whose type changed since the last period.
    pub resized: usize,
    /// Datapoints published.
    pub datapoints: usize,
}

/// The workload simulator. Install it with [`miyabi_aws::Cycle::with_hook`] and give the
/// context its [`WorkloadSimulator::clock`].
#[derive(Debug)]
pub struct WorkloadSimulator {
    endpoints: Endpoints,
    state: Mutex<SimulationState>,
    clock: Arc<SimulatedClock>,
    file: Option<PathBuf>,
}

impl WorkloadSimulator {
    /// A simulator of `estate` as `seed_demo` left it: the clock stands at the end of the
    /// seeded metrics (`seeded_until`, hours since the epoch).
    #[must_use]
    pub fn new(endpoints: Endpoints, spec: DemoSpec, estate: &SeededEstate, seeded_until: i64) -> Self {
        let state = SimulationState {
            spec,
            instances: estate.instances.clone(),
            clock_hour: seeded_until,
            period_hours: DEFAULT_PERIOD_HOURS,
        };
        Self {
            endpoints,
            clock: Arc::new(SimulatedClock::at_hour(state.clock_hour)),
            state: Mutex::new(state),
            file: None,
        }
    }

    /// Publishes `hours` per iteration instead of [`DEFAULT_PERIOD_HOURS`].
    #[must_use]
    pub fn with_period_hours(self, hours: u32) -> Self {
        let mut state = self.state.into_inner();
        state.period_hours = hours.max(1);
        Self {
            state: Mutex::new(state),
            ..self
        }
    }

    /// Keeps the state in `file` (written now and after every period), so that a later run can
    /// [`WorkloadSimulator::load`] it.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub async fn saved_to(mut self, file: impl Into<PathBuf>) -> Result<Self> {
        self.file = Some(file.into());
        self.save(&*self.state.lock().await)?;
        Ok(self)
    }

    /// The simulator a [`WorkloadSimulator::saved_to`] file describes, talking to `endpoints`.
    ///
    /// # Errors
    /// When the file cannot be read or is not a simulation state.
    pub fn load(file: &Path, endpoints: Endpoints) -> Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let state: SimulationState =
            serde_json::from_str(&text).with_context(|| format!("{} is not a simulation state", file.display()))?;
        Ok(Self {
            endpoints,
            clock: Arc::new(SimulatedClock::at_hour(state.clock_hour)),
            state: Mutex::new(state),
            file: Some(file.to_path_buf()),
        })
    }

    /// The simulated clock, for [`CycleContext::clock`].
    #[must_use]
    pub fn clock(&self) -> Arc<SimulatedClock> {
        self.clock.clone()
    }

    fn save(&self, state: &SimulationState) -> Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let text = serde_json::to_string_pretty(state)?;
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, file).with_context(|| format!("replacing {}", file.display()))?;
        Ok(())
    }

    /// Publishes the next period from each instance's demand and its current type, and moves
    /// the clock past it.
    ///
    /// # Errors
    /// When EC2 or CloudWatch refuse a call, or the state cannot be saved.
    pub async fn advance(&self) -> Result<Period> {
        let mut state = self.state.lock().await;
        let from = self.clock.hour();
        let to = from + i64::from(state.period_hours);
        let mut period = Period {
            from_hour: from,
            to_hour: to,
            running: 0,
            resized: 0,
            datapoints: 0,
        };
        let regions = state.spec.regions.clone();
        for region in &regions {
            let c = Clients::connect(&self.endpoints, region).await;
            let now = current_types(&c)
                .await
                .with_context(|| format!("reading instances in {region}"))?;
            let mut running = Vec::new();
            for i in state.instances.iter_mut().filter(|i| &i.region == region) {
                let Some((instance_type, is_running)) = now.get(&i.id) else {
                    continue; // terminated
                };
                if *instance_type != i.instance_type {
                    period.resized += 1;
                    i.instance_type.clone_from(instance_type);
                }
                if *is_running {
                    running.push(i.clone());
                }
            }
            period.running += running.len();
            period.datapoints += publish_instance_metrics(&c.cloudwatch, &running, from, to).await?;
            period.datapoints += publish_other_metrics(&c, region, &state.spec, from, to).await?;
        }
        self.clock.advance(state.period_hours);
        state.clock_hour = to;
        self.save(&state)?;
        tracing::info!(?period, "workload simulator published the next period");
        Ok(period)
    }
}

/// Every instance's type and whether it runs, by id.
async fn current_types(c: &Clients) -> Result<std::collections::HashMap<String, (String, bool)>> {
    let mut out = std::collections::HashMap::new();
    let mut pages = c.ec2.describe_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        for r in page?.reservations() {
            for i in r.instances() {
                let (Some(id), Some(t)) = (i.instance_id(), i.instance_type()) else {
                    continue;
                };
                let running = i
                    .state()
                    .and_then(|s| s.name())
                    .is_some_and(|n| *n == aws_sdk_ec2::types::InstanceStateName::Running);
                out.insert(id.to_owned(), (t.as_str().to_owned(), running));
            }
        }
    }
    Ok(out)
}

/// After θ4 applied something, the estate lives through the next period.
#[async_trait]
impl CycleHook for WorkloadSimulator {
    async fn after(&self, phase: PhaseId, outcome: &PhaseOutcome, _: &mut CycleContext) -> miyabi_aws::Result<()> {
        if phase != PhaseId::Deployment || outcome.applied.unwrap_or(0) == 0 {
            return Ok(());
        }
        self.advance().await.map(drop).map_err(|e| miyabi_aws::Error::Hook {
            hook: "workload simulator".into(),
            source: e.into(),
        })
    }
}
