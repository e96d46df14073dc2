//! θ5 Monitoring: CloudWatch alarms on what θ4 changed, one dashboard of those resources, the
//! post-change metrics read back, and a notification of the iteration's result.
//!
//! Alarms watch CPU (> 80% by default) of every changed instance and DB instance; resources
//! without a CPU metric (volumes, buckets, groups, addresses) are listed as not alarmed.
//!
//! Cost has an alarm of its own. Billing metrics exist only in real accounts and lag by hours,
//! so after an iteration that applied changes θ5 publishes the engine's own monthly estimate of the estate
//! as θ4 left it (a custom metric, `Miyabi/Cost` `EstimatedMonthlyCost` per account) and
//! alarms when it exceeds a budget: configured, or World0's estimate by default. The
//! alarms are read back with `DescribeAlarms` (100 names a call) before they are reported, and
//! the post-change CPU with batched `GetMetricData`, so that the calls grow with the Regions
//! and not with the changed resources, apart from one `PutMetricAlarm` each. A sink that fails is recorded
//! in the report and does not fail the phase: the changes are made either way.

pub mod notify;
pub mod report;

use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, Statistic};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use self::notify::{Notification, NotificationSink, NotifyError, WebhookSink};
use crate::assessment::ResourceKind;
use crate::aws::metrics::{self, SeriesRequest};
use crate::aws::{AwsError, RegionClients};
use crate::cycle::{CycleContext, Phase, PhaseId, PhaseOutcome};
use crate::phases::deployment::{DeploymentReport, Mode, StepOutcome};
use crate::plan::execution::ExecutionPlan;
use crate::plan::ResourceRef;
use crate::world::WorldState;
use crate::Result;

/// Settings of θ5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// CPU alarm threshold, percent.
    pub cpu_alarm_percent: f64,
    /// Alarm period, seconds.
    pub period_seconds: i32,
    /// Periods over the threshold before the alarm fires.
    pub evaluation_periods: i32,
    /// The dashboard's name.
    pub dashboard_name: String,
    /// Hours of metrics read back after the change.
    pub readback_hours: i64,
    /// The monthly cost, USD, over which the cost alarm fires; `None` is World0's estimate.
    #[serde(default)]
    pub cost_budget_usd: Option<f64>,
    /// The namespace the monthly estimate is published in.
    #[serde(default = "default_cost_namespace")]
    pub cost_namespace: String,
    /// The Region of the cost metric and alarm; `None` is the first Region of the capture.
    #[serde(default)]
    pub cost_region: Option<String>,
}

fn default_cost_namespace() -> String {
    "Miyabi/Cost".into()
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            cpu_alarm_percent: 80.0,
            period_seconds: 300,
            evaluation_periods: 3,
            dashboard_name: "miyabi-changed-resources".into(),
            readback_hours: 24,
            cost_budget_usd: None,
            cost_namespace: default_cost_namespace(),
            cost_region: None,
        }
    }
}

/// One alarm θ5 created and read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmRecord {
    /// Its name, `miyabi-cpu-<resource id>`.
    pub name: String,
    /// What it watches.
    pub resource: ResourceRef,
    /// Threshold, percent.
    pub threshold: f64,
    /// Its state as CloudWatch reported it when read back.
    pub state: Option<String>,
}

/// Where the cost alarm's budget came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSource {
    /// [`MonitoringConfig::cost_budget_usd`].
    Configured,
    /// World0's monthly estimate: the estate as the cycle found it.
    World0,
}

/// The cost alarm θ5 put, with the estimate it published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostAlarmRecord {
    /// Its name, `miyabi-cost-<account id>`.
    pub name: String,
    /// Its Region.
    pub region: String,
    /// The monthly estimate published, USD: the estate as θ4 left it, at catalog prices.
    pub estimate_usd: f64,
    /// The threshold, USD a month.
    pub budget_usd: f64,
    /// Where the threshold came from.
    pub budget_from: BudgetSource,
    /// Its state as CloudWatch reported it when read back.
    pub state: Option<String>,
}

