//! θ2 Planning: the changes that follow from configuration alone.
//!
//! - Security: a remediation for every failing check that has a safe automatic fix (close a
//!   world-open ingress rule, block public access, default encryption, versioning, IMDSv2, RDS
//!   public access, backups, deletion protection). Failing checks without one are listed for a
//!   human.
//! - Cost: release unassociated Elastic IPs, delete unattached volumes (snapshot first),
//!   terminate instances stopped over 30 days, migrate gp2 volumes to gp3.
//!
//! Every rule is a pure function of the world state. Savings are the catalog price of the
//! resource before minus after the change, so a plan's savings add up to the projected total.

pub mod manual;
pub mod report;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::assessment::{FindingStatus, ResourceKind};
use crate::catalog::PriceCatalog;
use crate::cycle::{CycleContext, Phase, PhaseId, PhaseOutcome};
use crate::plan::execution::hold_partial;
use crate::plan::{Action, Change, InventoryIndex, Plan, ResourceRef, Risk};
use crate::world::{Inventory, VersioningStatus, WorldState};
use crate::Result;

/// Settings of θ2.
#[derive(Debug, Clone)]
pub struct PlanningConfig {
    /// An instance stopped longer than this is terminated (after snapshots).
    pub stopped_instance_age: Duration,
    /// Backup retention set on DB instances without backups, days.
    pub backup_retention_days: i64,
}

impl Default for PlanningConfig {
    fn default() -> Self {
        Self {
            stopped_instance_age: Duration::days(30),
            backup_retention_days: 7,
        }
    }
}

fn resource(kind: ResourceKind, id: &str, region: &str) -> ResourceRef {
    ResourceRef {
        kind,
        id: id.to_owned(),
        region: region.to_owned(),
    }
}

/// θ2 over a world state. Resources whose capture is partial get no change (see
/// [`crate::world::Coverage`]).
#[must_use]
pub fn plan(world: &WorldState, catalog: &PriceCatalog, config: &PlanningConfig) -> Plan {
    let inv = &world.inventory;
    let index = inv.index();
    let coverage = world.coverage();
    let (cost, mut held) = hold_partial(
        cost_changes(inv, &index, catalog, config, world.scope.captured_at),
        &coverage,
    );
    let (security, held_security) = hold_partial(security_changes(inv, &index, config), &coverage);
    held.extend(held_security);
    let mut plan = Plan {
        cost,
        security,
        manual: Vec::new(),
        held,
    };
    // A held change still has a fix: its finding waits for a whole capture, not for a human.
    let fixed: std::collections::HashSet<(&str, &str), foldhash::fast::RandomState> = plan
        .changes()
        .chain(plan.held.iter().map(|h| &h.change))
        .flat_map(|c| c.removes_findings.iter().map(|f| (f.as_str(), c.resource.id.as_str())))
        .collect();
    plan.manual = world
        .assessment
        .findings
        .iter()
        .filter(|f| f.status == FindingStatus::Fail && f.is_security())
        .filter(|f| !fixed.contains(&(f.check_id.as_str(), f.resource_id.as_str())))
        .map(|f| (f.check_id.clone(), f.resource_id.clone()))
        .collect();
    plan
}

