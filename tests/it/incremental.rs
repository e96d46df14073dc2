//! Incremental re-scan: a capture built on the previous one asks CloudWatch only for what that
//! one lacks, and ends with the same series as a full re-scan.

use std::collections::BTreeMap;
use std::sync::Arc;

use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::phases::discovery::DiscoveryOutput;
use miyabi_aws::phases::{Discovery, DiscoveryConfig};
use miyabi_aws::world::{MetricSeries, WorldState};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};
use miyabi_aws_testkit::simulator::WorkloadSimulator;

use super::support::{harness, Harness, Quiet};

const PERIOD_HOURS: u32 = 6;

async fn scan(h: &Harness, until_hour: i64, previous: Option<Arc<WorldState>>) -> DiscoveryOutput {
    let mut discovery = Discovery::new(DiscoveryConfig {
        regions: vec![h.region.to_owned()],
        until: chrono::DateTime::from_timestamp(until_hour * 3600, 0),
        ..DiscoveryConfig::default()
    })
    .with_progress(Arc::new(Quiet));
    if let Some(previous) = previous {
        discovery = discovery.with_previous(previous);
    }
    discovery
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery")
}

/// A series' identity as the proxy reads it from a request: namespace, metric, dimensions.
type Identity = (String, String, BTreeMap<String, String>);

fn identity(s: &MetricSeries) -> Identity {
    (s.namespace.clone(), s.metric_name.clone(), s.dimensions.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescan_across_one_period_asks_only_for_new_points_and_equals_a_full_one() {
    let h = harness("ap-east-2").await;
    let endpoints = LocalAws::shared().expect("emulators");
    let spec = DemoSpec {
        seed: 7,
        instances: 6,
        regions: vec![h.region.to_owned()],
        ..DemoSpec::default()
    };
    let estate = seed_demo(&endpoints, &spec).await.expect("seeding");
    let simulator =
        WorkloadSimulator::new(endpoints, spec, &estate, estate.metrics_until).with_period_hours(PERIOD_HOURS);
    let clock = simulator.clock();

    let first = scan(&h, clock.hour(), None).await;
    let first_scan = first.metrics.expect("θ1 reports its metric scan");
    assert!(!first_scan.incremental);
    let previous = Arc::new(first.world);
    let held: BTreeMap<Identity, &MetricSeries> = previous.inventory.metrics.iter().map(|s| (identity(s), s)).collect();
    assert!(held.len() > 20, "the estate has series to build on: {}", held.len());

    simulator.advance().await.expect("the next period");
    h.proxy.reset_log();
    let second = scan(&h, clock.hour(), Some(previous.clone())).await;
    let second_scan = second.metrics.expect("θ1 reports its metric scan");
    assert!(second_scan.incremental);

    // Asserted at the proxy: each held series was asked from its last held point minus one
    // period at the earliest.
    let mut asked = 0;
    for request in h.proxy.calls("cloudwatch", "GetMetricData") {
        let r = request
            .metric_request
            .as_deref()
            .expect("a readable GetMetricData body");
        for q in &r.queries {
            let key = (q.namespace.clone(), q.metric_name.clone(), q.dimensions.clone());
            if let Some(s) = held.get(&key) {
                let last = *s.timestamps.last().expect("held series have points");
                assert!(
                    r.start >= last - i64::from(s.period_seconds),
                    "{key:?} asked from {} while its last held point is {last}",
                    r.start
                );
                asked += 1;
            }
        }
    }
    assert!(asked > 0, "the held series were asked again");

    // Only the new points were asked for and came back: per series the period and the hour
    // read again (a daily series at most two days), where the first scan asked for the whole
    // lookback; series of resources without data were asked from the same hour, not whole.
    let bound = second_scan.series_requested * (u64::from(PERIOD_HOURS) + 1);
    assert!(second_scan.series_requested as usize >= held.len());
    assert!(
        second_scan.datapoints_requested <= bound,
        "{} datapoints requested, at most {bound} are new",
        second_scan.datapoints_requested
    );
    assert!(second_scan.datapoints_returned <= second_scan.datapoints_requested);
    let lookback = u64::from(previous.scope.lookback_hours);
    assert!(
        first_scan.datapoints_requested >= second_scan.series_requested * lookback / 2,
        "the first scan asked for whole lookbacks: {}",
        first_scan.datapoints_requested
    );

    // The merged series equal a full re-scan's at the same time.
    let full = scan(&h, clock.hour(), None).await;
    assert_eq!(second.world.inventory.metrics, full.world.inventory.metrics);
    assert_eq!(second.world.assessment, full.world.assessment);
}
