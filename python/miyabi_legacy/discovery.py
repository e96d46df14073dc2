"""Legacy θ1 discovery: the estate of one Region as a world-state inventory, with boto3.

Written the way such a script usually is: sequential boto3 paginators, one service after another.
It emits the inventory part of the world-state schema (schema/world_state.schema.json), so that
the Rust assessment prices and checks its output exactly as it does the Rust discovery's.

    python -m miyabi_legacy.discovery --region us-east-1 --output json [--profile NAME] [--lookback-days 14]
"""

import argparse
import base64
import datetime as dt
import gzip
import json
import os
import re
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from miyabi_legacy import secrets

OWNERS = {"ec2": "Bill Gates", "ebs": "Bill Gates", "s3": "Steve Jobs", "rds": "Noguchi"}
MAX_QUERIES = 500
MAX_POINTS = 100_800


def _tags(items):
    """Tags, with each value that looks like a credential redacted (as the Rust θ1 does)."""
    out = {}
    for t in items or []:
        if "Key" in t:
            value = t.get("Value", "")
            out[t["Key"]] = secrets.REDACTED if secrets.is_secret_tag(t["Key"], value) else value
    return out


def _user_data_scan(ec2, instance_id):
    """What a scan for secrets finds in an instance's user data; the data itself is not kept."""
    value = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData").get("UserData", {}).get("Value")
    if not value:
        return {"status": "empty"}
    try:
        data = base64.b64decode(value.strip(), validate=True)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except (ValueError, OSError, EOFError):
        return {"status": "undecodable"}
    return {"status": "scanned", "secrets": secrets.scan(text)}


def _time(value):
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _partition(region):
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _stopped_since(reason):
    m = re.search(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) GMT\)", reason or "")
    return m.group(1).replace(" ", "T") + "Z" if m else None


def _rule(p):
    protocol = p.get("IpProtocol", "-1")
    everything = protocol == "-1"
    return {
        "protocol": protocol,
        "from_port": None if everything else p.get("FromPort"),
        "to_port": None if everything else p.get("ToPort"),
        "ipv4_ranges": [r["CidrIp"] for r in p.get("IpRanges", []) if "CidrIp" in r],
        "ipv6_ranges": [r["CidrIpv6"] for r in p.get("Ipv6Ranges", []) if "CidrIpv6" in r],
        "group_ids": [g["GroupId"] for g in p.get("UserIdGroupPairs", []) if "GroupId" in g],
    }


