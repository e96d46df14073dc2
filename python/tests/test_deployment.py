"""θ4 from Python: a dry run changes nothing, and an apply runs exactly the approved steps."""

import boto3

import miyabi_aws


def imds_required(region, instance_id):
    ec2 = boto3.client("ec2", region_name=region)
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return instance["MetadataOptions"]["HttpTokens"] == "required"


def test_dry_run_is_the_default_and_changes_nothing(world, regions):
    plan = miyabi_aws.optimize(world)["execution_plan"]
    imds = [s for s in plan["steps"] if s["change"]["action"] == "require_imds_v2"]
    assert imds, "the seeded estate has instances without IMDSv2"
    report = miyabi_aws.deploy(plan, regions)
    assert report["mode"] == "dry_run"
    statuses = {s["outcome"]["status"] for s in report["steps"]}
    assert statuses <= {"would_apply", "skipped", "refused", "already_applied"}, statuses
    assert "would_apply" in statuses
    step = imds[0]["change"]["resource"]
    assert not imds_required(step["region"], step["id"])


def test_apply_runs_exactly_the_approved_step_ids(regions):
    # Instances of its own, in a Region of its own, so the session's estate stays as seeded.
    region = "ap-northeast-3"
    ec2 = boto3.client("ec2", region_name=region)
    ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=4, MaxCount=4)
    plan = miyabi_aws.optimize(miyabi_aws.discover([region]))["execution_plan"]
    imds = [s for s in plan["steps"] if s["change"]["action"] == "require_imds_v2"]
    chosen, left = imds[:2], imds[2:]
    assert chosen and left
    report = miyabi_aws.deploy(plan, [region], apply=True, approve=[s["id"] for s in chosen])
    outcome = {s["id"]: s["outcome"]["status"] for s in report["steps"]}
    assert {s["id"] for s in report["steps"] if s["outcome"]["status"] == "applied"} == {s["id"] for s in chosen}
    for s in chosen:
        resource = s["change"]["resource"]
        assert imds_required(resource["region"], resource["id"])
    for s in left:
        assert outcome[s["id"]] == "skipped"
        resource = s["change"]["resource"]
        assert not imds_required(resource["region"], resource["id"])


def test_deployment_is_a_rust_phase():
    phase = miyabi_aws.Deployment(["us-west-2"], apply=False)
    assert isinstance(phase, miyabi_aws.RustPhase)
    assert phase.theta == 4
