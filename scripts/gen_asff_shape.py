#!/usr/bin/env python3
"""Writes the part of Security Hub's service model that defines the input of BatchImportFindings
(the AWS Security Finding Format): the operation and every shape it reaches, without the
documentation strings, as a botocore service model that `scripts/validate_asff.py` loads.

ASFF has no JSON Schema of its own; this is the model AWS's SDKs validate against. It is read
from the installed botocore (pinned in requirements/dev.txt) and committed, so that the tests
validate against a fixed version:

    python3 scripts/gen_asff_shape.py > schema/external/securityhub-BatchImportFindings.json
"""

import json
import sys

import botocore
import botocore.session

OPERATION = "BatchImportFindings"


def strip_docs(value):
    if isinstance(value, dict):
        return {k: strip_docs(v) for k, v in value.items() if k != "documentation"}
    if isinstance(value, list):
        return [strip_docs(v) for v in value]
    return value


def main() -> int:
    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model("securityhub", "service-2")
    shapes = model["shapes"]
    operation = model["operations"][OPERATION]
    reached: set[str] = set()
    pending = [operation["input"]["shape"], operation["output"]["shape"]]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        shape = shapes[name]
        pending += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
        pending += [m["shape"] for m in shape.get("members", {}).values()]
    out = {
        "botocore": botocore.__version__,
        "version": "2.0",
        "metadata": model["metadata"],
        "operations": {OPERATION: {k: v for k, v in operation.items() if k in ("name", "http", "input", "output")}},
        "shapes": strip_docs({name: shapes[name] for name in sorted(reached)}),
    }
    json.dump(out, sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