def discover_ec2(client, region):
    ec2 = client("ec2", region)
    account = None
    instances, volumes, addresses, groups = [], [], [], []
    for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 1000}):
        for res in page["Reservations"]:
            account = account or res.get("OwnerId")
            for i in res["Instances"]:
                state = i.get("State", {}).get("Name", "unknown")
                group_ids = {g["GroupId"] for g in i.get("SecurityGroups", [])}
                for eni in i.get("NetworkInterfaces", []):
                    group_ids |= {g["GroupId"] for g in eni.get("Groups", [])}
                instances.append({
                    "id": i["InstanceId"],
                    "arn": "",
                    "region": region,
                    "availability_zone": i.get("Placement", {}).get("AvailabilityZone"),
                    "instance_type": i.get("InstanceType", "unknown"),
                    "image_id": i.get("ImageId"),
                    "state": state,
                    "stopped_since": _stopped_since(i.get("StateTransitionReason")) if state == "stopped" else None,
                    "launch_time": _time(i.get("LaunchTime")),
                    "architecture": i.get("Architecture"),
                    "platform": i.get("PlatformDetails"),
                    "vpc_id": i.get("VpcId"),
                    "subnet_id": i.get("SubnetId"),
                    "public_ip": i.get("PublicIpAddress"),
                    "security_group_ids": sorted(group_ids),
                    "volume_ids": [b["Ebs"]["VolumeId"] for b in i.get("BlockDeviceMappings", []) if "Ebs" in b],
                    "imds_v2_required": i.get("MetadataOptions", {}).get("HttpTokens") == "required",
                    "imds_endpoint": i.get("MetadataOptions", {}).get("HttpEndpoint"),
                    "instance_profile_arn": i.get("IamInstanceProfile", {}).get("Arn"),
                    "monitoring": i.get("Monitoring", {}).get("State"),
                    "virtualization_type": i.get("VirtualizationType"),
                    "enclave_enabled": i.get("EnclaveOptions", {}).get("Enabled", False),
                    "network_interface_ids": [n["NetworkInterfaceId"] for n in i.get("NetworkInterfaces", []) if "NetworkInterfaceId" in n],
                    "user_data": None if state == "terminated" else _user_data_scan(ec2, i["InstanceId"]),
                    "tags": _tags(i.get("Tags")),
                    "owner_agent": OWNERS["ec2"],
                })
    for page in ec2.get_paginator("describe_volumes").paginate(PaginationConfig={"PageSize": 500}):
        for v in page["Volumes"]:
            volumes.append({
                "id": v["VolumeId"],
                "arn": "",
                "region": region,
                "availability_zone": v.get("AvailabilityZone"),
                "volume_type": v.get("VolumeType", "unknown"),
                "size_gib": v.get("Size", 0),
                "iops": v.get("Iops"),
                "throughput_mibps": v.get("Throughput"),
                "encrypted": v.get("Encrypted", False),
                "state": v.get("State", "unknown"),
                "attached_to": [a["InstanceId"] for a in v.get("Attachments", []) if "InstanceId" in a],
                "create_time": _time(v.get("CreateTime")),
                "tags": _tags(v.get("Tags")),
                "owner_agent": OWNERS["ebs"],
            })
    for a in ec2.describe_addresses()["Addresses"]:
        if "AllocationId" not in a:
            continue
        addresses.append({
            "allocation_id": a["AllocationId"],
            "arn": "",
            "region": region,
            "public_ip": a.get("PublicIp", ""),
            "association_id": a.get("AssociationId"),
            "instance_id": a.get("InstanceId") or None,
            "network_interface_id": a.get("NetworkInterfaceId"),
            "tags": _tags(a.get("Tags")),
            "owner_agent": OWNERS["ec2"],
        })
    for page in ec2.get_paginator("describe_security_groups").paginate(PaginationConfig={"PageSize": 1000}):
        for g in page["SecurityGroups"]:
            account = account or g.get("OwnerId")
            groups.append({
                "id": g["GroupId"],
                "arn": "",
                "region": region,
                "name": g.get("GroupName", ""),
                "description": g.get("Description"),
                "vpc_id": g.get("VpcId"),
                "ingress": [_rule(p) for p in g.get("IpPermissions", [])],
                "egress": [_rule(p) for p in g.get("IpPermissionsEgress", [])],
                "tags": _tags(g.get("Tags")),
                "owner_agent": OWNERS["ec2"],
            })
    return account, instances, volumes, addresses, groups


