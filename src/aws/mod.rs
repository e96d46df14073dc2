//! Access to AWS: one [`AwsSession`] per account (its per-Region clients and call statistics),
//! configuration from the standard chain, the retry layer, and typed errors.
//!
//! Credentials, Region defaults, profiles and endpoints come from `aws-config`'s standard chain
//! (environment, shared config and credentials files, SSO, web identity, ECS and EC2 metadata).
//! The standard endpoint variables apply, per-service ones included
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_CLOUDWATCH`, …). An explicit
//! [`AwsOptions::endpoint_url`] replaces the global `AWS_ENDPOINT_URL` but never a per-service
//! variable.

mod assume;
mod error;
mod limit;
pub mod metrics;
pub mod quota;
mod retry;
mod session;
pub mod wait;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

pub use assume::{AssumeRole, RoleArnError};
pub use error::{AwsError, ClientFault, Fault, ServiceFault};
pub use limit::{LimitOptions, Limiter, LimiterCounts, QuotaFileError};
pub use quota::{Quota, QuotaTable};
use retry::SessionShared;
pub use retry::{CallLayer, CallStats, RetryPolicy};
pub use session::AwsSession;
pub use wait::WaitPolicy;

/// How to reach AWS.
#[derive(Debug, Clone)]
pub struct AwsOptions {
    /// Named profile from the shared config files; `None` follows `AWS_PROFILE` or `default`.
    pub profile: Option<String>,
    /// Endpoint for every service that has no per-service endpoint variable.
    pub endpoint_url: Option<String>,
    /// A role to act as in every call (its account is the session's); `None` acts with the
    /// credentials of the standard chain.
    pub assume_role: Option<AssumeRole>,
    /// The retry policy (the SDK's own retry is off).
    pub retry: RetryPolicy,
    /// The share of AWS's request quotas the session spends.
    pub limits: LimitOptions,
    /// Time limit for one attempt of one call.
    pub attempt_timeout: Duration,
    /// Time limit for opening a connection.
    pub connect_timeout: Duration,
}

impl Default for AwsOptions {
    fn default() -> Self {
        Self {
            profile: None,
            endpoint_url: None,
            assume_role: None,
            retry: RetryPolicy::default(),
            limits: LimitOptions::default(),
            attempt_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// One service client behind its [`CallLayer`].
#[derive(Debug, Clone)]
pub struct Layered<C> {
    /// The SDK client.
    pub client: C,
    /// The layer its calls go through.
    pub layer: CallLayer,
}

/// The SDK clients of one Region, each behind the call layer (limiter and retry).
#[derive(Debug, Clone)]
pub struct RegionClients {
    /// The Region.
    pub region: String,
    /// EC2 (instances, volumes, addresses, security groups).
    pub ec2: Layered<aws_sdk_ec2::Client>,
    /// S3.
    pub s3: Layered<aws_sdk_s3::Client>,
    /// RDS.
    pub rds: Layered<aws_sdk_rds::Client>,
    /// CloudWatch.
    pub cloudwatch: Layered<aws_sdk_cloudwatch::Client>,
    /// STS (the caller's identity).
    pub sts: Layered<aws_sdk_sts::Client>,
    /// SQS (the fleet's request queue).
    pub sqs: Layered<aws_sdk_sqs::Client>,
    /// Organizations (the accounts of an organization, from its management account).
    pub organizations: Layered<aws_sdk_organizations::Client>,
}

/// Loads the shared SDK configuration for `region` from the standard chain, with the SDK's
/// retry switched off so that [`RetryPolicy`] is the only one.
pub async fn load_sdk_config(region: &str, options: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(options.connect_timeout)
                .operation_attempt_timeout(options.attempt_timeout)
                .build(),
        );
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// The explicit endpoint for a service, unless a per-service variable names one (it wins).
fn explicit_endpoint(options: &AwsOptions, env_suffix: &str) -> Option<String> {
    explicit_endpoint_with(options, env_suffix, |name| std::env::var(name).ok())
}

fn explicit_endpoint_with(
    options: &AwsOptions,
    env_suffix: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    match env(&format!("AWS_ENDPOINT_URL_{env_suffix}")) {
        Some(v) if !v.is_empty() => None,
        _ => options.endpoint_url.clone(),
    }
}

impl RegionClients {
    /// Builds the clients of one Region from a loaded configuration; their calls wait for
    /// `limiter`, count into `stats`, and their errors name the account once `account` is known.
    pub(crate) fn from_sdk_config(region: &str, sdk: &SdkConfig, options: &AwsOptions, shared: &SessionShared) -> Self {
        let policy = Arc::new(options.retry.clone());
        let layer = |service| CallLayer::new(service, region, policy.clone(), shared.clone());
        // One service's client, with the explicit endpoint unless its own variable names one,
        // behind its call layer.
        macro_rules! layered {
            ($sdk_crate:ident, $env:literal, $service:literal) => {
                layered!($sdk_crate, $env, $service, std::convert::identity)
            };
            ($sdk_crate:ident, $env:literal, $service:literal, $extra:expr) => {{
                let mut builder = $sdk_crate::config::Builder::from(sdk);
                if let Some(url) = explicit_endpoint(options, $env) {
                    builder = builder.endpoint_url(url);
                }
                #[allow(clippy::redundant_closure_call)]
                let builder = ($extra)(builder);
                Layered {
                    client: $sdk_crate::Client::from_conf(builder.build()),
                    layer: layer($service),
                }
            }};
        }
        Self {
            region: region.to_owned(),
            ec2: layered!(aws_sdk_ec2, "EC2", "ec2"),
            // Path-style addressing works with every endpoint, local emulators included.
            s3: layered!(aws_sdk_s3, "S3", "s3", |b: aws_sdk_s3::config::Builder| b
                .force_path_style(true)),
            rds: layered!(aws_sdk_rds, "RDS", "rds"),
            cloudwatch: layered!(aws_sdk_cloudwatch, "CLOUDWATCH", "cloudwatch"),
            sts: layered!(aws_sdk_sts, "STS", "sts"),
            sqs: layered!(aws_sdk_sqs, "SQS", "sqs"),
            organizations: layered!(aws_sdk_organizations, "ORGANIZATIONS", "organizations"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_endpoint_never_overrides_a_per_service_variable() {
        let options = AwsOptions {
            endpoint_url: Some("http://explicit".into()),
            ..AwsOptions::default()
        };
        let env = |name: &str| (name == "AWS_ENDPOINT_URL_CLOUDWATCH").then(|| "http://per-service".to_owned());
        // CloudWatch keeps its per-service endpoint (the SDK reads the variable itself) ...
        assert_eq!(explicit_endpoint_with(&options, "CLOUDWATCH", env), None);
        // ... while every other service takes the explicit one.
        assert_eq!(
            explicit_endpoint_with(&options, "EC2", env),
            Some("http://explicit".into())
        );
        // An empty variable counts as unset.
        assert_eq!(
            explicit_endpoint_with(&options, "S3", |_| Some(String::new())),
            Some("http://explicit".into())
        );
        let none = AwsOptions::default();
        assert_eq!(explicit_endpoint_with(&none, "EC2", |_| None), None);
    }
}
