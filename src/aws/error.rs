//! Typed AWS errors. A [`ServiceFault`] (AWS answered no) is kept apart from a [`ClientFault`] (we
//! could not ask, or could not read the answer). Every error names the service, operation,
//! Region and, when known, the account.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An AWS call that failed after the retry policy gave up: what (service, operation), where
/// (account, Region), how often it was tried, and why ([`Fault`]).
#[derive(Debug, thiserror::Error)]
#[error("{service}.{operation} in {region}{} failed after {attempts} attempt(s): {fault}", account_suffix(.account.as_deref()))]
#[non_exhaustive]
pub struct AwsError {
    /// The account the call was made in, when the session knows it.
    pub account: Option<String>,
    /// The service, for example `ec2`.
    pub service: &'static str,
    /// The operation, for example `DescribeInstances`.
    pub operation: &'static str,
    /// The Region of the client.
    pub region: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why it failed: AWS said no, or we could not ask.
    pub fault: Fault,
    #[source]
    source: Option<BoxError>,
}

fn account_suffix(account: Option<&str>) -> String {
    account.map(|a| format!(" (account {a})")).unwrap_or_default()
}

/// Why an AWS call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// AWS answered, and said no.
    #[error(transparent)]
    Service(#[from] ServiceFault),
    /// The call could not be made, or its answer not read.
    #[error(transparent)]
    Client(#[from] ClientFault),
}

/// AWS answered with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceFault {
    /// AWS throttled the request.
    #[error("throttled ({code})")]
    Throttled {
        /// The error code, for example `RequestLimitExceeded`.
        code: String,
    },
    /// The credentials were refused or lack permission. Never retried.
    #[error("access denied ({code}): {message}")]
    AccessDenied {
        /// The error code, for example `AuthFailure`.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// Any other error AWS answered with.
    #[error("service error {code} (HTTP {status}): {message}")]
    Other {
        /// The error code.
        code: String,
        /// AWS's message.
        message: String,
        /// The HTTP status.
        status: u16,
    },
}

/// The call failed on our side of the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientFault {
    /// The request timed out.
    #[error("timed out")]
    Timeout,
    /// The endpoint could not be reached or dropped the connection.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The answer could not be read.
    #[error("unreadable response: {0}")]
    Response(String),
    /// The request could not be built or sent for another reason.
    #[error("{0}")]
    Other(String),
}

/// How the retry policy treats an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryClass {
    /// Throttling: exponential backoff.
    Throttle,
    /// Timeouts, dropped connections, 5xx: fixed delay.
    Transient,
    /// Auth errors and everything else: fail at once.
    Fatal,
}

const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// The credentials themselves were refused: no read of the account can succeed.
const CREDENTIAL_CODES: &[&str] = &[
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "UnrecognizedClientException",
    "MissingAuthenticationToken",
];

/// The credentials are valid but lack a permission (an IAM or bucket policy, an SCP), or the
/// Region is not enabled: other reads of the account may still succeed.
const PERMISSION_CODES: &[&str] = &[
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "OptInRequired",
    "AllAccessDisabled",
];

impl Fault {
    /// Classifies an SDK error.
    pub(crate) fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match err {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let code = ctx.err().code().unwrap_or("Unknown").to_owned();
                let message = ctx.err().message().unwrap_or_default().to_owned();
                // S3 answers HEAD-style errors without a code; the status still tells.
                let code_or_status = |c: &str| {
                    if c == "Unknown" {
                        format!("HTTP{status}")
                    } else {
                        c.to_owned()
                    }
                };
                Self::Service(if THROTTLE_CODES.contains(&code.as_str()) || status == 429 {
                    ServiceFault::Throttled {
                        code: code_or_status(&code),
                    }
                } else if CREDENTIAL_CODES.contains(&code.as_str())
                    || PERMISSION_CODES.contains(&code.as_str())
                    || status == 401
                    || status == 403
                {
                    ServiceFault::AccessDenied {
                        code: code_or_status(&code),
                        message,
                    }
                } else {
                    ServiceFault::Other { code, message, status }
                })
            }
            SdkError::TimeoutError(_) => Self::Client(ClientFault::Timeout),
            SdkError::DispatchFailure(f) if f.is_timeout() => Self::Client(ClientFault::Timeout),
            SdkError::DispatchFailure(f) => Self::Client(ClientFault::Connection(
                f.as_connector_error()
                    .map_or_else(|| "dispatch failure".to_owned(), ToString::to_string),
            )),
            SdkError::ResponseError(_) => Self::Client(ClientFault::Response(
                aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
            )),
            other => Self::Client(ClientFault::Other(
                aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
            )),
        }
    }

    pub(crate) fn retry_class(&self) -> RetryClass {
        match self {
            Self::Service(ServiceFault::Throttled { .. }) => RetryClass::Throttle,
            Self::Client(ClientFault::Timeout | ClientFault::Connection(_))
            | Self::Service(ServiceFault::Other {
                status: 500 | 502 | 503 | 504,
                ..
            }) => RetryClass::Transient,
            _ => RetryClass::Fatal,
        }
    }

    /// True when the policy retries this fault (throttling, timeouts, dropped connections, 5xx).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.retry_class() != RetryClass::Fatal
    }
}

impl AwsError {
    pub(crate) fn new(
        account: Option<String>,
        service: &'static str,
        operation: &'static str,
        region: &str,
        attempts: u32,
        fault: Fault,
        source: Option<BoxError>,
    ) -> Self {
        Self {
            account,
            service,
            operation,
            region: region.to_owned(),
            attempts,
            fault,
            source,
        }
    }

    /// True for errors that retrying with the same credentials cannot fix.
    #[must_use]
    pub fn is_access_denied(&self) -> bool {
        matches!(self.fault, Fault::Service(ServiceFault::AccessDenied { .. }))
    }

    /// True when AWS refused the credentials themselves (invalid, expired, badly signed), so
    /// that no other read of the account can succeed either; false for a permission that one
    /// operation or resource lacks (`AccessDenied`, `UnauthorizedOperation`). Discovery stops
    /// at once on the first and records the second as a gap.
    #[must_use]
    pub fn refuses_credentials(&self) -> bool {
        matches!(&self.fault, Fault::Service(ServiceFault::AccessDenied { code, .. }) if CREDENTIAL_CODES.contains(&code.as_str()) || code == "HTTP401")
    }
}

impl AwsError {
    /// The AWS error code, when AWS answered with one.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match &self.fault {
            Fault::Service(
                ServiceFault::Throttled { code }
                | ServiceFault::AccessDenied { code, .. }
                | ServiceFault::Other { code, .. },
            ) => Some(code),
            Fault::Client(_) => None,
        }
    }

    /// True when retrying later may succeed (see [`Fault::is_retryable`]).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.fault.is_retryable()
    }
}
