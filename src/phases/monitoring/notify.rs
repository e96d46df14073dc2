//! Where the result of a cycle is sent: the object-safe [`NotificationSink`], and a webhook
//! sink that POSTs it as JSON.

use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a cycle reports when an iteration ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// The iteration, 0-based.
    pub iteration: u32,
    /// Monthly cost of the world this iteration started from, USD.
    pub monthly_cost_usd: Option<f64>,
    /// Its security score.
    pub security_score: Option<f64>,
    /// Steps applied.
    pub applied: usize,
    /// Steps rolled back.
    pub rolled_back: usize,
    /// The wave that failed, if one did.
    pub failed_wave: Option<usize>,
    /// Alarms now watching the changed resources.
    pub alarms: Vec<String>,
}

/// Why a notification could not be delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The URL cannot be used.
    #[error("webhook {url}: {reason}")]
    Unsupported {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No connection could be made.
    #[error("webhook {url}: cannot connect: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The exchange failed midway.
    #[error("webhook {url}: {message}")]
    Exchange {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The receiver answered with an error status.
    #[error("webhook {url}: answered HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// No answer in time.
    #[error("webhook {url}: no answer within {after:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        after: Duration,
    },
}

/// A destination for notifications. Object-safe: a phase holds `Arc<dyn NotificationSink>`.
#[async_trait]
pub trait NotificationSink: Send + Sync + std::fmt::Debug {
    /// A name for reports, for example the webhook URL.
    fn name(&self) -> String;

    /// Delivers one notification.
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
}

/// POSTs each notification as JSON to an `http://` URL, over HTTP/1.1.
///
/// `https://` is refused with a typed error: TLS is left to a relay on the host (for example a
/// local proxy that forwards to Slack), which keeps a TLS stack out of the library.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    url: String,
    timeout: Duration,
}

impl WebhookSink {
    /// A sink posting to `url`, with a 10-second limit.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Replaces the time limit of one delivery.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), NotifyError> {
        let url = &self.url;
        let unsupported = |reason: String| NotifyError::Unsupported {
            url: url.clone(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|e| unsupported(format!("not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(unsupported(
                "only http:// is supported (terminate TLS in a local relay)".into(),
            ));
        }
        let host = uri.host().ok_or_else(|| unsupported("no host".into()))?.to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|source| NotifyError::Connect {
                url: url.clone(),
                source,
            })?;
        let exchange = |message: String| NotifyError::Exchange {
            url: url.clone(),
            message,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| exchange(e.to_string()))?;
        let driver = tokio::spawn(connection);
        let path = uri.path_and_query().map_or("/", hyper::http::uri::PathAndQuery::as_str);
        let request = Request::post(path)
            .header(
                hyper::header::HOST,
                uri.authority().map_or(host.as_str(), |a| a.as_str()),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("miyabi-aws/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| exchange(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| exchange(e.to_string()))?;
        let status = response.status();
        let answer = response
            .into_body()
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        driver.abort();
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&answer);
            Err(NotifyError::Status {
                url: url.clone(),
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            })
        }
    }
}

#[async_trait]
impl NotificationSink for WebhookSink {
    fn name(&self) -> String {
        format!("webhook {}", self.url)
    }

    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(notification).map_err(|e| NotifyError::Exchange {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        tokio::time::timeout(self.timeout, self.post(body))
            .await
            .map_err(|_| NotifyError::Timeout {
                url: self.url.clone(),
                after: self.timeout,
            })?
    }
}
