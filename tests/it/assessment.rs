//! Cost, security score and utilisation computed from hand-built inventories, checked against
//! values computed by hand.

use miyabi_aws::assessment::security::{run_checks, score};
use miyabi_aws::assessment::{assess, Finding, FindingStatus, ResourceKind, Severity};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::world::*;

use super::support::status;
use super::world::fixture_world;

pub fn base() -> Inventory {
    let mut inv = fixture_world().inventory;
    inv.instances.clear();
    inv.volumes.clear();
    inv.addresses.clear();
    inv.security_groups.clear();
    inv.buckets.clear();
    inv.db_instances.clear();
    inv.metrics.clear();
    inv
}

pub fn instance(id: &str, ty: &str, region: &str, state: &str) -> Ec2Instance {
    let mut i = fixture_world().inventory.instances.remove(0);
    i.id = id.into();
    i.instance_type = ty.into();
    i.region = region.into();
    i.state = state.into();
    i
}

pub fn cpu(id: &str, values: &[f64]) -> MetricSeries {
    let mut s = fixture_world().inventory.metrics.remove(0);
    s.resource_id = id.into();
    s.timestamps = (0..values.len() as i64).map(|h| h * 3600).collect();
    s.values = values.to_vec();
    s
}

#[test]
fn cost_totals_match_hand_computed_values() {
    let mut inv = base();
    inv.instances = vec![
        instance("i-a", "m5.large", "us-east-1", "running"), // 0.096 × 730 = 70.08
        instance("i-b", "m5.xlarge", "eu-west-1", "running"), // 0.192 × 730 × 1.115 = 156.2784 → 156.28
        instance("i-c", "c5.large", "us-east-1", "stopped"), // no compute charge
        instance("i-d", "x9.huge", "us-east-1", "running"),  // unknown: unpriced
    ];
    let mut vol = fixture_world().inventory.volumes.remove(0);
    vol.volume_type = "gp2".into();
    vol.size_gib = 100; // 0.10 × 100 = 10.00
    vol.iops = None;
    let mut vol3 = vol.clone();
    vol3.id = "vol-3".into();
    vol3.volume_type = "gp3".into();
    vol3.size_gib = 200; // 0.08 × 200 = 16.00
    inv.volumes = vec![vol, vol3];
    inv.addresses = fixture_world().inventory.addresses; // 0.005 × 730 = 3.65
    let mut sized = fixture_world().inventory.buckets.remove(0);
    sized.size_bytes = Some(100.0 * f64::from(1u32 << 30)); // 0.023 × 100 = 2.30
    let mut unsized_bucket = sized.clone();
    unsized_bucket.name = "no-metric".into();
    unsized_bucket.size_bytes = None; // unpriced, and says so
    inv.buckets = vec![sized, unsized_bucket];
    // db.m5.large Multi-AZ with 100 GiB gp2: (0.171 × 730 + 0.115 × 100) × 2 = 272.66
    inv.db_instances = fixture_world().inventory.db_instances;

    let a = assess(&inv, PriceCatalog::built_in());
    let cost = |id: &str| a.costs.iter().find(|c| c.resource_id == id).unwrap().monthly_usd;
    assert_eq!(cost("i-a"), Some(70.08));
    assert_eq!(cost("i-b"), Some(156.28));
    assert_eq!(cost("i-c"), Some(0.0));
    assert_eq!(cost("i-d"), None);
    assert_eq!(cost("vol-1"), Some(10.0));
    assert_eq!(cost("vol-3"), Some(16.0));
    assert_eq!(cost("eipalloc-1"), Some(3.65));
    assert_eq!(cost("bucket-0"), Some(2.3));
    assert_eq!(cost("no-metric"), None);
    assert_eq!(cost("orders"), Some(272.66));
    assert!((a.monthly_total_usd - 530.97).abs() < 1e-9, "{}", a.monthly_total_usd);
    assert_eq!(a.unpriced_count, 2);
    let unpriced: Vec<&str> = a
        .findings
        .iter()
        .filter(|f| !f.is_security())
        .map(|f| f.resource_id.as_str())
        .collect();
    assert_eq!(unpriced, vec!["i-d", "no-metric"]);
    let basis = &a.costs.iter().find(|c| c.resource_id == "i-d").unwrap().basis;
    assert!(
        basis.contains("x9.huge") && basis.contains("not in the price catalog"),
        "{basis}"
    );
}

