//! θ1 Discovery: the estate as a world state.
//!
//! Regions are scanned concurrently, and within a Region the EC2 and RDS scans run concurrently;
//! S3's bucket list is global and each bucket is read through a client of its own Region. Metric
//! series come last, batched per Region. A read that fails becomes a [`ScanGap`] naming what it
//! leaves partial (a bucket, the resources of a metric batch, or a whole Region when a listing
//! failed): the world state is then marked partial, nothing is dropped silently, and the loop
//! goes on with what was read whole. Only credentials that AWS refuses outright stop discovery
//! at once, since no other read of the account could succeed.

mod convert;
pub(crate) mod ec2;
mod incremental;
pub(crate) mod posture;
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
use crate::world::{Completeness, Inventory, MetricSeries, ScanGap, Scope, WorldState, SCHEMA_VERSION};
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
    /// In a cycle, build each capture's metric series on the previous iteration's world state
    /// (see [`Discovery::with_previous`]): CloudWatch is asked only for the datapoints that
    /// world does not hold yet. On by default.
    pub incremental: bool,
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
            incremental: true,
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

/// What a scan produced: the world state, the API calls it made and what it asked CloudWatch.
#[derive(Debug, Clone)]
pub struct DiscoveryOutput {
    /// The captured world state, marked partial if any scan failed.
    pub world: WorldState,
    /// Requests sent per service, retries included.
    pub calls_per_service: BTreeMap<String, u64>,
    /// The metric scan's size and cost; `None` when the implementation does not say (the
    /// legacy scripts).
    pub metrics: Option<MetricScan>,
}

/// What θ1 asked CloudWatch for, and what that costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricScan {
    /// True when the series of a previous capture were built on (see
    /// [`Discovery::with_previous`]).
    pub incremental: bool,
    /// `GetMetricData` calls, before paging.
    pub batches: u64,
    /// Metrics requested: the queries sent. CloudWatch bills `GetMetricData` per metric
    /// requested, whatever its time range.
    pub series_requested: u64,
    /// The datapoints the requested windows can hold.
    pub datapoints_requested: u64,
    /// The datapoints CloudWatch returned.
    pub datapoints_returned: u64,
}

impl crate::artefact::Artefact for MetricScan {
    const WHAT: &'static str = "θ1's metric scan";
}

impl MetricScan {
    /// CloudWatch's price of `GetMetricData`: USD per 1,000 metrics requested (us-east-1).
    pub const USD_PER_1000_METRICS: f64 = 0.01;

    /// The scan's estimated `GetMetricData` bill, USD.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // exact below 2^52 metrics
    pub fn estimated_cost_usd(&self) -> f64 {
        self.series_requested as f64 / 1000.0 * Self::USD_PER_1000_METRICS
    }
}

/// θ1 in Rust, over the AWS SDK.
pub struct Discovery {
    config: DiscoveryConfig,
    progress: Arc<dyn ProgressSink>,
    previous: Option<Arc<WorldState>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("config", &self.config)
            .field("previous", &self.previous.as_ref().map(|w| w.scope.captured_at))
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
    /// Keeps `Ok` values, records other failures as gaps of the whole Region, and passes up
    /// credentials that AWS refused.
    fn take<T>(&mut self, result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
        self.take_for(result, Vec::new)
    }

