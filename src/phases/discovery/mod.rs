//! θ1 Discovery: the estate as a world state.
//!
//! Regions are scanned concurrently, and within a Region the EC2 and RDS scans run concurrently;
//! S3's bucket list is global and each bucket is read through a client of its own Region. Metric
//! series come last, batched per Region. A scan that fails with anything but an auth error
//! becomes a [`ScanGap`]: the world state is then marked partial and nothing is dropped silently.
//! An auth error stops discovery at once.

mod convert;
pub(crate) mod ec2;
pub(crate) mod rds;
pub mod report;
pub(crate) mod s3;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::assessment::assess;
use crate::aws::metrics::{self, SeriesRequest};
use crate::aws::{AwsError, AwsSession, RegionClients};
use crate::catalog::PriceCatalog;
use crate::cycle::{CycleContext, Phase, PhaseId, PhaseOutcome};
use crate::owners::OwnerDirectory;
use crate::progress::{ProgressEvent, ProgressSink, TracingProgress};
use crate::world::{Completeness, Inventory, ScanGap, Scope, WorldState, SCHEMA_VERSION};
use crate::{Error, Result};

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Regions to scan. Empty means the Region of the standard configuration.
    pub regions: Vec<String>,
    /// Metric lookback in hours (14 days by default; 32 and 93 days are the other usual values).
    pub lookback_hours: u32,
    /// Owner agents stamped on resources.
    pub owners: OwnerDirectory,
    /// `GetMetricData` calls in flight per Region.
    pub metric_concurrency: usize,
    /// S3 buckets read at once.
    pub bucket_concurrency: usize,
    /// End of the metric window; `None` is now, rounded down to the hour.
    pub until: Option<DateTime<Utc>>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            regions: Vec::new(),
            lookback_hours: 14 * 24,
            owners: OwnerDirectory::default(),
            metric_concurrency: 4,
            bucket_concurrency: 8,
            until: None,
        }
    }
}

