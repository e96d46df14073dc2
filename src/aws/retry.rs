//! The retry policy of the Miyabi plan, applied as one layer around every AWS call.
//!
//! The SDK's own retry is switched off ([`aws_config::retry::RetryConfig::disabled`]) when
//! clients are built, so this is the only policy that applies:
//!
//! | error | retries | delay |
//! |---|---|---|
//! | throttling (`RequestLimitExceeded`, `SlowDown`, `Throttling`, HTTP 429, …) | 5 | 1, 2, 4, 8, 16 s |
//! | timeout, dropped connection, HTTP 500/502/503/504 | 3 | fixed 5 s |
//! | auth or permission errors, anything else | 0 | — |

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, Fault, RetryClass};
use super::limit::Limiter;

/// Retry counts and delays. Tests shrink the delays with [`RetryPolicy::scaled`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after throttling.
    pub throttle_retries: u32,
    /// First throttling delay; it doubles each retry.
    pub throttle_base_delay: Duration,
    /// Cap on the throttling delay.
    pub throttle_max_delay: Duration,
    /// Retries after a timeout or a transient failure.
    pub transient_retries: u32,
    /// Fixed delay before each transient retry.
    pub transient_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            throttle_retries: 5,
            throttle_base_delay: Duration::from_secs(1),
            throttle_max_delay: Duration::from_secs(16),
            transient_retries: 3,
            transient_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The same policy with every delay multiplied by `factor` (for tests: `0.01` turns
    /// 1–16 s into 10–160 ms).
    #[must_use]
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            throttle_base_delay: self.throttle_base_delay.mul_f64(factor),
            throttle_max_delay: self.throttle_max_delay.mul_f64(factor),
            transient_delay: self.transient_delay.mul_f64(factor),
            ..self.clone()
        }
    }

    /// The delay before retry number `retry` (1-based) after an error of `class`, or `None` when
    /// the policy gives up.
    pub(crate) fn delay(&self, class: RetryClass, retry: u32) -> Option<Duration> {
        match class {
            RetryClass::Throttle if (1..=self.throttle_retries).contains(&retry) => {
                let factor = 2u32.saturating_pow(retry - 1);
                Some(
                    self.throttle_base_delay
                        .saturating_mul(factor)
                        .min(self.throttle_max_delay),
                )
            }
            RetryClass::Transient if (1..=self.transient_retries).contains(&retry) => Some(self.transient_delay),
            _ => None,
        }
    }
}

/// Counts of API requests sent, per service and operation (retries included).
#[derive(Debug, Default)]
pub struct CallStats {
    counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl CallStats {
    fn record(&self, service: &str, operation: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((service.to_owned(), operation.to_owned())).or_default() += 1;
        }
    }

    /// Requests per service.
    #[must_use]
    pub fn per_service(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        if let Ok(counts) = self.counts.lock() {
            for ((service, _), n) in counts.iter() {
                *out.entry(service.clone()).or_default() += n;
            }
        }
        out
    }

    /// Requests per (service, operation).
    #[must_use]
    pub fn per_operation(&self) -> BTreeMap<(String, String), u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// What every call layer of one session shares: the limiter, the call counts, and the account
/// id once known.
#[derive(Debug, Clone)]
pub(crate) struct SessionShared {
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) stats: Arc<CallStats>,
    pub(crate) account: Arc<OnceLock<String>>,
}

/// The layer every SDK call of one service client in one Region goes through: before each
/// attempt it waits for the session's [`Limiter`], then counts the request, applies the
/// [`RetryPolicy`] (reporting throttles back to the limiter), and turns the final failure into a
/// typed [`AwsError`].
#[derive(Debug, Clone)]
pub struct CallLayer {
    service: &'static str,
    region: String,
    policy: Arc<RetryPolicy>,
    shared: SessionShared,
}

impl CallLayer {
    pub(crate) fn new(service: &'static str, region: &str, policy: Arc<RetryPolicy>, shared: SessionShared) -> Self {
        Self {
            service,
            region: region.to_owned(),
            policy,
            shared,
        }
    }

