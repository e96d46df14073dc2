//! A deterministic demo estate: the same seed and size give the same estate (resource ids are the
//! emulator's own and differ run to run).
//!
//! Per Region: instances with the five workload patterns, world-open security groups (22, 3389,
//! all ports, 5432), unattached gp2 volumes, unassociated Elastic IPs, public or unencrypted
//! buckets, and public, unencrypted or idle RDS instances, plus 14 days of hourly metrics.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_ec2::types::{
    HttpTokensState, InstanceMetadataOptionsRequest, InstanceNetworkInterfaceSpecification, InstanceType, IpPermission,
    IpRange, ResourceType, Tag, TagSpecification, VolumeType,
};
use aws_smithy_types::DateTime as AwsTime;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::workload::{Pattern, Workload};

/// Where the emulators listen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    /// EC2, S3, RDS.
    pub moto: String,
    /// CloudWatch.
    pub cloudwatch: String,
}

impl Endpoints {
    /// The endpoints `localaws` gives its command: `AWS_ENDPOINT_URL` and
    /// `AWS_ENDPOINT_URL_CLOUDWATCH`.
    ///
    /// # Errors
    /// When either variable is missing.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set (run under localaws)"));
        Ok(Self {
            moto: var("AWS_ENDPOINT_URL")?,
            cloudwatch: var("AWS_ENDPOINT_URL_CLOUDWATCH")?,
        })
    }
}

/// SDK clients of one Region pointed at the emulators.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// RDS.
    pub rds: aws_sdk_rds::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    /// Clients for `region`, with static test credentials (set in this process, and the
    /// endpoint variables of a developer's shell removed).
    pub async fn new(endpoints: &Endpoints, region: &str) -> Self {
        crate::init_test_env();
        Self::connect(endpoints, region).await
    }

    /// Clients for `region` with the process's credentials as they are: for a harness living
    /// inside a program that reads its own endpoint variables.
    pub async fn connect(endpoints: &Endpoints, region: &str) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .load()
            .await;
        let ec2 = aws_sdk_ec2::config::Builder::from(&sdk)
            .endpoint_url(&endpoints.moto)
            .build();
        let s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .endpoint_url(&endpoints.moto)
            .force_path_style(true)
            .build();
        let rds = aws_sdk_rds::config::Builder::from(&sdk)
            .endpoint_url(&endpoints.moto)
            .build();
        let cw = aws_sdk_cloudwatch::config::Builder::from(&sdk)
            .endpoint_url(&endpoints.cloudwatch)
            .build();
        Self {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            s3: aws_sdk_s3::Client::from_conf(s3),
            rds: aws_sdk_rds::Client::from_conf(rds),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cw),
        }
    }
}

/// Size and seed of a demo estate.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DemoSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Instances in all, spread over the Regions.
    pub instances: usize,
    /// Regions.
    pub regions: Vec<String>,
    /// Hours of metrics, ending at the current hour.
    pub hours: u32,
}

impl Default for DemoSpec {
    fn default() -> Self {
        Self {
            seed: 42,
            instances: 200,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            // CloudWatch keeps backfilled data for two weeks, so the oldest hour of a 14-day
            // window is already gone: 335 hours is the most a 14-day lookback can see.
            hours: 14 * 24 - 1,
        }
    }
}

/// One seeded instance and its demand.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SeededInstance {
    /// Instance id.
    pub id: String,
    /// Region.
    pub region: String,
    /// Type at seeding time.
    pub instance_type: String,
    /// Its demand.
    pub workload: Workload,
    /// Its root EBS volume, when the emulator reported one.
    pub root_volume: Option<String>,
}

/// What the seeder created.
#[derive(Debug, Clone, Default)]
pub struct SeededEstate {
    /// Instances.
    pub instances: Vec<SeededInstance>,
    /// Unattached volumes.
    pub unattached_volumes: Vec<String>,
    /// Elastic IPs left unassociated.
    pub unassociated_eips: Vec<String>,
    /// Buckets.
    pub buckets: Vec<String>,
    /// RDS identifiers.
    pub db_instances: Vec<String>,
    /// Metric datapoints published.
    pub datapoints: usize,
    /// The hour (since the Unix epoch) the seeded metrics end before.
    pub metrics_until: i64,
}

