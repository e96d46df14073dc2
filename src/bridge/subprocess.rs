//! JSON-RPC 2.0 over a child process's stdin/stdout (DESIGN §10).
//!
//! One child per request: the request is written as one line, stdin is closed, and stdout is
//! read line by line until the response with the request's id arrives. Other lines are logged
//! and skipped. stderr is kept (its end) for errors. Past the timeout the child is killed and
//! reaped, so no zombie is left.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::error::BridgeError;
use super::protocol::{
    ExecutePhaseParams, ExecutePhaseResult, PhaseConfig, PhaseContextParams, RegionCapture, Request, Response,
};
use super::PhaseTransport;
use crate::Error;

/// How much of stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// The plan's default bridge timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const TRANSPORT: &str = "subprocess";

/// Which Python code a bridge runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// A module run with `python -m`, found on the bridge's Python path.
    Module(String),
    /// A script file.
    File(PathBuf),
}

impl Script {
    /// The legacy discovery's JSON-RPC server, `python -m miyabi_legacy.rpc`.
    #[must_use]
    pub fn legacy_rpc() -> Self {
        Self::Module("miyabi_legacy.rpc".into())
    }
}

impl std::fmt::Display for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Module(m) => write!(f, "module {m}"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The JSON-RPC transport.
#[derive(Debug)]
pub struct SubprocessTransport {
    python: PathBuf,
    script: Script,
    python_path: Vec<PathBuf>,
    timeout: Duration,
    next_id: AtomicU64,
}

impl SubprocessTransport {
    /// Runs `script` with the interpreter of `MIYABI_PYTHON_PATH` (default `python3` on PATH) and
    /// the timeout of `MIYABI_BRIDGE_TIMEOUT` in seconds (default 300).
    ///
    /// # Errors
    /// [`Error::Config`] when `MIYABI_BRIDGE_TIMEOUT` is not a positive number of seconds.
    pub fn from_env(script: Script) -> Result<Self, Error> {
        let python = std::env::var_os("MIYABI_PYTHON_PATH")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("python3"), PathBuf::from);
        let timeout = match std::env::var("MIYABI_BRIDGE_TIMEOUT") {
            Ok(text) => parse_timeout(&text)?,
            Err(_) => DEFAULT_TIMEOUT,
        };
        Ok(Self {
            python,
            script,
            python_path: Vec::new(),
            timeout,
            next_id: AtomicU64::new(1),
        })
    }

    /// Uses `python` as the interpreter.
    #[must_use]
    pub fn with_python(mut self, python: impl Into<PathBuf>) -> Self {
        self.python = python.into();
        self
    }

    /// Puts `dirs` in front of the child's `PYTHONPATH`.
    #[must_use]
    pub fn with_python_path(mut self, dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        self.python_path.extend(dirs);
        self
    }

    /// Sets the time a request may take, process start to exit.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn spawn(&self) -> Result<Child, BridgeError> {
        let mut cmd = Command::new(&self.python);
        match &self.script {
            Script::Module(module) => cmd.arg("-m").arg(module),
            Script::File(path) if !path.is_file() => {
                return Err(BridgeError::ScriptMissing {
                    transport: TRANSPORT,
                    script: self.script.to_string(),
                    detail: "no such file".into(),
                })
            }
            Script::File(path) => cmd.arg(path),
        };
        let mut path: Vec<PathBuf> = self.python_path.clone();
        if let Some(existing) = std::env::var_os("PYTHONPATH") {
            path.extend(std::env::split_paths(&existing));
        }
        if !path.is_empty() {
            // Joining fails only for a path containing ':'; such a directory is skipped.
            let joined = std::env::join_paths(path.iter().filter(|p| !p.to_string_lossy().contains(':')));
            if let Ok(joined) = joined {
                cmd.env("PYTHONPATH", joined);
            }
        }
        cmd.env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn().map_err(|source| BridgeError::InterpreterMissing {
            program: self.python.clone(),
            source,
        })
    }

    async fn execute(&self, phase: &str, config: &PhaseConfig) -> Result<ExecutePhaseResult, BridgeError> {
        let script = self.script.to_string();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = Request {
            jsonrpc: "2.0",
            id,
            method: "execute_phase",
            params: ExecutePhaseParams {
                phase,
                config,
                context: PhaseContextParams::default(),
            },
        };
        let mut line = serde_json::to_vec(&request).map_err(|e| io_error(&script, e.into()))?;
        line.push(b'\n');

        let started = Instant::now();
        let mut child = self.spawn()?;
        let pid = child.id().unwrap_or_default();
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(io_error(&script, std::io::Error::other("child pipes missing")));
        };
        let stderr_tail = tokio::spawn(read_tail(stderr));

        let exchange = async {
            // A child that dies at once closes its stdin; its exit status tells why, below.
            if stdin.write_all(&line).await.is_ok() {
                drop(stdin);
            }
            read_response(stdout, id, &script).await
        };
        let answered = tokio::time::timeout(self.timeout, exchange).await;
        let remaining = self.timeout.saturating_sub(started.elapsed());
        let status = match answered {
            Err(_) => None,
            Ok(_) => tokio::time::timeout(remaining, child.wait()).await.ok(),
        };
        let Some(status) = status else {
            // Killing also waits, so the child is reaped.
            let _ = child.kill().await;
            return match answered {
                Ok(Ok((Some(outcome), _))) => outcome,
                _ => Err(BridgeError::Timeout {
                    script,
                    after: self.timeout,
                    pid,
                }),
            };
        };
        let status = status.map_err(|e| io_error(&script, e))?;
        let stderr = stderr_tail.await.unwrap_or_default();
        let (outcome, skipped) = answered
            .unwrap_or_else(|_| unreachable!("a timed-out exchange returned above"))
            .map_err(|e| io_error(&script, e))?;
        if let Some(outcome) = outcome {
            return outcome;
        }
        if !stderr.trim().is_empty() {
            tracing::debug!(%script, %stderr, "bridge child stderr");
        }
        Err(no_answer(&self.script, status, skipped, stderr))
    }
}

