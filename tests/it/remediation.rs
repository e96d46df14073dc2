//! Remediations applied and rolled back through the proxy, each proven by re-discovery: its check
//! passes after the apply and fails again after the rollback. The EBS encryption swap is
//! multi-step: a fault at any of its sub-steps, and a SIGKILL between two of them, leave the
//! estate as it was.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, InstanceType};
use miyabi_aws::assessment::FindingStatus;
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::guardrails::Guardrails;
use miyabi_aws::phases::deployment::journal::FileJournal;
use miyabi_aws::phases::deployment::{
    deploy, Approval, Backup, DeploymentConfig, Guarded, SdkExecutor, StepExecutor, StepOutcome, SwapStage, WaitPolicy,
    REPLACED_BY_TAG,
};
use miyabi_aws::phases::planning::{plan, PlanningConfig};
use miyabi_aws::plan::execution::{allocate, ExecutionPlan};
use miyabi_aws::plan::Action;
use miyabi_aws::world::WorldState;
use miyabi_aws_testkit::proxy::{Fault, FaultRule};

use super::deployment::kill_apply_when_held;
use super::support::{harness, Harness};

async fn executor(h: &Harness) -> Guarded<SdkExecutor> {
    let sdk = SdkExecutor::connect(&[h.region.to_owned()], &h.session())
        .await
        .with_wait(WaitPolicy {
            poll: Duration::from_millis(20),
            timeout: Duration::from_secs(30),
        });
    Guarded::new(sdk, Guardrails::default(), Approval::All)
}

async fn discover(h: &Harness) -> WorldState {
    h.discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery")
        .world
}

/// The status of `check` on `resource` in a fresh discovery.
fn verdict(world: &WorldState, check: &str, resource: &str) -> Option<FindingStatus> {
    world
        .assessment
        .findings
        .iter()
        .find(|f| f.check_id == check && f.resource_id == resource)
        .map(|f| f.status)
}

/// θ2's plan of `action` on `resource`, alone, allocated under the default guardrails.
fn planned(world: &WorldState, action: Action, resource: &str) -> ExecutionPlan {
    let changes: Vec<_> = plan(world, PriceCatalog::built_in(), &PlanningConfig::default())
        .changes()
        .filter(|c| c.action == action && c.resource.id == resource)
        .cloned()
        .collect();
    assert_eq!(changes.len(), 1, "θ2 plans one {action:?} on {resource}");
    allocate(changes, &Guardrails::default(), |_| None)
}

/// An instance and its (unencrypted) root volume.
async fn instance_with_volume(h: &Harness) -> (String, String) {
    let instance = h.launch(InstanceType::T3Micro, 1).await.remove(0);
    let volumes = h
        .seed
        .ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(&instance)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let volume = volumes.volumes()[0].volume_id().unwrap().to_owned();
    (instance, volume)
}

/// What the swap may touch, as EC2 reports it: the instance's state, every volume of the Region
/// (id, encrypted, attached to, device, tags other than `MiyabiManaged`) and every snapshot.
async fn estate(h: &Harness, instance: &str) -> (String, BTreeSet<String>, BTreeSet<String>) {
    let state = h
        .seed
        .ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let volumes = h.seed.ec2.describe_volumes().send().await.unwrap();
    let volumes = volumes
        .volumes()
        .iter()
        .map(|v| {
            let attachment = v.attachments().first();
            let mut tags: Vec<String> = v
                .tags()
                .iter()
                .filter(|t| t.key() != Some("MiyabiManaged"))
                .map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or("")))
                .collect();
            tags.sort();
            format!(
                "{} encrypted={} on={:?} at={:?} tags={tags:?}",
                v.volume_id().unwrap_or(""),
                v.encrypted().unwrap_or(false),
                attachment.and_then(|a| a.instance_id()),
                attachment.and_then(|a| a.device()),
            )
        })
        .collect();
    let snapshots = h
        .seed
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap()
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect();
    (state, volumes, snapshots)
}

