//! The fleet under AWS's limits: worker processes of the CLI take cycle requests from SQS and
//! run them on a seeded account behind the test kit's proxy in its AWS-like mode (50 ms a call,
//! AWS's documented buckets, EC2's stop and start times), writing results to S3.
//!
//! ```text
//! cargo bench --bench fleet -- [--instances 200] [--workers 2] [--dry-runs 6] [--applies 2]
//!                              [--faulty 6] [--visibility 60] [--max-in-flight 8]
//! ```
//!
//! Three batches, one after the other, each submitted at once:
//!
//! 1. **dry runs**: the loop without changes (one iteration);
//! 2. **applies**: `approve: all` until the loop converges; the account's lease makes them run
//!    one after another, and the first does the work (stops and starts wait EC2's state times);
//! 3. **faults**: dry runs under throttling storms (every 20 s, bursts of EC2, CloudWatch and S3
//!    throttling errors beyond the AWS-like mode's own), and a worker SIGKILLed mid-request and
//!    replaced, as ECS replaces a task; its request comes back when its message's visibility
//!    timeout (`--visibility`, the claim's life too) runs out.
//!
//! Per batch: requests by outcome (a `partial` one finished with the reads that failed marked
//! missing), cycle time (the loop in the account, an apply's wait for the account's lease left
//! out) and end-to-end latency (submitted to result; it includes queueing behind the workers)
//! at p50 and p99 (with a handful of requests, p99 is the slowest), cycles per hour and per day
//! of one worker running one request at a time (3,600 s / mean cycle time), and the cost of a
//! cycle: the `GetMetricData` metrics it requested (USD 0.01 per 1,000), its S3 and SQS
//! requests (USD 0.005 per 1,000 S3 PUT-class requests, USD 0.40 per million SQS requests;
//! every S3 request counted as PUT-class, an upper bound), and the time it held its worker
//! (lease wait included) as Fargate task time at 1 vCPU and 2 GB (USD 0.04048 per vCPU-hour,
//! USD 0.004445 per GB-hour): us-east-1 list prices, Linux/x86.
//! The plan's KPIs are printed beside them.
//!
//! The estate lives in one account (the emulators' default), the queue and the results bucket
//! in another (the fleet's): the workers get the fleet role's credentials in their environment,
//! as an ECS task gets its task role's, and assume the estate's role for each request. The
//! workers share the estate account's buckets at the proxy, as the tasks of a fleet share an
//! account's quota; each worker's limiter takes its default share of them. Two cores run the
//! workers, the proxy and both emulators here: cycle times are this machine's, not AWS's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use miyabi_aws::aws::{AssumeRole, AwsOptions, AwsSession};
use miyabi_aws::fleet::{CycleRequest, CycleResult, ResultsBucket, RunStatus};
use miyabi_aws_testkit::ec2_states::StateTimes;
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::proxy::{Fault, FaultProxy, FaultRule};
use miyabi_aws_testkit::quota::AwsLike;
use miyabi_aws_testkit::seed::{seed_demo, DemoSpec};

mod support;
use support::{arg, number};

/// The account the emulators call their own: where the demo estate is seeded.
const ESTATE_ACCOUNT: &str = "123456789012";
/// The fleet's account: its queue, its results bucket.
const FLEET_ACCOUNT: &str = "210000000900";
/// Where the queue and the bucket live.
const HOME_REGION: &str = "us-east-1";

/// us-east-1 list prices, USD.
const USD_PER_1000_METRICS: f64 = 0.01;
const USD_PER_1000_S3_REQUESTS: f64 = 0.005;
const USD_PER_MILLION_SQS_REQUESTS: f64 = 0.40;
const USD_PER_VCPU_HOUR: f64 = 0.04048;
const USD_PER_GB_HOUR: f64 = 0.004_445;
const TASK_VCPU: f64 = 1.0;
const TASK_GB: f64 = 2.0;

