//! One account's access to AWS, shared by every phase of a cycle and across cycles.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::limit::Limiter;
use super::retry::SessionShared;
use super::{load_sdk_config, AwsOptions, CallStats, RegionClients};

/// One account's credentials (through the standard chain and [`AwsOptions`]), its clients per
/// Region, built once and reused, the request-rate [`Limiter`] every call waits for, and the
/// statistics of every call made through them.
///
/// A process keeps one session per account; every phase of a cycle uses the cycle context's.
/// The account id is learned from the first answer that names it (θ1's scans) or given up
/// front, and from then on every [`AwsError`](super::AwsError) names it.
#[derive(Debug)]
pub struct AwsSession {
    options: AwsOptions,
    shared: SessionShared,
    clients: tokio::sync::Mutex<BTreeMap<String, RegionClients>>,
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
        Self {
            options,
            shared,
            clients: tokio::sync::Mutex::new(BTreeMap::new()),
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
        let sdk = load_sdk_config(region, &self.options).await;
        let c = RegionClients::from_sdk_config(region, &sdk, &self.options, &self.shared);
        clients.insert(region.to_owned(), c.clone());
        c
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
