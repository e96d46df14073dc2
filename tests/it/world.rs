//! The world-state document: lossless round trip, the committed schema, typed errors.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use miyabi_aws::assessment::assess;
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::world::*;
use miyabi_aws::WorldState;

fn schema_path() -> std::path::PathBuf {
    crate::support::repo_root().join("schema/world_state.schema.json")
}

/// A world with every optional field set and every enum variant used somewhere.
pub fn fixture_world() -> WorldState {
    let t = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
    let tags: Tags = BTreeMap::from([("Name".into(), "web-1".into()), ("Environment".into(), "prod".into())]);
    let rule = SecurityGroupRule {
        protocol: "tcp".into(),
        from_port: Some(22),
        to_port: Some(22),
        ipv4_ranges: vec!["0.0.0.0/0".into()],
        ipv6_ranges: vec!["::/0".into()],
        group_ids: vec!["sg-0000000000000000b".into()],
    };
    let inventory = Inventory {
        instances: vec![Ec2Instance {
            id: "i-0123456789abcdef0".into(),
            arn: "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            availability_zone: Some("us-east-1a".into()),
            instance_type: "m5.large".into(),
            image_id: Some("ami-12c6146b".into()),
            state: "running".into(),
            stopped_since: Some(t),
            launch_time: Some(t),
            architecture: Some("x86_64".into()),
            platform: Some("Linux/UNIX".into()),
            vpc_id: Some("vpc-0123456789abcdef0".into()),
            subnet_id: Some("subnet-0123456789abcdef0".into()),
            public_ip: Some("54.1.2.3".into()),
            security_group_ids: vec!["sg-0000000000000000a".into()],
            volume_ids: vec!["vol-1".into()],
            imds_v2_required: false,
            imds_endpoint: Some("enabled".into()),
            instance_profile_arn: None,
            monitoring: Some("disabled".into()),
            virtualization_type: Some("hvm".into()),
            enclave_enabled: false,
            network_interface_ids: vec!["eni-1".into()],
            user_data: None,
            tags: tags.clone(),
            owner_agent: "Bill Gates".into(),
        }],
        volumes: vec![EbsVolume {
            id: "vol-1".into(),
            arn: "arn:aws:ec2:us-east-1:123456789012:volume/vol-1".into(),
            region: "us-east-1".into(),
            availability_zone: Some("us-east-1a".into()),
            volume_type: "gp3".into(),
            size_gib: 100,
            iops: Some(3000),
            throughput_mibps: Some(125),
            encrypted: true,
            state: "in-use".into(),
            attached_to: vec!["i-0123456789abcdef0".into()],
            create_time: Some(t),
            tags: tags.clone(),
            owner_agent: "Bill Gates".into(),
        }],
        addresses: vec![ElasticIp {
            allocation_id: "eipalloc-1".into(),
            arn: "arn:aws:ec2:us-east-1:123456789012:elastic-ip/eipalloc-1".into(),
            region: "us-east-1".into(),
            public_ip: "54.9.9.9".into(),
            association_id: Some("eipassoc-1".into()),
            instance_id: Some("i-0123456789abcdef0".into()),
            network_interface_id: Some("eni-1".into()),
            tags: tags.clone(),
            owner_agent: "Bill Gates".into(),
        }],
        security_groups: vec![SecurityGroup {
            id: "sg-0000000000000000a".into(),
            arn: "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0000000000000000a".into(),
            region: "us-east-1".into(),
            name: "default".into(),
            description: Some("default VPC security group".into()),
            vpc_id: Some("vpc-0123456789abcdef0".into()),
            ingress: vec![rule.clone()],
            egress: vec![SecurityGroupRule {
                protocol: "-1".into(),
                from_port: None,
                to_port: None,
                ..rule
            }],
            tags: tags.clone(),
            owner_agent: "Bill Gates".into(),
        }],
        buckets: [
            VersioningStatus::Enabled,
            VersioningStatus::Suspended,
            VersioningStatus::Off,
        ]
        .into_iter()
        .enumerate()
        .map(|(i, versioning)| S3Bucket {
            name: format!("bucket-{i}"),
            arn: format!("arn:aws:s3:::bucket-{i}"),
            region: "us-east-1".into(),
            created: Some(t),
            public_access_block: Some(PublicAccessBlock::ALL),
            policy_is_public: Some(false),
            acl_grants: vec![AclGrant {
                grantee: "http://acs.amazonaws.com/groups/global/AllUsers".into(),
                permission: "READ".into(),
            }],
            default_encryption: Some("AES256".into()),
            versioning,
            logging_enabled: true,
            size_bytes: Some(1.5 * f64::from(1u32 << 30)),
            tags: tags.clone(),
            owner_agent: "Steve Jobs".into(),
            policy: Some(serde_json::json!({"Version": "2012-10-17", "Statement": []})),
            mfa_delete: false,
            object_ownership: Some("BucketOwnerEnforced".into()),
            object_lock: false,
            lifecycle_enabled: true,
            replication_rules: vec![ReplicationRule {
                status: "Enabled".into(),
                destination_bucket: Some("arn:aws:s3:::bucket-0".into()),
            }],
            event_notifications: false,
        })
        .collect(),
        db_instances: vec![RdsInstance {
            id: "orders".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:db:orders".into(),
            region: "us-east-1".into(),
            class: "db.m5.large".into(),
            engine: "postgres".into(),
            engine_version: Some("16.3".into()),
            status: "available".into(),
            allocated_storage_gib: 100,
            storage_type: Some("gp2".into()),
            publicly_accessible: true,
            storage_encrypted: false,
            backup_retention_days: 0,
            deletion_protection: false,
            multi_az: true,
            master_username: Some("postgres".into()),
            tags: tags.clone(),
            owner_agent: "Noguchi".into(),
            cluster_id: None,
            replica_source: None,
            auto_minor_version_upgrade: true,
            iam_auth: false,
            cloudwatch_logs_exports: vec!["postgresql".into()],
            enhanced_monitoring_arn: None,
            copy_tags_to_snapshot: false,
            port: Some(5432),
            vpc_id: Some("vpc-0123456789abcdef0".into()),
            subnet_ids: vec!["subnet-0123456789abcdef0".into()],
            security_group_ids: vec!["sg-0000000000000000a".into()],
            engine_lifecycle_support: None,
        }],
        db_clusters: vec![RdsCluster {
            id: "ledger".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:cluster:ledger".into(),
            region: "us-east-1".into(),
            engine: "aurora-postgresql".into(),
            status: "available".into(),
            storage_encrypted: true,
            deletion_protection: true,
            multi_az: true,
            master_username: Some("ledger_owner".into()),
            auto_minor_version_upgrade: true,
            iam_auth: true,
            cloudwatch_logs_exports: vec!["postgresql".into()],
            backtrack_window: 0,
            copy_tags_to_snapshot: true,
            port: Some(5432),
            backup_retention_days: 7,
            tags: tags.clone(),
        }],
        db_snapshots: vec![RdsSnapshot {
            id: "rds:orders-2026-12-01".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-2026-12-01".into(),
            region: "us-east-1".into(),
            of: "db".into(),
            source_id: Some("orders".into()),
            snapshot_type: Some("automated".into()),
            encrypted: false,
            public: false,
        }],
        metrics: vec![MetricSeries {
            resource_id: "i-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            namespace: "AWS/EC2".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: BTreeMap::from([("InstanceId".into(), "i-0123456789abcdef0".into())]),
            stat: "Average".into(),
            period_seconds: 3600,
            timestamps: vec![t.timestamp(), t.timestamp() + 3600, t.timestamp() + 7200],
            // Values that only an exact float round trip preserves.
            values: vec![0.1 + 0.2, 1.0 / 3.0, 99.999_999_999_999_99],
        }],
        network_interfaces: vec![NetworkInterface {
            id: "eni-1".into(),
            region: "us-east-1".into(),
            interface_type: "interface".into(),
            status: "in-use".into(),
            instance_id: Some("i-0123456789abcdef0".into()),
            instance_owner_id: Some("123456789012".into()),
            group_ids: vec!["sg-0000000000000000a".into()],
            vpc_id: Some("vpc-0123456789abcdef0".into()),
            subnet_id: Some("subnet-0123456789abcdef0".into()),
        }],
        network_acls: vec![NetworkAcl {
            id: "acl-1".into(),
            arn: "arn:aws:ec2:us-east-1:123456789012:network-acl/acl-1".into(),
            region: "us-east-1".into(),
            vpc_id: Some("vpc-0123456789abcdef0".into()),
            is_default: true,
            entries: vec![NetworkAclEntry {
                rule_number: 100,
                protocol: "-1".into(),
                action: "allow".into(),
                egress: false,
                cidr_block: Some("0.0.0.0/0".into()),
                ipv6_cidr_block: None,
                from_port: None,
                to_port: None,
            }],
            subnet_ids: vec!["subnet-0123456789abcdef0".into()],
            tags: tags.clone(),
        }],
        subnets: vec![Subnet {
            id: "subnet-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            vpc_id: "vpc-0123456789abcdef0".into(),
            public: true,
        }],
        snapshots: vec![EbsSnapshot {
            id: "snap-1".into(),
            arn: "arn:aws:ec2:us-east-1::snapshot/snap-1".into(),
            region: "us-east-1".into(),
            volume_id: Some("vol-1".into()),
            size_gib: 100,
            encrypted: true,
            public: false,
            start_time: Some(t),
            tags,
        }],
        region_settings: vec![RegionSettings {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            ebs_encryption_by_default: Some(false),
            snapshot_block_public_access: Some("unblocked".into()),
            instance_metadata_http_tokens: Some("no-preference".into()),
        }],
    };
    let assessment = assess(&inventory, PriceCatalog::built_in());
    WorldState {
        schema_version: SCHEMA_VERSION,
        scope: Scope {
            account_id: Some("123456789012".into()),
            regions: vec!["us-east-1".into()],
            captured_at: t,
            lookback_hours: 336,
            metrics_until: None,
            completeness: Completeness::Partial {
                // A gap naming a resource of its own, so that what the fixture holds stays
                // whole for the rules that plan on it.
                gaps: vec![ScanGap {
                    region: "us-east-1".into(),
                    service: "cloudwatch".into(),
                    operation: "GetMetricData".into(),
                    resources: vec!["i-unread".into()],
                    error: "timed out".into(),
                }],
            },
        },
        inventory,
        assessment,
    }
}