/// The CPU of a changed resource after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reading {
    /// The resource.
    pub resource: ResourceRef,
    /// Hourly datapoints found.
    pub points: usize,
    /// Mean of the hourly averages, percent.
    pub average: Option<f64>,
    /// Highest hourly maximum, percent.
    pub maximum: Option<f64>,
}

/// θ5's result, written as `integration_report.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoringReport {
    /// Alarms created.
    pub alarms: Vec<AlarmRecord>,
    /// Changed resources without a CPU alarm, and why.
    pub not_alarmed: Vec<(ResourceRef, String)>,
    /// The dashboard, when one was written.
    pub dashboard: Option<String>,
    /// Post-change CPU of the changed resources.
    pub readings: Vec<Reading>,
    /// The cost alarm, after an iteration that applied changes (a dry run, or an apply that
    /// changed nothing, publishes and creates nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_alarm: Option<CostAlarmRecord>,
    /// What was notified, and the error of each sink that failed.
    pub notifications: Vec<(String, Option<String>)>,
}

/// The custom metric of the monthly estimate, USD.
const COST_METRIC: &str = "EstimatedMonthlyCost";

/// The cost alarm's period: the estimate changes once an iteration, not by the minute.
const COST_PERIOD_SECONDS: i32 = 3600;

/// Most alarm names one `DescribeAlarms` call takes.
const MAX_ALARM_NAMES_PER_CALL: usize = 100;

/// The CloudWatch namespace and dimension of a resource's CPU metric.
fn cpu_metric(resource: &ResourceRef) -> Option<(&'static str, &'static str)> {
    match resource.kind {
        ResourceKind::Ec2Instance => Some(("AWS/EC2", "InstanceId")),
        ResourceKind::RdsInstance => Some(("AWS/RDS", "DBInstanceIdentifier")),
        _ => None,
    }
}

/// One threshold alarm θ5 puts: "over `threshold`" on one metric series.
struct AlarmSpec<'a> {
    name: &'a str,
    description: String,
    namespace: &'a str,
    metric: &'a str,
    dimension: Dimension,
    statistic: Statistic,
    period_seconds: i32,
    evaluation_periods: i32,
    threshold: f64,
}

impl AlarmSpec<'_> {
    /// Creates or updates the alarm.
    async fn put(&self, c: &RegionClients) -> std::result::Result<(), AwsError> {
        let cw = &c.cloudwatch;
        cw.layer
            .call("PutMetricAlarm", || {
                cw.client
                    .put_metric_alarm()
                    .alarm_name(self.name)
                    .alarm_description(&self.description)
                    .namespace(self.namespace)
                    .metric_name(self.metric)
                    .dimensions(self.dimension.clone())
                    .statistic(self.statistic.clone())
                    .period(self.period_seconds)
                    .evaluation_periods(self.evaluation_periods)
                    .threshold(self.threshold)
                    .comparison_operator(ComparisonOperator::GreaterThanThreshold)
                    .send()
            })
            .await?;
        Ok(())
    }
}

/// θ5 as a cycle phase.
#[derive(Debug, Clone, Default)]
pub struct Monitoring {
    config: MonitoringConfig,
    sinks: Vec<Arc<dyn NotificationSink>>,
}

