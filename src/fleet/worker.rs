//! The worker: takes cycle requests from an SQS queue and runs each as one cycle in its
//! account, writing everything under `s3://BUCKET/<tenant>/<request>/`.
//!
//! What makes it safe to run many of, and to kill:
//!
//! - **Once per request id.** Before θ1 the worker claims the id with a conditional write
//!   ([`Lease`] at `.miyabi/claims/…`); a request whose result exists is acknowledged without
//!   running, one whose claim is live is left to its holder (its message comes back when the
//!   claim would have expired), one whose claim expired (its worker died) is taken over.
//! - **One applying cycle per account.** An `apply` request takes the account's lease first; its
//!   apply journal lives in the bucket ([`BucketJournal`]), so the worker that takes an expired
//!   lease over recovers what the dead one left half done.
//! - **A heartbeat.** While a request runs, the message's visibility timeout and the leases are
//!   extended, so no request runs twice at the same time; a lease lost (the worker stalled past
//!   it) interrupts the request.
//! - **Graceful shutdown.** [`Worker::interrupt`] (SIGTERM) stops receiving; each request in
//!   flight starts no new phase or θ4 step, finishes the steps begun, records its progress under
//!   `attempts/`, and makes its message visible again for another worker.
//! - **Malformed messages are never deleted**: the queue's redrive policy moves them to the
//!   dead-letter queue after its `maxReceiveCount` receives.
//! - **One account's quota for all.** Each job marks itself present in its account (a lease
//!   under `.miyabi/presence/<account>/`) and spends the worker's share divided among the jobs
//!   present there, so that a fleet on one account keeps to what one worker would spend.
//! - **The knowledge base** of a tenant in an account lives in the bucket; an applying request
//!   (the only one that changes it) writes it back under the account's lease.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::journal::BucketJournal;
use super::lease::{Lease, Taken};
use super::request::{Approve, CycleRequest, CycleResult, RequestError, RequestMode, SCHEMA_VERSION};
use super::store::{ResultsBucket, Written};
use super::summary::{AccountRun, RunStatus};
use super::AccountTarget;
use crate::aws::{AwsError, AwsOptions, AwsSession, Layered, LimitOptions};
use crate::cycle::{Cycle, CycleContext, CycleHook, Interrupt, PhaseId, PhaseOutcome, StopReason};
use crate::knowledge::KnowledgeBase;
use crate::phases::deployment::{Approval, Deployment, DeploymentConfig, Mode};
use crate::phases::discovery::MetricScan;
use crate::phases::{Discovery, DiscoveryConfig, Learning, LearningConfig, Monitoring, MonitoringConfig};
use crate::phases::{Optimization, Planning};
use crate::run_report::RunRecorder;
use crate::{Error, Result};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The queue of cycle requests.
    pub queue_url: String,
    /// Where results, claims, leases, journals and knowledge bases go.
    pub results_bucket: String,
    /// The Region of the queue and the bucket.
    pub region: String,
    /// Requests run at once.
    pub concurrency: usize,
    /// How long a received message stays invisible, and a claim or lease lives, without a
    /// heartbeat (3,600 s in the deployment; seconds in tests).
    pub visibility_timeout: Duration,
    /// How long one receive waits for a message (SQS long polling, at most 20 s).
    pub wait_time: Duration,
    /// This worker's name in claims and leases: unique in the fleet.
    pub worker_id: String,
    /// θ1's metric lookback, hours.
    pub lookback_hours: u32,
    /// θ4's steps of a wave in flight at once, per request.
    pub max_in_flight: usize,
    /// How AWS is reached (the worker's own credentials; a request's role is assumed with them).
    pub aws: AwsOptions,
    /// A folder for the cycles' files before they are uploaded; the system's temporary folder
    /// by default.
    pub scratch: Option<PathBuf>,
}

