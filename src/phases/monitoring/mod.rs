//! θ5 Monitoring: CloudWatch alarms on what θ4 changed, one dashboard of those resources, the
//! post-change metrics read back, and a notification of the iteration's result.
//!
//! Alarms watch CPU (> 80% by default) of every changed instance and DB instance; resources
//! without a CPU metric (volumes, buckets, groups, addresses) are listed as not alarmed. Each
//! alarm is read back with `DescribeAlarms` before it is reported. A sink that fails is recorded
//! in the report and does not fail the phase: the changes are made either way.

pub mod notify;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use self::notify::{Notification, NotificationSink, NotifyError, WebhookSink};
use crate::assessment::ResourceKind;
use crate::aws::{AwsError, AwsOptions, CallStats, RegionClients};
use crate::cycle::{CycleContext, Phase, PhaseId};
use crate::phases::deployment::StepOutcome;
use crate::plan::ResourceRef;
use crate::{Error, Result};

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
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            cpu_alarm_percent: 80.0,
            period_seconds: 300,
            evaluation_periods: 3,
            dashboard_name: "miyabi-changed-resources".into(),
            readback_hours: 24,
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
    /// What was notified, and the error of each sink that failed.
    pub notifications: Vec<(String, Option<String>)>,
}

/// The CloudWatch namespace and dimension of a resource's CPU metric.
fn cpu_metric(resource: &ResourceRef) -> Option<(&'static str, &'static str)> {
    match resource.kind {
        ResourceKind::Ec2Instance => Some(("AWS/EC2", "InstanceId")),
        ResourceKind::RdsInstance => Some(("AWS/RDS", "DBInstanceIdentifier")),
        _ => None,
    }
}

/// θ5 as a cycle phase.
#[derive(Debug, Clone, Default)]
pub struct Monitoring {
    aws: AwsOptions,
    config: MonitoringConfig,
    sinks: Vec<Arc<dyn NotificationSink>>,
}

impl Monitoring {
    /// θ5 with `config`, standard AWS configuration and no sink.
    #[must_use]
    pub fn new(config: MonitoringConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Replaces the AWS options.
    #[must_use]
    pub fn with_aws(mut self, aws: AwsOptions) -> Self {
        self.aws = aws;
        self
    }

    /// Adds a notification sink.
    #[must_use]
    pub fn with_sink(mut self, sink: Arc<dyn NotificationSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    async fn alarm(&self, c: &RegionClients, resource: &ResourceRef) -> std::result::Result<AlarmRecord, AwsError> {
        let (namespace, dimension) = cpu_metric(resource).unwrap_or(("AWS/EC2", "InstanceId"));
        let name = format!("miyabi-cpu-{}", resource.id);
        let cfg = &self.config;
        let cw = &c.cloudwatch;
        cw.layer
            .call("PutMetricAlarm", || {
                cw.client
                    .put_metric_alarm()
                    .alarm_name(&name)
                    .alarm_description(format!(
                        "CPU of {} above {}% after a Miyabi change",
                        resource.id, cfg.cpu_alarm_percent
                    ))
                    .namespace(namespace)
                    .metric_name("CPUUtilization")
                    .dimensions(Dimension::builder().name(dimension).value(&resource.id).build())
                    .statistic(Statistic::Average)
                    .period(cfg.period_seconds)
                    .evaluation_periods(cfg.evaluation_periods)
                    .threshold(cfg.cpu_alarm_percent)
                    .comparison_operator(ComparisonOperator::GreaterThanThreshold)
                    .send()
            })
            .await?;
        let found = cw
            .layer
            .call("DescribeAlarms", || {
                cw.client.describe_alarms().alarm_names(&name).send()
            })
            .await?;
        let state = found
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name.as_str()))
            .map(|a| a.state_value().map_or("unknown", |s| s.as_str()).to_owned());
        Ok(AlarmRecord {
            name,
            resource: resource.clone(),
            threshold: cfg.cpu_alarm_percent,
            state,
        })
    }

