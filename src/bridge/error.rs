//! What can go wrong between Rust and a Python phase, each case naming the script, what and why.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A bridge failure. The transport and script are always named; Python's own error text is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The Python interpreter could not be started.
    #[error("cannot start Python interpreter {program}: {source} (set MIYABI_PYTHON_PATH)")]
    InterpreterMissing {
        /// The program that was run.
        program: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The script file or module does not exist.
    #[error("{transport} bridge: Python script {script} not found: {detail}")]
    ScriptMissing {
        /// `subprocess` or `in-process`.
        transport: &'static str,
        /// The module name or file path.
        script: String,
        /// Python's explanation, or the missing path.
        detail: String,
    },
    /// The script exited before answering.
    #[error("subprocess bridge: {script} exited with {status} before answering: {python_error}")]
    Exited {
        /// The script.
        script: String,
        /// Exit code or signal.
        status: String,
        /// The last line of the traceback, for example `RuntimeError: boom`.
        python_error: String,
        /// The end of stderr.
        stderr: String,
    },
    /// The script closed stdout without a JSON-RPC response to the request.
    #[error("subprocess bridge: {script} sent no JSON-RPC response ({skipped_lines} other stdout line(s) skipped, exit {status}){}", stderr_suffix(.stderr))]
    NoResponse {
        /// The script.
        script: String,
        /// Lines on stdout that were not the response.
        skipped_lines: usize,
        /// Exit code or signal.
        status: String,
        /// The end of stderr.
        stderr: String,
    },
    /// A response arrived, but its content does not fit the contract.
    #[error("{transport} bridge: {script} answered with the wrong shape at `{path}`: {message}")]
    Shape {
        /// `subprocess` or `in-process`.
        transport: &'static str,
        /// The script.
        script: String,
        /// Where in the answer, for example `output.world_state.inventory.instances[0].id`.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The script did not answer in time; it was killed and reaped.
    #[error("subprocess bridge: {script} did not answer within {after:?}; killed process {pid}")]
    Timeout {
        /// The script.
        script: String,
        /// The limit (`MIYABI_BRIDGE_TIMEOUT`).
        after: Duration,
        /// The killed process.
        pid: u32,
    },
    /// The phase ran and reported an error: a JSON-RPC error object, or a Python exception in
    /// process, classified the same way.
    #[error("{transport} bridge: {script} failed: {error}")]
    Remote {
        /// `subprocess` or `in-process`.
        transport: &'static str,
        /// The script.
        script: String,
        /// The error, with its code.
        error: RemoteError,
    },
    /// Talking to the child process failed.
    #[error("subprocess bridge: I/O with {script} failed: {source}")]
    Io {
        /// The script.
        script: String,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    last.map(|l| format!("; stderr: {l}")).unwrap_or_default()
}

/// A JSON-RPC 2.0 error object as the plan defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{} ({code}): {message}", RpcCode::from_code(self.code))]
pub struct RemoteError {
    /// The JSON-RPC error code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// AWS details, when the failure came from AWS.
    #[serde(default)]
    pub data: Option<RemoteErrorData>,
}

impl RemoteError {
    /// The code's meaning.
    #[must_use]
    pub fn kind(&self) -> RpcCode {
        RpcCode::from_code(self.code)
    }
}

/// The `data` of an error: which AWS call failed and whether a retry may help.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteErrorData {
    /// AWS's error code (`RequestLimitExceeded`) or the exception's class.
    #[serde(default)]
    pub aws_error_code: Option<String>,
    /// The service's endpoint prefix, for example `ec2`.
    #[serde(default)]
    pub service: Option<String>,
    /// The operation, for example `DescribeInstances`.
    #[serde(default)]
    pub operation: Option<String>,
    /// The Region of the client.
    #[serde(default)]
    pub region: Option<String>,
    /// Whether a retry may succeed.
    #[serde(default)]
    pub retryable: bool,
    /// The Python exception class.
    #[serde(default)]
    pub exception: Option<String>,
    /// The Python traceback, for internal errors.
    #[serde(default)]
    pub traceback: Option<String>,
}

/// The JSON-RPC error codes of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RpcCode {
    /// -32700: the request was not JSON.
    ParseError,
    /// -32600: not a JSON-RPC request.
    InvalidRequest,
    /// -32601: unknown method.
    MethodNotFound,
    /// -32602: the params do not fit.
    InvalidParams,
    /// -32603: the phase raised an unexpected exception.
    InternalError,
    /// -32000: AWS returned an error or could not be reached.
    AwsError,
    /// -32001: credentials refused or permission missing.
    AuthError,
    /// -32002: throttled.
    RateLimited,
    /// -32003: an AWS call timed out.
    Timeout,
    /// Any other code.
    Other(i64),
}

impl RpcCode {
    /// The meaning of a numeric code.
    #[must_use]
    pub fn from_code(code: i64) -> Self {
        match code {
            -32700 => Self::ParseError,
            -32600 => Self::InvalidRequest,
            -32601 => Self::MethodNotFound,
            -32602 => Self::InvalidParams,
            -32603 => Self::InternalError,
            -32000 => Self::AwsError,
            -32001 => Self::AuthError,
            -32002 => Self::RateLimited,
            -32003 => Self::Timeout,
            other => Self::Other(other),
        }
    }

    /// True for failures of one AWS scan, which make a capture partial rather than stop it.
    #[must_use]
    pub fn is_scan_failure(self) -> bool {
        matches!(self, Self::AwsError | Self::RateLimited | Self::Timeout)
    }
}

impl std::fmt::Display for RpcCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Self::ParseError => "parse error",
            Self::InvalidRequest => "invalid request",
            Self::MethodNotFound => "method not found",
            Self::InvalidParams => "invalid params",
            Self::InternalError => "internal error",
            Self::AwsError => "AWS error",
            Self::AuthError => "auth error",
            Self::RateLimited => "rate limited",
            Self::Timeout => "timeout",
            Self::Other(_) => "error",
        };
        f.write_str(text)
    }
}
