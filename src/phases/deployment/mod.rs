//! θ4 Deployment: runs the execution plan's steps through the SDK, wave by wave.
//!
//! Dry-run by default: a dry run only reads (each step's precondition) and says what it would
//! do. An apply checks each step's precondition (a step whose resource drifted is refused),
//! takes its backup, acts, tags the resource `MiyabiManaged=true`, and validates by reading
//! back. The independent steps of a wave run at the same time (up to
//! [`DeploymentConfig::max_in_flight`], never two on one resource). When a step fails, no
//! further step starts, the steps in flight finish, then every step applied in the wave is
//! reverted, newest first, and no later wave runs.
//!
//! The guardrails are enforced again here, whatever the plan says, by [`Guarded`]: a decorator
//! around the executor that refuses a deny-listed operation before any request is sent and a
//! step that needs approval unless its id was approved.

pub mod executor;
mod guard;
pub mod journal;
pub mod report;
pub mod terraform;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::executor::{
    Backup, Checkpoint, DbMigration, MigrationStage, NoCheckpoint, SdkExecutor, StepExecutor, SwapStage, VolumeSwap,
    WaitPolicy, MANAGED_TAG, REPLACED_BY_TAG, REPLACES_TAG,
};
pub use self::guard::Guarded;
use self::journal::{FileJournal, Journal, JournalStore, JournalWriter, Progress};
pub use self::terraform::TerraformMode;
use crate::aws::{AwsError, AwsSession};
use crate::cycle::{CycleContext, Interrupt, Phase, PhaseId, PhaseOutcome};
use crate::guardrails::Guardrails;
use crate::plan::execution::{ExecutionPlan, Step};
use crate::plan::{Action, ResourceRef};
use crate::world::Coverage;
use crate::Result;

/// Why a step could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The resource no longer matches the plan (drift): the step is refused.
    #[error("step {step}: precondition failed on {attribute}: expected {expected}, found {found}")]
    Drift {
        /// The step.
        step: String,
        /// The attribute checked.
        attribute: String,
        /// What the plan expected.
        expected: Value,
        /// What AWS has.
        found: Value,
    },
    /// Reading back after the change did not show the desired value.
    #[error("step {step}: validation failed on {attribute}: expected {expected}, found {found}")]
    Validation {
        /// The step.
        step: String,
        /// The attribute checked.
        attribute: String,
        /// The desired value.
        expected: Value,
        /// What AWS has.
        found: Value,
    },
    /// The execution-time guardrails refused the step; nothing was sent.
    #[error("step {step} refused by the guardrails: {reason}")]
    Refused {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
    /// An instance did not reach a state in time.
    #[error("step {step}: timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// The step.
        step: String,
        /// What was awaited.
        waiting_for: String,
        /// How long.
        after: Duration,
    },
    /// A destructive step cannot be reverted; its backup is what remains.
    #[error("step {step} cannot be reverted; backup: {backup:?}")]
    Irreversible {
        /// The step.
        step: String,
        /// The backup taken before it.
        backup: Option<Backup>,
    },
    /// The step cannot be expressed as an AWS request.
    #[error("step {step} cannot be executed: {reason}")]
    Unsupported {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
}

/// Whether θ4 changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Read preconditions and report; no mutating call. The default.
    #[default]
    DryRun,
    /// Apply the approved steps.
    Apply,
}

/// Which steps needing approval a human approved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Approval {
    /// None: only steps needing no approval run.
    #[default]
    Nothing,
    /// Every step (`--approve all`).
    All,
    /// Exactly these step ids. Applying runs only these, even among steps needing no approval.
    Ids(BTreeSet<String>),
}

impl Approval {
    /// Whether step `id` was approved.
    #[must_use]
    pub fn approves(&self, id: &str) -> bool {
        match self {
            Self::Nothing => false,
            Self::All => true,
            Self::Ids(ids) => ids.contains(id),
        }
    }