impl Monitoring {
    /// θ5 with `config` and no sink.
    #[must_use]
    pub fn new(config: MonitoringConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Adds a notification sink.
    #[must_use]
    pub fn with_sink(mut self, sink: Arc<dyn NotificationSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Creates (or updates) the CPU alarm of `resource` and returns its name.
    async fn put_alarm(&self, c: &RegionClients, resource: &ResourceRef) -> std::result::Result<String, AwsError> {
        let (namespace, dimension) = cpu_metric(resource).unwrap_or(("AWS/EC2", "InstanceId"));
        let name = format!("miyabi-cpu-{}", resource.id);
        let cfg = &self.config;
        AlarmSpec {
            name: &name,
            description: format!(
                "CPU of {} above {}% after a Miyabi change",
                resource.id, cfg.cpu_alarm_percent
            ),
            namespace,
            metric: "CPUUtilization",
            dimension: Dimension::builder().name(dimension).value(&resource.id).build(),
            statistic: Statistic::Average,
            period_seconds: cfg.period_seconds,
            evaluation_periods: cfg.evaluation_periods,
            threshold: cfg.cpu_alarm_percent,
        }
        .put(c)
        .await?;
        Ok(name)
    }

    /// The state of each named alarm as CloudWatch reports it, read back with `DescribeAlarms`
    /// in calls of up to 100 names. An alarm CloudWatch does not list is absent.
    async fn alarm_states(
        c: &RegionClients,
        names: &[String],
    ) -> std::result::Result<BTreeMap<String, String>, AwsError> {
        let cw = &c.cloudwatch;
        let mut states = BTreeMap::new();
        for chunk in names.chunks(MAX_ALARM_NAMES_PER_CALL) {
            let send = |token| {
                cw.client
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    .set_next_token(token)
                    .send()
            };
            let each = |page: DescribeAlarmsOutput| {
                for alarm in page.metric_alarms() {
                    if let Some(name) = alarm.alarm_name() {
                        let state = alarm.state_value().map_or("unknown", |s| s.as_str());
                        states.insert(name.to_owned(), state.to_owned());
                    }
                }
            };
            cw.layer
                .pages("DescribeAlarms", send, DescribeAlarmsOutput::next_token, each)
                .await?;
        }
        Ok(states)
    }

    /// The hourly CPU of `resources` over the read-back window ending at `now` (Unix seconds,
    /// by the cycle's clock), fetched with batched `GetMetricData`: one call carries 250
    /// resources, where `GetMetricStatistics` would take one call each.
    async fn read_back(
        &self,
        c: &RegionClients,
        resources: &[ResourceRef],
        now: i64,
    ) -> std::result::Result<Vec<Reading>, AwsError> {
        let window = (now - self.config.readback_hours * 3600, now);
        let requests: Vec<SeriesRequest> = resources
            .iter()
            .flat_map(|r| {
                let (namespace, dimension) = cpu_metric(r).unwrap_or(("AWS/EC2", "InstanceId"));
                ["Average", "Maximum"].map(|stat| SeriesRequest {
                    window,
                    ..SeriesRequest::new(&r.id, namespace, "CPUUtilization", dimension, stat)
                })
            })
            .collect();
        let mut series: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for s in metrics::fetch_all(&c.cloudwatch, &requests).await? {
            series.insert((s.resource_id, s.stat), s.values);
        }
        let mut take = |id: &str, stat: &str| series.remove(&(id.to_owned(), stat.to_owned())).unwrap_or_default();
        Ok(resources
            .iter()
            .map(|r| {
                let averages = take(&r.id, "Average");
                let maxima = take(&r.id, "Maximum");
                #[allow(clippy::cast_precision_loss)] // hours in a day
                let average = (!averages.is_empty()).then(|| averages.iter().sum::<f64>() / averages.len() as f64);
                Reading {
                    resource: r.clone(),
                    points: averages.len(),
                    average,
                    maximum: maxima.into_iter().reduce(f64::max),
                }
            })
            .collect())
    }

    async fn dashboard(&self, c: &RegionClients, watched: &[ResourceRef]) -> std::result::Result<String, AwsError> {
        let widgets: Vec<serde_json::Value> = watched
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                let (namespace, dimension) = cpu_metric(r)?;
                Some(serde_json::json!({
                    "type": "metric",
                    "x": (k % 2) * 12, "y": (k / 2) * 6, "width": 12, "height": 6,
                    "properties": {
                        "title": format!("CPU of {} ({})", r.id, r.region),
                        "region": r.region,
                        "metrics": [[namespace, "CPUUtilization", dimension, r.id]],
                        "stat": "Average", "period": self.config.period_seconds,
                        "annotations": {"horizontal": [{"value": self.config.cpu_alarm_percent, "label": "alarm"}]},
                    },
                }))
            })
            .collect();
        let body = serde_json::json!({ "widgets": widgets }).to_string();
        let cw = &c.cloudwatch;
        let name = &self.config.dashboard_name;
        cw.layer
            .call("PutDashboard", || {
                cw.client
                    .put_dashboard()
                    .dashboard_name(name)
                    .dashboard_body(&body)
                    .send()
            })
            .await?;
        Ok(name.clone())
    }

