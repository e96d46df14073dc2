//! RDS: DB instances, DB clusters and the account's DB and DB cluster snapshots, paginated by
//! marker.

use super::convert::tags;
use crate::aws::{AwsError, Layered};
use crate::owners::OwnerDirectory;
use crate::world::{RdsCluster, RdsInstance, RdsSnapshot};
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;

type Rds = Layered<aws_sdk_rds::Client>;

/// DB instances: all, or the one named `id`.
pub(crate) async fn db_instances(
    rds: &Rds,
    owners: &OwnerDirectory,
    id: Option<&str>,
) -> Result<Vec<RdsInstance>, AwsError> {
    let region = rds.layer.region();
    let mut out = Vec::new();
    let send = |marker| {
        rds.client
            .describe_db_instances()
            .max_records(100)
            .set_marker(marker)
            .set_db_instance_identifier(id.map(str::to_owned))
            .send()
    };
    let each = |page: DescribeDbInstancesOutput| {
        for d in page.db_instances() {
            let Some(id) = d.db_instance_identifier() else { continue };
            let subnet_group = d.db_subnet_group();
            out.push(RdsInstance {
                id: id.to_owned(),
                arn: d.db_instance_arn().unwrap_or_default().to_owned(),
                region: region.to_owned(),
                class: d.db_instance_class().unwrap_or("unknown").to_owned(),
                engine: d.engine().unwrap_or("unknown").to_owned(),
                engine_version: d.engine_version().map(str::to_owned),
                status: d.db_instance_status().unwrap_or("unknown").to_owned(),
                allocated_storage_gib: d.allocated_storage().and_then(|s| u32::try_from(s).ok()).unwrap_or(0),
                storage_type: d.storage_type().map(str::to_owned),
                publicly_accessible: d.publicly_accessible().unwrap_or(false),
                storage_encrypted: d.storage_encrypted().unwrap_or(false),
                backup_retention_days: d.backup_retention_period().unwrap_or(0),
                deletion_protection: d.deletion_protection().unwrap_or(false),
                multi_az: d.multi_az().unwrap_or(false),
                master_username: d.master_username().map(str::to_owned),
                tags: tags(d.tag_list().iter().map(|t| (t.key(), t.value()))),
                owner_agent: owners.persona("rds").to_owned(),
                cluster_id: d.db_cluster_identifier().map(str::to_owned),
                replica_source: d.read_replica_source_db_instance_identifier().map(str::to_owned),
                auto_minor_version_upgrade: d.auto_minor_version_upgrade().unwrap_or(false),
                iam_auth: d.iam_database_authentication_enabled().unwrap_or(false),
                cloudwatch_logs_exports: d.enabled_cloudwatch_logs_exports().to_vec(),
                enhanced_monitoring_arn: d.enhanced_monitoring_resource_arn().map(str::to_owned),
                copy_tags_to_snapshot: d.copy_tags_to_snapshot().unwrap_or(false),
                port: d.endpoint().and_then(aws_sdk_rds::types::Endpoint::port),
                vpc_id: subnet_group.and_then(|g| g.vpc_id()).map(str::to_owned),
                subnet_ids: subnet_group
                    .map(|g| {
                        g.subnets()
                            .iter()
                            .filter(|s| s.subnet_status() == Some("Active"))
                            .filter_map(|s| s.subnet_identifier().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                security_group_ids: d
                    .vpc_security_groups()
                    .iter()
                    .filter(|g| g.status() == Some("active"))
                    .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                    .collect(),
                engine_lifecycle_support: d.engine_lifecycle_support().map(str::to_owned),
            });
        }
    };
    rds.layer
        .pages("DescribeDBInstances", send, DescribeDbInstancesOutput::marker, each)
        .await?;
    Ok(out)
}

/// Every DB cluster of the Region.
pub(crate) async fn db_clusters(rds: &Rds) -> Result<Vec<RdsCluster>, AwsError> {
    let region = rds.layer.region();
    let mut out = Vec::new();
    let send = |marker| {
        rds.client
            .describe_db_clusters()
            .max_records(100)
            .set_marker(marker)
            .send()
    };
    let each = |page: DescribeDbClustersOutput| {
        for c in page.db_clusters() {
            let Some(id) = c.db_cluster_identifier() else { continue };
            out.push(RdsCluster {
                id: id.to_owned(),
                arn: c.db_cluster_arn().unwrap_or_default().to_owned(),
                region: region.to_owned(),
                engine: c.engine().unwrap_or("unknown").to_owned(),
                status: c.status().unwrap_or("unknown").to_owned(),
                storage_encrypted: c.storage_encrypted().unwrap_or(false),
                deletion_protection: c.deletion_protection().unwrap_or(false),
                multi_az: c.multi_az().unwrap_or(false),
                master_username: c.master_username().map(str::to_owned),
                auto_minor_version_upgrade: c.auto_minor_version_upgrade().unwrap_or(false),
                iam_auth: c.iam_database_authentication_enabled().unwrap_or(false),
                cloudwatch_logs_exports: c.enabled_cloudwatch_logs_exports().to_vec(),
                backtrack_window: c.backtrack_window().unwrap_or(0),
                copy_tags_to_snapshot: c.copy_tags_to_snapshot().unwrap_or(false),
                port: c.port(),
                backup_retention_days: c.backup_retention_period().unwrap_or(0),
                tags: tags(c.tag_list().iter().map(|t| (t.key(), t.value()))),
            });
        }
    };
    rds.layer
        .pages("DescribeDBClusters", send, DescribeDbClustersOutput::marker, each)
        .await?;
    Ok(out)
}

/// The account's DB snapshots and DB cluster snapshots, each with whether everyone may restore
/// it (one attribute read per snapshot: RDS has no list form of it).
pub(crate) async fn db_snapshots(rds: &Rds) -> Result<Vec<RdsSnapshot>, AwsError> {
    let region = rds.layer.region();
    let mut out = Vec::new();
    let send = |marker| {
        rds.client
            .describe_db_snapshots()
            .max_records(100)
            .set_marker(marker)
            .send()
    };
    let each = |page: DescribeDbSnapshotsOutput| {
        for s in page.db_snapshots() {
            let Some(id) = s.db_snapshot_identifier() else { continue };
            out.push(RdsSnapshot {
                id: id.to_owned(),
                arn: s.db_snapshot_arn().unwrap_or_default().to_owned(),
                region: region.to_owned(),
                of: "db".to_owned(),
                source_id: s.db_instance_identifier().map(str::to_owned),
                snapshot_type: s.snapshot_type().map(str::to_owned),
                encrypted: s.encrypted().unwrap_or(false),
                public: false,
            });
        }
    };
    rds.layer
        .pages("DescribeDBSnapshots", send, DescribeDbSnapshotsOutput::marker, each)
        .await?;
    let send = |marker| {
        rds.client
            .describe_db_cluster_snapshots()
            .max_records(100)
            .set_marker(marker)
            .send()
    };
    let each = |page: DescribeDbClusterSnapshotsOutput| {
        for s in page.db_cluster_snapshots() {
            let Some(id) = s.db_cluster_snapshot_identifier() else {
                continue;
            };
            out.push(RdsSnapshot {
                id: id.to_owned(),
                arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_owned(),
                region: region.to_owned(),
                of: "cluster".to_owned(),
                source_id: s.db_cluster_identifier().map(str::to_owned),
                snapshot_type: s.snapshot_type().map(str::to_owned),
                encrypted: s.storage_encrypted().unwrap_or(false),
                public: false,
            });
        }
    };
    rds.layer
        .pages(
            "DescribeDBClusterSnapshots",
            send,
            DescribeDbClusterSnapshotsOutput::marker,
            each,
        )
        .await?;
    for snapshot in &mut out {
        let id = snapshot.id.as_str();
        snapshot.public = if snapshot.of == "db" {
            let answer = rds
                .layer
                .call("DescribeDBSnapshotAttributes", || {
                    rds.client
                        .describe_db_snapshot_attributes()
                        .db_snapshot_identifier(id)
                        .send()
                })
                .await?;
            answer.db_snapshot_attributes_result().is_some_and(|r| {
                r.db_snapshot_attributes()
                    .iter()
                    .any(|a| a.attribute_values().iter().any(|v| v == "all"))
            })
        } else {
            let answer = rds
                .layer
                .call("DescribeDBClusterSnapshotAttributes", || {
                    rds.client
                        .describe_db_cluster_snapshot_attributes()
                        .db_cluster_snapshot_identifier(id)
                        .send()
                })
                .await?;
            answer.db_cluster_snapshot_attributes_result().is_some_and(|r| {
                r.db_cluster_snapshot_attributes()
                    .iter()
                    .any(|a| a.attribute_values().iter().any(|v| v == "all"))
            })
        };
    }
    Ok(out)
}
