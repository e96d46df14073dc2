//! Terraform: an `import` block and a resource block for every discovered resource, one file per
//! service plus the providers (one per Region, aliased after the first). Built with `hcl-rs`.

use std::fmt::Write;

use hcl::expr::{Expression, ObjectKey};
use hcl::{Attribute, Block, Body};

use super::identifier;
use crate::plan::Change;
use crate::world::{Inventory, SecurityGroupRule, Tags, VersioningStatus};

/// Every file as `(name, text)`: `provider.tf`, `ec2.tf`, `s3.tf`, `rds.tf`, `account.tf`.
#[must_use]
pub fn render(inventory: &Inventory, regions: &[String], destructive: &[&Change]) -> Vec<(String, String)> {
    let providers = Providers::new(regions);
    let note = destructive_note(destructive);
    vec![
        ("provider.tf".to_owned(), format(&providers.body())),
        ("ec2.tf".to_owned(), note + &format(&ec2(inventory, &providers))),
        ("s3.tf".to_owned(), format(&s3(inventory, &providers))),
        ("rds.tf".to_owned(), format(&rds(inventory, &providers))),
        ("account.tf".to_owned(), format(&account(inventory, &providers))),
    ]
}

/// The account's defaults in each Region. Each of these resources sets a default when
/// created, so no `import` is needed; destroying one puts the default back to AWS's.
fn account(inventory: &Inventory, providers: &Providers<'_>) -> Body {
    let mut body = Body::builder();
    for s in &inventory.region_settings {
        let name = |what: &str| identifier(what, &s.region);
        if let Some(enabled) = s.ebs_encryption_by_default {
            body = body.add_block(
                resource(
                    "aws_ebs_encryption_by_default",
                    &name("ebs_default_encryption"),
                    providers.of(&s.region),
                )
                .add_attribute(("enabled", enabled))
                .build(),
            );
        }
        if let Some(state) = &s.snapshot_block_public_access {
            body = body.add_block(
                resource(
                    "aws_ebs_snapshot_block_public_access",
                    &name("snapshot_block_public_access"),
                    providers.of(&s.region),
                )
                .add_attribute(("state", state.as_str()))
                .build(),
            );
        }
        if let Some(tokens) = s
            .instance_metadata_http_tokens
            .as_deref()
            .filter(|t| *t != "no-preference")
        {
            body = body.add_block(
                resource(
                    "aws_ec2_instance_metadata_defaults",
                    &name("instance_metadata_defaults"),
                    providers.of(&s.region),
                )
                .add_attribute(("http_tokens", tokens))
                .build(),
            );
        }
    }
    body.build()
}

fn format(body: &Body) -> String {
    // Formatting a body built in memory cannot fail.
    let text = hcl::format::to_string(body).unwrap_or_else(|e| unreachable!("HCL body formats: {e}"));
    align_equals(&text)
}

/// Aligns the `=` of each run of consecutive `key = value` lines at one indentation, as
/// `terraform fmt` does (a value opening a multi-line list or object is not part of a run). hcl-rs's
/// formatter does not align every such run. Only whitespace changes.
fn align_equals(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let assignment = |l: &str| {
        let (key, _) = l.split_once(" = ")?;
        let key = key.trim();
        (!key.is_empty() && !key.contains(' ') || key.starts_with('"')).then_some(key.chars().count())
    };
    let mut out = String::with_capacity(text.len() + 256);
    let mut k = 0;
    while k < lines.len() {
        let Some(_) = assignment(lines[k]) else {
            out.push_str(lines[k]);
            out.push('\n');
            k += 1;
            continue;
        };
        let level = indent(lines[k]);
        let opens = |l: &str| {
            let l = l.trim_end();
            l.ends_with('[') || l.ends_with('{')
        };
        let mut end = k;
        while end < lines.len() && indent(lines[end]) == level && assignment(lines[end]).is_some() && !opens(lines[end])
        {
            end += 1;
        }
        if end == k {
            out.push_str(lines[k]);
            out.push('\n');
            k += 1;
            continue;
        }
        let width = lines[k..end].iter().filter_map(|l| assignment(l)).max().unwrap_or(0);
        for line in &lines[k..end] {
            if let Some((key, value)) = line.split_once(" = ") {
                let _ = writeln!(out, "{:level$}{:<width$} = {value}", "", key.trim());
            }
        }
        k = end;
    }
    out
}

