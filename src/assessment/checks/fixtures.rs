//! A failing and a passing fixture for every check, and the tests that hold each check to them.

use super::{registry, run};
use crate::world::{
    AclGrant, EbsSnapshot, EbsVolume, Ec2Instance, ElasticIp, FindingStatus, Inventory, NetworkAcl, NetworkAclEntry,
    NetworkInterface, RdsCluster, RdsInstance, RdsSnapshot, RegionSettings, S3Bucket, SecretHit, SecurityGroup,
    SecurityGroupRule, Subnet, Tags, UserDataScan, VersioningStatus,
};

const REGION: &str = "us-east-1";

pub(crate) fn instance(id: &str) -> Ec2Instance {
    Ec2Instance {
        id: id.into(),
        arn: format!("arn:aws:ec2:{REGION}:111122223333:instance/{id}"),
        region: REGION.into(),
        availability_zone: Some("us-east-1a".into()),
        instance_type: "m5.large".into(),
        image_id: Some("ami-1".into()),
        state: "running".into(),
        stopped_since: None,
        launch_time: None,
        architecture: Some("x86_64".into()),
        platform: Some("Linux/UNIX".into()),
        vpc_id: Some("vpc-1".into()),
        subnet_id: Some("subnet-1".into()),
        public_ip: None,
        security_group_ids: vec![],
        volume_ids: vec![],
        imds_v2_required: true,
        imds_endpoint: Some("enabled".into()),
        instance_profile_arn: Some("arn:aws:iam::111122223333:instance-profile/app".into()),
        monitoring: Some("enabled".into()),
        virtualization_type: Some("hvm".into()),
        enclave_enabled: false,
        network_interface_ids: vec![],
        user_data: Some(UserDataScan::Empty),
        tags: Tags::new(),
        owner_agent: "test".into(),
    }
}

pub(crate) fn rule(protocol: &str, ports: Option<(i32, i32)>, cidr: &str) -> SecurityGroupRule {
    let (v4, v6) = if cidr.contains(':') {
        (vec![], vec![cidr.to_owned()])
    } else {
        (vec![cidr.to_owned()], vec![])
    };
    SecurityGroupRule {
        protocol: protocol.into(),
        from_port: ports.map(|p| p.0),
        to_port: ports.map(|p| p.1),
        ipv4_ranges: v4,
        ipv6_ranges: v6,
        group_ids: vec![],
    }
}

pub(crate) fn tcp(port: i32, cidr: &str) -> SecurityGroupRule {
    rule("tcp", Some((port, port)), cidr)
}

pub(crate) fn group(id: &str, name: &str, ingress: Vec<SecurityGroupRule>) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        arn: String::new(),
        region: REGION.into(),
        name: name.into(),
        description: None,
        vpc_id: Some("vpc-1".into()),
        ingress,
        egress: vec![],
        tags: Tags::new(),
        owner_agent: "test".into(),
    }
}

pub(crate) fn interface(id: &str, groups: &[&str], instance: Option<&str>) -> NetworkInterface {
    NetworkInterface {
        id: id.into(),
        region: REGION.into(),
        interface_type: "interface".into(),
        status: "in-use".into(),
        instance_id: instance.map(str::to_owned),
        instance_owner_id: instance.map(|_| "111122223333".to_owned()),
        group_ids: groups.iter().map(|g| (*g).to_owned()).collect(),
        vpc_id: Some("vpc-1".into()),
        subnet_id: Some("subnet-1".into()),
    }
}

/// One group in use by one instance's interface.
pub(crate) fn used_group(g: SecurityGroup) -> Inventory {
    let mut i = instance("i-1");
    i.security_group_ids = vec![g.id.clone()];
    i.network_interface_ids = vec!["eni-1".into()];
    Inventory {
        network_interfaces: vec![interface("eni-1", &[&g.id], Some("i-1"))],
        instances: vec![i],
        security_groups: vec![g],
        ..Inventory::default()
    }
}