    /// Whether step `id` is selected to run at all.
    #[must_use]
    pub fn selects(&self, id: &str) -> bool {
        match self {
            Self::Ids(ids) => ids.contains(id),
            _ => true,
        }
    }
}

/// Steps of one wave in flight at once, by default. A wave's steps are independent (θ3 puts
/// dependent ones in later waves); the session's limiter still paces their requests to the
/// mutating buckets, and resizes spend most of their time waiting for EC2's state times.
pub const DEFAULT_MAX_IN_FLIGHT: u16 = 8;

/// Settings of θ4.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// Dry-run (default) or apply.
    pub mode: Mode,
    /// What a human approved.
    pub approval: Approval,
    /// The guardrails enforced at execution time.
    pub guardrails: Guardrails,
    /// Only steps in these Regions run (the others are skipped, saying so); `None` runs all.
    pub regions: Option<BTreeSet<String>>,
    /// Where the apply journal is kept. An apply writes it before each step; the next apply
    /// finding it rolls the interrupted wave back first. `None` keeps none.
    pub journal: Option<Arc<dyn JournalStore>>,
    /// Steps of a wave in flight at once (at least 1). Steps on one resource always run one
    /// after another.
    pub max_in_flight: usize,
    /// What the latest capture did not read whole: steps on those resources are skipped, so
    /// that nothing is changed on a guess (a reviewed plan may predate the gap).
    pub partial: Coverage,
    /// Once raised, no step starts; the steps in flight finish (a graceful shutdown).
    pub interrupt: Interrupt,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            approval: Approval::default(),
            guardrails: Guardrails::default(),
            regions: None,
            journal: None,
            max_in_flight: usize::from(DEFAULT_MAX_IN_FLIGHT),
            partial: Coverage::default(),
            interrupt: Interrupt::new(),
        }
    }
}

impl DeploymentConfig {
    /// Apply mode with `approval`, everything else as by default.
    #[must_use]
    pub fn applying(approval: Approval) -> Self {
        Self {
            mode: Mode::Apply,
            approval,
            ..Self::default()
        }
    }

    /// Why `step` is not run under these settings (outside the Regions, not selected, or
    /// waiting for an approval), or `None` when it runs.
    #[must_use]
    pub fn skip_reason(&self, step: &Step) -> Option<String> {
        let region = &step.change.resource.region;
        if self.regions.as_ref().is_some_and(|scope| !scope.contains(region)) {
            Some(format!("Region {region} is outside this deployment's Regions"))
        } else if !self.approval.selects(&step.id) {
            Some("not among the approved step ids".into())
        } else if step.needs_approval && !self.approval.approves(&step.id) {
            Some(format!("needs approval: {}", step.approval_reasons.join("; ")))
        } else {
            let id = &step.change.resource.id;
            self.partial
                .gap(region, id)
                .map(|why| format!("the capture of {id} is partial ({why})"))
        }
    }
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepOutcome {
    /// Dry run: the precondition holds and the step would be applied.
    WouldApply,
    /// Applied and validated.
    Applied,
    /// The resource already had the desired value.
    AlreadyApplied,
    /// Not run: not selected, not approved, or an earlier wave failed.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Refused before any change: drift or the guardrails.
    Refused {
        /// Why.
        reason: String,
    },
    /// The step itself failed (its wave was then rolled back).
    Failed {
        /// The error.
        error: String,
    },
    /// Applied, then reverted because a later step of its wave failed.
    RolledBack {
        /// Why.
        reason: String,
    },
}

impl StepOutcome {
    /// The outcome's tag, as serialised: `applied`, `would_apply`, `skipped`, ….
    #[must_use]
    pub fn status(&self) -> &'static str {
        match self {
            Self::WouldApply => "would_apply",
            Self::Applied => "applied",
            Self::AlreadyApplied => "already_applied",
            Self::Skipped { .. } => "skipped",
            Self::Refused { .. } => "refused",
            Self::Failed { .. } => "failed",
            Self::RolledBack { .. } => "rolled_back",
        }
    }
}