    /// The Region of the client behind this layer.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Sends a request built by `send`, retrying per policy.
    ///
    /// # Errors
    /// The typed error of the last attempt.
    pub async fn call<T, E, F, Fut>(&self, operation: &'static str, mut send: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempts = 0u32;
        // Each class spends its own budget: throttling then a timeout is 1 + 1, not 2 of one.
        let (mut throttle_retries, mut transient_retries) = (0u32, 0u32);
        loop {
            attempts += 1;
            self.shared.limiter.acquire(self.service, &self.region, operation).await;
            self.shared.stats.record(self.service, operation);
            let err = match send().await {
                Ok(out) => return Ok(out),
                Err(err) => err,
            };
            let fault = Fault::from_sdk(&err);
            let class = fault.retry_class();
            let retry = match class {
                RetryClass::Throttle => {
                    self.shared.limiter.throttled(self.service, &self.region, operation);
                    throttle_retries += 1;
                    throttle_retries
                }
                RetryClass::Transient => {
                    transient_retries += 1;
                    transient_retries
                }
                RetryClass::Fatal => 0,
            };
            match self.policy.delay(class, retry) {
                Some(delay) => {
                    tracing::debug!(
                        service = self.service,
                        operation,
                        region = %self.region,
                        attempt = attempts,
                        ?delay,
                        error = %fault,
                        "retrying AWS call"
                    );
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Err(AwsError::new(
                        self.shared.account.get().cloned(),
                        self.service,
                        operation,
                        &self.region,
                        attempts,
                        fault,
                        Some(Box::new(err)),
                    ));
                }
            }
        }
    }
}

impl CallLayer {
    /// The error of a call that AWS answered with something this build cannot use.
    pub(crate) fn unreadable(&self, operation: &'static str, why: &str) -> AwsError {
        AwsError::new(
            self.shared.account.get().cloned(),
            self.service,
            operation,
            &self.region,
            1,
            Fault::Client(super::ClientFault::Response(why.to_owned())),
            None,
        )
    }

    /// Sends every page of a paginated request, one after another, each through [`Self::call`]
    /// (so each page waits for the limiter and is retried on its own), handing each page to
    /// `each`. `send` builds the request for a page token (`None` for the first page); `next`
    /// reads the next token from a page, where an empty token ends the listing as `None` does.
    ///
    /// # Errors
    /// The typed error of the page that failed; the pages before it were handed to `each`.
    pub async fn pages<P, E, F, Fut>(
        &self,
        operation: &'static str,
        mut send: F,
        next: impl Fn(&P) -> Option<&str>,
        mut each: impl FnMut(P),
    ) -> Result<(), AwsError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<P, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut token: Option<String> = None;
        loop {
            let page = self.call(operation, || send(token.clone())).await?;
            token = next(&page).filter(|t| !t.is_empty()).map(str::to_owned);
            each(page);
            if token.is_none() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_backs_off_1_2_4_8_16_then_gives_up() {
        let p = RetryPolicy::default();
        let delays: Vec<_> = (1..=6).map(|n| p.delay(RetryClass::Throttle, n)).collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(delays, vec![secs(1), secs(2), secs(4), secs(8), secs(16), None]);
    }

    #[test]
    fn transient_errors_retry_three_times_at_five_seconds_and_fatal_never() {
        let p = RetryPolicy::default();
        let delays: Vec<_> = (1..=4).map(|n| p.delay(RetryClass::Transient, n)).collect();
        let five = Some(Duration::from_secs(5));
        assert_eq!(delays, vec![five, five, five, None]);
        assert_eq!(p.delay(RetryClass::Fatal, 1), None);
    }

    #[test]
    fn scaling_shrinks_every_delay() {
        let p = RetryPolicy::default().scaled(0.01);
        assert_eq!(p.delay(RetryClass::Throttle, 5), Some(Duration::from_millis(160)));
        assert_eq!(p.delay(RetryClass::Transient, 1), Some(Duration::from_millis(50)));
        assert_eq!(p.throttle_retries, 5);
    }
}