/// vCPUs of the types the seeder uses.
#[must_use]
pub fn vcpus(instance_type: &str) -> u32 {
    match instance_type.split('.').nth(1).unwrap_or_default() {
        "nano" | "micro" | "small" | "medium" | "large" => 2,
        "xlarge" => 4,
        "2xlarge" => 8,
        "4xlarge" => 16,
        _ => 2,
    }
}

fn types_for(pattern: Pattern) -> &'static [&'static str] {
    match pattern {
        Pattern::Idle => &["m5.large", "t3.large", "m5.xlarge"],
        Pattern::SteadyLow => &["m5.2xlarge", "m5.xlarge", "c5.2xlarge", "r5.xlarge"],
        Pattern::WellSized => &["m5.large", "c5.xlarge", "m6i.large"],
        Pattern::Spiky => &["m5.xlarge", "c5.large"],
        Pattern::Saturated => &["c5.large", "m5.large", "t3.medium"],
    }
}

fn pick_pattern(rng: &mut ChaCha8Rng) -> Pattern {
    match rng.random_range(0..100) {
        // An estate that costs too much: a third over-provisioned, one in seven idle, and a
        // few instances short of capacity.
        0..15 => Pattern::Idle,
        15..50 => Pattern::SteadyLow,
        50..80 => Pattern::WellSized,
        80..92 => Pattern::Spiky,
        _ => Pattern::Saturated,
    }
}

fn tags(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(
            pairs
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

fn world_open(protocol: &str, from: i32, to: i32) -> IpPermission {
    IpPermission::builder()
        .ip_protocol(protocol)
        .from_port(from)
        .to_port(to)
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

/// Seeds the demo estate and its metrics.
///
/// # Errors
/// When an emulator refuses a call.
pub async fn seed_demo(endpoints: &Endpoints, spec: &DemoSpec) -> Result<SeededEstate> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut estate = SeededEstate::default();
    let per_region = spec.instances.div_ceil(spec.regions.len().max(1));
    for (ri, region) in spec.regions.iter().enumerate() {
        let c = Clients::new(endpoints, region).await;
        let n = per_region.min(spec.instances - ri * per_region.min(spec.instances));
        seed_region(&c, region, n, spec, &mut rng, &mut estate)
            .await
            .with_context(|| format!("seeding {region}"))?;
    }
    let until = current_hour();
    estate.metrics_until = until;
    for region in &spec.regions {
        let c = Clients::new(endpoints, region).await;
        let mine: Vec<SeededInstance> = estate
            .instances
            .iter()
            .filter(|i| &i.region == region)
            .cloned()
            .collect();
        estate.datapoints +=
            publish_instance_metrics(&c.cloudwatch, &mine, until - i64::from(spec.hours), until).await?;
        estate.datapoints += publish_other_metrics(&c, region, spec, until - i64::from(spec.hours), until).await?;
    }
    Ok(estate)
}

/// The current hour, in hours since the Unix epoch.
#[must_use]
pub fn current_hour() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0) / 3600)
}