#[test]
fn score_weighs_checks_by_severity() {
    let f = |severity, status| Finding {
        check_id: "c".into(),
        severity,
        status,
        resource_id: "r".into(),
        kind: ResourceKind::S3Bucket,
        region: "us-east-1".into(),
        message: String::new(),
    };
    assert_eq!(score(&[]), 100.0);
    // passed: critical 10 + low 1 = 11; total: 10 + 5 + 3 + 1 = 19 → 57.9
    let findings = [
        f(Severity::Critical, FindingStatus::Pass),
        f(Severity::High, FindingStatus::Fail),
        f(Severity::Medium, FindingStatus::Fail),
        f(Severity::Low, FindingStatus::Pass),
        f(Severity::Informational, FindingStatus::Fail),
    ];
    assert_eq!(score(&findings), 57.9);
}

#[test]
fn utilisation_is_the_vcpu_weighted_mean_of_running_instances() {
    let mut inv = base();
    inv.instances = vec![
        instance("i-small", "m5.large", "us-east-1", "running"), // 2 vCPU at 10%
        instance("i-big", "m5.2xlarge", "us-east-1", "running"), // 8 vCPU at 60%
        instance("i-off", "m5.2xlarge", "us-east-1", "stopped"), // ignored
    ];
    inv.metrics = vec![
        cpu("i-small", &[5.0, 15.0]),
        cpu("i-big", &[60.0, 60.0]),
        cpu("i-off", &[99.0]),
    ];
    // (2 × 10 + 8 × 60) / 10 = 50
    assert_eq!(assess(&inv, PriceCatalog::built_in()).utilisation_percent, Some(50.0));
    inv.metrics.clear();
    assert_eq!(assess(&inv, PriceCatalog::built_in()).utilisation_percent, None);
}

#[test]
fn security_group_checks_follow_prowler_and_trusted_advisor() {
    let sg = |id: &str, name: &str, rules: Vec<SecurityGroupRule>| {
        let mut g = fixture_world().inventory.security_groups.remove(0);
        g.id = id.into();
        g.name = name.into();
        g.ingress = rules;
        g.egress = vec![];
        g
    };
    let rule = |proto: &str, from: i32, to: i32, v4: &str, v6: &str| SecurityGroupRule {
        protocol: proto.into(),
        from_port: Some(from),
        to_port: Some(to),
        ipv4_ranges: if v4.is_empty() { vec![] } else { vec![v4.into()] },
        ipv6_ranges: if v6.is_empty() { vec![] } else { vec![v6.into()] },
        group_ids: vec![],
    };
    let mut inv = base();
    inv.security_groups = vec![
        sg(
            "sg-web",
            "web",
            vec![
                rule("tcp", 443, 443, "0.0.0.0/0", ""),
                rule("tcp", 80, 80, "0.0.0.0/0", ""),
            ],
        ),
        sg("sg-8080", "app", vec![rule("tcp", 8080, 8080, "0.0.0.0/0", "")]),
        sg("sg-9999", "odd", vec![rule("tcp", 9999, 9999, "0.0.0.0/0", "")]),
        sg("sg-udp-all", "udp", vec![rule("udp", 0, 65535, "0.0.0.0/0", "")]),
        sg("sg-any", "any", vec![rule("-1", 0, 0, "0.0.0.0/0", "")]),
        sg("sg-v6ssh", "ssh6", vec![rule("tcp", 22, 22, "", "::/0")]),
        sg("sg-range", "range", vec![rule("tcp", 1000, 6000, "0.0.0.0/0", "")]),
        sg("sg-private", "private", vec![rule("tcp", 22, 22, "10.0.0.0/8", "")]),
        sg("sg-default-empty", "default", vec![]),
        sg("sg-unused", "unused", vec![rule("-1", 0, 0, "0.0.0.0/0", "")]),
    ];
    // Every group but the last is in use: Prowler judges a group only when an interface uses it.
    let mut eni = fixture_world().inventory.network_interfaces.remove(0);
    eni.group_ids = inv
        .security_groups
        .iter()
        .map(|g| g.id.clone())
        .filter(|g| g != "sg-unused")
        .collect();
    inv.network_interfaces = vec![eni];
    let findings = run_checks(&inv);
    assert!(
        findings
            .iter()
            .all(|f| f.resource_id != "sg-unused" || !f.check_id.contains("_allow_ingress_from_internet_")),
        "a group no interface uses is not judged on its ingress"
    );
    assert_eq!(
        status(&findings, "ec2_securitygroup_from_launch_wizard", "sg-unused"),
        FindingStatus::Pass,
        "but every group is judged on its name"
    );
    let any = "miyabi_securitygroup_ingress_from_internet_to_unlisted_port";
    let ssh = "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22";
    let mysql = "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_mysql_3306";
    assert_eq!(
        status(&findings, any, "sg-web"),
        FindingStatus::Pass,
        "80 and 443 are green"
    );
    assert_eq!(
        status(&findings, any, "sg-9999"),
        FindingStatus::Fail,
        "9999 is in no list"
    );
    let high_risk = "ec2_securitygroup_allow_ingress_from_internet_to_high_risk_tcp_ports";
    let all_ports = "ec2_securitygroup_allow_ingress_from_internet_to_all_ports";
    assert_eq!(
        status(&findings, high_risk, "sg-8080"),
        FindingStatus::Fail,
        "Prowler's list has 8080"
    );
    assert_eq!(status(&findings, any, "sg-8080"), FindingStatus::Pass);
    for g in ["sg-udp-all", "sg-any"] {
        assert_eq!(
            status(&findings, all_ports, g),
            FindingStatus::Fail,
            "{g}: all ports, any protocol"
        );
        for check in [ssh, mysql, high_risk] {
            assert_eq!(
                status(&findings, check, g),
                FindingStatus::Pass,
                "{g}: {check} is not judged port by port"
            );
        }
    }
    assert_eq!(
        status(&findings, ssh, "sg-v6ssh"),
        FindingStatus::Fail,
        "::/0 is the internet too"
    );
    assert_eq!(
        status(&findings, mysql, "sg-range"),
        FindingStatus::Fail,
        "a range covering 3306"
    );
    assert_eq!(status(&findings, ssh, "sg-range"), FindingStatus::Pass);
    assert_eq!(status(&findings, ssh, "sg-private"), FindingStatus::Pass);
    assert_eq!(
        status(
            &findings,
            "ec2_securitygroup_default_restrict_traffic",
            "sg-default-empty"
        ),
        FindingStatus::Pass
    );
    assert!(findings
        .iter()
        .all(|f| f.resource_id != "sg-web" || f.check_id != "ec2_securitygroup_default_restrict_traffic"));
}

