//! Test and demo harness for miyabi-aws. Not part of the library.
//!
//! - [`local_aws`] starts the local AWS emulators (moto for EC2/S3/RDS, ministack for CloudWatch)
//!   on free loopback ports and stops them.
//! - [`proxy`] is a recording, fault-injecting HTTP proxy in front of both, routing CloudWatch's
//!   CBOR requests to ministack and everything else to moto; [`quota`] is its AWS-like mode
//!   (AWS's latency and request-rate throttling) and [`ec2_states`] its EC2 state times;
//!   [`metric_request`] reads what a `GetMetricData` request asked for.
//! - [`seed`] fills the emulators with a deterministic demo estate; [`workload`] is the demand
//!   model its metrics come from.
//! - [`simulator`] publishes the metrics each next period of a changed estate would produce,
//!   on a simulated clock, as a [`miyabi_aws::CycleHook`].

pub mod ec2_states;
pub mod local_aws;
pub mod metric_request;
pub mod proxy;
pub mod quota;
pub mod seed;
pub mod simulator;
pub mod workload;

/// Static dummy credentials and no metadata probing: nothing may leave loopback.
pub const TEST_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

/// Sets [`TEST_ENV`] in this process, once, before any client reads the environment.
pub fn init_test_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in TEST_ENV {
            std::env::set_var(k, v);
        }
        // Endpoint variables from a developer's shell would route tests elsewhere.
        for k in [
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            "AWS_ENDPOINT_URL_EC2",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_RDS",
            "AWS_PROFILE",
        ] {
            std::env::remove_var(k);
        }
    });
}