fn parse_timeout(text: &str) -> Result<Duration, Error> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::Config(format!(
                "MIYABI_BRIDGE_TIMEOUT must be a positive number of seconds, got {text:?}"
            ))
        })
}

fn io_error(script: &str, source: std::io::Error) -> BridgeError {
    BridgeError::Io {
        script: script.to_owned(),
        source,
    }
}

/// Why a child that exited gave no answer.
fn no_answer(script: &Script, status: ExitStatus, skipped_lines: usize, stderr: String) -> BridgeError {
    let python_error = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output on stderr")
        .trim()
        .to_owned();
    // Only the script itself missing counts: a module it imports that is missing is a crash.
    let missing = match script {
        Script::Module(m) => {
            python_error.contains(&format!("No module named {m}"))
                || python_error.contains(&format!("module specification for '{m}'"))
        }
        Script::File(_) => python_error.contains("can't open file"),
    };
    if missing {
        return BridgeError::ScriptMissing {
            transport: TRANSPORT,
            script: script.to_string(),
            detail: python_error,
        };
    }
    let status_text = describe(status);
    if status.success() {
        BridgeError::NoResponse {
            script: script.to_string(),
            skipped_lines,
            status: status_text,
            stderr,
        }
    } else {
        BridgeError::Exited {
            script: script.to_string(),
            status: status_text,
            python_error,
            stderr,
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

type Outcome = Result<ExecutePhaseResult, BridgeError>;

/// Reads stdout until the response to `id`; returns it (or `None` at end of output) and the
/// number of other lines skipped.
async fn read_response(
    stdout: impl AsyncRead + Unpin,
    id: u64,
    script: &str,
) -> std::io::Result<(Option<Outcome>, usize)> {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    let mut skipped = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok((None, skipped));
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        if let Some(outcome) = decode_line(text, id, script) {
            return Ok((Some(outcome), skipped));
        }
        skipped += 1;
        let shown = String::from_utf8_lossy(&text[..text.len().min(200)]).into_owned();
        tracing::info!(%script, line = %shown, "skipped a stdout line that is not the JSON-RPC response");
    }
}

/// One line of a script's stdout: `None` unless it is the JSON-RPC 2.0 response to `id`, else
/// the result (its shape and its capture's rules checked) or the error it carries.
#[must_use]
pub fn decode_line(line: &[u8], id: u64, script: &str) -> Option<Result<ExecutePhaseResult, BridgeError>> {
    match serde_json::from_slice::<Response>(line) {
        Ok(response) if response.jsonrpc == "2.0" && response.id == serde_json::json!(id) => {
            Some(outcome(response, script))
        }
        _ => None,
    }
}

fn outcome(response: Response<'_>, script: &str) -> Outcome {
    if let Some(error) = response.error {
        return Err(BridgeError::Remote {
            transport: TRANSPORT,
            script: script.to_owned(),
            error,
        });
    }
    let shape = |path: String, message: String| BridgeError::Shape {
        transport: TRANSPORT,
        script: script.to_owned(),
        path,
        message,
    };
    let raw = response
        .result
        .ok_or_else(|| shape("result".into(), "neither `result` nor `error` present".into()))?;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let result: ExecutePhaseResult =
        serde_path_to_error::deserialize(&mut de).map_err(|e| shape(e.path().to_string(), e.inner().to_string()))?;
    if result.status != "success" {
        return Err(shape(
            "status".into(),
            format!("expected \"success\", got {:?}", result.status),
        ));
    }
    result
        .output
        .world_state
        .inventory
        .validate()
        .map_err(|v| shape(format!("output.world_state.inventory.{}", v.path), v.message))?;
    Ok(result)
}

/// All of a stream, keeping only its last [`STDERR_TAIL_BYTES`].
async fn read_tail(mut stream: impl AsyncRead + Unpin) -> String {
    let mut tail = Vec::new();
    let mut chunk = vec![0u8; 8192];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > 2 * STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    if tail.len() > STDERR_TAIL_BYTES {
        tail.drain(..tail.len() - STDERR_TAIL_BYTES);
    }
    String::from_utf8_lossy(&tail).into_owned()
}

#[async_trait]
impl PhaseTransport for SubprocessTransport {
    fn kind(&self) -> &'static str {
        TRANSPORT
    }

    async fn discover_region(&self, config: &PhaseConfig) -> Result<RegionCapture, BridgeError> {
        let result = self.execute("discovery", config).await?;
        let capture = result.output.world_state;
        if capture.region != config.aws_region {
            return Err(BridgeError::Shape {
                transport: TRANSPORT,
                script: self.script.to_string(),
                path: "output.world_state.region".into(),
                message: format!("asked for {}, got {}", config.aws_region, capture.region),
            });
        }
        Ok(capture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_variable_must_be_positive_seconds() {
        assert_eq!(parse_timeout("2.5").unwrap(), Duration::from_millis(2500));
        for bad in ["0", "-1", "soon", "NaN"] {
            assert!(matches!(parse_timeout(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[tokio::test]
    async fn lines_that_are_not_the_response_are_skipped() {
        let stdout = b"hello\n{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":null}\n{\"not\":\"rpc\"}\n\n\
            {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32002,\"message\":\"slow down\"}}\n";
        let (outcome, skipped) = read_response(&stdout[..], 1, "s").await.unwrap();
        assert_eq!(skipped, 3, "garbage, another id and non-RPC JSON are skipped");
        match outcome.unwrap() {
            Err(BridgeError::Remote { error, .. }) => assert_eq!(error.kind(), super::super::RpcCode::RateLimited),
            other => panic!("expected a remote error, got {other:?}"),
        }
    }
}
