//! θ2 Planning and θ3 Optimization on world-state fixtures: right-sizing cases with answers
//! computed by hand, the guardrails, the security plan against the assessment, and properties.

use std::collections::BTreeSet;

use chrono::Duration;
use miyabi_aws::assessment::{assess, FindingStatus, ResourceKind};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::guardrails::{Environment, Guardrails};
use miyabi_aws::phases::optimization::rightsizing::{rightsize, RightsizingConfig, RightsizingFinding};
use miyabi_aws::phases::optimization::{optimize, OptimizationConfig};
use miyabi_aws::phases::planning::{plan, PlanningConfig};
use miyabi_aws::plan::execution::{allocate, WaveKind};
use miyabi_aws::plan::{Action, Change, ResourceRef, Risk};
use miyabi_aws::world::{Inventory, MetricSeries, WorldState};
use quickcheck::{QuickCheck, TestResult};

use super::assessment::{base, cpu, instance};
use super::world::fixture_world;

const HOURS: usize = 335;

fn catalog() -> &'static PriceCatalog {
    PriceCatalog::built_in()
}

/// `HOURS` hourly values from `f(hour)`.
fn series(id: &str, f: impl Fn(usize) -> f64) -> MetricSeries {
    cpu(id, &(0..HOURS).map(f).collect::<Vec<_>>())
}

fn named(mut s: MetricSeries, metric: &str) -> MetricSeries {
    metric.clone_into(&mut s.metric_name);
    s
}

#[test]
fn a_steady_8_percent_m5_2xlarge_moves_to_m5_large() {
    // 6, 8, 10 % in turn: P99.5 is 10 % (the top 0.5 % of 335 points are all 10s).
    // On m5.large (2 vCPU instead of 8): 10 × 8 / 2 = 40 % ≤ 80 %, and it is the cheapest m5.
    // Compute Optimizer's CPU rule alone: the memory guard (at most a halving of unmeasured
    // memory per step) is off here and tested on its own.
    let cpu = series("i-a", |h| [6.0, 8.0, 10.0][h % 3]);
    let cpu_rule_alone = RightsizingConfig {
        memory_guard_fraction: 0.0,
        ..RightsizingConfig::default()
    };
    let rec = rightsize("m5.2xlarge", Some(&cpu), None, catalog(), &cpu_rule_alone);
    assert_eq!(rec.finding, RightsizingFinding::Overprovisioned);
    assert_eq!(rec.target_type.as_deref(), Some("m5.large"));
    assert_eq!(rec.cpu_threshold, Some(10.0));
    assert_eq!(rec.projected_cpu, Some(40.0));
    assert_eq!(rec.searched_families, vec!["m5".to_owned()]);
    assert!(
        rec.evidence.contains("P99.5 CPU 10.0% over 14 days"),
        "{}",
        rec.evidence
    );
}

#[test]
fn a_spiky_instance_keeps_its_size_because_of_its_p99_5() {
    // 5 % with 45 % spikes two hours a day: mean ≈ 8 %, but P99.5 = 45 %. Halving the vCPUs
    // (m5.xlarge) projects 90 % > 80 %, so m5.2xlarge stays.
    let cpu = series("i-b", |h| if h % 24 < 2 { 45.0 } else { 5.0 });
    let rec = rightsize("m5.2xlarge", Some(&cpu), None, catalog(), &RightsizingConfig::default());
    assert_eq!(rec.cpu_threshold, Some(45.0));
    assert_eq!(rec.finding, RightsizingFinding::Optimized);
    assert_eq!(rec.target_type, None);
}

#[test]
fn a_saturated_instance_is_upsized() {
    // 95 % on m5.large (2 vCPU): over 80 %. m5.xlarge (4 vCPU) projects 95 × 2 / 4 = 47.5 %.
    let cpu = series("i-c", |_| 95.0);
    let rec = rightsize("m5.large", Some(&cpu), None, catalog(), &RightsizingConfig::default());
    assert_eq!(rec.finding, RightsizingFinding::Underprovisioned);
    assert_eq!(rec.target_type.as_deref(), Some("m5.xlarge"));
    assert_eq!(rec.projected_cpu, Some(47.5));
}

