"""moto_server, with its fidelity gaps that the project trips over closed.

- moto 5.2.5 answers GetBucketVersioning on a never-versioned bucket with the root element
  `<GetBucketVersioningResponse/>`, and GetBucketNotificationConfiguration on a bucket without
  notifications with `<GetBucketNotificationResponse/>`; real S3 answers
  `<VersioningConfiguration/>` and `<NotificationConfiguration/>`, and the Rust SDK rejects any
  other root. `EmptyRootFix` renames those roots and nothing else.
- moto 5.2.5 answers EC2's account-level snapshot-sharing and instance-metadata settings with an
  HTML 404. `AccountSettings` keeps them per Region, as EC2 does, and answers their Get, Enable,
  Disable and Modify actions in EC2's XML.
- moto 5.2.5's ModifyInstanceMetadataOptions resets every option the call leaves out (HttpEndpoint
  disappears when only HttpTokens is set); EC2 keeps them. `keep_unset_metadata_options` makes
  moto keep them too.
- moto 5.2.5 ignores DescribeSnapshots' `OwnerIds`, so `self` lists the snapshots behind its
  ~1,300 built-in public AMIs too. `AccountSettings` turns `self` into an `owner-id` filter on
  moto's account, which moto does apply.
- moto 5.2.5 checks a conditional PutObject or DeleteObject (`If-None-Match: *`, `If-Match`)
  and then writes, with other request threads running in between; S3 decides and writes at
  once, so that of two writers racing on one key exactly one wins. `atomic_conditional_writes`
  makes moto's check and write one step.

Usage: python moto_compat.py -H 127.0.0.1 -p PORT
"""

import argparse
import io
import os
import re
import threading
import uuid
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

# Per S3 subresource: moto's wrong root element, S3's.
ROOTS = {
    "versioning": (b"GetBucketVersioningResponse", b"VersioningConfiguration"),
    "notification": (b"GetBucketNotificationResponse", b"NotificationConfiguration"),
}


class EmptyRootFix:
    """Renames the wrong XML roots of GetBucketVersioning and GetBucketNotificationConfiguration."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING", "").split("&")
        fix = next((ROOTS[q] for q in query if q in ROOTS), None)
        if environ.get("REQUEST_METHOD") != "GET" or fix is None:
            return self.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body = b"".join(self.app(environ, capture))
        body = body.replace(*fix)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]


EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
# The account moto serves for the static test credentials.
MOTO_ACCOUNT = "123456789012"
SETTINGS_ACTIONS = {
    "GetSnapshotBlockPublicAccessState",
    "EnableSnapshotBlockPublicAccess",
    "DisableSnapshotBlockPublicAccess",
    "GetInstanceMetadataDefaults",
    "ModifyInstanceMetadataDefaults",
}


class AccountSettings:
    """Answers the EC2 account settings moto lacks, keeping them per Region."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.snapshot_sharing = {}  # Region -> state
        self.metadata = {}  # Region -> {"HttpTokens": ..., ...}

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO", "/") != "/":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = form.get("Action")
        if action == "DescribeSnapshots" and any(re.fullmatch(r"Owner(Id)?\.\d+", k) and v == "self"
                                                  for k, v in form.items()):
            n = 1 + sum(1 for k in form if re.fullmatch(r"Filter\.\d+\.Name", k))
            body += f"&Filter.{n}.Name=owner-id&Filter.{n}.Value.1={MOTO_ACCOUNT}".encode()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        if action not in SETTINGS_ACTIONS:
            return self.app(environ, start_response)
        scope = re.search(r"Credential=[^/]+/\d+/([^/]+)/ec2/", environ.get("HTTP_AUTHORIZATION", ""))
        region = scope.group(1) if scope else "us-east-1"
        with self.lock:
            inner = self.answer(action, region, form)
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_XMLNS}">'
               f"<requestId>{uuid.uuid4()}</requestId>{inner}</{action}Response>").encode()
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))])
        return [xml]

    def answer(self, action, region, form):
        if action == "GetSnapshotBlockPublicAccessState":
            return f"<state>{self.snapshot_sharing.get(region, 'unblocked')}</state>"
        if action == "EnableSnapshotBlockPublicAccess":
            self.snapshot_sharing[region] = form.get("State", "block-all-sharing")
            return f"<state>{self.snapshot_sharing[region]}</state>"
        if action == "DisableSnapshotBlockPublicAccess":
            self.snapshot_sharing[region] = "unblocked"
            return "<state>unblocked</state>"
        if action == "GetInstanceMetadataDefaults":
            fields = {"HttpTokens": "httpTokens", "HttpPutResponseHopLimit": "httpPutResponseHopLimit",
                      "HttpEndpoint": "httpEndpoint", "InstanceMetadataTags": "instanceMetadataTags"}
            held = self.metadata.get(region, {})
            inner = "".join(f"<{tag}>{held[key]}</{tag}>" for key, tag in fields.items() if key in held)
            return f"<accountLevel>{inner}</accountLevel>"
        # ModifyInstanceMetadataDefaults: "no-preference" clears a setting.
        held = self.metadata.setdefault(region, {})
        for key in ("HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint", "InstanceMetadataTags"):
            if key in form:
                if form[key] in ("no-preference", "-1"):
                    held.pop(key, None)
                else:
                    held[key] = form[key]
        return "<return>true</return>"


def keep_unset_metadata_options():
    """Patches moto so that ModifyInstanceMetadataOptions changes only the options it names."""
    from moto.ec2.models.instances import InstanceBackend

    modify = InstanceBackend.modify_instance_metadata_options

    def patched(self, instance_id, http_tokens=None, hop_limit=None, http_endpoint=None, dry_run=False,
                http_protocol=None, metadata_tags=None):
        held = self.get_instance(instance_id).metadata_options
        return modify(
            self, instance_id,
            http_tokens=http_tokens or held.http_tokens,
            hop_limit=hop_limit if hop_limit is not None else held.http_put_response_hop_limit,
            http_endpoint=http_endpoint or held.http_endpoint,
            dry_run=dry_run,
            http_protocol=http_protocol or held.http_protocol_ipv6,
            metadata_tags=metadata_tags or held.instance_metadata_tags,
        )

    InstanceBackend.modify_instance_metadata_options = patched


def public_ip_attribute():
    """Patches moto so that ModifyNetworkInterfaceAttribute's AssociatePublicIpAddress does what
    EC2 does: false removes the interface's public IPv4 address (and its auto-assignment), true
    assigns a new one. moto 5.2.5 accepts the parameter and keeps the address."""
    from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces
    from moto.ec2.utils import random_public_ip

    modify = ElasticNetworkInterfaces.modify_network_interface_attribute

    def patched(self):
        wanted = self._get_param("AssociatePublicIpAddress")
        if wanted is not None:
            self.error_on_dryrun()
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
            on = str(wanted).lower() == "true"
            eni.public_ip_auto_assign = on
            eni.public_ip = random_public_ip() if on else None
        return modify(self)

    ElasticNetworkInterfaces.modify_network_interface_attribute = patched


def atomic_conditional_writes():
    """Serialises moto's S3 PutObject and DeleteObject, so that a conditional one checks and
    writes as one step, as S3 does."""
    from moto.s3.responses import S3Response

    lock = threading.Lock()
    for name in ("put_object", "delete_object"):
        original = getattr(S3Response, name)

        def serialised(self, _original=original):
            with lock:
                return _original(self)

        setattr(S3Response, name, serialised)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    keep_unset_metadata_options()
    public_ip_attribute()
    atomic_conditional_writes()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, AccountSettings(EmptyRootFix(app)), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
