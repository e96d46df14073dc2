"""Python phases in any θ slot of the Rust cycle: reading and writing every artefact, delegating to
the Rust phase of their slot, sync or async, with hooks, a clock, a knowledge base and stop rules.

Each test that applies changes seeds instances of its own in Regions of its own, and keeps the
world to those instances, so that the session's seeded estate stays as it was."""

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest

import miyabi_aws

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "src" / "catalog" / "prices.json"
sys.path.insert(0, str(ROOT / "python"))

from miyabi_legacy.cycle_phases import LegacyOptimization, LegacyPlanning  # noqa: E402


class InstancesOnly:
    """θ1: the Rust discovery, then the world cut to its instances (and their series), assessed
    again; optionally with a learned headroom, as θ6 would leave it."""

    name = "discovery (instances only)"
    theta = 1

    def __init__(self, regions, headroom=None):
        self.discovery = miyabi_aws.Discovery(regions)
        self.headroom = headroom

    def run(self, context):
        outcome = self.discovery.run(context)
        doc = context.world.to_dict()
        inventory = doc["inventory"]
        kept = {i["id"] for i in inventory["instances"]}
        for kind in inventory:
            if kind not in ("instances", "metrics"):
                inventory[kind] = []
        inventory["metrics"] = [m for m in inventory["metrics"] if m["resource_id"] in kept]
        context.world = miyabi_aws.assess(miyabi_aws.WorldState.from_dict(doc))
        if self.headroom:
            context.put(miyabi_aws.LearnedHeadroom.from_dict(self.headroom))
        return outcome


# name: (instance type, hourly CPU %, hourly network bytes)
WORKLOADS = {
    "web": ("m5.2xlarge", 15.0, 50e6),  # over-provisioned: m5.large, or m5.xlarge under a learned m5 headroom
    "batch": ("c5.2xlarge", 18.0, 80e6),  # over-provisioned: c5.large by CPU, c5.xlarge by the memory guard
    "idle": ("m5.large", 1.0, 1e3),  # idle: stopped
    "busy": ("c5.large", 95.0, 90e6),  # under-provisioned: c5.xlarge
}


def seed(region, workloads, hours=120):
    """Instances named after `workloads`, with `hours` of hourly CPU and network to now."""
    ec2 = boto3.client("ec2", region_name=region)
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    now = int(datetime.now(timezone.utc).timestamp()) // 3600 * 3600
    names = {}
    for name, (instance_type, cpu, network) in workloads.items():
        instance = ec2.run_instances(
            ImageId="ami-12c6146b", InstanceType=instance_type, MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
        )["Instances"][0]
        names[instance["InstanceId"]] = name
        data = []
        for h in range(hours):
            at = datetime.fromtimestamp(now - (hours - h) * 3600, timezone.utc)
            dims = [{"Name": "InstanceId", "Value": instance["InstanceId"]}]
            wobble = (h % 5) * 0.2
            data += [
                {"MetricName": "CPUUtilization", "Dimensions": dims, "Timestamp": at, "Value": cpu + wobble, "Unit": "Percent"},
                {"MetricName": "NetworkIn", "Dimensions": dims, "Timestamp": at, "Value": network, "Unit": "Bytes"},
                {"MetricName": "NetworkOut", "Dimensions": dims, "Timestamp": at, "Value": network * 0.8, "Unit": "Bytes"},
            ]
        for k in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=data[k:k + 1000])
    return names


def named_steps(plan, names):
    """An execution plan's steps with instance names for ids: comparable across Regions. Steps
    tied on priority and saving are ordered by id, which holds the Region: they are sorted."""
    return sorted((names[s["change"]["resource"]["id"]], s["change"]["action"], s["change"]["desired"], s["wave"],
             s["priority"], s["canary"], s["needs_approval"], s["change"]["rationale"],
             round(s["change"]["monthly_saving_usd"], 6))
            for s in plan.steps)


def order(plan):
    return [(s["wave"], s["priority"], s["change"]["action"], round(s["change"]["monthly_saving_usd"], 6))
            for s in plan.steps]


