//! The fleet against the emulators: many accounts through STS and Organizations.
//!
//! moto keeps each assumed account apart (DESIGN §9), so each test uses account ids of its own.

use std::sync::Arc;
use std::time::Duration;

use miyabi_aws::aws::{AssumeRole, AwsOptions, AwsSession, RegionClients};
use miyabi_aws::fleet::{
    resolve, AccountSource, BucketJournal, CycleResult, FleetSummary, Lease, ResultsBucket, RunStatus, Taken,
};
use miyabi_aws::phases::deployment::journal::JournalStore;
use miyabi_aws::WorldState;
use miyabi_aws_testkit::local_aws::LocalAws;
use miyabi_aws_testkit::proxy::{Fault, FaultRule};

use crate::support::{harness, tmp_dir};

fn role(account: &str) -> AssumeRole {
    AssumeRole::new(format!("arn:aws:iam::{account}:role/MiyabiAudit")).expect("a role ARN")
}

/// Clients acting in `account` (through its role), straight to the emulators: for seeding.
async fn clients_in(account: &str, region: &str) -> RegionClients {
    let endpoints = LocalAws::shared().expect("emulators");
    let session = AwsSession::new(AwsOptions {
        endpoint_url: Some(endpoints.moto.clone()),
        assume_role: Some(role(account)),
        ..AwsOptions::default()
    });
    session.clients(region).await
}