/// The plan's KPIs per worker.
const PLAN_CYCLES_PER_DAY: f64 = 96.0;
const PLAN_P99_SECONDS: f64 = 30.0 * 60.0;
const PLAN_SUCCESS: f64 = 0.95;
const PLAN_USD_PER_CYCLE: f64 = 0.30;

fn fleet_role() -> AssumeRole {
    AssumeRole::new(format!("arn:aws:iam::{FLEET_ACCOUNT}:role/MiyabiFleetTask")).expect("a role ARN")
}

fn estate_role() -> String {
    format!("arn:aws:iam::{ESTATE_ACCOUNT}:role/MiyabiAudit")
}

/// The queue, the bucket and the worker processes.
struct Fleet {
    proxy: FaultProxy,
    /// The fleet account, straight to the emulators: for the bench's own reads and writes,
    /// which neither spend the AWS-like buckets nor show in the proxy's log.
    direct: Arc<AwsSession>,
    bucket: ResultsBucket,
    queue_url: String,
    /// The fleet role's credentials, for the workers' environment.
    credentials: [(&'static str, String); 3],
    visibility: u64,
    max_in_flight: u64,
    logs: PathBuf,
    workers: Vec<(String, tokio::process::Child)>,
    started: usize,
}

impl Fleet {
    async fn new(local: &LocalAws, proxy: FaultProxy, visibility: u64, max_in_flight: u64) -> anyhow::Result<Self> {
        let endpoints = local.endpoints();
        let direct = Arc::new(AwsSession::new(AwsOptions {
            endpoint_url: Some(endpoints.moto.clone()),
            assume_role: Some(fleet_role()),
            ..AwsOptions::default()
        }));
        let clients = direct.clients(HOME_REGION).await;
        let queue_url = make_queue(&clients.sqs.client, "miyabi-bench-fleet", visibility).await?;
        let bucket_name = "miyabi-bench-fleet-results";
        clients.s3.client.create_bucket().bucket(bucket_name).send().await?;
        let bucket = ResultsBucket::new(clients.s3.clone(), bucket_name);
        // The credentials an ECS task would get for its task role.
        let base = AwsSession::new(AwsOptions {
            endpoint_url: Some(endpoints.moto.clone()),
            ..AwsOptions::default()
        });
        let assumed = base
            .clients(HOME_REGION)
            .await
            .sts
            .client
            .assume_role()
            .role_arn(&fleet_role().role_arn)
            .role_session_name("miyabi-bench-fleet")
            .duration_seconds(12 * 3600)
            .send()
            .await?;
        let c = assumed
            .credentials()
            .ok_or_else(|| anyhow::anyhow!("AssumeRole gave no credentials"))?;
        let credentials = [
            ("AWS_ACCESS_KEY_ID", c.access_key_id().to_owned()),
            ("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_owned()),
            ("AWS_SESSION_TOKEN", c.session_token().to_owned()),
        ];
        let logs = std::env::temp_dir().join(format!("miyabi-bench-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&logs)?;
        Ok(Self {
            proxy,
            direct,
            bucket,
            queue_url,
            credentials,
            visibility,
            max_in_flight,
            logs,
            workers: Vec::new(),
            started: 0,
        })
    }

    /// Starts one more worker process: one request at a time, as the plan's tasks run.
    fn spawn(&mut self) -> anyhow::Result<()> {
        let id = format!("w-{}", self.started);
        self.started += 1;
        let log = std::fs::File::create(self.logs.join(format!("{id}.log")))?;
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_miyabi-aws"))
            .args([
                "worker",
                "--quiet",
                "--region",
                HOME_REGION,
                "--endpoint-url",
                &self.proxy.url,
            ])
            .args(["--queue-url", &self.queue_url, "--results-bucket", self.bucket.name()])
            .args(["--worker-id", &id, "--concurrency", "1", "--wait-time", "2"])
            .args(["--visibility-timeout", &self.visibility.to_string()])
            .args(["--max-in-flight", &self.max_in_flight.to_string()])
            .envs(self.credentials.iter().map(|(k, v)| (*k, v.as_str())))
            .env(
                "MIYABI_LOG",
                std::env::var("MIYABI_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        eprintln!("  started worker {id}");
        self.workers.push((id, child));
        Ok(())
    }

    /// SIGKILLs the worker `index` (no wind-down: its claim and message are left to expire).
    async fn kill(&mut self, index: usize) -> anyhow::Result<String> {
        let (id, mut child) = self.workers.remove(index);
        child.kill().await?;
        eprintln!("  SIGKILLed worker {id}");
        Ok(id)
    }

    /// The requests whose claims `worker`'s jobs hold.
    async fn claims_of(&self, worker: &str) -> anyhow::Result<Vec<String>> {
        let mut held = Vec::new();
        for key in self.bucket.list(".miyabi/claims/").await? {
            let Some(object) = self.bucket.get(&key).await? else {
                continue;
            };
            let claim: serde_json::Value = serde_json::from_slice(&object.body)?;
            let holder = claim["holder"].as_str().unwrap_or_default();
            if holder.split('#').next() == Some(worker) {
                held.push(
                    key.rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches(".json")
                        .to_owned(),
                );
            }
        }
        Ok(held)
    }

    /// Sends `requests` at once; returns when each was sent.
    async fn submit(&self, requests: &[CycleRequest]) -> anyhow::Result<Vec<DateTime<Utc>>> {
        let mut sent = Vec::new();
        for request in requests {
            miyabi_aws::fleet::client::submit(&self.direct, HOME_REGION, &self.queue_url, request).await?;
            sent.push(Utc::now());
        }
        Ok(sent)
    }

    /// Waits for every request's result (at most `limit`), polling the bucket.
    async fn results(&self, requests: &[CycleRequest], limit: Duration) -> anyhow::Result<Vec<CycleResult>> {
        let until = Instant::now() + limit;
        let mut found: BTreeMap<String, CycleResult> = BTreeMap::new();
        let mut last_report = Instant::now();
        while found.len() < requests.len() {
            anyhow::ensure!(
                Instant::now() < until,
                "{} of {} results after {limit:?}; worker logs in {}",
                found.len(),
                requests.len(),
                self.logs.display()
            );
            let pending: Vec<&CycleRequest> = requests.iter().filter(|r| !found.contains_key(&r.request_id)).collect();
            for r in pending {
                let key = format!("{}result.json", r.prefix());
                if let Some(object) = self.bucket.get(&key).await? {
                    let result: CycleResult = serde_json::from_slice(&object.body)?;
                    eprintln!(
                        "  {}: {:?} in {:.0} s on {}",
                        r.request_id,
                        result.status,
                        seconds(result.started_at, result.finished_at),
                        result.worker
                    );
                    found.insert(r.request_id.clone(), result);
                }
            }
            if last_report.elapsed() > Duration::from_secs(60) {
                eprintln!("  {} of {} results so far", found.len(), requests.len());
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Ok(requests.iter().filter_map(|r| found.remove(&r.request_id)).collect())
    }

    /// Stops every worker with SIGTERM and waits for each.
    async fn stop(&mut self) {
        for (_, child) in &self.workers {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for (id, child) in &mut self.workers {
            if tokio::time::timeout(Duration::from_secs(120), child.wait())
                .await
                .is_err()
            {
                eprintln!("  worker {id} did not wind down within 120 s: killed");
                let _ = child.kill().await;
            }
        }
        self.workers.clear();
    }
}

async fn make_queue(sqs: &aws_sdk_sqs::Client, name: &str, visibility: u64) -> anyhow::Result<String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let dlq = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await?;
    let dlq_url = dlq.queue_url().unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(dlq_url)
        .attribute_names(A::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&A::QueueArn).cloned())
        .ok_or_else(|| anyhow::anyhow!("the dead-letter queue has no ARN"))?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(A::RedrivePolicy, redrive)
        .attributes(A::VisibilityTimeout, visibility.to_string())
        .send()
        .await?;
    queue
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("CreateQueue gave no URL"))
}

fn request(id: &str, mode: &str, regions: &[String]) -> anyhow::Result<CycleRequest> {
    let body = serde_json::json!({
        "schema_version": 1,
        "request_id": id,
        "tenant_id": "bench",
        "account": {"role_arn": estate_role()},
        "regions": regions,
        "mode": mode,
        "approve": "all",
    });
    CycleRequest::parse(&body.to_string()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `count` requests `<prefix>-0`, `<prefix>-1`, … in `mode`.
fn requests(prefix: &str, mode: &str, count: u64, regions: &[String]) -> anyhow::Result<Vec<CycleRequest>> {
    (0..count)
        .map(|n| request(&format!("{prefix}-{n}"), mode, regions))
        .collect()
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// The `q` quantile of `values` (nearest rank).
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// One batch's figures.
struct Batch {
    name: &'static str,
    requests: usize,
    succeeded: usize,
    /// Requests by status (`partial` ones are complete but marked so).
    statuses: BTreeMap<String, usize>,
    cycle: Vec<f64>,
    end_to_end: Vec<f64>,
    metrics: Vec<u64>,
    usd: Vec<f64>,
    /// Mean seconds per phase over the batch's requests (iterations summed).
    phases: BTreeMap<String, f64>,
    notes: String,
}

impl Batch {
    fn of(name: &'static str, sent: &[DateTime<Utc>], results: &[CycleResult], notes: String) -> Self {
        // The cycle itself (an apply's wait for the account's lease left out), and the time
        // the request held the worker (what the task is paid for).
        let cycle: Vec<f64> = results
            .iter()
            .map(|r| {
                r.run
                    .as_ref()
                    .map_or(seconds(r.started_at, r.finished_at), |run| run.seconds)
            })
            .collect();
        let usd = results
            .iter()
            .map(|r| (r, seconds(r.started_at, r.finished_at)))
            .map(|(r, secs)| {
                let calls = |service: &str| {
                    let run = r.run.as_ref().and_then(|run| run.api_calls.get(service)).copied();
                    (run.unwrap_or(0) + r.worker_api_calls.get(service).copied().unwrap_or(0)) as f64
                };
                r.metrics_requested as f64 / 1000.0 * USD_PER_1000_METRICS
                    + calls("s3") / 1000.0 * USD_PER_1000_S3_REQUESTS
                    + calls("sqs") / 1e6 * USD_PER_MILLION_SQS_REQUESTS
                    + secs / 3600.0 * (TASK_VCPU * USD_PER_VCPU_HOUR + TASK_GB * USD_PER_GB_HOUR)
            })
            .collect();
        Self {
            name,
            requests: sent.len(),
            succeeded: results.iter().filter(|r| r.status == RunStatus::Succeeded).count(),
            statuses: results.iter().fold(BTreeMap::new(), |mut counts, r| {
                *counts.entry(format!("{:?}", r.status).to_lowercase()).or_default() += 1;
                counts
            }),
            end_to_end: sent
                .iter()
                .zip(results)
                .map(|(s, r)| seconds(*s, r.finished_at))
                .collect(),
            cycle,
            metrics: results.iter().map(|r| r.metrics_requested).collect(),
            usd,
            phases: mean_phase_seconds(results),
            notes,
        }
    }

    fn mean(values: &[f64]) -> f64 {
        values.iter().sum::<f64>() / values.len().max(1) as f64
    }

    fn cycles_per_hour(&self) -> f64 {
        3600.0 / Self::mean(&self.cycle)
    }
}

fn mean_phase_seconds(results: &[CycleResult]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for it in results
        .iter()
        .filter_map(|r| r.run.as_ref())
        .flat_map(|run| &run.iterations)
    {
        for (phase, secs) in &it.phase_seconds {
            *sums.entry(phase.clone()).or_default() += secs;
        }
    }
    let n = results.len().max(1) as f64;
    sums.into_iter().map(|(phase, secs)| (phase, secs / n)).collect()
}

fn print(batches: &[Batch], instances: usize, workers: u64, visibility: u64) {
    println!(
        "\n## The fleet: {workers} worker processes, one request at a time each, on a {instances}-instance account \
         (2 Regions), AWS-like (50 ms a call, AWS's buckets, EC2 stop 30 s / start 20 s), visibility timeout {visibility} s\n"
    );
    println!(
        "| batch | requests | outcomes | cycle p50 s | cycle p99 s | end-to-end p50 s | end-to-end p99 s | \
         cycles/h/worker | cycles/day/worker | metrics/cycle | USD/cycle |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for b in batches {
        let metrics: Vec<f64> = b.metrics.iter().map(|&m| m as f64).collect();
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.0} | {:.4} |",
            b.name,
            b.requests,
            b.statuses
                .iter()
                .map(|(status, n)| format!("{n} {status}"))
                .collect::<Vec<_>>()
                .join(", "),
            quantile(&b.cycle, 0.5),
            quantile(&b.cycle, 0.99),
            quantile(&b.end_to_end, 0.5),
            quantile(&b.end_to_end, 0.99),
            b.cycles_per_hour(),
            b.cycles_per_hour() * 24.0,
            Batch::mean(&metrics),
            Batch::mean(&b.usd),
        );
    }
    println!("\nMean seconds per phase and request (iterations summed):\n");
    for b in batches {
        let phases: Vec<String> = b.phases.iter().map(|(p, s)| format!("{p} {s:.1}")).collect();
        println!("- {}: {}", b.name, phases.join(", "));
    }
    for b in batches.iter().filter(|b| !b.notes.is_empty()) {
        println!("\n{}: {}", b.name, b.notes);
    }
    let all: Vec<&Batch> = batches.iter().collect();
    let requests: usize = all.iter().map(|b| b.requests).sum();
    let succeeded: usize = all.iter().map(|b| b.succeeded).sum();
    let worst_p99 = all.iter().map(|b| quantile(&b.end_to_end, 0.99)).fold(0.0, f64::max);
    let slowest = all.iter().map(|b| b.cycles_per_hour()).fold(f64::INFINITY, f64::min);
    let dearest = all.iter().map(|b| Batch::mean(&b.usd)).fold(0.0, f64::max);
    println!("\n| KPI (per worker) | plan | measured (worst batch) | ratio to plan |\n|---|---:|---:|---:|");
    println!(
        "| cycles a day | ≥ {PLAN_CYCLES_PER_DAY:.0} | {:.0} | {:.1}× |",
        slowest * 24.0,
        slowest * 24.0 / PLAN_CYCLES_PER_DAY
    );
    println!(
        "| p99 request latency | ≤ {:.0} s | {worst_p99:.0} s | {:.2}× |",
        PLAN_P99_SECONDS,
        worst_p99 / PLAN_P99_SECONDS
    );
    #[allow(clippy::cast_precision_loss)]
    let success = succeeded as f64 / requests.max(1) as f64;
    println!(
        "| success | ≥ {:.0}% | {:.1}% ({succeeded}/{requests}) | {:.2}× |",
        PLAN_SUCCESS * 100.0,
        success * 100.0,
        success / PLAN_SUCCESS
    );
    println!(
        "| cost per cycle | ≤ ${PLAN_USD_PER_CYCLE:.2} | ${dearest:.4} | {:.3}× |",
        dearest / PLAN_USD_PER_CYCLE
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    miyabi_aws_testkit::init_test_env();
    let instances = usize::try_from(number("--instances", 200))?;
    let workers = number("--workers", 2);
    let dry_runs = number("--dry-runs", 6);
    let applies = number("--applies", 2);
    let faulty = number("--faulty", 6);
    let visibility = number("--visibility", 60);
    let spec = DemoSpec {
        instances,
        seed: arg("--seed").and_then(|v| v.parse().ok()).unwrap_or(42),
        ..DemoSpec::default()
    };
    let local = LocalAws::start()?;
    let seeding = Instant::now();
    let estate = seed_demo(&local.endpoints(), &spec).await?;
    eprintln!(
        "seeded {} instances and {} datapoints in {:.0} s",
        estate.instances.len(),
        estate.datapoints,
        seeding.elapsed().as_secs_f64()
    );
    let endpoints = local.endpoints();
    let proxy = FaultProxy::start(&endpoints.moto, &endpoints.cloudwatch).await?;
    proxy.set_aws_like(Some(AwsLike::default()));
    proxy.set_ec2_state_times(Some(StateTimes::default()));
    let mut fleet = Fleet::new(&local, proxy, visibility, number("--max-in-flight", 8)).await?;
    for _ in 0..workers {
        fleet.spawn()?;
    }
    let limit = Duration::from_secs(3 * 3600);
    let mut batches = Vec::new();

    if dry_runs > 0 {
        eprintln!("== dry runs");
        let requests = requests("dry", "dry_run", dry_runs, &spec.regions)?;
        let sent = fleet.submit(&requests).await?;
        let results = fleet.results(&requests, limit).await?;
        batches.push(Batch::of("dry runs", &sent, &results, String::new()));
    }
    if applies > 0 {
        eprintln!("== applies");
        let requests = requests("apply", "apply", applies, &spec.regions)?;
        let sent = fleet.submit(&requests).await?;
        let results = fleet.results(&requests, limit).await?;
        let applied: Vec<String> = results
            .iter()
            .map(|r| {
                let changes: usize = r
                    .run
                    .iter()
                    .flat_map(|run| &run.iterations)
                    .filter_map(|it| it.applied_changes)
                    .sum();
                format!("{} applied {changes} change(s)", r.request.request_id)
            })
            .collect();
        batches.push(Batch::of(
            "applies",
            &sent,
            &results,
            format!(
                "one account, so one apply at a time under its lease; {}",
                applied.join(", ")
            ),
        ));
    }
    if faulty > 0 {
        eprintln!("== faults: throttling storms and a killed worker");
        fleet.proxy.reset_log();
        let requests = requests("faulty", "dry_run", faulty, &spec.regions)?;
        let storms: Vec<FaultRule> = [("ec2", 25), ("cloudwatch", 5), ("s3", 5)]
            .iter()
            .map(|&(service, n)| FaultRule::new(service, Fault::Throttle).times(n))
            .collect();
        // A storm is a burst: what the last one left unspent is cleared first, so that bursts
        // never pile up into one that throttles everything.
        let storm = |fleet: &Fleet| {
            fleet.proxy.clear_faults();
            for rule in &storms {
                fleet.proxy.inject(rule.clone());
            }
        };
        let sent = fleet.submit(&requests).await?;
        storm(&fleet);
        let mut storm_count = 1;
        // Each worker took a request at once: 15 s in, the first is mid-cycle.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let held = fleet.claims_of("w-0").await?;
        let killed = fleet.kill(0).await?;
        fleet.spawn()?;
        let results = {
            let waiting = fleet.results(&requests, limit);
            tokio::pin!(waiting);
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(5),
                Duration::from_secs(20),
            );
            loop {
                tokio::select! {
                    done = &mut waiting => break done?,
                    _ = tick.tick() => {
                        storm(&fleet);
                        storm_count += 1;
                    }
                }
            }
        };
        fleet.proxy.clear_faults();
        let log = fleet.proxy.requests();
        let injected = log.iter().filter(|r| r.fault == Some(Fault::Throttle)).count();
        let over_quota = log.iter().filter(|r| r.over_quota).count();
        batches.push(Batch::of(
            "faults",
            &sent,
            &results,
            format!(
                "{storm_count} storms, {injected} throttling errors injected and {over_quota} from the AWS-like buckets \
                 ({} requests in all); worker {killed} SIGKILLed 15 s in, holding {}, and replaced",
                log.len(),
                if held.is_empty() {
                    "no request".to_owned()
                } else {
                    held.join(", ")
                },
            ),
        ));
    }
    fleet.stop().await;
    print(&batches, instances, workers, visibility);
    Ok(())
}
