//! RDS DB instances, paginated by marker.

use super::convert::tags;
use crate::aws::{AwsError, Layered};
use crate::owners::OwnerDirectory;
use crate::world::RdsInstance;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;

/// DB instances: all, or the one named `id`.
pub(crate) async fn db_instances(
    rds: &Layered<aws_sdk_rds::Client>,
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
            });
        }
    };
    rds.layer
        .pages("DescribeDBInstances", send, DescribeDbInstancesOutput::marker, each)
        .await?;
    Ok(out)
}
