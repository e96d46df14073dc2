import time

import pytest

import miyabi_aws


class Planner:
    """A θ2 written in Python: counts what discovery found and proposes nothing."""

    name = "planning"

    def __init__(self):
        self.seen = []

    def run(self, context):
        time.sleep(0.05)
        self.seen.append((context.iteration, context.world.resource_count))
        context.applicable_changes = 0


class LegacyLimitExceeded(RuntimeError):
    pass


class Exploding:
    name = "legacy tagger"
    theta = 2

    def run(self, context):
        raise LegacyLimitExceeded("tag quota reached for i-0123")


def test_a_python_phase_runs_in_the_rust_cycle_and_is_timed(regions, tmp_path):
    planner = Planner()
    cycle = miyabi_aws.Cycle([miyabi_aws.Discovery(regions), planner])
    assert cycle.phases == ["discovery (rust)", "planning"]
    report = cycle.run(out_dir=tmp_path)
    assert report.converged, report.stop
    assert report.world is not None and planner.seen == [(0, report.world.resource_count)]
    phases = report.iterations[0]["phases"]
    assert [(p["theta"], p["name"]) for p in phases] == [(1, "discovery (rust)"), (2, "planning")]
    assert phases[1]["duration_s"] >= 0.05 and phases[1]["error"] is None
    assert (tmp_path / "world_state_0.json").exists()
    assert miyabi_aws.WorldState.load(tmp_path / "world_state_0.json") == report.world


def test_a_python_exception_comes_back_out_of_the_cycle_unchanged(world):
    with pytest.raises(LegacyLimitExceeded, match="tag quota reached for i-0123") as raised:
        miyabi_aws.Cycle([Exploding()]).run(world=world)
    assert type(raised.value) is LegacyLimitExceeded


def test_a_phase_without_a_slot_is_a_config_error():
    class Nameless:
        name = "something"

        def run(self, context):
            pass

    with pytest.raises(miyabi_aws.ConfigError, match="theta"):
        miyabi_aws.Cycle([Nameless()])


def test_a_rust_phase_error_maps_to_its_exception_class(tmp_path):
    with pytest.raises(miyabi_aws.CatalogError):
        miyabi_aws.Cycle([Planner()]).run(catalog=tmp_path / "no_such_catalog.json")


class Reviewer:
    """A Python θ5 reading the Rust θ3's execution plan."""

    name = "plan reviewer"
    theta = 5

    def __init__(self):
        self.steps = None

    def run(self, context):
        self.steps = [step["id"] for step in context.execution_plan.steps]


def test_rust_planning_and_optimization_run_from_python(world, regions, tmp_path):
    plan = miyabi_aws.plan(world)
    assert plan["security"] and plan["cost"]
    out = miyabi_aws.optimize(world, max_changes=5)
    steps = out["execution_plan"]["steps"]
    assert len(steps) == 5
    assert len(out["execution_plan"]["excluded"]) > 0
    assert {r["recommendation"]["finding"] for r in out["recommendations"]} & {"Overprovisioned", "Optimized", "Idle"}

    reviewer = Reviewer()
    cycle = miyabi_aws.Cycle([miyabi_aws.Discovery(regions), miyabi_aws.Planning(), miyabi_aws.Optimization(), reviewer],
                             max_iterations=1)
    assert all(isinstance(p, miyabi_aws.RustPhase) for p in [miyabi_aws.Planning(), miyabi_aws.Optimization()])
    report = cycle.run(out_dir=tmp_path)
    assert reviewer.steps and len(set(reviewer.steps)) == len(reviewer.steps)
    assert [p["theta"] for p in report.iterations[0]["phases"]] == [1, 2, 3, 5]
    for name in ["cost_optimization_plan.md", "security_improvement_plan.md", "execution_plan.json"]:
        assert (tmp_path / name).exists(), name
    with pytest.raises(miyabi_aws.ConfigError, match="environment"):
        miyabi_aws.Optimization(environment="staging")