/// One step's record in the deployment report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    /// The step id.
    pub id: String,
    /// Its wave.
    pub wave: usize,
    /// The action.
    pub action: Action,
    /// The resource.
    pub resource: ResourceRef,
    /// What happened.
    pub outcome: StepOutcome,
    /// The backup taken, if any.
    pub backup: Option<Backup>,
}

impl StepRecord {
    /// The record of `step` with `outcome` and no backup.
    #[must_use]
    pub fn of(step: &Step, outcome: StepOutcome) -> Self {
        Self {
            id: step.id.clone(),
            wave: step.wave,
            action: step.change.action,
            resource: step.change.resource.clone(),
            outcome,
            backup: None,
        }
    }
}

/// θ4's result, written as `deployment_report.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentReport {
    /// Dry-run or apply.
    pub mode: Mode,
    /// Every step of the plan, in order.
    pub steps: Vec<StepRecord>,
    /// The wave that failed and was rolled back, if any.
    pub failed_wave: Option<usize>,
    /// Steps of an earlier, interrupted apply that this run found in the journal and reverted.
    #[serde(default)]
    pub recovered: Vec<StepRecord>,
    /// When the apply ran, by the cycle's clock (θ6 judges the changes on the datapoints since
    /// then); `None` for a dry run or outside a cycle.
    #[serde(default)]
    pub applied_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl DeploymentReport {
    /// Steps applied and kept.
    #[must_use]
    pub fn applied(&self) -> usize {
        self.count("applied")
    }

    /// Steps whose outcome has this [`StepOutcome::status`].
    #[must_use]
    pub fn count(&self, status: &str) -> usize {
        self.steps.iter().filter(|s| s.outcome.status() == status).count()
    }
}

/// Runs `plan` through `executor` (wrapped by the caller in [`Guarded`] for execution-time
/// guardrails; [`Deployment`] always does).
pub async fn deploy(plan: &ExecutionPlan, executor: &dyn StepExecutor, config: &DeploymentConfig) -> DeploymentReport {
    let store = config.journal.as_ref().filter(|_| config.mode == Mode::Apply);
    let recovered = match store {
        Some(store) => match recover_from(store.as_ref(), executor).await {
            Ok(recovered) => recovered,
            // Without knowing what the last run left half done, nothing new is started.
            Err(e) => {
                let reason = format!("the last apply is not resolved, so nothing is applied: {e}");
                return refuse_all(plan, config.mode, &reason);
            }
        },
        None => Vec::new(),
    };
    let journal = store.map(|store| JournalWriter::new(Arc::clone(store)));
    let journal = journal.as_ref();
    let mut records: Vec<StepRecord> = plan
        .steps
        .iter()
        .map(|s| {
            StepRecord::of(
                s,
                StepOutcome::Skipped {
                    reason: "not reached".into(),
                },
            )
        })
        .collect();
    let mut failed_wave = None;
    // A rollback that failed: the journal stays for the next run to finish it.
    let mut unresolved = false;
    for wave in &plan.waves {
        if let Some(failed) = failed_wave {
            for (record, _) in records
                .iter_mut()
                .zip(&plan.steps)
                .filter(|(_, s)| s.wave == wave.index)
            {
                record.outcome = StepOutcome::Skipped {
                    reason: format!("wave {failed} failed and was rolled back"),
                };
            }
            continue;
        }
        let done = run_wave(plan, wave.index, executor, config, journal).await;
        // Applied steps in the order they finished, and the steps that failed.
        let mut applied: Vec<(usize, Option<Backup>)> = Vec::new();
        let mut failed: Vec<(usize, DeployError, Option<Backup>)> = Vec::new();
        for (k, result) in done {
            match result {
                Ok((outcome, backup)) => {
                    if outcome == StepOutcome::Applied {
                        applied.push((k, backup.clone()));
                    }
                    records[k].outcome = outcome;
                    records[k].backup = backup;
                }
                Err((error, backup)) => failed.push((k, error, backup)),
            }
        }
        if failed.is_empty() {
            continue;
        }
        unresolved |= roll_back(plan, wave.index, executor, journal, &mut records, &applied, &failed).await;
        failed_wave = Some(wave.index);
    }
    if config.interrupt.is_raised() {
        for record in &mut records {
            if matches!(&record.outcome, StepOutcome::Skipped { reason } if reason == "not reached") {
                record.outcome = StepOutcome::Skipped {
                    reason: "interrupted before it started".into(),
                };
            }
        }
    }
    // The run ended: nothing is left half done, unless a rollback failed.
    if unresolved {
        tracing::warn!("a rollback failed; the apply journal stays for the next run to revert it");
    } else if let Some(journal) = journal {
        if let Err(e) = journal.clear().await {
            tracing::warn!(journal = %journal.describe(), error = %e, "could not remove the apply journal");
        }
    }
    DeploymentReport {
        mode: config.mode,
        steps: records,
        failed_wave,
        recovered,
        applied_at: None,
    }
}

