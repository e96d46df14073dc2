//! θ1 against the local emulators: every resource kind and every security check, each with a
//! seeded case that must FAIL and one that must PASS; metric series; batching; concurrency;
//! the files the phase writes.

use aws_sdk_ec2::types::{
    Filter, HttpTokensState, InstanceMetadataOptionsRequest, InstanceNetworkInterfaceSpecification, InstanceType,
    IpPermission, IpRange, Ipv6Range, MetadataDefaultHttpTokensState, OperationType, SnapshotAttributeName, VolumeType,
};
use miyabi_aws::assessment::FindingStatus::{Fail, Pass};
use miyabi_aws::aws::metrics::{MAX_DATAPOINTS_PER_CALL, MAX_QUERIES_PER_CALL};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::world::{Completeness, VersioningStatus};
use miyabi_aws::{Cycle, Phase, WorldState};
use miyabi_aws_testkit::seed::{current_hour, publish_instance_metrics, SeededInstance};
use miyabi_aws_testkit::workload::{Pattern, Workload};

use super::support::{assert_fail_and_pass, harness, status, tmp_dir, Harness};

async fn subnet(h: &Harness) -> (String, String, String) {
    let vpcs = h.seed.ec2.describe_vpcs().send().await.unwrap();
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_owned();
    let subnets = h.seed.ec2.describe_subnets().send().await.unwrap();
    let s = &subnets.subnets()[0];
    (
        vpc,
        s.subnet_id().unwrap().to_owned(),
        s.availability_zone().unwrap().to_owned(),
    )
}

async fn group(h: &Harness, vpc: &str, name: &str, perms: Vec<IpPermission>) -> String {
    let id = h
        .seed
        .ec2
        .create_security_group()
        .group_name(name)
        .description(name)
        .vpc_id(vpc)
        .send()
        .await
        .unwrap();
    let id = id.group_id().unwrap().to_owned();
    if !perms.is_empty() {
        h.seed
            .ec2
            .authorize_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(perms))
            .send()
            .await
            .unwrap();
    }
    id
}

