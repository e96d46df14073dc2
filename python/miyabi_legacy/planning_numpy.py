"""`miyabi_legacy.planning` rewritten with numpy: the same rules over a matrix of series.

Instances sharing a type are right-sized together; percentiles, daily sums and the idle rule are
array operations. Change ids, like the plain script's, are SHA-256 digests of each change's
content, computed per change.

    python -m miyabi_legacy.planning_numpy --dataset DIR --catalog prices.json --runs 3
"""

import argparse
import json
import os
import sys

import numpy as np

from .bench_support import measure, read_meta
from .planning import (DEFAULTS, IMDS_CHECK, SEVERITY_RANK, WAVE_ORDER, change, execution_plan, family, round_cents,
                       search_order)


def load_dataset(directory):
    """(meta, values[instance, metric, hour]) of a planning-bench dataset."""
    meta = read_meta(directory)
    values = np.fromfile(os.path.join(directory, "values.f64"), dtype="<f8")
    return meta, values.reshape(len(meta["instances"]), len(meta["metrics"]), len(meta["timestamps"]))


def idle_days(cpu, network, timestamps, config):
    """Days of the last 14 on which the idle rule holds, per row."""
    days = timestamps // 86400
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    counts = np.diff(np.r_[starts, len(days)])
    cpu_avg = np.add.reduceat(cpu, starts, axis=1)[:, -14:] / counts[-14:]
    io = np.add.reduceat(network, starts, axis=1)[:, -14:]
    return ((cpu_avg <= config["idle_cpu_percent"]) & (io <= config["idle_network_bytes"])).sum(axis=1)


def plan(meta, values, catalog, config=None):
    """θ2 + θ3 on the dataset's instances: the execution plan's steps, in order."""
    config = {**DEFAULTS, **(config or {})}
    instances = meta["instances"]
    names = meta["metrics"]
    timestamps = np.asarray(meta["timestamps"], dtype=np.int64)
    window = timestamps > timestamps[-1] - config["lookback_hours"] * 3600
    cpu = values[:, names.index("CPUUtilization"), :]
    network = values[:, names.index("NetworkIn"), :] + values[:, names.index("NetworkOut"), :]
    threshold = np.percentile(cpu[:, window], config["percentile"], axis=1)
    enough = window.sum() >= config["min_hours"]
    idle = idle_days(cpu, network, timestamps, config) if enough else np.zeros(len(instances), dtype=int)
    types = np.array([i["instance_type"] for i in instances])
    running = np.array([i["state"] == "running" for i in instances])
    limit = 100.0 - config["headroom_percent"]

    targets = np.full(len(instances), None, dtype=object)
    findings = np.full(len(instances), "InsufficientData", dtype=object)
    for instance_type in np.unique(types):
        rows = np.flatnonzero((types == instance_type) & running)
        if not enough or instance_type not in catalog["ec2"] or not len(rows):
            continue
        spec = catalog["ec2"][instance_type]
        scaled = threshold[rows] * spec["vcpu"]
        current_fits = scaled / spec["vcpu"] <= limit
        undecided = np.ones(len(rows), dtype=bool)
        for _, candidates in search_order(instance_type, catalog, config):
            if not candidates:
                continue
            # The memory guard (no memory metric in a dataset): no step below a share of the memory.
            floor = spec["memory_gib"] * config["memory_guard_fraction"]
            fits = np.stack([(scaled / s["vcpu"] <= limit) & (s["memory_gib"] >= floor) for _, s in candidates],
                            axis=1)
            found = undecided & fits.any(axis=1)
            first = fits.argmax(axis=1)
            for k in np.flatnonzero(found):
                target, s = candidates[first[k]]
                if current_fits[k] and not s["hourly_usd"] < spec["hourly_usd"]:
                    findings[rows[k]] = "Optimized"
                else:
                    findings[rows[k]] = "Overprovisioned" if current_fits[k] else "Underprovisioned"
                    targets[rows[k]] = target
            undecided &= ~found
        findings[rows[undecided]] = "Underprovisioned"

    severities = {IMDS_CHECK: "high"}
    changes = [change(i, "require_imds_v2", "imds_v2_required", False, True, "prowler_ec2_instance_imdsv2_enabled",
                      "IMDSv1 is allowed (HttpTokens=optional)", "medium", removes=[IMDS_CHECK])
               for i in instances if not i["imds_v2_required"]]
    is_idle = running & (idle >= config["idle_days"])
    for k in np.flatnonzero(is_idle | (targets != None)):  # noqa: E711 (element-wise)
        instance = instances[k]
        price_now = round_cents(catalog["ec2"][instance["instance_type"]]["hourly_usd"] * catalog["hours_per_month"]
                                * catalog["region_multipliers"][instance["region"]])
        if is_idle[k]:
            changes.append(change(instance, "stop_instance", "state", "running", "stopped",
                                  "trusted_advisor_low_utilization_ec2", f"idle on {idle[k]} of 14 days", "medium",
                                  saving=price_now))
        else:
            target = targets[k]
            price_then = round_cents(catalog["ec2"][target]["hourly_usd"] * catalog["hours_per_month"]
                                     * catalog["region_multipliers"][instance["region"]])
            risk = "medium" if findings[k] == "Underprovisioned" else "high"
            changes.append(change(instance, "resize_instance", "instance_type", instance["instance_type"], target,
                                  "compute_optimizer_rightsizing", f"{findings[k]}: P{config['percentile']} CPU "
                                  f"{threshold[k]:.1f}%", risk, saving=price_now - price_then))

    saving = np.array([c["monthly_saving_usd"] for c in changes])
    worst = np.array([max((SEVERITY_RANK[severities[f]] for f in c["removes_findings"]), default=-1) for c in changes])
    base = np.select([(worst >= 3) | (saving >= 500.0), (worst == 2) | (saving >= 100.0),
                      (worst == 1) | (saving >= 10.0)], [0, 1, 2], 3)
    high = np.array([c["risk"] == "high" for c in changes])
    priority = np.where(high, np.minimum(base + 1, 3), base)
    ids = np.array([c["id"] for c in changes])
    ranked = np.lexsort((ids, -saving, priority))

    canaries = set()
    kinds = np.empty(len(changes), dtype=int)
    canary = np.zeros(len(changes), dtype=bool)
    for k in ranked:
        c = changes[k]
        kinds[k] = WAVE_ORDER["capacity" if c["action"] in ("resize_instance", "stop_instance") else "configuration"]
        if c["action"] == "resize_instance" and family(c["desired"]) not in canaries:
            canaries.add(family(c["desired"]))
            kinds[k], canary[k] = WAVE_ORDER["canary"], True
    order = ranked[np.argsort(kinds[ranked], kind="stable")]
    return execution_plan([(int(kinds[k]), int(priority[k]), bool(canary[k]), changes[k]) for k in order], config)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a planning-bench dataset directory")
    parser.add_argument("--catalog", required=True, help="the price catalog (src/catalog/prices.json)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the best is reported")
    args = parser.parse_args(argv)
    with open(args.catalog, encoding="utf-8") as f:
        catalog = json.load(f)
    meta, values = load_dataset(args.dataset)
    seconds, working_mib, peak_mib, result = measure(lambda: plan(meta, values, catalog), args.runs)
    json.dump({"seconds": seconds, "working_mib": working_mib, "peak_mib": peak_mib,
               "steps": [s["id"] for s in result["steps"]],
               "monthly_saving_usd": result["monthly_saving_usd"]}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
