"""The legacy agent's phases behind JSON-RPC 2.0 on stdin/stdout, for the Rust bridge.

One request per line in, one response per line out (DESIGN §10); the server stops at end of
input. The method is `execute_phase`:

    params: {"phase": "discovery",
             "config": {"aws_region": "us-east-1", "profile": null, "dry_run": true,
                        "lookback_hours": 336, "until": 1700000000},
             "context": {"world_state": null, "previous_output": null}}
    result: {"status": "success", "phase": "discovery",
             "output": {"world_state": {"account_id": ..., "region": ..., "inventory": {...}},
                        "reports": [], "metrics": {"resources_scanned": n, "duration_ms": ms}}}

`lookback_hours`, `until` (Unix seconds, the end of the metric window) and `endpoint_url` are
optional extensions, so that a Rust caller and this script read the same window and endpoint.

The `planning` phase (θ2 + θ3 for EC2 instances, `miyabi_legacy.planning`) reads
`context.world_state` and `config.catalog_path`, and answers `output.execution_plan`.

    python -m miyabi_legacy.rpc
"""

import json
import sys
import time
import traceback

from . import discovery, planning
from .errors import INTERNAL_ERROR, classify

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602


class InvalidParams(ValueError):
    """The request's params do not fit the method."""


def _discovery(config, context):
    region = config.get("aws_region")
    if not isinstance(region, str) or not region:
        raise InvalidParams("config.aws_region must be a Region name")
    started = time.perf_counter()
    inventory, account = discovery.discover(
        region, config.get("profile"), config.get("lookback_hours", 14 * 24), config.get("until"),
        config.get("endpoint_url"))
    resources = sum(len(v) for k, v in inventory.items() if k != "metrics")
    return {
        "world_state": {"account_id": account, "region": region, "inventory": inventory},
        "reports": [],
        "metrics": {"resources_scanned": resources, "duration_ms": int((time.perf_counter() - started) * 1000)},
    }


def _planning(config, context):
    world = context.get("world_state")
    if not isinstance(world, dict) or "inventory" not in world:
        raise InvalidParams("context.world_state must be a world-state document")
    catalog_path = config.get("catalog_path")
    if not isinstance(catalog_path, str):
        raise InvalidParams("config.catalog_path must name the price catalog (src/catalog/prices.json)")
    with open(catalog_path, encoding="utf-8") as f:
        catalog = json.load(f)
    started = time.perf_counter()
    execution_plan = planning.plan(world, catalog, config.get("planning"))
    return {
        "execution_plan": execution_plan,
        "reports": [],
        "metrics": {"resources_scanned": len(world["inventory"].get("instances", [])),
                    "duration_ms": int((time.perf_counter() - started) * 1000)},
    }


PHASES = {"discovery": _discovery, "planning": _planning}


def _error(request_id, code, message, data=None):
    error = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def handle(line):
    """The response to one request line."""
    try:
        request = json.loads(line)
    except ValueError as e:
        return _error(None, PARSE_ERROR, f"parse error: {e}")
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        return _error(request.get("id") if isinstance(request, dict) else None, INVALID_REQUEST, "invalid request")
    request_id = request.get("id")
    if request["method"] != "execute_phase":
        return _error(request_id, METHOD_NOT_FOUND, f"method not found: {request['method']}")
    params = request.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("config", {}), dict):
        return _error(request_id, INVALID_PARAMS, "params must be {phase, config, context}")
    phase = PHASES.get(params.get("phase"))
    if phase is None:
        return _error(request_id, INVALID_PARAMS, f"unknown phase {params.get('phase')!r}; known: {sorted(PHASES)}")
    try:
        output = phase(params.get("config", {}), params.get("context") or {})
    except InvalidParams as e:
        return _error(request_id, INVALID_PARAMS, str(e))
    except Exception as e:  # noqa: BLE001 - every failure goes back as a typed JSON-RPC error
        code, message, data = classify(e)
        if code == INTERNAL_ERROR:
            data["traceback"] = traceback.format_exc()
        return _error(request_id, code, message, data)
    return {"jsonrpc": "2.0", "id": request_id,
            "result": {"status": "success", "phase": params["phase"], "output": output}}


def serve(stdin=None, stdout=None):
    """Answers requests until end of input."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    for line in stdin:
        if line.strip():
            stdout.write(json.dumps(handle(line)) + "\n")
            stdout.flush()


if __name__ == "__main__":
    serve()