#[test]
fn under_30_hours_of_data_is_insufficient() {
    let cpu = cpu("i-d", &[5.0; 29]);
    let rec = rightsize("m5.2xlarge", Some(&cpu), None, catalog(), &RightsizingConfig::default());
    assert_eq!(rec.finding, RightsizingFinding::InsufficientData);
    assert_eq!(rec.hours, 29);
    let rec = rightsize("m5.2xlarge", None, None, catalog(), &RightsizingConfig::default());
    assert_eq!(rec.finding, RightsizingFinding::InsufficientData);
}

#[test]
fn memory_from_the_agent_can_forbid_a_downsize() {
    // CPU alone would allow m5.large (40 %), but memory at 50 % of 32 GiB projects 200 % of 8 GiB
    // and 100 % of 16 GiB: only m5.2xlarge keeps it ≤ 80 %.
    let cpu = series("i-e", |h| [6.0, 8.0, 10.0][h % 3]);
    let mem = named(series("i-e", |_| 50.0), "mem_used_percent");
    let rec = rightsize(
        "m5.2xlarge",
        Some(&cpu),
        Some(&mem),
        catalog(),
        &RightsizingConfig::default(),
    );
    assert_eq!(rec.finding, RightsizingFinding::Optimized);
}

fn world_of(inventory: Inventory) -> WorldState {
    let mut world = fixture_world();
    world.assessment = assess(&inventory, catalog());
    world.inventory = inventory;
    world
}

#[test]
fn idle_follows_trusted_advisors_rule() {
    let mut inv = base();
    inv.instances = vec![
        instance("i-idle", "m5.xlarge", "us-east-1", "running"),
        instance("i-busy-net", "m5.xlarge", "us-east-1", "running"),
    ];
    for i in &mut inv.instances {
        i.imds_v2_required = true;
        i.public_ip = None;
    }
    // 2 % CPU on both; 1 MB a day of traffic on one, 50 MB a day on the other.
    for (id, bytes_per_hour) in [("i-idle", 1e6 / 24.0), ("i-busy-net", 50e6 / 24.0)] {
        inv.metrics.push(series(id, |_| 2.0));
        inv.metrics
            .push(named(series(id, |_| bytes_per_hour / 2.0), "NetworkIn"));
        inv.metrics
            .push(named(series(id, |_| bytes_per_hour / 2.0), "NetworkOut"));
    }
    let world = world_of(inv);
    let out = optimize(
        &world,
        &plan(&world, catalog(), &PlanningConfig::default()),
        catalog(),
        &OptimizationConfig::default(),
    );
    let verdict = |id: &str| {
        out.recommendations
            .iter()
            .find(|r| r.resource.id == id)
            .map(|r| r.recommendation.finding)
            .unwrap()
    };
    assert_eq!(verdict("i-idle"), RightsizingFinding::Idle);
    assert_eq!(verdict("i-busy-net"), RightsizingFinding::Overprovisioned);
    let stop = out.changes.iter().find(|c| c.action == Action::StopInstance).unwrap();
    assert_eq!(stop.resource.id, "i-idle");
    // m5.xlarge: 0.192 × 730 = 140.16 a month saved by stopping it.
    assert!(
        (stop.monthly_saving_usd - 140.16).abs() < 1e-9,
        "{}",
        stop.monthly_saving_usd
    );
}

fn change(action: Action, id: &str, saving: f64, risk: Risk) -> Change {
    Change::new(
        action,
        ResourceRef {
            kind: ResourceKind::Ec2Instance,
            id: id.into(),
            region: "us-east-1".into(),
        },
        "instance_type",
        "m5.large".into(),
        "m5.24xlarge".into(),
        "test",
        "test".into(),
        risk,
    )
    .with_saving(saving)
}

