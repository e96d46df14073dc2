//! Reliability through the fault-injecting proxy: each service's own throttling error is retried
//! with the configured (scaled) backoff and nothing is lost; auth errors are not retried; a dead
//! endpoint gives typed errors and a world state marked partial.

use std::time::Duration;

use aws_sdk_ec2::types::InstanceType;
use miyabi_aws::aws::{Fault as AwsFault, ServiceFault};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::world::Completeness;
use miyabi_aws::{Cycle, Error, WorldState};
use miyabi_aws_testkit::proxy::{gaps, Fault, FaultRule};

use super::support::{harness, tmp_dir, DELAY_SCALE};

/// Backoff before retries 1, 2, 3 after throttling, scaled: 1, 2, 4 s → 10, 20, 40 ms.
fn expected_throttle_delays() -> Vec<Duration> {
    [1.0, 2.0, 4.0]
        .iter()
        .map(|s| Duration::from_secs_f64(s * DELAY_SCALE))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_services_throttling_is_retried_with_backoff_and_nothing_is_lost() {
    let h = harness("eu-west-2").await;
    let seeded = h.launch(InstanceType::M5Large, 3).await;
    let mut seeded = seeded;
    seeded.sort();
    h.seed
        .rds
        .create_db_instance()
        .db_instance_identifier("throttled-db")
        .db_instance_class("db.t3.micro")
        .engine("mysql")
        .master_username("owner")
        .master_user_password("not-a-real-password-1")
        .allocated_storage(20)
        .send()
        .await
        .unwrap();

    for (service, op) in [
        ("ec2", "DescribeInstances"),
        ("s3", "ListBuckets"),
        ("rds", "DescribeDBInstances"),
        ("cloudwatch", "GetMetricData"),
    ] {
        h.proxy.inject(
            FaultRule::new(service, Fault::Throttle)
                .operation(op)
                .region(h.region)
                .times(3),
        );
    }
    let out = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("throttling is retried, not fatal");
    assert_eq!(out.world.scope.completeness, Completeness::Complete);

    for (service, op) in [
        ("ec2", "DescribeInstances"),
        ("s3", "ListBuckets"),
        ("rds", "DescribeDBInstances"),
        ("cloudwatch", "GetMetricData"),
    ] {
        let calls: Vec<_> = h
            .proxy
            .calls(service, op)
            .into_iter()
            .filter(|r| r.region == h.region)
            .collect();
        let attempts: Vec<_> = calls.iter().take(4).collect();
        assert!(
            calls.len() >= 4,
            "{service}.{op}: 3 throttled attempts and a good one, saw {}",
            calls.len()
        );
        assert!(
            attempts[..3].iter().all(|r| r.fault == Some(Fault::Throttle)),
            "{service}.{op}"
        );
        assert_eq!(
            attempts[3].fault, None,
            "{service}.{op}: the fourth attempt goes through"
        );
        let waited = gaps(&calls[..4]);
        for (got, want) in waited.iter().zip(expected_throttle_delays()) {
            assert!(*got >= want, "{service}.{op}: waited {got:?}, policy says {want:?}");
            assert!(
                *got < want + Duration::from_millis(900),
                "{service}.{op}: waited {got:?}, far more than {want:?}"
            );
        }
    }
    let inv = &out.world.inventory;
    let mut found: Vec<String> = inv
        .instances
        .iter()
        .filter(|i| i.region == "eu-west-2")
        .map(|i| i.id.clone())
        .collect();
    found.sort();
    assert_eq!(found, seeded, "no instance lost or duplicated");
    assert_eq!(inv.db_instances.iter().filter(|d| d.id == "throttled-db").count(), 1);
    let cpu_series = inv
        .metrics
        .iter()
        .filter(|m| m.region == "eu-west-2" && m.namespace == "AWS/EC2")
        .count();
    assert_eq!(cpu_series, 0, "nothing was published, so no series may appear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_that_never_ends_gives_up_after_five_retries_and_marks_the_capture_partial() {
    let h = harness("eu-west-3").await;
    h.proxy
        .inject(FaultRule::new("ec2", Fault::Throttle).operation("DescribeVolumes"));
    let out = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("a throttled scan is a gap, not a failure");
    assert_eq!(
        h.proxy.calls("ec2", "DescribeVolumes").len(),
        6,
        "1 attempt + 5 retries"
    );
    let Completeness::Partial { gaps } = &out.world.scope.completeness else {
        panic!("must be partial")
    };
    let gap = gaps
        .iter()
        .find(|g| g.operation == "DescribeVolumes")
        .expect("gap names the operation");
    assert_eq!((gap.service.as_str(), gap.region.as_str()), ("ec2", "eu-west-3"));
    assert!(
        gap.error.contains("RequestLimitExceeded") && gap.error.contains("6 attempt"),
        "{}",
        gap.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_error_is_sent_once_and_stops_discovery() {
    let h = harness("eu-central-1").await;
    h.proxy
        .inject(FaultRule::new("ec2", Fault::AuthError).operation("DescribeInstances"));
    let err = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect_err("auth errors escalate");
    let Error::Aws(aws) = err else {
        panic!("expected an AWS error, got {err}")
    };
    assert!(
        matches!(&aws.fault, AwsFault::Service(ServiceFault::AccessDenied { code, .. }) if code == "AuthFailure"),
        "{aws}"
    );
    assert_eq!(
        (aws.service, aws.operation, aws.region.as_str(), aws.attempts),
        ("ec2", "DescribeInstances", "eu-central-1", 1)
    );
    assert_eq!(h.proxy.calls("ec2", "DescribeInstances").len(), 1, "never retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_auth_errors_in_cbor_are_understood() {
    let h = harness("ap-northeast-2").await;
    h.launch(InstanceType::M5Large, 1).await;
    h.proxy.inject(FaultRule::new("cloudwatch", Fault::AuthError));
    let err = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect_err("auth errors escalate");
    let Error::Aws(aws) = err else {
        panic!("expected an AWS error, got {err}")
    };
    assert_eq!(aws.service, "cloudwatch");
    assert!(aws.is_access_denied(), "{aws}");
    assert!(!aws.is_retryable(), "{aws}");
    // The EC2 scan before it named the account, so the error does too.
    assert_eq!(aws.account.as_deref(), Some("123456789012"), "{aws}");
    assert!(
        aws.to_string().contains("in ap-northeast-2 (account 123456789012)"),
        "{aws}"
    );
    assert_eq!(
        h.proxy.requests().iter().filter(|r| r.service == "cloudwatch").count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_mid_scan_gives_typed_errors_and_a_saved_partial_state() {
    let h = harness("eu-north-1").await;
    h.launch(InstanceType::M5Large, 2).await;
    // The endpoint answers the first requests of the EC2/RDS scan, then dies for good.
    h.proxy.inject(FaultRule::new("*", Fault::Drop).after(3));
    let dir = tmp_dir("dead-endpoint");
    let mut ctx = h.context().with_out_dir(&dir);
    let report = Cycle::new()
        .with_phase(std::sync::Arc::new(h.discovery()))
        .run(&mut ctx)
        .await;
    // The phase does not fail: the loop goes on with what was read, and says it is partial.
    assert!(report.partial(), "{}", report.stop);
    assert!(report.iterations[0].phases[0].error.is_none());
    let saved = WorldState::load(dir.join("world_state_0.json")).expect("the partial state is saved");
    let Completeness::Partial { gaps } = &saved.scope.completeness else {
        panic!("the saved state is marked partial")
    };
    assert!(!gaps.is_empty());
    for gap in gaps {
        assert!(
            !gap.service.is_empty() && !gap.operation.is_empty() && !gap.region.is_empty(),
            "{gap:?}"
        );
        assert!(
            gap.error
                .contains(&format!("{}.{} in {}", gap.service, gap.operation, gap.region)),
            "{}",
            gap.error
        );
        assert!(
            gap.error.contains("connection failed") && gap.error.contains("4 attempt"),
            "{}",
            gap.error
        );
    }
    let md = std::fs::read_to_string(dir.join("discovery_report.md")).unwrap();
    assert!(md.contains("PARTIAL"), "{md}");
}