    /// The alarms of one Region's changed `resources`, one after another (CloudWatch allows 3
    /// `PutMetricAlarm` a second), their states as read back, and the resources' readings.
    async fn watch_region(
        &self,
        c: &RegionClients,
        resources: &[ResourceRef],
        now: i64,
    ) -> std::result::Result<(Vec<AlarmRecord>, Vec<Reading>), AwsError> {
        let mut names = Vec::with_capacity(resources.len());
        for resource in resources {
            names.push(self.put_alarm(c, resource).await?);
        }
        let states = Self::alarm_states(c, &names).await?;
        let alarms = resources
            .iter()
            .zip(names)
            .map(|(resource, name)| AlarmRecord {
                state: states.get(&name).cloned(),
                name,
                resource: resource.clone(),
                threshold: self.config.cpu_alarm_percent,
            })
            .collect();
        Ok((alarms, self.read_back(c, resources, now).await?))
    }

    /// Publishes the monthly estimate of the estate as θ4 left it (this iteration's capture
    /// with the applied steps' desired state) and puts the alarm on it, then reads its state
    /// back. `None` without a world state to estimate from.
    async fn cost_alarm(
        &self,
        ctx: &CycleContext,
        deployment: &DeploymentReport,
    ) -> std::result::Result<Option<CostAlarmRecord>, AwsError> {
        let Some(world) = ctx.artefacts.get::<WorldState>() else {
            return Ok(None);
        };
        let (budget_usd, budget_from) = match self.config.cost_budget_usd {
            Some(usd) => (usd, BudgetSource::Configured),
            None => (
                ctx.artefacts
                    .first::<WorldState>()
                    .map_or(world.assessment.monthly_total_usd, |w0| w0.assessment.monthly_total_usd),
                BudgetSource::World0,
            ),
        };
        let Some(region) = self
            .config
            .cost_region
            .clone()
            .or_else(|| world.scope.regions.first().cloned())
        else {
            return Ok(None);
        };
        let applied: std::collections::HashSet<&str> = deployment
            .steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::Applied)
            .map(|s| s.id.as_str())
            .collect();
        let estate = match ctx.artefacts.get::<ExecutionPlan>() {
            Some(plan) => plan.project(&world.inventory, |step| applied.contains(step.id.as_str())),
            None => world.inventory.clone(),
        };
        let estimate_usd = crate::assessment::monthly_cost(&estate, &ctx.catalog);
        let account = world.scope.account_id.as_deref().unwrap_or("unknown");
        let name = format!("miyabi-cost-{account}");
        let dimension = || Dimension::builder().name("AccountId").value(account).build();
        let c = ctx.aws.clients(&region).await;
        let cw = &c.cloudwatch;
        let namespace = &self.config.cost_namespace;
        AlarmSpec {
            name: &name,
            description: format!(
                "Miyabi's monthly estimate for account {account} above ${budget_usd:.2} ({})",
                match budget_from {
                    BudgetSource::Configured => "the configured budget",
                    BudgetSource::World0 => "World0's estimate",
                }
            ),
            namespace,
            metric: COST_METRIC,
            dimension: dimension(),
            statistic: Statistic::Maximum,
            period_seconds: COST_PERIOD_SECONDS,
            evaluation_periods: 1,
            threshold: budget_usd,
        }
        .put(&c)
        .await?;
        // No timestamp: CloudWatch stamps the datum on receipt, whatever clock the cycle runs on.
        cw.layer
            .call("PutMetricData", || {
                cw.client
                    .put_metric_data()
                    .namespace(namespace)
                    .metric_data(
                        MetricDatum::builder()
                            .metric_name(COST_METRIC)
                            .dimensions(dimension())
                            .value(estimate_usd)
                            .build(),
                    )
                    .send()
            })
            .await?;
        let state = Self::alarm_states(&c, std::slice::from_ref(&name)).await?.remove(&name);
        Ok(Some(CostAlarmRecord {
            name,
            region,
            estimate_usd,
            budget_usd,
            budget_from,
            state,
        }))
    }

    /// Alarms, dashboard, read-back and notification for the resources θ4 changed.
    ///
    /// # Errors
    /// An AWS error of the alarm, dashboard or read-back calls.
    pub async fn monitor(&self, ctx: &CycleContext) -> Result<MonitoringReport> {
        let deployment = ctx.artefacts.require::<DeploymentReport>("monitoring")?;
        let mut changed: Vec<ResourceRef> = deployment
            .steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::Applied && !s.action.is_destructive())
            .map(|s| s.resource.clone())
            .collect();
        changed.sort();
        changed.dedup();
        let mut clients: BTreeMap<String, RegionClients> = BTreeMap::new();
        let mut report = MonitoringReport {
            alarms: Vec::new(),
            not_alarmed: Vec::new(),
            dashboard: None,
            readings: Vec::new(),
            cost_alarm: None,
            notifications: Vec::new(),
        };
        let mut by_region: BTreeMap<String, Vec<ResourceRef>> = BTreeMap::new();
        for resource in changed {
            if cpu_metric(&resource).is_none() {
                let why = format!("{:?} has no CPU metric", resource.kind);
                report.not_alarmed.push((resource, why));
            } else {
                by_region.entry(resource.region.clone()).or_default().push(resource);
            }
        }
        let now = ctx.clock.now().timestamp();
        // Each Region's alarms spend that Region's PutMetricAlarm bucket: the Regions go at once.
        let regions = futures::future::try_join_all(by_region.into_iter().map(|(region, resources)| async move {
            let c = ctx.aws.clients(&region).await;
            let (alarms, readings) = self.watch_region(&c, &resources, now).await?;
            Ok::<_, AwsError>((region, c, alarms, readings))
        }))
        .await?;
        for (region, c, alarms, readings) in regions {
            report.alarms.extend(alarms);
            report.readings.extend(readings);
            clients.insert(region, c);
        }
        let watched: Vec<ResourceRef> = report.alarms.iter().map(|a| a.resource.clone()).collect();
        if let Some(c) = watched.first().and_then(|r| clients.get(&r.region)) {
            report.dashboard = Some(self.dashboard(c, &watched).await?);
        }
        // The estimate moves only when θ4 changed the estate; a run that changed nothing leaves
        // the account as it was, CloudWatch included.
        if deployment.mode == Mode::Apply && deployment.applied() > 0 {
            report.cost_alarm = self.cost_alarm(ctx, deployment).await?;
        }
        let world = ctx.artefacts.get::<crate::world::WorldState>();
        let notification = Notification {
            iteration: ctx.iteration(),
            monthly_cost_usd: world.map(|w| w.assessment.monthly_total_usd),
            security_score: world.map(|w| w.assessment.security_score),
            applied: deployment.applied(),
            rolled_back: deployment.count("rolled_back"),
            failed_wave: deployment.failed_wave,
            alarms: report.alarms.iter().map(|a| a.name.clone()).collect(),
        };
        for sink in &self.sinks {
            let result = sink.notify(&notification).await;
            if let Err(e) = &result {
                tracing::warn!(sink = %sink.name(), error = %e, "notification not delivered");
            }
            report
                .notifications
                .push((sink.name(), result.err().map(|e| e.to_string())));
        }
        Ok(report)
    }
}

#[async_trait]
impl Phase for Monitoring {
    fn id(&self) -> PhaseId {
        PhaseId::Monitoring
    }

    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let report = self.monitor(ctx).await?;
        ctx.output
            .write("integration_report.md", report::render(&report).as_bytes())?;
        ctx.artefacts.put(report);
        Ok(PhaseOutcome::nothing())
    }
}

impl crate::artefact::Artefact for MonitoringReport {
    const WHAT: &'static str = "a monitoring report (θ5)";
}