/// Rolls wave `wave` back after `failed` steps failed: the failed ones first (they may have
/// acted in part: a resize stopped the instance), then the `applied` ones, newest first.
/// Returns true when a revert failed: that step stays `Started` in the journal, for the next
/// run to revert, and is reported failed, never reverted.
async fn roll_back(
    plan: &ExecutionPlan,
    wave: usize,
    executor: &dyn StepExecutor,
    journal: Option<&JournalWriter>,
    records: &mut [StepRecord],
    applied: &[(usize, Option<Backup>)],
    failed: &[(usize, DeployError, Option<Backup>)],
) -> bool {
    let mut unresolved = false;
    let Some((first, first_error, _)) = failed.first() else {
        return false;
    };
    let reason = format!("step {} of wave {wave} failed: {first_error}", plan.steps[*first].id);
    for (k, error, backup) in failed {
        let step = &plan.steps[*k];
        tracing::warn!(step = %step.id, %error, "step failed; rolling back its wave");
        records[*k].outcome = StepOutcome::Failed {
            error: error.to_string(),
        };
        records[*k].backup.clone_from(backup);
        match executor.revert(step, backup.as_ref()).await {
            Ok(()) => mark(journal, &step.id, Progress::Reverted, None).await,
            Err(e) => {
                tracing::warn!(step = %step.id, error = %e, "could not revert the failed step");
                unresolved = true;
            }
        }
    }
    for (j, backup) in applied.iter().rev() {
        let step = &plan.steps[*j];
        records[*j].outcome = match executor.revert(step, backup.as_ref()).await {
            Ok(()) => {
                mark(journal, &step.id, Progress::Reverted, None).await;
                StepOutcome::RolledBack { reason: reason.clone() }
            }
            Err(e) => {
                mark(journal, &step.id, Progress::Started, backup.as_ref()).await;
                unresolved = true;
                StepOutcome::Failed {
                    error: format!("rollback after {reason} failed: {e}"),
                }
            }
        };
    }
    unresolved
}

/// Journals where step `id` got to, when there is a journal.
async fn mark(journal: Option<&JournalWriter>, id: &str, progress: Progress, backup: Option<&Backup>) {
    if let Some(journal) = journal {
        journal.mark(id, progress, backup).await;
    }
}