impl DiscoveryConfig {
    /// Checks the settings: a lookback of at least one hour and at most 455 days (CloudWatch's
    /// retention of hourly data), Regions named, concurrencies of at least 1.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if !(1..=455 * 24).contains(&self.lookback_hours) {
            return Err(Error::Config(format!(
                "lookback_hours must be between 1 and {} (455 days), got {}",
                455 * 24,
                self.lookback_hours
            )));
        }
        if let Some(empty) = self.regions.iter().position(String::is_empty) {
            return Err(Error::Config(format!("regions[{empty}] is empty")));
        }
        if self.metric_concurrency == 0 || self.bucket_concurrency == 0 {
            return Err(Error::Config(
                "metric_concurrency and bucket_concurrency must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What a scan produced: the world state and the API calls it made.
#[derive(Debug, Clone)]
pub struct DiscoveryOutput {
    /// The captured world state, marked partial if any scan failed.
    pub world: WorldState,
    /// Requests sent per service, retries included.
    pub calls_per_service: BTreeMap<String, u64>,
}

/// θ1 in Rust, over the AWS SDK.
pub struct Discovery {
    config: DiscoveryConfig,
    progress: Arc<dyn ProgressSink>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Everything one Region's scan found, and what failed.
#[derive(Default)]
struct RegionScan {
    inventory: Inventory,
    gaps: Vec<ScanGap>,
    account: Option<String>,
}

impl RegionScan {
    /// Keeps `Ok` values, records other failures as gaps, and passes auth errors up.
    fn take<T>(&mut self, result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_access_denied() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "scan failed; the capture will be partial");
                self.gaps.push(ScanGap {
                    region: e.region.clone(),
                    service: e.service.to_owned(),
                    operation: e.operation.to_owned(),
                    error: e.to_string(),
                });
                Ok(None)
            }
        }
    }
}

impl Discovery {
    /// Discovery with `config`, reporting progress to `tracing`.
    #[must_use]
    pub fn new(config: DiscoveryConfig) -> Self {
        Self {
            config,
            progress: Arc::new(TracingProgress),
        }
    }

    /// Sends the progress of [`Discovery::discover`] to `sink` instead (in a cycle, progress
    /// goes to the context's sink).
    #[must_use]
    pub fn with_progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = sink;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// Scans the estate through `aws` and assesses it with `catalog`.
    ///
    /// # Errors
    /// An auth or permission error, at once; [`Error::Config`] when no Region is known or the
    /// configuration is invalid. Other failures do not error: they mark the world state partial.
    pub async fn discover(&self, aws: &AwsSession, catalog: &PriceCatalog) -> Result<DiscoveryOutput> {
        let until = self.config.until.unwrap_or_else(Utc::now);
        self.discover_until(aws, catalog, until, &*self.progress).await
    }

    /// [`Discovery::discover`] with the metric window ending at `until`.
    async fn discover_until(
        &self,
        aws: &AwsSession,
        catalog: &PriceCatalog,
        until: DateTime<Utc>,
        progress: &dyn ProgressSink,
    ) -> Result<DiscoveryOutput> {
        self.config.validate()?;
        let calls_before = aws.stats().per_service();
        let regions = self.regions(aws).await?;
        let until = until.timestamp();
        let until = until - until.rem_euclid(3600);
        let window = (until - i64::from(self.config.lookback_hours) * 3600, until);

        let mut clients = BTreeMap::new();
        for region in &regions {
            clients.insert(region.clone(), aws.clients(region).await);
        }
        let scans = futures::future::join_all(clients.values().map(|c| self.scan_region(c, progress))).await;
        let mut total = RegionScan::default();
        for scan in scans {
            let scan = scan?;
            total.account = total.account.or(scan.account);
            total.inventory.extend_from(scan.inventory);
            total.gaps.extend(scan.gaps);
        }
        if let Some(account) = &total.account {
            aws.learn_account(account);
        }
        self.scan_buckets(aws, &regions, &mut clients, &mut total, progress)
            .await?;
        self.scan_metrics(&clients, window, &mut total, progress).await?;

        let account = total.account.clone().unwrap_or_default();
        fill_arns(&mut total.inventory, &account);
        let world = capture_world(
            total.inventory,
            total.account,
            regions,
            self.config.lookback_hours,
            total.gaps,
            catalog,
        );
        let mut calls_per_service = aws.stats().per_service();
        for (service, before) in calls_before {
            if let Some(n) = calls_per_service.get_mut(&service) {
                *n -= before.min(*n);
            }
        }
        calls_per_service.retain(|_, n| *n > 0);
        Ok(DiscoveryOutput {
            world,
            calls_per_service,
        })
    }

    async fn regions(&self, aws: &AwsSession) -> Result<Vec<String>> {
        if !self.config.regions.is_empty() {
            return Ok(self.config.regions.clone());
        }
        aws.default_region().await.map(|r| vec![r]).ok_or_else(|| {
            Error::Config("no Region given and none in the standard AWS configuration (AWS_REGION, profile)".into())
        })
    }

    async fn scan_region(&self, c: &RegionClients, progress: &dyn ProgressSink) -> Result<RegionScan, AwsError> {
        let owners = &self.config.owners;
        step(progress, &c.region, "scanning EC2 and RDS".into(), None, None);
        let (instances, volumes, addresses, groups, dbs) = tokio::join!(
            ec2::instances(&c.ec2, owners, &[]),
            ec2::volumes(&c.ec2, owners, &[]),
            ec2::addresses(&c.ec2, owners),
            ec2::security_groups(&c.ec2, owners, &[]),
            rds::db_instances(&c.rds, owners, None),
        );
        let mut scan = RegionScan::default();
        if let Some((instances, account)) = scan.take(instances)? {
            scan.inventory.instances = instances;
            scan.account = account;
        }
        scan.inventory.volumes = scan.take(volumes)?.unwrap_or_default();
        scan.inventory.addresses = scan.take(addresses)?.unwrap_or_default();
        if let Some((groups, account)) = scan.take(groups)? {
            scan.inventory.security_groups = groups;
            scan.account = scan.account.or(account);
        }
        scan.inventory.db_instances = scan.take(dbs)?.unwrap_or_default();
        let inv = &scan.inventory;
        step(
            progress,
            &c.region,
            format!(
                "found {} instances, {} volumes, {} Elastic IPs, {} security groups, {} DB instances",
                inv.instances.len(),
                inv.volumes.len(),
                inv.addresses.len(),
                inv.security_groups.len(),
                inv.db_instances.len()
            ),
            None,
            None,
        );
        Ok(scan)
    }

    async fn scan_buckets(
        &self,
        aws: &AwsSession,
        regions: &[String],
        clients: &mut BTreeMap<String, RegionClients>,
        total: &mut RegionScan,
        progress: &dyn ProgressSink,
    ) -> Result<(), AwsError> {
        let Some(home) = regions.first().and_then(|r| clients.get(r)) else {
            return Ok(());
        };
        let Some(listed) = total.take(s3::list(&home.s3).await)? else {
            return Ok(());
        };
        step(
            progress,
            "global",
            format!("reading {} S3 buckets", listed.len()),
            Some(0),
            Some(listed.len() as u64),
        );
        // Buckets whose Region the list did not give are located first.
        let mut located = Vec::with_capacity(listed.len());
        for mut b in listed {
            if b.region.is_none() {
                match total.take(s3::location(&home.s3, &b.name).await)? {
                    Some(region) => b.region = Some(region),
                    None => continue,
                }
            }
            located.push(b);
        }
        // A bucket may live outside the scanned Regions: read it through a client of its Region.
        for b in &located {
            let region = b.region.clone().unwrap_or_default();
            if let std::collections::btree_map::Entry::Vacant(slot) = clients.entry(region) {
                let c = aws.clients(slot.key()).await;
                slot.insert(c);
            }
        }
        let owner = self.config.owners.persona("s3");
        let clients_ref = &*clients;
        let count = located.len() as u64;
        // Futures are built first and streamed after: a closure over borrowed clients inside the
        // stream would need a higher-ranked `Send` bound that async-trait cannot express.
        let reads: Vec<_> = located
            .into_iter()
            .filter_map(|b| {
                let c = clients_ref.get(b.region.as_deref().unwrap_or_default())?;
                Some(s3::describe(&c.s3, b, owner))
            })
            .collect();
        let results: Vec<_> = stream::iter(reads)
            .buffer_unordered(self.config.bucket_concurrency.max(1))
            .collect()
            .await;
        for r in results {
            if let Some(bucket) = total.take(r)? {
                total.inventory.buckets.push(bucket);
            }
        }
        step(progress, "global", "S3 buckets read".into(), Some(count), Some(count));
        Ok(())
    }

    async fn scan_metrics(
        &self,
        clients: &BTreeMap<String, RegionClients>,
        window: (i64, i64),
        total: &mut RegionScan,
        progress: &dyn ProgressSink,
    ) -> Result<(), AwsError> {
        // Memory exists only where the CloudWatch agent publishes it: ask which instances do.
        let mut memory = Vec::new();
        for (region, c) in clients {
            if total.inventory.instances.iter().any(|i| &i.region == region) {
                let listed = metrics::agent_memory_metrics(&c.cloudwatch).await;
                if let Some(dim_sets) = total.take(listed)? {
                    memory.extend(dim_sets.into_iter().map(|d| (region.as_str(), d)));
                }
            }
        }
        let per_region = series_requests(&total.inventory, memory, window);

        let mut jobs = Vec::new();
        for (region, mut requests) in per_region {
            // A call has one time range, so daily S3 requests go in batches of their own.
            requests.sort_by_key(|r| (r.period_seconds, r.window));
            let Some(c) = clients.get(region) else { continue };
            for range in metrics::batches_of(&requests) {
                jobs.push((c, requests[range].to_vec()));
            }
        }
        let batches = jobs.len() as u64;
        step(
            progress,
            "cloudwatch",
            format!("fetching metric series in {batches} GetMetricData batches"),
            Some(0),
            Some(batches),
        );
        let mut done = 0u64;
        let fetches: Vec<_> = jobs
            .iter()
            .map(|(c, reqs)| metrics::fetch_batch(&c.cloudwatch, reqs))
            .collect();
        let mut results = stream::iter(fetches).buffer_unordered(self.config.metric_concurrency.max(1));
        let mut series = Vec::new();
        while let Some(r) = results.next().await {
            done += 1;
            if let Some(s) = total.take(r)? {
                series.extend(s);
            }
            step(
                progress,
                "cloudwatch",
                format!("batch {done}/{batches}"),
                Some(done),
                Some(batches),
            );
        }
        drop(results);
        for b in &mut total.inventory.buckets {
            b.size_bytes = series
                .iter()
                .find(|s| s.metric_name == "BucketSizeBytes" && s.resource_id == b.name)
                .and_then(crate::world::MetricSeries::last);
        }
        total.inventory.metrics = series;
        Ok(())
    }
}

/// Reports one step of θ1's progress.
fn step(sink: &dyn ProgressSink, scope: &str, message: String, done: Option<u64>, total: Option<u64>) {
    sink.report(&ProgressEvent {
        phase: "discovery",
        scope: scope.to_owned(),
        message,
        done,
        total,
    });
}

/// Namespace, dimension, and (metric, statistic) pairs fetched for one kind of resource.
type SeriesSpec = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

const EC2_SERIES: SeriesSpec = (
    "AWS/EC2",
    "InstanceId",
    &[
        ("CPUUtilization", "Average"),
        ("NetworkIn", "Sum"),
        ("NetworkOut", "Sum"),
    ],
);
const EBS_SERIES: SeriesSpec = (
    "AWS/EBS",
    "VolumeId",
    &[("VolumeReadOps", "Sum"), ("VolumeWriteOps", "Sum")],
);
const RDS_SERIES: SeriesSpec = (
    "AWS/RDS",
    "DBInstanceIdentifier",
    &[("CPUUtilization", "Average"), ("DatabaseConnections", "Maximum")],
);

/// The series to fetch, per Region: EC2 CPU and network, EBS I/O, RDS CPU and connections, agent
/// memory where published, and each bucket's daily size in the bucket's own Region.
fn series_requests<'a>(
    inv: &'a Inventory,
    memory: Vec<(&'a str, BTreeMap<String, String>)>,
    window: (i64, i64),
) -> BTreeMap<&'a str, Vec<SeriesRequest>> {
    let known: std::collections::BTreeSet<&str> = inv.instances.iter().map(|i| i.id.as_str()).collect();
    let mut per_region: BTreeMap<&str, Vec<SeriesRequest>> = BTreeMap::new();
    for (region, dims) in memory {
        if known.contains(dims["InstanceId"].as_str()) {
            let mut req = SeriesRequest::new(
                &dims["InstanceId"],
                "CWAgent",
                "mem_used_percent",
                "InstanceId",
                "Average",
            );
            req.dimensions = dims;
            per_region.entry(region).or_default().push(req);
        }
    }
    let kinds: [(SeriesSpec, Vec<(&str, &str)>); 3] = [
        (
            EC2_SERIES,
            inv.instances
                .iter()
                .map(|i| (i.id.as_str(), i.region.as_str()))
                .collect(),
        ),
        (
            EBS_SERIES,
            inv.volumes.iter().map(|v| (v.id.as_str(), v.region.as_str())).collect(),
        ),
        (
            RDS_SERIES,
            inv.db_instances
                .iter()
                .map(|d| (d.id.as_str(), d.region.as_str()))
                .collect(),
        ),
    ];
    for ((namespace, dimension, metrics), resources) in kinds {
        for (id, region) in resources {
            let r = per_region.entry(region).or_default();
            for (metric, stat) in metrics {
                r.push(SeriesRequest::new(id, namespace, metric, dimension, stat));
            }
        }
    }
    for b in &inv.buckets {
        let mut req = SeriesRequest::new(&b.name, "AWS/S3", "BucketSizeBytes", "BucketName", "Average");
        req.dimensions.insert("StorageType".into(), "StandardStorage".into());
        req.period_seconds = 86_400;
        // The metric is daily: three days back always hold the latest value.
        req.window = (window.1 - 3 * 86_400, window.1);
        per_region.entry(b.region.as_str()).or_default().push(req);
    }
    for requests in per_region.values_mut() {
        for r in requests.iter_mut().filter(|r| r.window == (0, 0)) {
            r.window = window;
        }
    }
    per_region
}

