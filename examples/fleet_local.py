"""A fleet of one on your machine: a queue, a results bucket, requests sent with
`miyabi_aws.submit_request`, a `miyabi-aws worker` taking them, and the results read back with
`miyabi_aws.request_result`.

    source scripts/env.sh
    "$CARGO_TARGET_DIR/release/localaws" --seed-demo 12 --region us-east-1 -- python examples/fleet_local.py

It needs the wheel (`pip install .`, which also installs the `miyabi-aws` command) and the
emulators' endpoint in `AWS_ENDPOINT_URL` (`localaws` sets it, with static test credentials).
Against AWS, the queue and the bucket come from `deploy/` instead.
"""

import os
import subprocess
import sys
import time
import uuid

import boto3

import miyabi_aws

REGION = os.environ.get("AWS_REGION", "us-east-1")


def main() -> int:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    name = f"miyabi-example-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}'},
    )["QueueUrl"]
    s3.create_bucket(Bucket=name)  # us-east-1 takes no location constraint

    ids = [f"r-{n}" for n in range(3)]
    for request_id in ids:
        miyabi_aws.submit_request(
            queue,
            {"schema_version": 1, "request_id": request_id, "tenant_id": "example",
             "regions": [REGION], "mode": "dry_run"},
            region=REGION,
            endpoint_url=endpoint,
        )
    worker = subprocess.Popen(
        ["miyabi-aws", "worker", "--region", REGION, "--queue-url", queue, "--results-bucket", name,
         "--wait-time", "1", "--visibility-timeout", "60", "--concurrency", "2"]
        + (["--endpoint-url", endpoint] if endpoint else []),
    )
    try:
        deadline = time.monotonic() + 300
        results = {}
        while len(results) < len(ids) and time.monotonic() < deadline:
            for request_id in ids:
                result = miyabi_aws.request_result(name, "example", request_id, region=REGION, endpoint_url=endpoint)
                if result is not None:
                    results[request_id] = result
            time.sleep(1)
    finally:
        worker.terminate()  # SIGTERM: the worker winds down as ECS would stop it
        worker.wait(timeout=60)
    for request_id, result in sorted(results.items()):
        last = result["run"]["iterations"][-1] if result["run"] else {}
        print(f"{request_id}: {result['status']}, ${last.get('monthly_cost_usd') or 0:,.2f}/month, "
              f"score {last.get('security_score')}, {len(result['outputs'])} files under s3://{name}/example/{request_id}/")
    return 0 if len(results) == len(ids) and all(r["status"] == "succeeded" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