/// Runs the steps of wave `wave`, up to `config.max_in_flight` at a time; the steps on one
/// resource run one after another, in plan order, so that no resource is touched by two steps
/// at once. After a step fails no further step starts; those in flight finish. Returns each
/// step that ran with its result, in the order they finished.
async fn run_wave(
    plan: &ExecutionPlan,
    wave: usize,
    executor: &dyn StepExecutor,
    config: &DeploymentConfig,
    journal: Option<&JournalWriter>,
) -> Vec<(usize, StepResult)> {
    use futures::StreamExt;
    let mut lanes: Vec<((&str, &str), Vec<usize>)> = Vec::new();
    for (k, step) in plan.steps.iter().enumerate().filter(|(_, s)| s.wave == wave) {
        let key = (step.change.resource.region.as_str(), step.change.serialised_on());
        match lanes.iter_mut().find(|(r, _)| *r == key) {
            Some((_, lane)) => lane.push(k),
            None => lanes.push((key, vec![k])),
        }
    }
    let lanes = spread(lanes, |((region, _), lane)| {
        (*region, plan.steps[lane[0]].change.action)
    });
    let stop = std::sync::atomic::AtomicBool::new(false);
    let done = std::sync::Mutex::new(Vec::new());
    futures::stream::iter(lanes)
        .for_each_concurrent(config.max_in_flight.max(1), |(_, lane)| {
            let (stop, done) = (&stop, &done);
            async move {
                for k in lane {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) || config.interrupt.is_raised() {
                        return;
                    }
                    let result = run_step(&plan.steps[k], executor, config, journal).await;
                    if result.is_err() {
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    done.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((k, result));
                }
            }
        })
        .await;
    done.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `items` reordered so that consecutive ones differ in `key` where they can: round-robin over
/// the groups of equal keys, each group in its own order.
///
/// θ4 starts a wave's lanes in this order, keyed by Region and action: AWS meters each Region's
/// actions in buckets of their own, and lanes started in plan order (by saving, so one Region's
/// volume migrations first) would keep the steps in flight queued on one bucket while the
/// others stay full.
fn spread<T, K: Ord>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    use std::collections::{BTreeMap, VecDeque};
    let total = items.len();
    let mut groups: BTreeMap<K, VecDeque<T>> = BTreeMap::new();
    for item in items {
        groups.entry(key(&item)).or_default().push_back(item);
    }
    let mut queues: Vec<VecDeque<T>> = groups.into_values().collect();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        for queue in &mut queues {
            out.extend(queue.pop_front());
        }
    }
    out
}

/// Reverts what an interrupted apply left in the journal of `store`, then removes the journal.
/// Fails, keeping the journal, when it cannot be read or a step of it cannot be reverted.
async fn recover_from(
    store: &dyn JournalStore,
    executor: &dyn StepExecutor,
) -> std::result::Result<Vec<StepRecord>, String> {
    let Some(interrupted) = Journal::load(store).await.map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let recovered = recover(&interrupted, executor).await;
    // A step that could not be reverted stays journaled, and nothing new starts over it.
    if let Some(failed) = recovered
        .iter()
        .find(|r| matches!(r.outcome, StepOutcome::Failed { .. }))
    {
        return Err(format!(
            "step {} of an interrupted apply could not be reverted; the journal {} is kept for the next run",
            failed.id,
            store.describe()
        ));
    }
    if let Err(e) = store.clear().await {
        tracing::warn!(journal = %store.describe(), error = %e, "could not remove the recovered journal");
    }
    Ok(recovered)
}

/// A report refusing every step of `plan` for `reason`.
fn refuse_all(plan: &ExecutionPlan, mode: Mode, reason: &str) -> DeploymentReport {
    DeploymentReport {
        mode,
        steps: plan
            .steps
            .iter()
            .map(|s| {
                StepRecord::of(
                    s,
                    StepOutcome::Refused {
                        reason: reason.to_owned(),
                    },
                )
            })
            .collect(),
        failed_wave: None,
        recovered: Vec::new(),
        applied_at: None,
    }
}

/// Rolls back the wave an earlier run was in when it stopped, newest step first, and brings
/// every instance it touched back into service.
async fn recover(journal: &Journal, executor: &dyn StepExecutor) -> Vec<StepRecord> {
    let mut records = Vec::new();
    for entry in journal.interrupted() {
        let step = &entry.step;
        tracing::warn!(step = %step.id, progress = ?entry.progress, "reverting a step of an interrupted apply");
        let reverted = executor.revert(step, entry.backup.as_ref()).await;
        let restored = executor.restore_service(step).await;
        let outcome = match reverted.and(restored) {
            Ok(()) => StepOutcome::RolledBack {
                reason: format!("an earlier apply stopped in wave {}; this run reverted it", step.wave),
            },
            Err(e) => StepOutcome::Failed {
                error: format!("reverting a step of an interrupted apply failed: {e}"),
            },
        };
        records.push(StepRecord {
            backup: entry.backup.clone(),
            ..StepRecord::of(step, outcome)
        });
    }
    records
}