async fn launch_in(account: &str, region: &str, count: i32) -> Vec<String> {
    let c = clients_in(account, region).await;
    let out = c
        .ec2
        .client
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(count)
        .max_count(count)
        .send()
        .await
        .expect("RunInstances in the member account");
    let mut ids: Vec<String> = out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn instance_ids(world: &WorldState) -> Vec<String> {
    let mut ids: Vec<String> = world.inventory.instances.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_is_discovered_apart_and_a_role_that_cannot_be_assumed_fails_alone() {
    let region = "eu-north-1";
    let h = harness(region).await;
    let (a, b, denied) = ("210000000001", "210000000002", "210000000003");
    let in_a = launch_in(a, region, 2).await;
    let in_b = launch_in(b, region, 3).await;
    // moto assumes any role: the refusal comes from the proxy, on that role's AssumeRole.
    h.proxy.inject(
        FaultRule::new("sts", Fault::Denied)
            .operation("AssumeRole")
            .resource(denied),
    );
    let out = tmp_dir("fleet-accounts");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_miyabi-aws"))
        .args(["discover", "--quiet", "--region", region, "--output-format", "json"])
        .args([
            "--max-concurrent-accounts",
            "2",
            "--endpoint-url",
            &h.proxy.url,
            "--out",
        ])
        .arg(&out)
        .args(["--role-arn", &role(a).role_arn, "--role-arn", &role(b).role_arn])
        .args(["--role-arn", &role(denied).role_arn])
        .env("MIYABI_LOG", "error")
        .output()
        .await
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(1),
        "one account failed, so the run did: {stdout}"
    );
    assert!(stdout.contains(&format!("| {a} | Succeeded |")), "{stdout}");

    let summary: FleetSummary =
        serde_json::from_str(&std::fs::read_to_string(out.join("accounts.json")).expect("accounts.json"))
            .expect("a fleet summary");
    let ids: Vec<&str> = summary.accounts.iter().map(|r| r.account_id.as_str()).collect();
    assert_eq!(ids, [a, b, denied], "in the order given");
    assert_eq!(summary.accounts[0].status, RunStatus::Succeeded);
    assert_eq!(summary.accounts[1].status, RunStatus::Succeeded);
    let failed = &summary.accounts[2];
    assert_eq!(failed.status, RunStatus::Failed);
    let error = failed.error.as_deref().expect("the error");
    assert!(
        error.contains("sts.AssumeRole") && error.contains(denied) && error.contains("access denied"),
        "{error}"
    );
    assert!(!out.join(denied).join("world_state_0.json").exists());

    // Each account's world holds its own instances and nothing of the other's.
    for (account, seeded) in [(a, &in_a), (b, &in_b)] {
        let world = WorldState::load(out.join(account).join("world_state_0.json")).expect("its world");
        assert_eq!(&instance_ids(&world), seeded, "account {account}");
        assert_eq!(world.scope.account_id.as_deref(), Some(account));
    }
    assert_eq!(
        h.proxy.calls("sts", "AssumeRole").len(),
        3,
        "one AssumeRole per account: the credentials are shared by its clients"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_lists_its_active_accounts_with_the_role_in_each_member() {
    let region = "us-east-1";
    let h = harness(region).await;
    // The management account is the credentials' own (moto's default account).
    let caller = Arc::new(AwsSession::new(h.aws_options()));
    let org = caller.clients(region).await.organizations;
    let _ = org
        .client
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await;
    let mut members = Vec::new();
    for name in ["miyabi-member-1", "miyabi-member-2"] {
        let created = org
            .client
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .expect("CreateAccount");
        let status = created.create_account_status().expect("a status");
        members.push(status.account_id().expect("an account id").to_owned());
    }
    let me = caller.verify(region).await.expect("GetCallerIdentity");
    let source = AccountSource::Organization {
        role_name: "OrganizationAccountAccessRole".into(),
        external_id: Some("ext-1".into()),
    };
    let targets = resolve(&source, &caller, region).await.expect("ListAccounts");
    let mine = targets
        .iter()
        .find(|t| t.account_id == me)
        .expect("the management account");
    assert!(
        mine.role.is_none(),
        "the management account is read with the caller's credentials"
    );
    for member in &members {
        let target = targets.iter().find(|t| &t.account_id == member).expect("each member");
        let role = target.role.as_ref().expect("a member is reached through its role");
        assert_eq!(
            role.role_arn,
            format!("arn:aws:iam::{member}:role/OrganizationAccountAccessRole")
        );
        assert_eq!(role.external_id.as_deref(), Some("ext-1"));
    }
    assert!(!h.proxy.calls("organizations", "ListAccounts").is_empty());
}

/// A results bucket of the worker's own account, created for the test, read and written
/// through the proxy.
async fn results_bucket(h: &crate::support::Harness, name: &str) -> ResultsBucket {
    h.seed
        .s3
        .create_bucket()
        .bucket(name)
        .set_create_bucket_configuration((h.region != "us-east-1").then(|| {
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(h.region.into())
                .build()
        }))
        .send()
        .await
        .expect("CreateBucket");
    let session = AwsSession::new(h.aws_options());
    ResultsBucket::new(session.clients(h.region).await.s3, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_workers_racing_for_a_lease_one_wins_an_expired_one_is_taken_over_and_only_live_ones_are_counted() {
    let h = harness("us-east-1").await;
    let bucket = results_bucket(&h, "miyabi-fleet-leases").await;
    let key = ".miyabi/leases/210000000009.json";
    let ttl = Duration::from_secs(60);
    let takes = futures::future::join_all((0..8).map(|k| {
        let bucket = bucket.clone();
        async move {
            Lease::take(&bucket, key, &format!("worker-{k}"), ttl)
                .await
                .expect("take")
        }
    }))
    .await;
    let winners: Vec<&Lease> = takes
        .iter()
        .filter_map(|t| match t {
            Taken::Held(lease) => Some(lease.as_ref()),
            Taken::Busy { .. } => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one of eight takes the lease");
    for taken in &takes {
        if let Taken::Busy { expires_in, .. } = taken {
            assert!(*expires_in > Duration::from_secs(50) && *expires_in <= ttl);
        }
    }
    assert!(winners[0].renew().await.unwrap(), "the holder renews it");
    drop(takes);

    // A lease left to expire (its holder died) is taken over, and the old holder learns it
    // lost it at its next renewal.
    let key = ".miyabi/leases/210000000010.json";
    let Taken::Held(dead) = Lease::take(&bucket, key, "dead", Duration::from_millis(300))
        .await
        .unwrap()
    else {
        panic!("a free lease is taken")
    };
    assert!(matches!(
        Lease::take(&bucket, key, "next", ttl).await.unwrap(),
        Taken::Busy { ref holder, .. } if holder == "dead"
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let Taken::Held(next) = Lease::take(&bucket, key, "next", ttl).await.unwrap() else {
        panic!("an expired lease is taken over")
    };
    assert_eq!(next.took_over(), Some("dead"));
    assert!(!dead.renew().await.unwrap(), "the old holder lost it");
    dead.release().await.unwrap();
    assert!(
        bucket.get(key).await.unwrap().is_some(),
        "a lost lease's release leaves the new holder's"
    );
    next.release().await.unwrap();
    assert!(bucket.get(key).await.unwrap().is_none());

    // Presence: each job's lease of its own; the live ones are counted, an expired one (its
    // worker died) is not, and is cleared away.
    let prefix = ".miyabi/presence/210000000010/";
    let mut present = Vec::new();
    for (holder, ttl) in [("w-1#0", ttl), ("w-2#0", ttl), ("w-dead#3", Duration::from_millis(200))] {
        let Taken::Held(lease) = Lease::take(&bucket, &format!("{prefix}{holder}.json"), holder, ttl)
            .await
            .unwrap()
        else {
            panic!("a key of its own is free")
        };
        present.push(lease);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut live = Lease::live_holders(&bucket, prefix).await.unwrap();
    live.sort();
    assert_eq!(live, ["w-1#0", "w-2#0"]);
    assert_eq!(
        bucket.list(prefix).await.unwrap().len(),
        2,
        "the expired presence is deleted"
    );
    assert!(
        !present[2].renew().await.unwrap(),
        "a lease whose object was cleared away is lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_journal_in_the_bucket_is_read_back_by_another_worker_in_order() {
    let h = harness("us-east-1").await;
    let bucket = results_bucket(&h, "miyabi-fleet-journal").await;
    let first = BucketJournal::new(bucket.clone(), "210000000011");
    assert!(first.load().await.unwrap().is_none(), "no journal yet");
    for n in 0..12 {
        first.append(format!("{{\"line\":{n}}}\n").as_bytes()).await.unwrap();
    }
    // Another worker (a fresh store over the same account) reads every append, in order, and
    // appends after them.
    let second = BucketJournal::new(bucket.clone(), "210000000011");
    let text = second.load().await.unwrap().expect("the journal");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let want: Vec<String> = (0..12).map(|n| format!("{{\"line\":{n}}}")).collect();
    assert_eq!(lines, want);
    second.append(b"{\"line\":12}\n").await.unwrap();
    assert!(
        first.append(b"{\"line\":-1}\n").await.is_err(),
        "a stale writer's append is refused"
    );
    assert_eq!(second.load().await.unwrap().unwrap().lines().count(), 13);
    second.clear().await.unwrap();
    assert!(first.load().await.unwrap().is_none());
    assert_eq!(
        BucketJournal::new(bucket, "210000000012").describe(),
        "s3://miyabi-fleet-journal/.miyabi/journal/210000000012/"
    );
}

/// A queue with a dead-letter queue after 3 receives, as the deployment makes it; returns the
/// queue's and the dead-letter queue's URLs.
async fn queue_with_dlq(clients: &RegionClients, name: &str, visibility: u32) -> (String, String) {
    let sqs = &clients.sqs.client;
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("CreateQueue (DLQ)");
    let dlq_url = dlq.queue_url().expect("a URL").to_owned();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .expect("the DLQ's ARN");
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, redrive)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            visibility.to_string(),
        )
        .send()
        .await
        .expect("CreateQueue");
    (queue.queue_url().expect("a URL").to_owned(), dlq_url)
}

async fn send(clients: &RegionClients, queue_url: &str, body: &str) {
    clients
        .sqs
        .client
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .expect("SendMessage");
}

/// Messages in a queue, visible or not.
async fn depth(clients: &RegionClients, queue_url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = clients
        .sqs
        .client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    [A::ApproximateNumberOfMessages, A::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|a| attrs.get(a).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0))
        .sum()
}

/// A worker process of the installed CLI, through `proxy`, logging into `log`, running two
/// requests at a time.
fn spawn_worker(
    proxy: &str,
    region: &str,
    queue_url: &str,
    bucket: &str,
    id: &str,
    log: &std::path::Path,
) -> tokio::process::Child {
    spawn_worker_with(proxy, region, queue_url, bucket, id, log, 2)
}

fn spawn_worker_with(
    proxy: &str,
    region: &str,
    queue_url: &str,
    bucket: &str,
    id: &str,
    log: &std::path::Path,
    concurrency: u8,
) -> tokio::process::Child {
    let log = std::fs::File::create(log).expect("a log file");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_miyabi-aws"))
        .args(["worker", "--quiet", "--region", region, "--endpoint-url", proxy])
        .args(["--queue-url", queue_url, "--results-bucket", bucket, "--worker-id", id])
        .args(["--visibility-timeout", "6", "--wait-time", "1", "--lookback-days", "1"])
        .args(["--concurrency", &concurrency.to_string()])
        .env(
            "MIYABI_LOG",
            std::env::var("MIYABI_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the worker starts")
}

/// Polls `done` every 200 ms until it holds or `limit` passes.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = std::time::Instant::now() + limit;
    while !done().await {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn request(tenant: &str, id: &str, account: &str, region: &str, mode: &str) -> String {
    serde_json::json!({
        "schema_version": 1,
        "request_id": id,
        "tenant_id": tenant,
        "account": {"role_arn": role(account).role_arn},
        "regions": [region],
        "mode": mode,
        "approve": "all",
    })
    .to_string()
}

async fn result_of(bucket: &ResultsBucket, tenant: &str, id: &str) -> Option<CycleResult> {
    let object = bucket
        .get(&format!("{tenant}/{id}/result.json"))
        .await
        .expect("GetObject")?;
    Some(serde_json::from_slice(&object.body).expect("a result"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_a_request_once_refuses_what_cannot_run_and_leaves_poison_to_the_dead_letter_queue() {
    let region = "ca-central-1";
    let h = harness(region).await;
    let account = "210000000021";
    let seeded = launch_in(account, region, 2).await;
    let session = AwsSession::new(h.aws_options());
    let clients = session.clients(region).await;
    let (queue, dlq) = queue_with_dlq(&clients, "miyabi-worker-basic", 6).await;
    let bucket = results_bucket(&h, "miyabi-worker-basic").await;
    let ok = request("acme", "r-1", account, region, "dry_run");
    send(&clients, &queue, &ok).await;
    send(&clients, &queue, &ok).await; // delivered twice: runs once
    let mut refused: serde_json::Value =
        serde_json::from_str(&request("acme", "r-2", account, region, "dry_run")).unwrap();
    refused["regions"] = serde_json::json!([]);
    send(&clients, &queue, &refused.to_string()).await;
    send(&clients, &queue, "this is not a request").await;
    let mut escape: serde_json::Value = serde_json::from_str(&ok).unwrap();
    escape["tenant_id"] = serde_json::json!("../other-tenant");
    send(&clients, &queue, &escape.to_string()).await;

    let dir = tmp_dir("fleet-worker-basic");
    let mut worker = spawn_worker(
        &h.proxy.url,
        region,
        &queue,
        bucket.name(),
        "w-basic",
        &dir.join("worker.log"),
    );
    wait_for(Duration::from_secs(90), "the queue to drain", || async {
        depth(&clients, &queue).await == 0
    })
    .await;
    assert_eq!(
        depth(&clients, &dlq).await,
        2,
        "both malformed messages, after 3 receives each"
    );
    sigterm(&worker);
    let status = tokio::time::timeout(Duration::from_secs(30), worker.wait())
        .await
        .expect("the worker winds down")
        .expect("its status");
    assert!(
        status.success(),
        "{status:?}: {}",
        std::fs::read_to_string(dir.join("worker.log")).unwrap_or_default()
    );

    let result = result_of(&bucket, "acme", "r-1").await.expect("r-1's result");
    assert_eq!(result.status, RunStatus::Succeeded, "{:?}", result.error);
    let run = result.run.as_ref().expect("the account's run");
    assert_eq!(run.account_id, account);
    assert!(run.api_calls.get("ec2").copied().unwrap_or(0) > 0);
    assert!(result.worker_api_calls.get("s3").copied().unwrap_or(0) > 0);
    assert!(
        result.metrics_requested > 0,
        "θ1 asked CloudWatch for the instances' metrics"
    );
    assert_eq!(
        result.quota_share,
        Some(0.5),
        "alone in its account: the whole default share"
    );
    let world_key = "acme/r-1/world_state_0.json";
    assert!(result.outputs.iter().any(|k| k == world_key), "{:?}", result.outputs);
    let world: WorldState = serde_json::from_slice(&bucket.get(world_key).await.unwrap().unwrap().body).unwrap();
    assert_eq!(instance_ids(&world), seeded, "the account's own estate");
    assert!(result.outputs.iter().all(|k| k.starts_with("acme/r-1/")));
    let refusal = result_of(&bucket, "acme", "r-2").await.expect("r-2's refusal");
    assert_eq!(refusal.status, RunStatus::Refused);
    assert!(refusal
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("regions is empty"));
    // Everything the worker wrote is under a tenant's prefix or its own state.
    let keys = bucket.list("").await.unwrap();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("acme/r-1/") || k.starts_with("acme/r-2/") || k.starts_with(".miyabi/")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.starts_with(".miyabi/claims/")),
        "claims are released: {keys:?}"
    );
}

/// SIGTERMs every worker and checks each winds down within a minute and exits 0.
async fn stop_all(workers: &mut [tokio::process::Child]) {
    for w in workers.iter() {
        sigterm(w);
    }
    for w in workers.iter_mut() {
        let status = tokio::time::timeout(Duration::from_secs(60), w.wait())
            .await
            .expect("winds down")
            .expect("status");
        assert!(status.success(), "{status:?}");
    }
}

/// Sends SIGTERM to a child, as ECS does to stop a task.
fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("a running child");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill(1)");
    assert!(sent.success());
}

/// The states of `account`'s instances in `region`, by id.
async fn instance_states(account: &str, region: &str) -> Vec<(String, String)> {
    let c = clients_in(account, region).await;
    let out = c
        .ec2
        .client
        .describe_instances()
        .send()
        .await
        .expect("DescribeInstances");
    let mut states: Vec<(String, String)> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| Some((i.instance_id()?.to_owned(), i.state()?.name()?.as_str().to_owned())))
        .collect();
    states.sort();
    states
}

fn with_iterations(body: &str, n: u32) -> String {
    let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["max_iterations"] = serde_json::json!(n);
    v.to_string()
}

/// The fleet test: 60 requests of 6 tenants over 3 accounts, by worker processes of the
/// CLI, each behind a proxy of its own. One worker is SIGKILLed with an instance stopped (its
/// `StartInstances` held at its proxy); one is SIGTERMed with a step in flight. At the end there
/// are exactly 60 results, each written once under its tenant's prefix, each about its own
/// account's estate, and no instance is left stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_requests_over_three_accounts_survive_a_killed_and_a_stopped_worker() {
    let region = "ap-northeast-2";
    let h = harness(region).await;
    let endpoints = LocalAws::shared().expect("emulators");
    let accounts = ["210000000031", "210000000032", "210000000033"];
    let mut seeded = std::collections::BTreeMap::new();
    for account in accounts {
        seeded.insert(account, launch_in(account, region, 2).await);
    }
    let session = AwsSession::new(h.aws_options());
    let clients = session.clients(region).await;
    let (queue, _dlq) = queue_with_dlq(&clients, "miyabi-fleet", 6).await;
    let bucket = results_bucket(&h, "miyabi-fleet-results").await;
    let dir = tmp_dir("fleet-sixty");
    let proxy = || async {
        miyabi_aws_testkit::proxy::FaultProxy::start(&endpoints.moto, &endpoints.cloudwatch)
            .await
            .expect("a proxy")
    };
    let start = |proxy: &miyabi_aws_testkit::proxy::FaultProxy, id: &str| {
        spawn_worker(
            &proxy.url,
            region,
            &queue,
            bucket.name(),
            id,
            &dir.join(format!("{id}.log")),
        )
    };
    let tenants: Vec<String> = (1..=6).map(|t| format!("tenant-{t}")).collect();
    // Request k: tenant k % 6, account k % 3; one apply per account, the rest dry runs.
    let bodies: Vec<(String, String, &str, String)> = (0..60)
        .map(|k| {
            let (tenant, account) = (&tenants[k % 6], accounts[k % 3]);
            let id = format!("req-{k:02}");
            let mode = if k < 3 { "apply" } else { "dry_run" };
            let body = with_iterations(&request(tenant, &id, account, region, mode), 2);
            (tenant.clone(), id, account, body)
        })
        .collect();

    // 1. A worker takes the first account's apply and stops an instance; its StartInstances is
    //    throttled at its proxy, and it is SIGKILLed there: the instance is left stopped.
    let p1 = proxy().await;
    p1.inject(FaultRule::new("ec2", Fault::Throttle).operation("StartInstances"));
    send(&clients, &queue, &bodies[0].3).await;
    let mut w1 = start(&p1, "w1");
    wait_for(Duration::from_secs(60), "w1 to stop an instance", || async {
        !p1.calls("ec2", "StartInstances").is_empty()
    })
    .await;
    w1.kill().await.expect("SIGKILL w1");
    // A long poll of the dead worker may still take a message sent now (SQS counts that
    // receive): the next request goes in once w1's poll (1 s) is over.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped: Vec<String> = instance_states(accounts[0], region)
        .await
        .into_iter()
        .filter(|(_, s)| s == "stopped")
        .map(|(id, _)| id)
        .collect();
    assert!(!stopped.is_empty(), "w1 died with an instance stopped");

    // 2. A second worker takes the second account's apply (and the first's, once its claim
    //    expired) and is SIGTERMed while it stops an instance: the step in flight finishes and
    //    the worker exits 0 without leaving anything stopped.
    let p2 = proxy().await;
    send(&clients, &queue, &bodies[1].3).await;
    let mut w2 = start(&p2, "w2");
    wait_for(Duration::from_secs(60), "w2 to stop an instance", || async {
        !p2.calls("ec2", "StopInstances").is_empty()
    })
    .await;
    sigterm(&w2);
    let status = tokio::time::timeout(Duration::from_secs(60), w2.wait())
        .await
        .expect("w2 winds down in time")
        .expect("its status");
    assert!(status.success(), "w2: {status:?}");
    for account in &accounts[..2] {
        let states = instance_states(account, region).await;
        let left: Vec<&(String, String)> = states.iter().filter(|(_, s)| s != "running").collect();
        // The first account's stopped instance belongs to w1's journal: not w2's to leave.
        if *account == accounts[1] {
            assert!(left.is_empty(), "w2 left {left:?} in {account}");
        }
    }

    // 3. The rest of the requests, and three workers to drain the queue.
    for (_, _, _, body) in &bodies[2..] {
        send(&clients, &queue, body).await;
    }
    let (p3, p4, p5) = (proxy().await, proxy().await, proxy().await);
    let mut rest = vec![start(&p3, "w3"), start(&p4, "w4"), start(&p5, "w5")];
    wait_for(Duration::from_secs(240), "60 results", || async {
        bucket
            .list("")
            .await
            .unwrap()
            .iter()
            .filter(|k| k.ends_with("/result.json"))
            .count()
            == 60
            && depth(&clients, &queue).await == 0
    })
    .await;
    stop_all(&mut rest).await;

    // Exactly one result per request, written once (one successful PutObject of each).
    let proxies = [&p1, &p2, &p3, &p4, &p5];
    let result_writes: Vec<String> = proxies
        .iter()
        .flat_map(|p| p.calls("s3", "PutObject"))
        .filter(|r| r.status == 200 && r.path.ends_with("/result.json"))
        .map(|r| r.path)
        .collect();
    assert_eq!(result_writes.len(), 60, "each result written once");
    let mut shares = Vec::new();
    for (tenant, id, account, _) in &bodies {
        let result = result_of(&bucket, tenant, id).await.expect("a result");
        assert_eq!(result.status, RunStatus::Succeeded, "{id}: {:?}", result.error);
        shares.push(result.quota_share.expect("a share"));
        assert_eq!(&result.request.tenant_id, tenant);
        let run = result.run.expect("a run");
        assert_eq!(run.account_id, *account, "{id}");
        let prefix = format!("{tenant}/{id}/");
        assert!(
            result.outputs.iter().all(|k| k.starts_with(&prefix)),
            "{id}: {:?}",
            result.outputs
        );
        let world = bucket
            .get(&format!("{prefix}world_state_0.json"))
            .await
            .unwrap()
            .expect("its first world");
        let world: WorldState = serde_json::from_slice(&world.body).unwrap();
        assert_eq!(world.scope.account_id.as_deref(), Some(*account));
        let own = &seeded[account];
        for instance in instance_ids(&world) {
            assert!(own.contains(&instance), "{id} saw {instance}, not of {account}");
        }
    }
    // Nothing left stopped, no apply journal left open, no claim or lease held.
    for account in accounts {
        let states = instance_states(account, region).await;
        assert!(states.iter().all(|(_, s)| s == "running"), "{account}: {states:?}");
    }
    let keys = bucket.list(".miyabi/").await.unwrap();
    assert!(
        keys.iter()
            .all(|k| k.starts_with(".miyabi/knowledge/") || k.starts_with(".miyabi/presence/210000000031/w1_")),
        "only knowledge bases remain (and the killed worker's presence, until a count clears it): {keys:?}"
    );
    // Jobs in one account at once split its share; none spent more than the worker's.
    assert!(shares.iter().all(|&s| s > 0.0 && s <= 0.5), "{shares:?}");
    assert!(
        shares.iter().any(|&s| s < 0.5),
        "six jobs over three accounts shared one: {shares:?}"
    );
    assert!(
        bucket
            .list("")
            .await
            .unwrap()
            .iter()
            .any(|k| k.contains("/attempts/w2/")),
        "the stopped worker recorded its progress"
    );
}

#[test]
fn the_request_and_result_formats_match_their_committed_schemas() {
    let schemas = [
        (
            "cycle_request.schema.json",
            schemars::schema_for!(miyabi_aws::fleet::CycleRequest),
        ),
        ("cycle_result.schema.json", schemars::schema_for!(CycleResult)),
    ];
    for (file, schema) in schemas {
        let path = crate::support::repo_root().join("schema").join(file);
        let generated = serde_json::to_string_pretty(schema.as_value()).unwrap() + "\n";
        if std::env::var_os("MIYABI_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("schema/{file} is committed"));
        assert_eq!(
            committed, generated,
            "schema/{file} is stale: re-run with MIYABI_BLESS=1"
        );
    }
    // The documented example request is valid, and a crafted one is not.
    let path = crate::support::repo_root().join("schema/cycle_request.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let example = serde_json::json!({"schema_version": 1, "request_id": "r-2026-12-06-001", "tenant_id": "acme",
        "account": {"role_arn": "arn:aws:iam::111111111111:role/MiyabiAudit", "external_id": "acme-2026"},
        "regions": ["eu-west-1"], "mode": "apply", "approve": "all", "max_iterations": 3});
    assert!(validator.is_valid(&example));
    assert!(miyabi_aws::fleet::CycleRequest::parse(&example.to_string()).is_ok());
    let mut wrong = example.clone();
    wrong["mode"] = serde_json::json!("yolo");
    assert!(!validator.is_valid(&wrong));
}

/// Two workers given the same request id at the same time: one runs it, the other never reaches
/// the account (the proxies in front of each show every mutating call at one of them), and one
/// result is written. A request whose role cannot be assumed gets a `failed` result naming its
/// account, beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_given_one_request_id_run_it_once_and_a_denied_role_fails_alone() {
    let region = "sa-east-1";
    let h = harness(region).await;
    let endpoints = LocalAws::shared().expect("emulators");
    let (account, denied) = ("210000000041", "210000000042");
    launch_in(account, region, 1).await;
    let session = AwsSession::new(h.aws_options());
    let clients = session.clients(region).await;
    let (queue, _) = queue_with_dlq(&clients, "miyabi-fleet-race", 6).await;
    let bucket = results_bucket(&h, "miyabi-fleet-race").await;
    let same = with_iterations(&request("acme", "same-1", account, region, "apply"), 1);
    send(&clients, &queue, &same).await;
    send(&clients, &queue, &same).await;
    let dir = tmp_dir("fleet-race");
    let mut proxies = Vec::new();
    for _ in 0..2 {
        let p = miyabi_aws_testkit::proxy::FaultProxy::start(&endpoints.moto, &endpoints.cloudwatch)
            .await
            .expect("a proxy");
        // moto assumes any role: the refusal comes from the proxies.
        p.inject(
            FaultRule::new("sts", Fault::Denied)
                .operation("AssumeRole")
                .resource(denied),
        );
        proxies.push(p);
    }
    let mut workers: Vec<_> = proxies
        .iter()
        .zip(["wa", "wb"])
        .map(|(p, id)| {
            // One request at a time: the worker that took one copy cannot take the other
            // while it runs, so the other worker takes it, at the same time.
            spawn_worker_with(
                &p.url,
                region,
                &queue,
                bucket.name(),
                id,
                &dir.join(format!("{id}.log")),
                1,
            )
        })
        .collect();
    send(
        &clients,
        &queue,
        &request("acme", "denied-1", denied, region, "dry_run"),
    )
    .await;
    wait_for(Duration::from_secs(120), "both results and an empty queue", || async {
        result_of(&bucket, "acme", "same-1").await.is_some()
            && result_of(&bucket, "acme", "denied-1").await.is_some()
            && depth(&clients, &queue).await == 0
    })
    .await;
    stop_all(&mut workers).await;

    let result = result_of(&bucket, "acme", "same-1").await.unwrap();
    assert_eq!(result.status, RunStatus::Succeeded, "{:?}", result.error);
    let writes: usize = proxies
        .iter()
        .map(|p| {
            p.calls("s3", "PutObject")
                .iter()
                .filter(|r| r.status == 200 && r.path.ends_with("/acme/same-1/result.json"))
                .count()
        })
        .sum();
    assert_eq!(writes, 1, "one result written");
    let estate_changes: Vec<Vec<String>> = proxies
        .iter()
        .map(|p| {
            let ec2: Vec<_> = p.requests().into_iter().filter(|r| r.service == "ec2").collect();
            crate::support::mutating(&ec2)
        })
        .collect();
    let changing = estate_changes.iter().filter(|calls| !calls.is_empty()).count();
    let claims: usize = proxies
        .iter()
        .map(|p| {
            p.calls("s3", "PutObject")
                .iter()
                .filter(|r| r.path.contains("/.miyabi/claims/acme/same-1"))
                .count()
        })
        .sum();
    assert!(claims >= 2, "both workers tried to claim it ({claims} claim writes)");
    assert_eq!(
        changing, 1,
        "mutating EC2 calls at exactly one worker's proxy: {estate_changes:?}"
    );

    let failed = result_of(&bucket, "acme", "denied-1").await.unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(error.contains(denied) && error.contains("sts.AssumeRole"), "{error}");
    assert!(failed.run.is_some_and(|r| r.account_id == denied));
}
