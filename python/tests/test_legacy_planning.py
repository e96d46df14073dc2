"""The legacy planning script, reached through the bridge's JSON-RPC protocol, plans the EC2
instances of the seeded estate exactly as the Rust θ2 + θ3 do: the same steps, ids and order."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import miyabi_aws

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "src" / "catalog" / "prices.json"
INSTANCE_ACTIONS = {"require_imds_v2", "resize_instance", "stop_instance"}


def rpc(request):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    out = subprocess.run([sys.executable, "-m", "miyabi_legacy.rpc"], input=json.dumps(request) + "\n",
                         capture_output=True, text=True, env=env, timeout=120, check=True)
    return json.loads(out.stdout)


def test_legacy_planning_through_rpc_matches_rust(world):
    response = rpc({"jsonrpc": "2.0", "id": 7, "method": "execute_phase",
                    "params": {"phase": "planning", "config": {"catalog_path": str(CATALOG)},
                               "context": {"world_state": world.to_dict()}}})
    assert "error" not in response, response
    legacy = response["result"]["output"]["execution_plan"]["steps"]

    rust = miyabi_aws.optimize(world)["execution_plan"]["steps"]
    rust_instance_steps = [s for s in rust if s["change"]["action"] in INSTANCE_ACTIONS]
    assert rust_instance_steps, "the seeded estate must give instance changes to compare"
    assert [s["id"] for s in legacy] == [s["id"] for s in rust_instance_steps]
    for mine, theirs in zip(legacy, rust_instance_steps):
        # Rust prices the instance with its volumes before and after; the script, the instance
        # alone: the same saving up to the last bits of the sum.
        assert mine["change"]["monthly_saving_usd"] == pytest.approx(theirs["change"]["monthly_saving_usd"], abs=1e-9)
        assert mine["canary"] == theirs["canary"]
        assert mine["needs_approval"] == theirs["needs_approval"]


def test_planning_without_a_world_is_invalid_params():
    response = rpc({"jsonrpc": "2.0", "id": 8, "method": "execute_phase",
                    "params": {"phase": "planning", "config": {"catalog_path": str(CATALOG)}, "context": {}}})
    assert response["error"]["code"] == -32602
    assert "world_state" in response["error"]["message"]