def discover_posture(client, region):
    """What only the security checks read: interfaces, network ACLs, subnets, own snapshots and
    the account's settings in the Region."""
    ec2 = client("ec2", region)
    interfaces, acls, subnets, snapshots = [], [], [], []
    for page in ec2.get_paginator("describe_network_interfaces").paginate(PaginationConfig={"PageSize": 1000}):
        for n in page["NetworkInterfaces"]:
            att = n.get("Attachment", {})
            interfaces.append({
                "id": n["NetworkInterfaceId"],
                "region": region,
                "interface_type": n.get("InterfaceType", "interface"),
                "status": n.get("Status", "unknown"),
                "instance_id": att.get("InstanceId"),
                "instance_owner_id": att.get("InstanceOwnerId"),
                "group_ids": [g["GroupId"] for g in n.get("Groups", []) if "GroupId" in g],
                "vpc_id": n.get("VpcId"),
                "subnet_id": n.get("SubnetId"),
            })
    for page in ec2.get_paginator("describe_network_acls").paginate(PaginationConfig={"PageSize": 1000}):
        for a in page["NetworkAcls"]:
            acls.append({
                "id": a["NetworkAclId"],
                "arn": "",
                "region": region,
                "vpc_id": a.get("VpcId"),
                "is_default": a.get("IsDefault", False),
                "entries": [{
                    "rule_number": e.get("RuleNumber", 32767),
                    "protocol": e.get("Protocol", "-1"),
                    "action": e.get("RuleAction", "deny"),
                    "egress": e.get("Egress", False),
                    "cidr_block": e.get("CidrBlock"),
                    "ipv6_cidr_block": e.get("Ipv6CidrBlock"),
                    "from_port": e.get("PortRange", {}).get("From"),
                    "to_port": e.get("PortRange", {}).get("To"),
                } for e in a.get("Entries", [])],
                "subnet_ids": [s["SubnetId"] for s in a.get("Associations", []) if "SubnetId" in s],
                "tags": _tags(a.get("Tags")),
            })
    explicit, main = {}, {}
    for page in ec2.get_paginator("describe_route_tables").paginate(PaginationConfig={"PageSize": 100}):
        for t in page["RouteTables"]:
            to_internet = any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and str(r.get("GatewayId", "")).startswith("igw-")
                              for r in t.get("Routes", []))
            for a in t.get("Associations", []):
                if a.get("Main"):
                    if t.get("VpcId"):
                        main[t["VpcId"]] = to_internet
                elif a.get("SubnetId"):
                    explicit[a["SubnetId"]] = to_internet
    for page in ec2.get_paginator("describe_subnets").paginate(PaginationConfig={"PageSize": 1000}):
        for n in page["Subnets"]:
            if "SubnetId" in n and "VpcId" in n:
                public = explicit.get(n["SubnetId"], main.get(n["VpcId"], False))
                subnets.append({"id": n["SubnetId"], "region": region, "vpc_id": n["VpcId"], "public": public})
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 1000}):
        for n in page["Snapshots"]:
            perms = ec2.describe_snapshot_attribute(SnapshotId=n["SnapshotId"], Attribute="createVolumePermission")
            snapshots.append({
                "id": n["SnapshotId"],
                "arn": f"arn:{_partition(region)}:ec2:{region}::snapshot/{n['SnapshotId']}",
                "region": region,
                "volume_id": n.get("VolumeId") or None,
                "size_gib": n.get("VolumeSize", 0),
                "encrypted": n.get("Encrypted", False),
                "public": any(p.get("Group") == "all" for p in perms.get("CreateVolumePermissions", [])),
                "start_time": _time(n.get("StartTime")),
                "tags": _tags(n.get("Tags")),
            })
    settings = {
        "account_id": "",
        "region": region,
        "ebs_encryption_by_default": ec2.get_ebs_encryption_by_default().get("EbsEncryptionByDefault"),
        "snapshot_block_public_access": ec2.get_snapshot_block_public_access_state().get("State"),
        "instance_metadata_http_tokens":
            ec2.get_instance_metadata_defaults().get("AccountLevel", {}).get("HttpTokens", "no-preference"),
    }
    return interfaces, acls, subnets, snapshots, [settings]


def _absent(call, codes):
    try:
        return call()
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in codes:
            return None
        raise


def _policy_document(answer):
    """The bucket policy as JSON, or its text when it is not JSON; None without a policy."""
    if answer is None or "Policy" not in answer:
        return None
    try:
        return json.loads(answer["Policy"])
    except ValueError:
        return answer["Policy"]