#[test]
fn json_round_trip_is_lossless() {
    let world = fixture_world();
    let text = world.to_json();
    let back = WorldState::from_json(&text).expect("parses");
    assert_eq!(back, world);
    assert_eq!(back.to_json(), text, "a second round trip changes nothing");
    assert_eq!(back.inventory.metrics[0].values[0], 0.1 + 0.2);
}

#[test]
fn committed_schema_matches_the_code() {
    let generated = serde_json::to_string_pretty(&WorldState::json_schema()).unwrap() + "\n";
    if std::env::var_os("MIYABI_BLESS").is_some() {
        std::fs::write(schema_path(), &generated).unwrap();
    }
    let committed = std::fs::read_to_string(schema_path()).expect("schema/world_state.schema.json is committed");
    assert!(
        committed == generated,
        "schema/world_state.schema.json is stale: the world model changed. Re-run with MIYABI_BLESS=1 and commit it."
    );
}

#[test]
fn documents_validate_against_the_committed_schema_and_drift_is_caught() {
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("valid JSON Schema");
    let mut doc = serde_json::to_value(fixture_world()).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut complete = fixture_world();
    complete.scope.completeness = Completeness::Complete;
    assert!(validator.is_valid(&serde_json::to_value(complete).unwrap()));
    // A field the schema does not know is rejected: the schema is closed.
    doc["inventory"]["instances"][0]["surprise"] = serde_json::json!(1);
    assert!(!validator.is_valid(&doc));
}