fn one_instance(edit: impl FnOnce(&mut Ec2Instance)) -> Inventory {
    let mut i = instance("i-1");
    edit(&mut i);
    Inventory {
        instances: vec![i],
        ..Inventory::default()
    }
}

/// An instance with a public IP in a public subnet, its group carrying `ingress`.
fn exposed_instance(ingress: Vec<SecurityGroupRule>) -> Inventory {
    let mut inv = used_group(group("sg-1", "app", ingress));
    inv.instances[0].public_ip = Some("203.0.113.10".into());
    inv.subnets = vec![Subnet {
        id: "subnet-1".into(),
        region: REGION.into(),
        vpc_id: "vpc-1".into(),
        public: true,
    }];
    inv
}

fn enclave_host(ingress: Vec<SecurityGroupRule>) -> Inventory {
    let mut inv = used_group(group("sg-1", "app", ingress));
    inv.instances[0].enclave_enabled = true;
    inv
}

fn volume(id: &str, encrypted: bool) -> EbsVolume {
    EbsVolume {
        id: id.into(),
        arn: String::new(),
        region: REGION.into(),
        availability_zone: None,
        volume_type: "gp3".into(),
        size_gib: 10,
        iops: None,
        throughput_mibps: None,
        encrypted,
        state: "in-use".into(),
        attached_to: vec![],
        create_time: None,
        tags: Tags::new(),
        owner_agent: "test".into(),
    }
}

fn snapshot(encrypted: bool, public: bool) -> Inventory {
    Inventory {
        snapshots: vec![EbsSnapshot {
            id: "snap-1".into(),
            arn: String::new(),
            region: REGION.into(),
            volume_id: Some("vol-1".into()),
            size_gib: 10,
            encrypted,
            public,
            start_time: None,
            tags: Tags::new(),
        }],
        ..Inventory::default()
    }
}

fn address(associated: bool) -> Inventory {
    Inventory {
        addresses: vec![ElasticIp {
            allocation_id: "eipalloc-1".into(),
            arn: String::new(),
            region: REGION.into(),
            public_ip: "198.51.100.7".into(),
            association_id: associated.then(|| "eipassoc-1".to_owned()),
            instance_id: None,
            network_interface_id: None,
            tags: Tags::new(),
            owner_agent: "test".into(),
        }],
        ..Inventory::default()
    }
}

/// Account settings in a Region that has an instance, a volume and a snapshot.
fn settings(ebs: bool, snapshots: &str, tokens: &str) -> Inventory {
    let mut inv = snapshot(true, false);
    inv.instances = vec![instance("i-1")];
    inv.volumes = vec![volume("vol-1", true)];
    inv.region_settings = vec![RegionSettings {
        account_id: "111122223333".into(),
        region: REGION.into(),
        ebs_encryption_by_default: Some(ebs),
        snapshot_block_public_access: Some(snapshots.into()),
        instance_metadata_http_tokens: Some(tokens.into()),
    }];
    inv
}

pub(crate) fn acl_entry(
    number: i32,
    protocol: &str,
    action: &str,
    cidr: &str,
    ports: Option<(i32, i32)>,
) -> NetworkAclEntry {
    NetworkAclEntry {
        rule_number: number,
        protocol: protocol.into(),
        action: action.into(),
        egress: false,
        cidr_block: (!cidr.contains(':')).then(|| cidr.to_owned()),
        ipv6_cidr_block: cidr.contains(':').then(|| cidr.to_owned()),
        from_port: ports.map(|p| p.0),
        to_port: ports.map(|p| p.1),
    }
}

/// A network ACL in a Region that has a group of its own.
pub(crate) fn acl(entries: Vec<NetworkAclEntry>, is_default: bool, subnets: &[&str]) -> Inventory {
    Inventory {
        security_groups: vec![group("sg-own", "app", vec![])],
        network_acls: vec![NetworkAcl {
            id: "acl-1".into(),
            arn: String::new(),
            region: REGION.into(),
            vpc_id: Some("vpc-1".into()),
            is_default,
            entries,
            subnet_ids: subnets.iter().map(|s| (*s).to_owned()).collect(),
            tags: Tags::new(),
        }],
        ..Inventory::default()
    }
}