def discover_s3(client, region):
    """Every bucket of the account (S3 is global), read through a client of its own Region."""
    s3 = client("s3", region)
    buckets = []
    for page in s3.get_paginator("list_buckets").paginate():
        for b in page.get("Buckets", []):
            name = b["Name"]
            bucket_region = b.get("BucketRegion")
            if not bucket_region:
                loc = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
                bucket_region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(loc, loc)
            c = client("s3", bucket_region)
            pab = _absent(lambda: c.get_public_access_block(Bucket=name), {"NoSuchPublicAccessBlockConfiguration"})
            pol = _absent(lambda: c.get_bucket_policy_status(Bucket=name), {"NoSuchBucketPolicy"})
            acl = c.get_bucket_acl(Bucket=name)
            enc = _absent(lambda: c.get_bucket_encryption(Bucket=name), {"ServerSideEncryptionConfigurationNotFoundError"})
            versioning = c.get_bucket_versioning(Bucket=name)
            ver = versioning.get("Status")
            policy = _absent(lambda: c.get_bucket_policy(Bucket=name), {"NoSuchBucketPolicy"})
            ownership = _absent(lambda: c.get_bucket_ownership_controls(Bucket=name), {"OwnershipControlsNotFoundError"})
            lock = _absent(lambda: c.get_object_lock_configuration(Bucket=name), {"ObjectLockConfigurationNotFoundError"})
            lifecycle = _absent(lambda: c.get_bucket_lifecycle_configuration(Bucket=name), {"NoSuchLifecycleConfiguration"})
            replication = _absent(lambda: c.get_bucket_replication(Bucket=name), {"ReplicationConfigurationNotFoundError"})
            notifications = c.get_bucket_notification_configuration(Bucket=name)
            log = c.get_bucket_logging(Bucket=name)
            tags = _absent(lambda: c.get_bucket_tagging(Bucket=name), {"NoSuchTagSet", "NoSuchTagSetError"})
            block = pab and pab.get("PublicAccessBlockConfiguration")
            grants = []
            for g in acl.get("Grants", []):
                who = g.get("Grantee", {})
                grantee = who.get("URI") or who.get("ID") or who.get("EmailAddress")
                if grantee:
                    grants.append({"grantee": grantee, "permission": g.get("Permission", "UNKNOWN")})
            rules = (enc or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
            algo = next((r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules if "ApplyServerSideEncryptionByDefault" in r), None)
            buckets.append({
                "name": name,
                "arn": f"arn:aws:s3:::{name}",
                "region": bucket_region,
                "created": _time(b.get("CreationDate")),
                "public_access_block": None if not block else {
                    "block_public_acls": block.get("BlockPublicAcls", False),
                    "ignore_public_acls": block.get("IgnorePublicAcls", False),
                    "block_public_policy": block.get("BlockPublicPolicy", False),
                    "restrict_public_buckets": block.get("RestrictPublicBuckets", False),
                },
                "policy_is_public": None if pol is None else pol.get("PolicyStatus", {}).get("IsPublic"),
                "acl_grants": grants,
                "default_encryption": algo,
                "versioning": {"Enabled": "enabled", "Suspended": "suspended"}.get(ver, "off"),
                "logging_enabled": "LoggingEnabled" in log,
                "size_bytes": None,
                "tags": _tags((tags or {}).get("TagSet")),
                "owner_agent": OWNERS["s3"],
                "policy": _policy_document(policy),
                "mfa_delete": versioning.get("MFADelete") == "Enabled",
                "object_ownership": next((r["ObjectOwnership"] for r in (ownership or {}).get("OwnershipControls", {}).get("Rules", [])), None),
                "object_lock": lock is not None,
                "lifecycle_enabled": any(r.get("Status") == "Enabled" for r in (lifecycle or {}).get("Rules", [])),
                "replication_rules": [{"status": r.get("Status", ""), "destination_bucket": r.get("Destination", {}).get("Bucket")}
                                      for r in (replication or {}).get("ReplicationConfiguration", {}).get("Rules", [])],
                "event_notifications": "EventBridgeConfiguration" in notifications or any(notifications.get(k) for k in (
                    "TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")),
            })
    return buckets


def discover_rds(client, region):
    rds = client("rds", region)
    out = []
    for page in rds.get_paginator("describe_db_instances").paginate(PaginationConfig={"PageSize": 100}):
        for d in page["DBInstances"]:
            out.append({
                "id": d["DBInstanceIdentifier"],
                "arn": d.get("DBInstanceArn", ""),
                "region": region,
                "class": d.get("DBInstanceClass", "unknown"),
                "engine": d.get("Engine", "unknown"),
                "engine_version": d.get("EngineVersion"),
                "status": d.get("DBInstanceStatus", "unknown"),
                "allocated_storage_gib": d.get("AllocatedStorage", 0),
                "storage_type": d.get("StorageType"),
                "publicly_accessible": d.get("PubliclyAccessible", False),
                "storage_encrypted": d.get("StorageEncrypted", False),
                "backup_retention_days": d.get("BackupRetentionPeriod", 0),
                "deletion_protection": d.get("DeletionProtection", False),
                "multi_az": d.get("MultiAZ", False),
                "master_username": d.get("MasterUsername"),
                "tags": _tags(d.get("TagList")),
                "owner_agent": OWNERS["rds"],
                "cluster_id": d.get("DBClusterIdentifier"),
                "replica_source": d.get("ReadReplicaSourceDBInstanceIdentifier"),
                "auto_minor_version_upgrade": d.get("AutoMinorVersionUpgrade", False),
                "iam_auth": d.get("IAMDatabaseAuthenticationEnabled", False),
                "cloudwatch_logs_exports": d.get("EnabledCloudwatchLogsExports", []),
                "enhanced_monitoring_arn": d.get("EnhancedMonitoringResourceArn"),
                "copy_tags_to_snapshot": d.get("CopyTagsToSnapshot", False),
                "port": d.get("Endpoint", {}).get("Port"),
                "vpc_id": d.get("DBSubnetGroup", {}).get("VpcId"),
                "subnet_ids": [n["SubnetIdentifier"] for n in d.get("DBSubnetGroup", {}).get("Subnets", [])
                               if n.get("SubnetStatus") == "Active" and "SubnetIdentifier" in n],
                "security_group_ids": [g["VpcSecurityGroupId"] for g in d.get("VpcSecurityGroups", [])
                                       if g.get("Status") == "active" and "VpcSecurityGroupId" in g],
                "engine_lifecycle_support": d.get("EngineLifecycleSupport"),
            })
    return out


def discover_rds_clusters(client, region):
    rds = client("rds", region)
    clusters, snapshots = [], []
    for page in rds.get_paginator("describe_db_clusters").paginate(PaginationConfig={"PageSize": 100}):
        for c in page["DBClusters"]:
            clusters.append({
                "id": c["DBClusterIdentifier"],
                "arn": c.get("DBClusterArn", ""),
                "region": region,
                "engine": c.get("Engine", "unknown"),
                "status": c.get("Status", "unknown"),
                "storage_encrypted": c.get("StorageEncrypted", False),
                "deletion_protection": c.get("DeletionProtection", False),
                "multi_az": c.get("MultiAZ", False),
                "master_username": c.get("MasterUsername"),
                "auto_minor_version_upgrade": c.get("AutoMinorVersionUpgrade", False),
                "iam_auth": c.get("IAMDatabaseAuthenticationEnabled", False),
                "cloudwatch_logs_exports": c.get("EnabledCloudwatchLogsExports", []),
                "backtrack_window": c.get("BacktrackWindow", 0),
                "copy_tags_to_snapshot": c.get("CopyTagsToSnapshot", False),
                "port": c.get("Port"),
                "backup_retention_days": c.get("BackupRetentionPeriod", 0),
                "tags": _tags(c.get("TagList")),
            })
    for page in rds.get_paginator("describe_db_snapshots").paginate(PaginationConfig={"PageSize": 100}):
        for n in page["DBSnapshots"]:
            attrs = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=n["DBSnapshotIdentifier"])
            values = attrs.get("DBSnapshotAttributesResult", {}).get("DBSnapshotAttributes", [])
            snapshots.append({
                "id": n["DBSnapshotIdentifier"], "arn": n.get("DBSnapshotArn", ""), "region": region, "of": "db",
                "source_id": n.get("DBInstanceIdentifier"), "snapshot_type": n.get("SnapshotType"),
                "encrypted": n.get("Encrypted", False),
                "public": any("all" in a.get("AttributeValues", []) for a in values),
            })
    for page in rds.get_paginator("describe_db_cluster_snapshots").paginate(PaginationConfig={"PageSize": 100}):
        for n in page["DBClusterSnapshots"]:
            attrs = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=n["DBClusterSnapshotIdentifier"])
            values = attrs.get("DBClusterSnapshotAttributesResult", {}).get("DBClusterSnapshotAttributes", [])
            snapshots.append({
                "id": n["DBClusterSnapshotIdentifier"], "arn": n.get("DBClusterSnapshotArn", ""), "region": region,
                "of": "cluster", "source_id": n.get("DBClusterIdentifier"), "snapshot_type": n.get("SnapshotType"),
                "encrypted": n.get("StorageEncrypted", False),
                "public": any("all" in a.get("AttributeValues", []) for a in values),
            })
    return clusters, snapshots


