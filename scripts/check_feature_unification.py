#!/usr/bin/env python3
"""Fails when the wheel's build, or `cargo install --path .` of the CLI, would compile the core
library or any crate it depends on with other features than the Rust tests do: those crates
would then be built twice (the AWS SDK alone takes 15 minutes on 2 cores, the core a minute).

Compares `cargo tree` of each of those builds with that of the test build, for the core and
every crate in its dependency closure.
"""
import subprocess
import sys
from collections import defaultdict



def tree(*args):
    out = subprocess.run(["cargo", "tree", "-f", "{p} {f}", "--prefix", "none", *args],
                         check=True, capture_output=True, text=True).stdout
    features = defaultdict(set)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name_version = (parts[0], parts[1])
        tail = parts[-1] if len(parts) > 2 and not parts[-1].startswith("(") else ""
        features[name_version] |= set(filter(None, tail.split(",")))
    return features


def closure():
    """The core library and everything it depends on, as the CLI builds it."""
    out = subprocess.run(["cargo", "tree", "-p", "miyabi-aws", "-e", "normal,build", "-f", "{p}",
                          "--prefix", "none"], check=True, capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


BUILDS = {
    # name: (cargo tree arguments, where to add missing features)
    "the wheel": (["-p", "miyabi-aws-py", "-e", "normal,build"],
                  "bindings/Cargo.toml's unification section"),
    "cargo install of the CLI": (["-p", "miyabi-aws", "-e", "normal,build"],
                                 "the `cli` feature's unification list in Cargo.toml"),
}


def main():
    tests = tree("--workspace", "--exclude", "miyabi-aws-py", "--all-features", "-e", "normal,build,dev")
    core = closure()
    failed = False
    for build, (args, fix) in BUILDS.items():
        other = tree(*args)
        drift = [(k, sorted(other[k] ^ tests.get(k, set()))) for k in sorted(other)
                 if k[0] in core and other[k] != tests.get(k, set())]
        for (name, version), diff in drift:
            print(f"feature drift in {build}: {name} {version}: {', '.join(diff)}", file=sys.stderr)
        if drift:
            print(f"add the missing features to {fix}", file=sys.stderr)
            failed = True
    if failed:
        return 1
    print(f"feature unification: the core and its {len(core) - 1} dependencies resolve alike for the tests, "
          + " and ".join(BUILDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