pub(crate) fn bucket(edit: impl FnOnce(&mut S3Bucket)) -> Inventory {
    let mut b = S3Bucket {
        name: "bucket-1".into(),
        arn: "arn:aws:s3:::bucket-1".into(),
        region: REGION.into(),
        created: None,
        public_access_block: Some(crate::world::PublicAccessBlock::ALL),
        policy_is_public: None,
        acl_grants: vec![],
        default_encryption: Some("AES256".into()),
        versioning: VersioningStatus::Enabled,
        logging_enabled: true,
        size_bytes: None,
        tags: Tags::new(),
        owner_agent: "test".into(),
        policy: Some(serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket-1/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})),
        mfa_delete: true,
        object_ownership: Some("BucketOwnerEnforced".into()),
        object_lock: true,
        lifecycle_enabled: true,
        replication_rules: vec![],
        event_notifications: true,
    };
    edit(&mut b);
    Inventory {
        buckets: vec![b],
        ..Inventory::default()
    }
}

pub(crate) fn db(edit: impl FnOnce(&mut RdsInstance)) -> Inventory {
    let mut d = RdsInstance {
        id: "db-1".into(),
        arn: String::new(),
        region: REGION.into(),
        class: "db.m5.large".into(),
        engine: "postgres".into(),
        engine_version: Some("16.3".into()),
        status: "available".into(),
        allocated_storage_gib: 100,
        storage_type: Some("gp3".into()),
        publicly_accessible: false,
        storage_encrypted: true,
        backup_retention_days: 7,
        deletion_protection: true,
        multi_az: true,
        master_username: Some("orders_owner".into()),
        tags: Tags::new(),
        owner_agent: "test".into(),
        cluster_id: None,
        replica_source: None,
        auto_minor_version_upgrade: true,
        iam_auth: true,
        cloudwatch_logs_exports: vec!["postgresql".into()],
        enhanced_monitoring_arn: Some(
            "arn:aws:logs:us-east-1:111122223333:log-group:RDSOSMetrics:log-stream:db-1".into(),
        ),
        copy_tags_to_snapshot: true,
        port: Some(5433),
        vpc_id: Some("vpc-1".into()),
        subnet_ids: vec![],
        security_group_ids: vec![],
        engine_lifecycle_support: Some("open-source-rds-extended-support-disabled".into()),
    };
    edit(&mut d);
    Inventory {
        db_instances: vec![d],
        ..Inventory::default()
    }
}

fn rds_cluster(edit: impl FnOnce(&mut RdsCluster)) -> Inventory {
    let mut c = RdsCluster {
        id: "cluster-1".into(),
        arn: String::new(),
        region: REGION.into(),
        engine: "aurora-mysql".into(),
        status: "available".into(),
        storage_encrypted: true,
        deletion_protection: true,
        multi_az: true,
        master_username: Some("orders_owner".into()),
        auto_minor_version_upgrade: true,
        iam_auth: true,
        cloudwatch_logs_exports: vec!["audit".into()],
        backtrack_window: 3600,
        copy_tags_to_snapshot: true,
        port: Some(3307),
        backup_retention_days: 7,
        tags: Tags::new(),
    };
    edit(&mut c);
    Inventory {
        db_clusters: vec![c],
        ..Inventory::default()
    }
}

/// A DB instance that belongs to a cluster, with its own flags `own` and the cluster's `cluster`.
fn member(own: bool, cluster: bool) -> Inventory {
    let mut inv = db(|d| {
        d.cluster_id = Some("cluster-1".into());
        d.deletion_protection = own;
        d.multi_az = own;
    });
    inv.db_clusters = rds_cluster(|c| {
        c.deletion_protection = cluster;
        c.multi_az = cluster;
    })
    .db_clusters;
    inv
}

