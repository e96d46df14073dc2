//! The world state: what the estate is (the [`Inventory`]) and what it costs and risks (the
//! [`Assessment`]).
//!
//! The document is versioned by [`SCHEMA_VERSION`] and described by the JSON Schema in
//! `schema/world_state.schema.json`. A JSON round trip is lossless.

mod assessment;
mod network;
mod resources;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use assessment::*;
pub use network::*;
pub use resources::*;
pub use validate::Violation;

/// The ARN partition of a Region: `aws-cn`, `aws-us-gov` or `aws`.
#[must_use]
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One capture of an AWS estate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorldState {
    /// Always [`SCHEMA_VERSION`] for documents this build writes.
    pub schema_version: u32,
    /// Which account and Regions were captured, when, and whether completely.
    pub scope: Scope,
    /// Resources and their metric series.
    pub inventory: Inventory,
    /// Cost, findings, score and utilisation, computed from the inventory.
    pub assessment: Assessment,
}

impl crate::artefact::Artefact for WorldState {
    const WHAT: &'static str = "a world state (θ1)";
}

/// What a capture covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The AWS account id, when the capture learned it.
    pub account_id: Option<String>,
    /// The Regions scanned.
    pub regions: Vec<String>,
    /// When the capture finished.
    pub captured_at: DateTime<Utc>,
    /// The metric lookback, in hours.
    pub lookback_hours: u32,
    /// The end of the metric window (exclusive): the series hold what CloudWatch had before it,
    /// at the time of the capture. A later capture builds on them from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_until: Option<DateTime<Utc>>,
    /// Whether every scan succeeded.
    pub completeness: Completeness,
}

/// Whether a capture is whole. A partial capture lists what is missing, so nothing is lost
/// silently; [`Coverage`] says which resources and Regions that leaves unfit for a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum Completeness {
    /// Every scan succeeded.
    Complete,
    /// Some reads failed: what a gap names is missing from the inventory, or present without all
    /// of its data.
    Partial {
        /// The scans that failed.
        gaps: Vec<ScanGap>,
    },
}

impl Completeness {
    /// True when the capture is whole.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        matches!(self, Self::Complete)
    }
}

/// A read that failed: which service, operation and Region, which resources it leaves partial,
/// and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanGap {
    /// The Region scanned (`global` for S3's bucket list).
    pub region: String,
    /// The AWS service, for example `ec2`.
    pub service: String,
    /// The API operation, for example `DescribeInstances`.
    pub operation: String,
    /// The resources the failed read was about (a bucket's name, the instances of a metric
    /// batch). Empty when it was a listing of the whole Region: then every resource of the
    /// Region counts as partial, since what is missing may be what another resource refers to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// The error, as text.
    pub error: String,
}

/// Which resources a capture did not read whole, so that θ2–θ4 leave them alone: a resource is
/// partial when a gap names it, or when a gap without names covers its Region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Region → the first gap that covers it whole.
    regions: BTreeMap<String, String>,
    /// Resource id → the first gap that names it.
    resources: BTreeMap<String, String>,
}

impl Coverage {
    /// What `completeness` leaves partial.
    #[must_use]
    pub fn of(completeness: &Completeness) -> Self {
        let mut coverage = Self::default();
        if let Completeness::Partial { gaps } = completeness {
            for gap in gaps {
                let why = format!("{}.{} failed: {}", gap.service, gap.operation, gap.error);
                if gap.resources.is_empty() {
                    coverage.regions.entry(gap.region.clone()).or_insert(why);
                } else {
                    for id in &gap.resources {
                        coverage.resources.entry(id.clone()).or_insert_with(|| why.clone());
                    }
                }
            }
        }
        coverage
    }

    /// True when nothing is partial.
    #[must_use]
    pub fn is_whole(&self) -> bool {
        self.regions.is_empty() && self.resources.is_empty()
    }

    /// Why resource `id` of `region` was not read whole, or `None` when it was.
    #[must_use]
    pub fn gap(&self, region: &str, id: &str) -> Option<&str> {
        self.resources
            .get(id)
            .or_else(|| self.regions.get(region))
            .map(String::as_str)
    }
}

/// Everything discovered: resources and metric series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// EC2 instances.
    pub instances: Vec<Ec2Instance>,
    /// EBS volumes.
    pub volumes: Vec<EbsVolume>,
    /// Elastic IP addresses.
    pub addresses: Vec<ElasticIp>,
    /// Security groups with their rules.
    pub security_groups: Vec<SecurityGroup>,
    /// S3 buckets with their access settings.
    pub buckets: Vec<S3Bucket>,
    /// RDS DB instances.
    pub db_instances: Vec<RdsInstance>,
    /// CloudWatch series over the lookback.
    pub metrics: Vec<MetricSeries>,
    /// Network interfaces: which security groups are in use, and by what.
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
    /// Network ACLs.
    #[serde(default)]
    pub network_acls: Vec<NetworkAcl>,
    /// Subnets, and whether each is public.
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    /// EBS snapshots the account owns.
    #[serde(default)]
    pub snapshots: Vec<EbsSnapshot>,
    /// The account's settings, per scanned Region.
    #[serde(default)]
    pub region_settings: Vec<RegionSettings>,
    /// RDS DB clusters.
    #[serde(default)]
    pub db_clusters: Vec<RdsCluster>,
    /// RDS DB snapshots and DB cluster snapshots.
    #[serde(default)]
    pub db_snapshots: Vec<RdsSnapshot>,
}