async fn seed_region(
    c: &Clients,
    region: &str,
    n: usize,
    spec: &DemoSpec,
    rng: &mut ChaCha8Rng,
    estate: &mut SeededEstate,
) -> Result<()> {
    let vpc = c.ec2.describe_vpcs().send().await?;
    let vpc_id = vpc
        .vpcs()
        .first()
        .and_then(|v| v.vpc_id())
        .context("default VPC")?
        .to_owned();
    // The default VPC has one /20 subnet per Availability Zone (4,091 addresses each), as on
    // AWS: instances are spread over them in turn, so that a Region can hold thousands.
    let listed = c.ec2.describe_subnets().send().await?;
    let mut subnets: Vec<(String, String)> = listed
        .subnets()
        .iter()
        .filter(|s| s.vpc_id() == Some(vpc_id.as_str()))
        .map(|s| {
            (
                s.availability_zone().unwrap_or_default().to_owned(),
                s.subnet_id().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    subnets.sort();
    let az = subnets.first().context("default subnet")?.0.clone();

    // Security groups: one safe, four open to the world, one for the web.
    let mut groups = BTreeMap::new();
    for (name, perms) in [
        (
            "internal-only",
            vec![IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(0)
                .to_port(65535)
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
                .build()],
        ),
        (
            "web-public",
            vec![world_open("tcp", 80, 80), world_open("tcp", 443, 443)],
        ),
        ("ssh-world", vec![world_open("tcp", 22, 22)]),
        ("rdp-world", vec![world_open("tcp", 3389, 3389)]),
        (
            "all-open",
            vec![IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build()],
        ),
        ("postgres-world", vec![world_open("tcp", 5432, 5432)]),
    ] {
        let g = c
            .ec2
            .create_security_group()
            .group_name(name)
            .description(format!("demo {name}"))
            .vpc_id(&vpc_id)
            .send()
            .await?;
        let id = g.group_id().context("group id")?.to_owned();
        c.ec2
            .authorize_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(perms))
            .send()
            .await?;
        groups.insert(name, id);
    }

    for k in 0..n {
        let pattern = pick_pattern(rng);
        let types = types_for(pattern);
        let instance_type = types[rng.random_range(0..types.len())];
        let group = match rng.random_range(0..100) {
            0..60 => "internal-only",
            60..75 => "web-public",
            75..85 => "ssh-world",
            85..90 => "rdp-world",
            90..95 => "all-open",
            _ => "postgres-world",
        };
        let imds_required = rng.random_bool(0.6);
        let public = rng.random_bool(0.2);
        let env = if rng.random_bool(0.7) { "prod" } else { "dev" };
        let name = format!("demo-{region}-{k:04}");
        let out = c
            .ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(InstanceType::from(instance_type))
            .min_count(1)
            .max_count(1)
            .network_interfaces(
                InstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .subnet_id(&subnets[k % subnets.len()].1)
                    .associate_public_ip_address(public)
                    .groups(&groups[group])
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
            .tag_specifications(tags(
                ResourceType::Instance,
                &[("Name", &name), ("Pattern", pattern.name()), ("Environment", env)],
            ))
            .send()
            .await?;
        let launched = out.instances().first().context("launched instance")?;
        let id = launched.instance_id().context("instance id")?.to_owned();
        let root_volume = launched
            .block_device_mappings()
            .iter()
            .find_map(|b| b.ebs().and_then(|e| e.volume_id()))
            .map(str::to_owned);
        estate.instances.push(SeededInstance {
            id,
            region: region.to_owned(),
            instance_type: instance_type.to_owned(),
            workload: Workload {
                pattern,
                sized_for_vcpus: vcpus(instance_type),
                seed: rng.random(),
            },
            root_volume,
        });
    }

    // Unattached volumes: gp2 waste, and a few encrypted gp3 ones.
    for k in 0..(n / 20).max(2) {
        let encrypted = k % 3 == 2;
        let v = c
            .ec2
            .create_volume()
            .availability_zone(&az)
            .size(rng.random_range(50..500))
            .volume_type(if encrypted { VolumeType::Gp3 } else { VolumeType::Gp2 })
            .encrypted(encrypted)
            .tag_specifications(tags(ResourceType::Volume, &[("Name", &format!("orphan-{k}"))]))
            .send()
            .await?;
        estate
            .unattached_volumes
            .push(v.volume_id().unwrap_or_default().to_owned());
    }

    // Elastic IPs: half associated, half left idle.
    let region_instances: Vec<String> = estate
        .instances
        .iter()
        .filter(|i| i.region == region)
        .map(|i| i.id.clone())
        .collect();
    for k in 0..(n / 25).max(2) {
        let a = c
            .ec2
            .allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .send()
            .await?;
        let alloc = a.allocation_id().unwrap_or_default().to_owned();
        match region_instances.get(k * 2).filter(|_| k % 2 == 0) {
            Some(instance) => {
                c.ec2
                    .associate_address()
                    .allocation_id(&alloc)
                    .instance_id(instance)
                    .send()
                    .await?;
            }
            None => estate.unassociated_eips.push(alloc),
        }
    }

    seed_buckets(c, region, spec, estate).await?;
    seed_databases(c, region, &groups["postgres-world"], estate).await
}

fn bucket_name(spec: &DemoSpec, region: &str, role: &str) -> String {
    format!("miyabi-demo-{}-{region}-{role}", spec.seed)
}

async fn seed_buckets(c: &Clients, region: &str, spec: &DemoSpec, estate: &mut SeededEstate) -> Result<()> {
    use aws_sdk_s3::types::{
        BucketCannedAcl, BucketLocationConstraint, BucketLoggingStatus, BucketVersioningStatus,
        CreateBucketConfiguration, LoggingEnabled, PublicAccessBlockConfiguration, ServerSideEncryption,
        ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
        VersioningConfiguration,
    };
    let create = |name: String| {
        let mut req = c.s3.create_bucket().bucket(name);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        req
    };
    // A well-kept bucket: full public access block, encryption, versioning, logging.
    let logs = bucket_name(spec, region, "logs");
    create(logs.clone()).send().await?;
    // The logging service may write into it (a service principal, not a public grant), so it can
    // log into itself.
    let logging_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"logging.s3.amazonaws.com"}},"Action":["s3:PutObject"],"Resource":"arn:aws:s3:::{logs}/*"}}]}}"#
    );
    c.s3.put_bucket_policy()
        .bucket(&logs)
        .policy(logging_policy)
        .send()
        .await?;
    c.s3.put_public_access_block()
        .bucket(&logs)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await?;
    c.s3.put_bucket_encryption()
        .bucket(&logs)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::Aes256)
                                .build()?,
                        )
                        .build(),
                )
                .build()?,
        )
        .send()
        .await?;
    c.s3.put_bucket_versioning()
        .bucket(&logs)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await?;
    c.s3.put_bucket_logging()
        .bucket(&logs)
        .bucket_logging_status(
            BucketLoggingStatus::builder()
                .logging_enabled(
                    LoggingEnabled::builder()
                        .target_bucket(&logs)
                        .target_prefix("self/")
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;
    // A public website bucket (public-read ACL) and a data bucket with a public policy.
    let site = bucket_name(spec, region, "site");
    create(site.clone()).acl(BucketCannedAcl::PublicRead).send().await?;
    let data = bucket_name(spec, region, "data");
    create(data.clone()).send().await?;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{data}/*"}}]}}"#
    );
    c.s3.put_bucket_policy().bucket(&data).policy(policy).send().await?;
    estate.buckets.extend([logs, site, data]);
    Ok(())
}

async fn seed_databases(c: &Clients, region: &str, open_group: &str, estate: &mut SeededEstate) -> Result<()> {
    // (identifier, class, engine, public, encrypted, backup days, multi-AZ, deletion protection, master user)
    let dbs = [
        (
            "orders",
            "db.m5.large",
            "postgres",
            true,
            false,
            7,
            false,
            false,
            "postgres",
        ),
        (
            "analytics",
            "db.r5.xlarge",
            "postgres",
            false,
            true,
            0,
            false,
            false,
            "analyst",
        ),
        (
            "billing",
            "db.m5.large",
            "mysql",
            false,
            true,
            7,
            true,
            true,
            "billing_owner",
        ),
    ];
    for (name, class, engine, public, encrypted, backups, multi_az, protect, user) in dbs {
        let id = format!("{name}-{region}");
        c.rds
            .create_db_instance()
            .db_instance_identifier(&id)
            .db_instance_class(class)
            .engine(engine)
            .master_username(user)
            .master_user_password("not-a-real-password-1")
            .allocated_storage(100)
            .storage_type("gp2")
            .publicly_accessible(public)
            .storage_encrypted(encrypted)
            .backup_retention_period(backups)
            .multi_az(multi_az)
            .deletion_protection(protect)
            .vpc_security_group_ids(open_group)
            .send()
            .await?;
        estate.db_instances.push(id);
    }
    Ok(())
}

fn datum(metric: &str, dim: (&str, &str), hour: i64, value: f64, unit: StandardUnit) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(metric)
        .dimensions(Dimension::builder().name(dim.0).value(dim.1).build())
        .timestamp(AwsTime::from_secs(hour * 3600))
        .value(value)
        .unit(unit)
        .build()
}

/// Datums per `PutMetricData` call. Real CloudWatch takes at most 1,000; ministack takes any
/// number, and serves one request at a time with a cost per request that grows with its store,
/// so seeding large estates in 1,000-datum calls would take quadratic time. This harness only
/// ever talks to the emulator.
const EMULATOR_PUT_BATCH: usize = 50_000;

async fn put_all(cw: &aws_sdk_cloudwatch::Client, namespace: &str, data: Vec<MetricDatum>) -> Result<usize> {
    let n = data.len();
    for chunk in data.chunks(EMULATOR_PUT_BATCH) {
        cw.put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await?;
    }
    Ok(n)
}

/// Publishes CPU, network, root-volume I/O and memory (for one instance in five) for hours `[from, to)`, from each
/// instance's demand and its current type `instance_type`, so that a workload simulator can call it
/// again after a resize and the next period shows the change.
///
/// # Errors
/// When CloudWatch refuses a call.
pub async fn publish_instance_metrics(
    cw: &aws_sdk_cloudwatch::Client,
    instances: &[SeededInstance],
    from: i64,
    to: i64,
) -> Result<usize> {
    let mut sent = 0;
    // A few instances at a time, so that memory stays flat however large the estate.
    for group in instances.chunks(64) {
        let mut ec2 = Vec::new();
        let mut agent = Vec::new();
        let mut ebs = Vec::new();
        for i in group {
            let v = vcpus(&i.instance_type);
            for h in from..to {
                let cpu = i.workload.cpu_percent(h, v);
                let net = i.workload.network_bytes(h);
                ec2.push(datum(
                    "CPUUtilization",
                    ("InstanceId", &i.id),
                    h,
                    cpu,
                    StandardUnit::Percent,
                ));
                ec2.push(datum("NetworkIn", ("InstanceId", &i.id), h, net, StandardUnit::Bytes));
                ec2.push(datum(
                    "NetworkOut",
                    ("InstanceId", &i.id),
                    h,
                    net * 0.8,
                    StandardUnit::Bytes,
                ));
                if let Some(volume) = &i.root_volume {
                    // Disk work follows CPU demand: about one I/O per 20 vCPU-seconds.
                    let ops = i.workload.demand_vcpu_seconds(h) / 20.0;
                    ebs.push(datum(
                        "VolumeReadOps",
                        ("VolumeId", volume),
                        h,
                        ops.round(),
                        StandardUnit::Count,
                    ));
                    ebs.push(datum(
                        "VolumeWriteOps",
                        ("VolumeId", volume),
                        h,
                        (ops * 0.6).round(),
                        StandardUnit::Count,
                    ));
                }
                if i.workload.seed % 5 == 0 {
                    agent.push(datum(
                        "mem_used_percent",
                        ("InstanceId", &i.id),
                        h,
                        30.0 + cpu * 0.4,
                        StandardUnit::Percent,
                    ));
                }
            }
        }
        sent += put_all(cw, "AWS/EC2", ec2).await?
            + put_all(cw, "AWS/EBS", ebs).await?
            + put_all(cw, "CWAgent", agent).await?;
    }
    Ok(sent)
}

/// Publishes the RDS and S3 metrics of `region`'s seeded databases and buckets for hours
/// `[from, until)`.
///
/// # Errors
/// When CloudWatch refuses a call.
pub async fn publish_other_metrics(c: &Clients, region: &str, spec: &DemoSpec, from: i64, until: i64) -> Result<usize> {
    let mut rds = Vec::new();
    for (name, cpu, conns) in [("orders", 55.0, 40.0), ("analytics", 1.0, 0.0), ("billing", 20.0, 12.0)] {
        let id = format!("{name}-{region}");
        for h in from..until {
            let wave = ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
            rds.push(datum(
                "CPUUtilization",
                ("DBInstanceIdentifier", &id),
                h,
                cpu * (1.0 + 0.2 * wave),
                StandardUnit::Percent,
            ));
            rds.push(datum(
                "DatabaseConnections",
                ("DBInstanceIdentifier", &id),
                h,
                (conns * (1.0 + 0.3 * wave)).round(),
                StandardUnit::Count,
            ));
        }
    }
    let mut s3 = Vec::new();
    for (role, gib) in [("logs", 120.0), ("site", 4.0), ("data", 800.0)] {
        let name = bucket_name(spec, region, role);
        // One size a day, at midnight UTC, as S3 reports storage.
        for h in (from..until).filter(|h| h.rem_euclid(24) == 0) {
            s3.push(
                MetricDatum::builder()
                    .metric_name("BucketSizeBytes")
                    .dimensions(Dimension::builder().name("BucketName").value(&name).build())
                    .dimensions(
                        Dimension::builder()
                            .name("StorageType")
                            .value("StandardStorage")
                            .build(),
                    )
                    .timestamp(AwsTime::from_secs(h * 3600))
                    .value(gib * f64::from(1u32 << 30))
                    .unit(StandardUnit::Bytes)
                    .build(),
            );
        }
    }
    Ok(put_all(&c.cloudwatch, "AWS/RDS", rds).await? + put_all(&c.cloudwatch, "AWS/S3", s3).await?)
}