impl WorkerConfig {
    /// A worker of `queue_url` writing to `results_bucket` in `region`, with the defaults: one
    /// request at a time, 3,600 s visibility, 20 s long polls, 14 days of metrics.
    #[must_use]
    pub fn new(queue_url: impl Into<String>, results_bucket: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            queue_url: queue_url.into(),
            results_bucket: results_bucket.into(),
            region: region.into(),
            concurrency: 1,
            visibility_timeout: Duration::from_secs(3600),
            wait_time: Duration::from_secs(20),
            worker_id: default_worker_id(),
            lookback_hours: 14 * 24,
            max_in_flight: usize::from(crate::phases::deployment::DEFAULT_MAX_IN_FLIGHT),
            aws: AwsOptions::default(),
            scratch: None,
        }
    }

    /// How often the heartbeat extends the message and the leases: a third of the visibility
    /// timeout, so that two beats may fail before anything expires.
    #[must_use]
    pub fn heartbeat(&self) -> Duration {
        (self.visibility_timeout / 3).max(Duration::from_millis(200))
    }
}

/// `<host>-<pid>-<random>`: unique across the tasks of a fleet, readable in a lease.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Its cycle ran and its result was written (status inside).
    Ran(RunStatus),
    /// Its result existed already: acknowledged without running.
    AlreadyDone,
    /// Another worker holds its claim: left to come back when the claim would expire.
    ClaimedElsewhere,
    /// Not a request: left for the dead-letter queue.
    Malformed,
    /// Interrupted (shutdown, or a lease lost): progress recorded, message visible again.
    Interrupted,
    /// The worker could not do its part (the bucket or queue failed): the message comes back
    /// after its visibility timeout.
    Failed(String),
}

impl Handled {
    /// The outcome's name in [`WorkerStats::handled`].
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ran(RunStatus::Succeeded) => "succeeded",
            Self::Ran(RunStatus::Partial) => "partial",
            Self::Ran(RunStatus::Failed) => "failed",
            Self::Ran(RunStatus::Refused) => "refused",
            Self::AlreadyDone => "already_done",
            Self::ClaimedElsewhere => "claimed_elsewhere",
            Self::Malformed => "malformed",
            Self::Interrupted => "interrupted",
            Self::Failed(_) => "worker_failed",
        }
    }
}

/// Counts of what a worker did, for its exit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Messages received.
    pub received: usize,
    /// By outcome.
    pub handled: BTreeMap<String, usize>,
}

/// A worker of one queue.
#[derive(Debug)]
pub struct Worker {
    config: WorkerConfig,
    home: Arc<AwsSession>,
    interrupt: Interrupt,
    /// Jobs begun: each holds its claims and leases under a name of its own.
    jobs: std::sync::atomic::AtomicU64,
    /// True once the worker stopped receiving: an interrupted request gives its message back
    /// only then, so that this worker's last long poll cannot take it again (each receive
    /// counts towards the dead-letter queue).
    receiving_stopped: tokio::sync::watch::Sender<bool>,
}

struct Message {
    body: String,
    receipt: String,
    id: String,
    receives: u32,
}

