//! CloudFormation: one JSON template of the target state, for import with a change set of type
//! `IMPORT` (every resource keeps `DeletionPolicy: Retain`, which import requires).

use serde_json::{json, Map, Value};

use super::identifier;
use crate::plan::Change;
use crate::world::{Inventory, SecurityGroupRule, Tags, VersioningStatus};

fn tags(tags: &Tags) -> Value {
    tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect()
}

fn logical(prefix: &str, id: &str) -> String {
    identifier(prefix, id).replace('_', "")
}

fn rule(r: &SecurityGroupRule, peer: &str) -> Vec<Value> {
    let ports = |rule: &mut Map<String, Value>| {
        rule.insert("IpProtocol".into(), json!(r.protocol));
        if r.protocol != "-1" {
            rule.insert("FromPort".into(), json!(r.from_port.unwrap_or(0)));
            rule.insert("ToPort".into(), json!(r.to_port.unwrap_or(0)));
        }
    };
    let mut out = Vec::new();
    for (key, values) in [
        ("CidrIp", &r.ipv4_ranges),
        ("CidrIpv6", &r.ipv6_ranges),
        (peer, &r.group_ids),
    ] {
        for v in values {
            let mut rule = Map::new();
            ports(&mut rule);
            rule.insert(key.into(), json!(v));
            out.push(Value::Object(rule));
        }
    }
    out
}

/// The template.
#[must_use]
#[allow(clippy::too_many_lines)] // one resource type after the other, read top to bottom
pub fn render(inventory: &Inventory, destructive: &[&Change]) -> Value {
    let mut resources = Map::new();
    let mut volumes = Vec::new();
    let mut add = |name: String, kind: &str, properties: Value| {
        resources.insert(
            name,
            json!({"Type": kind, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": properties}),
        );
    };
    for i in &inventory.instances {
        let mut p = json!({
            "InstanceType": i.instance_type,
            "SecurityGroupIds": i.security_group_ids,
            "MetadataOptions": {"HttpTokens": if i.imds_v2_required { "required" } else { "optional" }},
            "Tags": tags(&i.tags),
        });
        if let Some(subnet) = &i.subnet_id {
            p["SubnetId"] = json!(subnet);
        }
        if let Some(ami) = &i.image_id {
            p["ImageId"] = json!(ami);
        }
        add(logical("Instance", &i.id), "AWS::EC2::Instance", p);
    }
    for v in &inventory.volumes {
        let mut p = json!({
            "AvailabilityZone": v.availability_zone.clone().unwrap_or_default(),
            "Size": v.size_gib,
            "VolumeType": v.volume_type,
            "Encrypted": v.encrypted,
            "Tags": tags(&v.tags),
        });
        if let (Some(iops), "gp3" | "io1" | "io2") = (v.iops, v.volume_type.as_str()) {
            p["Iops"] = json!(iops);
        }
        volumes.push(logical("Volume", &v.id));
        add(logical("Volume", &v.id), "AWS::EC2::Volume", p);
    }
    for a in &inventory.addresses {
        add(
            logical("Eip", &a.allocation_id),
            "AWS::EC2::EIP",
            json!({"Domain": "vpc", "Tags": tags(&a.tags)}),
        );
    }
    for g in &inventory.security_groups {
        let mut p = json!({
            "GroupName": g.name,
            "GroupDescription": g.description.as_deref().filter(|d| !d.is_empty()).unwrap_or(g.name.as_str()),
            "SecurityGroupIngress": g.ingress.iter().flat_map(|r| rule(r, "SourceSecurityGroupId")).collect::<Vec<_>>(),
            "SecurityGroupEgress": g.egress.iter().flat_map(|r| rule(r, "DestinationSecurityGroupId")).collect::<Vec<_>>(),
            "Tags": tags(&g.tags),
        });
        if let Some(vpc) = &g.vpc_id {
            p["VpcId"] = json!(vpc);
        }
        add(logical("SecurityGroup", &g.id), "AWS::EC2::SecurityGroup", p);
    }
    for b in &inventory.buckets {
        let mut p = json!({"BucketName": b.name, "Tags": tags(&b.tags)});
        if let Some(pab) = &b.public_access_block {
            p["PublicAccessBlockConfiguration"] = json!({
                "BlockPublicAcls": pab.block_public_acls,
                "IgnorePublicAcls": pab.ignore_public_acls,
                "BlockPublicPolicy": pab.block_public_policy,
                "RestrictPublicBuckets": pab.restrict_public_buckets,
            });
        }
        if let Some(algorithm) = &b.default_encryption {
            p["BucketEncryption"] = json!({"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}
            ]});
        }
        if b.versioning != VersioningStatus::Off {
            let status = if b.versioning == VersioningStatus::Enabled {
                "Enabled"
            } else {
                "Suspended"
            };
            p["VersioningConfiguration"] = json!({"Status": status});
        }
        add(logical("Bucket", &b.name), "AWS::S3::Bucket", p);
    }
    for d in &inventory.db_instances {
        let mut p = json!({
            "DBInstanceIdentifier": d.id,
            "DBInstanceClass": d.class,
            "Engine": d.engine,
            "AllocatedStorage": d.allocated_storage_gib.to_string(),
            "PubliclyAccessible": d.publicly_accessible,
            "StorageEncrypted": d.storage_encrypted,
            "BackupRetentionPeriod": d.backup_retention_days,
            "DeletionProtection": d.deletion_protection,
            "MultiAZ": d.multi_az,
            "ManageMasterUserPassword": true,
            "Tags": tags(&d.tags),
        });
        // EngineVersion is left out: an imported instance keeps its own, and a version AWS has
        // since deprecated would make the template invalid for anything but the import.
        if let Some(storage) = &d.storage_type {
            p["StorageType"] = json!(storage);
        }
        if let Some(user) = &d.master_username {
            p["MasterUsername"] = json!(user);
        }
        add(logical("Db", &d.id), "AWS::RDS::DBInstance", p);
    }
    // cfn-lint warns against hard-coded zones (W3010); an imported volume's zone is a fact.
    for name in volumes {
        if let Some(entry) = resources.get_mut(&name) {
            entry["Metadata"] = json!({"cfn-lint": {"config": {"ignore_checks": ["W3010"]}}});
        }
    }
    let deferred: Vec<Value> = destructive
        .iter()
        .map(|c| json!({"step": c.id, "action": c.action, "resource": c.resource.id, "region": c.resource.region}))
        .collect();
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Target state of the estate after the Miyabi plan, for import with a change set of type IMPORT.",
        "Metadata": {"Miyabi": {"StepsLeftToDeployment": deferred}},
        "Resources": resources,
    })
}