fn destructive_note(destructive: &[&Change]) -> String {
    if destructive.is_empty() {
        return String::new();
    }
    let mut note = String::from(
        "# Steps of the plan carried out by the deployment phase, not by this configuration (destructive\n# ones after a snapshot; an encryption by swapping in an encrypted copy, where this\n# configuration would replace the volume with an empty one; access logging into the log\n# bucket the deployment phase creates; a public IP's removal, for which this configuration\n# would replace the instance):\n",
    );
    for c in destructive {
        let _ = writeln!(
            note,
            "#   {:?} {} ({}), step {}",
            c.action, c.resource.id, c.resource.region, c.id
        );
    }
    note + "\n"
}

/// The AWS providers: the first Region is the default provider, the others are aliased.
struct Providers<'a> {
    regions: &'a [String],
    /// `aws.<alias>` per non-default Region.
    aliased: std::collections::BTreeMap<String, Expression>,
}

impl<'a> Providers<'a> {
    fn new(regions: &'a [String]) -> Self {
        let aliased = regions
            .iter()
            .skip(1)
            .filter_map(|r| Some((r.clone(), format!("aws.{}", Self::alias(r)).parse().ok()?)))
            .collect();
        Self { regions, aliased }
    }

    fn alias(region: &str) -> String {
        region.replace('-', "_")
    }

    /// The `provider` meta-argument for a resource of `region`, if not the default one.
    fn of(&self, region: &str) -> Option<&Expression> {
        self.aliased.get(region)
    }

    fn body(&self) -> Body {
        let source = Expression::from_iter([
            (ObjectKey::from("source"), Expression::from("hashicorp/aws")),
            (ObjectKey::from("version"), Expression::from(">= 5.0")),
        ]);
        let mut body = Body::builder().add_block(
            Block::builder("terraform")
                .add_attribute(("required_version", ">= 1.5.0"))
                .add_block(
                    Block::builder("required_providers")
                        .add_attribute(Attribute::new("aws", source))
                        .build(),
                )
                .build(),
        );
        for (k, region) in self.regions.iter().enumerate() {
            let mut provider = Block::builder("provider").add_label("aws");
            if k > 0 {
                provider = provider.add_attribute(("alias", Self::alias(region)));
            }
            body = body.add_block(provider.add_attribute(("region", region.as_str())).build());
        }
        body.build()
    }
}

fn import(kind: &str, name: &str, id: &str, provider: Option<&Expression>) -> Block {
    let to: Expression = format!("{kind}.{name}")
        .parse()
        .unwrap_or_else(|_| Expression::from(format!("{kind}.{name}")));
    let mut block = Block::builder("import")
        .add_attribute(Attribute::new("to", to))
        .add_attribute(("id", id));
    if let Some(provider) = provider {
        block = block.add_attribute(Attribute::new("provider", provider.clone()));
    }
    block.build()
}

fn resource(kind: &str, name: &str, provider: Option<&Expression>) -> hcl::structure::BlockBuilder {
    let block = Block::builder("resource").add_label(kind).add_label(name);
    match provider {
        Some(p) => block.add_attribute(Attribute::new("provider", p.clone())),
        None => block,
    }
}

fn strings(values: &[String]) -> Expression {
    values.iter().map(String::as_str).collect()
}

fn tags(tags: &Tags) -> Expression {
    tags.iter()
        .map(|(k, v)| {
            (
                ObjectKey::Expression(Expression::from(k.as_str())),
                Expression::from(v.as_str()),
            )
        })
        .collect()
}