type StepResult = std::result::Result<(StepOutcome, Option<Backup>), (DeployError, Option<Backup>)>;

/// One step: selection, approval, precondition, then (apply mode) backup, act, tag, validate.
async fn run_step(
    step: &Step,
    executor: &dyn StepExecutor,
    config: &DeploymentConfig,
    journal: Option<&JournalWriter>,
) -> StepResult {
    if let Some(reason) = config.skip_reason(step) {
        return Ok((StepOutcome::Skipped { reason }, None));
    }
    let found = executor.read(step).await.map_err(|e| (e, None))?;
    if found == step.validation.equals && found != step.precondition.equals {
        return Ok((StepOutcome::AlreadyApplied, None));
    }
    if found != step.precondition.equals {
        let drift = DeployError::Drift {
            step: step.id.clone(),
            attribute: step.precondition.attribute.clone(),
            expected: step.precondition.equals.clone(),
            found,
        };
        return Ok((
            StepOutcome::Refused {
                reason: drift.to_string(),
            },
            None,
        ));
    }
    if config.mode == Mode::DryRun {
        return Ok((StepOutcome::WouldApply, None));
    }
    // On disk before anything changes, so that a kill from here on is recovered.
    if let Some(journal) = journal {
        journal.start(step).await;
    }
    let backup = match executor.backup(step).await {
        Ok(b) => b,
        // The guardrails refuse before any request: a refusal is not a failure of the wave.
        Err(DeployError::Refused { reason, .. }) => {
            mark(journal, &step.id, Progress::Reverted, None).await; // nothing was sent
            return Ok((StepOutcome::Refused { reason }, None));
        }
        Err(e) => return Err((e, None)),
    };
    let progress = Journaled {
        journal,
        step: &step.id,
        latest: std::sync::Mutex::new(None),
    };
    let acted = async {
        executor.apply(step, &progress).await?;
        if !step.change.is_destructive() {
            executor.tag(step).await?;
        }
        let after = executor.read(step).await?;
        if after == step.validation.equals {
            Ok(())
        } else {
            Err(DeployError::Validation {
                step: step.id.clone(),
                attribute: step.validation.attribute.clone(),
                expected: step.validation.equals.clone(),
                found: after,
            })
        }
    };
    let result = acted.await;
    // A multi-step change's record of what it made is its backup from here on.
    let backup = progress.latest().or(backup);
    let progress = if result.is_ok() {
        Progress::Applied
    } else {
        Progress::Started
    };
    mark(journal, &step.id, progress, backup.as_ref()).await;
    match result {
        Ok(()) => Ok((StepOutcome::Applied, backup)),
        Err(e) => Err((e, backup)),
    }
}

/// The [`Checkpoint`] of one step: each sub-step's record goes to the journal (when there is
/// one) before the next sub-step begins, and the latest is kept for a rollback in this run.
struct Journaled<'a> {
    journal: Option<&'a JournalWriter>,
    step: &'a str,
    latest: std::sync::Mutex<Option<Backup>>,
}

impl Journaled<'_> {
    fn latest(self) -> Option<Backup> {
        self.latest
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Checkpoint for Journaled<'_> {
    async fn reached(&self, progress: Backup) {
        mark(self.journal, self.step, Progress::Started, Some(&progress)).await;
        *self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(progress);
    }
}

/// θ4 as a cycle phase: takes θ3's execution plan from the context, deploys it through the SDK
/// behind the execution-time guardrails, and writes `deployment_report.md`.
#[derive(Debug, Clone)]
pub struct Deployment {
    regions: Vec<String>,
    config: DeploymentConfig,
    wait: WaitPolicy,
    reviewed: Option<ExecutionPlan>,
    terraform: Option<TerraformMode>,
}