#[test]
fn cost_increases_over_the_threshold_need_approval() {
    let production = Guardrails::default();
    let big = change(Action::ResizeInstance, "i-1", -1500.0, Risk::Low);
    let small = change(Action::ResizeInstance, "i-2", -600.0, Risk::Low);
    assert!(production.approval_reasons(&big)[0].contains("threshold $1000"));
    assert!(
        production.approval_reasons(&small).is_empty(),
        "$600 is under production's $1,000"
    );
    let development = Guardrails {
        environment: Environment::Development,
        ..Guardrails::default()
    };
    assert!(development.approval_reasons(&small)[0].contains("threshold $500"));
    let plan = allocate(vec![big, small], &production, |_| None);
    let needs: Vec<(String, bool)> = plan
        .steps
        .iter()
        .map(|s| (s.change.resource.id.clone(), s.needs_approval))
        .collect();
    assert!(
        needs.contains(&("i-1".into(), true)) && needs.contains(&("i-2".into(), false)),
        "{needs:?}"
    );
}

#[test]
fn low_autonomy_owners_need_approval_for_riskier_changes() {
    // Noguchi (RDS) has autonomy 4: enough for a low-risk change, not for a medium one.
    let guardrails = Guardrails::default();
    let mut low = change(Action::EnableRdsBackups, "db-1", 0.0, Risk::Low);
    low.resource.kind = ResourceKind::RdsInstance;
    let mut medium = change(Action::DisableRdsPublicAccess, "db-1", 0.0, Risk::Medium);
    medium.resource.kind = ResourceKind::RdsInstance;
    assert!(guardrails.approval_reasons(&low).is_empty());
    assert!(guardrails.approval_reasons(&medium)[0].contains("Noguchi (rds) has autonomy 4"));
}

/// A world with something for every rule: open groups, public buckets, old stopped instances,
/// unattached gp2 volumes, idle EIPs, an overprovisioned instance, weak RDS settings.
pub fn busy_world() -> WorldState {
    let mut world = fixture_world();
    let inv = &mut world.inventory;
    let mut old = inv.instances[0].clone();
    old.id = "i-stopped-long".into();
    old.state = "stopped".into();
    old.stopped_since = Some(world.scope.captured_at - Duration::days(45));
    old.volume_ids = vec!["vol-old".into()];
    let mut big = inv.instances[0].clone();
    big.id = "i-big".into();
    big.instance_type = "m5.2xlarge".into();
    big.volume_ids.clear();
    inv.instances.extend([old, big]);
    let mut old_vol = inv.volumes[0].clone();
    old_vol.id = "vol-old".into();
    old_vol.attached_to = vec!["i-stopped-long".into()];
    let mut loose = inv.volumes[0].clone();
    loose.id = "vol-loose".into();
    loose.volume_type = "gp2".into();
    loose.attached_to.clear();
    loose.state = "available".into();
    let mut gp2 = inv.volumes[0].clone();
    gp2.id = "vol-gp2".into();
    gp2.volume_type = "gp2".into();
    gp2.size_gib = 500;
    inv.volumes.extend([old_vol, loose, gp2]);
    inv.metrics.push(series("i-big", |h| [6.0, 8.0, 10.0][h % 3]));
    for a in &mut inv.addresses {
        a.association_id = None;
        a.instance_id = None;
    }
    world.assessment = assess(&world.inventory, catalog());
    world
}

/// (check, resource) pairs.
type Findings = BTreeSet<(String, String)>;

