//! A failed read is a gap, not a stop: the loop goes on with what was read whole, leaves what a
//! gap names alone, and says the run was partial. Refused credentials still stop at once.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::InstanceType;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use miyabi_aws::phases::deployment::{Approval, WaitPolicy};
use miyabi_aws::phases::{Deployment, DeploymentConfig, Optimization, Planning};
use miyabi_aws::plan::execution::ExecutionPlan;
use miyabi_aws::world::{Completeness, WorldState};
use miyabi_aws::Cycle;
use miyabi_aws_testkit::proxy::{Fault, FaultRule};

use super::support::{harness, tmp_dir, Harness};

/// θ1–θ4 over `regions`, applying every step.
fn apply_all(h: &Harness, regions: &[&str]) -> Cycle {
    let deployment = Deployment::new(regions.iter().map(|r| (*r).to_owned()).collect())
        .with_config(DeploymentConfig::applying(Approval::All))
        .with_wait(WaitPolicy {
            poll: Duration::from_millis(20),
            timeout: Duration::from_secs(60),
        });
    Cycle::new()
        .with_phase(Arc::new(h.discovery_in(regions)))
        .with_phase(Arc::new(Planning::default()))
        .with_phase(Arc::new(Optimization::default()))
        .with_phase(Arc::new(deployment))
        .with_max_iterations(4)
}

/// HttpTokens of `id`, read straight from the emulator.
async fn http_tokens(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2.describe_instances().instance_ids(id).send().await.unwrap();
    out.reservations()[0].instances()[0]
        .metadata_options()
        .and_then(|m| m.http_tokens())
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default()
}

async fn versioning(h: &Harness, bucket: &str) -> Option<String> {
    let out = h.seed.s3.get_bucket_versioning().bucket(bucket).send().await.unwrap();
    out.status().map(|s| s.as_str().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_bucket_is_a_gap_the_loop_leaves_alone_while_the_rest_is_remediated() {
    // A Region no other test seeds buckets in: the bucket list is global, and θ4 only acts in
    // the Regions it is given.
    let h = harness("ap-southeast-7").await;
    let instance = h.launch(InstanceType::T3Micro, 1).await.remove(0);
    for bucket in ["it-partial-denied", "it-partial-open"] {
        h.seed
            .s3
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(h.region))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    // A bucket policy denying this role one read of one bucket, as is common.
    h.proxy.inject(
        FaultRule::new("s3", Fault::Denied)
            .operation("GetBucketAcl")
            .resource("it-partial-denied"),
    );
    let out = tmp_dir("denied-bucket");
    let mut ctx = h.context().with_out_dir(&out);
    let report = apply_all(&h, &[h.region]).run(&mut ctx).await;

    assert!(report.converged(), "the loop completes: {}", report.stop);
    assert!(report.partial(), "and says it is partial");
    assert!(
        report.iterations.iter().any(|it| it.applied_changes.unwrap_or(0) > 0),
        "changes were applied"
    );
    let world = WorldState::load(out.join("world_state_0.json")).unwrap();
    let Completeness::Partial { gaps } = &world.scope.completeness else {
        panic!("the capture is marked partial")
    };
    let gap = gaps
        .iter()
        .find(|g| g.resources == ["it-partial-denied"])
        .unwrap_or_else(|| panic!("a gap names the denied bucket: {gaps:?}"));
    assert_eq!((gap.service.as_str(), gap.operation.as_str()), ("s3", "GetBucketAcl"));
    assert_eq!(gap.region, h.region);
    assert!(gap.error.contains("AccessDenied"), "{}", gap.error);
    assert!(world.coverage().gap(h.region, "it-partial-denied").is_some());
    assert!(world.coverage().gap(h.region, "it-partial-open").is_none());
    assert!(world.inventory.buckets.iter().all(|b| b.name != "it-partial-denied"));

    // Left unchanged; the rest remediated.
    assert_eq!(
        versioning(&h, "it-partial-denied").await,
        None,
        "the denied bucket is untouched"
    );
    assert!(h
        .seed
        .s3
        .get_public_access_block()
        .bucket("it-partial-denied")
        .send()
        .await
        .is_err());
    assert_eq!(versioning(&h, "it-partial-open").await.as_deref(), Some("Enabled"));
    let open_block = h
        .seed
        .s3
        .get_public_access_block()
        .bucket("it-partial-open")
        .send()
        .await
        .expect("the readable bucket got a public access block");
    assert_eq!(
        open_block
            .public_access_block_configuration()
            .and_then(|c| c.block_public_acls()),
        Some(true)
    );
    assert_eq!(http_tokens(&h.seed.ec2, &instance).await, "required");
    let md = std::fs::read_to_string(out.join("discovery_report.md")).unwrap();
    assert!(md.contains("PARTIAL") && md.contains("it-partial-denied"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_whose_listing_fails_is_held_whole_while_another_is_remediated() {
    let h = harness("mx-central-1").await;
    let other = "ap-southeast-6";
    let held_ec2 =
        miyabi_aws_testkit::seed::Clients::new(&miyabi_aws_testkit::local_aws::LocalAws::shared().unwrap(), other)
            .await
            .ec2;
    let whole = h.launch(InstanceType::T3Micro, 1).await.remove(0);
    let held = held_ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    // The volumes of one Region cannot be listed: what they are attached to, or whether they
    // are, is unknown there, so nothing of that Region is changed.
    h.proxy.inject(
        FaultRule::new("ec2", Fault::Denied)
            .operation("DescribeVolumes")
            .region(other),
    );
    let out = tmp_dir("held-region");
    let mut ctx = h.context().with_out_dir(&out);
    let report = apply_all(&h, &[h.region, other]).run(&mut ctx).await;
    assert!(report.converged(), "{}", report.stop);
    assert!(report.partial());

    assert_eq!(http_tokens(&h.seed.ec2, &whole).await, "required");
    assert_eq!(http_tokens(&held_ec2, &held).await, "optional", "held whole");
    // θ3 says why the held Region's changes are not in the plan.
    let plan = ExecutionPlan::load(out.join("execution_plan.json")).unwrap();
    assert!(plan.steps.iter().all(|s| s.change.resource.region != other));
    let excluded = plan
        .excluded
        .iter()
        .find(|e| e.change.resource.id == held)
        .unwrap_or_else(|| panic!("the held instance's change is listed as excluded: {:?}", plan.excluded));
    assert!(
        excluded.reason.contains("partial") && excluded.reason.contains("DescribeVolumes"),
        "{}",
        excluded.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_still_stop_discovery_at_once() {
    // Reads only: a Region other tests may share.
    let h = harness("eu-west-1").await;
    h.proxy.inject(FaultRule::new("s3", Fault::AuthError));
    let err = h
        .discovery()
        .discover(&h.session(), miyabi_aws::catalog::PriceCatalog::built_in())
        .await
        .expect_err("refused credentials stop discovery");
    let miyabi_aws::Error::Aws(aws) = err else {
        panic!("expected an AWS error, got {err}")
    };
    assert!(aws.refuses_credentials(), "{aws}");
    assert_eq!((aws.service, aws.code()), ("s3", Some("InvalidAccessKeyId")));
}
