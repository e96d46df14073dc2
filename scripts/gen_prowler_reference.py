#!/usr/bin/env python3
"""Writes the facts the engine takes from Prowler: per check of the EC2, S3 and RDS services, its
severity, its resource type, its AWS Security Finding Format types, and the CIS AWS Foundations
and AWS Foundational Security Best Practices requirements that list it.

Only identifiers, severities, types and mappings are taken; titles, descriptions and remediation
text are the engine's own. The output is committed (src/assessment/prowler_reference.json), so that
a build needs no copy of Prowler; this script regenerates it from a clone of
prowler-cloud/prowler at a pinned commit:

    python3 scripts/gen_prowler_reference.py --git-dir /path/to/prowler/.git \
        --commit 3e000faa3109230b748e4418a13c11c9e59f5cfb > src/assessment/prowler_reference.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

SERVICES = ("ec2", "s3", "rds")
CIS = "prowler/compliance/aws/cis_7.0_aws.json"
FSBP = "prowler/compliance/aws/aws_foundational_security_best_practices_aws.json"


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, text=True
    ).stdout


def show(git_dir: str, commit: str, path: str) -> str:
    return git(git_dir, "show", f"{commit}:{path}")


def requirements_by_check(framework: dict) -> dict[str, list[str]]:
    """Inverts a compliance file: check id -> the ids of the requirements that list it."""
    out: dict[str, list[str]] = {}
    for requirement in framework["Requirements"]:
        for check in requirement.get("Checks", []):
            out.setdefault(check, []).append(requirement["Id"])
    return {check: sorted(set(ids), key=natural) for check, ids in out.items()}


def natural(requirement_id: str) -> list:
    """Orders `6.10` after `6.9` and `EC2.10` after `EC2.9`."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", requirement_id)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--git-dir", required=True, help="a clone of prowler-cloud/prowler (its .git)")
    parser.add_argument("--commit", required=True, help="the commit to read")
    args = parser.parse_args()
    commit = git(args.git_dir, "rev-parse", f"{args.commit}^{{commit}}").strip()
    config = show(args.git_dir, commit, "prowler/config/config.py")
    version = re.search(r'prowler_version = "([^"]+)"', config)
    cis = requirements_by_check(json.loads(show(args.git_dir, commit, CIS)))
    fsbp = requirements_by_check(json.loads(show(args.git_dir, commit, FSBP)))
    checks = {}
    for service in SERVICES:
        root = f"prowler/providers/aws/services/{service}/"
        for path in git(args.git_dir, "ls-tree", "-r", "--name-only", commit, root).splitlines():
            if not path.endswith(".metadata.json"):
                continue
            meta = json.loads(show(args.git_dir, commit, path))
            check = meta["CheckID"]
            checks[check] = {
                "service": meta["ServiceName"],
                "severity": meta["Severity"].lower(),
                "resource_type": meta["ResourceType"],
                "types": meta.get("CheckType", []),
                "cis_7_0": cis.get(check, []),
                "fsbp": fsbp.get(check, []),
            }
    json.dump(
        {
            "prowler": {"version": version.group(1) if version else None, "commit": commit},
            "frameworks": {"cis_7_0": CIS, "fsbp": FSBP},
            "checks": dict(sorted(checks.items())),
        },
        sys.stdout,
        indent=1,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