impl Inventory {
    /// The inventory with each changed resource's series cut to the datapoints at or after its
    /// last change (`last_changes`: resource id → Unix seconds), as DESIGN §2's "measuring after
    /// a change" asks. Borrowed as it is when no series is affected.
    #[must_use]
    pub fn since_changes(&self, last_changes: &BTreeMap<String, i64>) -> std::borrow::Cow<'_, Self> {
        let affected = |s: &MetricSeries| last_changes.contains_key(&s.resource_id);
        if !self.metrics.iter().any(affected) {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut cut = self.clone();
        for series in &mut cut.metrics {
            if let Some(&since) = last_changes.get(&series.resource_id) {
                series.keep_since(since);
            }
        }
        std::borrow::Cow::Owned(cut)
    }

    /// The resources whose id (a bucket's name, an address's allocation id) is in `ids`,
    /// without metric series.
    #[must_use]
    pub fn restricted_to(&self, ids: &std::collections::BTreeSet<&str>) -> Self {
        fn keep<T: Clone>(items: &[T], id: impl Fn(&T) -> &str, ids: &std::collections::BTreeSet<&str>) -> Vec<T> {
            items.iter().filter(|r| ids.contains(id(r))).cloned().collect()
        }
        Self {
            instances: keep(&self.instances, |r| &r.id, ids),
            volumes: keep(&self.volumes, |r| &r.id, ids),
            addresses: keep(&self.addresses, |r| &r.allocation_id, ids),
            security_groups: keep(&self.security_groups, |r| &r.id, ids),
            buckets: keep(&self.buckets, |r| &r.name, ids),
            db_instances: keep(&self.db_instances, |r| &r.id, ids),
            metrics: Vec::new(),
            network_acls: keep(&self.network_acls, |r| &r.id, ids),
            snapshots: keep(&self.snapshots, |r| &r.id, ids),
            db_clusters: keep(&self.db_clusters, |r| &r.id, ids),
            db_snapshots: keep(&self.db_snapshots, |r| &r.id, ids),
            ..Self::default()
        }
    }

    /// The network interfaces that use each security group, by group id.
    #[must_use]
    pub fn interfaces_by_group(&self) -> HashMap<&str, Vec<&NetworkInterface>> {
        let mut by_group: HashMap<&str, Vec<&NetworkInterface>> = HashMap::new();
        for n in &self.network_interfaces {
            for g in &n.group_ids {
                by_group.entry(g.as_str()).or_default().push(n);
            }
        }
        by_group
    }

    /// Number of resources (metric series not counted).
    #[must_use]
    pub fn resource_count(&self) -> usize {
        self.instances.len()
            + self.volumes.len()
            + self.addresses.len()
            + self.security_groups.len()
            + self.buckets.len()
            + self.db_instances.len()
            + self.network_acls.len()
            + self.snapshots.len()
            + self.db_clusters.len()
            + self.db_snapshots.len()
    }

    /// Appends every list of `other`.
    pub fn extend_from(&mut self, other: Inventory) {
        self.instances.extend(other.instances);
        self.volumes.extend(other.volumes);
        self.addresses.extend(other.addresses);
        self.security_groups.extend(other.security_groups);
        self.buckets.extend(other.buckets);
        self.db_instances.extend(other.db_instances);
        self.metrics.extend(other.metrics);
        self.network_interfaces.extend(other.network_interfaces);
        self.network_acls.extend(other.network_acls);
        self.subnets.extend(other.subnets);
        self.snapshots.extend(other.snapshots);
        self.region_settings.extend(other.region_settings);
        self.db_clusters.extend(other.db_clusters);
        self.db_snapshots.extend(other.db_snapshots);
    }

    /// Puts every list in a canonical order, so that two captures of the same estate compare
    /// equal whatever order the scans finished in.
    pub fn sort(&mut self) {
        self.instances
            .sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.volumes.sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.addresses
            .sort_by(|a, b| (&a.region, &a.allocation_id).cmp(&(&b.region, &b.allocation_id)));
        self.security_groups
            .sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.buckets.sort_by(|a, b| a.name.cmp(&b.name));
        self.db_instances
            .sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.network_interfaces
            .sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.network_acls
            .sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.subnets.sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.snapshots
            .sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.region_settings.sort_by(|a, b| a.region.cmp(&b.region));
        self.db_clusters
            .sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
        self.db_snapshots
            .sort_by(|a, b| (&a.region, &a.of, &a.id).cmp(&(&b.region, &b.of, &b.id)));
        self.metrics.sort_by(|a, b| {
            (&a.region, &a.resource_id, &a.namespace, &a.metric_name).cmp(&(
                &b.region,
                &b.resource_id,
                &b.namespace,
                &b.metric_name,
            ))
        });
    }

