//! The Terraform backend with the real CLI: its process handling on provider-free
//! configurations (built-in `terraform_data`, no network), and θ4's Terraform mode with the AWS
//! provider against the emulator. Skipped, saying so, without the CLI or the provider.

use std::time::Duration;

use aws_sdk_ec2::types::InstanceType;
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::guardrails::Guardrails;
use miyabi_aws::phases::deployment::terraform::{TerraformBackend, TerraformError};
use miyabi_aws::phases::deployment::{Approval, StepOutcome, TerraformMode, WaitPolicy};
use miyabi_aws::phases::{Deployment, DeploymentConfig};
use miyabi_aws::plan::execution::allocate;
use miyabi_aws_testkit::proxy::{Fault, FaultRule};

use super::deployment::resize_to_large;
use super::support::{harness, tmp_dir};

fn backend(name: &str, config: &str) -> Option<TerraformBackend> {
    let dir = tmp_dir(name);
    std::fs::write(dir.join("main.tf"), config).unwrap();
    match TerraformBackend::locate(&dir) {
        Ok(b) => Some(b.with_timeout(Duration::from_secs(120))),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_plan_apply_capture_output_and_report_changes() {
    let config = "resource \"terraform_data\" \"probe\" {\n  input = \"hello\"\n}\n\noutput \"v\" {\n  value = terraform_data.probe.output\n}\n";
    let Some(tf) = backend("tf-apply", config) else { return };
    tf.init().await.expect("init");
    let (changes, plan) = tf.plan().await.expect("plan");
    assert!(changes, "a new resource is a change (exit code 2): {}", plan.stdout);
    assert_eq!(plan.code, 2);
    let applied = tf.apply().await.expect("apply");
    assert!(applied.stdout.contains("v = \"hello\""), "{}", applied.stdout);
    let (changes, again) = tf.plan().await.expect("plan again");
    assert!(!changes, "applied: nothing left to change: {}", again.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_is_a_typed_error_with_what_terraform_said() {
    let Some(tf) = backend(
        "tf-broken",
        "resource \"terraform_data\" \"x\" {\n  input = undefined_thing\n}\n",
    ) else {
        return;
    };
    tf.init().await.expect("init reads no expressions");
    let err = tf.plan().await.unwrap_err();
    match &err {
        TerraformError::Exit {
            command,
            code,
            stderr_tail,
            ..
        } => {
            assert_eq!(command, "plan");
            assert_eq!(*code, Some(1));
            assert!(
                stderr_tail.contains("undefined_thing") || stderr_tail.contains("Invalid reference"),
                "{stderr_tail}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("tf-broken"), "the folder is named: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_over_its_limit_is_killed_and_reaped() {
    let config =
        "resource \"terraform_data\" \"slow\" {\n  provisioner \"local-exec\" {\n    command = \"sleep 60\"\n  }\n}\n";
    let Some(tf) = backend("tf-slow", config) else { return };
    tf.init().await.expect("init");
    tf.plan().await.expect("plan");
    let started = std::time::Instant::now();
    let err = tf.with_timeout(Duration::from_secs(3)).apply().await.unwrap_err();
    let TerraformError::Timeout { pid, command, .. } = err else {
        panic!("{err:?}");
    };
    assert_eq!(command, "apply");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it did not wait for the sleep"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "terraform (pid {pid}) is gone, zombie included"
    );
    // Nothing of its process group runs on (the provisioner's sleep). A killed grandchild is
    // reaped by init, so a zombie of the group may linger for a moment; a running one may not.
    let running_in_group = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter_map(|stat| stat.rsplit(')').next().map(str::to_owned))
            .any(|rest| {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                fields.get(2) == Some(&pid.to_string().as_str()) && fields.first() != Some(&"Z")
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while running_in_group() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!running_in_group(), "a process of group {pid} outlived the timeout");
}

/// A CLI configuration installing the AWS provider from a local mirror, for machines without
/// registry access: `MIYABI_TF_PROVIDER_MIRROR`, else `/opt/tf-plugins` when it holds the
/// provider. Without one, Terraform's own configuration applies.
fn provider_mirror(dir: &std::path::Path) -> Vec<(String, String)> {
    let mirror = std::env::var_os("MIYABI_TF_PROVIDER_MIRROR")
        .map(std::path::PathBuf::from)
        .or_else(|| Some("/opt/tf-plugins".into()))
        .filter(|m| m.join("registry.terraform.io/hashicorp/aws").is_dir());
    let Some(mirror) = mirror else { return Vec::new() };
    let config = dir.join("terraformrc");
    let text = format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = {:?}\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n}}\n",
        mirror.display().to_string()
    );
    std::fs::write(&config, text).expect("CLI config");
    vec![("TF_CLI_CONFIG_FILE".into(), config.display().to_string())]
}

/// θ4 in Terraform mode against the emulator, through the proxy: the AWS provider imports the
/// instance and resizes it; a failed apply is reverted and leaves the instance running with its
/// type. Skipped, saying why, without the CLI or when the AWS provider cannot be installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn theta4_resizes_through_terraform_and_reverts_a_failed_apply() {
    if let Err(e) = TerraformBackend::locate(".") {
        eprintln!("skipped: {e}");
        return;
    }
    let h = harness("ca-west-1").await;
    let ids = h.launch(InstanceType::M52xlarge, 2).await;
    let world = h
        .discovery()
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("discovery")
        .world;
    let dir = tmp_dir("tf-theta4");
    let mode = TerraformMode {
        env: provider_mirror(&dir),
        timeout: Some(Duration::from_secs(300)),
    };
    let deployment = Deployment::new(vec![h.region.to_owned()])
        .with_config(DeploymentConfig::applying(Approval::All))
        .with_wait(WaitPolicy {
            poll: Duration::from_millis(20),
            timeout: Duration::from_secs(60),
        })
        .with_terraform(mode.clone());
    let type_of = |id: String| {
        let ec2 = h.seed.ec2.clone();
        async move {
            let out = ec2
                .describe_instances()
                .instance_ids(id)
                .send()
                .await
                .expect("describe");
            let i = &out.reservations()[0].instances()[0];
            (
                i.instance_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
            )
        }
    };

    let plan = allocate(
        vec![resize_to_large(h.region, ids[0].clone())],
        &Guardrails::default(),
        |_| None,
    );
    h.proxy.reset_log();
    let report = deployment
        .deploy_with_terraform(&h.session(), &world, &plan, &mode, &dir)
        .await;
    if let StepOutcome::Failed { error } = &report.steps[0].outcome {
        if error.starts_with("init:") && mode.env.is_empty() {
            eprintln!("skipped: the AWS provider cannot be installed here ({error})");
            return;
        }
    }
    assert_eq!(report.steps[0].outcome, StepOutcome::Applied, "{report:#?}");
    assert_eq!(type_of(ids[0].clone()).await, ("m5.large".into(), "running".into()));
    let ops: Vec<String> = h.proxy.requests().iter().map(|r| r.operation.clone()).collect();
    let at = |op: &str| ops.iter().position(|o| o == op);
    assert!(
        matches!((at("StopInstances"), at("ModifyInstanceAttribute")), (Some(s), Some(m)) if s < m),
        "the provider stops before it modifies: {ops:?}"
    );
    assert!(dir.join("terraform/ec2.tf").exists());

    // The provider's modify is refused: the apply fails, θ4 reverts, the instance runs as before.
    let plan = allocate(
        vec![resize_to_large(h.region, ids[1].clone())],
        &Guardrails::default(),
        |_| None,
    );
    h.proxy.inject(
        FaultRule::new("ec2", Fault::AuthError)
            .operation("ModifyInstanceAttribute")
            .times(1),
    );
    let report = deployment
        .deploy_with_terraform(&h.session(), &world, &plan, &mode, &dir)
        .await;
    h.proxy.clear_faults();
    assert!(
        matches!(&report.steps[0].outcome, StepOutcome::RolledBack { reason } if reason.contains("apply")),
        "{report:#?}"
    );
    assert_eq!(report.failed_wave, Some(plan.steps[0].wave));
    assert_eq!(type_of(ids[1].clone()).await, ("m5.2xlarge".into(), "running".into()));
}
