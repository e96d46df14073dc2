"""The wheel's console script: `pip install .` puts the Rust command line on PATH."""

import shutil
import subprocess

import miyabi_aws


def miyabi(*args, **kwargs):
    exe = shutil.which("miyabi-aws")
    assert exe, "pip install . puts miyabi-aws on PATH"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600, **kwargs)


def test_help_lists_the_subcommands_and_usage_errors_exit_2():
    out = miyabi("--help")
    assert out.returncode == 0, out.stderr
    for sub in ["discover", "plan", "apply", "cycle"]:
        assert sub in out.stdout
    bad = miyabi("cycle", "--no-such-flag")
    assert bad.returncode == 2 and "--no-such-flag" in bad.stderr
    missing = miyabi("plan", "--world", "/nonexistent/world.json", "--out", "/tmp/miyabi-cli-missing")
    assert missing.returncode == 1 and "/nonexistent/world.json" in missing.stderr


def test_plan_runs_offline_from_a_world_state_file(world, tmp_path):
    path = tmp_path / "world_state_0.json"
    world.save(path)
    out = miyabi("plan", "--world", str(path), "--out", str(tmp_path / "out"), "--output-format", "json", "--quiet")
    assert out.returncode == 0, out.stderr
    plan = tmp_path / "out" / "execution_plan.json"
    assert plan.exists(), out.stdout
    steps = __import__("json").loads(plan.read_text())["steps"]
    expected = miyabi_aws.optimize(world)["execution_plan"]["steps"]
    assert [s["id"] for s in steps] == [s["id"] for s in expected]
    assert not (tmp_path / "out" / "cost_optimization_plan.md").exists(), "markdown was not asked for"
    assert (tmp_path / "out" / "terraform").is_dir(), "IaC is always written"
