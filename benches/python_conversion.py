"""Python objects <-> Rust world state, against json.loads / json.dumps of the same data.

    python benches/python_conversion.py [--resources 100000] [--repeat 3]

Builds a synthetic world state of N resources (instances, volumes, Elastic IPs, security groups,
buckets, DB instances; assessed by the Rust assessment, so costs and findings are real), then
times, best of --repeat, in one run:

- WorldState.from_dict(d)   Python objects -> Rust, against json.dumps(d) (objects -> text);
- WorldState.to_dict()      Rust -> Python objects, against json.loads(s) (text -> objects);
- WorldState.from_json(s) and to_json(), for reference.
"""

import argparse
import json
import time

import miyabi_aws

SHARES = {"instances": 0.5, "volumes": 0.3, "addresses": 0.05, "security_groups": 0.1,
          "buckets": 0.025, "db_instances": 0.025}
TYPES = ["t3.micro", "m5.large", "m5.2xlarge", "c5.xlarge", "r5.large", "m6i.large"]


def instance(k):
    region = "us-east-1" if k % 2 else "eu-west-1"
    return {"id": f"i-{k:017x}", "arn": f"arn:aws:ec2:{region}:123456789012:instance/i-{k:017x}",
            "region": region, "availability_zone": region + "a", "instance_type": TYPES[k % len(TYPES)], "image_id": "ami-12c6146b",
            "state": "running" if k % 7 else "stopped", "stopped_since": None,
            "launch_time": "2026-11-01T00:00:00Z", "architecture": "x86_64", "platform": None,
            "vpc_id": "vpc-0123", "subnet_id": "subnet-0123", "public_ip": None if k % 3 else "203.0.113.7",
            "security_group_ids": [f"sg-{k % 1000:017x}"], "volume_ids": [f"vol-{k:017x}"],
            "imds_v2_required": k % 4 == 0, "tags": {"Name": f"web-{k}", "team": "core"},
            "owner_agent": "Bill Gates"}


def volume(k):
    return {"id": f"vol-{k:017x}", "arn": f"arn:aws:ec2:us-east-1:123456789012:volume/vol-{k:017x}",
            "region": "us-east-1", "availability_zone": "us-east-1a", "volume_type": "gp2" if k % 2 else "gp3",
            "size_gib": 8 + k % 100, "iops": None, "throughput_mibps": None, "encrypted": k % 3 == 0,
            "state": "in-use" if k % 5 else "available", "attached_to": [f"i-{k:017x}"] if k % 5 else [],
            "create_time": "2026-11-01T00:00:00Z", "tags": {}, "owner_agent": "Bill Gates"}


def address(k):
    return {"allocation_id": f"eipalloc-{k:017x}", "arn": "", "region": "us-east-1", "public_ip": "203.0.113.9",
            "association_id": None, "instance_id": None, "network_interface_id": None, "tags": {},
            "owner_agent": "Bill Gates"}


def group(k):
    rule = {"protocol": "tcp", "from_port": 22, "to_port": 22, "ipv4_ranges": ["0.0.0.0/0"], "ipv6_ranges": [],
            "group_ids": []}
    everything = {"protocol": "-1", "from_port": None, "to_port": None, "ipv4_ranges": ["0.0.0.0/0"],
                  "ipv6_ranges": [], "group_ids": []}
    return {"id": f"sg-{k:017x}", "arn": "", "region": "us-east-1", "name": f"group-{k}", "description": "bench",
            "vpc_id": "vpc-0123", "ingress": [rule] if k % 2 else [], "egress": [everything], "tags": {},
            "owner_agent": "Bill Gates"}


def bucket(k):
    return {"name": f"bench-bucket-{k}", "arn": f"arn:aws:s3:::bench-bucket-{k}", "region": "us-east-1",
            "created": "2026-11-01T00:00:00Z", "public_access_block": None, "policy_is_public": k % 2 == 0,
            "acl_grants": [{"grantee": "owner", "permission": "FULL_CONTROL"}], "default_encryption": None,
            "versioning": "off", "logging_enabled": False, "size_bytes": 1e9, "tags": {}, "owner_agent": "Steve Jobs"}


def db(k):
    return {"id": f"db-{k}", "arn": "", "region": "us-east-1", "class": "db.m5.large", "engine": "postgres",
            "engine_version": "16.1", "status": "available", "allocated_storage_gib": 100, "storage_type": "gp3",
            "publicly_accessible": k % 2 == 0, "storage_encrypted": True, "backup_retention_days": 7,
            "deletion_protection": False, "multi_az": False, "master_username": "admin", "tags": {},
            "owner_agent": "Noguchi"}


MAKERS = {"instances": instance, "volumes": volume, "addresses": address, "security_groups": group,
          "buckets": bucket, "db_instances": db}


def synthetic_world(resources):
    inventory = {kind: [MAKERS[kind](k) for k in range(int(resources * share))] for kind, share in SHARES.items()}
    inventory["metrics"] = []
    empty = {"catalog": {"source": "-", "as_of": "-"}, "costs": [], "monthly_total_usd": 0.0, "unpriced_count": 0,
             "findings": [], "security_score": 100.0, "utilisation_percent": None}
    document = {"schema_version": miyabi_aws.SCHEMA_VERSION,
                "scope": {"account_id": "123456789012", "regions": ["us-east-1", "eu-west-1"],
                          "captured_at": "2026-11-27T00:00:00Z", "lookback_hours": 336,
                          "completeness": {"status": "complete"}},
                "inventory": inventory, "assessment": empty}
    return miyabi_aws.assess(miyabi_aws.WorldState.from_dict(document))


def best(repeat, fn):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    world = synthetic_world(args.resources)
    d = world.to_dict()
    s = json.dumps(d)
    print(f"world state: {world.resource_count} resources, {len(d['assessment']['findings'])} findings, "
          f"{len(d['assessment']['costs'])} costs, {len(s) / 1e6:.1f} MB of JSON; best of {args.repeat}")

    t_from_dict, back = best(args.repeat, lambda: miyabi_aws.WorldState.from_dict(d))
    assert back == world
    t_dumps, _ = best(args.repeat, lambda: json.dumps(d))
    t_to_dict, again = best(args.repeat, world.to_dict)
    assert again == d
    t_loads, _ = best(args.repeat, lambda: json.loads(s))
    t_from_json, parsed = best(args.repeat, lambda: miyabi_aws.WorldState.from_json(s))
    assert parsed == world
    t_to_json, _ = best(args.repeat, world.to_json)

    rows = [
        ("Python objects -> Rust (from_dict)", t_from_dict, "json.dumps(objects)", t_dumps),
        ("Rust -> Python objects (to_dict)", t_to_dict, "json.loads(text)", t_loads),
        ("JSON text -> Rust (from_json)", t_from_json, "json.loads(text)", t_loads),
        ("Rust -> JSON text (to_json)", t_to_json, "json.dumps(objects)", t_dumps),
    ]
    print(f"{'conversion':<38} {'time s':>8}   {'baseline':<22} {'time s':>8}   ratio (baseline / conversion)")
    for name, t, base_name, t_base in rows:
        print(f"{name:<38} {t:>8.3f}   {base_name:<22} {t_base:>8.3f}   {t_base / t:.2f}x")


if __name__ == "__main__":
    main()
