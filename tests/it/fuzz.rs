//! Fuzzing of every loader that reads outside input, within a fixed time budget, and a property
//! test of θ2 and θ3 over generated valid world states.
//!
//! The fuzzing is uninstrumented and runs in the normal test build: coverage-guided fuzzing
//! (cargo-fuzz) recompiles everything a target links with instrumentation, and every loader
//! here sits in a crate that links the AWS SDK (about 15 minutes more per cold build). Instead
//! each target starts from its committed corpus (`fuzz/corpus/<target>/`) and mutates it both
//! as JSON values (a node replaced by another type, an extreme number, an emptied or
//! reordered array, a key dropped) and as bytes (flips, cuts, splices, JSON tokens), so that
//! inputs reach past the parser into validation and the phases. Whatever loads is run through
//! θ2 and θ3 (and the renderers). A panic fails the test, and the input is written to
//! `$CARGO_TARGET_DIR/fuzz-failures/` with the seed that reproduces it.
//!
//! `MIYABI_FUZZ_SECONDS` sets the budget per target (default 2; `.ci/run` gives 10);
//! `MIYABI_FUZZ_SEED` replays a run.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use miyabi_aws::assessment::assess;
use miyabi_aws::bridge::{decode_line, merge_region};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::phases::optimization::{optimize, OptimizationConfig};
use miyabi_aws::phases::planning::{plan, PlanningConfig};
use miyabi_aws::plan::execution::ExecutionPlan;
use miyabi_aws::world::{Inventory, WorldState};
use serde_json::{json, Value};

/// SplitMix64: small, fast and good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn budget() -> Duration {
    let seconds = std::env::var("MIYABI_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(seconds.max(0.1))
}

fn seed() -> u64 {
    std::env::var("MIYABI_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(1))
        })
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "the corpus of {target} is empty");
    seeds
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e308",
    "-1e308",
    "1e999",
    "18446744073709551616",
    "-9223372036854775809",
    "0.0000001",
    "\"\"",
    "\"\\u0000\"",
    "\"ü\"",
    "[]",
    "{}",
];

fn mutate_bytes(rng: &mut Rng, input: &mut Vec<u8>) {
    match rng.below(5) {
        0 if !input.is_empty() => {
            let k = rng.below(input.len());
            input[k] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let from = rng.below(input.len());
            let to = (from + 1 + rng.below(64)).min(input.len());
            input.drain(from..to);
        }
        2 if !input.is_empty() => {
            let from = rng.below(input.len());
            let to = (from + 1 + rng.below(256)).min(input.len());
            let piece = input[from..to].to_vec();
            let at = rng.below(input.len());
            input.splice(at..at, piece);
        }
        3 => {
            let at = rng.below(input.len() + 1);
            let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
            input.splice(at..at, token.iter().copied());
        }
        _ => input.truncate(rng.below(input.len() + 1)),
    }
}

/// A node of `value`, reached by a random walk from the root.
fn pick_node<'a>(rng: &mut Rng, value: &'a mut Value) -> &'a mut Value {
    let mut node = value;
    loop {
        let descend = rng.chance(80);
        let next = match node {
            Value::Array(items) if descend && !items.is_empty() => {
                let k = rng.below(items.len());
                Some(k)
            }
            Value::Object(map) if descend && !map.is_empty() => Some(rng.below(map.len())),
            _ => None,
        };
        let Some(k) = next else { return node };
        node = match node {
            Value::Array(items) => &mut items[k],
            Value::Object(map) => map.values_mut().nth(k).expect("k < len"),
            _ => unreachable!("only arrays and objects have children"),
        };
    }
}

fn extreme(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(i64::MIN),
        4 => json!(1e308),
        5 => json!(-1e-308),
        6 => json!(null),
        7 => json!(""),
        8 => json!("running"),
        9 => json!([]),
        10 => json!({}),
        _ => json!(true),
    }
}

