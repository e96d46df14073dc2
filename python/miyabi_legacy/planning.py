"""The legacy agent's θ2 + θ3 for EC2 instances, in plain Python: IMDSv2 remediation,
right-sizing after Compute Optimizer, idle detection after Trusted Advisor, and allocation into
an ordered, content-addressed execution plan.

It reads a world-state document (the JSON the Rust crate writes) and the price catalog, and
returns an execution plan in the engine's schema with the same steps, in the same order and with
the same ids, as the Rust phases give for the instances of that world. It takes what θ6 teaches
the Rust θ3: headroom learned per family (`config["family_headroom_percent"]`) and when each
resource last changed (`change_times`). The rules and their defaults are DESIGN §4–§6.

    python -m miyabi_legacy.planning --world world_state.json --catalog prices.json
    python -m miyabi_legacy.planning --dataset DIR --catalog prices.json --runs 1   # the bench

Through the bridge it is the `planning` phase of `miyabi_legacy.rpc`.
"""

import argparse
import hashlib
import json
import math
import sys
import time

from .bench_support import load_dataset_world, measure

COMPATIBLE_FAMILIES = [
    ["m5", "m6i", "m7i"], ["c5", "c6i", "c7i"], ["r5", "r6i", "r7i"], ["t3", "t3a"],
    ["m7g"], ["c7g"], ["r7g"], ["t4g"],
]

DEFAULTS = {
    "lookback_hours": 14 * 24,
    "percentile": 99.5,
    "headroom_percent": 20.0,
    "min_hours": 30,
    "idle_cpu_percent": 10.0,
    "idle_network_bytes": 5.0 * 1024 * 1024,
    "idle_days": 4,
    "allow_burstable": False,
    "allow_other_architecture": False,
    "memory_guard_fraction": 0.5,
    "ec2_autonomy": 6,
    "production_increase_usd": 1000.0,
    "family_headroom_percent": {},
}

IMDS_CHECK = "ec2_instance_imdsv2_enabled"
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "informational": 0}
AUTONOMY_REQUIRED = {"low": 4, "medium": 6, "high": 8}
WAVE_ORDER = {"canary": 0, "configuration": 1, "capacity": 2, "destructive": 3}
PRIORITIES = ["P0", "P1", "P2", "P3"]


def family(instance_type):
    return instance_type.split(".", 1)[0]


def round_cents(usd):
    """Half away from zero, as the Rust assessment rounds."""
    return math.copysign(math.floor(abs(usd) * 100.0 + 0.5), usd) / 100.0


def ec2_monthly(catalog, instance_type, region):
    return catalog["ec2"][instance_type]["hourly_usd"] * catalog["hours_per_month"] * catalog["region_multipliers"][region]


