//! A phase of your own in the Rust cycle: a θ2 that plans like the built-in one, then drops
//! every change to instances tagged `Owner=platform`, which that team manages by hand. θ3 then
//! optimizes the rest as usual.
//!
//! ```text
//! cargo run --release --example custom_phase -- world_state_0.json
//! ```
//!
//! It reads a world state (for example one `miyabi-aws discover` wrote) and plans offline.

use std::sync::Arc;

use async_trait::async_trait;
use miyabi_aws::phases::planning::{self, PlanningConfig};
use miyabi_aws::phases::Optimization;
use miyabi_aws::plan::execution::ExecutionPlan;
use miyabi_aws::world::WorldState;
use miyabi_aws::{Cycle, CycleContext, Phase, PhaseId, PhaseOutcome, Result};

/// θ2 without the platform team's instances.
struct SparePlatform;

#[async_trait]
impl Phase for SparePlatform {
    fn id(&self) -> PhaseId {
        PhaseId::Planning
    }

    fn name(&self) -> String {
        "planning (sparing Owner=platform)".into()
    }

    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let world = ctx.artefacts.require::<WorldState>("planning")?;
        let platform: Vec<String> = world
            .inventory
            .instances
            .iter()
            .filter(|i| i.tags.get("Owner").is_some_and(|o| o == "platform"))
            .map(|i| i.id.clone())
            .collect();
        let mut plan = planning::plan(world, &ctx.catalog, &PlanningConfig::default());
        plan.cost.retain(|c| !platform.contains(&c.resource.id));
        plan.security.retain(|c| !platform.contains(&c.resource.id));
        let applicable = plan.changes().count();
        ctx.artefacts.put(plan);
        Ok(PhaseOutcome::planned(applicable))
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: custom_phase WORLD_STATE.json")?;
    let mut ctx = CycleContext::default();
    ctx.artefacts.put(WorldState::load(&path)?);
    let report = Cycle::new()
        .with_phase(Arc::new(SparePlatform))
        .with_phase(Arc::new(Optimization::default()))
        .with_max_iterations(1)
        .run(&mut ctx)
        .await;
    println!("{}", report.stop);
    if let Some(plan) = ctx.artefacts.get::<ExecutionPlan>() {
        println!("{} step(s) in {} wave(s)", plan.steps.len(), plan.waves.len());
        for step in plan.steps.iter().take(10) {
            println!("  {} {:?} {}", step.id, step.change.action, step.change.resource.id);
        }
    }
    Ok(())
}