fn mutate_value(rng: &mut Rng, value: &mut Value) {
    let node = pick_node(rng, value);
    let op = rng.below(6);
    if op == 4 {
        if let Some(f) = node.as_f64() {
            *node = json!(f * [-1.0, 0.0, 1e6, 1e-6, 2.0][rng.below(5)]);
            return;
        }
    }
    match &mut *node {
        Value::Array(items) if op == 0 && !items.is_empty() => {
            items.remove(rng.below(items.len()));
        }
        Value::Array(items) if op == 1 && !items.is_empty() => {
            let copy = items[rng.below(items.len())].clone();
            items.insert(rng.below(items.len() + 1), copy);
        }
        Value::Array(items) if op == 2 && items.len() > 1 => {
            let (a, b) = (rng.below(items.len()), rng.below(items.len()));
            items.swap(a, b);
        }
        Value::Object(map) if op == 3 && !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().expect("k < len");
            map.remove(&key);
        }
        _ => *node = extreme(rng),
    }
}

/// One input, derived from a corpus entry by a few mutations.
fn derive(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let base = &seeds[rng.below(seeds.len())];
    let rounds = 1 + rng.below(4);
    if rng.chance(70) {
        if let Ok(mut value) = serde_json::from_slice::<Value>(base) {
            for _ in 0..rounds {
                mutate_value(rng, &mut value);
            }
            return serde_json::to_vec(&value).expect("a Value serialises");
        }
    }
    let mut bytes = base.clone();
    for _ in 0..rounds {
        mutate_bytes(rng, &mut bytes);
    }
    bytes
}

/// Runs `target` on mutated inputs for the budget; returns (inputs run, inputs that loaded).
fn fuzz(name: &str, target: impl Fn(&[u8]) -> bool) -> (u64, u64) {
    let seeds = corpus(name);
    for (k, s) in seeds.iter().enumerate() {
        assert!(target(s), "corpus entry {k} of {name} must load");
    }
    let start_seed = seed();
    let mut rng = Rng(start_seed);
    let deadline = Instant::now() + budget();
    let (mut runs, mut loaded) = (0, 0);
    while Instant::now() < deadline {
        let input = derive(&mut rng, &seeds);
        runs += 1;
        match catch_unwind(AssertUnwindSafe(|| target(&input))) {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(_) => {
                let file = save_failure(&format!("{name}-{start_seed}-{runs}.json"), &input);
                panic!(
                    "{name}: input {runs} panicked (MIYABI_FUZZ_SEED={start_seed}); saved to {}",
                    file.display()
                );
            }
        }
    }
    eprintln!("fuzz {name}: {runs} inputs, {loaded} loaded, seed {start_seed}");
    (runs, loaded)
}

/// θ2, θ3 and the renderers on a world that loaded.
fn phases_on(world: &WorldState, catalog: &PriceCatalog) {
    let planned = plan(world, catalog, &PlanningConfig::default());
    let out = optimize(world, &planned, catalog, &OptimizationConfig::default());
    out.execution_plan
        .validate()
        .unwrap_or_else(|v| panic!("θ3 wrote an invalid execution plan: {v}"));
    let changes: Vec<_> = out.execution_plan.steps.iter().map(|s| &s.change).collect();
    let _ = miyabi_aws::iac::render(world, changes);
    let times: BTreeMap<String, i64> = world.inventory.instances.iter().map(|i| (i.id.clone(), 0)).collect();
    let cut = world.since_changes(&times);
    let _ = optimize(&cut, &planned, catalog, &OptimizationConfig::default());
}

/// Where a failing input is kept for replay: `$CARGO_TARGET_DIR/fuzz-failures/<file>`.
fn save_failure(file: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(&std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into())).join("fuzz-failures");
    std::fs::create_dir_all(&dir).ok();
    let path = dir.join(file);
    std::fs::write(&path, input).ok();
    path
}

/// The corpus's demo world, as text.
fn demo_world_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/world_state/demo.json")).unwrap()
}

fn demo_world() -> WorldState {
    WorldState::from_json(&demo_world_text()).unwrap()
}