impl Deployment {
    /// θ4 over `regions`: dry-run, standard AWS configuration.
    #[must_use]
    pub fn new(regions: Vec<String>) -> Self {
        Self {
            regions,
            config: DeploymentConfig::default(),
            wait: WaitPolicy::default(),
            reviewed: None,
            terraform: None,
        }
    }

    /// Applies through Terraform instead of the SDK executor: see
    /// [`terraform::deploy_with_terraform`]. The CLI gets the session's endpoint and profile as
    /// `AWS_ENDPOINT_URL` and `AWS_PROFILE`, and reads credentials the standard way.
    #[must_use]
    pub fn with_terraform(mut self, mode: TerraformMode) -> Self {
        self.terraform = Some(mode);
        self
    }

    /// The Regions whose clients θ4 needs for `plan`: its own, or every Region the plan touches.
    fn regions_for(&self, plan: &ExecutionPlan) -> Vec<String> {
        if self.regions.is_empty() {
            let all: BTreeSet<String> = plan.steps.iter().map(|s| s.change.resource.region.clone()).collect();
            all.into_iter().collect()
        } else {
            self.regions.clone()
        }
    }

    async fn connect(&self, aws: &AwsSession, plan: &ExecutionPlan) -> SdkExecutor {
        SdkExecutor::connect(&self.regions_for(plan), aws)
            .await
            .with_wait(self.wait)
    }

    /// Runs `plan` through Terraform in `dir`, rendering the target state from `world`.
    pub async fn deploy_with_terraform(
        &self,
        aws: &AwsSession,
        world: &crate::world::WorldState,
        plan: &ExecutionPlan,
        mode: &TerraformMode,
        dir: &std::path::Path,
    ) -> DeploymentReport {
        let mut mode = mode.clone();
        mode.env.extend(
            [
                ("AWS_ENDPOINT_URL", &aws.options().endpoint_url),
                ("AWS_PROFILE", &aws.options().profile),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v))),
        );
        let reader = self.connect(aws, plan).await;
        terraform::deploy_with_terraform(world, plan, &self.effective_config(), &mode, dir, &reader).await
    }

    /// Deploys this reviewed plan (for example an `execution_plan.json` a human edited) instead
    /// of θ3's. Steps whose precondition no longer holds are refused as drift.
    #[must_use]
    pub fn with_reviewed_plan(mut self, plan: ExecutionPlan) -> Self {
        self.reviewed = Some(plan);
        self
    }

    /// Runs `plan` through the SDK behind the execution-time guardrails. With Regions given,
    /// only their steps run; without, every Region the plan touches gets a client.
    pub async fn deploy(&self, aws: &AwsSession, plan: &ExecutionPlan) -> DeploymentReport {
        let config = self.effective_config();
        let sdk = self.connect(aws, plan).await;
        let guarded = Guarded::new(sdk, config.guardrails.clone(), config.approval.clone());
        deploy(plan, &guarded, &config).await
    }

    /// The settings with this θ4's Regions as the scope.
    fn effective_config(&self) -> DeploymentConfig {
        let mut config = self.config.clone();
        if !self.regions.is_empty() {
            config.regions = Some(self.regions.iter().cloned().collect());
        }
        config
    }

    /// Replaces the settings.
    #[must_use]
    pub fn with_config(mut self, config: DeploymentConfig) -> Self {
        self.config = config;
        self
    }

    /// Replaces how instance states are awaited.
    #[must_use]
    pub fn with_wait(mut self, wait: WaitPolicy) -> Self {
        self.wait = wait;
        self
    }
}

#[async_trait]
impl Phase for Deployment {
    fn id(&self) -> PhaseId {
        PhaseId::Deployment
    }

