"""Reading the planning bench's dataset and measuring a run, shared by both planning baselines.

The dataset (written by `cargo bench --bench planning`) is `meta.json` (instances, metric names,
the shared hourly timestamps, capture time) and `values.f64`: little-endian doubles, instance by
instance, metric by metric, hour by hour.
"""

import json
import os
import time
from array import array


def _status_mib(field):
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def measure(run, runs):
    """(best seconds, peak MiB during the runs above the RSS before, total peak MiB, last result)."""
    before = _status_mib("VmRSS:")
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # resets the peak to the current RSS
    except OSError:
        pass
    best, result = float("inf"), None
    for _ in range(max(runs, 1)):
        result = None
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    peak = _status_mib("VmHWM:")
    return best, peak - before, peak, result


def read_meta(directory):
    with open(os.path.join(directory, "meta.json"), encoding="utf-8") as f:
        return json.load(f)


def load_dataset_world(directory):
    """The dataset as a world-state document of plain Python objects, as the legacy script reads
    one from JSON."""
    meta = read_meta(directory)
    values = array("d")
    with open(os.path.join(directory, "values.f64"), "rb") as f:
        values.fromfile(f, os.fstat(f.fileno()).st_size // values.itemsize)
    hours = len(meta["timestamps"])
    metrics = []
    offset = 0
    for instance in meta["instances"]:
        for name in meta["metrics"]:
            metrics.append({
                "resource_id": instance["id"], "region": instance["region"], "namespace": "AWS/EC2",
                "metric_name": name, "stat": "Average", "period_seconds": 3600,
                "timestamps": list(meta["timestamps"]), "values": values[offset:offset + hours].tolist(),
            })
            offset += hours
    findings = [{"check_id": "ec2_instance_imdsv2_enabled", "severity": "high", "status": "FAIL",
                 "resource_id": i["id"]} for i in meta["instances"] if not i["imds_v2_required"]]
    return {"inventory": {"instances": meta["instances"], "metrics": metrics},
            "assessment": {"findings": findings}}