#[test]
fn rds_default_admin_names_fail() {
    let mut inv = base();
    let mut db = fixture_world().inventory.db_instances.remove(0);
    db.master_username = Some("admin".into());
    let mut custom = db.clone();
    custom.id = "custom".into();
    custom.master_username = Some("orders_owner".into());
    // Prowler's list is `admin` and `postgres` only, matched exactly.
    let mut root = db.clone();
    root.id = "root".into();
    root.master_username = Some("root".into());
    inv.db_instances = vec![db, custom, root];
    let findings = run_checks(&inv);
    assert_eq!(
        status(&findings, "rds_instance_default_admin", "orders"),
        FindingStatus::Fail
    );
    assert_eq!(
        status(&findings, "rds_instance_default_admin", "custom"),
        FindingStatus::Pass
    );
    assert_eq!(
        status(&findings, "rds_instance_default_admin", "root"),
        FindingStatus::Pass
    );
}

#[test]
fn terminated_instances_are_judged_only_where_prowler_judges_them() {
    let mut inv = base();
    let mut live = instance("i-live", "t3.micro", "us-east-1", "running");
    live.imds_v2_required = false;
    let mut gone = instance("i-gone", "t3.micro", "us-east-1", "terminated");
    gone.imds_v2_required = false;
    inv.instances = vec![live, gone];
    let findings = run_checks(&inv);
    assert_eq!(
        status(&findings, "ec2_instance_imdsv2_enabled", "i-live"),
        FindingStatus::Fail
    );
    for check in [
        "ec2_instance_imdsv2_enabled",
        "ec2_instance_public_ip",
        "ec2_instance_profile_attached",
        "ec2_instance_paravirtual_type",
    ] {
        assert!(
            findings
                .iter()
                .all(|f| f.resource_id != "i-gone" || f.check_id != check),
            "{check} skips terminated instances, as Prowler's does"
        );
    }
    // Prowler's monitoring and port checks judge every instance EC2 lists.
    assert_eq!(
        status(&findings, "ec2_instance_detailed_monitoring_enabled", "i-gone"),
        FindingStatus::Fail
    );
}

