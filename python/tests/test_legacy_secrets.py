"""The legacy discovery's secret rules give the Rust engine's results on the shared cases."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

from miyabi_legacy import secrets  # noqa: E402

CASES = json.loads((ROOT / "testdata" / "secrets.json").read_text())


def test_the_rules_find_what_the_shared_cases_say_and_nothing_else():
    for case in CASES["text"]:
        found = [[hit["line"], hit["kind"]] for hit in secrets.scan(case["text"])]
        assert found == case["hits"], case["text"]
    for case in CASES["tags"]:
        assert secrets.is_secret_tag(case["key"], case["value"]) == case["secret"], case