#[allow(clippy::too_many_lines)] // one rule per resource kind, read top to bottom
fn security_changes(inv: &Inventory, index: &InventoryIndex<'_>, config: &PlanningConfig) -> Vec<Change> {
    // Candidates first; each is then judged on its resource alone, across cores, and kept only
    // if it removes a finding.
    let mut candidates = Vec::new();
    let mut push = |change: Change| candidates.push(change);
    for g in &inv.security_groups {
        for rule in g.ingress.iter().filter(|r| r.is_world_open()) {
            let ports = match (rule.from_port, rule.to_port) {
                (Some(a), Some(b)) if a == b => format!("port {a}"),
                (Some(a), Some(b)) => format!("ports {a}-{b}"),
                _ => "all ports".into(),
            };
            push(Change::new(
                Action::RevokeIngress,
                resource(ResourceKind::SecurityGroup, &g.id, &g.region),
                "ingress",
                serde_json::to_value(rule).unwrap_or(Value::Null),
                Value::Null,
                "prowler_ec2_securitygroup_ingress",
                format!("{} {ports} is open to the internet", rule.protocol),
                Risk::Medium,
            ));
        }
    }
    for g in inv
        .security_groups
        .iter()
        .filter(|g| g.name == "default" && !(g.ingress.is_empty() && g.egress.is_empty()))
    {
        let rules = json!({"ingress": g.ingress, "egress": g.egress});
        push(Change::new(
            Action::RestrictDefaultGroup,
            resource(ResourceKind::SecurityGroup, &g.id, &g.region),
            "rules",
            rules,
            json!({"ingress": [], "egress": []}),
            "prowler_ec2_securitygroup_default_restrict_traffic",
            format!(
                "the default group is in use with {} inbound and {} outbound rule(s); members that talk to each other need a group of their own",
                g.ingress.len(),
                g.egress.len()
            ),
            Risk::High,
        ));
    }
    for b in &inv.buckets {
        let r = || resource(ResourceKind::S3Bucket, &b.name, &b.region);
        let pab = b.public_access_block.as_ref();
        if !pab.is_some_and(crate::world::PublicAccessBlock::is_full) {
            push(Change::new(
                Action::BlockPublicAccess,
                r(),
                "public_access_block",
                serde_json::to_value(pab).unwrap_or(Value::Null),
                json!({"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": true}),
                "prowler_s3_bucket_level_public_access_block",
                "the bucket-level public access block is missing or partial".into(),
                Risk::Medium,
            ));
        }
        if b.default_encryption.is_none() {
            push(Change::new(
                Action::EnableDefaultEncryption,
                r(),
                "default_encryption",
                Value::Null,
                json!("AES256"),
                "prowler_s3_bucket_default_encryption",
                "no default encryption".into(),
                Risk::Low,
            ));
        }
        if b.versioning != VersioningStatus::Enabled {
            push(Change::new(
                Action::EnableVersioning,
                r(),
                "versioning",
                serde_json::to_value(b.versioning).unwrap_or(Value::Null),
                json!("enabled"),
                "prowler_s3_bucket_object_versioning",
                "versioning is off".into(),
                Risk::Low,
            ));
        }
    }
    for b in inv.buckets.iter().filter(|b| !b.logging_enabled && !is_log_bucket(b)) {
        // The log bucket's name holds the account, which the Region's settings name.
        let Some(account) = inv
            .region_settings
            .iter()
            .find(|s| s.region == b.region)
            .map(|s| &s.account_id)
        else {
            continue;
        };
        let target = crate::plan::log_bucket_name(account, &b.region);
        push(Change::new(
            Action::EnableAccessLogging,
            resource(ResourceKind::S3Bucket, &b.name, &b.region),
            "logging_target",
            Value::Null,
            json!(target),
            "prowler_s3_bucket_server_access_logging_enabled",
            format!(
                "server access logging is off; logs go to {target}, the engine's log bucket in {}",
                b.region
            ),
            Risk::Low,
        ));
    }
    let with_elastic_ip: std::collections::HashSet<&str> =
        inv.addresses.iter().filter_map(|a| a.instance_id.as_deref()).collect();
    let known: std::collections::HashSet<&str> = inv.security_groups.iter().map(|g| g.id.as_str()).collect();
    let admits_public: std::collections::HashSet<&str> = inv
        .security_groups
        .iter()
        .filter(|g| {
            g.ingress
                .iter()
                .any(crate::world::SecurityGroupRule::admits_public_sources)
        })
        .map(|g| g.id.as_str())
        .collect();
    for i in inv
        .instances
        .iter()
        .filter(|i| matches!(i.state.as_str(), "running" | "stopped"))
    {
        let Some(ip) = &i.public_ip else { continue };
        // An Elastic IP is a deliberate address; a group open to public sources needs one; and
        // a group that was not captured proves nothing.
        let unknown_group =
            i.security_group_ids.is_empty() || i.security_group_ids.iter().any(|g| !known.contains(g.as_str()));
        if with_elastic_ip.contains(i.id.as_str())
            || unknown_group
            || i.security_group_ids.iter().any(|g| admits_public.contains(g.as_str()))
        {
            continue;
        }
        push(Change::new(
            Action::RemovePublicIp,
            resource(ResourceKind::Ec2Instance, &i.id, &i.region),
            "public_ip",
            json!(ip),
            Value::Null,
            "prowler_ec2_instance_public_ip",
            format!("public IP {ip} serves nothing inbound: no security group of the instance admits a public source"),
            Risk::High,
        ));
    }
    for i in inv.instances.iter().filter(|i| !i.imds_v2_required) {
        push(Change::new(
            Action::RequireImdsV2,
            resource(ResourceKind::Ec2Instance, &i.id, &i.region),
            "imds_v2_required",
            json!(false),
            json!(true),
            "prowler_ec2_instance_imdsv2_enabled",
            "IMDSv1 is allowed (HttpTokens=optional)".into(),
            Risk::Medium,
        ));
    }
    for d in &inv.db_instances {
        let r = || resource(ResourceKind::RdsInstance, &d.id, &d.region);
        if d.publicly_accessible {
            push(Change::new(
                Action::DisableRdsPublicAccess,
                r(),
                "publicly_accessible",
                json!(true),
                json!(false),
                "prowler_rds_instance_no_public_access",
                "the DB instance is publicly accessible".into(),
                Risk::Medium,
            ));
        }
        if d.backup_retention_days == 0 {
            push(Change::new(
                Action::EnableRdsBackups,
                r(),
                "backup_retention_days",
                json!(0),
                json!(config.backup_retention_days),
                "prowler_rds_instance_backup_enabled",
                "automated backups are off (retention 0 days)".into(),
                Risk::Low,
            ));
        }
        if !d.deletion_protection {
            push(Change::new(
                Action::EnableRdsDeletionProtection,
                r(),
                "deletion_protection",
                json!(false),
                json!(true),
                "prowler_rds_instance_deletion_protection",
                "deletion protection is off".into(),
                Risk::Low,
            ));
        }
    }
    // A cluster member's storage is the cluster's; a replica follows its source.
    let standalone = |d: &&crate::world::RdsInstance| d.cluster_id.is_none() && d.replica_source.is_none();
    for d in inv
        .db_instances
        .iter()
        .filter(standalone)
        .filter(|d| !d.storage_encrypted)
    {
        push(Change::new(
            Action::EncryptDbStorage,
            resource(ResourceKind::RdsInstance, &d.id, &d.region),
            "storage_encrypted",
            json!(false),
            json!(true),
            "prowler_rds_instance_storage_encrypted",
            format!(
                "{} GiB of {} storage is not encrypted: an encrypted snapshot copy is restored and takes over the endpoint",
                d.allocated_storage_gib, d.engine
            ),
            Risk::High,
        ));
    }
    for d in inv.db_instances.iter().filter(standalone).filter(|d| !d.multi_az) {
        push(Change::new(
            Action::EnableRdsMultiAz,
            resource(ResourceKind::RdsInstance, &d.id, &d.region),
            "multi_az",
            json!(false),
            json!(true),
            "prowler_rds_instance_multi_az",
            "a single-AZ DB instance is down while its zone is".into(),
            Risk::Medium,
        ));
    }
    for v in inv.volumes.iter().filter(|v| !v.encrypted && v.state == "in-use") {
        let [instance] = v.attached_to.as_slice() else { continue };
        let at = |encrypted: bool| json!({"encrypted": encrypted, "instance_id": instance});
        push(Change::new(
            Action::EncryptVolume,
            resource(ResourceKind::EbsVolume, &v.id, &v.region),
            "encryption",
            at(false),
            at(true),
            "prowler_ec2_ebs_volume_encryption",
            format!(
                "{} GiB {} volume of {instance} is not encrypted: an encrypted copy takes its place while {instance} is stopped",
                v.size_gib, v.volume_type
            ),
            Risk::High,
        ));
    }
    for s in &inv.region_settings {
        let account = || resource(ResourceKind::Account, &s.account_id, &s.region);
        if s.ebs_encryption_by_default == Some(false) {
            push(Change::new(
                Action::EnableEbsDefaultEncryption,
                account(),
                "ebs_encryption_by_default",
                json!(false),
                json!(true),
                "prowler_ec2_ebs_default_encryption",
                format!("new EBS volumes in {} are not encrypted by default", s.region),
                Risk::Low,
            ));
        }
        if let Some(state) = s
            .snapshot_block_public_access
            .as_deref()
            .filter(|s| *s != "block-all-sharing")
        {
            push(Change::new(
                Action::BlockSnapshotPublicAccess,
                account(),
                "snapshot_block_public_access",
                json!(state),
                json!("block-all-sharing"),
                "prowler_ec2_ebs_snapshot_account_block_public_access",
                format!("snapshots in {} can be shared publicly ({state})", s.region),
                Risk::Medium,
            ));
        }
        if let Some(tokens) = s.instance_metadata_http_tokens.as_deref().filter(|t| *t != "required") {
            push(Change::new(
                Action::RequireImdsV2ByDefault,
                account(),
                "instance_metadata_http_tokens",
                json!(tokens),
                json!("required"),
                "prowler_ec2_instance_account_imdsv2_enabled",
                format!(
                    "instances launched in {} do not require IMDSv2 by default ({tokens})",
                    s.region
                ),
                Risk::Medium,
            ));
        }
    }
    candidates
        .into_par_iter()
        .map(|change| change.with_findings_removed(index))
        .filter(|change| !change.removes_findings.is_empty())
        .collect()
}