#[test]
fn sarif_validates_against_the_oasis_schema_and_holds_every_failing_finding() {
    use miyabi_aws::assessment::checks::registry;
    use miyabi_aws::assessment::sarif::sarif;
    let path = super::support::repo_root().join("schema/external/sarif-schema-2.1.0.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the OASIS schema (draft-04)");
    let mut world = fixture_world();
    world.assessment = assess(&world.inventory, PriceCatalog::built_in());
    let log = sarif(&world);
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), registry().len(), "every check is a rule");
    let results = run["results"].as_array().unwrap();
    let failing: Vec<&Finding> = world
        .assessment
        .findings
        .iter()
        .filter(|f| f.status == FindingStatus::Fail && f.is_security())
        .collect();
    assert!(failing.len() >= 5, "the fixture world fails several checks");
    assert_eq!(results.len(), failing.len(), "one result per failing finding");
    for (result, finding) in results.iter().zip(&failing) {
        let rule = &rules[result["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], result["ruleId"]);
        assert_eq!(result["ruleId"], finding.check_id.as_str());
        let level = match finding.severity {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            _ => "note",
        };
        assert_eq!(result["level"], level, "{}", finding.check_id);
        assert_eq!(
            result["locations"][0]["logicalLocations"][0]["name"],
            finding.resource_id.as_str()
        );
    }
    // A rule carries its controls: the SSH check is CIS 7.0 6.3 and FSBP EC2.13.
    let ssh = rules
        .iter()
        .find(|r| r["id"] == "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22")
        .unwrap();
    let tags: Vec<&str> = ssh["properties"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        tags.contains(&"CIS-7.0/6.3") && tags.contains(&"AWS-FSBP/EC2.13"),
        "{tags:?}"
    );
    // The schema catches a level SARIF does not have.
    let mut wrong = log.clone();
    wrong["runs"][0]["results"][0]["level"] = serde_json::json!("critical");
    assert!(!validator.is_valid(&wrong));
}

fn assessed_fixture() -> WorldState {
    let mut world = fixture_world();
    world.assessment = assess(&world.inventory, PriceCatalog::built_in());
    world
}

/// The security findings (every registered check's, not the cost notices).
fn security_findings(world: &WorldState) -> Vec<&Finding> {
    world.assessment.findings.iter().filter(|f| f.is_security()).collect()
}

#[test]
fn ocsf_validates_against_the_generated_1_5_0_schema_and_fills_prowlers_fields() {
    use miyabi_aws::assessment::ocsf::ocsf;
    let path = super::support::repo_root().join("schema/external/ocsf-1.5.0-detection_finding.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the OCSF schema (draft 2020-12)");
    let world = assessed_fixture();
    let events = ocsf(&world);
    let events = events.as_array().expect("one JSON array, as Prowler's json-ocsf");
    let findings = security_findings(&world);
    assert_eq!(
        events.len(),
        findings.len(),
        "one event per finding, PASS and FAIL alike"
    );
    assert!(findings.iter().any(|f| f.status == FindingStatus::Pass));
    for (event, finding) in events.iter().zip(&findings) {
        let errors: Vec<String> = validator.iter_errors(event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", finding.check_id);
        // The fields Prowler's OCSF output fills.
        assert_eq!(event["metadata"]["event_code"], finding.check_id.as_str());
        assert_eq!(event["metadata"]["version"], "1.5.0");
        assert_eq!(event["metadata"]["profiles"], serde_json::json!(["cloud", "datetime"]));
        assert_eq!(
            event["status_code"],
            if finding.status == FindingStatus::Pass {
                "PASS"
            } else {
                "FAIL"
            }
        );
        assert_eq!(event["status_detail"], finding.message.as_str());
        assert_eq!(event["message"], finding.message.as_str());
        let severity_id = match finding.severity {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        };
        assert_eq!(event["severity_id"], severity_id);
        assert_eq!(event["time"], world.scope.captured_at.timestamp());
        assert_eq!(event["finding_info"]["analytic"]["uid"], finding.check_id.as_str());
        assert_eq!(event["resources"][0]["region"], finding.region.as_str());
        assert_eq!(event["cloud"]["account"]["uid"], "123456789012");
        for field in ["title", "desc", "types", "created_time", "uid"] {
            assert!(!event["finding_info"][field].is_null(), "finding_info.{field}");
        }
        for field in ["uid", "name", "type", "cloud_partition", "group", "labels", "data"] {
            assert!(!event["resources"][0][field].is_null(), "resources[0].{field}");
        }
        assert!(event["remediation"]["desc"].is_string() && event["risk_details"].is_string());
    }
    // The instance is named by its ARN and labelled with its tags; its IMDS check carries
    // Prowler's types and its CIS 7.0 and FSBP requirements.
    let imds = events
        .iter()
        .find(|e| e["metadata"]["event_code"] == "ec2_instance_imdsv2_enabled")
        .expect("the instance is judged");
    let resource = &imds["resources"][0];
    assert_eq!(
        resource["uid"],
        "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
    );
    assert_eq!(
        (resource["name"].as_str(), resource["type"].as_str()),
        (Some("web-1"), Some("AwsEc2Instance"))
    );
    assert!(resource["labels"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("Environment:prod")));
    assert_eq!(imds["unmapped"]["compliance"]["CIS-7.0"], serde_json::json!(["6.7"]));
    assert_eq!(
        imds["unmapped"]["compliance"]["AWS-Foundational-Security-Best-Practices"],
        serde_json::json!(["EC2.8"])
    );
    assert!(imds["finding_info"]["types"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("TTPs/Credential Access")));
    // The schema catches what OCSF does not allow.
    let mut wrong = imds.clone();
    wrong["severity_id"] = serde_json::json!(7);
    assert!(!validator.is_valid(&wrong));
    let mut wrong = imds.clone();
    wrong["cloud"].as_object_mut().unwrap().remove("provider");
    assert!(!validator.is_valid(&wrong));
}

/// Runs `scripts/validate_asff.py` (botocore's validator and the model's and documentation's
/// limits) on `findings`; returns its exit code and what it printed.
fn validate_asff(findings: &serde_json::Value) -> (i32, String) {
    let root = super::support::repo_root();
    let file = std::env::temp_dir().join(format!("miyabi-asff-{}-{}.json", std::process::id(), rand_suffix()));
    std::fs::write(&file, findings.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/validate_asff.py"))
        .arg(&file)
        .output()
        .expect("python3 (the project venv's, with botocore) runs");
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn asff_validates_against_security_hubs_batch_import_findings_shape() {
    use miyabi_aws::assessment::asff::asff;
    let mut world = assessed_fixture();
    // A message longer than Security Hub's 1,024 characters is cut to fit.
    let long = world
        .assessment
        .findings
        .iter_mut()
        .find(|f| f.check_id == "ec2_instance_imdsv2_enabled")
        .unwrap();
    long.message = "x".repeat(3000);
    let findings = asff(&world).expect("the fixture's account is known");
    let list = findings.as_array().unwrap();
    assert_eq!(list.len(), security_findings(&world).len());
    let (code, report) = validate_asff(&findings);
    assert_eq!(code, 0, "{report}");
    let imds = list
        .iter()
        .find(|f| f["GeneratorId"] == "miyabi-aws-ec2_instance_imdsv2_enabled")
        .unwrap();
    assert_eq!(imds["Description"].as_str().unwrap().len(), 1024);
    assert_eq!(imds["Compliance"]["Status"], "FAILED");
    assert_eq!(
        imds["Resources"][0]["Id"],
        "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
    );
    assert_eq!(imds["Severity"]["Label"], "HIGH");
    assert!(imds["Compliance"]["RelatedRequirements"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("CIS-7.0 6.7")));
    // The same capture gives the same ids: Security Hub updates, never duplicates.
    assert_eq!(asff(&world).unwrap(), findings);
    // What the validator catches: an enum the model lacks, a missing required member, a bad
    // account id.
    let mut wrong = findings.clone();
    wrong[0]["Severity"]["Label"] = serde_json::json!("SEVERE");
    wrong[1].as_object_mut().unwrap().remove("Title");
    wrong[2]["AwsAccountId"] = serde_json::json!("1234");
    let (code, report) = validate_asff(&wrong);
    assert_eq!(code, 1, "{report}");
    for needle in ["SEVERE", "\"Title\"", "'1234'"] {
        assert!(report.contains(needle), "{needle} in {report}");
    }
    // Without the account id there is no valid ASFF: none is made.
    world.scope.account_id = None;
    assert!(asff(&world).is_none());
}
