//! The whole loop, θ1 to θ6, on a small seeded estate whose metrics come from the workload
//! simulator: it converges after at least two iterations with real changes, cost down and score
//! up, and a second run on the same estate changes nothing.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use miyabi_aws::assessment::{monthly_cost, FindingStatus, Severity};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::knowledge::LearnedHeadroom;
use miyabi_aws::phases::deployment::{Approval, WaitPolicy};
use miyabi_aws::phases::learning::KnowledgeBase;
use miyabi_aws::phases::{
    Deployment, DeploymentConfig, Learning, LearningConfig, Monitoring, MonitoringConfig, Optimization, Planning,
};
use miyabi_aws::run_report::RunRecorder;
use miyabi_aws::world::WorldState;
use miyabi_aws::{Cycle, CycleContext, StopReason};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::seed::{seed_demo, vcpus, DemoSpec};
use miyabi_aws_testkit::simulator::WorkloadSimulator;
use miyabi_aws_testkit::workload::Pattern;

use super::browser;
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
    let recorder = Arc::new(RunRecorder::new());
    let report = cycle(&h, simulator.clone())
        .with_hook(recorder.clone())
        .run(&mut ctx)
        .await;
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
    // Approving every step buys a standby for each single-AZ database (Multi-AZ costs money
    // by design): the rest of what the loop did saves.
    let world0 = WorldState::load(out.join("world_state_0.json")).expect("World0");
    let final_world = WorldState::load(out.join(format!("world_state_{}.json", report.iterations.len() - 1)))
        .expect("final world state");
    let single_az: Vec<&str> = world0
        .inventory
        .db_instances
        .iter()
        .filter(|d| !d.multi_az)
        .map(|d| d.id.as_str())
        .collect();
    assert!(!single_az.is_empty(), "the fixture needs a single-AZ database");
    let mut without_standbys = final_world.inventory.clone();
    for d in &mut without_standbys.db_instances {
        if single_az.contains(&d.id.as_str()) {
            assert!(d.multi_az, "{} got its standby", d.id);
            d.multi_az = false;
        }
    }
    let saved_cost = monthly_cost(&without_standbys, PriceCatalog::built_in());
    assert!(
        saved_cost < first.monthly_cost_usd,
        "cost {} → {} ({saved_cost} without the standbys)",
        first.monthly_cost_usd,
        last.monthly_cost_usd
    );
    // Every volume in the instances' places is encrypted, and the volumes replaced are gone.
    assert!(
        final_world.inventory.volumes.iter().all(|v| v.encrypted),
        "{:#?}",
        final_world
            .inventory
            .volumes
            .iter()
            .filter(|v| !v.encrypted)
            .collect::<Vec<_>>()
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
    let page = recorder
        .write(&report, &mut ctx.output)
        .expect("the report renders")
        .expect("HTML is a default format");
    the_report_reads_back_in_chromium(&page, &out, report.iterations.len());
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

/// The run's `report.html` in headless Chromium: it loads with no console error and no request
/// but itself, its charts read back as the world states' figures, the severity filter changes
/// the rows, and a screenshot is saved beside it.
fn the_report_reads_back_in_chromium(page: &std::path::Path, out: &std::path::Path, iterations: usize) {
    let worlds: Vec<WorldState> = (0..iterations)
        .map(|i| WorldState::load(out.join(format!("world_state_{i}.json"))).expect("world state"))
        .collect();
    let latest = worlds.last().expect("a world");
    let mut tab = browser::Page::open(page);
    let labels = |tab: &mut browser::Page, chart: &str| -> Vec<String> {
        let script = format!(
            "Array.from(document.querySelectorAll('#chart-{chart} svg text[font-weight=bold]')).map(t => t.textContent.trim())"
        );
        serde_json::from_value(tab.eval(&script)).expect("labels")
    };
    let figures = |f: &dyn Fn(&WorldState) -> Option<f64>| -> Vec<String> {
        worlds.iter().filter_map(f).map(|v| format!("{v:.2}")).collect()
    };
    assert_eq!(
        labels(&mut tab, "cost"),
        figures(&|w| Some(w.assessment.monthly_total_usd))
    );
    assert_eq!(
        labels(&mut tab, "score"),
        figures(&|w| Some(w.assessment.security_score))
    );
    assert_eq!(
        labels(&mut tab, "utilisation"),
        figures(&|w| w.assessment.utilisation_percent)
    );
    // Cost by service adds up to the latest world's total.
    let services: f64 = labels(&mut tab, "services")
        .iter()
        .map(|v| v.parse::<f64>().expect("a number"))
        .sum();
    assert!(
        (services - latest.assessment.monthly_total_usd).abs() < 0.05,
        "{services} vs {}",
        latest.assessment.monthly_total_usd
    );
    // Findings by severity: the latest world's failing security findings.
    let failing: Vec<_> = latest
        .assessment
        .findings
        .iter()
        .filter(|f| f.status == FindingStatus::Fail && f.is_security())
        .collect();
    let order = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Informational,
    ];
    let per_severity: Vec<String> = order
        .iter()
        .map(|s| failing.iter().filter(|f| f.severity == *s).count().to_string())
        .collect();
    assert_eq!(labels(&mut tab, "severity"), per_severity);
    // The filter: all rows, then only one severity's.
    let visible = "document.querySelectorAll('#findings tbody tr:not([hidden])').length";
    assert_eq!(tab.eval(visible), failing.len());
    let (severity, count) = order
        .iter()
        .map(|s| (*s, failing.iter().filter(|f| f.severity == *s).count()))
        .find(|(_, n)| *n > 0 && *n < failing.len())
        .expect("the latest world fails checks of two severities");
    let name = serde_json::to_value(severity).unwrap();
    tab.eval(&format!(
        "(() => {{ const s = document.getElementById('severity-filter'); s.value = {name}; s.dispatchEvent(new Event('change')); }})()"
    ));
    assert_eq!(tab.eval(visible), count, "only the {name} findings stay");
    // Each right-sized instance has its chart, and its type changed over the run.
    let resized: Vec<String> = serde_json::from_value(
        tab.eval("Array.from(document.querySelectorAll('figure.resized')).map(f => f.dataset.instance)"),
    )
    .unwrap();
    assert!(!resized.is_empty(), "the run resized instances");
    let type_in = |w: &WorldState, id: &str| {
        w.inventory
            .instances
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.instance_type.clone())
    };
    for id in &resized {
        assert_ne!(type_in(&worlds[0], id), type_in(latest, id), "{id} was resized");
    }
    // The recommended purchases, recorded and never bought, each with a positive saving.
    let savings: Vec<String> =
        serde_json::from_value(tab.eval(
            "Array.from(document.querySelectorAll('#purchases tbody tr td:nth-child(4)')).map(t => t.textContent)",
        ))
        .unwrap();
    assert!(!savings.is_empty(), "the run recommends purchases");
    assert!(
        savings.iter().all(|s| s.parse::<f64>().is_ok_and(|v| v > 0.0)),
        "{savings:?}"
    );
    let summary: String =
        serde_json::from_value(tab.eval("document.getElementById('purchases-summary').textContent")).unwrap();
    assert!(summary.contains("not bought"), "{summary}");
    let png = tab.screenshot(&out.join("report.png"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot of the page"
    );
    assert_eq!(tab.errors(), Vec::<String>::new(), "no console error");
    let own = format!("file://{}", page.canonicalize().unwrap().display());
    assert_eq!(tab.requests(), vec![own], "no request but the page itself");
}
