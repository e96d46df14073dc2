//! Terraform and CloudFormation output: parsed back and checked value by value; `cfn-lint`
//! clean; `terraform fmt -check` where the CLI exists.

use std::collections::BTreeMap;
use std::process::Command;

use hcl::{Block, Expression};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::iac;
use miyabi_aws::phases::optimization::{optimize, OptimizationConfig};
use miyabi_aws::phases::planning::{plan, PlanningConfig};
use miyabi_aws::plan::Action;
use miyabi_aws::world::WorldState;

use super::optimization::busy_world;
use super::support::tmp_dir;

fn attr<'a>(block: &'a Block, key: &str) -> Option<&'a Expression> {
    block.body().attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn string(block: &Block, key: &str) -> String {
    match attr(block, key) {
        Some(Expression::String(s)) => s.clone(),
        other => panic!("{key} is not a string in {}: {other:?}", block.identifier()),
    }
}

fn expression(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap()
}

/// The rendered files of the execution plan's target state, parsed.
fn rendered(
    world: &WorldState,
) -> (
    BTreeMap<String, hcl::Body>,
    BTreeMap<String, String>,
    serde_json::Value,
    std::path::PathBuf,
) {
    let p = plan(world, PriceCatalog::built_in(), &PlanningConfig::default());
    let ep = optimize(world, &p, PriceCatalog::built_in(), &OptimizationConfig::default()).execution_plan;
    let dir = tmp_dir("iac");
    for (path, text) in iac::render(world, ep.steps.iter().map(|s| &s.change)) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let mut bodies = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for name in ["provider.tf", "ec2.tf", "s3.tf", "rds.tf", "account.tf"] {
        let text = std::fs::read_to_string(dir.join("terraform").join(name)).unwrap();
        bodies.insert(
            name.to_owned(),
            hcl::parse(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}")),
        );
        texts.insert(name.to_owned(), text);
    }
    let template =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cloudformation/template.json")).unwrap()).unwrap();
    (bodies, texts, template, dir)
}

#[test]
fn terraform_has_an_import_and_a_resource_with_required_arguments_for_every_resource() {
    let world = busy_world();
    let (bodies, _, _, _) = rendered(&world);
    let mut resources = BTreeMap::new();
    let mut imports = Vec::new();
    for body in bodies.values() {
        for block in body.blocks() {
            match block.identifier() {
                "resource" => {
                    let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
                    resources.insert(format!("{}.{}", labels[0], labels[1]), block.clone());
                }
                "import" => imports.push((expression(attr(block, "to").unwrap()), string(block, "id"))),
                _ => {}
            }
        }
    }
    let inv = &world.inventory;
    let expected_imports = inv.instances.len()
        + inv.volumes.len()
        + inv.addresses.len()
        + inv.security_groups.len()
        + inv.db_instances.len()
        + inv.buckets.len()
        + inv.buckets.iter().filter(|b| b.public_access_block.is_some()).count();
    assert!(
        imports.len() >= expected_imports,
        "{} imports for {expected_imports} resources",
        imports.len()
    );
    for (to, id) in &imports {
        let block = resources
            .get(to)
            .unwrap_or_else(|| panic!("import to {to} has no resource block"));
        let kind = to.split('.').next().unwrap();
        // The import id is the right one for the resource type.
        let expected = match kind {
            "aws_instance" => inv
                .instances
                .iter()
                .find(|i| to.ends_with(&iac::identifier("instance", &i.id)))
                .map(|i| i.id.clone()),
            "aws_ebs_volume" => inv
                .volumes
                .iter()
                .find(|v| to.ends_with(&iac::identifier("volume", &v.id)))
                .map(|v| v.id.clone()),
            "aws_eip" => inv
                .addresses
                .iter()
                .find(|a| to.ends_with(&iac::identifier("eip", &a.allocation_id)))
                .map(|a| a.allocation_id.clone()),
            "aws_security_group" => inv
                .security_groups
                .iter()
                .find(|g| to.ends_with(&iac::identifier("sg", &g.id)))
                .map(|g| g.id.clone()),
            "aws_db_instance" => Some(string(block, "identifier")),
            _ if kind.starts_with("aws_s3_bucket") => Some(string(block, "bucket")),
            other => panic!("unexpected resource type {other}"),
        };
        assert_eq!(Some(id.clone()), expected, "{to}");
        let required: &[&str] = match kind {
            "aws_instance" => &["instance_type"],
            "aws_ebs_volume" => &["availability_zone", "size", "type"],
            "aws_security_group" => &["name", "description"],
            "aws_db_instance" => &["instance_class", "engine", "allocated_storage", "identifier"],
            "aws_eip" => &["domain"],
            _ => &["bucket"],
        };
        for key in required {
            assert!(attr(block, key).is_some(), "{to} lacks {key}");
        }
    }
    let provider = &bodies["provider.tf"];
    let regions: Vec<String> = provider
        .blocks()
        .filter(|b| b.identifier() == "provider")
        .map(|b| string(b, "region"))
        .collect();
    assert_eq!(regions, world.scope.regions);
}

