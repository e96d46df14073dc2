//! Why a failing check is left for a human: the security plan states it beside the findings.

/// Why θ2 proposes no automatic fix for `check_id`.
#[must_use]
pub fn why_not_automatic(check_id: &str) -> &'static str {
    match check_id {
        "ec2_instance_profile_attached" => {
            "which IAM role an instance needs depends on what it runs; no rule can choose its permissions"
        }
        "ec2_instance_detailed_monitoring_enabled" => {
            "1-minute metrics are billed per instance, and the engine's hourly right-sizing does not need them"
        }
        "ec2_ebs_volume_snapshots_exists" => {
            "a backup schedule (AWS Backup, Data Lifecycle Manager) is a retention and cost policy; one snapshot now would pass the check and protect little"
        }
        "ec2_ebs_volume_encryption" => {
            "only a volume attached to one instance is swapped for an encrypted copy; an unattached one is deleted by the cost plan, a Multi-Attach one cannot be swapped"
        }
        "ec2_ebs_snapshots_encrypted" => {
            "EBS cannot encrypt a snapshot in place; an encrypted copy replaces it only once nothing (an AMI, another account) refers to the original"
        }
        "ec2_instance_public_ip" => {
            "a security group of the instance admits a public source, or the address is an Elastic IP: clients may reach it there"
        }
        "s3_bucket_secure_transport_policy" => {
            "a policy denying plain HTTP breaks any client still using it, and must be merged into the bucket's own policy"
        }
        "s3_bucket_object_lock" => "Object Lock cannot be turned off again; retention is a compliance decision",
        "s3_bucket_no_mfa_delete" => "only the root user, with its MFA device, can turn MFA delete on",
        "s3_bucket_lifecycle_enabled" => "how long objects live is a data-retention decision",
        "s3_bucket_kms_encryption" => {
            "a KMS key and its key policy are the owner's choice, and SSE-KMS adds a cost per request"
        }
        "s3_bucket_event_notifications_enabled" => {
            "a notification needs a destination (SNS, SQS, Lambda) only the owner knows"
        }
        "s3_bucket_cross_region_replication" => {
            "replication needs a destination bucket and an IAM role, and doubles the storage bill"
        }
        "s3_bucket_acl_prohibited" => {
            "enforcing bucket-owner object ownership disables every ACL, which clients granted access by ACL rely on"
        }
        "s3_bucket_server_access_logging_enabled" => {
            "the engine's log bucket does not log into itself (each delivery would be logged again), and a bucket logs only once the Region's account is known"
        }
        "rds_instance_non_default_port" => "a new port breaks every client's connection string",
        "rds_instance_integration_cloudwatch_logs" => {
            "which logs to export depends on the engine, and CloudWatch Logs bills by volume"
        }
        "rds_instance_inside_vpc" => "moving a DB instance into a VPC is a migration",
        "rds_instance_iam_authentication_enabled" => "clients must change to connect with IAM tokens",
        "rds_instance_enhanced_monitoring_enabled" => {
            "needs a monitoring IAM role, and CloudWatch Logs bills its ingestion"
        }
        "rds_instance_copy_tags_to_snapshots" => "no remediation is implemented yet",
        "rds_instance_multi_az" => "a cluster member's availability is set on its cluster, not on the instance",
        "rds_snapshots_encrypted" => {
            "RDS encrypts a snapshot only as a copy with a KMS key; the original goes once nothing restores from it"
        }
        "rds_instance_storage_encrypted" => {
            "a cluster member's or a read replica's storage is encrypted with its cluster or source"
        }
        "rds_instance_default_admin" => "the master user name cannot be changed; a new instance would be needed",
        c if c.starts_with("ec2_networkacl_") => {
            "a network ACL covers whole subnets; narrowing it may cut traffic the security groups allow on purpose"
        }
        c if c.starts_with("ec2_securitygroup_") => {
            "the rule is not world-open on its own (it opens to another group or a prefix list), so which sources it needs is the owner's call"
        }
        _ => "the fix depends on intent the configuration does not show",
    }
}