/// The volume attached to `instance` now.
async fn attached_volume(h: &Harness, instance: &str) -> (String, bool) {
    let volumes = h
        .seed
        .ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(instance)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v = &volumes.volumes()[0];
    (v.volume_id().unwrap().to_owned(), v.encrypted().unwrap_or(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unencrypted_volume_is_swapped_for_an_encrypted_copy_and_back() {
    let h = harness("sa-east-1").await;
    let (instance, volume) = instance_with_volume(&h).await;
    let world = discover(&h).await;
    assert_eq!(
        verdict(&world, "ec2_ebs_volume_encryption", &volume),
        Some(FindingStatus::Fail)
    );
    let ep = planned(&world, Action::EncryptVolume, &volume);
    let step = &ep.steps[0];
    assert!(step.needs_approval, "downtime needs approval: {step:#?}");
    assert!(
        step.approval_reasons.iter().any(|r| r.contains("downtime")),
        "{step:#?}"
    );

    // Without approval nothing is sent.
    h.proxy.reset_log();
    let refused = deploy(
        &ep,
        &Guarded::new(
            SdkExecutor::connect(&[h.region.to_owned()], &h.session()).await,
            Guardrails::default(),
            Approval::Nothing,
        ),
        &DeploymentConfig::applying(Approval::Nothing),
    )
    .await;
    assert!(
        matches!(refused.steps[0].outcome, StepOutcome::Skipped { .. }),
        "{refused:#?}"
    );
    assert!(super::support::mutating(&h.proxy.requests()).is_empty());

    let before = estate(&h, &instance).await;
    h.proxy.reset_log();
    let report = deploy(&ep, &executor(&h).await, &DeploymentConfig::applying(Approval::All)).await;
    assert_eq!(report.steps[0].outcome, StepOutcome::Applied, "{report:#?}");

    // The order at the wire: the copy is made while the instance is stopped, and the instance
    // starts only once the copy is in place.
    let ops: Vec<String> = super::support::mutating(&h.proxy.requests());
    let expected = [
        "StopInstances",
        "CreateSnapshot",
        "CreateVolume",
        "DetachVolume",
        "AttachVolume",
        "StartInstances",
        "CreateTags",
        "DeleteSnapshot",
    ];
    let positions: Vec<usize> = expected
        .iter()
        .map(|op| {
            ops.iter()
                .position(|o| o == op)
                .unwrap_or_else(|| panic!("{op} missing: {ops:?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{ops:?}");

    // Re-discovery: the volume in the instance's place is an encrypted copy and passes; the
    // old one is kept, detached and marked.
    let (copy, encrypted) = attached_volume(&h, &instance).await;
    assert_ne!(copy, volume);
    assert!(encrypted);
    let after = discover(&h).await;
    assert_eq!(
        verdict(&after, "ec2_ebs_volume_encryption", &copy),
        Some(FindingStatus::Pass)
    );
    let old = after
        .inventory
        .volumes
        .iter()
        .find(|v| v.id == volume)
        .expect("the old volume is kept");
    assert!(old.attached_to.is_empty());
    assert_eq!(old.tags.get(REPLACED_BY_TAG).map(String::as_str), Some(copy.as_str()));
    assert_eq!(
        after
            .inventory
            .instances
            .iter()
            .find(|i| i.id == instance)
            .unwrap()
            .state,
        "running"
    );
    assert!(
        after.inventory.snapshots.is_empty(),
        "the swap's snapshot is deleted: {:?}",
        after.inventory.snapshots
    );
    let Some(Backup::VolumeSwap(swap)) = &report.steps[0].backup else {
        panic!("the swap's record is its backup: {report:#?}")
    };
    assert_eq!(swap.reached, SwapStage::Cleaned);

    // Rolled back: the old volume is in its place again and the check fails again.
    let exec = executor(&h).await;
    exec.revert(step, report.steps[0].backup.as_ref())
        .await
        .expect("revert");
    assert_eq!(attached_volume(&h, &instance).await, (volume.clone(), false));
    let reverted = discover(&h).await;
    assert_eq!(
        verdict(&reverted, "ec2_ebs_volume_encryption", &volume),
        Some(FindingStatus::Fail)
    );
    assert_eq!(
        estate(&h, &instance).await,
        before,
        "the rollback leaves the estate as it was"
    );
    // And the step reads as not applied, so the next run proposes it again.
    assert_eq!(exec.read(step).await.unwrap(), step.precondition.equals);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_sub_step_of_the_swap_leaves_the_estate_as_it_was() {
    let h = harness("me-south-1").await;
    let (instance, volume) = instance_with_volume(&h).await;
    let ep = planned(&discover(&h).await, Action::EncryptVolume, &volume);
    let before = estate(&h, &instance).await;
    for op in [
        "StopInstances",
        "CreateSnapshot",
        "CreateVolume",
        "DetachVolume",
        "AttachVolume",
        "StartInstances",
        "CreateTags",
        "DeleteSnapshot",
    ] {
        h.proxy.clear_faults();
        h.proxy.inject(
            FaultRule::new("ec2", Fault::AuthError)
                .operation(op)
                .region(h.region)
                .times(1),
        );
        let report = deploy(&ep, &executor(&h).await, &DeploymentConfig::applying(Approval::All)).await;
        assert!(
            matches!(&report.steps[0].outcome, StepOutcome::Failed { error } if error.contains("AuthFailure") || error.contains(op)),
            "{op}: {report:#?}"
        );
        assert_eq!(estate(&h, &instance).await, before, "{op}: the estate is as it was");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_killed_between_two_sub_steps_is_undone_by_the_next_run() {
    let h = harness("af-south-1").await;
    let dir = super::support::tmp_dir("killed-swap");
    // Killed with the old volume detached (waiting to attach the copy), and with the copy in
    // place (waiting to start the instance).
    for (k, held) in ["AttachVolume", "StartInstances"].into_iter().enumerate() {
        let (instance, volume) = instance_with_volume(&h).await;
        let ep = planned(&discover(&h).await, Action::EncryptVolume, &volume);
        let before = estate(&h, &instance).await;
        let plan_file = dir.join(format!("plan-{k}.json"));
        let journal = dir.join(format!("journal-{k}.jsonl"));
        kill_apply_when_held(&h, &ep, &plan_file, &journal, ("ec2", held, 1)).await;
        assert_ne!(
            estate(&h, &instance).await,
            before,
            "{held}: the kill left the swap half done"
        );
        let text = std::fs::read_to_string(&journal).unwrap();
        let stage = if held == "AttachVolume" { "detached" } else { "attached" };
        assert!(text.contains(&format!("\"reached\":\"{stage}\"")), "{held}: {text}");

        let config = DeploymentConfig {
            journal: Some(std::sync::Arc::new(FileJournal::new(&journal))),
            ..DeploymentConfig::applying(Approval::Ids(BTreeSet::new()))
        };
        let report = deploy(&ep, &executor(&h).await, &config).await;
        assert_eq!(report.recovered.len(), 1, "{held}: {report:#?}");
        assert!(
            matches!(report.recovered[0].outcome, StepOutcome::RolledBack { .. }),
            "{held}: {report:#?}"
        );
        assert_eq!(estate(&h, &instance).await, before, "{held}: the estate is as it was");
        assert!(!journal.exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_defaults_and_multi_az_are_set_and_put_back() {
    let h = harness("ap-southeast-3").await;
    let (_, volume) = instance_with_volume(&h).await;
    // A snapshot, so that the account's snapshot setting applies in the Region.
    h.seed.ec2.create_snapshot().volume_id(&volume).send().await.unwrap();
    h.seed
        .rds
        .create_db_instance()
        .db_instance_identifier("single-az")
        .db_instance_class("db.t3.micro")
        .engine("mysql")
        .master_username("admin")
        .master_user_password("password123")
        .allocated_storage(20)
        .send()
        .await
        .unwrap();
    let world = discover(&h).await;
    let account = world.inventory.region_settings[0].account_id.clone();
    let cases = [
        (
            Action::EnableEbsDefaultEncryption,
            "ec2_ebs_default_encryption",
            account.as_str(),
        ),
        (
            Action::BlockSnapshotPublicAccess,
            "ec2_ebs_snapshot_account_block_public_access",
            account.as_str(),
        ),
        (
            Action::RequireImdsV2ByDefault,
            "ec2_instance_account_imdsv2_enabled",
            account.as_str(),
        ),
        (Action::EnableRdsMultiAz, "rds_instance_multi_az", "single-az"),
    ];
    let exec = executor(&h).await;
    for (action, check, resource) in cases {
        let finding_id = |w: &WorldState| verdict(w, check, resource);
        assert_eq!(finding_id(&world), Some(FindingStatus::Fail), "{check}");
        let ep = planned(&world, action, resource);
        assert_eq!(
            ep.steps[0].needs_approval,
            action == Action::EnableRdsMultiAz,
            "only the standby, which costs money, waits for approval: {:?}",
            ep.steps[0].approval_reasons
        );
        let report = deploy(&ep, &exec, &DeploymentConfig::applying(Approval::All)).await;
        assert_eq!(report.steps[0].outcome, StepOutcome::Applied, "{action:?}: {report:#?}");
        assert_eq!(
            finding_id(&discover(&h).await),
            Some(FindingStatus::Pass),
            "{check} after apply"
        );
        exec.revert(&ep.steps[0], report.steps[0].backup.as_ref())
            .await
            .expect("revert");
        assert_eq!(
            finding_id(&discover(&h).await),
            Some(FindingStatus::Fail),
            "{check} after rollback"
        );
    }
}

/// A single-AZ, unencrypted MySQL instance with backups and a tag.
async fn plain_db(h: &Harness, id: &str) {
    h.seed
        .rds
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("mysql")
        .master_username("admin")
        .master_user_password("password123")
        .allocated_storage(20)
        .backup_retention_period(7)
        .tags(aws_sdk_rds::types::Tag::builder().key("team").value("data").build())
        .send()
        .await
        .unwrap();
}

/// Every DB instance of the Region (id, encryption, class, Multi-AZ, public, backups, tags
/// other than `MiyabiManaged`) and every manual DB snapshot, as RDS reports them.
async fn db_estate(h: &Harness) -> (BTreeSet<String>, BTreeSet<String>) {
    let instances = h.seed.rds.describe_db_instances().send().await.unwrap();
    let instances = instances
        .db_instances()
        .iter()
        .map(|d| {
            let mut tags: Vec<String> = d
                .tag_list()
                .iter()
                .filter(|t| t.key() != Some("MiyabiManaged"))
                .map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or("")))
                .collect();
            tags.sort();
            format!(
                "{} encrypted={:?} class={:?} multi_az={:?} public={:?} backups={:?} tags={tags:?}",
                d.db_instance_identifier().unwrap_or(""),
                d.storage_encrypted(),
                d.db_instance_class(),
                d.multi_az(),
                d.publicly_accessible(),
                d.backup_retention_period(),
            )
        })
        .collect();
    let snapshots = h
        .seed
        .rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_owned))
        .collect();
    (instances, snapshots)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_instance_moves_to_encrypted_storage_under_its_own_identifier() {
    let h = harness("eu-north-1").await;
    plain_db(&h, "orders").await;
    let world = discover(&h).await;
    assert_eq!(
        verdict(&world, "rds_instance_storage_encrypted", "orders"),
        Some(FindingStatus::Fail)
    );
    let ep = planned(&world, Action::EncryptDbStorage, "orders");
    let step = &ep.steps[0];
    assert!(step.needs_approval && step.change.is_destructive(), "{step:#?}");
    let (before, _) = db_estate(&h).await;

    h.proxy.reset_log();
    let report = deploy(&ep, &executor(&h).await, &DeploymentConfig::applying(Approval::All)).await;
    assert_eq!(report.steps[0].outcome, StepOutcome::Applied, "{report:#?}");
    let ops = super::support::mutating(&h.proxy.requests());
    let expected = [
        "CreateDBSnapshot",
        "CopyDBSnapshot",
        "RestoreDBInstanceFromDBSnapshot",
        "ModifyDBInstance",
        "DeleteDBSnapshot",
        "DeleteDBInstance",
    ];
    let positions: Vec<usize> = expected
        .iter()
        .map(|op| {
            ops.iter()
                .position(|o| o == op)
                .unwrap_or_else(|| panic!("{op} missing: {ops:?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{ops:?}");

    // Re-discovery: "orders" is encrypted and passes, with the old instance's settings; the
    // old instance and the unencrypted snapshot are gone, the encrypted copy is kept.
    let after = discover(&h).await;
    assert_eq!(
        verdict(&after, "rds_instance_storage_encrypted", "orders"),
        Some(FindingStatus::Pass)
    );
    let (now, snapshots) = db_estate(&h).await;
    let unchanged_but_encryption: BTreeSet<String> = now
        .iter()
        .map(|d| d.replace("encrypted=Some(true)", "encrypted=Some(false)"))
        .collect();
    assert_eq!(
        unchanged_but_encryption, before,
        "one instance, named and set as before"
    );
    let Some(Backup::DbMigration(m)) = &report.steps[0].backup else {
        panic!("the migration's record is its backup: {report:#?}")
    };
    assert_eq!(snapshots, BTreeSet::from([m.encrypted_snapshot_id.clone()]));
    // The old instance is gone: this step cannot be undone, only restored from its backup.
    let exec = executor(&h).await;
    assert!(matches!(
        exec.revert(step, report.steps[0].backup.as_ref()).await,
        Err(miyabi_aws::phases::deployment::DeployError::Irreversible { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_sub_step_of_the_db_migration_leaves_the_estate_as_it_was() {
    let h = harness("eu-west-3").await;
    plain_db(&h, "ledger").await;
    let ep = planned(&discover(&h).await, Action::EncryptDbStorage, "ledger");
    let before = db_estate(&h).await;
    // (operation, matching calls let through first): the two ModifyDBInstance are the renames.
    for (op, after) in [
        ("CreateDBSnapshot", 0),
        ("CopyDBSnapshot", 0),
        ("RestoreDBInstanceFromDBSnapshot", 0),
        ("ModifyDBInstance", 0),
        ("ModifyDBInstance", 1),
        ("DeleteDBSnapshot", 0),
        ("DeleteDBInstance", 0),
    ] {
        h.proxy.clear_faults();
        h.proxy.inject(
            FaultRule::new("rds", Fault::AuthError)
                .operation(op)
                .region(h.region)
                .after(after)
                .times(1),
        );
        let report = deploy(&ep, &executor(&h).await, &DeploymentConfig::applying(Approval::All)).await;
        assert!(
            matches!(report.steps[0].outcome, StepOutcome::Failed { .. }),
            "{op} #{after}: {report:#?}"
        );
        assert_eq!(db_estate(&h).await, before, "{op} #{after}: the estate is as it was");
        assert_eq!(
            verdict(&discover(&h).await, "rds_instance_storage_encrypted", "ledger"),
            Some(FindingStatus::Fail),
            "{op} #{after}: the check fails again after the rollback"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_db_migration_killed_after_the_cutover_is_undone_by_the_next_run() {
    let h = harness("ap-northeast-3").await;
    plain_db(&h, "billing").await;
    let ep = planned(&discover(&h).await, Action::EncryptDbStorage, "billing");
    let before = db_estate(&h).await;
    let dir = super::support::tmp_dir("killed-migration");
    let plan_file = dir.join("plan.json");
    let journal = dir.join("journal.jsonl");
    kill_apply_when_held(&h, &ep, &plan_file, &journal, ("rds", "DeleteDBSnapshot", 1)).await;
    let (cut_over, _) = db_estate(&h).await;
    assert!(
        cut_over.iter().any(|d| d.starts_with("billing encrypted=Some(true)")),
        "the kill came after the cutover: {cut_over:?}"
    );
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains("\"reached\":\"new_renamed\""), "{text}");

    let config = DeploymentConfig {
        journal: Some(std::sync::Arc::new(FileJournal::new(&journal))),
        ..DeploymentConfig::applying(Approval::Ids(BTreeSet::new()))
    };
    let report = deploy(&ep, &executor(&h).await, &config).await;
    assert_eq!(report.recovered.len(), 1, "{report:#?}");
    assert!(
        matches!(report.recovered[0].outcome, StepOutcome::RolledBack { .. }),
        "{report:#?}"
    );
    assert_eq!(db_estate(&h).await, before, "the estate is as it was");
    assert!(!journal.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_logging_goes_to_a_log_bucket_the_engine_creates_with_its_policy_first() {
    let h = harness("eu-central-2").await;
    let _ = instance_with_volume(&h).await; // the Region's settings name the account
    for name in ["clicks-eu-central-2", "orders-eu-central-2"] {
        h.seed
            .s3
            .create_bucket()
            .bucket(name)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(h.region))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let world = discover(&h).await;
    let account = world.inventory.region_settings[0].account_id.clone();
    let log_bucket = miyabi_aws::plan::log_bucket_name(&account, h.region);
    let changes: Vec<_> = plan(&world, PriceCatalog::built_in(), &PlanningConfig::default())
        .changes()
        .filter(|c| c.action == Action::EnableAccessLogging && c.resource.id.ends_with("-eu-central-2"))
        .cloned()
        .collect();
    assert_eq!(changes.len(), 2);
    let ep = allocate(changes, &Guardrails::default(), |_| None);
    assert!(ep.steps.iter().all(|s| !s.needs_approval), "{:#?}", ep.steps);

    h.proxy.reset_log();
    let report = deploy(&ep, &executor(&h).await, &DeploymentConfig::applying(Approval::All)).await;
    assert!(
        report.steps.iter().all(|s| s.outcome == StepOutcome::Applied),
        "{report:#?}"
    );
    // One log bucket, created once (the two steps share a lane), its policy before any logging.
    let ops = super::support::mutating(&h.proxy.requests());
    assert_eq!(ops.iter().filter(|o| *o == "CreateBucket").count(), 1, "{ops:?}");
    let policy = ops.iter().position(|o| o == "PutBucketPolicy").expect("a policy");
    let logging = ops.iter().position(|o| o == "PutBucketLogging").expect("logging");
    assert!(policy < logging, "{ops:?}");

    let after = discover(&h).await;
    for name in ["clicks-eu-central-2", "orders-eu-central-2"] {
        assert_eq!(
            verdict(&after, "s3_bucket_server_access_logging_enabled", name),
            Some(FindingStatus::Pass),
            "{name}"
        );
    }
    // The log bucket passes what a log bucket can, and is tagged as the engine's.
    for check in [
        "s3_bucket_level_public_access_block",
        "s3_bucket_default_encryption",
        "s3_bucket_object_versioning",
        "s3_bucket_acl_prohibited",
        "s3_bucket_secure_transport_policy",
        "s3_bucket_lifecycle_enabled",
    ] {
        assert_eq!(
            verdict(&after, check, &log_bucket),
            Some(FindingStatus::Pass),
            "{check}"
        );
    }
    let bucket = after.inventory.buckets.iter().find(|b| b.name == log_bucket).unwrap();
    assert_eq!(bucket.tags.get("MiyabiRole").map(String::as_str), Some("access-logs"));
    // The next plan leaves the log bucket's own logging to a human, saying why.
    let next = plan(&after, PriceCatalog::built_in(), &PlanningConfig::default());
    assert!(!next
        .changes()
        .any(|c| c.resource.id == log_bucket && c.action == Action::EnableAccessLogging));

    let exec = executor(&h).await;
    for (step, record) in ep.steps.iter().zip(&report.steps) {
        exec.revert(step, record.backup.as_ref()).await.expect("revert");
    }
    let reverted = discover(&h).await;
    for name in ["clicks-eu-central-2", "orders-eu-central-2"] {
        assert_eq!(
            verdict(&reverted, "s3_bucket_server_access_logging_enabled", name),
            Some(FindingStatus::Fail),
            "{name} after rollback"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_ip_nothing_inbound_needs_is_removed_and_one_serving_the_public_is_left() {
    let h = harness("ap-southeast-4").await;
    let quiet = h.launch(InstanceType::T3Micro, 1).await.remove(0);
    // A second instance in a group an office range may reach: its address serves clients.
    let vpc = h.seed.ec2.describe_vpcs().send().await.unwrap().vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_owned();
    let office = h
        .seed
        .ec2
        .create_security_group()
        .group_name("office")
        .description("office")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();
    h.seed
        .ec2
        .authorize_security_group_ingress()
        .group_id(&office)
        .ip_protocol("tcp")
        .from_port(443)
        .to_port(443)
        .cidr_ip("203.0.113.0/24")
        .send()
        .await
        .unwrap();
    let served = h
        .seed
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .security_group_ids(&office)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    let world = discover(&h).await;
    for id in [&quiet, &served] {
        assert_eq!(
            verdict(&world, "ec2_instance_public_ip", id),
            Some(FindingStatus::Fail),
            "{id}"
        );
    }
    let planned_on: Vec<String> = plan(&world, PriceCatalog::built_in(), &PlanningConfig::default())
        .changes()
        .filter(|c| c.action == Action::RemovePublicIp)
        .map(|c| c.resource.id.clone())
        .collect();
    assert!(
        !planned_on.contains(&served),
        "an address a public source may use stays"
    );
    let ep = planned(&world, Action::RemovePublicIp, &quiet);
    assert!(ep.steps[0].needs_approval, "{:#?}", ep.steps[0]);

    h.proxy.reset_log();
    let report = deploy(&ep, &executor(&h).await, &DeploymentConfig::applying(Approval::All)).await;
    assert_eq!(report.steps[0].outcome, StepOutcome::Applied, "{report:#?}");
    assert_eq!(h.proxy.calls("ec2", "ModifyNetworkInterfaceAttribute").len(), 1);
    assert_eq!(
        verdict(&discover(&h).await, "ec2_instance_public_ip", &quiet),
        Some(FindingStatus::Pass)
    );
    executor(&h)
        .await
        .revert(&ep.steps[0], report.steps[0].backup.as_ref())
        .await
        .expect("revert");
    assert_eq!(
        verdict(&discover(&h).await, "ec2_instance_public_ip", &quiet),
        Some(FindingStatus::Fail),
        "an address is given back (a new one)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_group_in_use_is_emptied_and_its_rules_put_back() {
    let h = harness("ca-west-1").await;
    let _ = h.launch(InstanceType::T3Micro, 1).await; // in the default group
    let world = discover(&h).await;
    let group = world
        .inventory
        .security_groups
        .iter()
        .find(|g| g.name == "default" && g.vpc_id.is_some())
        .expect("the default VPC's default group")
        .clone();
    assert!(!group.egress.is_empty(), "{group:#?}");
    assert_eq!(
        verdict(&world, "ec2_securitygroup_default_restrict_traffic", &group.id),
        Some(FindingStatus::Fail)
    );
    let ep = planned(&world, Action::RestrictDefaultGroup, &group.id);
    assert!(ep.steps[0].needs_approval, "members may rely on its rules");
    let report = deploy(&ep, &executor(&h).await, &DeploymentConfig::applying(Approval::All)).await;
    assert_eq!(report.steps[0].outcome, StepOutcome::Applied, "{report:#?}");
    let after = discover(&h).await;
    assert_eq!(
        verdict(&after, "ec2_securitygroup_default_restrict_traffic", &group.id),
        Some(FindingStatus::Pass)
    );
    executor(&h)
        .await
        .revert(&ep.steps[0], report.steps[0].backup.as_ref())
        .await
        .expect("revert");
    let reverted = discover(&h).await;
    assert_eq!(
        verdict(&reverted, "ec2_securitygroup_default_restrict_traffic", &group.id),
        Some(FindingStatus::Fail)
    );
    let back = reverted
        .inventory
        .security_groups
        .iter()
        .find(|g| g.id == group.id)
        .unwrap();
    assert_eq!(
        (&back.ingress, &back.egress),
        (&group.ingress, &group.egress),
        "the same rules"
    );
}
