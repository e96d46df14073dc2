//! One account's access to AWS, shared by every phase of a cycle and across cycles.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use aws_credential_types::provider::SharedCredentialsProvider;

use super::assume::{AssumedRole, AssumedRoleProvider};
use super::limit::Limiter;
use super::retry::{CallLayer, SessionShared};
use super::{explicit_endpoint, load_sdk_config, AwsError, AwsOptions, CallStats, Layered, RegionClients};

/// One account's credentials (through the standard chain and [`AwsOptions`]), its clients per
/// Region, built once and reused, the request-rate [`Limiter`] every call waits for, and the
/// statistics of every call made through them.
///
/// A process keeps one session per account; every phase of a cycle uses the cycle context's.
/// The account id is learned from the first answer that names it (θ1's scans), given up
/// front, or read from the role the session assumes ([`AwsOptions::assume_role`]); from then on
/// every [`AwsError`] names it.
#[derive(Debug)]
pub struct AwsSession {
    options: AwsOptions,
    shared: SessionShared,
    clients: tokio::sync::Mutex<BTreeMap<String, RegionClients>>,
    /// The assumed role's credentials, shared by every Region's clients.
    assumed: tokio::sync::OnceCell<Arc<AssumedRole>>,
}

impl Default for AwsSession {
    fn default() -> Self {
        Self::new(AwsOptions::default())
    }
}

impl AwsSession {
    /// A session with `options`; no client is built until a Region is asked for.
    #[must_use]
    pub fn new(options: AwsOptions) -> Self {
        let shared = SessionShared {
            limiter: Arc::new(Limiter::new(options.limits.clone())),
            stats: Arc::new(CallStats::default()),
            account: Arc::new(OnceLock::new()),
        };
        let account = options.assume_role.as_ref().and_then(|r| r.account().ok());
        if let Some(account) = account {
            let _ = shared.account.set(account.to_owned());
        }
        Self {
            options,
            shared,
            clients: tokio::sync::Mutex::new(BTreeMap::new()),
            assumed: tokio::sync::OnceCell::new(),
        }
    }

    /// The same session, for an account whose id is known up front.
    #[must_use]
    pub fn with_account(self, account_id: impl Into<String>) -> Self {
        self.learn_account(&account_id.into());
        self
    }

    /// How AWS is reached: profile, endpoint, retry, timeouts.
    #[must_use]
    pub fn options(&self) -> &AwsOptions {
        &self.options
    }

    /// Every call made through this session's clients, per service and operation.
    #[must_use]
    pub fn stats(&self) -> &Arc<CallStats> {
        &self.shared.stats
    }

    /// The request-rate limiter every call of the session waits for.
    #[must_use]
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.shared.limiter
    }

    /// The account id, once known.
    #[must_use]
    pub fn account(&self) -> Option<&str> {
        self.shared.account.get().map(String::as_str)
    }

    /// Records the account id an answer named; the first one known stays.
    pub fn learn_account(&self, account_id: &str) {
        if !account_id.is_empty() {
            let _ = self.shared.account.set(account_id.to_owned());
        }
    }

    /// The clients of `region`, built on first use.
    pub async fn clients(&self, region: &str) -> RegionClients {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(region) {
            return c.clone();
        }
        let mut sdk = load_sdk_config(region, &self.options).await;
        if let Some(role) = self.assumed_role(region, &sdk).await {
            // The role's credentials are cached by `AssumedRole`, once for every Region.
            sdk = sdk
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(AssumedRoleProvider(role)))
                .identity_cache(aws_config::identity::IdentityCache::no_cache())
                .build();
        }
        let c = RegionClients::from_sdk_config(region, &sdk, &self.options, &self.shared);
        clients.insert(region.to_owned(), c.clone());
        c
    }

    /// The role of [`AwsOptions::assume_role`], assumed with the caller's credentials (`base`,
    /// loaded for `region`, the Region of the first client asked for).
    async fn assumed_role(&self, region: &str, base: &aws_config::SdkConfig) -> Option<Arc<AssumedRole>> {
        let role = self.options.assume_role.as_ref()?;
        let role = self
            .assumed
            .get_or_init(|| async {
                let mut builder = aws_sdk_sts::config::Builder::from(base);
                if let Some(url) = explicit_endpoint(&self.options, "STS") {
                    builder = builder.endpoint_url(url);
                }
                let sts = Layered {
                    client: aws_sdk_sts::Client::from_conf(builder.build()),
                    layer: CallLayer::new("sts", region, Arc::new(self.options.retry.clone()), self.shared.clone()),
                };
                Arc::new(AssumedRole::new(role.clone(), sts))
            })
            .await;
        Some(Arc::clone(role))
    }

    /// Checks the session's credentials with one STS call (`AssumeRole` for a session that
    /// assumes a role, else `GetCallerIdentity`) and returns the account they act in. A fleet
    /// run calls it first, so that a role that cannot be assumed is one typed error naming its
    /// account rather than a failure of every later call.
    ///
    /// # Errors
    /// The STS call's [`AwsError`].
    pub async fn verify(&self, region: &str) -> Result<String, AwsError> {
        let clients = self.clients(region).await;
        if let Some(role) = self.assumed.get() {
            role.credentials().await?;
            if let Some(account) = self.account() {
                return Ok(account.to_owned());
            }
        }
        let sts = &clients.sts;
        let me = sts
            .layer
            .call("GetCallerIdentity", || sts.client.get_caller_identity().send())
            .await?;
        let account = me
            .account()
            .ok_or_else(|| sts.layer.unreadable("GetCallerIdentity", "the answer names no account"))?;
        self.learn_account(account);
        Ok(account.to_owned())
    }

    /// The Region of the standard configuration (`AWS_REGION`, the profile), if any.
    pub async fn default_region(&self) -> Option<String> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = &self.options.profile {
            loader = loader.profile_name(profile);
        }
        loader.load().await.region().map(ToString::to_string)
    }
}