#[test]
fn each_security_remediation_removes_exactly_its_findings() {
    let world = busy_world();
    let plan = plan(&world, catalog(), &PlanningConfig::default());
    assert!(plan.security.len() >= 5, "{:#?}", plan.security);
    let failing = |inv: &Inventory| -> BTreeSet<(String, String)> {
        assess(inv, catalog())
            .findings
            .into_iter()
            .filter(|f| f.status == FindingStatus::Fail)
            .map(|f| (f.check_id, f.resource_id))
            .collect()
    };
    let before = failing(&world.inventory);
    for change in &plan.security {
        assert!(!change.removes_findings.is_empty(), "{change:?}");
        let mut after_inventory = world.inventory.clone();
        change.apply_to(&mut after_inventory);
        let after = failing(&after_inventory);
        let (removed, elsewhere): (Findings, Findings) = before
            .difference(&after)
            .cloned()
            .partition(|(_, resource)| *resource == change.resource.id);
        let claimed: BTreeSet<(String, String)> = change
            .removes_findings
            .iter()
            .map(|c| (c.clone(), change.resource.id.clone()))
            .collect();
        assert_eq!(removed, claimed, "{:?} on {}", change.action, change.resource.id);
        // A group's fix also fixes the port checks of the instances that use the group.
        for (check, instance) in &elsewhere {
            let uses_group = world
                .inventory
                .instances
                .iter()
                .any(|i| &i.id == instance && i.security_group_ids.contains(&change.resource.id));
            assert!(
                check.starts_with("ec2_instance_port_") && uses_group,
                "{:?} on {} removed {check} on {instance}",
                change.action,
                change.resource.id
            );
        }
        assert!(after.is_subset(&before), "{:?} added a finding", change.action);
    }
    let score_after = assess(&plan.project(&world.inventory), catalog()).security_score;
    assert!(score_after > world.assessment.security_score);
}

#[test]
fn destructive_steps_come_last_need_approval_and_have_backups() {
    let world = busy_world();
    let p = plan(&world, catalog(), &PlanningConfig::default());
    let out = optimize(&world, &p, catalog(), &OptimizationConfig::default());
    let ep = &out.execution_plan;
    let actions: BTreeSet<Action> = ep.steps.iter().map(|s| s.change.action).collect();
    for expected in [
        Action::TerminateInstance,
        Action::DeleteVolume,
        Action::ReleaseAddress,
        Action::MigrateVolumeToGp3,
        Action::ResizeInstance,
        Action::RevokeIngress,
    ] {
        assert!(actions.contains(&expected), "{expected:?} missing from {actions:?}");
    }
    let last = ep.waves.last().unwrap();
    assert_eq!(last.kind, WaveKind::Destructive);
    for step in &ep.steps {
        let destructive = step.change.is_destructive();
        assert_eq!(destructive, step.wave == last.index, "{:?}", step.change.action);
        if destructive {
            assert!(step.needs_approval && step.backup.is_some(), "{step:?}");
        }
    }
    // The stopped instance's volume goes with it, so it is not also migrated to gp3.
    assert!(!ep
        .steps
        .iter()
        .any(|s| s.change.action == Action::MigrateVolumeToGp3 && s.change.resource.id == "vol-old"));
    // Resizes: the first into a family is a canary in the first wave.
    let resize = ep
        .steps
        .iter()
        .find(|s| s.change.action == Action::ResizeInstance)
        .unwrap();
    assert!(resize.canary && ep.waves[resize.wave].kind == WaveKind::Canary);
    // m5.large would fit its CPU, but without a memory metric one step at most halves memory.
    assert_eq!(resize.change.desired, "m5.xlarge");
}

#[test]
fn deny_listed_actions_never_enter_the_plan() {
    let world = busy_world();
    let p = plan(&world, catalog(), &PlanningConfig::default());
    let mut config = OptimizationConfig::default();
    config.guardrails.deny_list.push("DeleteVolume".into());
    let ep = optimize(&world, &p, catalog(), &config).execution_plan;
    assert!(ep
        .steps
        .iter()
        .all(|s| !s.operations.contains(&"DeleteVolume".to_owned())));
    let excluded: Vec<&str> = ep.excluded.iter().map(|e| e.reason.as_str()).collect();
    assert!(excluded.iter().any(|r| r.contains("DeleteVolume")), "{excluded:?}");
    // Both the unattached volume and the terminated instance's snapshot-and-delete are out.
    assert!(ep.excluded.iter().any(|e| e.change.action == Action::DeleteVolume));
}