#[test]
fn world_state_documents() {
    let catalog = PriceCatalog::built_in();
    let (runs, loaded) = fuzz("world_state", |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return false;
        };
        match WorldState::from_json(text) {
            Ok(world) => {
                phases_on(&world, catalog);
                let _ = assess(&world.inventory, catalog);
                true
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        }
    });
    assert!(runs > 0 && loaded > 0, "{runs} runs, {loaded} loaded");
}

#[test]
fn execution_plan_documents() {
    let world = demo_world();
    let (runs, loaded) = fuzz("execution_plan", |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return false;
        };
        let Ok(plan) = ExecutionPlan::from_json(text) else {
            return false;
        };
        let approved = plan.steps.iter().map(|s| s.id.clone()).collect();
        let _ = plan.applicable(&approved).count();
        let _ = miyabi_aws::iac::render(&world, plan.steps.iter().map(|s| &s.change));
        let _ = plan.to_json();
        true
    });
    assert!(runs > 0 && loaded > 0, "{runs} runs, {loaded} loaded");
}

#[test]
fn json_rpc_lines_of_a_legacy_script() {
    let catalog = PriceCatalog::built_in();
    let (runs, _) = fuzz("rpc_line", |input| {
        match decode_line(input.trim_ascii(), 1, "fuzz.py") {
            Some(Ok(result)) => {
                let mut inventory = Inventory::default();
                merge_region(&mut inventory, result.output.world_state.inventory);
                let _ = assess(&inventory, catalog);
                true
            }
            Some(Err(e)) => !e.to_string().is_empty(),
            None => false,
        }
    });
    assert!(runs > 0);
}

#[test]
fn price_catalogs() {
    let world = demo_world();
    let (runs, loaded) = fuzz("catalog", |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return false;
        };
        let Ok(catalog) = PriceCatalog::from_json(text) else {
            return false;
        };
        let mut world = world.clone();
        world.assessment = assess(&world.inventory, &catalog);
        phases_on(&world, &catalog);
        true
    });
    assert!(runs > 0 && loaded > 0, "{runs} runs, {loaded} loaded");
}