impl Worker {
    /// A worker with `config`; nothing is called until [`Worker::run`].
    #[must_use]
    pub fn new(config: WorkerConfig) -> Self {
        let home = Arc::new(AwsSession::new(config.aws.clone()));
        Self {
            config,
            home,
            interrupt: Interrupt::new(),
            jobs: std::sync::atomic::AtomicU64::new(0),
            receiving_stopped: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Raise it to wind the worker down (SIGTERM): no message is received after it, and the
    /// requests in flight stop as [`Handled::Interrupted`] says.
    #[must_use]
    pub fn interrupt(&self) -> Interrupt {
        self.interrupt.clone()
    }

    /// Receives and handles messages until interrupted, `concurrency` at a time, then waits for
    /// the requests in flight to wind down.
    ///
    /// # Errors
    /// The typed error of a receive that failed even after retries (the queue is gone, or the
    /// credentials may not read it).
    pub async fn run(self: Arc<Self>) -> std::result::Result<WorkerStats, AwsError> {
        let clients = self.home.clients(&self.config.region).await;
        let sqs = clients.sqs;
        let mut stats = WorkerStats::default();
        let mut running = tokio::task::JoinSet::new();
        let concurrency = self.config.concurrency.max(1);
        let mut failure = None;
        while !self.interrupt.is_raised() {
            while let Some(done) = running.try_join_next() {
                tally(&mut stats, &done);
            }
            let free = concurrency.saturating_sub(running.len());
            if free == 0 {
                // Every slot busy: wait for one, or for an interrupt (whose requests wait for
                // the receiving to stop before they give their messages back).
                tokio::select! {
                    done = running.join_next() => {
                        if let Some(done) = done {
                            tally(&mut stats, &done);
                        }
                    }
                    () = self.interrupt.raised() => {}
                }
                continue;
            }
            let messages = match self.receive(&sqs, free).await {
                Ok(messages) => messages,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            stats.received += messages.len();
            if self.interrupt.is_raised() {
                // Received by the long poll that was in flight when the interrupt came.
                for message in &messages {
                    if let Err(e) =
                        change_visibility(&sqs, &self.config.queue_url, &message.receipt, Duration::ZERO).await
                    {
                        tracing::warn!(message = %message.id, error = %e, "could not give a message back");
                    }
                }
                break;
            }
            for message in messages {
                let worker = Arc::clone(&self);
                running.spawn(async move { worker.handle(message).await });
            }
        }
        self.receiving_stopped.send_replace(true);
        while let Some(done) = running.join_next().await {
            tally(&mut stats, &done);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    /// One long poll. It is never abandoned: a receive whose answer is dropped would still
    /// count towards the dead-letter queue and hide its messages for the visibility timeout,
    /// so an interrupt is noticed within `wait_time`.
    async fn receive(
        &self,
        sqs: &Layered<aws_sdk_sqs::Client>,
        up_to: usize,
    ) -> std::result::Result<Vec<Message>, AwsError> {
        let wait = i32::try_from(self.config.wait_time.as_secs().min(20)).unwrap_or(20);
        let visibility = seconds(self.config.visibility_timeout);
        let max = i32::try_from(up_to.min(10)).unwrap_or(10);
        let receive = sqs.layer.call("ReceiveMessage", || {
            sqs.client
                .receive_message()
                .queue_url(&self.config.queue_url)
                .max_number_of_messages(max)
                .wait_time_seconds(wait)
                .visibility_timeout(visibility)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
        });
        let out = receive.await?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Message {
                    body: m.body().unwrap_or_default().to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    id: m.message_id().unwrap_or_default().to_owned(),
                    receives: m
                        .attributes()
                        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1),
                })
            })
            .collect())
    }

    /// Handles one message end to end; every failure is logged and named.
    async fn handle(&self, message: Message) -> Handled {
        let job = Job::new(self).await;
        let handled = job.run(&message).await;
        if let Handled::Failed(why) = &handled {
            tracing::warn!(message = %message.id, error = %why, "request failed on the worker's side; it comes back after its visibility timeout");
        }
        handled
    }
}

fn tally(totals: &mut WorkerStats, done: &std::result::Result<Handled, tokio::task::JoinError>) {
    let kind = done.as_ref().map_or("worker_failed", Handled::kind);
    *totals.handled.entry(kind.to_owned()).or_default() += 1;
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// One message's work, with a session of its own for the queue and the bucket (so that the
/// result counts this request's calls only).
struct Job<'w> {
    worker: &'w Worker,
    /// `<worker id>#<job>`: two jobs of one worker never share a claim or a lease.
    holder: String,
    session: Arc<AwsSession>,
    sqs: Layered<aws_sdk_sqs::Client>,
    bucket: ResultsBucket,
    started: chrono::DateTime<Utc>,
}

impl<'w> Job<'w> {
    async fn new(worker: &'w Worker) -> Self {
        let session = Arc::new(AwsSession::new(worker.config.aws.clone()));
        let clients = session.clients(&worker.config.region).await;
        let job = worker.jobs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self {
            bucket: ResultsBucket::new(clients.s3, &worker.config.results_bucket),
            sqs: clients.sqs,
            session,
            holder: format!("{}#{job}", worker.config.worker_id),
            worker,
            started: Utc::now(),
        }
    }

    fn config(&self) -> &WorkerConfig {
        &self.worker.config
    }

    async fn run(&self, message: &Message) -> Handled {
        match CycleRequest::parse(&message.body) {
            Ok(request) => match self.run_request(message, &request).await {
                Ok(handled) => handled,
                Err(e) => Handled::Failed(format!(
                    "request {} of tenant {}: {e}",
                    request.request_id, request.tenant_id
                )),
            },
            Err(e @ RequestError::Malformed { .. }) => {
                tracing::error!(message = %message.id, receives = message.receives, error = %e, "malformed message: left for the dead-letter queue");
                // Visible again at once, so that it spends its receives and reaches the
                // dead-letter queue without waiting out the visibility timeout each time.
                let _ = self.set_visibility(message, Duration::ZERO).await;
                Handled::Malformed
            }
            Err(RequestError::Refused { request, reason }) => match self.refuse(message, &request, &reason).await {
                Ok(()) => Handled::Ran(RunStatus::Refused),
                Err(e) => Handled::Failed(e.to_string()),
            },
        }
    }