def named_instances(world, names):
    return sorted((names[i["id"]], i["instance_type"], i["state"], i["imds_v2_required"]) for i in world.instances)


def run_cycle(region, planning, optimization, tmp_path):
    """θ1 (instances only, learned m5 headroom) → θ2 → θ3 → θ4 (apply all), until converged; the
    execution plan of every iteration, captured by a hook after θ3, and the report."""
    plans = []

    def after(theta, outcome, context):
        if theta == 3:
            plans.append(context.execution_plan)

    cycle = miyabi_aws.Cycle([InstancesOnly([region], headroom={"m5": 60.0}), planning, optimization,
                              miyabi_aws.Deployment([region], apply=True, approve="all")], max_iterations=4)
    report = cycle.run(out_dir=tmp_path / region, knowledge_base=tmp_path / f"{region}.redb", hooks=[after])
    return plans, report


def test_the_legacy_script_as_theta2_and_theta3_plans_and_converges_as_the_rust_phases(tmp_path):
    # One estate twice, in two Regions priced alike: the Rust θ2+θ3 plan one, the legacy script the other.
    rust_names, legacy_names = seed("us-east-1", WORKLOADS), seed("us-east-2", WORKLOADS)
    rust_plans, rust = run_cycle("us-east-1", miyabi_aws.Planning(), miyabi_aws.Optimization(), tmp_path)
    legacy_plans, legacy = run_cycle("us-east-2", LegacyPlanning(), LegacyOptimization(CATALOG), tmp_path)

    assert rust.converged and legacy.converged, (rust.stop, legacy.stop)
    assert len(rust_plans) == len(legacy_plans) == 2
    first = named_steps(rust_plans[0], rust_names)
    assert first == named_steps(legacy_plans[0], legacy_names)
    assert order(rust_plans[0]) == order(legacy_plans[0])
    assert [w["kind"] for w in rust_plans[0].waves] == [w["kind"] for w in legacy_plans[0].waves]
    # The learned m5 headroom (60%) is taught to both: 15% of 8 vCPU fits m5.xlarge, not m5.large.
    assert ("web", "resize_instance", "m5.xlarge") in {s[:3] for s in first}
    assert {s[:3] for s in first} >= {("idle", "stop_instance", "stopped"), ("busy", "resize_instance", "c5.xlarge"),
                                     ("batch", "resize_instance", "c5.xlarge")}
    # The change times are taught too: a resized instance has no datapoint since its change, so
    # neither plans it again.
    assert named_steps(rust_plans[1], rust_names) == named_steps(legacy_plans[1], legacy_names) == []
    assert named_instances(rust.world, rust_names) == named_instances(legacy.world, legacy_names)
    assert ("web", "m5.xlarge", "running", True) in named_instances(legacy.world, legacy_names)


class DropOne:
    """θ2: the Rust planning, then every change of one instance dropped from the plan."""

    name = "planning (drops one)"
    theta = 2

    def __init__(self):
        self.dropped = None

    def run(self, context):
        outcome = miyabi_aws.Planning().run(context)
        plan = context.plan.to_dict()
        self.dropped = plan["security"][0]["resource"]["id"]
        for kind in ("cost", "security"):
            plan[kind] = [c for c in plan[kind] if c["resource"]["id"] != self.dropped]
        context.plan = miyabi_aws.Plan.from_dict(plan)
        return outcome


