//! The Terraform backend of θ4: `terraform init`, `plan` and `apply` on a rendered folder.
//!
//! The SDK executor is θ4's own way to change AWS; this backend hands the same target state to
//! Terraform where a team runs it ([`deploy_with_terraform`], `Deployment::with_terraform`).
//! [`TerraformBackend`] owns the process handling: the binary is found on `PATH`
//! (or `MIYABI_TERRAFORM`), each command runs non-interactively with its output captured, a
//! non-zero exit is a typed error with the tail of what Terraform said, and a command over its
//! time limit is killed and reaped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{DeploymentConfig, DeploymentReport, Mode, StepExecutor, StepOutcome, StepRecord};
use crate::plan::execution::{ExecutionPlan, Step};
use crate::plan::Change;
use crate::world::WorldState;

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
    env: Vec<(String, String)>,
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
            env: Vec::new(),
        })
    }

    /// Adds environment variables for every command, for example `TF_CLI_CONFIG_FILE` or the
    /// AWS endpoint and profile variables the provider reads.
    #[must_use]
    pub fn with_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(env);
        self
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

    /// The resources the saved plan would destroy (alone or to replace them), from `terraform
    /// show -json tfplan`.
    ///
    /// # Errors
    /// A [`TerraformError`] naming the command and folder; unreadable JSON is an `Exit` error.
    pub async fn planned_deletions(&self) -> Result<Vec<String>, TerraformError> {
        let out = self
            .run("show", &["show", "-json", "-no-color", "tfplan"], &[0])
            .await?;
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| TerraformError::Exit {
            command: "show".into(),
            dir: self.dir.clone(),
            code: Some(out.code),
            stderr_tail: format!("the plan is not JSON: {e}"),
        })?;
        let changes = plan["resource_changes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(changes
            .iter()
            .filter(|c| {
                c["change"]["actions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "delete"))
            })
            .filter_map(|c| c["address"].as_str().map(str::to_owned))
            .collect())
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
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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

/// How θ4 runs Terraform.
#[derive(Debug, Clone, Default)]
pub struct TerraformMode {
    /// Environment for the CLI, for example `TF_CLI_CONFIG_FILE` naming a provider mirror.
    pub env: Vec<(String, String)>,
    /// Time limit of one command; `None` keeps 30 minutes.
    pub timeout: Option<Duration>,
}

/// θ4 through Terraform instead of the SDK executor.
///
/// The steps that may run (selected, approved, not deny-listed, not destructive: a resource
/// missing from a configuration would be destroyed without the snapshot the SDK backend takes
/// first) are checked for drift through `executor`; the target state of their resources is
/// rendered into `dir/terraform` (an `import` and a resource block each, with a fresh state, so
/// that nothing an earlier run managed is planned away) and `init` and `plan` run on it. A plan
/// that would destroy anything is refused whole. In apply mode `apply` runs the saved plan and
/// each step is validated by reading back; when the apply fails or a step does not validate,
/// the steps are reverted through `executor`, newest first (which also starts an instance the
/// provider left stopped), and reported rolled back.
pub async fn deploy_with_terraform(
    world: &WorldState,
    plan: &ExecutionPlan,
    config: &DeploymentConfig,
    mode: &TerraformMode,
    dir: &Path,
    executor: &dyn StepExecutor,
) -> DeploymentReport {
    let mut records: Vec<StepRecord> = plan
        .steps
        .iter()
        .map(|s| StepRecord::of(s, StepOutcome::WouldApply))
        .collect();
    let mut runnable = Vec::new();
    for (k, step) in plan.steps.iter().enumerate() {
        records[k].outcome = match admit(step, config, executor).await {
            Ok(()) => {
                runnable.push(k);
                continue;
            }
            Err(outcome) => outcome,
        };
    }
    let first_wave = runnable.iter().map(|&k| plan.steps[k].wave).min();
    let report = |records, failed_wave| DeploymentReport {
        mode: config.mode,
        steps: records,
        failed_wave,
        recovered: Vec::new(),
        applied_at: None,
    };
    if runnable.is_empty() {
        return report(records, None);
    }
    let ids: BTreeSet<&str> = runnable
        .iter()
        .map(|&k| plan.steps[k].change.resource.id.as_str())
        .collect();
    let scope = WorldState {
        inventory: world.inventory.restricted_to(&ids),
        ..world.clone()
    };
    let changes: Vec<&Change> = runnable.iter().map(|&k| &plan.steps[k].change).collect();
    let mut set = |outcome: &dyn Fn(&Step) -> StepOutcome| {
        for &k in &runnable {
            records[k].outcome = outcome(&plan.steps[k]);
        }
    };
    let has_changes = match run(&scope, changes, mode, &dir.join("terraform"), config.mode).await {
        Ok(Ok(planned)) => planned,
        Ok(Err(refused)) => {
            set(&|_| StepOutcome::Refused {
                reason: refused.clone(),
            });
            return report(records, None);
        }
        // Nothing was applied: rendering, init or plan failed.
        Err(error) if !error.starts_with("apply:") => {
            set(&|_| StepOutcome::Failed { error: error.clone() });
            return report(records, None);
        }
        Err(error) => {
            revert(plan, &runnable, &mut records, executor, &error).await;
            return report(records, first_wave);
        }
    };
    if config.mode == Mode::DryRun {
        set(&|_| {
            if has_changes {
                StepOutcome::WouldApply
            } else {
                StepOutcome::AlreadyApplied
            }
        });
        return report(records, None);
    }
    // Read back each step; one that did not take fails the whole apply.
    let mut mismatch = None;
    for &k in &runnable {
        let step = &plan.steps[k];
        match executor.read(step).await {
            Ok(found) if found == step.validation.equals => records[k].outcome = StepOutcome::Applied,
            Ok(found) => {
                mismatch.get_or_insert(format!(
                    "step {}: validation failed on {}: expected {}, found {found}",
                    step.id, step.validation.attribute, step.validation.equals
                ));
            }
            Err(e) => {
                mismatch.get_or_insert(format!("step {}: reading back: {e}", step.id));
            }
        }
    }
    if let Some(error) = mismatch {
        revert(plan, &runnable, &mut records, executor, &error).await;
        return report(records, first_wave);
    }
    report(records, None)
}

/// Reverts the `runnable` steps after Terraform failed with `why`, newest first.
async fn revert(
    plan: &ExecutionPlan,
    runnable: &[usize],
    records: &mut [StepRecord],
    executor: &dyn StepExecutor,
    why: &str,
) {
    for &k in runnable.iter().rev() {
        let step = &plan.steps[k];
        records[k].outcome = match executor.revert(step, None).await {
            Ok(()) => StepOutcome::RolledBack {
                reason: format!("terraform {why}"),
            },
            Err(e) => StepOutcome::Failed {
                error: format!("rollback after terraform {why} failed: {e}"),
            },
        };
    }
}

/// Whether `step` goes to Terraform, or the outcome it gets instead.
async fn admit(step: &Step, config: &DeploymentConfig, executor: &dyn StepExecutor) -> Result<(), StepOutcome> {
    if let Some(reason) = config.skip_reason(step) {
        return Err(StepOutcome::Skipped { reason });
    }
    if step.change.is_destructive() {
        return Err(StepOutcome::Skipped {
            reason: "destructive: the SDK backend runs it, snapshot first (Terraform would destroy without one)".into(),
        });
    }
    let denied = config.guardrails.denied_operations(&step.change);
    if !denied.is_empty() {
        return Err(StepOutcome::Refused {
            reason: format!("deny-listed operation(s): {}", denied.join(", ")),
        });
    }
    match executor.read(step).await {
        Ok(found) if found == step.validation.equals && found != step.precondition.equals => {
            Err(StepOutcome::AlreadyApplied)
        }
        Ok(found) if found != step.precondition.equals => Err(StepOutcome::Refused {
            reason: format!(
                "precondition failed on {}: expected {}, found {found}",
                step.precondition.attribute, step.precondition.equals
            ),
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(StepOutcome::Failed { error: e.to_string() }),
    }
}

/// Renders the target state of `changes` into `dir` and runs init, plan and (apply mode)
/// apply: `Ok(Ok(true))` when the plan had changes, `Ok(Err(why))` when it was refused (it
/// would destroy something), `Err` prefixed by the stage that failed.
async fn run<'a>(
    world: &WorldState,
    changes: impl IntoIterator<Item = &'a Change>,
    mode: &TerraformMode,
    dir: &Path,
    deploy: Mode,
) -> Result<Result<bool, String>, String> {
    // A fresh state: what an earlier run imported must not be planned for destruction now.
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("render: {}: {e}", dir.display()))?;
    }
    let (inventory, destructive) = crate::iac::target_state(world, changes);
    for (name, text) in crate::iac::terraform::render(&inventory, &world.scope.regions, &destructive) {
        crate::output::write_atomic(&dir.join(name), text.as_bytes()).map_err(|e| format!("render: {e}"))?;
    }
    let mut backend = TerraformBackend::locate(dir)
        .map_err(|e| format!("init: {e}"))?
        .with_env(mode.env.clone());
    if let Some(timeout) = mode.timeout {
        backend = backend.with_timeout(timeout);
    }
    backend.init().await.map_err(|e| format!("init: {e}"))?;
    let (planned, _) = backend.plan().await.map_err(|e| format!("plan: {e}"))?;
    let deletions = backend.planned_deletions().await.map_err(|e| format!("plan: {e}"))?;
    if !deletions.is_empty() {
        return Ok(Err(format!(
            "the terraform plan would destroy {}; refused (θ4 never destroys through Terraform)",
            deletions.join(", ")
        )));
    }
    if deploy == Mode::Apply && planned {
        backend.apply().await.map_err(|e| format!("apply: {e}"))?;
    }
    Ok(Ok(planned))
}
