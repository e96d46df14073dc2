//! `discover` and `cycle` in many accounts: one run per account into `OUT/<account>/`, a few at
//! a time, and `OUT/accounts.json` over all of them.

use std::sync::Arc;
use std::time::Instant;

use super::{aws_options, context, in_account, Command, Global, EXIT_PARTIAL};
use crate::aws::AwsSession;
use crate::fleet::{for_each_account, resolve, AccountRun, AccountSource, AccountTarget, FleetSummary, RunStatus};
use crate::Error;

/// Runs `command` in every account of `source`; the exit code is the worst account's (1 when
/// one failed, [`EXIT_PARTIAL`] when one was captured in part).
pub(super) async fn run(g: &Global, command: &Command, source: AccountSource) -> Result<u8, Error> {
    refuse_single_account_files(command)?;
    let caller = AwsSession::new(aws_options(g)?);
    let region = match g.regions.first() {
        Some(region) => region.clone(),
        None => caller
            .default_region()
            .await
            .ok_or_else(|| Error::Config("no Region: give --region or set AWS_REGION".into()))?,
    };
    let targets = resolve(&source, &caller, &region).await?;
    if targets.is_empty() {
        return Err(Error::Config("the organization lists no active account".into()));
    }
    let cap = usize::from(g.accounts.max_concurrent_accounts);
    if !g.quiet {
        eprintln!("{} account(s), {} at a time", targets.len(), cap.min(targets.len()));
    }
    let runs = for_each_account(&targets, cap, |target| {
        let region = region.clone();
        async move {
            let run = one_account(g, command, &target, &region).await;
            if !g.quiet {
                eprintln!("account {}: {}", run.account_id, describe(&run));
            }
            run
        }
    })
    .await;
    let summary = FleetSummary::new(runs);
    write_summary(g, &summary)?;
    print_table(&summary);
    Ok(match summary.worst() {
        RunStatus::Succeeded => 0,
        RunStatus::Partial => EXIT_PARTIAL,
        RunStatus::Failed | RunStatus::Refused => 1,
    })
}

/// A file of one account's run (a knowledge base, an earlier world, a reviewed plan) would be
/// shared by every account's: refused. Each account keeps its own under `OUT/<account>/`.
fn refuse_single_account_files(command: &Command) -> Result<(), Error> {
    let (scan, cycle) = match command {
        Command::Discover(args) => (&args.scan, None),
        Command::Cycle(args) => (&args.scan, Some(args)),
        _ => return Ok(()),
    };
    let mut given = Vec::new();
    if scan.previous_world.is_some() {
        given.push("--previous-world");
    }
    if cycle.is_some_and(|c| c.knowledge_base.is_some()) {
        given.push("--knowledge-base");
    }
    if cycle.is_some_and(|c| c.plan.is_some()) {
        given.push("--plan");
    }
    match given.as_slice() {
        [] => Ok(()),
        _ => Err(Error::Config(format!(
            "{} name(s) one account's file; with several accounts each keeps its own under OUT/<account>/",
            given.join(", ")
        ))),
    }
}

/// One account's run: its credentials checked first, then the command into `OUT/<account>/`.
async fn one_account(g: &Global, command: &Command, target: &AccountTarget, region: &str) -> AccountRun {
    let started = Instant::now();
    let mut g = g.clone();
    g.out = g.out.join(&target.account_id);
    g.quiet = true;
    let options = match aws_options(&g) {
        Ok(options) => options,
        Err(e) => return AccountRun::failed(target, &e, &crate::aws::CallStats::default(), started.elapsed()),
    };
    let session = Arc::new(target.session(&options));
    let failed = |e: &Error| AccountRun::failed(target, e, session.stats(), started.elapsed());
    if let Err(e) = session.verify(region).await {
        return failed(&e.into());
    }
    let ctx = match context(&g, Arc::clone(&session)) {
        Ok(ctx) => ctx,
        Err(e) => return failed(&e),
    };
    match in_account(&g, command, ctx, false).await {
        Ok((_, report)) => AccountRun::of(target, &report, session.stats(), started.elapsed()),
        Err(e) => failed(&e),
    }
}

fn describe(run: &AccountRun) -> String {
    match (&run.error, run.last_figures()) {
        (Some(error), _) => format!("failed: {error}"),
        (None, Some((cost, score))) => format!(
            "{:?}, ${cost:.2}/month, score {score:.1}, {:.1}s",
            run.status, run.seconds
        ),
        (None, None) => format!("{:?}, {:.1}s", run.status, run.seconds),
    }
}

fn write_summary(g: &Global, summary: &FleetSummary) -> Result<(), Error> {
    let path = g.out.join("accounts.json");
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&g.out)?;
        let text = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")
    };
    write().map_err(|e| Error::io(&path, e))
}

fn print_table(summary: &FleetSummary) {
    println!("\n| account | status | monthly cost | security score | API calls | seconds |");
    println!("|---|---|---:|---:|---:|---:|");
    for run in &summary.accounts {
        let (cost, score) = run.last_figures().map_or(("—".to_owned(), "—".to_owned()), |(c, s)| {
            (format!("${c:.2}"), format!("{s:.1}"))
        });
        println!(
            "| {} | {:?} | {cost} | {score} | {} | {:.1} |",
            run.account_id,
            run.status,
            run.api_calls.values().sum::<u64>(),
            run.seconds
        );
    }
    println!(
        "\n{} account(s): ${:.2}/month in all; lowest score {}",
        summary.accounts.len(),
        summary.monthly_cost_usd,
        summary
            .lowest_security_score
            .map_or("—".to_owned(), |s| format!("{s:.1}"))
    );
    for run in summary.accounts.iter().filter(|r| r.error.is_some()) {
        println!("error: {}", run.error.as_deref().unwrap_or_default());
    }
}
