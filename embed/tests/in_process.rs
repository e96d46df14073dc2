//! The in-process transport: the legacy discovery in the embedded interpreter agrees with the
//! Rust θ1 and the subprocess transport on one seeded estate, the interpreter is the one the
//! build used, and a script that misbehaves gives a typed error.

use std::path::PathBuf;
use std::sync::Arc;

use miyabi_aws::aws::{AwsOptions, AwsSession};
use miyabi_aws::bridge::{
    BridgeError, PhaseConfig, PhaseTransport, PythonBridge, RpcCode, Script, SubprocessTransport,
};
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::phases::discovery::DiscoveryOutput;
use miyabi_aws::phases::{Discovery, DiscoveryConfig};
use miyabi_aws::progress::{ProgressEvent, ProgressSink};
use miyabi_aws_embed::{embedded_interpreter, InProcessTransport};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::proxy::FaultProxy;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

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

struct Quiet;
impl ProgressSink for Quiet {
    fn report(&self, _: &ProgressEvent) {}
}

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