    /// [`RegionScan::take`] for a read about some resources only: a failure leaves those
    /// `resources` partial, not their Region.
    fn take_for<T>(
        &mut self,
        result: Result<T, AwsError>,
        resources: impl FnOnce() -> Vec<String>,
    ) -> Result<Option<T>, AwsError> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.refuses_credentials() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "read failed; the capture will be partial");
                self.gaps.push(ScanGap {
                    region: e.region.clone(),
                    service: e.service.to_owned(),
                    operation: e.operation.to_owned(),
                    resources: resources(),
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
            previous: None,
        }
    }

    /// Builds the metric series on `previous` (for example the last run's `world_state_N.json`):
    /// a series it holds is asked only from its last datapoint on (that period again, for late
    /// points), merged by timestamp (the newer value wins), and cut to the lookback; a series it lacks is asked
    /// whole. In a cycle this is the first iteration's base; later ones build on the iteration
    /// before (when [`DiscoveryConfig::incremental`] is on).
    #[must_use]
    pub fn with_previous(mut self, previous: Arc<WorldState>) -> Self {
        self.previous = Some(previous);
        self
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
    /// Credentials that AWS refused, at once; [`Error::Config`] when no Region is known or the
    /// configuration is invalid. Other failures, a denied permission among them, do not error:
    /// they are gaps of a world state marked partial.
    pub async fn discover(&self, aws: &AwsSession, catalog: &PriceCatalog) -> Result<DiscoveryOutput> {
        let until = self.config.until.unwrap_or_else(Utc::now);
        self.discover_until(aws, catalog, until, self.previous.as_deref(), &*self.progress)
            .await
    }

    /// [`Discovery::discover`] with the metric window ending at `until`, building on the series
    /// of `previous`.
    async fn discover_until(
        &self,
        aws: &AwsSession,
        catalog: &PriceCatalog,
        until: DateTime<Utc>,
        previous: Option<&WorldState>,
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
        let metrics = self
            .scan_metrics(&clients, window, previous, &mut total, progress)
            .await?;

        let account = total.account.clone().unwrap_or_default();
        fill_arns(&mut total.inventory, &account);
        let world = capture_world(
            total.inventory,
            total.account,
            regions,
            (self.config.lookback_hours, window.1),
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
            metrics: Some(metrics),
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
        let (instances, volumes, addresses, groups, (dbs, clusters, db_snapshots), posture) = tokio::join!(
            ec2::instances(&c.ec2, owners, &[]),
            ec2::volumes(&c.ec2, owners, &[]),
            ec2::addresses(&c.ec2, owners),
            ec2::security_groups(&c.ec2, owners, &[]),
            async {
                tokio::join!(
                    rds::db_instances(&c.rds, owners, None),
                    rds::db_clusters(&c.rds),
                    rds::db_snapshots(&c.rds),
                )
            },
            async {
                tokio::join!(
                    posture::network_interfaces(&c.ec2),
                    posture::network_acls(&c.ec2),
                    posture::subnets(&c.ec2),
                    posture::snapshots(&c.ec2),
                    posture::region_settings(&c.ec2),
                )
            },
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
        scan.inventory.db_clusters = scan.take(clusters)?.unwrap_or_default();
        scan.inventory.db_snapshots = scan.take(db_snapshots)?.unwrap_or_default();
        let (interfaces, acls, subnets, snapshots, settings) = posture;
        scan.inventory.network_interfaces = scan.take(interfaces)?.unwrap_or_default();
        scan.inventory.network_acls = scan.take(acls)?.unwrap_or_default();
        scan.inventory.subnets = scan.take(subnets)?.unwrap_or_default();
        scan.inventory.snapshots = scan.take(snapshots)?.unwrap_or_default();
        scan.inventory.region_settings = scan.take(settings)?.into_iter().collect();
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
                match total.take_for(s3::location(&home.s3, &b.name).await, || vec![b.name.clone()])? {
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
                let name = b.name.clone();
                Some(async move { (name, Box::pin(s3::describe(&c.s3, b, owner)).await) })
            })
            .collect();
        let results: Vec<_> = stream::iter(reads)
            .buffer_unordered(self.config.bucket_concurrency.max(1))
            .collect()
            .await;
        // A bucket whose settings could not all be read (a bucket policy denying this role its
        // ACL, say) is left out whole and named by its gap: a verdict on half its settings
        // would be a guess.
        for (name, r) in results {
            if let Some(bucket) = total.take_for(r, || vec![name])? {
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
        previous: Option<&WorldState>,
        total: &mut RegionScan,
        progress: &dyn ProgressSink,
    ) -> Result<MetricScan, AwsError> {
        // Memory exists only where the CloudWatch agent publishes it: ask which instances do.
        let mut memory = Vec::new();
        for (region, c) in clients {
            let in_region: Vec<String> = total
                .inventory
                .instances
                .iter()
                .filter(|i| &i.region == region)
                .map(|i| i.id.clone())
                .collect();
            if !in_region.is_empty() {
                let listed = metrics::agent_memory_metrics(&c.cloudwatch).await;
                // Without knowing whose memory is published, right-sizing could cut memory that
                // is in use: the Region's instances are partial.
                if let Some(dim_sets) = total.take_for(listed, || in_region)? {
                    memory.extend(dim_sets.into_iter().map(|d| (region.as_str(), d)));
                }
            }
        }
        let held = incremental::HeldSeries::of(previous, window.0);
        let mut scan = MetricScan {
            incremental: !held.is_empty(),
            ..MetricScan::default()
        };
        // Per Region: its requests (narrowed to what the previous capture lacks) and their full
        // windows.
        let per_region: Vec<RegionRequests> = series_requests(&total.inventory, memory, window)
            .into_iter()
            .map(|(region, mut requests)| {
                let full = held.narrow(region, &mut requests);
                (region.to_owned(), requests, full)
            })
            .collect();
        // Each job: the index of its Region in `per_region`, the client, the batch.
        let mut jobs = Vec::new();
        for (index, (region, requests, _)) in per_region.iter().enumerate() {
            let Some(c) = clients.get(region) else { continue };
            // A call has one time range, so requests are batched by window; one with nothing
            // new to ask is not sent.
            let mut asked: Vec<SeriesRequest> = requests.iter().filter(|r| r.window.0 < r.window.1).cloned().collect();
            asked.sort_by_key(|r| (r.period_seconds, r.window));
            scan.series_requested += asked.len() as u64;
            scan.datapoints_requested += asked.iter().map(SeriesRequest::max_points).sum::<u64>();
            for range in metrics::batches_of(&asked) {
                jobs.push((index, c, asked[range].to_vec()));
            }
        }
        let batches = jobs.len() as u64;
        scan.batches = batches;
        step(
            progress,
            "cloudwatch",
            format!(
                "fetching {} series in {batches} GetMetricData batches{}",
                scan.series_requested,
                if scan.incremental { " (incremental)" } else { "" }
            ),
            Some(0),
            Some(batches),
        );
        let mut done = 0u64;
        let fetches: Vec<_> = jobs
            .iter()
            .map(|(index, c, reqs)| async move { (*index, reqs, metrics::fetch_batch(&c.cloudwatch, reqs).await) })
            .collect();
        let mut answers = stream::iter(fetches).buffer_unordered(self.config.metric_concurrency.max(1));
        let mut by_region: Vec<Vec<MetricSeries>> = vec![Vec::new(); per_region.len()];
        while let Some((index, reqs, r)) = answers.next().await {
            done += 1;
            // A batch that failed leaves its resources without series: they are partial.
            let batch_ids = || {
                let ids: std::collections::BTreeSet<&str> = reqs.iter().map(|r| r.resource_id.as_str()).collect();
                ids.into_iter().map(str::to_owned).collect()
            };
            if let Some(s) = total.take_for(r, batch_ids)? {
                scan.datapoints_returned += s.iter().map(|s| s.timestamps.len() as u64).sum::<u64>();
                by_region[index].extend(s);
            }
            step(
                progress,
                "cloudwatch",
                format!("batch {done}/{batches}"),
                Some(done),
                Some(batches),
            );
        }
        drop(answers);
        let mut series = Vec::new();
        for ((region, requests, full), answered) in per_region.iter().zip(by_region) {
            series.extend(held.merge(region, requests, full, answered));
        }
        for b in &mut total.inventory.buckets {
            b.size_bytes = series
                .iter()
                .find(|s| s.metric_name == "BucketSizeBytes" && s.resource_id == b.name)
                .and_then(crate::world::MetricSeries::last);
        }
        total.inventory.metrics = series;
        Ok(scan)
    }
}

/// One Region's series requests, narrowed, and their full windows.
type RegionRequests = (String, Vec<SeriesRequest>, Vec<(i64, i64)>);

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
    for n in &mut inv.network_acls {
        n.arn = arn(&n.region, "network-acl", &n.id);
    }
    for s in &mut inv.region_settings {
        account.clone_into(&mut s.account_id);
    }
    for s in &mut inv.snapshots {
        // Snapshot ARNs carry no account: `arn:aws:ec2:<region>::snapshot/<id>`.
        s.arn = format!(
            "arn:{}:ec2:{}::snapshot/{}",
            convert::partition(&s.region),
            s.region,
            s.id
        );
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

    /// Captures the world state and writes `world_state_N.json` and `discovery_report.md` when
    /// the context has an output folder (see [`publish_capture`]).
    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let until = self.config.until.unwrap_or_else(|| ctx.clock.now());
        let previous = ctx
            .artefacts
            .get_shared::<WorldState>()
            .filter(|_| self.config.incremental)
            .or_else(|| self.previous.clone());
        let out = self
            .discover_until(&ctx.aws, &ctx.catalog, until, previous.as_deref(), &*ctx.progress)
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
    (lookback_hours, metrics_until): (u32, i64),
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
            metrics_until: DateTime::from_timestamp(metrics_until, 0),
            completeness,
        },
        inventory,
        assessment,
    }
}

/// Writes the capture's findings in each chosen security format: `findings_N.sarif`,
/// `findings_N.ocsf.json`, `findings_N.asff.json`.
fn write_findings(ctx: &mut CycleContext, world: &WorldState) -> Result<()> {
    use crate::assessment::{asff, ocsf, sarif};
    let n = ctx.iteration();
    let sarif_name = format!("findings_{n}.sarif");
    if ctx.output.wants(&sarif_name) {
        ctx.output
            .write(&sarif_name, format!("{:#}", sarif::sarif(world)).as_bytes())?;
    }
    let ocsf_name = format!("findings_{n}.ocsf.json");
    if ctx.output.wants(&ocsf_name) {
        ctx.output
            .write(&ocsf_name, format!("{:#}", ocsf::ocsf(world)).as_bytes())?;
    }
    let asff_name = format!("findings_{n}.asff.json");
    if ctx.output.wants(&asff_name) {
        if let Some(findings) = asff::asff(world) {
            ctx.output.write(&asff_name, format!("{findings:#}").as_bytes())?;
        } else {
            tracing::warn!(
                file = %asff_name,
                "not written: ASFF findings carry the account id, which this capture did not learn"
            );
        }
    }
    Ok(())
}

/// What every θ1 phase does with its capture in a cycle: writes `world_state_N.json` and
/// `discovery_report.md` when the context has an output folder and stores the world state (and
/// the [`MetricScan`], when the implementation reports one). A
/// partial capture does not fail the phase: the loop goes on with what was read whole (θ2–θ4
/// leave partial resources alone, see [`crate::world::Coverage`]) and the cycle's report says
/// the run was partial.
///
/// # Errors
/// [`Error::Io`] when a file cannot be written.
pub fn publish_capture(ctx: &mut CycleContext, mut out: DiscoveryOutput) -> Result<PhaseOutcome> {
    out.world.scope.captured_at = ctx.clock.now();
    if let Completeness::Partial { gaps } = &out.world.scope.completeness {
        tracing::warn!(
            gaps = gaps.len(),
            "partial capture: partial resources are left alone this iteration"
        );
    }
    let name = format!("world_state_{}.json", ctx.iteration());
    ctx.output.write(&name, out.world.to_json().as_bytes())?;
    write_findings(ctx, &out.world)?;
    ctx.output.write(
        "discovery_report.md",
        report::render(&out.world, &out.calls_per_service, out.metrics.as_ref()).as_bytes(),
    )?;
    ctx.artefacts.put(out.world);
    // This iteration's scan only: one left from an earlier iteration would be billed twice.
    match out.metrics {
        Some(scan) => ctx.artefacts.put(scan),
        None => drop(ctx.artefacts.take::<MetricScan>()),
    }
    Ok(PhaseOutcome::nothing())
}
