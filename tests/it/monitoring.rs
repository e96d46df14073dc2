//! θ5: alarms and a dashboard on the changed resources, read back from CloudWatch; the webhook
//! sink against a local HTTP server that records what it receives.

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_ec2::types::InstanceType;
use miyabi_aws::assessment::ResourceKind;
use miyabi_aws::phases::deployment::{DeploymentReport, Mode, StepOutcome, StepRecord};
use miyabi_aws::phases::monitoring::{
    Monitoring, MonitoringConfig, Notification, NotificationSink, NotifyError, WebhookSink,
};
use miyabi_aws::plan::{Action, ResourceRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::harness;

/// One request the receiver got: request line, headers (lower-case names), body.
#[derive(Debug, Clone)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A local HTTP server answering every request with `status`, recording each.
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/miyabi", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then exactly Content-Length bytes of body.
            let (head, length) = loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), 0);
                }
                data.extend_from_slice(&buf[..n]);
                if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&data[..end]).into_owned();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    data.drain(..end + 4);
                    break (head, length);
                }
            };
            while data.len() < length {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            let mut lines = head.lines();
            let request_line = lines.next().unwrap_or_default().to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            log.lock().unwrap().push(Received {
                request_line,
                headers,
                body: data,
            });
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope");
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, seen)
}