/// The engine's own access-log bucket: it does not log into itself.
fn is_log_bucket(b: &crate::world::S3Bucket) -> bool {
    let (key, value) = crate::plan::LOG_BUCKET_ROLE;
    b.tags.get(key).is_some_and(|v| v == value)
}

fn cost_changes(
    inv: &Inventory,
    index: &InventoryIndex<'_>,
    catalog: &PriceCatalog,
    config: &PlanningConfig,
    now: DateTime<Utc>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |change: Change| {
        let usd = change.saving_on(index, catalog);
        out.push(change.with_saving(usd).with_findings_removed(index));
    };
    for a in inv.addresses.iter().filter(|a| a.association_id.is_none()) {
        push(Change::new(
            Action::ReleaseAddress,
            resource(ResourceKind::ElasticIp, &a.allocation_id, &a.region),
            "allocation",
            json!(a.public_ip),
            Value::Null,
            "trusted_advisor_unassociated_elastic_ip",
            format!("Elastic IP {} is not associated with an instance", a.public_ip),
            Risk::Medium,
        ));
    }
    let mut deleted = std::collections::BTreeSet::new();
    for v in inv
        .volumes
        .iter()
        .filter(|v| v.attached_to.is_empty() && v.state == "available")
    {
        deleted.insert(v.id.as_str());
        // The state is part of the precondition: a volume attached since the capture (an
        // interrupted swap put back, say) is drift, never deleted.
        let mut current = json!({"volume_type": v.volume_type, "size_gib": v.size_gib, "state": v.state});
        let rationale = match v.tags.get(crate::plan::REPLACED_BY_TAG) {
            Some(copy) => {
                current["replaced_by"] = json!(copy);
                format!(
                    "{} GiB {} volume replaced by its encrypted copy {copy}, which holds its data (no snapshot)",
                    v.size_gib, v.volume_type
                )
            }
            None => format!(
                "{} GiB {} volume attached to nothing (snapshot first)",
                v.size_gib, v.volume_type
            ),
        };
        push(Change::new(
            Action::DeleteVolume,
            resource(ResourceKind::EbsVolume, &v.id, &v.region),
            "volume",
            current,
            Value::Null,
            "trusted_advisor_underutilized_ebs_volume",
            rationale,
            Risk::High,
        ));
    }
    for i in inv.instances.iter().filter(|i| i.state == "stopped") {
        let Some(since) = i.stopped_since else { continue };
        if now - since <= config.stopped_instance_age {
            continue;
        }
        for v in inv.volumes.iter().filter(|v| v.attached_to.contains(&i.id)) {
            deleted.insert(v.id.as_str());
        }
        push(Change::new(
            Action::TerminateInstance,
            resource(ResourceKind::Ec2Instance, &i.id, &i.region),
            "state",
            json!("stopped"),
            json!("terminated"),
            "trusted_advisor_stopped_instance",
            format!(
                "stopped since {} ({} days; snapshots of its volumes first)",
                since.format("%Y-%m-%d"),
                (now - since).num_days()
            ),
            Risk::High,
        ));
    }
    for v in inv
        .volumes
        .iter()
        .filter(|v| v.volume_type == "gp2" && !deleted.contains(v.id.as_str()))
    {
        push(Change::new(
            Action::MigrateVolumeToGp3,
            resource(ResourceKind::EbsVolume, &v.id, &v.region),
            "volume_type",
            json!("gp2"),
            json!("gp3"),
            "aws_gp2_to_gp3",
            format!(
                "gp3 is 20% cheaper per GB-month than gp2 for {} GiB, at ≥ the same baseline IOPS",
                v.size_gib
            ),
            Risk::Low,
        ));
    }
    out
}

