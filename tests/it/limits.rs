//! The session's request-rate limiter against the proxy's AWS-like mode: AWS's buckets
//! enforced whole at the proxy, the engine spending its share of the same buckets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use miyabi_aws::aws::{AwsOptions, AwsSession, LimitOptions, QuotaTable};
use miyabi_aws::Phase;
use miyabi_aws_testkit::proxy::Recorded;
use miyabi_aws_testkit::quota::AwsLike;

use crate::support::{harness, Harness};

/// The proxy enforces AWS's buckets at this fraction of their documented size, and the engine
/// is told the same quotas, so that a test reaches the limits in seconds.
const SCALE: f64 = 0.5;

fn aws_like() -> AwsLike {
    AwsLike {
        latency: Duration::from_millis(5),
        jitter: 0.5,
        scale: SCALE,
        ..AwsLike::default()
    }
}

fn session(h: &Harness, share: f64) -> Arc<AwsSession> {
    Arc::new(AwsSession::new(AwsOptions {
        limits: LimitOptions {
            quotas: QuotaTable::documented().scaled(SCALE),
            share,
            ..LimitOptions::default()
        },
        ..h.aws_options()
    }))
}

/// The most requests of `operation` that arrived within any one second.
fn busiest_second(log: &[Recorded], operation: &str) -> usize {
    let times: Vec<Instant> = log
        .iter()
        .filter(|r| r.operation == operation)
        .map(|r| r.started)
        .collect();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Reads each of `ids` on its own (`DescribeInstances` by id, as θ4's checks do), `parallel` at
/// a time, through `aws`; returns the ids read back and the errors.
async fn read_each(aws: &AwsSession, region: &str, ids: &[String], parallel: usize) -> (Vec<String>, Vec<String>) {
    let c = aws.clients(region).await;
    let reads = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let ec2 = c.ec2.clone();
            async move {
                ec2.layer
                    .call("DescribeInstances", || {
                        ec2.client.describe_instances().instance_ids(id.clone()).send()
                    })
                    .await
            }
        })
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for r in reads {
        match r {
            Ok(out) => found.extend(
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(|i| i.instance_id().map(str::to_owned)),
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
    found.sort();
    (found, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_engine_stays_within_its_share_in_every_second_and_counts_what_the_proxy_sees() {
    let h = harness("ap-northeast-3").await;
    let mut ids = h.launch(aws_sdk_ec2::types::InstanceType::T3Micro, 60).await;
    ids.sort();
    h.proxy.set_aws_like(Some(aws_like()));
    // Non-mutating at half size: 50 tokens, 10/s; the engine's share of 0.4: 20 tokens, 4/s.
    let share = 0.4;
    let aws = session(&h, share);
    let (found, errors) = read_each(&aws, h.region, &ids, 16).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(found, ids, "every read came back");
    let log = h.proxy.requests();
    assert!(
        log.iter().all(|r| !r.over_quota),
        "the proxy never throttled the engine"
    );
    let allowed = share * SCALE * (100.0 + 20.0);
    let busiest = busiest_second(&log, "DescribeInstances");
    assert!(
        busiest as f64 <= allowed + 1.0,
        "{busiest} requests in one second, share allows {allowed}"
    );
    // 60 requests at a burst of 20 and 4/s take about 10 s: the limiter did the pacing.
    assert!(busiest >= 15, "the burst was used: {busiest}");

    // A whole scan: the limiter's counts per category equal the proxy's, category by category.
    h.proxy.reset_log();
    let before = aws.limiter().counts();
    let mut ctx = miyabi_aws::CycleContext::new(aws.clone()).with_progress(Arc::new(crate::support::Quiet));
    h.discovery().run(&mut ctx).await.expect("discovery");
    let engine: BTreeMap<String, u64> = aws
        .limiter()
        .counts()
        .into_iter()
        .map(|(k, c)| (k.clone(), c.requests - before.get(&k).map_or(0, |b| b.requests)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut proxy: BTreeMap<String, u64> = BTreeMap::new();
    for r in h.proxy.requests() {
        if let Some(c) = r.category {
            *proxy.entry(c).or_default() += 1;
        }
    }
    proxy.retain(|_, n| *n > 0);
    assert!(
        proxy.contains_key("ec2.non-mutating") && proxy.contains_key("cloudwatch.GetMetricData"),
        "{proxy:?}"
    );
    assert_eq!(engine, proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_competitor_at_half_the_quota_is_never_throttled_by_the_engine_at_forty_percent() {
    let h = harness("ap-southeast-3").await;
    let mut ids = h.launch(aws_sdk_ec2::types::InstanceType::T3Micro, 50).await;
    ids.sort();
    h.proxy.set_aws_like(Some(aws_like()));
    // Production: DescribeInstances at half the bucket's refill (5 of 10 per second), through
    // the proxy with a plain SDK client and no limiter of ours.
    let competitor = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
            .region(aws_sdk_ec2::config::Region::new(h.region))
            .endpoint_url(&h.proxy.url)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let (sent, throttled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let production = {
        let (done, sent, throttled) = (done.clone(), sent.clone(), throttled.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / (0.5 * SCALE * 20.0)));
            while !done.load(Ordering::SeqCst) {
                tick.tick().await;
                sent.fetch_add(1, Ordering::SeqCst);
                if competitor.describe_instances().max_results(5).send().await.is_err() {
                    throttled.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let aws = session(&h, 0.4);
    let (found, errors) = read_each(&aws, h.region, &ids, 16).await;
    done.store(true, Ordering::SeqCst);
    production.await.expect("production task");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(found, ids, "nothing lost");
    assert!(sent.load(Ordering::SeqCst) >= 20, "the competitor ran throughout");
    assert_eq!(
        throttled.load(Ordering::SeqCst),
        0,
        "the competitor was never throttled"
    );
    assert!(h.proxy.requests().iter().all(|r| !r.over_quota));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_aws_halves_a_bucket_the_throttles_stop_after_a_few_and_the_rate_recovers() {
    let h = harness("eu-central-2").await;
    let ids = h.launch(aws_sdk_ec2::types::InstanceType::T3Micro, 20).await;
    h.proxy.set_aws_like(Some(aws_like()));
    // The whole quota (share 1): 50 tokens, 10/s. Reads go on in rounds of 20.
    let aws = session(&h, 1.0);
    let round = || read_each(&aws, h.region, &ids, 8);
    let (found, errors) = round().await;
    assert!(errors.is_empty() && found.len() == ids.len());
    // AWS halves the bucket (5/s): the engine meets throttles, slows down for every task, and
    // after a few the throttles stop.
    h.proxy.resize_bucket("ec2", h.region, "DescribeInstances", 0.5);
    h.proxy.reset_log();
    let halved = Instant::now();
    while halved.elapsed() < Duration::from_secs(8) {
        let (found, errors) = round().await;
        assert!(errors.is_empty(), "every read succeeds in the end: {errors:?}");
        assert_eq!(found.len(), ids.len());
    }
    let log = h.proxy.requests();
    let throttles_at = |from: u64, to: u64| {
        log.iter()
            .filter(|r| r.over_quota)
            .filter(|r| (from..to).contains(&r.started.duration_since(halved).as_secs()))
            .count()
    };
    let per_second: Vec<usize> = (0..8).map(|s| throttles_at(s, s + 1)).collect();
    let (early, late) = (throttles_at(0, 3), throttles_at(5, 8));
    assert!(early > 0, "the halving was felt: {per_second:?} throttles a second");
    assert!(late <= early / 2, "throttles died down: {per_second:?} a second");
    let factor = aws.limiter().factor("ec2", h.region, "DescribeInstances");
    assert!(factor < 0.9, "the engine runs below its configured rate: {factor}");
    // AWS restores the bucket: the rate climbs back to the configured one.
    h.proxy.resize_bucket("ec2", h.region, "DescribeInstances", 1.0);
    let restored = Instant::now();
    while restored.elapsed() < Duration::from_secs(6) {
        let _ = round().await;
    }
    let factor = aws.limiter().factor("ec2", h.region, "DescribeInstances");
    assert!(factor > 0.95, "the rate recovered: {factor}");
}
