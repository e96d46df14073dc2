//! The fleet's deployment as shipped in `deploy/`: the CloudFormation template and the
//! Terraform module read back and checked for the same content, `cfn-lint`, `terraform
//! validate` where the CLI exists.

use std::collections::BTreeSet;
use std::process::Command;

use hcl::{Block, Body, Expression};
use serde_json::Value;

use super::support::repo_root;

fn template() -> Value {
    let path = repo_root().join("deploy/cloudformation/fleet.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the template")).expect("JSON")
}

fn module() -> Body {
    let dir = repo_root().join("deploy/terraform/fleet");
    let mut text = String::new();
    for file in ["main.tf", "variables.tf", "outputs.tf", "versions.tf"] {
        text += &std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        text.push('\n');
    }
    hcl::from_str(&text).expect("the module parses as HCL")
}

/// The block `kind "type" "name"` of the module.
fn block<'a>(body: &'a Body, kind: &str, labels: &[&str]) -> &'a Block {
    body.blocks()
        .find(|b| {
            b.identifier() == kind
                && b.labels()
                    .iter()
                    .map(hcl::BlockLabel::as_str)
                    .eq(labels.iter().copied())
        })
        .unwrap_or_else(|| panic!("no {kind} {labels:?}"))
}

fn text(block: &Block) -> String {
    hcl::format::to_string(block).expect("formats")
}

fn default_of(body: &Body, variable: &str) -> String {
    let b = block(body, "variable", &[variable]);
    let expr = b
        .body()
        .attributes()
        .find(|a| a.key() == "default")
        .map(|a| a.expr().clone())
        .unwrap_or(Expression::Null);
    hcl::format::to_string(&expr).expect("formats")
}

/// Every IAM action of a policy document's statements.
fn actions(document: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for statement in document["Statement"].as_array().expect("statements") {
        match &statement["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(list) => out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned)),
            other => panic!("an Action {other}"),
        }
    }
    out
}

/// What the task role may do, and nothing more.
const TASK_ACTIONS: [&str; 8] = [
    "s3:DeleteObject",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:PutObject",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
];

#[test]
fn the_template_has_the_dead_letter_queue_visibility_scaling_and_a_narrow_task_role() {
    let t = template();
    let r = &t["Resources"];
    let queue = &r["RequestQueue"]["Properties"];
    assert_eq!(queue["RedrivePolicy"]["maxReceiveCount"], 3);
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"],
        serde_json::json!(["DeadLetterQueue", "Arn"])
    );
    assert_eq!(queue["VisibilityTimeout"]["Ref"], "VisibilityTimeout");
    assert_eq!(t["Parameters"]["VisibilityTimeout"]["Default"], 3600);

    let scaling = &r["BacklogPerTaskScaling"]["Properties"];
    assert_eq!(scaling["PolicyType"], "TargetTrackingScaling");
    let metrics = scaling["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
        .as_array()
        .expect("metric math");
    let returned: Vec<&Value> = metrics.iter().filter(|m| m["ReturnData"] == true).collect();
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0]["Expression"], "visible / IF(tasks > 0, tasks, 1)");
    let names: BTreeSet<&str> = metrics
        .iter()
        .filter_map(|m| m["MetricStat"]["Metric"]["MetricName"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["ApproximateNumberOfMessagesVisible", "RunningTaskCount"])
    );
    let target = &r["ScalableTarget"]["Properties"];
    assert_eq!(target["MinCapacity"], 1);
    assert_eq!(target["MaxCapacity"]["Ref"], "MaxTasks");
    assert_eq!(t["Parameters"]["MaxTasks"]["Default"], 500);

    let policies = r["TaskRole"]["Properties"]["Policies"].as_array().expect("policies");
    let mut granted = BTreeSet::new();
    for p in policies {
        granted.extend(actions(&p["PolicyDocument"]));
    }
    let assume: Vec<&Value> = policies[0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"] == "sts:AssumeRole")
        .collect();
    assert_eq!(assume.len(), 1);
    assert_eq!(assume[0]["Resource"]["Ref"], "TenantRoleArns", "only the tenant roles");
    granted.remove("sts:AssumeRole");
    assert_eq!(
        granted,
        TASK_ACTIONS.iter().map(|a| (*a).to_owned()).collect::<BTreeSet<_>>()
    );
    assert!(r["TaskRole"]["Properties"].get("ManagedPolicyArns").is_none());

    let container = &r["TaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    assert_eq!(
        container["StopTimeout"], 120,
        "Fargate's limit between SIGTERM and SIGKILL"
    );
    assert_eq!(container["Command"][0], "worker");
    assert_eq!(r["RequestRule"]["Properties"]["Targets"][0]["InputPath"], "$.detail");
    assert!(r["RequestSchedule"]["Properties"]["Target"]["Input"]["Ref"] == "ScheduledRequest");
}

