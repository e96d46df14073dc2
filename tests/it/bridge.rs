//! The PyO3 bridge: the legacy Python discovery run from Rust in a subprocess (JSON-RPC), and
//! every way a script can misbehave turning into a typed error. Parity of the Rust θ1 with both
//! transports is tested with the in-process one, in `embed/tests/in_process.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use miyabi_aws::bridge::{
    BridgeError, PhaseConfig, PhaseTransport, PythonBridge, RpcCode, Script, SubprocessTransport,
};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::{Cycle, CycleContext, Error, StopReason};
use miyabi_aws_testkit::proxy::{Fault, FaultRule};

use crate::support::{harness, repo_root};

fn legacy_dir() -> PathBuf {
    repo_root().join("python")
}

fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/bridge").join(name)
}

fn config(region: &str) -> PhaseConfig {
    PhaseConfig {
        aws_region: region.into(),
        profile: None,
        dry_run: true,
        lookback_hours: 48,
        until: 1_700_000_000,
        endpoint_url: None,
    }
}

fn subprocess(script: Script) -> SubprocessTransport {
    SubprocessTransport::from_env(script)
        .expect("bridge settings")
        .with_python_path([legacy_dir()])
}

async fn run_fixture(name: &str) -> BridgeError {
    let transport = subprocess(Script::File(fixture(name))).with_timeout(Duration::from_secs(20));
    match transport.discover_region(&config("eu-west-1")).await {
        Ok(capture) => panic!("{name}: expected an error, got {capture:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_script_printing_garbage_gets_no_response_with_the_lines_skipped() {
    match run_fixture("garbage.py").await {
        BridgeError::NoResponse {
            skipped_lines, status, ..
        } => {
            assert_eq!(skipped_lines, 3, "two non-JSON lines and a response to another id");
            assert_eq!(status, "code 0");
        }
        other => panic!("expected NoResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn a_response_of_the_wrong_shape_names_the_path() {
    let error = run_fixture("wrong_shape.py").await;
    match &error {
        BridgeError::Shape { path, message, .. } => {
            assert_eq!(path, "output.world_state.inventory.instances[0].id");
            assert!(message.contains("invalid type"), "{message}");
        }
        other => panic!("expected Shape, got {other:?}"),
    }
    assert!(
        error.to_string().contains("wrong_shape.py"),
        "the script is named: {error}"
    );
}

#[tokio::test]
async fn a_crash_keeps_the_python_error() {
    match run_fixture("crashes.py").await {
        BridgeError::Exited {
            status,
            python_error,
            stderr,
            ..
        } => {
            assert_eq!(status, "code 1");
            assert_eq!(python_error, "RuntimeError: legacy scan exploded in eu-west-1");
            assert!(
                stderr.contains("Traceback") && stderr.contains("scan_region"),
                "{stderr}"
            );
        }
        other => panic!("expected Exited, got {other:?}"),
    }
}

#[tokio::test]
async fn a_hanging_script_is_killed_at_the_timeout_and_reaped() {
    let transport = subprocess(Script::File(fixture("hangs.py"))).with_timeout(Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let error = transport.discover_region(&config("eu-west-1")).await.unwrap_err();
    let BridgeError::Timeout { pid, after, .. } = error else {
        panic!("expected Timeout, got {error:?}")
    };
    assert_eq!(after, Duration::from_millis(1500));
    assert!(started.elapsed() < Duration::from_secs(10), "killed, not waited for");
    // Reaped: no process, zombie or otherwise, is left under that id.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty(), "process {pid} still exists: {stat}");
}

#[tokio::test]
async fn a_missing_script_module_or_interpreter_is_named() {
    let missing_file = run_fixture("no_such_script.py").await;
    assert!(
        matches!(&missing_file, BridgeError::ScriptMissing { script, .. } if script.ends_with("no_such_script.py")),
        "{missing_file:?}"
    );
    let missing_module = subprocess(Script::Module("miyabi_legacy.no_such_module".into()))
        .discover_region(&config("eu-west-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&missing_module, BridgeError::ScriptMissing { detail, .. } if detail.contains("miyabi_legacy.no_such_module")),
        "{missing_module:?}"
    );
    let no_python = subprocess(Script::legacy_rpc())
        .with_python("/nonexistent/python3")
        .discover_region(&config("eu-west-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(no_python, BridgeError::InterpreterMissing { .. }),
        "{no_python:?}"
    );
}

#[tokio::test]
async fn a_bridge_failure_stops_the_cycle_as_a_typed_error() {
    let transport = subprocess(Script::File(fixture("crashes.py")));
    let bridge = PythonBridge::new(Arc::new(transport), vec!["eu-west-1".into()]);
    let report = Cycle::new()
        .with_phase(Arc::new(bridge))
        .run(&mut CycleContext::default())
        .await;
    let phase = &report.iterations[0].phases[0];
    assert_eq!(phase.name, "discovery (python, subprocess)");
    assert!(matches!(
        report.stop,
        StopReason::PhaseFailed {
            error: Error::Bridge(BridgeError::Exited { .. }),
            ..
        }
    ));
}

#[tokio::test]
async fn aws_auth_errors_come_back_typed_and_are_fatal() {
    let h = harness("ap-southeast-1").await;
    h.proxy
        .inject(FaultRule::new("ec2", Fault::AuthError).operation("DescribeInstances"));
    let bridge = PythonBridge::new(Arc::new(subprocess(Script::legacy_rpc())), vec![h.region.into()]);
    let error = bridge
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .unwrap_err();
    let Error::Bridge(BridgeError::Remote { error, .. }) = error else {
        panic!("expected a remote error, got {error:?}")
    };
    assert_eq!(error.kind(), RpcCode::AuthError, "{error}");
    let data = error.data.expect("AWS details");
    assert_eq!(data.aws_error_code.as_deref(), Some("AuthFailure"));
    assert_eq!(data.service.as_deref(), Some("ec2"));
    assert_eq!(data.operation.as_deref(), Some("DescribeInstances"));
    assert_eq!(data.region.as_deref(), Some("ap-southeast-1"));
    assert!(!data.retryable);
}

#[tokio::test]
async fn a_dead_endpoint_makes_a_partial_capture_naming_the_region() {
    let h = harness("me-south-1").await;
    h.proxy
        .inject(FaultRule::new("rds", Fault::Drop).operation("DescribeDBInstances"));
    let bridge = PythonBridge::new(Arc::new(subprocess(Script::legacy_rpc())), vec![h.region.into()]);
    let out = bridge
        .discover(&h.session(), PriceCatalog::built_in())
        .await
        .expect("a partial capture, not an error");
    let miyabi_aws::world::Completeness::Partial { gaps } = &out.world.scope.completeness else {
        panic!("the capture must be marked partial")
    };
    assert_eq!(gaps.len(), 1);
    assert_eq!(
        (
            gaps[0].region.as_str(),
            gaps[0].service.as_str(),
            gaps[0].operation.as_str()
        ),
        ("me-south-1", "rds", "DescribeDBInstances")
    );
}