    /// The CPU of `resource` over the read-back window ending at `now` (Unix seconds, by the
    /// cycle's clock).
    async fn read_back(
        &self,
        c: &RegionClients,
        resource: &ResourceRef,
        now: i64,
    ) -> std::result::Result<Reading, AwsError> {
        let (namespace, dimension) = cpu_metric(resource).unwrap_or(("AWS/EC2", "InstanceId"));
        let cw = &c.cloudwatch;
        let out = cw
            .layer
            .call("GetMetricStatistics", || {
                cw.client
                    .get_metric_statistics()
                    .namespace(namespace)
                    .metric_name("CPUUtilization")
                    .dimensions(Dimension::builder().name(dimension).value(&resource.id).build())
                    .start_time(aws_smithy_types::DateTime::from_secs(
                        now - self.config.readback_hours * 3600,
                    ))
                    .end_time(aws_smithy_types::DateTime::from_secs(now))
                    .period(3600)
                    .statistics(Statistic::Average)
                    .statistics(Statistic::Maximum)
                    .send()
            })
            .await?;
        let points = out.datapoints();
        let averages: Vec<f64> = points
            .iter()
            .filter_map(aws_sdk_cloudwatch::types::Datapoint::average)
            .collect();
        #[allow(clippy::cast_precision_loss)] // hours in a day
        let average = (!averages.is_empty()).then(|| averages.iter().sum::<f64>() / averages.len() as f64);
        let maximum = points
            .iter()
            .filter_map(aws_sdk_cloudwatch::types::Datapoint::maximum)
            .reduce(f64::max);
        Ok(Reading {
            resource: resource.clone(),
            points: points.len(),
            average,
            maximum,
        })
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

    /// Alarms, dashboard, read-back and notification for the resources θ4 changed.
    ///
    /// # Errors
    /// An AWS error of the alarm, dashboard or read-back calls.
    pub async fn monitor(&self, ctx: &CycleContext) -> Result<MonitoringReport> {
        let deployment = ctx.deployment.as_ref().ok_or(Error::MissingInput {
            phase: "monitoring",
            missing: "a deployment report (θ4)",
        })?;
        let mut changed: Vec<ResourceRef> = deployment
            .steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::Applied && !s.action.is_destructive())
            .map(|s| s.resource.clone())
            .collect();
        changed.sort();
        changed.dedup();
        let stats = Arc::new(CallStats::default());
        let mut clients: BTreeMap<String, RegionClients> = BTreeMap::new();
        let mut report = MonitoringReport {
            alarms: Vec::new(),
            not_alarmed: Vec::new(),
            dashboard: None,
            readings: Vec::new(),
            notifications: Vec::new(),
        };
        for resource in &changed {
            if cpu_metric(resource).is_none() {
                report
                    .not_alarmed
                    .push((resource.clone(), format!("{:?} has no CPU metric", resource.kind)));
                continue;
            }
            if !clients.contains_key(&resource.region) {
                let c = RegionClients::new(&resource.region, &self.aws, &stats).await;
                clients.insert(resource.region.clone(), c);
            }
            let c = &clients[&resource.region];
            report.alarms.push(self.alarm(c, resource).await?);
            report
                .readings
                .push(self.read_back(c, resource, ctx.clock.now().timestamp()).await?);
        }
        let watched: Vec<ResourceRef> = report.alarms.iter().map(|a| a.resource.clone()).collect();
        if let Some(c) = watched.first().and_then(|r| clients.get(&r.region)) {
            report.dashboard = Some(self.dashboard(c, &watched).await?);
        }
        let notification = Notification {
            iteration: ctx.iteration,
            monthly_cost_usd: ctx.world.as_ref().map(|w| w.assessment.monthly_total_usd),
            security_score: ctx.world.as_ref().map(|w| w.assessment.security_score),
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

    async fn run(&self, ctx: &mut CycleContext) -> Result<()> {
        let report = self.monitor(ctx).await?;
        if let Some(dir) = &ctx.out_dir {
            let path = dir.join("integration_report.md");
            crate::report::monitoring::write(&path, &report)?;
            ctx.reports.push(path);
        }
        ctx.monitoring = Some(report);
        Ok(())
    }
}
