#!/usr/bin/env python3
"""Fails when the wheel's build would compile an AWS SDK dependency with other features than
the Rust tests do: the SDK crates would then be built twice (15 minutes each on 2 cores).

Compares `cargo tree` of the bindings crate with that of the test build, for every crate in
the dependency closure of the SDK clients.
"""
import subprocess
import sys
from collections import defaultdict

SDK_ROOTS = ["aws-config", "aws-sdk-ec2", "aws-sdk-s3", "aws-sdk-rds", "aws-sdk-cloudwatch"]


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
    names = set()
    for root in SDK_ROOTS:
        out = subprocess.run(["cargo", "tree", "-p", root, "-e", "normal,build", "-f", "{p}",
                              "--prefix", "none"], check=True, capture_output=True, text=True).stdout
        names |= {line.split()[0] for line in out.splitlines() if line.strip()}
    return names


def main():
    wheel = tree("-p", "miyabi-aws-py", "-e", "normal,build")
    tests = tree("--workspace", "--exclude", "miyabi-aws-py", "--all-features", "-e", "normal,build,dev")
    sdk = closure()
    drift = [(k, sorted(wheel[k] ^ tests.get(k, set()))) for k in sorted(wheel)
             if k[0] in sdk and wheel[k] != tests.get(k, set())]
    for (name, version), diff in drift:
        print(f"feature drift: {name} {version}: {', '.join(diff)}", file=sys.stderr)
    if drift:
        print("add the missing features to bindings/Cargo.toml's unification section", file=sys.stderr)
        return 1
    print(f"feature unification: {len(sdk)} SDK dependencies resolve alike for the wheel and the tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