/// A valid world of random resources, from the demo corpus's resources as templates: random
/// ids, types (some not in the catalog), states and settings, and series of random length,
/// gaps and values.
fn generated_world(rng: &mut Rng, template: &Value, catalog: &PriceCatalog) -> WorldState {
    let mut doc = template.clone();
    let types: Vec<&String> = catalog.ec2.keys().collect();
    let classes: Vec<&String> = catalog.rds.keys().collect();
    let regions = ["us-east-1", "eu-central-1", "ap-south-1", "nowhere-1"];
    let inventory = doc["inventory"].as_object_mut().expect("an inventory");
    let mut metrics = Vec::new();
    let end = 1_780_000_000 / 3600 * 3600;
    let mut series = |rng: &mut Rng, id: &str, region: &str, namespace: &str, metric: &str, stat: &str| {
        let n = rng.below(500);
        let mut t = end - 3600 * i64::try_from(n + rng.below(48)).unwrap_or(0);
        let mut timestamps = Vec::with_capacity(n);
        for _ in 0..n {
            t += if rng.chance(90) {
                3600
            } else {
                1 + i64::try_from(rng.below(90_000)).unwrap_or(0)
            };
            timestamps.push(t);
        }
        let scale = [1.0, 100.0, 1e6, 1e12][rng.below(4)];
        let values: Vec<f64> = (0..n)
            .map(|_| {
                if rng.chance(5) {
                    0.0
                } else {
                    (rng.next() % 10_000) as f64 / 10_000.0 * scale
                }
            })
            .collect();
        let period = [60, 3600, 86_400][rng.below(3)];
        metrics.push(json!({
            "resource_id": id, "region": region, "namespace": namespace, "metric_name": metric,
            "dimensions": {}, "stat": stat, "period_seconds": period,
            "timestamps": timestamps, "values": values
        }));
    };
    let pick = |kind: &str| template["inventory"][kind].as_array().cloned().unwrap_or_default();
    let mut instances = Vec::new();
    for k in 0..rng.below(40) {
        let mut i = pick("instances").first().cloned().unwrap_or(json!({}));
        let id = format!("i-{k:08x}");
        let region = regions[rng.below(regions.len())];
        i["id"] = json!(id);
        i["region"] = json!(region);
        i["instance_type"] = if rng.chance(90) {
            json!(types[rng.below(types.len())])
        } else {
            json!("x9.mega")
        };
        i["state"] = json!(["running", "running", "stopped", "pending", "terminated"][rng.below(5)]);
        i["imds_v2_required"] = json!(rng.chance(50));
        i["volume_ids"] = json!([]);
        for metric in ["CPUUtilization", "NetworkIn", "NetworkOut", "mem_used_percent"] {
            if rng.chance(85) {
                series(rng, &id, region, "AWS/EC2", metric, "Average");
            }
        }
        instances.push(i);
    }
    let mut volumes = Vec::new();
    for k in 0..rng.below(20) {
        let mut v = pick("volumes").first().cloned().unwrap_or(json!({}));
        v["id"] = json!(format!("vol-{k:08x}"));
        v["region"] = json!(regions[rng.below(regions.len())]);
        v["volume_type"] = json!(["gp2", "gp3", "io1", "st1", "standard", "zz"][rng.below(6)]);
        v["size_gib"] = json!(1 + rng.below(16_384));
        v["attached_to"] = json!([]);
        v["state"] = json!(["available", "in-use"][rng.below(2)]);
        volumes.push(v);
    }
    let mut dbs = Vec::new();
    for k in 0..rng.below(10) {
        let mut d = pick("db_instances").first().cloned().unwrap_or(json!({}));
        let id = format!("db-{k}");
        let region = regions[rng.below(regions.len())];
        d["id"] = json!(id);
        d["region"] = json!(region);
        d["class"] = if rng.chance(90) {
            json!(classes[rng.below(classes.len())])
        } else {
            json!("db.x9.mega")
        };
        d["publicly_accessible"] = json!(rng.chance(50));
        for metric in ["CPUUtilization", "DatabaseConnections"] {
            if rng.chance(80) {
                series(rng, &id, region, "AWS/RDS", metric, "Average");
            }
        }
        dbs.push(d);
    }
    inventory.insert("instances".into(), Value::Array(instances));
    inventory.insert("volumes".into(), Value::Array(volumes));
    inventory.insert("db_instances".into(), Value::Array(dbs));
    inventory.insert("metrics".into(), Value::Array(metrics));
    let mut world: WorldState =
        serde_json::from_value(doc).unwrap_or_else(|e| panic!("the generator built an unreadable world: {e}"));
    world.assessment = assess(&world.inventory, catalog);
    world
}

#[test]
fn theta2_and_theta3_never_panic_on_a_valid_world() {
    let catalog = PriceCatalog::built_in();
    let template: Value = serde_json::from_str(&demo_world_text()).unwrap();
    let start_seed = seed();
    let mut rng = Rng(start_seed);
    let deadline = Instant::now() + budget();
    let mut worlds = 0;
    while Instant::now() < deadline {
        let world = generated_world(&mut rng, &template, catalog);
        world
            .validate()
            .unwrap_or_else(|e| panic!("the generator built an invalid world (MIYABI_FUZZ_SEED={start_seed}): {e}"));
        let outcome = catch_unwind(AssertUnwindSafe(|| phases_on(&world, catalog)));
        if outcome.is_err() {
            let file = save_failure(
                &format!("valid-world-{start_seed}-{worlds}.json"),
                world.to_json().as_bytes(),
            );
            panic!(
                "θ2/θ3 panicked on a valid world (MIYABI_FUZZ_SEED={start_seed}); saved to {}",
                file.display()
            );
        }
        worlds += 1;
    }
    eprintln!("property θ2/θ3: {worlds} valid worlds, seed {start_seed}");
    assert!(worlds > 0);
}
