"""The wheel's tests run against the local AWS emulators started and seeded by `localaws`
(scripts/test.sh: `localaws --seed-demo 12 --region us-west-2 --region eu-central-1 -- pytest`),
which points the standard endpoint variables at them."""

import os

import boto3
import pytest

import miyabi_aws

REGIONS = os.environ.get("MIYABI_PYTEST_REGIONS", "us-west-2,eu-central-1").split(",")


@pytest.fixture(scope="session")
def regions():
    if not os.environ.get("AWS_ENDPOINT_URL"):
        pytest.fail("AWS_ENDPOINT_URL is not set: run the suite under localaws (see scripts/test.sh)")
    return REGIONS


@pytest.fixture(scope="session")
def world(regions):
    """The seeded estate, discovered once by the Rust θ1."""
    return miyabi_aws.discover(regions)


@pytest.fixture(scope="session")
def boto3_view(regions):
    """What boto3 itself sees of the estate, for independent comparison."""
    instance_ids = set()
    for region in regions:
        ec2 = boto3.client("ec2", region_name=region)
        for page in ec2.get_paginator("describe_instances").paginate():
            for reservation in page["Reservations"]:
                instance_ids |= {i["InstanceId"] for i in reservation["Instances"]}
    buckets = {b["Name"] for b in boto3.client("s3", region_name=regions[0]).list_buckets()["Buckets"]}
    return {"instance_ids": instance_ids, "buckets": buckets}