fn rule(kind: &str, r: &SecurityGroupRule) -> Block {
    let all = r.protocol == "-1";
    Block::builder(kind)
        .add_attribute(("from_port", if all { 0 } else { i64::from(r.from_port.unwrap_or(0)) }))
        .add_attribute(("to_port", if all { 0 } else { i64::from(r.to_port.unwrap_or(0)) }))
        .add_attribute(("protocol", r.protocol.as_str()))
        .add_attribute(("cidr_blocks", strings(&r.ipv4_ranges)))
        .add_attribute(("ipv6_cidr_blocks", strings(&r.ipv6_ranges)))
        .add_attribute(("security_groups", strings(&r.group_ids)))
        .build()
}

/// Instances, volumes, Elastic IPs and security groups.
fn ec2(inventory: &Inventory, providers: &Providers<'_>) -> Body {
    let mut ec2 = Body::builder();
    for i in &inventory.instances {
        let name = identifier("instance", &i.id);
        ec2 = ec2.add_block(import("aws_instance", &name, &i.id, providers.of(&i.region)));
        let metadata = Block::builder("metadata_options")
            .add_attribute(("http_tokens", if i.imds_v2_required { "required" } else { "optional" }))
            .build();
        // Single-line attributes first: `terraform fmt` aligns runs of them.
        let mut block = resource("aws_instance", &name, providers.of(&i.region))
            .add_attribute(("instance_type", i.instance_type.as_str()));
        if let Some(subnet) = &i.subnet_id {
            block = block.add_attribute(("subnet_id", subnet.as_str()));
        }
        if let Some(ami) = &i.image_id {
            block = block.add_attribute(("ami", ami.as_str()));
        }
        block = block.add_attribute(("vpc_security_group_ids", strings(&i.security_group_ids)));
        ec2 = ec2.add_block(block.add_block(metadata).add_attribute(("tags", tags(&i.tags))).build());
    }
    for v in &inventory.volumes {
        let name = identifier("volume", &v.id);
        ec2 = ec2.add_block(import("aws_ebs_volume", &name, &v.id, providers.of(&v.region)));
        let mut block = resource("aws_ebs_volume", &name, providers.of(&v.region))
            .add_attribute(("availability_zone", v.availability_zone.clone().unwrap_or_default()))
            .add_attribute(("size", i64::from(v.size_gib)))
            .add_attribute(("type", v.volume_type.as_str()))
            .add_attribute(("encrypted", v.encrypted));
        if let (Some(iops), "gp3" | "io1" | "io2") = (v.iops, v.volume_type.as_str()) {
            block = block.add_attribute(("iops", i64::from(iops)));
        }
        ec2 = ec2.add_block(block.add_attribute(("tags", tags(&v.tags))).build());
    }
    for a in &inventory.addresses {
        let name = identifier("eip", &a.allocation_id);
        ec2 = ec2.add_block(import("aws_eip", &name, &a.allocation_id, providers.of(&a.region)));
        ec2 = ec2.add_block(
            resource("aws_eip", &name, providers.of(&a.region))
                .add_attribute(("domain", "vpc"))
                .add_attribute(("tags", tags(&a.tags)))
                .build(),
        );
    }
    for g in &inventory.security_groups {
        let name = identifier("sg", &g.id);
        ec2 = ec2.add_block(import("aws_security_group", &name, &g.id, providers.of(&g.region)));
        let mut block = resource("aws_security_group", &name, providers.of(&g.region))
            .add_attribute(("name", g.name.as_str()))
            .add_attribute(("description", g.description.clone().unwrap_or_default()));
        if let Some(vpc) = &g.vpc_id {
            block = block.add_attribute(("vpc_id", vpc.as_str()));
        }
        // An empty list, not an absent block, is what makes Terraform remove every rule.
        if g.ingress.is_empty() {
            block = block.add_attribute(("ingress", Expression::Array(Vec::new())));
        }
        if g.egress.is_empty() {
            block = block.add_attribute(("egress", Expression::Array(Vec::new())));
        }
        for r in &g.ingress {
            block = block.add_block(rule("ingress", r));
        }
        for r in &g.egress {
            block = block.add_block(rule("egress", r));
        }
        ec2 = ec2.add_block(block.add_attribute(("tags", tags(&g.tags))).build());
    }

    ec2.build()
}