/// θ2 as a phase of the cycle: plans from the latest world state, writes the cost and security
/// plan reports, and hands the plan to θ3.
#[derive(Debug, Clone, Default)]
pub struct Planning {
    config: PlanningConfig,
}

impl Planning {
    /// Planning with `config`.
    #[must_use]
    pub fn new(config: PlanningConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Phase for Planning {
    fn id(&self) -> PhaseId {
        PhaseId::Planning
    }

    fn name(&self) -> String {
        "planning (rust)".into()
    }

    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let world = ctx.artefacts.require::<WorldState>("planning")?;
        let plan = plan(world, &ctx.catalog, &self.config);
        write_plan(ctx, &plan, plan.changes())?;
        let applicable = plan.changes().count();
        ctx.artefacts.put(plan);
        Ok(PhaseOutcome::planned(applicable))
    }
}

/// Writes `cost_optimization_plan.md`, `security_improvement_plan.md` and the `IaC` of
/// `target` (the changes whose end state it renders) into the context's output folder.
///
/// # Errors
/// [`crate::Error::Io`] naming the file; [`crate::artefact::MissingInput`] without a world state.
pub fn write_plan<'a>(
    ctx: &mut CycleContext,
    plan: &Plan,
    target: impl IntoIterator<Item = &'a crate::plan::Change>,
) -> Result<()> {
    if ctx.output.dir().is_none() {
        return Ok(());
    }
    let world = ctx.artefacts.require::<WorldState>("planning")?;
    let context = report::CostContext {
        purchases: ctx.artefacts.get::<crate::purchase::PurchasePlan>(),
        world0_cost: ctx
            .artefacts
            .first::<WorldState>()
            .map(|w0| w0.assessment.monthly_total_usd),
    };
    let cost = report::render_cost(world, plan, &ctx.catalog, context);
    let security = report::render_security(world, plan, &ctx.catalog);
    let iac = crate::iac::render(world, target);
    ctx.output.write("cost_optimization_plan.md", cost.as_bytes())?;
    ctx.output.write("security_improvement_plan.md", security.as_bytes())?;
    for (path, text) in iac {
        ctx.output.write_always(&path, text.as_bytes())?;
    }
    Ok(())
}
