//! The Terraform backend of θ4: `terraform init`, `plan` and `apply` on a rendered folder.
//!
//! The SDK executor is θ4's own way to change AWS; this backend hands the same target state to
//! Terraform where a team runs it. It owns the process handling: the binary is found on `PATH`
//! (or `MIYABI_TERRAFORM`), each command runs non-interactively with its output captured, a
//! non-zero exit is a typed error with the tail of what Terraform said, and a command over its
//! time limit is killed and reaped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Why a Terraform command did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TerraformError {
    /// No `terraform` binary was found.
    #[error("terraform CLI not found (looked for {looked_for}); install it or set MIYABI_TERRAFORM")]
    NotFound {
        /// What was looked for.
        looked_for: String,
    },
    /// The command could not be started or its output read.
    #[error("terraform {command} in {dir}: {source}")]
    Io {
        /// The subcommand.
        command: String,
        /// The working folder.
        dir: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The command exited with a failure code.
    #[error("terraform {command} in {dir} exited with {code:?}: {stderr_tail}")]
    Exit {
        /// The subcommand.
        command: String,
        /// The working folder.
        dir: PathBuf,
        /// The exit code (`None` when killed by a signal).
        code: Option<i32>,
        /// The last lines of its error output.
        stderr_tail: String,
    },
    /// The command ran over its time limit and was killed.
    #[error("terraform {command} in {dir} ran over {after:?} and was killed (pid {pid})")]
    Timeout {
        /// The subcommand.
        command: String,
        /// The working folder.
        dir: PathBuf,
        /// The limit.
        after: Duration,
        /// The killed process.
        pid: u32,
    },
}

/// What one command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Its exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Terraform on one folder of `.tf` files.
#[derive(Debug, Clone)]
pub struct TerraformBackend {
    binary: PathBuf,
    dir: PathBuf,
    timeout: Duration,
}

impl TerraformBackend {
    /// Terraform from `MIYABI_TERRAFORM` or `PATH`, on `dir`, with a 30-minute limit per command.
    ///
    /// # Errors
    /// [`TerraformError::NotFound`] when no binary exists.
    pub fn locate(dir: impl Into<PathBuf>) -> Result<Self, TerraformError> {
        let binary = match std::env::var_os("MIYABI_TERRAFORM") {
            Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
            None => std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join("terraform"))
                    .find(|p| p.is_file())
            }),
        };
        let binary = binary.ok_or_else(|| TerraformError::NotFound {
            looked_for: std::env::var("MIYABI_TERRAFORM").unwrap_or_else(|_| "terraform on PATH".into()),
        })?;
        Ok(Self {
            binary,
            dir: dir.into(),
            timeout: Duration::from_secs(30 * 60),
        })
    }

    /// Replaces the time limit of one command.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The folder Terraform runs in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `terraform init`.
    ///
    /// # Errors
    /// A [`TerraformError`] naming the command and folder.
    pub async fn init(&self) -> Result<CommandOutput, TerraformError> {
        self.run("init", &["init", "-input=false", "-no-color"], &[0]).await
    }

    /// `terraform plan -detailed-exitcode -out=tfplan`: `true` when the plan has changes.
    ///
    /// # Errors
    /// A [`TerraformError`] naming the command and folder.
    pub async fn plan(&self) -> Result<(bool, CommandOutput), TerraformError> {
        let out = self
            .run(
                "plan",
                &["plan", "-input=false", "-no-color", "-detailed-exitcode", "-out=tfplan"],
                &[0, 2],
            )
            .await?;
        Ok((out.code == 2, out))
    }

    /// `terraform apply tfplan`: applies exactly the saved plan.
    ///
    /// # Errors
    /// A [`TerraformError`] naming the command and folder.
    pub async fn apply(&self) -> Result<CommandOutput, TerraformError> {
        self.run("apply", &["apply", "-input=false", "-no-color", "tfplan"], &[0])
            .await
    }

    async fn run(&self, command: &str, args: &[&str], success: &[i32]) -> Result<CommandOutput, TerraformError> {
        let io = |source| TerraformError::Io {
            command: command.to_owned(),
            dir: self.dir.clone(),
            source,
        };
        let mut child = tokio::process::Command::new(&self.binary)
            .args(args)
            .current_dir(&self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that a timeout also ends what it started (provisioners).
            .process_group(0)
            .spawn()
            .map_err(io)?;
        let pid = child.id().unwrap_or_default();
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let finished = async {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            if let Some(o) = out.as_mut() {
                o.read_to_end(&mut stdout).await?;
            }
            if let Some(e) = err.as_mut() {
                e.read_to_end(&mut stderr).await?;
            }
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, stdout, stderr))
        };
        let finished = tokio::time::timeout(self.timeout, finished).await;
        let Ok(result) = finished else {
            // The whole group is killed (the crate has no unsafe code, so through kill(1)),
            // then the child is reaped: no process or zombie outlives the call.
            let _ = tokio::process::Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
            let _ = child.kill().await;
            return Err(TerraformError::Timeout {
                command: command.to_owned(),
                dir: self.dir.clone(),
                after: self.timeout,
                pid,
            });
        };
        let (status, stdout, stderr) = result.map_err(io)?;
        let output = CommandOutput {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        if status.code().is_some_and(|c| success.contains(&c)) {
            Ok(output)
        } else {
            let lines: Vec<&str> = output.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            Err(TerraformError::Exit {
                command: command.to_owned(),
                dir: self.dir.clone(),
                code: status.code(),
                stderr_tail: lines[lines.len().saturating_sub(5)..].join(" | "),
            })
        }
    }
}