/// Buckets and their public access block, encryption and versioning resources.
fn s3(inventory: &Inventory, providers: &Providers<'_>) -> Body {
    let mut s3 = Body::builder();
    for b in &inventory.buckets {
        let name = identifier("bucket", &b.name);
        let provider = providers.of(&b.region);
        s3 = s3
            .add_block(import("aws_s3_bucket", &name, &b.name, provider))
            .add_block(
                resource("aws_s3_bucket", &name, provider)
                    .add_attribute(("bucket", b.name.as_str()))
                    .add_attribute(("tags", tags(&b.tags)))
                    .build(),
            );
        if let Some(pab) = &b.public_access_block {
            s3 = s3
                .add_block(import("aws_s3_bucket_public_access_block", &name, &b.name, provider))
                .add_block(
                    resource("aws_s3_bucket_public_access_block", &name, provider)
                        .add_attribute(("bucket", b.name.as_str()))
                        .add_attribute(("block_public_acls", pab.block_public_acls))
                        .add_attribute(("ignore_public_acls", pab.ignore_public_acls))
                        .add_attribute(("block_public_policy", pab.block_public_policy))
                        .add_attribute(("restrict_public_buckets", pab.restrict_public_buckets))
                        .build(),
                );
        }
        if let Some(algorithm) = &b.default_encryption {
            let default = Block::builder("apply_server_side_encryption_by_default")
                .add_attribute(("sse_algorithm", algorithm.as_str()))
                .build();
            s3 = s3
                .add_block(import(
                    "aws_s3_bucket_server_side_encryption_configuration",
                    &name,
                    &b.name,
                    provider,
                ))
                .add_block(
                    resource("aws_s3_bucket_server_side_encryption_configuration", &name, provider)
                        .add_attribute(("bucket", b.name.as_str()))
                        .add_block(Block::builder("rule").add_block(default).build())
                        .build(),
                );
        }
        if b.versioning != VersioningStatus::Off {
            let status = if b.versioning == VersioningStatus::Enabled {
                "Enabled"
            } else {
                "Suspended"
            };
            s3 = s3
                .add_block(import("aws_s3_bucket_versioning", &name, &b.name, provider))
                .add_block(
                    resource("aws_s3_bucket_versioning", &name, provider)
                        .add_attribute(("bucket", b.name.as_str()))
                        .add_block(
                            Block::builder("versioning_configuration")
                                .add_attribute(("status", status))
                                .build(),
                        )
                        .build(),
                );
        }
    }

    s3.build()
}

/// DB instances.
fn rds(inventory: &Inventory, providers: &Providers<'_>) -> Body {
    let mut rds = Body::builder();
    for d in &inventory.db_instances {
        let name = identifier("db", &d.id);
        rds = rds.add_block(import("aws_db_instance", &name, &d.id, providers.of(&d.region)));
        let mut block = resource("aws_db_instance", &name, providers.of(&d.region))
            .add_attribute(("identifier", d.id.as_str()))
            .add_attribute(("instance_class", d.class.as_str()))
            .add_attribute(("engine", d.engine.as_str()))
            .add_attribute(("allocated_storage", i64::from(d.allocated_storage_gib)))
            .add_attribute(("publicly_accessible", d.publicly_accessible))
            .add_attribute(("storage_encrypted", d.storage_encrypted))
            .add_attribute(("backup_retention_period", i64::from(d.backup_retention_days)))
            .add_attribute(("deletion_protection", d.deletion_protection))
            .add_attribute(("multi_az", d.multi_az))
            .add_attribute(("skip_final_snapshot", false));
        if let Some(version) = &d.engine_version {
            block = block.add_attribute(("engine_version", version.as_str()));
        }
        if let Some(storage) = &d.storage_type {
            block = block.add_attribute(("storage_type", storage.as_str()));
        }
        if let Some(user) = &d.master_username {
            block = block.add_attribute(("username", user.as_str()));
        }
        rds = rds.add_block(block.add_attribute(("tags", tags(&d.tags))).build());
    }

    rds.build()
}