#[test]
fn malformed_json_is_a_typed_error_with_a_position() {
    let text = fixture_world().to_json();
    let truncated = &text[..text.len() / 2];
    match WorldState::from_json(truncated) {
        Err(WorldStateError::Malformed { line, .. }) => assert!(line > 1),
        other => panic!("expected Malformed, got {other:?}"),
    }
    match WorldState::from_json("not json at all") {
        Err(WorldStateError::Malformed { line: 1, column, .. }) => assert!(column <= 2),
        other => panic!("expected Malformed on line 1, got {other:?}"),
    }
}

#[test]
fn wrong_shape_names_the_field() {
    let mut doc = serde_json::to_value(fixture_world()).unwrap();
    doc["inventory"]["volumes"][0]["size_gib"] = serde_json::json!("big");
    let err = WorldState::from_json(&doc.to_string()).unwrap_err();
    assert!(matches!(err, WorldStateError::Malformed { .. }));
    assert!(err.to_string().contains("invalid type"), "{err}");
    doc["inventory"]["volumes"][0]
        .as_object_mut()
        .unwrap()
        .remove("size_gib");
    let err = WorldState::from_json(&doc.to_string()).unwrap_err();
    assert!(err.to_string().contains("missing field `size_gib`"), "{err}");
}

#[test]
fn other_schema_versions_are_refused_by_version() {
    let mut doc = serde_json::to_value(fixture_world()).unwrap();
    doc["schema_version"] = serde_json::json!(2);
    // Even with an unknown shape, the version is what the error names.
    doc["inventory"] = serde_json::json!({"things": []});
    match WorldState::from_json(&doc.to_string()) {
        Err(WorldStateError::UnsupportedVersion { found: 2, expected: 1 }) => {}
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    doc.as_object_mut().unwrap().remove("schema_version");
    assert!(matches!(
        WorldState::from_json(&doc.to_string()),
        Err(WorldStateError::Malformed { .. })
    ));
}

#[test]
fn load_names_the_file_and_save_is_atomic() {
    let dir = super::support::tmp_dir("world-io");
    let missing = dir.join("nope.json");
    let err = WorldState::load(&missing).unwrap_err();
    assert!(err.to_string().contains("nope.json"), "{err}");
    let path = dir.join("world_state_0.json");
    let world = fixture_world();
    world.save(&path).unwrap();
    assert_eq!(WorldState::load(&path).unwrap(), world);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}
