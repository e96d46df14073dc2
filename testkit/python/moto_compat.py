"""moto_server, with a fix for a fidelity gap that the AWS SDK for Rust trips over.

moto 5.2.5 answers GetBucketVersioning on a never-versioned bucket with the root element
`<GetBucketVersioningResponse/>`; real S3 answers `<VersioningConfiguration/>`, and the Rust
SDK rejects any other root. This WSGI middleware renames that root and nothing else.

Usage: python moto_compat.py -H 127.0.0.1 -p PORT
"""

import argparse
import os

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

WRONG_ROOT = b"GetBucketVersioningResponse"
RIGHT_ROOT = b"VersioningConfiguration"


class VersioningRootFix:
    """Renames the wrong XML root of GetBucketVersioning answers."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if environ.get("REQUEST_METHOD") != "GET" or "versioning" not in query.split("&"):
            return self.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body = b"".join(self.app(environ, capture))
        body = body.replace(WRONG_ROOT, RIGHT_ROOT)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, VersioningRootFix(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
