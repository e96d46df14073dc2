#!/usr/bin/env python3
"""Writes the JSON Schema (draft 2020-12) of an OCSF Detection Finding (class 2004) with the
`cloud` and `datetime` profiles, at OCSF 1.5.0: the version Prowler's json-ocsf output declares.

The schema is generated from the OCSF server's export of ocsf-schema 1.5.0 (branch `v1.5.0`,
commit f0c227b4383ba64f223c3c9d82a2936ee96e7f04), as bundled by the `ocsf-json-schema` package,
which needs no network and no other dependency. The output is committed
(schema/external/ocsf-1.5.0-detection_finding.schema.json); to regenerate it:

    python3 -m venv /tmp/ocsf && /tmp/ocsf/bin/pip install ocsf-json-schema==1.2.0
    /tmp/ocsf/bin/python scripts/gen_ocsf_schema.py \
        > schema/external/ocsf-1.5.0-detection_finding.schema.json

The bytes are the same on every run (sha256 in schema/external/README.md).
"""

import json
import sys

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.5.0"
PROFILES = ["cloud", "datetime"]


def main() -> int:
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=VERSION))
    name = schema.lookup_class_name_from_uid(class_uid=2004)
    assert name == "detection_finding", name
    json.dump(schema.get_class_schema(class_name=name, profiles=PROFILES), sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