    /// Writes a `refused` result for a well-formed request that cannot run, and acknowledges it.
    async fn refuse(&self, message: &Message, request: &CycleRequest, reason: &str) -> Result<()> {
        tracing::warn!(tenant = %request.tenant_id, request = %request.request_id, reason, "request refused");
        let result = self.result(
            request,
            RunStatus::Refused,
            Some(reason.to_owned()),
            None,
            0,
            Vec::new(),
        );
        self.write_result(request, &result).await?;
        self.acknowledge(message).await?;
        Ok(())
    }

    async fn run_request(&self, message: &Message, request: &CycleRequest) -> Result<Handled> {
        let result_key = format!("{}result.json", request.prefix());
        if self.bucket.get(&result_key).await?.is_some() {
            self.acknowledge(message).await?;
            return Ok(Handled::AlreadyDone);
        }
        let claim_key = format!(".miyabi/claims/{}/{}.json", request.tenant_id, request.request_id);
        let claim = match Lease::take(&self.bucket, &claim_key, &self.holder, self.config().visibility_timeout).await? {
            Taken::Held(claim) => claim,
            Taken::Busy { holder, expires_in } => {
                tracing::info!(request = %request.request_id, %holder, "claimed by another worker; looking again when its claim would expire");
                self.set_visibility(message, expires_in + Duration::from_secs(1))
                    .await?;
                return Ok(Handled::ClaimedElsewhere);
            }
        };
        // A result written between the check above and the claim: done.
        if self.bucket.get(&result_key).await?.is_some() {
            claim.release().await?;
            self.acknowledge(message).await?;
            return Ok(Handled::AlreadyDone);
        }
        let interrupt = self.worker.interrupt.child();
        let heartbeat = Heartbeat::start(self, message, *claim, interrupt.clone());
        let outcome = self.run_claimed(request, &heartbeat, &interrupt).await;
        let Held {
            claim,
            account,
            presence,
        } = heartbeat.stop().await;
        for lease in [account, presence].into_iter().flatten() {
            lease.release().await?;
        }
        let handled = match outcome {
            Ok(Some(result)) => {
                self.write_result(request, &result).await?;
                self.acknowledge(message).await?;
                Handled::Ran(result.status)
            }
            Ok(None) => {
                // Interrupted: another worker runs it again from the start. When the worker
                // is stopping, not before its last receive is over.
                if self.worker.interrupt.is_raised() {
                    let mut stopped = self.worker.receiving_stopped.subscribe();
                    let _ = stopped.wait_for(|stopped| *stopped).await;
                }
                self.set_visibility(message, Duration::ZERO).await?;
                Handled::Interrupted
            }
            Err(e) => {
                // The worker's own failure: the message comes back for another try.
                if let Some(claim) = claim {
                    claim.release().await?;
                }
                return Err(e);
            }
        };
        if let Some(claim) = claim {
            claim.release().await?;
        }
        Ok(handled)
    }

