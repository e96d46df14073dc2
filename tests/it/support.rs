//! Shared set-up: emulators, a proxy per test, Discovery pointed at the proxy.

use std::sync::Arc;

use miyabi_aws::assessment::{Finding, FindingStatus};
use miyabi_aws::aws::{AwsOptions, AwsSession, LimitOptions, RetryPolicy};
use miyabi_aws::phases::{Discovery, DiscoveryConfig};
use miyabi_aws::progress::{ProgressEvent, ProgressSink};
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::proxy::{FaultProxy, Recorded};
use miyabi_aws_testkit::seed::Clients;

/// Delays are scaled by this in tests: 1–16 s becomes 10–160 ms, 5 s becomes 50 ms.
pub const DELAY_SCALE: f64 = 0.01;

pub struct Harness {
    pub proxy: FaultProxy,
    /// Direct clients to the emulators, for seeding (they bypass the proxy).
    pub seed: Clients,
    pub region: &'static str,
}

pub async fn harness(region: &'static str) -> Harness {
    let endpoints = LocalAws::shared().expect("local AWS emulators (run scripts/bootstrap.sh)");
    let proxy = FaultProxy::start(&endpoints.moto, &endpoints.cloudwatch)
        .await
        .expect("proxy");
    let seed = Clients::new(&endpoints, region).await;
    Harness { proxy, seed, region }
}

/// Swallows progress; tests assert on results, not on terminal output.
pub struct Quiet;
impl ProgressSink for Quiet {
    fn report(&self, _: &ProgressEvent) {}
}

impl Harness {
    /// Launches `count` instances of `instance_type` in the test's Region; returns their ids.
    pub async fn launch(&self, instance_type: aws_sdk_ec2::types::InstanceType, count: i32) -> Vec<String> {
        let out = self
            .seed
            .ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(instance_type)
            .min_count(count)
            .max_count(count)
            .send()
            .await
            .expect("RunInstances on the emulator");
        out.instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect()
    }

    pub fn discovery(&self) -> Discovery {
        self.discovery_in(&[self.region])
    }

    pub fn discovery_in(&self, regions: &[&str]) -> Discovery {
        Discovery::new(DiscoveryConfig {
            regions: regions.iter().map(|r| (*r).to_owned()).collect(),
            ..DiscoveryConfig::default()
        })
        .with_progress(Arc::new(Quiet))
    }

    /// The AWS options of the tests: every call through the proxy, delays scaled down, and the
    /// limiter at the whole of AWS's documented quotas (the emulators have none; the limiter's
    /// own tests set their shares).
    pub fn aws_options(&self) -> AwsOptions {
        AwsOptions {
            endpoint_url: Some(self.proxy.url.clone()),
            retry: RetryPolicy::default().scaled(DELAY_SCALE),
            limits: LimitOptions {
                share: 1.0,
                ..LimitOptions::default()
            },
            ..AwsOptions::default()
        }
    }

    /// A fresh session through the proxy.
    pub fn session(&self) -> Arc<AwsSession> {
        Arc::new(AwsSession::new(self.aws_options()))
    }

    /// A cycle context over a fresh session through the proxy, quiet.
    pub fn context(&self) -> miyabi_aws::CycleContext {
        miyabi_aws::CycleContext::new(self.session()).with_progress(Arc::new(Quiet))
    }
}

/// The status of `check` on `resource`, failing the test when the check did not run on it.
pub fn status(findings: &[Finding], check: &str, resource: &str) -> FindingStatus {
    findings
        .iter()
        .find(|f| f.check_id == check && f.resource_id == resource)
        .unwrap_or_else(|| panic!("no finding {check} on {resource}"))
        .status
}

/// The checkout under test. Read at run time: a target folder shared between checkouts may hold
/// a test binary compiled in another one.
pub fn repo_root() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

pub fn tmp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("miyabi-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Asserts that each of `checks` fails on `failing` and passes on `passing`.
pub fn assert_fail_and_pass(findings: &[Finding], checks: &[&str], failing: &str, passing: &str) {
    for check in checks {
        assert_eq!(
            status(findings, check, failing),
            FindingStatus::Fail,
            "{check} on {failing}"
        );
        assert_eq!(
            status(findings, check, passing),
            FindingStatus::Pass,
            "{check} on {passing}"
        );
    }
}

/// The operations among `requests` that may change something: all but Describe, List, Get and
/// Head.
pub fn mutating(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.operation.clone())
        .filter(|op| !["Describe", "List", "Get", "Head"].iter().any(|p| op.starts_with(p)))
        .collect()
}