fn notification() -> Notification {
    Notification {
        iteration: 2,
        monthly_cost_usd: Some(1234.5),
        security_score: Some(88.0),
        applied: 3,
        rolled_back: 0,
        failed_wave: None,
        alarms: vec!["miyabi-cpu-i-1".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_posts_the_notification_as_json() {
    let (url, seen) = receiver(204).await;
    WebhookSink::new(&url).notify(&notification()).await.expect("delivered");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request_line, "POST /hooks/miyabi HTTP/1.1");
    assert!(got[0]
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/json"));
    let body: Notification = serde_json::from_slice(&got[0].body).expect("a JSON notification");
    assert_eq!(body, notification());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_failures_are_typed_and_name_the_url() {
    let (url, _) = receiver(500).await;
    let err = WebhookSink::new(&url).notify(&notification()).await.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Status { status: 500, url: u, .. } if *u == url),
        "{err:?}"
    );

    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = format!("http://127.0.0.1:{closed}/x");
    let err = WebhookSink::new(&dead).notify(&notification()).await.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Connect { url, .. } if *url == dead),
        "{err:?}"
    );

    let err = WebhookSink::new("https://hooks.example.com/x")
        .notify(&notification())
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Unsupported { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_instances_get_a_cpu_alarm_and_a_dashboard_and_the_result_is_sent() {
    let h = harness("me-central-1").await;
    let ids = h.launch(InstanceType::M5Large, 2).await;
    // The changed instance: four hourly points and one from a minute ago (hourly means 20, 40,
    // 20, 40, 50). Its busy neighbour must count neither in its read-back nor in its alarm.
    let now = chrono::Utc::now().timestamp();
    let cpu = |id: &str, at: i64, value: f64| {
        MetricDatum::builder()
            .metric_name("CPUUtilization")
            .dimensions(Dimension::builder().name("InstanceId").value(id).build())
            .timestamp(aws_smithy_types::DateTime::from_secs(at))
            .value(value)
            .build()
    };
    let mut data: Vec<MetricDatum> = [(5, 20.0), (4, 40.0), (3, 20.0), (2, 40.0)]
        .into_iter()
        .map(|(hours_ago, v)| cpu(&ids[0], now - hours_ago * 3600, v))
        .collect();
    data.push(cpu(&ids[0], now - 60, 50.0));
    data.extend((1..=3).map(|k| cpu(&ids[1], now - 60 - k, 99.0)));
    h.seed
        .cloudwatch
        .put_metric_data()
        .namespace("AWS/EC2")
        .set_metric_data(Some(data))
        .send()
        .await
        .unwrap();
    let record = |kind, id: &str, action| StepRecord {
        id: format!("step-{id}"),
        wave: 0,
        action,
        resource: ResourceRef {
            kind,
            id: id.to_owned(),
            region: h.region.to_owned(),
        },
        outcome: StepOutcome::Applied,
        backup: None,
    };
    let mut ctx = h.context();
    ctx.artefacts.put(DeploymentReport {
        mode: Mode::Apply,
        steps: vec![
            record(ResourceKind::Ec2Instance, &ids[0], Action::ResizeInstance),
            record(ResourceKind::EbsVolume, "vol-0123", Action::MigrateVolumeToGp3),
        ],
        failed_wave: None,
        recovered: Vec::new(),
        applied_at: None,
    });
    let (url, seen) = receiver(200).await;
    let monitoring = Monitoring::new(MonitoringConfig::default()).with_sink(Arc::new(WebhookSink::new(&url)));
    let report = monitoring.monitor(&ctx).await.expect("θ5");

    let alarm_name = format!("miyabi-cpu-{}", ids[0]);
    assert_eq!(report.alarms.len(), 1);
    assert_eq!(report.alarms[0].name, alarm_name);
    // 50% in the last evaluation periods: OK. Pooled with the neighbour's 99s it would be ALARM.
    assert_eq!(
        report.alarms[0].state.as_deref(),
        Some("OK"),
        "read back from CloudWatch"
    );
    assert_eq!(report.not_alarmed.len(), 1, "a volume has no CPU alarm");
    assert_eq!(report.readings.len(), 1);
    let reading = &report.readings[0];
    assert_eq!(reading.resource.id, ids[0]);
    assert_eq!(reading.points, 5, "{reading:?}");
    assert!((reading.average.unwrap() - 34.0).abs() < 1e-9, "{reading:?}");
    assert_eq!(reading.maximum, Some(50.0), "{reading:?}");

    // What CloudWatch holds, asked directly.
    let alarms = h
        .seed
        .cloudwatch
        .describe_alarms()
        .alarm_names(&alarm_name)
        .send()
        .await
        .unwrap();
    let alarm = &alarms.metric_alarms()[0];
    assert_eq!(alarm.metric_name(), Some("CPUUtilization"));
    assert_eq!(alarm.threshold(), Some(80.0));
    assert_eq!(alarm.dimensions()[0].value(), Some(ids[0].as_str()));
    let dashboard = h
        .seed
        .cloudwatch
        .get_dashboard()
        .dashboard_name("miyabi-changed-resources")
        .send()
        .await
        .unwrap();
    assert!(dashboard.dashboard_body().unwrap_or_default().contains(&ids[0]));

    let got = seen.lock().unwrap().clone();
    let sent: Notification = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(sent.applied, 2);
    assert_eq!(sent.alarms, vec![alarm_name]);
    assert_eq!(report.notifications, vec![(format!("webhook {url}"), None)]);
}

/// θ5's cost alarm on the engine's own estimate: OK while the estate as θ4 left it is within
/// World0's cost, ALARM once it is over, OK again under a configured budget above it. Each
/// state is CloudWatch's own, evaluated on the datum θ5 published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_alarm_fires_when_the_published_estimate_exceeds_the_budget() {
    use miyabi_aws::assessment::assess;
    use miyabi_aws::catalog::PriceCatalog;
    use miyabi_aws::guardrails::Guardrails;
    use miyabi_aws::phases::monitoring::BudgetSource;
    use miyabi_aws::plan::execution::allocate;
    use miyabi_aws::plan::{Change, Risk};
    use miyabi_aws::world::WorldState;
    use serde_json::json;

    // The CPU test's Region, under an account of its own: the alarm and metric are per account.
    let h = harness("me-central-1").await;
    let account = "210987654321";
    let catalog = PriceCatalog::built_in();
    let world_of = |instance_type: &str| {
        let mut inv = super::assessment::base();
        inv.instances = ["i-cost-a", "i-cost-b"]
            .map(|id| super::assessment::instance(id, instance_type, "us-east-1", "running"))
            .to_vec();
        let mut world: WorldState = super::world::fixture_world();
        world.scope.account_id = Some(account.into());
        world.assessment = assess(&inv, catalog);
        world.inventory = inv;
        world
    };
    let world0 = world_of("m5.large");
    let grown = world_of("m5.xlarge");
    let (c0, c1) = (world0.assessment.monthly_total_usd, grown.assessment.monthly_total_usd);
    assert!(c1 > c0 + 100.0, "{c0} → {c1}");

    // Iteration 1 captured the grown estate; θ4 applied resizes back to m5.large.
    let resizes: Vec<Change> = grown
        .inventory
        .instances
        .iter()
        .map(|i| {
            Change::new(
                Action::ResizeInstance,
                ResourceRef {
                    kind: ResourceKind::Ec2Instance,
                    id: i.id.clone(),
                    region: i.region.clone(),
                },
                "instance_type",
                json!("m5.xlarge"),
                json!("m5.large"),
                "compute_optimizer_rightsizing",
                "test".into(),
                Risk::High,
            )
        })
        .collect();
    let plan = allocate(resizes, &Guardrails::default(), |_| None);
    assert_eq!(plan.steps.len(), 2);
    // `applied` of the two resizes went through; the others failed.
    let deployed = |applied: usize| DeploymentReport {
        mode: Mode::Apply,
        steps: plan
            .steps
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let outcome = if k < applied {
                    StepOutcome::Applied
                } else {
                    StepOutcome::Failed {
                        error: "injected".into(),
                    }
                };
                StepRecord::of(s, outcome)
            })
            .collect(),
        failed_wave: None,
        recovered: Vec::new(),
        applied_at: None,
    };
    let mut ctx = h.context();
    ctx.artefacts.put(world0);
    ctx.artefacts.put(grown);
    ctx.artefacts.put(plan.clone());
    ctx.artefacts.put(deployed(2));
    let config = MonitoringConfig {
        cost_region: Some(h.region.into()),
        ..MonitoringConfig::default()
    };
    let cost_alarm =
        |report: miyabi_aws::phases::monitoring::MonitoringReport| report.cost_alarm.expect("a cost alarm");

    // Both resizes applied: the estate is back at World0's cost, which is not over it.
    let back = cost_alarm(Monitoring::new(config.clone()).monitor(&ctx).await.expect("θ5"));
    let name = format!("miyabi-cost-{account}");
    assert_eq!(back.name, name);
    assert_eq!(back.region, h.region);
    assert!((back.estimate_usd - c0).abs() < 1e-6, "{back:?}");
    assert_eq!((back.budget_usd, back.budget_from), (c0, BudgetSource::World0));
    assert_eq!(back.state.as_deref(), Some("OK"), "{back:?}");

    // One failed: half the growth stays, over World0's cost.
    ctx.artefacts.put(deployed(1));
    let over = cost_alarm(Monitoring::new(config.clone()).monitor(&ctx).await.expect("θ5"));
    assert!((over.estimate_usd - (c0 + c1) / 2.0).abs() < 1e-6, "{over:?}");
    assert_eq!(over.state.as_deref(), Some("ALARM"), "{over:?}");

    // A budget above it: OK again.
    let roomy = MonitoringConfig {
        cost_budget_usd: Some(c1),
        ..config.clone()
    };
    let within = cost_alarm(Monitoring::new(roomy).monitor(&ctx).await.expect("θ5"));
    assert_eq!(within.budget_from, BudgetSource::Configured);
    assert_eq!(within.state.as_deref(), Some("OK"), "{within:?}");

    // What CloudWatch holds: the alarm on the engine's metric, and the estimates published.
    let cw = &h.seed.cloudwatch;
    let alarms = cw.describe_alarms().alarm_names(&name).send().await.unwrap();
    let alarm = &alarms.metric_alarms()[0];
    assert_eq!(alarm.namespace(), Some("Miyabi/Cost"));
    assert_eq!(alarm.metric_name(), Some("EstimatedMonthlyCost"));
    assert_eq!(alarm.threshold(), Some(c1));
    assert_eq!(alarm.dimensions()[0].value(), Some(account));
    let listed = cw.list_metrics().namespace("Miyabi/Cost").send().await.unwrap();
    assert!(
        listed
            .metrics()
            .iter()
            .any(|m| m.dimensions().iter().any(|d| d.value() == Some(account))),
        "{listed:?}"
    );

    // Nothing applied, or a dry run: the estimate did not move, and nothing is published.
    ctx.artefacts.put(deployed(0));
    let unchanged = Monitoring::new(config.clone()).monitor(&ctx).await.expect("θ5");
    assert_eq!(unchanged.cost_alarm, None);
    ctx.artefacts.put(DeploymentReport {
        mode: Mode::DryRun,
        ..deployed(2)
    });
    let dry = Monitoring::new(config).monitor(&ctx).await.expect("θ5");
    assert_eq!(dry.cost_alarm, None);
}
