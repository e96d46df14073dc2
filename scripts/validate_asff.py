#!/usr/bin/env python3
"""Validates a JSON array of ASFF findings as Security Hub's BatchImportFindings would take them.

Three layers, since botocore's own validator checks only part of the model:
1. botocore's ParamValidator on the operation's input shape (required members, unknown members,
   types, minimum lengths), from schema/external/securityhub-BatchImportFindings.json;
2. what the model says and ParamValidator skips: enums, patterns, maximum lengths and counts;
3. the limits Security Hub documents but the model does not carry (the ASFF syntax page): Id and
   GeneratorId up to 512 characters, Title 256, Description 1,024, a 12-digit AwsAccountId,
   1 to 32 Resources, up to 50 Types, RFC 3339 timestamps.

A file may hold any number of findings: they are validated as the calls of at most 100 findings
that would import them.

Usage: validate_asff.py FINDINGS.json [--model MODEL.json]. Prints one line per error and exits 1
when there is any, 2 when the input cannot be read.
"""

import argparse
import json
import re
import sys
from pathlib import Path

from botocore.model import ServiceModel
from botocore.validate import ParamValidator

MODEL = Path(__file__).resolve().parent.parent / "schema/external/securityhub-BatchImportFindings.json"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
DOCUMENTED_MAX = {"Id": 512, "GeneratorId": 512, "Title": 256, "Description": 1024}


def walk(shape, value, path, errors):
    """The model's constraints ParamValidator does not check."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                walk(shape.members[key], item, f"{path}.{key}" if path else key, errors)
    elif kind == "list" and isinstance(value, list):
        most = shape.metadata.get("max")
        if most is not None and len(value) > most:
            errors.append(f"{path}: {len(value)} items, at most {most}")
        for k, item in enumerate(value):
            walk(shape.member, item, f"{path}[{k}]", errors)
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            walk(shape.key, key, f"{path}<key {key!r}>", errors)
            walk(shape.value, item, f"{path}[{key!r}]", errors)
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} is none of {shape.enum}")
        pattern = shape.metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value, re.S):
            errors.append(f"{path}: {value!r} does not match {pattern!r}")
        most = shape.metadata.get("max")
        if most is not None and len(value) > most:
            errors.append(f"{path}: {len(value)} characters, at most {most}")


def documented(findings, errors):
    for k, finding in enumerate(findings):
        if not isinstance(finding, dict):
            continue
        at = f"Findings[{k}]"
        for key, most in DOCUMENTED_MAX.items():
            if isinstance(finding.get(key), str) and len(finding[key]) > most:
                errors.append(f"{at}.{key}: {len(finding[key])} characters, at most {most}")
        account = finding.get("AwsAccountId")
        if not (isinstance(account, str) and re.fullmatch(r"\d{12}", account)):
            errors.append(f"{at}.AwsAccountId: {account!r} is not 12 digits")
        resources = finding.get("Resources")
        if not (isinstance(resources, list) and 1 <= len(resources) <= 32):
            errors.append(f"{at}.Resources: 1 to 32 resources")
        if len(finding.get("Types") or []) > 50:
            errors.append(f"{at}.Types: at most 50")
        for key in ("FirstObservedAt", "LastObservedAt", "CreatedAt", "UpdatedAt"):
            if key in finding and not RFC3339.fullmatch(str(finding[key])):
                errors.append(f"{at}.{key}: {finding[key]!r} is not an RFC 3339 time")


def validate(findings, model_path=MODEL):
    """Every error of `findings` (a list of ASFF findings), as sentences."""
    model = json.loads(Path(model_path).read_text())
    shape = ServiceModel(model, "securityhub").operation_model("BatchImportFindings").input_shape
    errors = []
    for start in range(0, max(len(findings), 1), 100):
        params = {"Findings": findings[start : start + 100]}
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            errors.append(report.generate_report())
        walk(shape, params, "", errors)
    documented(findings, errors)
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("findings", type=Path)
    parser.add_argument("--model", type=Path, default=MODEL)
    args = parser.parse_args()
    try:
        findings = json.loads(args.findings.read_text())
    except (OSError, ValueError) as e:
        print(f"{args.findings}: {e}", file=sys.stderr)
        return 2
    if not isinstance(findings, list):
        print(f"{args.findings}: not a JSON array of findings", file=sys.stderr)
        return 2
    errors = validate(findings, args.model)
    for error in errors:
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