def _series_requests(inventory, region, window):
    reqs = []

    def add(rid, ns, metric, dims, stat, period=3600, win=window):
        reqs.append({"resource_id": rid, "namespace": ns, "metric_name": metric, "dimensions": dims,
                     "stat": stat, "period_seconds": period, "window": win})

    for i in inventory["instances"]:
        for metric, stat in (("CPUUtilization", "Average"), ("NetworkIn", "Sum"), ("NetworkOut", "Sum")):
            add(i["id"], "AWS/EC2", metric, {"InstanceId": i["id"]}, stat)
    for v in inventory["volumes"]:
        for metric in ("VolumeReadOps", "VolumeWriteOps"):
            add(v["id"], "AWS/EBS", metric, {"VolumeId": v["id"]}, "Sum")
    for d in inventory["db_instances"]:
        add(d["id"], "AWS/RDS", "CPUUtilization", {"DBInstanceIdentifier": d["id"]}, "Average")
        add(d["id"], "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": d["id"]}, "Maximum")
    return reqs


def _bucket_size_requests(buckets, window):
    """BucketSizeBytes is daily: three days back always hold the latest value."""
    return [{"resource_id": b["name"], "namespace": "AWS/S3", "metric_name": "BucketSizeBytes",
             "dimensions": {"BucketName": b["name"], "StorageType": "StandardStorage"}, "stat": "Average",
             "period_seconds": 86_400, "window": (window[1] - 3 * 86_400, window[1])} for b in buckets]


