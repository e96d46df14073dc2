"""θ6 from Python: a two-iteration cycle that applies changes, then learns from them, leaves
outcomes in a knowledge base that Python reads back."""

import boto3

import miyabi_aws


def test_outcomes_of_applied_changes_are_readable_from_python(tmp_path):
    region = "ap-southeast-3"  # a Region of its own: the session's estate stays as seeded
    boto3.client("ec2", region_name=region).run_instances(
        ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=3, MaxCount=3)
    kb_path = tmp_path / "knowledge.redb"
    cycle = miyabi_aws.Cycle([
        miyabi_aws.Discovery([region]),
        miyabi_aws.Planning(),
        miyabi_aws.Optimization(),
        miyabi_aws.Deployment([region], apply=True, approve="all"),
        miyabi_aws.Monitoring(),
        miyabi_aws.Learning(knowledge_base=kb_path),
    ], max_iterations=2)
    report = cycle.run(out_dir=tmp_path)
    assert [p["theta"] for p in report.iterations[0]["phases"]] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "integration_report.md").exists()
    assert (tmp_path / "deployment_report.md").exists()
    assert (tmp_path / "learning_report.md").exists()
    # The estate's buckets are listed by every Region; only this deployment's Region is touched.
    assert "outside this deployment's Regions" in (tmp_path / "deployment_report.md").read_text()

    with miyabi_aws.KnowledgeBase(kb_path) as kb:
        outcomes = kb.outcomes()
        assert outcomes, "iteration 1 judged what iteration 0 applied"
        assert {o["action"] for o in outcomes} >= {"require_imds_v2"}
        assert all(o["iteration"] == 1 and o["verdict"] in {"held", "breached", "rolled_back"} for o in outcomes)
        assert kb.headroom() == {}
    imds = [o for o in outcomes if o["action"] == "require_imds_v2"]
    ec2 = boto3.client("ec2", region_name=region)
    for o in imds:
        instance = ec2.describe_instances(InstanceIds=[o["resource"]["id"]])["Reservations"][0]["Instances"][0]
        assert instance["MetadataOptions"]["HttpTokens"] == "required"
    # θ5 of iteration 0 put a CPU alarm on each changed instance.
    alarms = {a["AlarmName"] for a in boto3.client("cloudwatch", region_name=region)
              .describe_alarms(AlarmNamePrefix="miyabi-cpu-")["MetricAlarms"]}
    assert {f"miyabi-cpu-{o['resource']['id']}" for o in imds} <= alarms
