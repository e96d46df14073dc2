//! The whole loop, θ1 to θ6, on a small seeded estate whose metrics come from the workload
//! simulator: it converges after at least two iterations with real changes, cost down and score
//! up, and a second run on the same estate changes nothing.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use miyabi_aws::knowledge::LearnedHeadroom;
use miyabi_aws::phases::deployment::{Approval, WaitPolicy};
use miyabi_aws::phases::learning::KnowledgeBase;
use miyabi_aws::phases::{
    Deployment, DeploymentConfig, Learning, LearningConfig, Monitoring, MonitoringConfig, Optimization, Planning,
};
use miyabi_aws::world::WorldState;
use miyabi_aws::{Cycle, CycleContext, StopReason};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::seed::{seed_demo, vcpus, DemoSpec};
use miyabi_aws_testkit::simulator::WorkloadSimulator;
use miyabi_aws_testkit::workload::Pattern;

use super::support::{harness, mutating, tmp_dir, Harness};

/// θ1–θ6 through the proxy, applying every step (`--apply --approve all`).
fn cycle(h: &Harness, simulator: Arc<WorkloadSimulator>) -> Cycle {
    let deployment = Deployment::new(vec![h.region.to_owned()])
        .with_config(DeploymentConfig::applying(Approval::All))
        .with_wait(WaitPolicy {
            poll: Duration::from_millis(20),
            timeout: Duration::from_secs(60),
        });
    Cycle::new()
        .with_phase(Arc::new(h.discovery()))
        .with_phase(Arc::new(Planning::default()))
        .with_phase(Arc::new(Optimization::default()))
        .with_phase(Arc::new(deployment))
        .with_phase(Arc::new(Monitoring::new(MonitoringConfig::default())))
        .with_phase(Arc::new(Learning::new(LearningConfig::default())))
        .with_hook(simulator)
        .with_max_iterations(6)
}

fn context(h: &Harness, out: &std::path::Path, simulator: &WorkloadSimulator) -> CycleContext {
    let kb = KnowledgeBase::open(out.join("knowledge.redb")).expect("knowledge base");
    h.context()
        .with_out_dir(out)
        .with_clock(simulator.clock())
        .with_knowledge_base(Arc::new(kb))
        .expect("knowledge base readable")
}

fn learned(ctx: &CycleContext) -> BTreeMap<String, f64> {
    ctx.artefacts
        .get::<LearnedHeadroom>()
        .map(|h| h.0.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_cycle_converges_and_a_second_run_changes_nothing() {
    let h = harness("us-west-2").await;
    let endpoints = LocalAws::shared().expect("emulators");
    let spec = DemoSpec {
        seed: 1,
        instances: 14,
        regions: vec![h.region.to_owned()],
        ..DemoSpec::default()
    };
    let estate = seed_demo(&endpoints, &spec).await.expect("seeding");
    let saturated: Vec<_> = estate
        .instances
        .iter()
        .filter(|i| i.workload.pattern == Pattern::Saturated)
        .collect();
    assert!(!saturated.is_empty(), "the fixture needs an under-provisioned instance");
    let simulator = Arc::new(WorkloadSimulator::new(
        endpoints.clone(),
        spec.clone(),
        &estate,
        estate.metrics_until,
    ));
    let out = tmp_dir("full-cycle");

    let mut ctx = context(&h, &out, &simulator);
    let report = cycle(&h, simulator.clone()).run(&mut ctx).await;
    assert!(report.converged(), "{}", report.stop);
    assert!(
        matches!(report.stop, StopReason::Converged { rule } if rule.contains("no change that may be applied")),
        "{}",
        report.stop
    );
    let with_changes = report
        .iterations
        .iter()
        .filter(|it| it.applied_changes.unwrap_or(0) > 0)
        .count();
    assert!(with_changes >= 2, "iterations with changes: {with_changes}");
    assert_eq!(report.iterations.last().map(|it| it.applied_changes), Some(Some(0)));
    let first = report.iterations[0].world.expect("World0");
    let last = report.iterations.last().and_then(|it| it.world).expect("World_final");
    assert!(
        last.monthly_cost_usd < first.monthly_cost_usd,
        "cost {} → {}",
        first.monthly_cost_usd,
        last.monthly_cost_usd
    );
    assert!(
        last.security_score > first.security_score,
        "score {} → {}",
        first.security_score,
        last.security_score
    );
    for it in &report.iterations {
        assert!(out.join(format!("world_state_{}.json", it.index)).exists());
    }
    // A saturated instance hid its demand behind 100% CPU: the loop sized it up twice, the
    // second time from the metrics the simulator published for its first new type.
    let final_world = WorldState::load(out.join(format!("world_state_{}.json", report.iterations.len() - 1)))
        .expect("final world state");
    for seeded in &saturated {
        let now = final_world
            .inventory
            .instances
            .iter()
            .find(|i| i.id == seeded.id)
            .expect("instance still there");
        assert_eq!(
            vcpus(&now.instance_type),
            4 * vcpus(&seeded.instance_type),
            "{} went {} → {}",
            seeded.id,
            seeded.instance_type,
            now.instance_type
        );
    }
    let learned_headroom = learned(&ctx);
    assert!(
        !learned_headroom.is_empty(),
        "the first upsizes breached the CPU alarm, so some family gets more headroom"
    );
    drop(ctx); // closes the knowledge base

    // The second run: the same estate, the same knowledge base, reopened from disk.
    h.proxy.reset_log();
    let mut again = context(&h, &out, &simulator);
    assert_eq!(learned(&again), learned_headroom, "the headroom survives the run");
    let second = cycle(&h, simulator.clone()).run(&mut again).await;
    assert!(second.converged(), "{}", second.stop);
    assert_eq!(second.iterations.len(), 1, "converges at once");
    assert_eq!(second.iterations[0].applied_changes, Some(0));
    assert_eq!(
        second.iterations[0].applicable_changes, 0,
        "nothing left that may be applied"
    );
    assert_eq!(mutating(&h.proxy.requests()), Vec::<String>::new());
}