    /// Runs the cycle of a claimed request: `Some(result)` when it ended, `None` when it was
    /// interrupted (its progress is under `attempts/`).
    async fn run_claimed(
        &self,
        request: &CycleRequest,
        heartbeat: &Heartbeat,
        interrupt: &Interrupt,
    ) -> Result<Option<CycleResult>> {
        let own = match &request.account {
            Some(_) => None,
            None => Some(self.session.verify(&self.config().region).await?),
        };
        let target = match (&request.account, own) {
            (Some(role), _) => AccountTarget::assuming(role.clone()).map_err(|e| Error::Config(e.to_string()))?,
            (None, Some(account_id)) => AccountTarget { account_id, role: None },
            (None, None) => unreachable!("the worker's own account was read above"),
        };
        if request.mode == RequestMode::Apply {
            let key = format!(".miyabi/leases/{}.json", target.account_id);
            loop {
                match Lease::take(&self.bucket, &key, &self.holder, self.config().visibility_timeout).await? {
                    Taken::Held(lease) => {
                        if let Some(dead) = lease.took_over() {
                            tracing::warn!(account = %target.account_id, %dead, "took over an expired account lease: recovering its apply");
                        }
                        heartbeat.hold(*lease).await;
                        break;
                    }
                    Taken::Busy { holder, expires_in } => {
                        tracing::info!(account = %target.account_id, %holder, "waiting for the account's lease");
                        let again = expires_in
                            .min(self.config().heartbeat())
                            .max(Duration::from_millis(100));
                        tokio::select! {
                            () = tokio::time::sleep(again) => {}
                            () = interrupt.raised() => return Ok(None),
                        }
                    }
                }
            }
        }
        let scratch = self
            .config()
            .scratch
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(format!(
                "miyabi-worker-{}-{}-{}",
                self.config().worker_id,
                request.tenant_id,
                request.request_id
            ));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        let ran = self.run_cycle(request, &target, &scratch, heartbeat, interrupt).await;
        let _ = std::fs::remove_dir_all(&scratch);
        ran
    }

    async fn run_cycle(
        &self,
        request: &CycleRequest,
        target: &AccountTarget,
        scratch: &Path,
        heartbeat: &Heartbeat,
        interrupt: &Interrupt,
    ) -> Result<Option<CycleResult>> {
        let started = Instant::now();
        let share = self.enter(&target.account_id, heartbeat).await?;
        let account = Arc::new(target.session(&AwsOptions {
            limits: share,
            ..self.config().aws.clone()
        }));
        if let Err(e) = account.verify(&self.config().region).await {
            let run = AccountRun::failed(target, &e.into(), account.stats(), started.elapsed());
            let error = run.error.clone();
            return Ok(Some(self.result(
                request,
                RunStatus::Failed,
                error,
                Some(run),
                0,
                Vec::new(),
            )));
        }
        let kb_key = format!(".miyabi/knowledge/{}/{}.redb", request.tenant_id, target.account_id);
        let kb_path = scratch.join("knowledge.redb");
        if let Some(kb) = self.bucket.get(&kb_key).await? {
            std::fs::write(&kb_path, kb.body).map_err(|e| Error::io(&kb_path, e))?;
        }
        let out = scratch.join("out");
        let knowledge = Arc::new(KnowledgeBase::open(&kb_path)?);
        let mut ctx = CycleContext::new(Arc::clone(&account))
            .with_out_dir(&out)
            .with_knowledge_base(knowledge)?;
        ctx.interrupt = interrupt.clone();
        let journal = (request.mode == RequestMode::Apply)
            .then(|| Arc::new(BucketJournal::new(self.bucket.clone(), &target.account_id)) as _);
        let recorder = Arc::new(RunRecorder::new());
        let bill = Arc::new(MetricBill::default());
        let cycle = cycle_for(request, self.config(), journal)
            .with_hook(recorder.clone())
            .with_hook(bill.clone());
        let report = cycle.run(&mut ctx).await;
        recorder.write(&report, &mut ctx.output)?;
        let recovered = ctx
            .artefacts
            .get::<crate::phases::deployment::DeploymentReport>()
            .map_or(0, |r| r.recovered.len());
        let interrupted = matches!(report.stop, StopReason::Interrupted { .. });
        let prefix = if interrupted {
            format!("{}attempts/{}/", request.prefix(), self.config().worker_id)
        } else {
            request.prefix()
        };
        let outputs = self.upload(&out, ctx.output.written(), &prefix).await?;
        drop(ctx);
        if request.mode == RequestMode::Apply && !interrupted {
            let body = std::fs::read(&kb_path).map_err(|e| Error::io(&kb_path, e))?;
            self.bucket.put(&kb_key, body).await?;
        }
        if interrupted {
            return Ok(None);
        }
        let run = AccountRun::of(target, &report, account.stats(), started.elapsed());
        let (status, error) = (run.status, run.error.clone());
        let mut result = self.result(request, status, error, Some(run), recovered, outputs);
        result.metrics_requested = bill.0.load(std::sync::atomic::Ordering::Relaxed);
        result.quota_share = Some(account.limiter().options().share);
        Ok(Some(result))
    }

