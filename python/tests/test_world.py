import json

import pytest

import miyabi_aws


def test_import_exposes_the_api_and_one_exception_hierarchy():
    assert miyabi_aws.__version__ == "0.1.0"
    assert miyabi_aws.SCHEMA_VERSION == 1
    for name in miyabi_aws.__all__:
        assert hasattr(miyabi_aws, name), name
    errors = [miyabi_aws.AwsError, miyabi_aws.WorldStateError, miyabi_aws.CatalogError,
              miyabi_aws.BridgeError, miyabi_aws.ConfigError,
              miyabi_aws.PhaseInputError, miyabi_aws.StorageError]
    assert all(issubclass(e, miyabi_aws.MiyabiError) for e in errors)
    assert issubclass(miyabi_aws.MiyabiError, Exception)
    assert json.loads(miyabi_aws.world_state_schema())["title"] == "WorldState"


def test_world_state_round_trips_through_json_files_and_dicts(world, tmp_path):
    assert miyabi_aws.WorldState.from_json(world.to_json()) == world
    path = tmp_path / "world_state.json"
    world.save(path)
    assert miyabi_aws.WorldState.load(path) == world
    as_dict = world.to_dict()
    assert as_dict["scope"]["regions"] == world.regions
    assert miyabi_aws.WorldState.from_dict(as_dict) == world
    as_dict["assessment"]["security_score"] = 1.0
    assert miyabi_aws.WorldState.from_dict(as_dict) != world


def test_bad_world_state_documents_raise_world_state_errors(tmp_path):
    with pytest.raises(miyabi_aws.WorldStateError, match=r"line 1, column"):
        miyabi_aws.WorldState.from_json('{"schema_version": 1, "scope": [}')
    with pytest.raises(miyabi_aws.WorldStateError, match="schema_version 99"):
        miyabi_aws.WorldState.from_json('{"schema_version": 99}')
    with pytest.raises(miyabi_aws.WorldStateError, match="missing.json"):
        miyabi_aws.WorldState.load(tmp_path / "missing.json")
    with pytest.raises(miyabi_aws.WorldStateError, match="missing field `scope`"):
        miyabi_aws.WorldState.from_dict({"schema_version": 1})


def test_a_bad_value_in_python_objects_is_named_by_its_path(world):
    document = world.to_dict()
    document["inventory"]["instances"][0]["state"] = 42
    with pytest.raises(miyabi_aws.WorldStateError, match=r"at `inventory\.instances\[0\]\.state`: unexpected type: 'int'"):
        miyabi_aws.WorldState.from_dict(document)


def test_reassessing_gives_the_same_assessment(world):
    again = miyabi_aws.assess(world)
    assert again == world
    assert again.monthly_cost == pytest.approx(sum(c["monthly_usd"] or 0 for c in world.costs))


def test_findings_in_security_formats_agree_with_the_world_and_validate(world):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from validate_asff import validate

    security = [f for f in world.findings if f["check_id"] != "cost_resource_unpriced"]
    failing = [f for f in security if f["status"] == "FAIL"]
    events = json.loads(world.findings_as("ocsf"))
    assert [e["metadata"]["event_code"] for e in events] == [f["check_id"] for f in security]
    assert {e["class_uid"] for e in events} == {2004}
    asff = json.loads(world.findings_as("asff"))
    assert len(asff) == len(security)
    assert validate(asff) == []
    assert {f["AwsAccountId"] for f in asff} == {world.account_id}
    sarif = json.loads(world.findings_as("sarif"))
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == [f["check_id"] for f in failing]
    with pytest.raises(ValueError, match='unknown findings format "csv"'):
        world.findings_as("csv")
