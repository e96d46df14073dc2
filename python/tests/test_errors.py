"""Errors from Python: typed, with where and why as attributes, and never a panic."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import miyabi_aws

def ec2_error(code, message):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
            f'<Message>{message}</Message></Error></Errors>'
            '<RequestID>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestID></Response>').encode()


class Refusing(BaseHTTPRequestHandler):
    """An endpoint that answers every call with the EC2 error its server holds."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", "text/xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args):
        pass


def serve(status, body):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    server.answer = (status, body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def refusing_credentials():
    server, url = serve(401, ec2_error("AuthFailure", "AWS was not able to validate the provided access credentials"))
    yield url
    server.shutdown()


@pytest.fixture
def denying_every_read():
    server, url = serve(403, ec2_error("UnauthorizedOperation", "You are not authorized to perform this operation."))
    yield url
    server.shutdown()


def test_an_aws_error_names_the_call_the_region_the_code_and_whether_to_retry(refusing_credentials):
    with pytest.raises(miyabi_aws.AwsError) as raised:
        miyabi_aws.discover(["eu-west-3"], endpoint_url=refusing_credentials)
    e = raised.value
    assert (e.service, e.region, e.code, e.retryable) == ("ec2", "eu-west-3", "AuthFailure", False)
    assert e.operation and e.operation.startswith("Describe")
    assert e.operation in str(e) and "eu-west-3" in str(e)


def test_a_denied_read_is_a_gap_of_a_partial_world_not_an_exception(denying_every_read):
    world = miyabi_aws.discover(["eu-west-3"], endpoint_url=denying_every_read)
    assert world.is_partial
    denied = [g for g in world.gaps if g["service"] == "ec2"]
    assert denied, world.gaps
    assert all(g["region"] == "eu-west-3" and "UnauthorizedOperation" in g["error"] for g in denied)
    assert {g["operation"] for g in denied} >= {"DescribeInstances", "DescribeVolumes"}


def test_errors_without_an_aws_call_carry_none():
    with pytest.raises(miyabi_aws.ConfigError) as raised:
        miyabi_aws.Discovery(["us-east-1"], lookback_hours=0)
    assert raised.value.service is None and raised.value.retryable is False
    assert "lookback_hours" in str(raised.value)


def series_world(world, **series_fields):
    doc = world.to_dict()
    doc["inventory"]["metrics"][0].update(series_fields)
    return doc


def test_a_world_whose_series_disagree_is_refused_with_its_path_not_a_panic(world):
    doc = world.to_dict()
    first = doc["inventory"]["metrics"][0]
    first["values"] = first["values"] + [1.0]
    with pytest.raises(miyabi_aws.WorldStateError, match=r"inventory\.metrics\[0\]\.values"):
        miyabi_aws.WorldState.from_dict(doc)
    first["values"] = first["values"][:-1]
    first["timestamps"] = list(reversed(first["timestamps"]))
    with pytest.raises(miyabi_aws.WorldStateError, match=r"timestamps must ascend"):
        miyabi_aws.WorldState.from_dict(doc)
    first["timestamps"] = list(reversed(first["timestamps"]))
    first["values"][0] = float("nan")
    with pytest.raises(miyabi_aws.WorldStateError, match="not a finite number"):
        miyabi_aws.WorldState.from_dict(doc)


def test_an_execution_plan_that_lists_a_missing_step_is_refused():
    with pytest.raises(miyabi_aws.ArtefactError, match=r"waves\[0\]\.steps\[0\]"):
        miyabi_aws.ExecutionPlan.from_dict({"schema_version": 1, "steps": [], "monthly_saving_usd": 0.0, "excluded": [],
                                            "waves": [{"index": 0, "kind": "configuration", "steps": ["nope"]}]})


def test_out_of_range_settings_are_config_errors():
    with pytest.raises(miyabi_aws.ConfigError, match="lookback_hours"):
        miyabi_aws.discover(["us-east-1"], lookback_hours=0)