    /// Marks this job present in `account` and returns the quota share it may spend there:
    /// the worker's own, divided among the jobs present (this one included), so that the
    /// fleet's workers on one account keep together to what one would spend. Counted once, as
    /// the cycle begins; a worker that joins later divides its own share only, and the
    /// limiter's backing off on throttles covers the overlap.
    async fn enter(&self, account: &str, heartbeat: &Heartbeat) -> Result<LimitOptions> {
        let prefix = format!(".miyabi/presence/{account}/");
        let name: String = self
            .holder
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let key = format!("{prefix}{name}.json");
        if let Taken::Held(presence) =
            Lease::take(&self.bucket, &key, &self.holder, self.config().visibility_timeout).await?
        {
            heartbeat.hold_presence(*presence).await;
        }
        let present = Lease::live_holders(&self.bucket, &prefix).await?;
        let mine = usize::from(!present.contains(&self.holder));
        let share = self.config().aws.limits.divided(present.len() + mine);
        if present.len() + mine > 1 {
            tracing::info!(%account, workers = present.len() + mine, share = share.share, "sharing the account's quota");
        }
        Ok(share)
    }

    /// Uploads the files a cycle wrote under `prefix`, each at its path below `root`.
    async fn upload(&self, root: &Path, written: &[PathBuf], prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        for path in written {
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let key = format!("{prefix}{}", relative.join("/"));
            let body = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            self.bucket.put(&key, body).await?;
            keys.push(key);
        }
        Ok(keys)
    }

    fn result(
        &self,
        request: &CycleRequest,
        status: RunStatus,
        error: Option<String>,
        run: Option<AccountRun>,
        recovered_steps: usize,
        outputs: Vec<String>,
    ) -> CycleResult {
        CycleResult {
            schema_version: SCHEMA_VERSION,
            status,
            request: request.clone(),
            worker: self.config().worker_id.clone(),
            started_at: self.started,
            finished_at: Utc::now(),
            error,
            run,
            worker_api_calls: self.session.stats().per_service(),
            metrics_requested: 0,
            quota_share: None,
            recovered_steps,
            outputs,
        }
    }

    /// Writes `result.json` once: a result already there (another worker's) is kept.
    async fn write_result(&self, request: &CycleRequest, result: &CycleResult) -> Result<()> {
        let key = format!("{}result.json", request.prefix());
        let body = serde_json::to_vec_pretty(result).map_err(|e| Error::Config(format!("result.json: {e}")))?;
        if self.bucket.create(&key, body).await? == Written::Lost {
            tracing::warn!(%key, "a result was already written; kept");
        }
        Ok(())
    }

    async fn acknowledge(&self, message: &Message) -> std::result::Result<(), AwsError> {
        let sqs = &self.sqs;
        sqs.layer
            .call("DeleteMessage", || {
                sqs.client
                    .delete_message()
                    .queue_url(&self.config().queue_url)
                    .receipt_handle(&message.receipt)
                    .send()
            })
            .await
            .map(|_| ())
    }

    async fn set_visibility(&self, message: &Message, visible_in: Duration) -> std::result::Result<(), AwsError> {
        change_visibility(&self.sqs, &self.config().queue_url, &message.receipt, visible_in).await
    }
}

async fn change_visibility(
    sqs: &Layered<aws_sdk_sqs::Client>,
    queue_url: &str,
    receipt: &str,
    visible_in: Duration,
) -> std::result::Result<(), AwsError> {
    let secs = i32::try_from(visible_in.as_secs()).unwrap_or(i32::MAX).min(43_200);
    sqs.layer
        .call("ChangeMessageVisibility", || {
            sqs.client
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(secs)
                .send()
        })
        .await
        .map(|_| ())
}