def test_a_resource_a_python_planning_phase_drops_is_left_alone_by_the_rust_optimization_and_deployment(tmp_path):
    region = "ca-central-1"
    ec2 = boto3.client("ec2", region_name=region)
    ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=3, MaxCount=3)
    fixed = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    planner = DropOne()
    cycle = miyabi_aws.Cycle([InstancesOnly([region]), planner, miyabi_aws.Optimization(),
                              miyabi_aws.Deployment([region], apply=True, approve="all")], max_iterations=1)
    report = cycle.run(clock=lambda: fixed)

    plan, deployment = report.get(miyabi_aws.ExecutionPlan), report.get(miyabi_aws.DeploymentReport)
    touched = {s["change"]["resource"]["id"] for s in plan.steps}
    assert planner.dropped and planner.dropped not in touched
    assert len(touched) == 2, touched
    assert planner.dropped not in {s["resource"]["id"] for s in deployment.steps}
    assert {s["outcome"]["status"] for s in deployment.steps} == {"applied"}
    assert datetime.fromisoformat(deployment.applied_at.replace("Z", "+00:00")) == fixed
    tokens = {i["InstanceId"]: i["MetadataOptions"]["HttpTokens"]
              for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert tokens.pop(planner.dropped) == "optional"
    assert set(tokens.values()) == {"required"}


class Delegating:
    """A phase in slot `theta`: checks that it sees the previous slot's edit, runs the Rust phase
    of its slot, then edits what that produced."""

    def __init__(self, theta, rust, check, edit, log):
        self.theta, self.name = theta, f"python θ{theta}"
        self.rust, self.check, self.edit, self.log = rust, check, edit, log

    def run(self, context):
        if self.check:
            self.log.append((context.iteration, self.theta, self.check(context)))
        outcome = self.rust.run(context)
        self.edit(context)
        return outcome


class AsyncDelegating(Delegating):
    async def run(self, context):
        await asyncio.sleep(0.01)
        return super().run(context)


def test_a_python_phase_in_every_slot_delegates_edits_and_the_next_phase_sees_the_edit(regions, tmp_path):
    log = []

    def one_instance_with_imds_v1(context):
        doc = context.world.to_dict()
        instance = {**doc["inventory"]["instances"][0], "imds_v2_required": False}
        doc["inventory"] = {**{k: [] for k in doc["inventory"]}, "instances": [instance]}
        context.world = miyabi_aws.assess(miyabi_aws.WorldState.from_dict(doc))

    def reworded(context):
        plan = context.plan.to_dict()
        plan["security"] = [{**c, "rationale": "edited in python"} for c in plan["security"]]
        context.plan = miyabi_aws.Plan.from_dict(plan)

    def priced(context):
        context.execution_plan = {**context.execution_plan.to_dict(), "monthly_saving_usd": 123.0}

    def no_records(context):
        report = context.get(miyabi_aws.DeploymentReport).to_dict()
        context.put(miyabi_aws.DeploymentReport.from_dict({**report, "steps": []}))

    def noted(context):
        report = context.get(miyabi_aws.MonitoringReport).to_dict()
        report["notifications"].append(["python", None])
        context.put(miyabi_aws.MonitoringReport.from_dict(report))

    def advised(context):
        report = context.get(miyabi_aws.LearningReport).to_dict()
        report["recommendations"].append("from python")
        context.put(miyabi_aws.LearningReport.from_dict(report))

    worlds = []

    def learning_sees(context):
        worlds.append((context.previous(miyabi_aws.WorldState), context.world))
        return context.get(miyabi_aws.MonitoringReport).notifications[-1]

    phases = [
        Delegating(1, miyabi_aws.Discovery(regions), None, one_instance_with_imds_v1, log),
        Delegating(2, miyabi_aws.Planning(), lambda c: (c.world.resource_count, c.world.instances[0]["imds_v2_required"]),
                   reworded, log),
        Delegating(3, miyabi_aws.Optimization(), lambda c: [x["rationale"] for x in c.plan.security], priced, log),
        Delegating(4, miyabi_aws.Deployment(regions), lambda c: c.execution_plan.monthly_saving_usd, no_records, log),
        AsyncDelegating(5, miyabi_aws.Monitoring(), lambda c: c.get(miyabi_aws.DeploymentReport).steps, noted, log),
        Delegating(6, miyabi_aws.Learning(), learning_sees, advised, log),
    ]
    # The default rules would stop after the dry run; an empty list keeps only the limit.
    report = miyabi_aws.Cycle(phases, max_iterations=2).run(out_dir=tmp_path, stop_rules=[])

    assert len(report.iterations) == 2, report.stop
    for iteration in (0, 1):
        seen = {theta: value for i, theta, value in log if i == iteration}
        assert seen == {2: (1, False), 3: ["edited in python"], 4: 123.0, 5: [], 6: ("python", None)}, (iteration, seen)
    # θ6 of iteration 1 sees World 0 (the edited one) as the previous world, not its own.
    assert worlds[0][0] is None
    previous, current = worlds[1]
    assert previous is not None and previous.resource_count == 1 and previous != current
    assert report.get(miyabi_aws.LearningReport).recommendations[-1] == "from python"
    step = report.get(miyabi_aws.ExecutionPlan).steps[0]
    assert step["change"]["rationale"] == "edited in python"


def test_python_stop_rules_and_outcomes_decide_when_the_loop_ends(world):
    class Counter:
        name = "counter"
        theta = 3

        def run(self, context):
            return miyabi_aws.PhaseOutcome(applicable=5 - context.iteration)

    class AtMostTwoLeft:
        id = "two_left"

        def check(self, iteration):
            left = iteration["applicable_changes"]
            return f"{left} changes left" if left <= 2 else None

    report = miyabi_aws.Cycle([Counter()]).run(world=world, stop_rules=[AtMostTwoLeft(), miyabi_aws.StopRule.convergence()])
    assert len(report.iterations) == 4
    assert report.stop == "stopped by rule two_left: 2 changes left"
    assert [it["applicable_changes"] for it in report.iterations] == [5, 4, 3, 2]
    assert report.iterations[0]["phases"][0]["applicable"] == 5


def test_a_python_phase_returning_garbage_or_keeping_its_context_gets_a_clear_error(world):
    class Garbage:
        name = "planning"

        def run(self, context):
            return 42

    with pytest.raises(TypeError, match="must return None or a PhaseOutcome"):
        miyabi_aws.Cycle([Garbage()]).run(world=world)

    kept = []

    class Keeper:
        name = "planning"

        def run(self, context):
            kept.append(context)

    miyabi_aws.Cycle([Keeper()], max_iterations=1).run(world=world)
    with pytest.raises(RuntimeError, match="not usable"):
        kept[0].world
    with pytest.raises(miyabi_aws.ArtefactError, match="at steps"):
        miyabi_aws.ExecutionPlan.from_dict({"schema_version": 1, "steps": "no", "waves": [], "excluded": [],
                                            "monthly_saving_usd": 0})
    with pytest.raises(TypeError, match="not an artefact class"):
        class Asker:
            name = "planning"

            def run(self, context):
                context.get(dict)

        miyabi_aws.Cycle([Asker()]).run(world=world)


def test_the_python_phase_example_runs_and_skips_the_tagged_instance(tmp_path):
    import subprocess

    region = "eu-west-1"
    ec2 = boto3.client("ec2", region_name=region)
    ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1)
    ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "miyabi:skip", "Value": "yes"}]}])
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "python_phase.py"), "--region", region,
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "skipped 1 tagged resource(s)" in out.stdout, out.stdout
    assert (tmp_path / "execution_plan.json").exists()


def test_request_limits_are_checked_like_the_cli_flags(world, tmp_path):
    class Nothing:
        name = "planning"

        def run(self, context):
            return None

    cycle = miyabi_aws.Cycle([Nothing()])
    report = cycle.run(world=world, api_share=0.25)
    assert len(report.iterations) >= 1
    for share in (0.0, 1.5):
        with pytest.raises(ValueError, match="not in"):
            cycle.run(world=world, api_share=share)
    quotas = tmp_path / "quotas.json"
    quotas.write_text('{"shares": {"ec2.mutatin": 0.2}}')
    with pytest.raises(ValueError, match="unknown quota category"):
        cycle.run(world=world, quota_file=quotas)
    quotas.write_text('{"share": 0.3, "quotas": {"cloudwatch.GetMetricData": {"capacity": 500, "refill_per_second": 500}}}')
    assert len(cycle.run(world=world, quota_file=quotas).iterations) >= 1