def _fetch_all(cw, region, reqs):
    reqs = sorted(reqs, key=lambda r: r["period_seconds"])
    series = []
    batch, points = [], 0
    for r in reqs + [None]:
        p = 0 if r is None else -(-(r["window"][1] - r["window"][0]) // r["period_seconds"])
        if batch and (r is None or len(batch) == MAX_QUERIES or points + p > MAX_POINTS or r["window"] != batch[0]["window"]):
            series += _fetch(cw, region, batch)
            batch, points = [], 0
        if r is not None:
            batch.append(r)
            points += p
    return series


def discover_metrics(client, region, inventory, window):
    """Series of this Region's resources, and the size of every bucket from its own Region."""
    cw = client("cloudwatch", region)
    known = {i["id"] for i in inventory["instances"]}
    reqs = []
    if inventory["instances"]:
        for page in cw.get_paginator("list_metrics").paginate(Namespace="CWAgent", MetricName="mem_used_percent"):
            for m in page["Metrics"]:
                dims = {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}
                if dims.get("InstanceId") in known:
                    reqs.append({"resource_id": dims["InstanceId"], "namespace": "CWAgent", "metric_name": "mem_used_percent",
                                 "dimensions": dims, "stat": "Average", "period_seconds": 3600, "window": window})
    reqs += _series_requests(inventory, region, window)
    reqs += _bucket_size_requests([b for b in inventory["buckets"] if b["region"] == region], window)
    series = _fetch_all(cw, region, reqs)
    for other in sorted({b["region"] for b in inventory["buckets"]} - {region}):
        theirs = [b for b in inventory["buckets"] if b["region"] == other]
        series += _fetch_all(client("cloudwatch", other), other, _bucket_size_requests(theirs, window))
    return series


def _fetch(cw, region, batch):
    start, end = batch[0]["window"]
    queries = [{
        "Id": f"q{k}",
        "MetricStat": {
            "Metric": {"Namespace": r["namespace"], "MetricName": r["metric_name"],
                       "Dimensions": [{"Name": n, "Value": v} for n, v in sorted(r["dimensions"].items())]},
            "Period": r["period_seconds"], "Stat": r["stat"]},
        "ReturnData": True,
    } for k, r in enumerate(batch)]
    points = [dict() for _ in batch]
    for page in cw.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, ScanBy="TimestampAscending",
            StartTime=dt.datetime.fromtimestamp(start, dt.timezone.utc), EndTime=dt.datetime.fromtimestamp(end, dt.timezone.utc)):
        for res in page["MetricDataResults"]:
            slot = points[int(res["Id"][1:])]
            for t, v in zip(res["Timestamps"], res["Values"]):
                slot.setdefault(int(t.timestamp()), v)
    out = []
    for r, pts in zip(batch, points):
        if pts:
            ts = sorted(pts)
            out.append({"resource_id": r["resource_id"], "region": region, "namespace": r["namespace"],
                        "metric_name": r["metric_name"], "dimensions": dict(sorted(r["dimensions"].items())),
                        "stat": r["stat"], "period_seconds": r["period_seconds"],
                        "timestamps": ts, "values": [pts[t] for t in ts]})
    return out


