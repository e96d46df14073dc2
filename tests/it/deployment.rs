//! θ4 against the emulators through the fault proxy: a dry run sends no mutating request, a
//! resize stops before it modifies, the deny-list never reaches the wire, and a failure at any
//! step of a wave leaves the estate as it was before the wave.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::InstanceType;
use miyabi_aws::assessment::ResourceKind;
use miyabi_aws::aws::{AwsOptions, AwsSession};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::guardrails::Guardrails;
use miyabi_aws::phases::deployment::journal::FileJournal;
use miyabi_aws::phases::deployment::{
    deploy, Approval, DeploymentConfig, DeploymentReport, Guarded, Mode, SdkExecutor, StepOutcome, WaitPolicy,
    MANAGED_TAG,
};
use miyabi_aws::plan::execution::{allocate, ExecutionPlan};
use miyabi_aws::plan::{Action, Change, ResourceRef, Risk};
use miyabi_aws::world::Ec2Instance;
use miyabi_aws_testkit::ec2_states::StateTimes;
use miyabi_aws_testkit::proxy::{Fault, FaultRule};
use serde_json::json;

use super::support::{harness, mutating, Harness};

async fn executor(h: &Harness, guardrails: Guardrails, approval: Approval) -> Guarded<SdkExecutor> {
    let sdk = SdkExecutor::connect(&[h.region.to_owned()], &h.session())
        .await
        .with_wait(WaitPolicy {
            poll: Duration::from_millis(20),
            timeout: Duration::from_secs(30),
        });
    Guarded::new(sdk, guardrails, approval)
}

fn imds_plan(region: &str, ids: &[String]) -> ExecutionPlan {
    let changes = ids
        .iter()
        .map(|id| {
            Change::new(
                Action::RequireImdsV2,
                ResourceRef {
                    kind: ResourceKind::Ec2Instance,
                    id: id.clone(),
                    region: region.to_owned(),
                },
                "imds_v2_required",
                json!(false),
                json!(true),
                "prowler_ec2_instance_imdsv2_enabled",
                "test".into(),
                Risk::Low,
            )
        })
        .collect();
    allocate(changes, &Guardrails::default(), |_| None)
}

/// An m5.2xlarge → m5.large resize of instance `id`.
pub(super) fn resize_to_large(region: &str, id: String) -> Change {
    Change::new(
        Action::ResizeInstance,
        ResourceRef {
            kind: ResourceKind::Ec2Instance,
            id,
            region: region.to_owned(),
        },
        "instance_type",
        json!("m5.2xlarge"),
        json!("m5.large"),
        "compute_optimizer_rightsizing",
        "test".into(),
        Risk::High,
    )
}

/// Deploys `plan` through a guarded executor that approves every step.
async fn apply_all(h: &Harness, plan: &ExecutionPlan, config: &DeploymentConfig) -> DeploymentReport {
    deploy(plan, &executor(h, Guardrails::default(), Approval::All).await, config).await
}

/// `plan` with every step in its first wave, so that the steps run at once (θ3 would make the
/// first resize of a family a canary wave of its own).
fn one_wave(mut plan: ExecutionPlan) -> ExecutionPlan {
    for step in &mut plan.steps {
        step.wave = 0;
    }
    plan.waves.truncate(1);
    plan.waves[0].steps = plan.steps.iter().map(|s| s.id.clone()).collect();
    plan.validate().expect("a valid plan");
    plan
}

