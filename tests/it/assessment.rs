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
        .filter(|f| f.check_id == "cost_resource_unpriced")
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
        .filter(|f| f.status == FindingStatus::Fail && f.check_id != "cost_resource_unpriced")
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