/// Extends a running request's message and leases every [`WorkerConfig::heartbeat`]; raises
/// the request's interrupt when a lease was lost.
struct Heartbeat {
    held: Arc<tokio::sync::Mutex<Held>>,
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

struct Held {
    claim: Option<Lease>,
    account: Option<Lease>,
    /// Says this job works in the account: the other workers there count it.
    presence: Option<Lease>,
}

impl Heartbeat {
    fn start(job: &Job<'_>, message: &Message, claim: Lease, interrupt: Interrupt) -> Self {
        let held = Arc::new(tokio::sync::Mutex::new(Held {
            claim: Some(claim),
            account: None,
            presence: None,
        }));
        let (sqs, queue_url, receipt) = (job.sqs.clone(), job.config().queue_url.clone(), message.receipt.clone());
        let (every, visibility) = (job.config().heartbeat(), job.config().visibility_timeout);
        let (beat_held, stop) = (Arc::clone(&held), Arc::new(tokio::sync::Notify::new()));
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            loop {
                // Stopped only between beats: a renewal cut short would leave the lease's
                // entity tag behind the bucket's, and its release would fail.
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = stopped.notified() => return,
                }
                if let Err(e) = change_visibility(&sqs, &queue_url, &receipt, visibility).await {
                    tracing::warn!(error = %e, "heartbeat: could not extend the message's visibility");
                }
                let held = beat_held.lock().await;
                if let Some(presence) = &held.presence {
                    // Only counted by others: one lost (deleted after a stall) is not worth
                    // stopping for.
                    if let Err(e) = presence.renew().await {
                        tracing::warn!(lease = presence.key(), error = %e, "heartbeat: could not renew");
                    }
                }
                for lease in [&held.claim, &held.account].into_iter().flatten() {
                    match lease.renew().await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(
                                lease = lease.key(),
                                "heartbeat: lease lost to another worker; interrupting the request"
                            );
                            interrupt.raise();
                        }
                        Err(e) => tracing::warn!(lease = lease.key(), error = %e, "heartbeat: could not renew"),
                    }
                }
            }
        });
        Self { held, stop, task }
    }

    /// Adds the account's lease to what the heartbeat renews.
    async fn hold(&self, lease: Lease) {
        self.held.lock().await.account = Some(lease);
    }

    /// Adds the job's presence in its account to what the heartbeat renews.
    async fn hold_presence(&self, lease: Lease) {
        self.held.lock().await.presence = Some(lease);
    }

    /// Stops beating; returns what it held.
    async fn stop(self) -> Held {
        self.stop.notify_one();
        let _ = self.task.await;
        let mut held = self.held.lock().await;
        Held {
            claim: held.claim.take(),
            account: held.account.take(),
            presence: held.presence.take(),
        }
    }
}

/// Sums the `GetMetricData` metrics θ1 requested over a request's iterations.
#[derive(Debug, Default)]
struct MetricBill(std::sync::atomic::AtomicU64);

#[async_trait::async_trait]
impl CycleHook for MetricBill {
    async fn after(&self, phase: PhaseId, _: &PhaseOutcome, ctx: &mut CycleContext) -> Result<()> {
        if phase == PhaseId::Discovery {
            if let Some(scan) = ctx.artefacts.get::<MetricScan>() {
                self.0
                    .fetch_add(scan.series_requested, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The loop a request runs: the six phases in its Regions, θ4 applying what it approved (with
/// the journal in the bucket) or dry-running.
fn cycle_for(
    request: &CycleRequest,
    config: &WorkerConfig,
    journal: Option<Arc<dyn crate::phases::deployment::journal::JournalStore>>,
) -> Cycle {
    let regions = request.regions.clone();
    let discovery = Discovery::new(DiscoveryConfig {
        regions: regions.clone(),
        lookback_hours: config.lookback_hours,
        ..DiscoveryConfig::default()
    });
    let approval = match &request.approve {
        None => Approval::Nothing,
        Some(Approve::All(_)) => Approval::All,
        Some(Approve::Ids(ids)) => Approval::Ids(ids.iter().cloned().collect()),
    };
    let deployment = Deployment::new(regions).with_config(DeploymentConfig {
        mode: match request.mode {
            RequestMode::Apply => Mode::Apply,
            RequestMode::DryRun => Mode::DryRun,
        },
        approval,
        journal,
        max_in_flight: config.max_in_flight,
        ..DeploymentConfig::default()
    });
    Cycle::new()
        .with_phase(Arc::new(discovery))
        .with_phase(Arc::new(Planning::default()))
        .with_phase(Arc::new(Optimization::default()))
        .with_phase(Arc::new(deployment))
        .with_phase(Arc::new(Monitoring::new(MonitoringConfig::default())))
        .with_phase(Arc::new(Learning::new(LearningConfig::default())))
        .with_max_iterations(request.iterations())
}