def percentile(values, p):
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return None
    rank = min(max(p / 100.0, 0.0), 1.0) * (len(finite) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return finite[lo] + (finite[hi] - finite[lo]) * (rank - lo)


def window(series, lookback_hours):
    stamps = series["timestamps"]
    if not stamps:
        return [], []
    start = stamps[-1] - lookback_hours * 3600
    first = next((k for k, t in enumerate(stamps) if t > start), len(stamps))
    return stamps[first:], series["values"][first:]


def daily(series, lookback_hours):
    """[(day, sum, count)] per UTC day of the window, oldest first."""
    days = []
    for t, v in zip(*window(series, lookback_hours)):
        day = t // 86400
        if days and days[-1][0] == day:
            days[-1][1] += v
            days[-1][2] += 1
        else:
            days.append([day, v, 1])
    return days


def idle_days(cpu, network, config):
    quiet = [day for day, total, n in daily(cpu, 14 * 24)[-14:] if total / n <= config["idle_cpu_percent"]]
    if not quiet:
        return 0
    io = {}
    for series in network:
        for day, total, _ in daily(series, 14 * 24):
            io[day] = io.get(day, 0.0) + total
    return sum(1 for day in quiet if io.get(day, 0.0) <= config["idle_network_bytes"])


def search_order(current, catalog, config):
    """[(families, [(type, spec) cheapest first])]: the same family, then compatible ones."""
    spec = catalog["ec2"][current]
    own = family(current)
    compatible = next((g for g in COMPATIBLE_FAMILIES if own in g), [own])

    def allowed(s):
        return ((config["allow_other_architecture"] or s["architecture"] == spec["architecture"])
                and (config["allow_burstable"] or spec["burstable"] or not s["burstable"]))

    def of(families):
        found = [(t, s) for t, s in catalog["ec2"].items() if family(t) in families and allowed(s)]
        return sorted(found, key=lambda c: (c[1]["hourly_usd"], c[0]))

    both = [own] + [f for f in compatible if f != own]
    return [([own], of([own])), (both, of(both))]


def rightsize(instance_type, cpu, catalog, config, searches, memory=None):
    """Compute Optimizer's rule on one instance. Memory used (`memory`, the CloudWatch agent's
    series) is projected like CPU; without it, no step keeps less than `memory_guard_fraction`
    of the current memory, so a large cut takes several iterations of the loop."""
    rec = {"finding": "InsufficientData", "current_type": instance_type, "target_type": None, "evidence": ""}
    if instance_type not in catalog["ec2"]:
        rec["evidence"] = f"{instance_type} is not in the price catalog"
        return rec
    values = window(cpu, config["lookback_hours"])[1] if cpu else []
    if len(values) < config["min_hours"]:
        rec["evidence"] = f"{len(values)} h of CPU data; {config['min_hours']} h needed"
        return rec
    threshold = percentile(values, config["percentile"])
    memory_values = window(memory, config["lookback_hours"])[1] if memory else []
    memory_threshold = percentile(memory_values, config["percentile"]) if memory_values else None
    spec = catalog["ec2"][instance_type]
    limit = 100.0 - config["headroom_percent"]
    p = shown(config["percentile"])
    days = config["lookback_hours"] / 24

    def limit_of(t):
        """A family θ6 saw breach after a resize keeps its own, larger headroom."""
        return 100.0 - config["family_headroom_percent"].get(family(t), config["headroom_percent"])

    def cpu_fits(t, s):
        projected = threshold * spec["vcpu"] / s["vcpu"]
        return projected if projected <= limit_of(t) else None

    def memory_fits(t, s):
        if memory_threshold is None:
            return s["memory_gib"] >= spec["memory_gib"] * config["memory_guard_fraction"]
        return memory_threshold * spec["memory_gib"] / s["memory_gib"] <= limit_of(t)

    def fits(t, s):
        return cpu_fits(t, s) if memory_fits(t, s) else None

    if instance_type not in searches:
        searches[instance_type] = search_order(instance_type, catalog, config)
    for families, candidates in searches[instance_type]:
        for rank, (target, s) in enumerate(candidates):
            projected = fits(target, s)
            if projected is None:
                continue
            current_fits = fits(instance_type, spec) is not None
            if current_fits and not s["hourly_usd"] < spec["hourly_usd"]:
                rec["finding"] = "Optimized"
                rec["evidence"] = f"P{p} CPU {threshold:.1f}% over {days:.0f} days; {instance_type} is the cheapest fit"
            else:
                rec["finding"] = "Overprovisioned" if current_fits else "Underprovisioned"
                rec["target_type"] = target
                rec["evidence"] = (f"P{p} CPU {threshold:.1f}% over {days:.0f} days on {spec['vcpu']} vCPU; "
                                   f"{projected:.1f}% projected on {target} ({s['vcpu']} vCPU), "
                                   f"limit {limit_of(target):.0f}%")
                if memory_threshold is not None:
                    rec["evidence"] += (f"; P{p} memory {memory_threshold:.1f}%, "
                                        f"{memory_threshold * spec['memory_gib'] / s['memory_gib']:.1f}% projected")
                elif s["memory_gib"] < spec["memory_gib"]:
                    rec["evidence"] += (f"; memory risk: not measured (no CloudWatch agent metric), "
                                        f"{shown(spec['memory_gib'])} → {shown(s['memory_gib'])} GiB")
                    held = next((t for t, c in candidates[:rank] if cpu_fits(t, c) is not None), None)
                    if held:
                        rec["evidence"] += (f"; the memory guard keeps ≥ {config['memory_guard_fraction'] * 100:.0f}% "
                                            f"of it, so CPU alone ({held}) is left for a later iteration")
            return rec
    rec["finding"] = "Underprovisioned"
    rec["evidence"] = (f"P{p} CPU {threshold:.1f}% over {days:.0f} days; no type in {families} keeps it under "
                       f"{limit:.0f}%")
    return rec


def content_id(kind, region, resource_id, action, attribute, desired):
    identity = json.dumps([kind, region, resource_id, action, attribute, desired], separators=(",", ":"),
                          ensure_ascii=False)
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def change(instance, action, attribute, current, desired, rule, rationale, risk, saving=0.0, removes=()):
    """A change to `instance`, in the engine's execution-plan schema."""
    return {
        "id": content_id("ec2_instance", instance["region"], instance["id"], action, attribute, desired),
        "action": action,
        "resource": {"kind": "ec2_instance", "id": instance["id"], "region": instance["region"]},
        "attribute": attribute, "current": current, "desired": desired, "rule": rule,
        "rationale": rationale, "monthly_saving_usd": saving, "removes_findings": list(removes), "risk": risk,
    }


def priority(c, severities):
    worst = max((SEVERITY_RANK[severities[f]] for f in c["removes_findings"] if f in severities), default=-1)
    saving = c["monthly_saving_usd"]
    if worst >= 3 or saving >= 500.0:
        base = 0
    elif worst == 2 or saving >= 100.0:
        base = 1
    elif worst == 1 or saving >= 10.0:
        base = 2
    else:
        base = 3
    return min(base + 1, 3) if c["risk"] == "high" else base


def approval_reasons(c, config):
    reasons = []
    if -c["monthly_saving_usd"] >= config["production_increase_usd"]:
        reasons.append(f"raises cost by ${-c['monthly_saving_usd']:.2f}/month")
    needed = AUTONOMY_REQUIRED[c["risk"]]
    if config["ec2_autonomy"] < needed:
        reasons.append(f"ec2 has autonomy {config['ec2_autonomy']}; a {c['risk']}-risk change needs {needed}")
    return reasons


def shown(x):
    """A number as the engine prints it: 10.0 as `10`, 99.5 as `99.5`."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def since_changes(series, change_times):
    """The metric series, each cut to its datapoints since its resource last changed."""
    if not change_times:
        return series
    cut = {}
    for key, m in series.items():
        since = change_times.get(key[0])
        if since is None:
            cut[key] = m
            continue
        first = next((k for k, t in enumerate(m["timestamps"]) if t >= since), len(m["timestamps"]))
        cut[key] = {**m, "timestamps": m["timestamps"][first:], "values": m["values"][first:]}
    return cut


def security_changes(world):
    """θ2 on the instances of `world`: IMDSv2 where IMDSv1 is allowed."""
    return [change(i, "require_imds_v2", "imds_v2_required", False, True, "prowler_ec2_instance_imdsv2_enabled",
                   "IMDSv1 is allowed (HttpTokens=optional)", "medium", removes=[IMDS_CHECK])
            for i in world["inventory"]["instances"] if not i["imds_v2_required"]]


def capacity_changes(world, catalog, config=None, change_times=None):
    """θ3 on the running instances of `world`: resizes and stops of idle ones. A resource in
    `change_times` ({id: unix seconds}) is judged on its datapoints since then."""
    config = {**DEFAULTS, **(config or {})}
    inventory = world["inventory"]
    series = since_changes({(m["resource_id"], m["metric_name"]): m for m in inventory["metrics"]}, change_times)
    searches = {}
    changes = []
    for instance in inventory["instances"]:
        if instance["state"] != "running":
            continue
        iid, region = instance["id"], instance["region"]
        cpu = series.get((iid, "CPUUtilization"))
        memory = series.get((iid, "mem_used_percent"))
        rec = rightsize(instance["instance_type"], cpu, catalog, config, searches, memory)
        network = [s for s in (series.get((iid, "NetworkIn")), series.get((iid, "NetworkOut"))) if s]
        idle = idle_days(cpu, network, config) if rec["finding"] != "InsufficientData" and len(network) == 2 else 0
        price_now = round_cents(ec2_monthly(catalog, instance["instance_type"], region))
        if idle >= config["idle_days"]:
            evidence = (f"daily CPU ≤ {shown(config['idle_cpu_percent'])}% and network ≤ "
                        f"{config['idle_network_bytes'] / 1024 / 1024:.0f} MB on {idle} of the last 14 days")
            changes.append(change(instance, "stop_instance", "state", "running", "stopped",
                                  "trusted_advisor_low_utilization_ec2", evidence, "medium", saving=price_now))
        elif rec["target_type"]:
            target = rec["target_type"]
            risk = "medium" if rec["finding"] == "Underprovisioned" else "high"
            saving = price_now - round_cents(ec2_monthly(catalog, target, region))
            changes.append(change(instance, "resize_instance", "instance_type", instance["instance_type"], target,
                                  "compute_optimizer_rightsizing", f"{rec['finding']}: {rec['evidence']}", risk,
                                  saving=saving))
    return changes


def allocate(changes, world, config=None):
    """The execution plan of `changes`: ranked, canaries first, in waves (engine schema)."""
    config = {**DEFAULTS, **(config or {})}
    severities = {f["check_id"]: f["severity"] for f in world["assessment"]["findings"]}
    ranked = sorted(((priority(c, severities), c) for c in changes),
                    key=lambda pc: (pc[0], -pc[1]["monthly_saving_usd"], pc[1]["id"]))
    canaries = set()
    placed = []
    for prio, c in ranked:
        kind = "capacity" if c["action"] in ("resize_instance", "stop_instance") else "configuration"
        canary = c["action"] == "resize_instance" and family(c["desired"]) not in canaries
        if canary:
            canaries.add(family(c["desired"]))
            kind = "canary"
        placed.append((WAVE_ORDER[kind], prio, canary, c))
    placed.sort(key=lambda p: p[0])
    return execution_plan(placed, config)


def plan(world, catalog, config=None, change_times=None):
    """θ2 + θ3 on the EC2 instances of `world`: the execution plan."""
    return allocate(security_changes(world) + capacity_changes(world, catalog, config, change_times), world, config)


OPERATIONS = {
    "require_imds_v2": ["ModifyInstanceMetadataOptions"],
    "resize_instance": ["StopInstances", "ModifyInstanceAttribute", "StartInstances"],
    "stop_instance": ["StopInstances"],
}
WAVE_KINDS = sorted(WAVE_ORDER, key=WAVE_ORDER.get)


def step(c, wave, prio, canary, config):
    """The execution-plan step of change `c`, in wave number `wave`."""
    reasons = approval_reasons(c, config)
    return {
        "id": c["id"], "wave": wave, "priority": PRIORITIES[prio], "canary": canary,
        "precondition": {"attribute": c["attribute"], "equals": c["current"]},
        "backup": None,
        "operations": OPERATIONS[c["action"]],
        "validation": {"attribute": c["attribute"], "equals": c["desired"]},
        "rollback": {"kind": "revert", "to": {"attribute": c["attribute"], "equals": c["current"]}},
        "needs_approval": bool(reasons), "approval_reasons": reasons, "change": c,
    }


def execution_plan(placed, config):
    """The plan document of `placed`: (wave kind, priority, canary, change) in execution order."""
    waves, steps = [], []
    for kind, prio, canary, c in placed:
        if not waves or waves[-1]["kind"] != WAVE_KINDS[kind]:
            waves.append({"index": len(waves), "kind": WAVE_KINDS[kind], "steps": []})
        waves[-1]["steps"].append(c["id"])
        steps.append(step(c, len(waves) - 1, prio, canary, config))
    return {"schema_version": 1, "steps": steps, "waves": waves, "excluded": [],
            "monthly_saving_usd": sum(s["change"]["monthly_saving_usd"] for s in steps)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--world", help="a world-state JSON document")
    source.add_argument("--dataset", help="a planning-bench dataset directory")
    parser.add_argument("--catalog", required=True, help="the price catalog (src/catalog/prices.json)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs; the best is reported")
    args = parser.parse_args(argv)
    with open(args.catalog, encoding="utf-8") as f:
        catalog = json.load(f)
    if args.world:
        with open(args.world, encoding="utf-8") as f:
            world = json.load(f)
    else:
        world = load_dataset_world(args.dataset)
    seconds, working_mib, peak_mib, result = measure(lambda: plan(world, catalog), args.runs)
    json.dump({"seconds": seconds, "working_mib": working_mib, "peak_mib": peak_mib,
               "steps": [s["id"] for s in result["steps"]],
               "monthly_saving_usd": result["monthly_saving_usd"]}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
