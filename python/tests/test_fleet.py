"""The fleet's Python entry: a request sent to the queue, refused requests never sent, results read."""

import json
import os
import uuid

import boto3
import pytest

import miyabi_aws

REGION = "us-west-2"


def _clients():
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    return (
        endpoint,
        boto3.client("sqs", region_name=REGION, endpoint_url=endpoint),
        boto3.client("s3", region_name=REGION, endpoint_url=endpoint),
    )


def _request(request_id, **extra):
    return {"schema_version": 1, "request_id": request_id, "tenant_id": "acme",
            "regions": [REGION], "mode": "dry_run", **extra}


def test_a_request_goes_to_the_queue_as_a_worker_reads_it():
    endpoint, sqs, _ = _clients()
    url = sqs.create_queue(QueueName=f"miyabi-py-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    message_id = miyabi_aws.submit_request(url, _request("r-1"), region=REGION, endpoint_url=endpoint)
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert got[0]["MessageId"] == message_id
    assert json.loads(got[0]["Body"]) == _request("r-1")
    assert got[0]["MessageAttributes"]["tenant_id"]["StringValue"] == "acme"


def test_a_request_a_worker_would_refuse_is_never_sent():
    endpoint, sqs, _ = _clients()
    url = sqs.create_queue(QueueName=f"miyabi-py-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for bad in (_request("../escape"), _request("r-2", regions=[]), {"request_id": "r-3"}):
        with pytest.raises(miyabi_aws.ConfigError):
            miyabi_aws.submit_request(url, bad, region=REGION, endpoint_url=endpoint)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)


def test_a_result_is_read_once_written_and_is_none_before():
    endpoint, _, s3 = _clients()
    bucket = f"miyabi-py-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    assert miyabi_aws.request_result(bucket, "acme", "r-9", region=REGION, endpoint_url=endpoint) is None
    result = {"schema_version": 1, "status": "refused", "request": _request("r-9"), "worker": "w",
              "started_at": "2026-12-06T00:00:00Z", "finished_at": "2026-12-06T00:00:01Z",
              "error": "regions is empty", "run": None, "worker_api_calls": {}, "recovered_steps": 0,
              "outputs": []}
    s3.put_object(Bucket=bucket, Key="acme/r-9/result.json", Body=json.dumps(result))
    read = miyabi_aws.request_result(bucket, "acme", "r-9", region=REGION, endpoint_url=endpoint)
    assert read["status"] == "refused" and read["error"] == "regions is empty"
    with pytest.raises(miyabi_aws.ConfigError):
        miyabi_aws.request_result(bucket, "..", "r-9", region=REGION, endpoint_url=endpoint)