    /// The series of one metric of one resource, if captured.
    #[must_use]
    pub fn series(&self, resource_id: &str, metric_name: &str) -> Option<&MetricSeries> {
        self.metrics
            .iter()
            .find(|m| m.resource_id == resource_id && m.metric_name == metric_name)
    }

    /// All series indexed by (resource id, metric name).
    #[must_use]
    pub fn series_index(&self) -> SeriesIndex<'_> {
        let mut index =
            SeriesIndex::with_capacity_and_hasher(self.metrics.len(), foldhash::fast::RandomState::default());
        index.extend(
            self.metrics
                .iter()
                .map(|m| ((m.resource_id.as_str(), m.metric_name.as_str()), m)),
        );
        index
    }
}

/// Metric series by (resource id, metric name); see [`Inventory::series_index`].
pub type SeriesIndex<'a> = HashMap<(&'a str, &'a str), &'a MetricSeries, foldhash::fast::RandomState>;

/// Why a world-state document could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldStateError {
    /// The file could not be read.
    #[error("cannot read world state {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write world state {path}: {source}")]
    Write {
        /// The file, or the folder that could not be created.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a world-state document.
    #[error("malformed world state{}: {message} at line {line}, column {column}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Malformed {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The parser's explanation.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// A document given as values rather than text (for example Python objects) does not fit
    /// the model.
    #[error("invalid world state at `{path}`: {message}")]
    Invalid {
        /// Where in the document, for example `inventory.instances[3].state`.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The document was written by another schema version.
    #[error("world state has schema_version {found}; this build reads version {expected}")]
    UnsupportedVersion {
        /// The version in the document.
        found: u64,
        /// The version this build supports.
        expected: u32,
    },
}

impl WorldState {
    /// Which resources this capture did not read whole.
    #[must_use]
    pub fn coverage(&self) -> Coverage {
        Coverage::of(&self.scope.completeness)
    }

    /// The world with each changed resource's series cut to its datapoints since the change;
    /// see [`Inventory::since_changes`].
    #[must_use]
    pub fn since_changes(&self, last_changes: &BTreeMap<String, i64>) -> std::borrow::Cow<'_, Self> {
        match self.inventory.since_changes(last_changes) {
            std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(self),
            std::borrow::Cow::Owned(inventory) => std::borrow::Cow::Owned(Self {
                schema_version: self.schema_version,
                scope: self.scope.clone(),
                inventory,
                assessment: self.assessment.clone(),
            }),
        }
    }

    /// Parses a world-state document, checking its version before its shape so that a document
    /// from another version gets a version error rather than a confusing field error.
    ///
    /// # Errors
    /// [`WorldStateError::Malformed`] or [`WorldStateError::UnsupportedVersion`].
    pub fn from_json(text: &str) -> Result<Self, WorldStateError> {
        Self::parse(text, None)
    }

    /// Reads a world-state file.
    ///
    /// # Errors
    /// [`WorldStateError`] naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WorldStateError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WorldStateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Self, WorldStateError> {
        /// Only the version; the rest of the document is skipped without being built.
        #[derive(Deserialize)]
        struct Version {
            schema_version: Option<serde_json::Value>,
        }
        let malformed = |e: &serde_json::Error| WorldStateError::Malformed {
            path: path.map(Path::to_path_buf),
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        };
        let version: Version = serde_json::from_str(text).map_err(|e| malformed(&e))?;
        match version.schema_version.as_ref().and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(WorldStateError::UnsupportedVersion {
                    found,
                    expected: SCHEMA_VERSION,
                })
            }
            None => {
                return Err(WorldStateError::Malformed {
                    path: path.map(Path::to_path_buf),
                    message: "missing or non-integer `schema_version`".into(),
                    line: 1,
                    column: 1,
                })
            }
        }
        // Parse the text again into the model, so that errors carry positions.
        let world: Self = serde_json::from_str(text).map_err(|e| malformed(&e))?;
        world.validate()?;
        Ok(world)
    }

    /// The JSON Schema of the document, as committed in `schema/world_state.schema.json`.
    #[must_use]
    pub fn json_schema() -> serde_json::Value {
        schemars::schema_for!(WorldState).as_value().clone()
    }

    /// The document as pretty JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| unreachable!("world state serialises: {e}"))
    }

    /// Writes the document atomically: to a temporary file, then renamed into place, so that a
    /// crash never leaves a half-written world state.
    ///
    /// # Errors
    /// [`WorldStateError::Write`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), WorldStateError> {
        crate::output::write_atomic_io(path.as_ref(), self.to_json().as_bytes())
            .map_err(|(path, source)| WorldStateError::Write { path, source })
    }
}