fn fill_arns(inv: &mut Inventory, account: &str) {
    let arn = |region: &str, kind: &str, id: &str| {
        format!("arn:{}:ec2:{region}:{account}:{kind}/{id}", convert::partition(region))
    };
    for i in &mut inv.instances {
        i.arn = arn(&i.region, "instance", &i.id);
    }
    for v in &mut inv.volumes {
        v.arn = arn(&v.region, "volume", &v.id);
    }
    for a in &mut inv.addresses {
        a.arn = arn(&a.region, "elastic-ip", &a.allocation_id);
    }
    for g in &mut inv.security_groups {
        g.arn = arn(&g.region, "security-group", &g.id);
    }
}

#[async_trait]
impl Phase for Discovery {
    fn id(&self) -> PhaseId {
        PhaseId::Discovery
    }

    fn name(&self) -> String {
        "discovery (rust)".into()
    }

    /// Captures the world state, writes `world_state_N.json` and `discovery_report.md` when the
    /// context has an output folder, and fails with [`Error::PartialCapture`] (after saving the
    /// partial state) when a scan failed.
    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let until = self.config.until.unwrap_or_else(|| ctx.clock.now());
        let out = self
            .discover_until(&ctx.aws, &ctx.catalog, until, &*ctx.progress)
            .await?;
        publish_capture(ctx, out)
    }
}

