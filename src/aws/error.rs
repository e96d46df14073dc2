//! Typed AWS errors. A service fault (AWS answered no) is kept apart from a client fault (we could
//! not ask, or could not read the answer). Every error names the service, operation and Region.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An AWS call that failed after the retry policy gave up.
#[derive(Debug, thiserror::Error)]
#[error("{service}.{operation} in {region} failed after {attempts} attempt(s): {kind}")]
pub struct AwsError {
    /// The service, for example `ec2`.
    pub service: &'static str,
    /// The operation, for example `DescribeInstances`.
    pub operation: &'static str,
    /// The Region of the client.
    pub region: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// What went wrong.
    pub kind: AwsErrorKind,
    #[source]
    source: Option<BoxError>,
}

/// What went wrong with an AWS call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AwsErrorKind {
    /// AWS throttled the request (service fault).
    #[error("throttled ({code})")]
    Throttled {
        /// The error code, for example `RequestLimitExceeded`.
        code: String,
    },
    /// The credentials were refused or lack permission (service fault). Never retried.
    #[error("access denied ({code}): {message}")]
    AccessDenied {
        /// The error code, for example `AuthFailure`.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// Any other error answered by AWS (service fault).
    #[error("service error {code} (HTTP {status}): {message}")]
    Service {
        /// The error code.
        code: String,
        /// AWS's message.
        message: String,
        /// The HTTP status.
        status: u16,
    },
    /// The request timed out (client fault).
    #[error("timed out")]
    Timeout,
    /// The endpoint could not be reached or dropped the connection (client fault).
    #[error("connection failed: {0}")]
    Connection(String),
    /// The answer could not be read (client fault).
    #[error("unreadable response: {0}")]
    Response(String),
    /// The request could not be built or sent for another reason (client fault).
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

const AUTH_CODES: &[&str] = &[
    "AuthFailure",
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "UnrecognizedClientException",
    "MissingAuthenticationToken",
    "OptInRequired",
    "AllAccessDisabled",
];

impl AwsErrorKind {
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
                if THROTTLE_CODES.contains(&code.as_str()) || status == 429 {
                    Self::Throttled {
                        code: code_or_status(&code),
                    }
                } else if AUTH_CODES.contains(&code.as_str()) || status == 401 || status == 403 {
                    Self::AccessDenied {
                        code: code_or_status(&code),
                        message,
                    }
                } else {
                    Self::Service { code, message, status }
                }
            }
            SdkError::TimeoutError(_) => Self::Timeout,
            SdkError::DispatchFailure(f) if f.is_timeout() => Self::Timeout,
            SdkError::DispatchFailure(f) => Self::Connection(
                f.as_connector_error()
                    .map_or_else(|| "dispatch failure".to_owned(), ToString::to_string),
            ),
            SdkError::ResponseError(_) => {
                Self::Response(aws_smithy_types::error::display::DisplayErrorContext(err).to_string())
            }
            other => Self::Other(aws_smithy_types::error::display::DisplayErrorContext(other).to_string()),
        }
    }

    pub(crate) fn retry_class(&self) -> RetryClass {
        match self {
            Self::Throttled { .. } => RetryClass::Throttle,
            Self::Timeout
            | Self::Connection(_)
            | Self::Service {
                status: 500 | 502 | 503 | 504,
                ..
            } => RetryClass::Transient,
            _ => RetryClass::Fatal,
        }
    }

    /// True when AWS answered (a service fault) rather than the call failing on our side.
    #[must_use]
    pub fn is_service_fault(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::AccessDenied { .. } | Self::Service { .. }
        )
    }
}

impl AwsError {
    pub(crate) fn new(
        service: &'static str,
        operation: &'static str,
        region: &str,
        attempts: u32,
        kind: AwsErrorKind,
        source: Option<BoxError>,
    ) -> Self {
        Self {
            service,
            operation,
            region: region.to_owned(),
            attempts,
            kind,
            source,
        }
    }

    /// True for errors that retrying with the same credentials cannot fix.
    #[must_use]
    pub fn is_access_denied(&self) -> bool {
        matches!(self.kind, AwsErrorKind::AccessDenied { .. })
    }
}

impl AwsError {
    /// The AWS error code, when AWS answered with one.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            AwsErrorKind::Throttled { code }
            | AwsErrorKind::AccessDenied { code, .. }
            | AwsErrorKind::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}