/// The instances as discovery sees them, without tags (θ4 adds `MiyabiManaged`).
async fn instances(h: &Harness, ids: &[String]) -> BTreeMap<String, Ec2Instance> {
    let out = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery");
    out.world
        .inventory
        .instances
        .into_iter()
        .filter(|i| ids.contains(&i.id))
        .map(|mut i| {
            i.tags.clear();
            (i.id.clone(), i)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destructive_step_runs_only_when_approved_and_takes_its_snapshot_first() {
    let h = harness("eu-south-2").await;
    let volume = h
        .seed
        .ec2
        .create_volume()
        .availability_zone("eu-south-2a")
        .size(8)
        .volume_type(aws_sdk_ec2::types::VolumeType::Gp2)
        .send()
        .await
        .expect("CreateVolume")
        .volume_id()
        .expect("volume id")
        .to_owned();
    let delete = Change::new(
        Action::DeleteVolume,
        ResourceRef {
            kind: ResourceKind::EbsVolume,
            id: volume.clone(),
            region: h.region.to_owned(),
        },
        "volume",
        json!({"volume_type": "gp2", "size_gib": 8, "state": "available"}),
        serde_json::Value::Null,
        "trusted_advisor_underutilized_ebs_volume",
        "test".into(),
        Risk::High,
    );
    let plan = allocate(vec![delete], &Guardrails::default(), |_| None);
    let step = plan.steps[0].id.clone();
    assert!(plan.steps[0].needs_approval, "destructive steps always need approval");
    let apply = DeploymentConfig {
        mode: Mode::Apply,
        ..DeploymentConfig::default()
    };
    let volume_exists = || async {
        h.seed
            .ec2
            .describe_volumes()
            .volume_ids(&volume)
            .send()
            .await
            .is_ok_and(|out| !out.volumes().is_empty())
    };

    // Apply without the approval: skipped, and nothing at all is sent for it.
    h.proxy.reset_log();
    let exec = executor(&h, Guardrails::default(), Approval::Nothing).await;
    let report = deploy(&plan, &exec, &apply).await;
    assert_eq!(report.steps[0].outcome.status(), "skipped", "{report:#?}");
    assert_eq!(mutating(&h.proxy.requests()), Vec::<String>::new());
    assert!(volume_exists().await);

    // Approved by its id: the snapshot is taken, then the volume deleted.
    h.proxy.reset_log();
    let approval = Approval::Ids(BTreeSet::from([step]));
    let exec = executor(&h, Guardrails::default(), approval.clone()).await;
    let report = deploy(&plan, &exec, &DeploymentConfig { approval, ..apply }).await;
    assert_eq!(report.steps[0].outcome, StepOutcome::Applied, "{report:#?}");
    let sent = mutating(&h.proxy.requests());
    let snapshot_at = sent.iter().position(|op| op == "CreateSnapshot");
    let delete_at = sent.iter().position(|op| op == "DeleteVolume");
    assert!(
        matches!((snapshot_at, delete_at), (Some(s), Some(d)) if s < d),
        "{sent:?}"
    );
    assert!(!volume_exists().await, "the volume is gone");
    let snapshots = h
        .seed
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .expect("DescribeSnapshots");
    assert!(
        snapshots
            .snapshots()
            .iter()
            .any(|s| s.volume_id() == Some(volume.as_str())),
        "the snapshot of {volume} is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_no_mutating_request() {
    let h = harness("af-south-1").await;
    let ids = h.launch(InstanceType::M5Large, 3).await;
    let plan = imds_plan(h.region, &ids);
    h.proxy.reset_log();
    let config = DeploymentConfig::default();
    assert_eq!(config.mode, Mode::DryRun, "dry-run is the default");
    let exec = executor(&h, Guardrails::default(), Approval::All).await;
    let report = deploy(&plan, &exec, &config).await;

    let requests = h.proxy.requests();
    assert!(!requests.is_empty(), "a dry run still reads the preconditions");
    assert_eq!(mutating(&requests), Vec::<String>::new());
    assert!(
        report.steps.iter().all(|s| s.outcome == StepOutcome::WouldApply),
        "{report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_stops_waits_modifies_starts_and_waits_in_that_order() {
    let h = harness("ap-east-1").await;
    let ids = h.launch(InstanceType::M52xlarge, 1).await;
    let change = resize_to_large(h.region, ids[0].clone());
    let plan = allocate(vec![change], &Guardrails::default(), |_| None);
    let approval = Approval::Ids(plan.steps.iter().map(|s| s.id.clone()).collect());
    h.proxy.reset_log();
    let config = DeploymentConfig::applying(approval.clone());
    let report = deploy(&plan, &executor(&h, Guardrails::default(), approval).await, &config).await;
    assert_eq!(report.steps[0].outcome, StepOutcome::Applied, "{report:#?}");

    let ops: Vec<String> = h.proxy.requests().into_iter().map(|r| r.operation).collect();
    let at = |op: &str| {
        ops.iter()
            .position(|o| o == op)
            .unwrap_or_else(|| panic!("{op} missing from {ops:?}"))
    };
    let (stop, modify, start) = (at("StopInstances"), at("ModifyInstanceAttribute"), at("StartInstances"));
    assert!(stop < modify && modify < start, "{ops:?}");
    // Waiting is reading: DescribeInstances between stop and modify, and after start.
    assert!(
        ops[stop + 1..modify].iter().any(|o| o == "DescribeInstances"),
        "{ops:?}"
    );
    assert!(ops[start + 1..].iter().any(|o| o == "DescribeInstances"), "{ops:?}");

    let now = instances(&h, &ids).await;
    assert_eq!(now[&ids[0]].instance_type, "m5.large");
    assert_eq!(now[&ids[0]].state, "running");
    let tags = h
        .seed
        .ec2
        .describe_tags()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("resource-id")
                .values(&ids[0])
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == Some(MANAGED_TAG.0) && t.value() == Some(MANAGED_TAG.1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_listed_action_in_a_plan_is_refused_and_never_reaches_the_wire() {
    let h = harness("eu-south-1").await;
    let ids = h.launch(InstanceType::M5Large, 2).await;
    // The plan was made under the default policy; the policy at execution time denies the call.
    let plan = imds_plan(h.region, &ids);
    let mut strict = Guardrails::default();
    strict.deny_list.push("ModifyInstanceMetadataOptions".into());
    h.proxy.reset_log();
    let config = DeploymentConfig {
        guardrails: strict.clone(),
        ..DeploymentConfig::applying(Approval::All)
    };
    let report = deploy(&plan, &executor(&h, strict, Approval::All).await, &config).await;
    for s in &report.steps {
        assert!(
            matches!(&s.outcome, StepOutcome::Refused { reason } if reason.contains("ModifyInstanceMetadataOptions")),
            "{s:?}"
        );
    }
    assert!(h.proxy.calls("ec2", "ModifyInstanceMetadataOptions").is_empty());
    assert_eq!(mutating(&h.proxy.requests()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_any_step_rolls_its_wave_back_to_the_estate_before_it() {
    let h = harness("ca-central-1").await;
    let ids = h.launch(InstanceType::M5Large, 3).await;
    let plan = imds_plan(h.region, &ids);
    assert_eq!(plan.waves.len(), 1);
    let before = instances(&h, &ids).await;
    assert!(before.values().all(|i| !i.imds_v2_required));
    // One step at a time, so that the k-th request is the k-th step's (the concurrent case is
    // a_fault_in_a_concurrent_wave_rolls_back_every_step_in_flight_too).
    let config = DeploymentConfig {
        max_in_flight: 1,
        ..DeploymentConfig::applying(Approval::All)
    };
    for k in 1..=plan.steps.len() {
        h.proxy.clear_faults();
        h.proxy.inject(
            FaultRule::new("ec2", Fault::AuthError)
                .operation("ModifyInstanceMetadataOptions")
                .region(h.region)
                .after(u32::try_from(k - 1).unwrap())
                .times(1),
        );
        let report = apply_all(&h, &plan, &config).await;
        assert_eq!(report.failed_wave, Some(0), "k = {k}: {report:#?}");
        assert!(
            matches!(report.steps[k - 1].outcome, StepOutcome::Failed { .. }),
            "k = {k}: {report:#?}"
        );
        for s in &report.steps[..k - 1] {
            assert!(matches!(s.outcome, StepOutcome::RolledBack { .. }), "k = {k}: {s:?}");
        }
        for s in &report.steps[k..] {
            assert!(matches!(s.outcome, StepOutcome::Skipped { .. }), "k = {k}: {s:?}");
        }
        assert_eq!(
            instances(&h, &ids).await,
            before,
            "k = {k}: the estate equals its state before the wave"
        );
    }
    let applied: BTreeSet<_> = h
        .proxy
        .calls("ec2", "ModifyInstanceMetadataOptions")
        .into_iter()
        .filter(|r| r.fault.is_some())
        .map(|r| r.operation)
        .collect();
    assert_eq!(applied.len(), 1, "each run hit its injected fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewed_plan_file_is_applied_and_a_drifted_step_is_refused() {
    let h = harness("il-central-1").await;
    let ids = h.launch(InstanceType::M52xlarge, 2).await;
    let changes = ids.iter().map(|id| resize_to_large(h.region, id.clone())).collect();
    let planned = allocate(changes, &Guardrails::default(), |_| None);
    let dir = super::support::tmp_dir("reviewed-plan");
    let file = dir.join("execution_plan.json");
    std::fs::write(&file, serde_json::to_string_pretty(&planned).unwrap()).unwrap();
    let reviewed = ExecutionPlan::load(&file).expect("the reviewed file loads");
    assert_eq!(reviewed, planned);

    // Someone resized the second instance by hand after the review.
    h.seed
        .ec2
        .modify_instance_attribute()
        .instance_id(&ids[1])
        .instance_type(aws_sdk_ec2::types::AttributeValue::builder().value("m5.xlarge").build())
        .send()
        .await
        .unwrap();
    let config = DeploymentConfig::applying(Approval::All);
    let report = apply_all(&h, &reviewed, &config).await;
    let outcome = |id: &str| {
        report
            .steps
            .iter()
            .find(|s| s.resource.id == id)
            .map(|s| s.outcome.clone())
            .unwrap()
    };
    assert_eq!(outcome(&ids[0]), StepOutcome::Applied);
    assert!(
        matches!(outcome(&ids[1]), StepOutcome::Refused { reason } if reason.contains("precondition") && reason.contains("m5.xlarge")),
        "{report:#?}"
    );
    let now = instances(&h, &ids).await;
    assert_eq!(now[&ids[0]].instance_type, "m5.large");
    assert_eq!(
        now[&ids[1]].instance_type, "m5.xlarge",
        "a drifted resource is left alone"
    );

    // A damaged file is a typed error naming the file and the place.
    std::fs::write(&file, r#"{"schema_version": 1, "steps": [{"id": 3}]}"#).unwrap();
    let err = ExecutionPlan::load(&file).unwrap_err();
    let text = err.to_string();
    assert!(err.path.ends_with("execution_plan.json"), "{err:?}");
    assert!(
        text.contains("execution_plan.json") && text.contains("steps[0]"),
        "{text}"
    );
}

/// Not a test on its own: the applying process the SIGKILL test starts and kills. Its retries
/// are not scaled, so a throttled call keeps it waiting (1 + 2 + 4 s) for the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by a_process_killed_mid_apply_is_rolled_back_by_the_next_run"]
async fn apply_child() {
    let Ok(spec) = std::env::var("MIYABI_APPLY_CHILD") else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let plan = ExecutionPlan::load(spec["plan"].as_str().unwrap()).unwrap();
    let session = AwsSession::new(AwsOptions {
        endpoint_url: spec["proxy"].as_str().map(str::to_owned),
        ..AwsOptions::default()
    });
    let sdk = SdkExecutor::connect(&[spec["region"].as_str().unwrap().to_owned()], &session)
        .await
        .with_wait(WaitPolicy {
            poll: Duration::from_millis(20),
            timeout: Duration::from_secs(60),
        });
    let config = DeploymentConfig {
        journal: spec["journal"]
            .as_str()
            .map(|p| std::sync::Arc::new(FileJournal::new(p)) as _),
        ..DeploymentConfig::applying(Approval::All)
    };
    let _ = deploy(&plan, &Guarded::new(sdk, Guardrails::default(), Approval::All), &config).await;
}

/// Runs `plan` in an [`apply_child`] process journaling to `journal`, with `service`'s
/// `held` throttled, and SIGKILLs it once `calls` requests for `held` reached the proxy.
pub(super) async fn kill_apply_when_held(
    h: &Harness,
    plan: &ExecutionPlan,
    plan_file: &std::path::Path,
    journal: &std::path::Path,
    (service, held, calls): (&str, &str, usize),
) {
    std::fs::write(plan_file, serde_json::to_vec(plan).unwrap()).unwrap();
    h.proxy.clear_faults();
    h.proxy.reset_log();
    h.proxy.inject(
        FaultRule::new(service, Fault::Throttle)
            .operation(held)
            .region(h.region)
            .times(9),
    );
    let spec = json!({"plan": plan_file, "proxy": h.proxy.url, "region": h.region, "journal": journal});
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["deployment::apply_child", "--exact", "--ignored", "--nocapture"])
        .env("MIYABI_APPLY_CHILD", spec.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while h.proxy.calls(service, held).len() < calls {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child never reached {held}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    h.proxy.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_apply_is_rolled_back_by_the_next_run() {
    let h = harness("ap-south-2").await;
    let dir = super::support::tmp_dir("killed-apply");
    // Kill while three resizes of one wave are in flight, waiting to modify (the instances are
    // stopped), and while they wait to start again (stopped, and already of the new type).
    for (k, throttled) in ["ModifyInstanceAttribute", "StartInstances"].into_iter().enumerate() {
        let ids = h.launch(InstanceType::M52xlarge, 3).await;
        let changes = ids.iter().map(|id| resize_to_large(h.region, id.clone())).collect();
        let plan = one_wave(allocate(changes, &Guardrails::default(), |_| None));
        let plan_file = dir.join(format!("plan-{k}.json"));
        let journal = dir.join(format!("journal-{k}.json"));
        kill_apply_when_held(&h, &plan, &plan_file, &journal, ("ec2", throttled, ids.len())).await;

        let stopped = instances(&h, &ids).await;
        assert!(
            stopped.values().all(|i| i.state == "stopped"),
            "{throttled}: the kill left the three instances stopped: {stopped:#?}"
        );
        assert!(journal.exists(), "{throttled}: the journal outlives the killed process");

        // The next run, approving nothing new, first rolls the interrupted wave back.
        let config = DeploymentConfig {
            journal: Some(std::sync::Arc::new(FileJournal::new(&journal))),
            ..DeploymentConfig::applying(Approval::Ids(BTreeSet::new()))
        };
        let report = deploy(
            &plan,
            &executor(&h, Guardrails::default(), Approval::Nothing).await,
            &config,
        )
        .await;
        assert_eq!(report.recovered.len(), 3, "{throttled}: {report:#?}");
        assert!(
            report
                .recovered
                .iter()
                .all(|r| matches!(r.outcome, StepOutcome::RolledBack { .. })),
            "{throttled}: {report:#?}"
        );
        for (id, after) in instances(&h, &ids).await {
            assert_eq!(after.state, "running", "{throttled}: {id} is not left stopped");
            assert_eq!(
                after.instance_type, "m5.2xlarge",
                "{throttled}: {id} rolled back to its type"
            );
        }
        assert!(!journal.exists(), "{throttled}: a recovered journal is removed");
    }
}

/// Three resizes of one wave with EC2's state times at the proxy (1 s to stop, 1 s to start).
async fn state_timed_resizes(h: &Harness) -> (Vec<String>, ExecutionPlan) {
    h.proxy.set_ec2_state_times(Some(StateTimes {
        stopping: Duration::from_secs(1),
        pending: Duration::from_secs(1),
    }));
    let ids = h.launch(InstanceType::M52xlarge, 3).await;
    let changes = ids.iter().map(|id| resize_to_large(h.region, id.clone())).collect();
    (ids, one_wave(allocate(changes, &Guardrails::default(), |_| None)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_of_resizes_runs_at_once_and_each_waits_for_ec2s_state_times() {
    let h = harness("ap-southeast-4").await;
    let (ids, plan) = state_timed_resizes(&h).await;
    h.proxy.reset_log();
    let config = DeploymentConfig::applying(Approval::All);
    let report = apply_all(&h, &plan, &config).await;
    assert!(
        report.steps.iter().all(|s| s.outcome == StepOutcome::Applied),
        "{report:#?}"
    );
    // The proxy refuses a type change of an instance that is not stopped and a start of one
    // still stopping (IncorrectInstanceState): none was refused, so each resize waited.
    let requests = h.proxy.requests();
    for op in ["StopInstances", "ModifyInstanceAttribute", "StartInstances"] {
        let calls: Vec<_> = requests.iter().filter(|r| r.operation == op).collect();
        assert_eq!(calls.len(), 3, "{op}");
        assert!(calls.iter().all(|r| r.status == 200), "{op}: {calls:?}");
    }
    // The three were stopping at overlapping times, and each went stop → stopped → start → running.
    let log = h.proxy.state_log();
    let when = |id: &str, state: &str| {
        log.iter()
            .find(|c| c.instance == id && c.state == state)
            .unwrap_or_else(|| panic!("{id} never {state}: {log:?}"))
            .at
    };
    let latest_stop = ids.iter().map(|id| when(id, "stopping")).max().unwrap();
    let earliest_stopped = ids.iter().map(|id| when(id, "stopped")).min().unwrap();
    assert!(latest_stop < earliest_stopped, "the stops overlapped: {log:?}");
    for id in &ids {
        assert!(when(id, "stopped") <= when(id, "pending") && when(id, "pending") < when(id, "running"));
    }
    for (id, now) in instances(&h, &ids).await {
        assert_eq!(
            (now.instance_type.as_str(), now.state.as_str()),
            ("m5.large", "running"),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_in_a_concurrent_wave_rolls_back_every_step_in_flight_too() {
    let h = harness("ap-southeast-5").await;
    let (ids, plan) = state_timed_resizes(&h).await;
    // A stop and start gives an instance a new auto-assigned public IP, on EC2 as on moto.
    let without_ip = |mut m: BTreeMap<String, Ec2Instance>| {
        m.values_mut().for_each(|i| i.public_ip = None);
        m
    };
    let before = without_ip(instances(&h, &ids).await);
    // The second type change fails; the other two are in flight by then (all three stop at once).
    h.proxy.inject(
        FaultRule::new("ec2", Fault::AuthError)
            .operation("ModifyInstanceAttribute")
            .region(h.region)
            .after(1)
            .times(1),
    );
    let config = DeploymentConfig::applying(Approval::All);
    let report = apply_all(&h, &plan, &config).await;
    h.proxy.clear_faults();
    assert_eq!(report.failed_wave, Some(0), "{report:#?}");
    assert_eq!(report.count("failed"), 1, "{report:#?}");
    assert_eq!(
        report.count("rolled_back"),
        2,
        "the steps in flight finished, then were reverted: {report:#?}"
    );
    assert_eq!(
        without_ip(instances(&h, &ids).await),
        before,
        "the estate equals its state before the wave"
    );
}