/// A public DB instance whose group opens its port to the internet, in a subnet public or not.
fn exposed_db(public_subnet: bool) -> Inventory {
    let mut inv = used_group(group("sg-1", "db", vec![tcp(5433, "0.0.0.0/0")]));
    inv.subnets = vec![Subnet {
        id: "subnet-1".into(),
        region: REGION.into(),
        vpc_id: "vpc-1".into(),
        public: public_subnet,
    }];
    inv.db_instances = db(|d| {
        d.publicly_accessible = true;
        d.security_group_ids = vec!["sg-1".into()];
        d.subnet_ids = vec!["subnet-1".into()];
    })
    .db_instances;
    inv
}

fn rds_snapshot(encrypted: bool, public: bool) -> Inventory {
    Inventory {
        db_snapshots: vec![RdsSnapshot {
            id: "snap-db-1".into(),
            arn: String::new(),
            region: REGION.into(),
            of: "db".into(),
            source_id: Some("db-1".into()),
            snapshot_type: Some("manual".into()),
            encrypted,
            public,
        }],
        ..Inventory::default()
    }
}

/// A check's failing and passing inventories: in each, the check judges exactly the resource it
/// is about.
pub(crate) struct Case {
    pub id: &'static str,
    /// The resource judged, where the fixtures hold others the check judges too.
    pub subject: Option<&'static str>,
    pub fail: Box<dyn Fn() -> Inventory>,
    pub pass: Box<dyn Fn() -> Inventory>,
}

fn case(id: &'static str, fail: impl Fn() -> Inventory + 'static, pass: impl Fn() -> Inventory + 'static) -> Case {
    Case {
        id,
        subject: None,
        fail: Box::new(fail),
        pass: Box::new(pass),
    }
}