def discover(region, profile=None, lookback_hours=14 * 24, until=None, endpoint_url=None):
    """The inventory of one Region (and every S3 bucket), in the world-state inventory schema.

    `until` (Unix seconds, default now) ends the metric window; `endpoint_url` overrides the
    standard endpoint configuration. Returns (inventory, account_id).
    """
    session = boto3.Session(profile_name=profile)
    # A slow endpoint (an emulator holding millions of points) may need more than boto3's 60 s.
    config = Config(read_timeout=float(os.environ.get("MIYABI_LEGACY_READ_TIMEOUT", 60)))

    def client(service, region_name):
        return session.client(service, region_name=region_name, endpoint_url=endpoint_url, config=config)

    until = int(until if until is not None else dt.datetime.now(dt.timezone.utc).timestamp())
    until -= until % 3600
    window = (until - lookback_hours * 3600, until)
    account, instances, volumes, addresses, groups = discover_ec2(client, region)
    inventory = {
        "instances": instances, "volumes": volumes, "addresses": addresses, "security_groups": groups,
        "buckets": discover_s3(client, region), "db_instances": discover_rds(client, region), "metrics": [],
    }
    (inventory["network_interfaces"], inventory["network_acls"], inventory["subnets"], inventory["snapshots"],
     inventory["region_settings"]) = discover_posture(client, region)
    inventory["db_clusters"], inventory["db_snapshots"] = discover_rds_clusters(client, region)
    inventory["metrics"] = discover_metrics(client, region, inventory, window)
    for b in inventory["buckets"]:
        sizes = [m for m in inventory["metrics"] if m["metric_name"] == "BucketSizeBytes" and m["resource_id"] == b["name"]]
        b["size_bytes"] = sizes[0]["values"][-1] if sizes else None
    arn = lambda kind, rid: f"arn:{_partition(region)}:ec2:{region}:{account or ''}:{kind}/{rid}"  # noqa: E731
    for settings in inventory["region_settings"]:
        settings["account_id"] = account or ""
    for kind, key, items in (("instance", "id", instances), ("volume", "id", volumes),
                             ("elastic-ip", "allocation_id", addresses), ("security-group", "id", groups),
                             ("network-acl", "id", inventory["network_acls"])):
        for item in items:
            item["arn"] = arn(kind, item[key])
    return inventory, account


def main(argv=None):
    parser = argparse.ArgumentParser(description="Legacy Miyabi discovery (boto3)")
    parser.add_argument("--region", required=True)
    parser.add_argument("--profile")
    parser.add_argument("--lookback-days", type=int, default=14)
    parser.add_argument("--endpoint-url")
    parser.add_argument("--until", type=int, help="end of the metric window, Unix seconds (default: now)")
    parser.add_argument("--output", choices=["json"], default="json")
    args = parser.parse_args(argv)
    inventory, account = discover(args.region, args.profile, args.lookback_days * 24, args.until, args.endpoint_url)
    json.dump({"account_id": account, "region": args.region, "inventory": inventory}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