#[test]
fn the_terraform_module_makes_the_same_fleet() {
    let m = module();
    let queue = text(block(&m, "resource", &["aws_sqs_queue", "requests"]));
    assert!(queue.contains("maxReceiveCount = 3"), "{queue}");
    assert!(
        queue.contains("deadLetterTargetArn = aws_sqs_queue.dead_letter.arn"),
        "{queue}"
    );
    assert!(
        queue.contains("visibility_timeout_seconds = var.visibility_timeout"),
        "{queue}"
    );
    assert_eq!(default_of(&m, "visibility_timeout"), "3600");
    assert_eq!(default_of(&m, "max_tasks"), "500");

    let policy = text(block(
        &m,
        "resource",
        &["aws_appautoscaling_policy", "backlog_per_task"],
    ));
    assert!(policy.contains("policy_type = \"TargetTrackingScaling\""), "{policy}");
    assert!(policy.contains("\"visible / IF(tasks > 0, tasks, 1)\""), "{policy}");
    for metric in ["ApproximateNumberOfMessagesVisible", "RunningTaskCount"] {
        assert!(policy.contains(metric), "{metric}");
    }
    let target = text(block(&m, "resource", &["aws_appautoscaling_target", "worker"]));
    assert!(target.contains("min_capacity = 1") && target.contains("max_capacity = var.max_tasks"));

    let role = text(block(&m, "resource", &["aws_iam_role_policy", "task"]));
    let mut granted: BTreeSet<String> = BTreeSet::new();
    for action in TASK_ACTIONS.iter().chain(&["sts:AssumeRole"]) {
        assert!(role.contains(&format!("\"{action}\"")), "{action} in {role}");
    }
    // Every quoted service:Action in the policy is one of the template's.
    for token in role
        .split('"')
        .filter(|t| t.starts_with("s3:") || t.starts_with("sqs:") || t.starts_with("sts:"))
    {
        granted.insert(token.to_owned());
    }
    let mut want: BTreeSet<String> = TASK_ACTIONS.iter().map(|a| (*a).to_owned()).collect();
    want.insert("sts:AssumeRole".into());
    assert_eq!(granted, want);
    assert!(role.contains("Resource = var.tenant_role_arns"), "{role}");

    let task = text(block(&m, "resource", &["aws_ecs_task_definition", "worker"]));
    assert!(
        task.contains("stopTimeout = 120") && task.contains("\"worker\""),
        "{task}"
    );
    let target = text(block(&m, "resource", &["aws_cloudwatch_event_target", "requests"]));
    assert!(target.contains("input_path = \"$.detail\""));
}

#[test]
fn cfn_lint_passes_on_the_fleet_template() {
    let path = repo_root().join("deploy/cloudformation/fleet.json");
    let out = Command::new("cfn-lint")
        .arg(&path)
        .output()
        .expect("cfn-lint runs (scripts/bootstrap.sh)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn terraform_validates_the_fleet_module_where_the_cli_exists() {
    let Ok(version) = Command::new("terraform").arg("version").output() else {
        eprintln!("SKIPPED: the terraform CLI is not installed here; the module is checked by parsing instead");
        return;
    };
    assert!(version.status.success());
    let dir = repo_root().join("deploy/terraform/fleet");
    let fmt = Command::new("terraform")
        .args(["fmt", "-check", "-diff"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(fmt.status.success(), "{}", String::from_utf8_lossy(&fmt.stdout));
    let init = Command::new("terraform")
        .args(["init", "-backend=false", "-input=false"])
        .current_dir(&dir)
        .output()
        .unwrap();
    if !init.status.success() {
        eprintln!("SKIPPED: terraform init could not fetch the AWS provider here; fmt passed");
        return;
    }
    let validate = Command::new("terraform")
        .arg("validate")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stdout)
    );
}