/// The world state of a finished capture: inventory in canonical order, assessed with `catalog`,
/// marked partial when `gaps` is not empty. Every θ1 implementation ends here.
pub(crate) fn capture_world(
    mut inventory: Inventory,
    account_id: Option<String>,
    regions: Vec<String>,
    lookback_hours: u32,
    gaps: Vec<ScanGap>,
    catalog: &PriceCatalog,
) -> WorldState {
    inventory.sort();
    let completeness = if gaps.is_empty() {
        Completeness::Complete
    } else {
        Completeness::Partial { gaps }
    };
    let assessment = assess(&inventory, catalog);
    WorldState {
        schema_version: SCHEMA_VERSION,
        scope: Scope {
            account_id,
            regions,
            captured_at: Utc::now(),
            lookback_hours,
            completeness,
        },
        inventory,
        assessment,
    }
}

/// What every θ1 phase does with its capture in a cycle: writes `world_state_N.json` and
/// `discovery_report.md` when the context has an output folder, stores the world state, and
/// fails with [`Error::PartialCapture`] (after saving the partial state) when a scan failed.
///
/// # Errors
/// [`Error::PartialCapture`] as above; [`Error::Io`] when a file cannot be written.
pub fn publish_capture(ctx: &mut CycleContext, mut out: DiscoveryOutput) -> Result<PhaseOutcome> {
    out.world.scope.captured_at = ctx.clock.now();
    let partial = match &out.world.scope.completeness {
        Completeness::Partial { gaps } => Some(gaps.clone()),
        Completeness::Complete => None,
    };
    let name = format!("world_state_{}.json", ctx.iteration());
    ctx.output.write(&name, out.world.to_json().as_bytes())?;
    ctx.output.write(
        "discovery_report.md",
        report::render(&out.world, &out.calls_per_service).as_bytes(),
    )?;
    ctx.artefacts.put(out.world);
    match partial {
        Some(gaps) => Err(Error::PartialCapture { gaps }),
        None => Ok(PhaseOutcome::nothing()),
    }
}