    async fn run(&self, ctx: &mut CycleContext) -> Result<PhaseOutcome> {
        let plan = match &self.reviewed {
            Some(reviewed) => reviewed,
            None => ctx.artefacts.require::<ExecutionPlan>("deployment")?,
        };
        let applied_at = ctx.clock.now();
        let mut this = std::borrow::Cow::Borrowed(self);
        this.to_mut().config.interrupt = ctx.interrupt.clone();
        if let Some(world) = ctx.artefacts.get::<crate::world::WorldState>() {
            let partial = world.coverage();
            if !partial.is_whole() {
                this.to_mut().config.partial = partial;
            }
        }
        let mut report = match (&this.terraform, &this.config.journal, ctx.output.dir()) {
            (Some(mode), _, dir) => {
                let world = ctx.artefacts.require::<crate::world::WorldState>("deployment")?;
                let dir = dir.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
                this.deploy_with_terraform(&ctx.aws, world, plan, mode, &dir.join("terraform-deploy"))
                    .await
            }
            (None, None, Some(dir)) => {
                this.to_mut().config.journal = Some(Arc::new(FileJournal::beside_reports(dir)));
                this.deploy(&ctx.aws, plan).await
            }
            _ => this.deploy(&ctx.aws, plan).await,
        };
        if report.mode == Mode::Apply {
            report.applied_at = Some(applied_at);
        }
        // The convergence rule counts what may run under this approval: a step waiting for an
        // approval that was not given does not keep the loop going.
        let config = this.effective_config();
        let applicable = plan.steps.iter().filter(|s| config.skip_reason(s).is_none()).count();
        let outcome = PhaseOutcome::deployed(applicable, report.applied());
        let resized: Vec<String> = report
            .steps
            .iter()
            .filter(|r| r.outcome == StepOutcome::Applied && r.action.changes_capacity())
            .map(|r| r.resource.id.clone())
            .collect();
        ctx.record_changes(resized.iter().map(String::as_str), applied_at.timestamp())?;
        ctx.output
            .write("deployment_report.md", report::render(&report).as_bytes())?;
        ctx.artefacts.put(report);
        Ok(outcome)
    }
}

impl crate::artefact::Artefact for DeploymentReport {
    const WHAT: &'static str = "a deployment report (θ4)";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assessment::ResourceKind;
    use crate::plan::execution::allocate;
    use crate::plan::{Change, Risk};
    use crate::world::{Completeness, ScanGap};

    #[test]
    fn lanes_start_round_robin_over_region_and_action_each_group_in_plan_order() {
        let lanes = vec![("a", 1), ("a", 2), ("a", 3), ("b", 4), ("a", 5), ("c", 6)];
        let order: Vec<i32> = spread(lanes, |(k, _)| *k).into_iter().map(|(_, n)| n).collect();
        assert_eq!(order, [1, 4, 6, 2, 3, 5]);
        assert!(spread(Vec::<(u8, u8)>::new(), |(k, _)| *k).is_empty());
    }

    #[test]
    fn a_step_on_a_resource_the_latest_capture_read_in_part_is_skipped() {
        let change = Change::new(
            Action::EnableVersioning,
            ResourceRef {
                kind: ResourceKind::S3Bucket,
                id: "logs".into(),
                region: "us-east-1".into(),
            },
            "versioning",
            serde_json::json!("off"),
            serde_json::json!("enabled"),
            "s3_bucket_object_versioning",
            "versioning is off".into(),
            Risk::Low,
        );
        let plan = allocate(vec![change], &crate::guardrails::Guardrails::default(), |_| None);
        let step = &plan.steps[0];
        let mut config = DeploymentConfig::applying(Approval::All);
        assert_eq!(config.skip_reason(step), None);
        config.partial = Coverage::of(&Completeness::Partial {
            gaps: vec![ScanGap {
                region: "us-east-1".into(),
                service: "s3".into(),
                operation: "GetBucketAcl".into(),
                resources: vec!["logs".into()],
                error: "AccessDenied".into(),
            }],
        });
        let reason = config.skip_reason(step).expect("skipped");
        assert!(
            reason.contains("partial") && reason.contains("GetBucketAcl"),
            "{reason}"
        );
    }
}
