//! The PyO3 bridge: the legacy Python discovery run from Rust, in a subprocess (JSON-RPC) and
//! in process (feature `python`). Parity with the Rust θ1 on one seeded estate, and every way a
//! script can misbehave turning into a typed error.

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

#[cfg(feature = "python")]
mod in_process {
    use miyabi_aws::aws::{AwsOptions, AwsSession};
    use miyabi_aws::bridge::{embedded_interpreter, InProcessTransport};
    use miyabi_aws::phases::discovery::DiscoveryOutput;
    use miyabi_aws::phases::{Discovery, DiscoveryConfig};
    use miyabi_aws_testkit::local_aws::LocalAws;
    use miyabi_aws_testkit::proxy::FaultProxy;
    use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};

    use super::*;
    use crate::support::Quiet;

    /// Rust θ1, the in-process bridge and the subprocess bridge over one seeded estate (on
    /// emulators of its own, so that no other test's buckets come and go in between) give the
    /// same inventory and the same assessment. Only the capture time may differ. The estate is
    /// large enough for several `GetMetricData` batches per Region (over 300 series of a 14-day
    /// window), with several buckets per Region, whose daily size series share a batch with
    /// nothing hourly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rust_in_process_and_subprocess_discovery_agree() {
        let local = tokio::task::spawn_blocking(LocalAws::start)
            .await
            .expect("start thread")
            .expect("local AWS emulators (run scripts/bootstrap.sh)");
        let endpoints = local.endpoints();
        let spec = DemoSpec {
            seed: 7,
            instances: 140,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            hours: 48,
        };
        let seeded = seed_demo(&endpoints, &spec).await.expect("seeding");
        let proxy = FaultProxy::start(&endpoints.moto, &endpoints.cloudwatch)
            .await
            .expect("proxy");
        let until = chrono::Utc::now();
        let catalog = PriceCatalog::built_in();

        let aws = AwsSession::new(AwsOptions {
            endpoint_url: Some(proxy.url.clone()),
            ..AwsOptions::default()
        });
        let lookback_hours = 14 * 24;
        let rust = Discovery::new(DiscoveryConfig {
            regions: spec.regions.clone(),
            lookback_hours,
            until: Some(until),
            ..DiscoveryConfig::default()
        })
        .with_progress(Arc::new(Quiet))
        .discover(&aws, catalog)
        .await
        .expect("Rust discovery");
        let metric_calls = aws.stats().per_operation()[&("cloudwatch".to_owned(), "GetMetricData".to_owned())];
        assert!(
            metric_calls >= 2 * 3,
            "the estate needs several batches per Region: {metric_calls} GetMetricData calls"
        );
        let bridge = |transport: Arc<dyn PhaseTransport>| {
            PythonBridge::new(transport, spec.regions.clone())
                .with_lookback_hours(lookback_hours)
                .with_until(Some(until))
        };
        let in_process = bridge(Arc::new(
            InProcessTransport::legacy_discovery().with_python_path([legacy_dir()]),
        ))
        .discover(&aws, catalog)
        .await
        .expect("in-process bridge");
        let subprocess = bridge(Arc::new(subprocess(Script::legacy_rpc())))
            .discover(&aws, catalog)
            .await
            .expect("subprocess bridge");

        let inv = &rust.world.inventory;
        assert!(
            rust.world.scope.completeness.is_complete(),
            "{:?}",
            rust.world.scope.completeness
        );
        assert_eq!(inv.instances.len(), seeded.instances.len());
        assert_eq!(inv.db_instances.len(), seeded.db_instances.len());
        assert_eq!(inv.buckets.len(), seeded.buckets.len());
        assert!(inv.metrics.len() > 3 * seeded.instances.len(), "series came back");
        for (name, other) in [("in-process", &in_process), ("subprocess", &subprocess)] {
            assert_same_capture(name, &rust, other);
        }
    }

    fn assert_same_capture(name: &str, rust: &DiscoveryOutput, python: &DiscoveryOutput) {
        let (a, b) = (&rust.world, &python.world);
        assert_eq!(a.scope.account_id, b.scope.account_id, "{name}: account");
        assert_eq!(a.scope.regions, b.scope.regions, "{name}: regions");
        assert_eq!(a.scope.lookback_hours, b.scope.lookback_hours, "{name}: lookback");
        assert_eq!(a.scope.completeness, b.scope.completeness, "{name}: completeness");
        let (x, y) = (&a.inventory, &b.inventory);
        assert_eq!(x.instances, y.instances, "{name}: instances");
        assert_eq!(x.volumes, y.volumes, "{name}: volumes");
        assert_eq!(x.addresses, y.addresses, "{name}: addresses");
        assert_eq!(x.security_groups, y.security_groups, "{name}: security groups");
        assert_eq!(x.buckets, y.buckets, "{name}: buckets");
        assert_eq!(x.db_instances, y.db_instances, "{name}: DB instances");
        assert_eq!(x.network_interfaces, y.network_interfaces, "{name}: network interfaces");
        assert_eq!(x.network_acls, y.network_acls, "{name}: network ACLs");
        assert_eq!(x.subnets, y.subnets, "{name}: subnets");
        assert_eq!(x.snapshots, y.snapshots, "{name}: snapshots");
        assert_eq!(x.region_settings, y.region_settings, "{name}: Region settings");
        assert_eq!(x.db_clusters, y.db_clusters, "{name}: DB clusters");
        assert_eq!(x.db_snapshots, y.db_snapshots, "{name}: DB snapshots");
        assert_eq!(x.metrics.len(), y.metrics.len(), "{name}: number of series");
        for (m, n) in x.metrics.iter().zip(&y.metrics) {
            assert_eq!(m, n, "{name}: series {} {}", m.resource_id, m.metric_name);
        }
        assert_eq!(a.assessment, b.assessment, "{name}: assessment");
    }

    fn transport(function: &str) -> InProcessTransport {
        InProcessTransport::legacy_discovery()
            .with_function("in_process", function)
            .with_python_path([legacy_dir(), fixture("")])
    }

    #[test]
    fn the_embedded_interpreter_is_the_one_the_build_used() {
        let embedded = embedded_interpreter().expect("embedded interpreter");
        let built = std::process::Command::new(embedded.build_python)
            .args(["-c", "import sys; print(sys.version)"])
            .output()
            .expect("the build's interpreter runs");
        assert_eq!(embedded.version, String::from_utf8_lossy(&built.stdout).trim());
        let libpython = embedded.libpython.expect("libpython mapped into the process");
        assert!(
            libpython.starts_with(embedded.build_libdir),
            "{} is not under the build interpreter's LIBDIR {}",
            libpython.display(),
            embedded.build_libdir
        );
    }

    #[tokio::test]
    async fn wrong_shapes_and_exceptions_are_typed() {
        let error = transport("wrong_shape")
            .discover_region(&config("eu-west-1"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, BridgeError::Shape { path, .. } if path == "[0].instances[0].id"),
            "{error:?}"
        );
        let error = transport("not_a_pair")
            .discover_region(&config("eu-west-1"))
            .await
            .unwrap_err();
        assert!(matches!(error, BridgeError::Shape { .. }), "{error:?}");
        let error = transport("raises")
            .discover_region(&config("eu-west-1"))
            .await
            .unwrap_err();
        let BridgeError::Remote { error, .. } = error else {
            panic!("expected a remote error, got {error:?}")
        };
        assert_eq!(error.kind(), RpcCode::InternalError);
        assert!(
            error.message.contains("KeyError") && error.message.contains("eu-west-1"),
            "{error}"
        );
        assert!(error
            .data
            .and_then(|d| d.traceback)
            .is_some_and(|t| t.contains("in raises")));
    }

    #[tokio::test]
    async fn a_missing_module_is_named() {
        let error = InProcessTransport::legacy_discovery()
            .with_function("no_such_legacy_module", "discover")
            .discover_region(&config("eu-west-1"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, BridgeError::ScriptMissing { script, .. } if script == "no_such_legacy_module"),
            "{error:?}"
        );
    }
}