fn open(proto: &str, from: i32, to: i32) -> IpPermission {
    IpPermission::builder()
        .ip_protocol(proto)
        .from_port(from)
        .to_port(to)
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

async fn instance(h: &Harness, subnet: &str, group: &str, imds_required: bool, public: bool) -> String {
    let out = h
        .seed
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(subnet)
                .groups(group)
                .associate_public_ip_address(public)
                .build(),
        )
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(if imds_required {
                    HttpTokensState::Required
                } else {
                    HttpTokensState::Optional
                })
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.instances()[0].instance_id().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_resources_and_checks_fail_and_pass() {
    let h = harness("us-west-1").await;
    let (vpc, subnet, az) = subnet(&h).await;
    let ssh = group(&h, &vpc, "ssh", vec![open("tcp", 22, 22)]).await;
    let rdp = group(&h, &vpc, "rdp", vec![open("tcp", 3389, 3389)]).await;
    let all = group(
        &h,
        &vpc,
        "all",
        vec![IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build()],
    )
    .await;
    let dbs = group(
        &h,
        &vpc,
        "dbs",
        vec![
            open("tcp", 3306, 3306),
            open("tcp", 5432, 5432),
            open("tcp", 1433, 1434),
        ],
    )
    .await;
    let ftp = group(
        &h,
        &vpc,
        "ftp",
        vec![open("tcp", 20, 21), open("tcp", 4333, 4333), open("tcp", 5500, 5500)],
    )
    .await;
    let v6 = group(
        &h,
        &vpc,
        "v6-ssh",
        vec![IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
            .build()],
    )
    .await;
    let yellow = group(&h, &vpc, "yellow", vec![open("tcp", 9999, 9999)]).await;
    let web = group(&h, &vpc, "web", vec![open("tcp", 443, 443), open("tcp", 80, 80)]).await;
    let private = group(
        &h,
        &vpc,
        "private",
        vec![IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(0)
            .to_port(65535)
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .build()],
    )
    .await;
    // One group no interface uses: Prowler does not judge its ingress.
    let unused = group(&h, &vpc, "unused", vec![open("tcp", 22, 22)]).await;
    let exposed = instance(&h, &subnet, &ssh, false, true).await;
    let hardened = instance(&h, &subnet, &private, true, false).await;
    let plain = h
        .seed
        .ec2
        .create_volume()
        .availability_zone(&az)
        .size(50)
        .volume_type(VolumeType::Gp2)
        .send()
        .await
        .unwrap();
    let plain = plain.volume_id().unwrap().to_owned();
    let sealed = h
        .seed
        .ec2
        .create_volume()
        .availability_zone(&az)
        .size(50)
        .volume_type(VolumeType::Gp3)
        .encrypted(true)
        .send()
        .await
        .unwrap();
    let sealed = sealed.volume_id().unwrap().to_owned();
    let idle_ip = h
        .seed
        .ec2
        .allocate_address()
        .send()
        .await
        .unwrap()
        .allocation_id()
        .unwrap()
        .to_owned();
    let used_ip = h
        .seed
        .ec2
        .allocate_address()
        .send()
        .await
        .unwrap()
        .allocation_id()
        .unwrap()
        .to_owned();
    h.seed
        .ec2
        .associate_address()
        .allocation_id(&used_ip)
        .instance_id(&exposed)
        .send()
        .await
        .unwrap();
    // The other groups are used by an interface of their own; the default group too.
    let default_group = h
        .seed
        .ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values("default").build())
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .group_id()
        .unwrap()
        .to_owned();
    for g in [&rdp, &all, &dbs, &ftp, &v6, &yellow, &web, &default_group] {
        h.seed
            .ec2
            .create_network_interface()
            .subnet_id(&subnet)
            .groups(g)
            .send()
            .await
            .unwrap();
    }
    // A public, unencrypted snapshot of the plain volume, and the account's settings.
    let snapshot = h
        .seed
        .ec2
        .create_snapshot()
        .volume_id(&plain)
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_owned();
    h.seed
        .ec2
        .modify_snapshot_attribute()
        .snapshot_id(&snapshot)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .operation_type(OperationType::Add)
        .group_names("all")
        .send()
        .await
        .unwrap();
    h.seed
        .ec2
        .modify_instance_metadata_defaults()
        .http_tokens(MetadataDefaultHttpTokensState::Required)
        .send()
        .await
        .unwrap();

    let out = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery");
    let w = &out.world;
    assert_eq!(w.scope.completeness, Completeness::Complete);
    let inv = &w.inventory;

    // Resources, with the attributes the rules read.
    let i = inv
        .instances
        .iter()
        .find(|i| i.id == exposed)
        .expect("instance discovered");
    assert_eq!(i.instance_type, "m5.large");
    assert_eq!(i.state, "running");
    assert!(i.public_ip.is_some() && !i.imds_v2_required);
    assert_eq!(i.security_group_ids, vec![ssh.clone()]);
    assert!(i.arn.starts_with("arn:aws:ec2:us-west-1:") && i.arn.ends_with(&format!("instance/{exposed}")));
    assert_eq!(i.owner_agent, "Bill Gates");
    let v = inv.volumes.iter().find(|v| v.id == sealed).expect("volume discovered");
    assert_eq!(
        (v.volume_type.as_str(), v.size_gib, v.encrypted, v.state.as_str()),
        ("gp3", 50, true, "available")
    );
    let eip = inv
        .addresses
        .iter()
        .find(|a| a.allocation_id == used_ip)
        .expect("EIP discovered");
    assert_eq!(eip.instance_id.as_deref(), Some(exposed.as_str()));
    let sg = inv
        .security_groups
        .iter()
        .find(|g| g.id == dbs)
        .expect("group discovered");
    assert_eq!(sg.ingress.len(), 3);
    assert!(sg
        .ingress
        .iter()
        .any(|r| r.from_port == Some(1433) && r.to_port == Some(1434) && r.is_world_open()));
    assert!(inv.security_groups.iter().any(|g| g.name == "default"));

    let f = &w.assessment.findings;
    let check = |name: &str| match name {
        "unlisted_port" => "miyabi_securitygroup_ingress_from_internet_to_unlisted_port".to_owned(),
        _ => format!("ec2_securitygroup_allow_ingress_from_internet_to_{name}"),
    };
    for (name, failing) in [
        // A group open on all ports passes the port-by-port checks, as in Prowler.
        ("tcp_port_22", vec![&ssh, &v6]),
        ("tcp_port_3389", vec![&rdp]),
        ("all_ports", vec![&all]),
        ("tcp_port_mysql_3306", vec![&dbs]),
        ("tcp_port_postgres_5432", vec![&dbs]),
        ("tcp_port_sql_server_1433_1434", vec![&dbs]),
        ("tcp_port_ftp_20_21", vec![&ftp]),
        ("high_risk_tcp_ports", vec![&ftp]),
        ("unlisted_port", vec![&yellow]),
    ] {
        for g in [&ssh, &rdp, &all, &dbs, &ftp, &v6, &yellow, &web, &private] {
            let want = if failing.contains(&g) { Fail } else { Pass };
            assert_eq!(status(f, &check(name), g), want, "{name} on {g}");
        }
        assert!(
            f.iter().all(|x| x.resource_id != unused || x.check_id != check(name)),
            "{name} does not judge a group no interface uses"
        );
    }
    // Prowler's any-port check: any port open to the internet, except where only load
    // balancers and endpoints use the group; it does not judge a group open on all ports.
    let any_port = check("any_port");
    assert_eq!(status(f, &any_port, &web), Fail);
    assert_eq!(status(f, &any_port, &private), Pass);
    assert!(f.iter().all(|x| x.resource_id != all || x.check_id != any_port));

    // Interfaces, snapshots, network ACLs, subnets and the account's settings.
    assert!(inv
        .network_interfaces
        .iter()
        .any(|n| n.instance_id.as_deref() == Some(exposed.as_str()) && n.group_ids == vec![ssh.clone()]));
    let snap = inv
        .snapshots
        .iter()
        .find(|s| s.id == snapshot)
        .expect("snapshot discovered");
    assert_eq!(
        (snap.volume_id.as_deref(), snap.public, snap.encrypted),
        (Some(plain.as_str()), true, false)
    );
    assert!(
        inv.snapshots.iter().all(|s| s.id == snapshot),
        "only the account's own snapshots: {:?}",
        inv.snapshots
    );
    assert_eq!(status(f, "ec2_ebs_public_snapshot", &snapshot), Fail);
    assert_eq!(status(f, "ec2_ebs_snapshots_encrypted", &snapshot), Fail);
    assert_eq!(status(f, "ec2_ebs_volume_snapshots_exists", &plain), Pass);
    assert_eq!(status(f, "ec2_ebs_volume_snapshots_exists", &sealed), Fail);
    assert!(!inv.network_acls.is_empty() && !inv.subnets.is_empty());
    let acl = &inv.network_acls[0];
    assert!(acl.is_default && acl.arn.contains(":network-acl/acl-"));
    assert_eq!(
        status(f, "ec2_networkacl_allow_ingress_any_port", &acl.id),
        Fail,
        "the default ACL allows all"
    );
    let account = w.scope.account_id.clone().unwrap();
    assert_eq!(status(f, "ec2_instance_account_imdsv2_enabled", &account), Pass);
    assert_eq!(status(f, "ec2_ebs_default_encryption", &account), Fail);
    assert_eq!(
        status(f, "ec2_ebs_snapshot_account_block_public_access", &account),
        Fail
    );
    let default = inv.security_groups.iter().find(|g| g.name == "default").unwrap();
    assert_eq!(
        status(f, "ec2_securitygroup_default_restrict_traffic", &default.id),
        Fail,
        "moto's default group has an egress rule"
    );
    assert_eq!(status(f, "ec2_instance_imdsv2_enabled", &exposed), Fail);
    assert_eq!(status(f, "ec2_instance_imdsv2_enabled", &hardened), Pass);
    assert_eq!(status(f, "ec2_instance_public_ip", &exposed), Fail);
    assert_eq!(status(f, "ec2_instance_public_ip", &hardened), Pass);
    assert_eq!(status(f, "ec2_ebs_volume_encryption", &plain), Fail);
    assert_eq!(status(f, "ec2_ebs_volume_encryption", &sealed), Pass);
    assert_eq!(status(f, "ec2_elastic_ip_unassigned", &idle_ip), Fail);
    assert_eq!(status(f, "ec2_elastic_ip_unassigned", &used_ip), Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_resources_and_checks_fail_and_pass() {
    let h = harness("ap-southeast-2").await;
    // This Region's default security group is emptied: the PASS case of its check.
    let groups = h
        .seed
        .ec2
        .describe_security_groups()
        .group_names("default")
        .send()
        .await
        .unwrap();
    let default = &groups.security_groups()[0];
    let default_id = default.group_id().unwrap().to_owned();
    h.seed
        .ec2
        .revoke_security_group_egress()
        .group_id(&default_id)
        .set_ip_permissions(Some(default.ip_permissions_egress().to_vec()))
        .send()
        .await
        .unwrap();
    // An interface uses it: Prowler judges only groups in use.
    let (_, subnet, _) = subnet(&h).await;
    h.seed
        .ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .groups(&default_id)
        .send()
        .await
        .unwrap();
    let create = |id: &'static str, public: bool, hardened: bool, user: &'static str| {
        h.seed
            .rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.m5.large")
            .engine("postgres")
            .master_username(user)
            .master_user_password("not-a-real-password-1")
            .allocated_storage(100)
            .publicly_accessible(public)
            .storage_encrypted(hardened)
            .backup_retention_period(if hardened { 7 } else { 0 })
            .multi_az(hardened)
            .deletion_protection(hardened)
            .auto_minor_version_upgrade(hardened)
            .enable_iam_database_authentication(hardened)
            .copy_tags_to_snapshot(hardened)
            .set_enable_cloudwatch_logs_exports(hardened.then(|| vec!["postgresql".to_owned()]))
            .port(if hardened { 5433 } else { 5432 })
            .send()
    };
    create("it-weak", true, false, "admin").await.unwrap();
    create("it-strong", false, true, "orders_owner").await.unwrap();
    h.seed
        .rds
        .create_db_cluster()
        .db_cluster_identifier("it-ledger")
        .engine("aurora-postgresql")
        .master_username("postgres")
        .master_user_password("not-a-real-password-1")
        .storage_encrypted(true)
        .deletion_protection(true)
        .send()
        .await
        .unwrap();

    let out = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery");
    let inv = &out.world.inventory;
    let weak = inv.db_instances.iter().find(|d| d.id == "it-weak").expect("discovered");
    assert_eq!(
        (weak.class.as_str(), weak.engine.as_str(), weak.allocated_storage_gib),
        ("db.m5.large", "postgres", 100)
    );
    assert!(
        weak.arn.contains(":rds:ap-southeast-2:") && weak.arn.ends_with(":db:it-weak"),
        "{}",
        weak.arn
    );
    assert_eq!(weak.owner_agent, "Noguchi");
    let f = &out.world.assessment.findings;
    assert_fail_and_pass(
        f,
        &[
            "rds_instance_storage_encrypted",
            "rds_instance_backup_enabled",
            "rds_instance_deletion_protection",
            "rds_instance_multi_az",
            "rds_instance_default_admin",
            "rds_instance_minor_version_upgrade_enabled",
            "rds_instance_iam_authentication_enabled",
            "rds_instance_integration_cloudwatch_logs",
            "rds_instance_copy_tags_to_snapshots",
            "rds_instance_non_default_port",
        ],
        "it-weak",
        "it-strong",
    );
    // Flagged public, but its group (moto's default) opens nothing: Prowler passes it.
    assert!(weak.publicly_accessible);
    assert_eq!(status(f, "rds_instance_no_public_access", "it-weak"), Pass);
    let ledger = inv
        .db_clusters
        .iter()
        .find(|c| c.id == "it-ledger")
        .expect("cluster discovered");
    assert!(ledger.storage_encrypted && ledger.deletion_protection && ledger.engine == "aurora-postgresql");
    assert_eq!(status(f, "rds_cluster_default_admin", "it-ledger"), Fail);
    assert_eq!(status(f, "rds_cluster_deletion_protection", "it-ledger"), Pass);
    // moto takes an automated snapshot of every new instance.
    let snapshot_of = |db: &str| {
        inv.db_snapshots
            .iter()
            .find(|s| s.of == "db" && s.source_id.as_deref() == Some(db))
            .unwrap_or_else(|| panic!("a snapshot of {db}: {:?}", inv.db_snapshots))
    };
    assert_eq!(status(f, "rds_snapshots_encrypted", &snapshot_of("it-weak").id), Fail);
    assert_eq!(status(f, "rds_snapshots_encrypted", &snapshot_of("it-strong").id), Pass);
    assert_eq!(
        status(f, "rds_snapshots_public_access", &snapshot_of("it-weak").id),
        Pass
    );
    assert_eq!(
        status(f, "ec2_securitygroup_default_restrict_traffic", &default_id),
        Pass
    );
    // Multi-AZ doubles the price: (0.171 × 730 + 0.115 × 100) × 2 × 1.25 (ap-southeast-2).
    let cost = out
        .world
        .assessment
        .costs
        .iter()
        .find(|c| c.resource_id == "it-strong")
        .unwrap();
    assert_eq!(cost.monthly_usd, Some(340.83));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_buckets_and_checks_fail_and_pass_in_their_own_region() {
    use aws_sdk_s3::types::*;
    // Buckets live in ap-northeast-1 while the scan covers ca-central-1 only: S3 is global, and
    // each bucket is read through a client of its own Region.
    let h = harness("ap-northeast-1").await;
    let s3 = &h.seed.s3;
    let create = |name: &'static str| {
        s3.create_bucket().bucket(name).create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::ApNortheast1)
                .build(),
        )
    };
    create("it-s3-open").send().await.unwrap();
    // Explicit grants: moto turns the `public-read-write` canned ACL into a read grant only.
    let everyone = "uri=http://acs.amazonaws.com/groups/global/AllUsers";
    s3.put_bucket_acl()
        .bucket("it-s3-open")
        .grant_read(everyone)
        .grant_write(everyone)
        .send()
        .await
        .unwrap();
    s3.put_bucket_policy()
        .bucket("it-s3-open")
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::it-s3-open/*"}]}"#)
        .send()
        .await
        .unwrap();
    create("it-s3-partial").send().await.unwrap();
    s3.put_public_access_block()
        .bucket("it-s3-partial")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_versioning()
        .bucket("it-s3-partial")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    create("it-s3-closed")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    s3.put_bucket_ownership_controls()
        .bucket("it-s3-closed")
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_lifecycle_configuration()
        .bucket("it-s3-closed")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("expire-logs")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
                        .expiration(LifecycleExpiration::builder().days(30).build())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket("it-s3-closed")
        .notification_configuration(
            // A queue, not EventBridge: moto 5.2.5 keeps an EventBridge configuration but never
            // returns it.
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn("arn:aws:sqs:ap-northeast-1:123456789012:bucket-events")
                        .events(Event::S3ObjectCreated)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_public_access_block()
        .bucket("it-s3-closed")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_encryption()
        .bucket("it-s3-closed")
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_versioning()
        .bucket("it-s3-closed")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_policy()
        .bucket("it-s3-closed")
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":["s3:PutObject"],"Resource":"arn:aws:s3:::it-s3-closed/*"},{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::it-s3-closed/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#)
        .send()
        .await
        .unwrap();
    s3.put_bucket_logging()
        .bucket("it-s3-closed")
        .bucket_logging_status(
            BucketLoggingStatus::builder()
                .logging_enabled(
                    LoggingEnabled::builder()
                        .target_bucket("it-s3-closed")
                        .target_prefix("logs/")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_tagging()
        .bucket("it-s3-closed")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("team").value("data").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let out = h
        .discovery_in(&["ca-central-1"])
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery");
    let inv = &out.world.inventory;
    assert_eq!(out.world.scope.completeness, Completeness::Complete);
    let bucket = |name: &str| {
        inv.buckets
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("{name} discovered"))
    };
    let closed = bucket("it-s3-closed");
    assert_eq!(closed.region, "ap-northeast-1");
    assert_eq!(closed.default_encryption.as_deref(), Some("aws:kms"));
    assert_eq!(closed.versioning, VersioningStatus::Enabled);
    assert!(closed.logging_enabled && closed.public_access_block.is_some_and(|p| p.is_full()));
    assert_eq!(closed.policy_is_public, Some(false));
    assert_eq!(closed.tags.get("team").map(String::as_str), Some("data"));
    assert_eq!(closed.object_ownership.as_deref(), Some("BucketOwnerEnforced"));
    assert!(closed.object_lock && closed.lifecycle_enabled && closed.event_notifications);
    assert_eq!(
        closed
            .policy
            .as_ref()
            .and_then(|p| p["Statement"][1]["Effect"].as_str()),
        Some("Deny"),
        "the policy document, parsed"
    );
    assert_eq!(bucket("it-s3-partial").versioning, VersioningStatus::Suspended);
    let open_bucket = bucket("it-s3-open");
    assert_eq!(open_bucket.policy_is_public, Some(true));
    assert!(open_bucket
        .acl_grants
        .iter()
        .any(|g| g.is_public() && g.permission == "WRITE"));
    // No BucketSizeBytes metric: unpriced, and the assessment says so.
    assert!(out
        .world
        .assessment
        .costs
        .iter()
        .any(|c| c.resource_id == "it-s3-open" && c.monthly_usd.is_none()));

    let f = &out.world.assessment.findings;
    assert_fail_and_pass(
        f,
        &[
            "s3_bucket_level_public_access_block",
            "s3_bucket_public_access",
            "s3_bucket_public_list_acl",
            "s3_bucket_public_write_acl",
            "s3_bucket_default_encryption",
            "s3_bucket_object_versioning",
            "s3_bucket_server_access_logging_enabled",
            "s3_bucket_policy_public_write_access",
            "s3_bucket_secure_transport_policy",
            "s3_bucket_kms_encryption",
            "s3_bucket_acl_prohibited",
            "s3_bucket_object_lock",
            "s3_bucket_lifecycle_enabled",
            "s3_bucket_event_notifications_enabled",
        ],
        "it-s3-open",
        "it-s3-closed",
    );
    assert_eq!(
        status(f, "s3_bucket_level_public_access_block", "it-s3-partial"),
        Fail,
        "a partial block fails"
    );
    assert_eq!(
        status(f, "s3_bucket_object_versioning", "it-s3-partial"),
        Fail,
        "suspended versioning fails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_series_come_back_whole_and_in_order() {
    let h = harness("ap-south-1").await;
    let id = h.launch(InstanceType::C5Large, 1).await;
    let id = id[0].clone();
    let seeded = SeededInstance {
        id: id.clone(),
        region: h.region.into(),
        instance_type: "c5.large".into(),
        workload: Workload {
            pattern: Pattern::WellSized,
            sized_for_vcpus: 2,
            seed: 11,
        },
        root_volume: None,
    };
    let until = current_hour();
    // CloudWatch keeps backfilled data for two weeks: the oldest hour of a 14-day window is
    // already gone, so 335 hours are published and all 335 must come back.
    publish_instance_metrics(&h.seed.cloudwatch, std::slice::from_ref(&seeded), until - 335, until)
        .await
        .unwrap();

    let out = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery");
    let cpu = out.world.inventory.series(&id, "CPUUtilization").expect("CPU series");
    assert_eq!(cpu.len(), 335, "every published hour");
    assert!(
        cpu.timestamps.windows(2).all(|w| w[1] - w[0] == 3600),
        "ascending, hourly, no gaps"
    );
    assert_eq!(cpu.timestamps[0], (until - 335) * 3600);
    for (t, v) in cpu.timestamps.iter().zip(&cpu.values) {
        let want = seeded.workload.cpu_percent(t / 3600, 2);
        assert!((v - want).abs() < 1e-9, "at {t}: {v} != {want}");
    }
    assert_eq!(
        out.world.inventory.series(&id, "NetworkIn").map(|s| s.stat.as_str()),
        Some("Sum")
    );
    let mean = cpu.mean().unwrap();
    assert_eq!(
        out.world.assessment.utilisation_percent,
        Some((mean * 100.0).round() / 100.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_metric_data_is_batched_to_the_limits_and_requests_overlap() {
    let h = harness("us-east-2").await;
    h.launch(InstanceType::T3Micro, 120).await;

    let out = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery");
    let inv = &out.world.inventory;
    let region_volumes = inv.volumes.iter().filter(|v| v.region == "us-east-2").count();
    assert_eq!(inv.instances.len(), 120);
    // 3 series per instance, 2 per volume, 336 points each.
    let series = 3 * 120 + 2 * region_volumes;
    let points = series as u64 * 336;
    let needed = (series.div_ceil(MAX_QUERIES_PER_CALL) as u64).max(points.div_ceil(MAX_DATAPOINTS_PER_CALL));
    let calls = h
        .proxy
        .requests()
        .iter()
        .filter(|r| r.operation == "GetMetricData" && r.region == "us-east-2")
        .count() as u64;
    assert_eq!(
        calls, needed,
        "{series} series of 336 points need exactly {needed} calls"
    );
    assert!(
        h.proxy.max_in_flight() >= 2,
        "scans run concurrently: peak in flight {}",
        h.proxy.max_in_flight()
    );
    let counted: u64 = out.calls_per_service.values().sum();
    assert_eq!(
        counted,
        h.proxy.requests().len() as u64,
        "the call counter agrees with the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phase_writes_the_world_state_and_the_report() {
    let h = harness("sa-east-1").await;
    h.launch(InstanceType::M5Xlarge, 2).await;
    let dir = tmp_dir("phase-files");
    let mut ctx = h.context().with_out_dir(&dir);
    ctx.output = ctx.output.with_formats(miyabi_aws::output::Format::ALL.to_vec());
    let discovery = std::sync::Arc::new(h.discovery());
    assert_eq!(discovery.name(), "discovery (rust)");
    let report = Cycle::new().with_phase(discovery).run(&mut ctx).await;
    assert!(report.converged(), "{}", report.stop);
    assert_eq!(report.iterations[0].phases.len(), 1);
    let saved = WorldState::load(dir.join("world_state_0.json")).expect("saved world state");
    assert_eq!(Some(&saved), ctx.artefacts.get::<WorldState>());
    assert_eq!(
        saved
            .inventory
            .instances
            .iter()
            .filter(|i| i.region == "sa-east-1")
            .count(),
        2
    );
    let md = std::fs::read_to_string(dir.join("discovery_report.md")).unwrap();
    assert!(md.contains("| EC2 instances | 2 |"), "{md}");
    assert!(md.contains(&format!("**${:.2} / month**", saved.assessment.monthly_total_usd)));
    assert!(md.contains(&format!("**Score: {:.1} / 100**", saved.assessment.security_score)));
    // Every security format, chosen: one file each, holding the capture's security findings.
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
            .unwrap()
    };
    let security = saved.assessment.findings.iter().filter(|f| f.is_security());
    let failing = security.clone().filter(|f| f.status == Fail).count();
    assert!(failing > 0, "the launched instances fail some checks");
    assert_eq!(
        read("findings_0.ocsf.json").as_array().unwrap().len(),
        security.clone().count()
    );
    assert_eq!(read("findings_0.asff.json").as_array().unwrap().len(), security.count());
    assert_eq!(
        read("findings_0.sarif")["runs"][0]["results"].as_array().unwrap().len(),
        failing
    );
}