#[allow(clippy::too_many_lines)] // one case per check
pub(crate) fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    for &(id, ports) in super::network::GROUP_PORT_CHECKS {
        let port = ports[0];
        all.push(case(
            id,
            move || used_group(group("sg-1", "app", vec![tcp(port, "0.0.0.0/0")])),
            move || used_group(group("sg-1", "app", vec![tcp(port, "10.0.0.0/8")])),
        ));
    }
    for &(id, ports) in super::ec2::INSTANCE_PORT_CHECKS {
        let port = ports[0];
        all.push(case(
            id,
            move || exposed_instance(vec![tcp(port, "::/0")]),
            move || exposed_instance(vec![tcp(port, "192.168.0.0/16")]),
        ));
    }
    all.extend([
        case(
            "ec2_securitygroup_allow_ingress_from_internet_to_all_ports",
            || used_group(group("sg-1", "app", vec![rule("udp", Some((0, 65535)), "0.0.0.0/0")])),
            || used_group(group("sg-1", "app", vec![rule("udp", Some((0, 65534)), "0.0.0.0/0")])),
        ),
        case(
            "ec2_securitygroup_allow_ingress_from_internet_to_any_port",
            || used_group(group("sg-1", "app", vec![tcp(443, "0.0.0.0/0")])),
            || {
                let mut inv = used_group(group("sg-1", "app", vec![tcp(443, "0.0.0.0/0")]));
                inv.network_interfaces[0].instance_owner_id = Some("amazon-elb".into());
                inv
            },
        ),
        case(
            "ec2_securitygroup_allow_ingress_from_internet_to_any_port_from_ip",
            || used_group(group("sg-1", "app", vec![tcp(22, "8.8.8.8/32")])),
            || used_group(group("sg-1", "app", vec![tcp(22, "10.0.0.0/8")])),
        ),
        case(
            "ec2_securitygroup_allow_wide_open_public_ipv4",
            || used_group(group("sg-1", "app", vec![tcp(22, "52.0.0.0/8")])),
            || used_group(group("sg-1", "app", vec![tcp(22, "52.0.0.0/24")])),
        ),
        case(
            "ec2_securitygroup_default_restrict_traffic",
            || used_group(group("sg-1", "default", vec![rule("-1", None, "10.0.0.0/8")])),
            || used_group(group("sg-1", "default", vec![])),
        ),
        case(
            "ec2_securitygroup_from_launch_wizard",
            || used_group(group("sg-1", "launch-wizard-3", vec![])),
            || used_group(group("sg-1", "web", vec![])),
        ),
        case(
            "ec2_securitygroup_with_many_ingress_egress_rules",
            || {
                used_group(group(
                    "sg-1",
                    "app",
                    (1000..1051).map(|p| tcp(p, "10.0.0.0/8")).collect(),
                ))
            },
            || {
                used_group(group(
                    "sg-1",
                    "app",
                    (1000..1050).map(|p| tcp(p, "10.0.0.0/8")).collect(),
                ))
            },
        ),
        case(
            "miyabi_securitygroup_ingress_from_internet_to_unlisted_port",
            || used_group(group("sg-1", "app", vec![tcp(9999, "0.0.0.0/0")])),
            || used_group(group("sg-1", "app", vec![tcp(443, "0.0.0.0/0")])),
        ),
        case(
            "ec2_networkacl_allow_ingress_any_port",
            || acl(vec![acl_entry(100, "-1", "allow", "0.0.0.0/0", None)], true, &[]),
            || {
                acl(
                    vec![acl_entry(100, "6", "allow", "0.0.0.0/0", Some((0, 65535)))],
                    true,
                    &[],
                )
            },
        ),
        case(
            "ec2_networkacl_allow_ingress_tcp_port_22",
            || {
                acl(
                    vec![acl_entry(100, "6", "allow", "0.0.0.0/0", Some((20, 30)))],
                    true,
                    &[],
                )
            },
            || {
                acl(
                    vec![
                        acl_entry(90, "6", "deny", "0.0.0.0/0", Some((22, 22))),
                        acl_entry(100, "6", "allow", "0.0.0.0/0", Some((20, 30))),
                    ],
                    true,
                    &[],
                )
            },
        ),
        case(
            "ec2_networkacl_allow_ingress_tcp_port_3389",
            || acl(vec![acl_entry(100, "-1", "allow", "::/0", None)], true, &[]),
            || {
                acl(
                    vec![acl_entry(100, "6", "allow", "10.0.0.0/8", Some((3389, 3389)))],
                    true,
                    &[],
                )
            },
        ),
        case(
            "ec2_networkacl_unused",
            || acl(vec![], false, &[]),
            || acl(vec![], false, &["subnet-1"]),
        ),
        case(
            "ec2_instance_imdsv2_enabled",
            || one_instance(|i| i.imds_v2_required = false),
            || {
                one_instance(|i| {
                    i.imds_v2_required = false;
                    i.imds_endpoint = Some("disabled".into());
                })
            },
        ),
        case(
            "ec2_instance_public_ip",
            || one_instance(|i| i.public_ip = Some("203.0.113.1".into())),
            || one_instance(|_| {}),
        ),
        case(
            "ec2_instance_profile_attached",
            || one_instance(|i| i.instance_profile_arn = None),
            || one_instance(|_| {}),
        ),
        case(
            "ec2_instance_internet_facing_with_instance_profile",
            || one_instance(|i| i.public_ip = Some("203.0.113.1".into())),
            || {
                one_instance(|i| {
                    i.public_ip = Some("203.0.113.1".into());
                    i.instance_profile_arn = None;
                })
            },
        ),
        case(
            "ec2_instance_paravirtual_type",
            || one_instance(|i| i.virtualization_type = Some("paravirtual".into())),
            || one_instance(|_| {}),
        ),
        case(
            "miyabi_ec2_instance_secrets_user_data",
            || {
                one_instance(|i| {
                    i.user_data = Some(UserDataScan::Scanned {
                        secrets: vec![SecretHit {
                            line: 3,
                            kind: "AWS Access Key".into(),
                        }],
                    });
                })
            },
            || one_instance(|i| i.user_data = Some(UserDataScan::Scanned { secrets: vec![] })),
        ),
        case(
            "ec2_instance_detailed_monitoring_enabled",
            || one_instance(|i| i.monitoring = Some("pending".into())),
            || one_instance(|_| {}),
        ),
        case(
            "ec2_instance_uses_single_eni",
            || {
                let mut inv = used_group(group("sg-1", "app", vec![]));
                inv.network_interfaces.push(interface("eni-2", &["sg-1"], Some("i-1")));
                inv.instances[0].network_interface_ids.push("eni-2".into());
                inv
            },
            || {
                let mut inv = used_group(group("sg-1", "app", vec![]));
                let mut efa_only = interface("eni-2", &["sg-1"], Some("i-1"));
                efa_only.interface_type = "efa-only".into();
                inv.network_interfaces.push(efa_only);
                inv.instances[0].network_interface_ids.push("eni-2".into());
                inv
            },
        ),
        case(
            "ec2_confidential_workload_host_imdsv2_not_enforced",
            || {
                let mut inv = enclave_host(vec![]);
                inv.instances[0].imds_v2_required = false;
                inv
            },
            || enclave_host(vec![]),
        ),
        case(
            "ec2_confidential_workload_host_not_running",
            || {
                let mut inv = enclave_host(vec![]);
                inv.instances[0].state = "stopped".into();
                inv
            },
            || enclave_host(vec![]),
        ),
        case(
            "ec2_confidential_workload_host_unrestricted_ingress",
            || enclave_host(vec![rule("udp", Some((53, 53)), "8.8.8.0/24")]),
            || enclave_host(vec![tcp(443, "0.0.0.0/0")]),
        ),
        case(
            "ec2_confidential_workload_host_vsock_proxy_exposed",
            || enclave_host(vec![rule("tcp", Some((8000, 8100)), "0.0.0.0/0")]),
            || enclave_host(vec![rule("tcp", Some((8091, 8100)), "0.0.0.0/0")]),
        ),
        case(
            "ec2_ebs_volume_encryption",
            || Inventory {
                volumes: vec![volume("vol-1", false)],
                ..Inventory::default()
            },
            || Inventory {
                volumes: vec![volume("vol-1", true)],
                ..Inventory::default()
            },
        ),
        case(
            "ec2_ebs_volume_snapshots_exists",
            || Inventory {
                volumes: vec![volume("vol-2", true)],
                ..snapshot(true, false)
            },
            || Inventory {
                volumes: vec![volume("vol-1", true)],
                ..snapshot(true, false)
            },
        ),
        case(
            "ec2_ebs_public_snapshot",
            || snapshot(true, true),
            || snapshot(true, false),
        ),
        case(
            "ec2_ebs_snapshots_encrypted",
            || snapshot(false, false),
            || snapshot(true, false),
        ),
        case("ec2_elastic_ip_unassigned", || address(false), || address(true)),
        case(
            "ec2_ebs_default_encryption",
            || settings(false, "block-all-sharing", "required"),
            || settings(true, "block-all-sharing", "required"),
        ),
        case(
            "ec2_ebs_snapshot_account_block_public_access",
            || settings(true, "block-new-sharing", "required"),
            || settings(true, "block-all-sharing", "required"),
        ),
        case(
            "ec2_instance_account_imdsv2_enabled",
            || settings(true, "block-all-sharing", "no-preference"),
            || settings(true, "block-all-sharing", "required"),
        ),
        case(
            "s3_bucket_level_public_access_block",
            || bucket(|b| b.public_access_block = None),
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_public_access",
            || {
                bucket(|b| {
                    b.public_access_block = None;
                    b.policy = Some(serde_json::json!({"Statement": [
                        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}));
                })
            },
            || {
                bucket(|b| {
                    b.public_access_block = None;
                    b.policy = Some(serde_json::json!({"Statement": [
                        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                         "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-123"}}}]}));
                })
            },
        ),
        case(
            "s3_bucket_public_list_acl",
            || {
                bucket(|b| {
                    b.public_access_block = None;
                    b.acl_grants = vec![AclGrant {
                        grantee: "http://acs.amazonaws.com/groups/global/AllUsers".into(),
                        permission: "READ".into(),
                    }];
                })
            },
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_public_write_acl",
            || {
                bucket(|b| {
                    b.public_access_block = None;
                    b.acl_grants = vec![AclGrant {
                        grantee: "http://acs.amazonaws.com/groups/global/AllUsers".into(),
                        permission: "WRITE".into(),
                    }];
                })
            },
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_policy_public_write_access",
            || {
                bucket(|b| {
                    b.public_access_block = None;
                    b.policy = Some(serde_json::json!({"Statement": [
                        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:GetObject", "s3:PutObject"]}]}));
                })
            },
            || {
                bucket(|b| {
                    b.public_access_block = None;
                    b.policy = Some(serde_json::json!({"Statement": [
                        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:GetObject", "s3:putobject"]}]}));
                })
            },
        ),
        case(
            "s3_bucket_secure_transport_policy",
            || bucket(|b| b.policy = None),
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_kms_encryption",
            || bucket(|_| {}),
            || bucket(|b| b.default_encryption = Some("aws:kms".into())),
        ),
        case(
            "s3_bucket_no_mfa_delete",
            || bucket(|b| b.mfa_delete = false),
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_acl_prohibited",
            || bucket(|b| b.object_ownership = Some("BucketOwnerPreferred".into())),
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_object_lock",
            || bucket(|b| b.object_lock = false),
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_lifecycle_enabled",
            || bucket(|b| b.lifecycle_enabled = false),
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_event_notifications_enabled",
            || bucket(|b| b.event_notifications = false),
            || bucket(|_| {}),
        ),
        Case {
            subject: Some("bucket-1"),
            ..case(
                "s3_bucket_cross_region_replication",
                || replicating(REGION),
                || replicating("eu-west-1"),
            )
        },
        case(
            "s3_bucket_default_encryption",
            || bucket(|b| b.default_encryption = None),
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_object_versioning",
            || bucket(|b| b.versioning = VersioningStatus::Suspended),
            || bucket(|_| {}),
        ),
        case(
            "s3_bucket_server_access_logging_enabled",
            || bucket(|b| b.logging_enabled = false),
            || bucket(|_| {}),
        ),
        case(
            "rds_instance_no_public_access",
            || exposed_db(true),
            || exposed_db(false),
        ),
        case(
            "rds_instance_storage_encrypted",
            || db(|d| d.storage_encrypted = false),
            || db(|_| {}),
        ),
        case(
            "rds_instance_backup_enabled",
            || db(|d| d.backup_retention_days = 0),
            || db(|_| {}),
        ),
        case(
            "rds_instance_deletion_protection",
            || member(true, false),
            || member(false, true),
        ),
        case("rds_instance_multi_az", || member(true, false), || member(false, true)),
        case(
            "rds_instance_minor_version_upgrade_enabled",
            || db(|d| d.auto_minor_version_upgrade = false),
            || db(|_| {}),
        ),
        case(
            "rds_instance_iam_authentication_enabled",
            || db(|d| d.iam_auth = false),
            || db(|_| {}),
        ),
        case(
            "rds_instance_integration_cloudwatch_logs",
            || db(|d| d.cloudwatch_logs_exports.clear()),
            || db(|_| {}),
        ),
        case(
            "rds_instance_enhanced_monitoring_enabled",
            || db(|d| d.enhanced_monitoring_arn = None),
            || db(|_| {}),
        ),
        case(
            "rds_instance_copy_tags_to_snapshots",
            || db(|d| d.copy_tags_to_snapshot = false),
            || db(|_| {}),
        ),
        case("rds_instance_inside_vpc", || db(|d| d.vpc_id = None), || db(|_| {})),
        case(
            "rds_instance_non_default_port",
            || db(|d| d.port = Some(5432)),
            || db(|_| {}),
        ),
        case(
            "rds_instance_extended_support",
            || db(|d| d.engine_lifecycle_support = Some("open-source-rds-extended-support".into())),
            || db(|_| {}),
        ),
        case(
            "rds_cluster_storage_encrypted",
            || rds_cluster(|c| c.storage_encrypted = false),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_deletion_protection",
            || rds_cluster(|c| c.deletion_protection = false),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_multi_az",
            || rds_cluster(|c| c.multi_az = false),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_default_admin",
            || rds_cluster(|c| c.master_username = Some("admin".into())),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_minor_version_upgrade_enabled",
            || rds_cluster(|c| c.auto_minor_version_upgrade = false),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_iam_authentication_enabled",
            || rds_cluster(|c| c.iam_auth = false),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_integration_cloudwatch_logs",
            || rds_cluster(|c| c.cloudwatch_logs_exports.clear()),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_backtrack_enabled",
            || rds_cluster(|c| c.backtrack_window = 0),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_copy_tags_to_snapshots",
            || rds_cluster(|c| c.copy_tags_to_snapshot = false),
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_cluster_non_default_port",
            || {
                rds_cluster(|c| {
                    c.engine = "aurora-postgresql".into();
                    c.port = Some(5432);
                })
            },
            || rds_cluster(|_| {}),
        ),
        case(
            "rds_snapshots_encrypted",
            || rds_snapshot(false, false),
            || rds_snapshot(true, false),
        ),
        case(
            "rds_snapshots_public_access",
            || rds_snapshot(true, true),
            || rds_snapshot(true, false),
        ),
        case(
            "rds_instance_default_admin",
            || db(|d| d.master_username = Some("postgres".into())),
            || db(|d| d.master_username = Some("Admin".into())),
        ),
    ]);
    all
}

/// A bucket replicating to a bucket in `destination_region`.
fn replicating(destination_region: &str) -> Inventory {
    let mut inv = bucket(|b| {
        b.replication_rules = vec![crate::world::ReplicationRule {
            status: "Enabled".into(),
            destination_bucket: Some("arn:aws:s3:::replica".into()),
        }];
    });
    let mut replica = inv.buckets[0].clone();
    replica.name = "replica".into();
    replica.arn = "arn:aws:s3:::replica".into();
    destination_region.clone_into(&mut replica.region);
    replica.replication_rules.clear();
    inv.buckets.push(replica);
    inv
}

/// The one finding `id` gives in `inventory` (on `subject`, when given).
fn only_status(id: &str, inventory: &Inventory, which: &str, subject: Option<&str>) -> FindingStatus {
    let findings: Vec<_> = run(inventory)
        .into_iter()
        .filter(|f| f.check_id == id && subject.is_none_or(|s| f.resource_id == s))
        .collect();
    assert_eq!(
        findings.len(),
        1,
        "{id}: the {which} fixture gives one finding: {findings:?}"
    );
    findings[0].status
}

#[test]
fn every_check_fails_its_failing_fixture_and_passes_its_passing_one() {
    for c in cases() {
        assert_eq!(
            only_status(c.id, &(c.fail)(), "failing", c.subject),
            FindingStatus::Fail,
            "{}",
            c.id
        );
        assert_eq!(
            only_status(c.id, &(c.pass)(), "passing", c.subject),
            FindingStatus::Pass,
            "{}",
            c.id
        );
    }
}

#[test]
fn every_check_has_fixtures_and_every_fixture_a_check() {
    let checks: std::collections::BTreeSet<&str> = registry().iter().map(|c| c.id()).collect();
    let fixtures: std::collections::BTreeSet<&str> = cases().iter().map(|c| c.id).collect();
    assert_eq!(cases().len(), fixtures.len(), "one case per check");
    assert_eq!(
        checks.difference(&fixtures).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "checks without fixtures"
    );
    assert_eq!(
        fixtures.difference(&checks).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "fixtures without a check"
    );
}

#[test]
fn prowler_ids_carry_prowlers_severity_and_other_ids_are_the_engines() {
    for check in registry() {
        match crate::assessment::prowler::check(check.id()) {
            Some(prowler) => assert_eq!(check.severity(), prowler.severity, "{}", check.id()),
            None => assert!(
                check.id().starts_with("miyabi_"),
                "{} is neither Prowler's nor ours",
                check.id()
            ),
        }
    }
}

#[test]
fn the_documented_number_of_checks_is_the_registrys() {
    // README.md and docs/behaviour.md state it: update them with it.
    assert_eq!(registry().len(), 106);
}