#[test]
fn the_planned_changes_are_in_the_terraform_and_cloudformation() {
    let world = busy_world();
    let (bodies, texts, template, _) = rendered(&world);
    let block = |kind: &str, name: &str| -> Block {
        bodies
            .values()
            .flat_map(|b| b.blocks())
            .find(|b| b.identifier() == "resource" && b.labels()[0].as_str() == kind && b.labels()[1].as_str() == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind}.{name}"))
    };
    // Right-sized: i-big goes from m5.2xlarge to m5.xlarge, as far as the memory guard allows
    // in one step (see the optimization tests).
    let big = block("aws_instance", &iac::identifier("instance", "i-big"));
    assert_eq!(string(&big, "instance_type"), "m5.xlarge");
    let metadata = big
        .body()
        .blocks()
        .find(|b| b.identifier() == "metadata_options")
        .unwrap();
    assert_eq!(string(metadata, "http_tokens"), "required");
    // gp2 → gp3.
    let gp2 = block("aws_ebs_volume", &iac::identifier("volume", "vol-gp2"));
    assert_eq!(string(&gp2, "type"), "gp3");
    // The world-open SSH rule of the fixture's group is gone; public access is blocked.
    let group = block(
        "aws_security_group",
        &iac::identifier("sg", &world.inventory.security_groups[0].id),
    );
    let open_ingress = group
        .body()
        .blocks()
        .filter(|b| b.identifier() == "ingress")
        .any(|b| expression(attr(b, "cidr_blocks").unwrap()).contains("0.0.0.0/0"));
    assert!(!open_ingress, "{}", texts["ec2.tf"]);
    let bucket = &world.inventory.buckets[0].name;
    let pab = block("aws_s3_bucket_public_access_block", &iac::identifier("bucket", bucket));
    for key in [
        "block_public_acls",
        "ignore_public_acls",
        "block_public_policy",
        "restrict_public_buckets",
    ] {
        assert_eq!(attr(&pab, key), Some(&Expression::Bool(true)), "{key}");
    }
    // Destructive steps are left to deployment and said so.
    assert!(texts["ec2.tf"].contains("TerminateInstance i-stopped-long"));
    let resources = template["Resources"].as_object().unwrap();
    let cf_big = &resources[&iac::identifier("Instance", "i-big").replace('_', "")];
    assert_eq!(cf_big["Properties"]["InstanceType"], "m5.xlarge");
    let deferred = template["Metadata"]["Miyabi"]["StepsLeftToDeployment"]
        .as_array()
        .unwrap();
    assert!(deferred
        .iter()
        .any(|d| d["action"] == serde_json::json!(Action::TerminateInstance)));
}

#[test]
fn cfn_lint_passes_on_the_template() {
    let (_, _, _, dir) = rendered(&busy_world());
    let template = dir.join("cloudformation/template.json");
    let out = Command::new("cfn-lint").arg(&template).output().expect(
        "cfn-lint runs (scripts/bootstrap.sh installs it into the project venv, which scripts/env.sh puts on PATH)",
    );
    assert!(
        out.status.success(),
        "cfn-lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn terraform_fmt_accepts_the_output_where_the_cli_exists() {
    let Ok(version) = Command::new("terraform").arg("version").output() else {
        eprintln!("SKIPPED: the terraform CLI is not installed here; the HCL is checked by parsing instead");
        return;
    };
    assert!(version.status.success());
    let (_, _, _, dir) = rendered(&busy_world());
    let out = Command::new("terraform")
        .args(["fmt", "-check", "-diff"])
        .current_dir(dir.join("terraform"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn account_defaults_render_in_terraform_and_a_volume_swap_is_left_to_deployment() {
    let mut world = busy_world();
    let region = world.inventory.instances[0].region.clone();
    world.inventory.region_settings = vec![miyabi_aws::world::RegionSettings {
        account_id: "123456789012".into(),
        region: region.clone(),
        ebs_encryption_by_default: Some(false),
        snapshot_block_public_access: Some("unblocked".into()),
        instance_metadata_http_tokens: Some("no-preference".into()),
    }];
    let instance = world.inventory.instances[0].id.clone();
    let volume = {
        let v = &mut world.inventory.volumes[0];
        v.encrypted = false;
        "in-use".clone_into(&mut v.state);
        v.attached_to = vec![instance];
        v.id.clone()
    };
    world.assessment = miyabi_aws::assessment::assess(&world.inventory, PriceCatalog::built_in());
    let (bodies, texts, template, _) = rendered(&world);
    let account = &bodies["account.tf"];
    let block = |kind: &str| {
        account
            .blocks()
            .find(|b| b.identifier() == "resource" && b.labels()[0].as_str() == kind)
            .unwrap_or_else(|| panic!("no {kind} in {}", texts["account.tf"]))
            .clone()
    };
    assert_eq!(
        attr(&block("aws_ebs_encryption_by_default"), "enabled"),
        Some(&Expression::Bool(true))
    );
    assert_eq!(
        string(&block("aws_ebs_snapshot_block_public_access"), "state"),
        "block-all-sharing"
    );
    assert_eq!(
        string(&block("aws_ec2_instance_metadata_defaults"), "http_tokens"),
        "required"
    );
    // The swap is θ4's: the volume keeps its block, unencrypted, and the step is listed.
    let name = iac::identifier("volume", &volume);
    let kept = bodies["ec2.tf"]
        .blocks()
        .find(|b| b.identifier() == "resource" && b.labels()[1].as_str() == name)
        .unwrap();
    assert_eq!(attr(kept, "encrypted"), Some(&Expression::Bool(false)));
    assert!(
        texts["ec2.tf"].contains(&format!("EncryptVolume {volume}")),
        "{}",
        texts["ec2.tf"]
    );
    let deferred = template["Metadata"]["Miyabi"]["StepsLeftToDeployment"]
        .as_array()
        .unwrap();
    assert!(deferred
        .iter()
        .any(|d| d["action"] == serde_json::json!(Action::EncryptVolume)));
}
