//! The Terraform backend's process handling with the real CLI, on provider-free configurations
//! (built-in `terraform_data`), so it needs no network. Skipped, saying so, without the CLI.

use std::time::Duration;

use miyabi_aws::phases::deployment::terraform::{TerraformBackend, TerraformError};

use super::support::tmp_dir;

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