#[test]
fn max_changes_keeps_the_highest_priorities() {
    let world = busy_world();
    let p = plan(&world, catalog(), &PlanningConfig::default());
    let unlimited = optimize(&world, &p, catalog(), &OptimizationConfig::default()).execution_plan;
    let mut config = OptimizationConfig::default();
    config.guardrails.max_changes = Some(3);
    let limited = optimize(&world, &p, catalog(), &config).execution_plan;
    assert_eq!(limited.steps.len(), 3);
    assert_eq!(limited.excluded.len(), unlimited.steps.len() - 3);
    let worst_kept = limited.steps.iter().map(|s| s.priority).max().unwrap();
    let best_dropped = unlimited
        .steps
        .iter()
        .filter(|s| !limited.steps.iter().any(|k| k.id == s.id))
        .map(|s| s.priority)
        .min()
        .unwrap();
    assert!(worst_kept <= best_dropped);
}

#[test]
fn step_ids_come_from_content() {
    let world = busy_world();
    let ids = |w: &WorldState| -> BTreeSet<String> {
        let p = plan(w, catalog(), &PlanningConfig::default());
        optimize(w, &p, catalog(), &OptimizationConfig::default())
            .execution_plan
            .steps
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    let first = ids(&world);
    assert_eq!(first, ids(&world), "rebuilding the plan gives the same ids");
    // An unrelated new resource adds steps but changes none of the others' ids.
    let mut grown = world.clone();
    let mut extra = grown.inventory.instances[0].clone();
    extra.id = "i-new".into();
    grown.inventory.instances.push(extra);
    assert!(first.is_subset(&ids(&grown)));
    assert_eq!(first.len(), first.iter().collect::<BTreeSet<_>>().len());
}

#[test]
fn the_cost_plan_projects_its_savings_onto_the_assessed_total() {
    let world = busy_world();
    let p = plan(&world, catalog(), &PlanningConfig::default());
    let mut inv = world.inventory.clone();
    for c in &p.cost {
        c.apply_to(&mut inv);
    }
    let after = assess(&inv, catalog()).monthly_total_usd;
    let claimed: f64 = p.cost.iter().map(|c| c.monthly_saving_usd).sum();
    assert!(claimed > 0.0);
    assert!(
        (world.assessment.monthly_total_usd - after - claimed).abs() < 0.05,
        "{claimed} vs {after}"
    );
}

/// A world built from arbitrary numbers: instances of any catalog type (or an unknown one) at
/// any CPU level, swing and history length; volumes of several types, attached or not; idle
/// Elastic IPs.
fn arbitrary_world(instances: &[(u8, u8, u8, u16, bool)], volumes: &[(u8, u16, bool)], idle_eips: u8) -> WorldState {
    let types: Vec<String> = catalog().ec2.keys().cloned().chain(["x9.unknown".to_owned()]).collect();
    let mut inv = base();
    for (k, &(ty, level, swing, hours, running)) in instances.iter().take(12).enumerate() {
        let id = format!("i-{k}");
        let ty = &types[usize::from(ty) % types.len()];
        let mut i = instance(&id, ty, "us-east-1", if running { "running" } else { "stopped" });
        i.stopped_since = None;
        inv.instances.push(i);
        let (level, swing) = (f64::from(level % 101), f64::from(swing % 61));
        let values: Vec<f64> = (0..usize::from(hours) % HOURS)
            .map(|h| (level + swing * ((h % 24) as f64 / 23.0)).min(100.0))
            .collect();
        inv.metrics.push(cpu(&id, &values));
    }
    let template = fixture_world().inventory.volumes.remove(0);
    for (k, &(ty, size, attached)) in volumes.iter().take(8).enumerate() {
        let ty = ["gp2", "gp3", "io1", "st1"][usize::from(ty) % 4];
        let mut v = template.clone();
        v.id = format!("vol-{k}");
        v.volume_type = ty.into();
        v.size_gib = u32::from(size % 2000) + 1;
        v.iops = (ty == "io1").then_some(3000);
        if !attached {
            v.attached_to.clear();
            v.state = "available".into();
        }
        inv.volumes.push(v);
    }
    let eip = fixture_world().inventory.addresses.remove(0);
    for k in 0..idle_eips % 4 {
        let mut a = eip.clone();
        a.allocation_id = format!("eipalloc-{k}");
        a.association_id = None;
        inv.addresses.push(a);
    }
    world_of(inv)
}

type Instances = Vec<(u8, u8, u8, u16, bool)>;
type Volumes = Vec<(u8, u16, bool)>;

/// θ2's cost rules and θ3's downsizes and stops never raise the cost, change by change or all
/// together.
#[test]
fn cost_rules_never_raise_cost() {
    fn property(instances: Instances, volumes: Volumes, idle_eips: u8) -> TestResult {
        let world = arbitrary_world(&instances, &volumes, idle_eips);
        let p = plan(&world, catalog(), &PlanningConfig::default());
        let out = optimize(&world, &p, catalog(), &OptimizationConfig::default());
        let downsizes = out
            .changes
            .iter()
            .filter(|c| c.action == Action::StopInstance || c.rationale.starts_with("Overprovisioned"));
        let mut inv = world.inventory.clone();
        for c in p.cost.iter().chain(downsizes) {
            if c.monthly_saving_usd < 0.0 {
                return TestResult::error(format!("{:?} saves {}", c.action, c.monthly_saving_usd));
            }
            c.apply_to(&mut inv);
        }
        TestResult::from_bool(assess(&inv, catalog()).monthly_total_usd <= world.assessment.monthly_total_usd + 1e-6)
    }
    QuickCheck::new()
        .tests(64)
        .quickcheck(property as fn(Instances, Volumes, u8) -> TestResult);
}

/// Right-sizing only ever proposes types the catalog knows.
#[test]
fn rightsizing_targets_are_always_in_the_catalog() {
    fn property(instances: Instances, volumes: Volumes) -> TestResult {
        let world = arbitrary_world(&instances, &volumes, 0);
        let p = plan(&world, catalog(), &PlanningConfig::default());
        let out = optimize(&world, &p, catalog(), &OptimizationConfig::default());
        for r in &out.recommendations {
            if let Some(t) = &r.recommendation.target_type {
                if !catalog().ec2.contains_key(t) && !catalog().rds.contains_key(t) {
                    return TestResult::error(format!("{t} is not in the catalog"));
                }
            }
            if r.recommendation.current_type == "x9.unknown"
                && r.recommendation.finding != RightsizingFinding::InsufficientData
            {
                return TestResult::error("an unknown type got a verdict");
            }
        }
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(64)
        .quickcheck(property as fn(Instances, Volumes) -> TestResult);
}

#[test]
fn the_execution_plan_round_trips_and_matches_its_committed_schema() {
    let world = busy_world();
    let p = plan(&world, catalog(), &PlanningConfig::default());
    let ep = optimize(&world, &p, catalog(), &OptimizationConfig::default()).execution_plan;
    let text = serde_json::to_string_pretty(&ep).unwrap();
    let back: miyabi_aws::plan::execution::ExecutionPlan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, ep);
    let path = super::support::repo_root().join("schema/execution_plan.schema.json");
    let generated =
        serde_json::to_string_pretty(&miyabi_aws::plan::execution::ExecutionPlan::json_schema()).unwrap() + "\n";
    if std::env::var_os("MIYABI_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).expect("schema/execution_plan.schema.json is committed");
    assert_eq!(committed, generated, "run with MIYABI_BLESS=1 to regenerate the schema");
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&serde_json::to_value(&ep).unwrap()));
}
