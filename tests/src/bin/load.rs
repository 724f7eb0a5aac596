//! `puck-load`: load without loss on the local stack (RELIABILITY.md, "Load without loss").
//!
//! Starts moto and a local stack, subscribes 3 URLs of one local HTTPS receiver that fails 10%
//! of requests at random (seeded), publishes `--events` events concurrently, then checks that
//! every delivery ended `succeeded` and that the receiver accepted every (subscription,
//! event_id) pair; prints duplicates and timings. Exits 1 on any loss.
//!
//! ```text
//! infra/scripts/load.sh [--events 10000] [--subscriptions 3] [--failure-rate 0.1] [--seed 5]
//!                       [--concurrency 16] [--pollers 8] [--stall-secs 120] [--throttle-dynamo 0.2]
//! ```
//!
//! `--fairness` runs the fairness measurement instead (docs/flow-control.md): account A's `--subscriptions` (default 3) subscriptions to a receiver answering
//! after `--slow-secs` (9) with a backlog of `--events` (100) events each, beside account B's
//! healthy subscription at an event a second; `--cap` (5) is `SUBSCRIPTION_MAX_IN_FLIGHT`,
//! `--pollers` (20, the template's MaximumConcurrency) the dispatcher pollers. Exits 1 unless
//! B's p99 stays under 2 s and within 1.5x its idle p99 and every delivery of A succeeds.
//!
//! `--throttle-dynamo F` has DynamoDB answer a share F of all requests as throttled (docs/local-stack.md:
//! the real `ProvisionedThroughputExceededException` / `ThrottlingException`, under the SDK's own
//! retries); the verdict is the same: every pair delivered, nothing `failed_permanent`.

use anyhow::{bail, Context as _, Result};
use puck_aws::faults::FaultSwitches;
use puck_core::model::Scope;
use puck_e2e::load::{self, LoadOptions};
use puck_e2e::ApiClient;
use puck_local::LocalStack;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<()> {
    for (name, value) in [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")]
    {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    let (opts, settings) = parse_args(std::env::args().skip(1))?;
    let lost = tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(opts, settings))?;
    std::process::exit(i32::from(lost));
}

/// Command-line settings beyond [`LoadOptions`].
struct Run {
    pollers: usize,
    throttle_dynamo: f64,
    fairness: bool,
    slow_secs: u64,
    cap: u32,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(LoadOptions, Run)> {
    let mut opts = LoadOptions::default();
    let mut run = Run { pollers: 0, throttle_dynamo: 0.0, fairness: false, slow_secs: 9, cap: 5 };
    let mut events = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => events = Some(value()?.parse().context("--events")?),
            "--fairness" => run.fairness = true,
            "--slow-secs" => run.slow_secs = value()?.parse().context("--slow-secs")?,
            "--cap" => run.cap = value()?.parse().context("--cap")?,
            "--subscriptions" => opts.subscriptions = value()?.parse().context("--subscriptions")?,
            "--failure-rate" => opts.failure_rate = value()?.parse().context("--failure-rate")?,
            "--seed" => opts.seed = value()?.parse().context("--seed")?,
            "--concurrency" => opts.publish_concurrency = value()?.parse().context("--concurrency")?,
            "--pollers" => run.pollers = value()?.parse().context("--pollers")?,
            "--throttle-dynamo" => run.throttle_dynamo = value()?.parse().context("--throttle-dynamo")?,
            "--stall-secs" => opts.stall_timeout = Duration::from_secs(value()?.parse().context("--stall-secs")?),
            "-h" | "--help" => {
                println!(
                    "puck-load [--fairness [--slow-secs N] [--cap N]] [--events N] [--subscriptions N] [--failure-rate F] [--seed N] [--concurrency N] [--pollers N] [--stall-secs N] [--throttle-dynamo F]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    opts.events = events.unwrap_or(if run.fairness { 100 } else { opts.events });
    if run.pollers == 0 {
        run.pollers = if run.fairness { 20 } else { 8 };
    }
    Ok((opts, run))
}

async fn run(opts: LoadOptions, run: Run) -> Result<bool> {
    if run.fairness {
        return fairness(opts, run).await;
    }
    let pollers = run.pollers;
    // One moto per service (DynamoDB, SQS, Secrets Manager): moto serves one request at a time,
    // so three processes use more than one core.
    let motos = puck_local::MotoServices::start().await?;
    let mut stack_opts = load::stack_options(&motos.dynamodb.endpoint, pollers);
    stack_opts.service_endpoints = Some(motos.endpoints());
    let switches = Arc::new(FaultSwitches::default());
    stack_opts.faults = Some(switches.clone());
    let stack = LocalStack::start(stack_opts).await?;
    let account = puck_local::keys::new_account_id();
    let key = stack.issue_key(&account, &Scope::ALL).await?;
    let api = ApiClient::new(&stack.base_url, Some(key));
    // Throttling starts once the stack is provisioned and the run's key stored.
    switches
        .throttle_dynamo_per_mille
        .store((run.throttle_dynamo.clamp(0.0, 1.0) * 1000.0).round() as u32, Ordering::Relaxed);
    eprintln!(
        "puck-load: {} events x {} subscriptions, receiver failing {:.0}% (seed {}), {} pollers, {} publishers",
        opts.events,
        opts.subscriptions,
        opts.failure_rate * 100.0,
        opts.seed,
        pollers,
        opts.publish_concurrency
    );
    let report = load::run(&api, &opts, &|line| eprintln!("puck-load: {line}")).await;
    println!("{}", report.summary());
    let failed_permanent = report.not_succeeded.iter().filter(|(_, status)| status == "failed_permanent").count();
    println!(
        "dynamodb throttled       {} requests ({:.0}% of DynamoDB requests asked for)\nfailed_permanent         {failed_permanent}",
        switches.dynamo_throttled.load(Ordering::Relaxed),
        run.throttle_dynamo * 100.0
    );
    for (path, event_id) in report.missing_pairs.iter().take(10) {
        println!("missing: {path} {event_id}");
    }
    for (id, status) in report.not_succeeded.iter().take(10) {
        println!("not succeeded: {id} {status}");
    }
    println!("moto cpu                 {}", moto_cpu(&motos));
    stack.shutdown();
    motos.stop().await?;
    Ok(report.lost())
}

/// CPU seconds each moto used so far (Linux `/proc/<pid>/stat`: utime + stime), e.g.
/// `dynamodb 81.2 s, sqs 40.3 s, secretsmanager 0.4 s`.
fn moto_cpu(motos: &puck_local::MotoServices) -> String {
    let seconds = |pid: Option<u32>| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
        // Fields after the command (which may hold spaces) start after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    };
    let names = ["dynamodb", "sqs", "secretsmanager"];
    names
        .iter()
        .zip(motos.pids())
        .map(|(name, pid)| match seconds(pid) {
            Some(s) => format!("{name} {s:.1} s"),
            None => format!("{name} ?"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--fairness`: the long version of the e2e fairness test; true when it failed.
async fn fairness(opts: LoadOptions, run: Run) -> Result<bool> {
    let motos = puck_local::MotoServices::start().await?;
    let mut stack_opts = load::stack_options(&motos.dynamodb.endpoint, run.pollers);
    stack_opts.service_endpoints = Some(motos.endpoints());
    stack_opts.env_overrides.insert("SUBSCRIPTION_MAX_IN_FLIGHT".into(), run.cap.to_string());
    // The template's grace: a delivery waiting on the cap is not overdue after the load run's 20 s.
    stack_opts.env_overrides.insert("SWEEP_GRACE_SECONDS".into(), "300".into());
    let stack = LocalStack::start(stack_opts).await?;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let key = stack.issue_key(&puck_local::keys::new_account_id(), &Scope::ALL).await?;
        clients.push(ApiClient::new(&stack.base_url, Some(key)));
    }
    let per_sub_rounds = (opts.events as u64).div_ceil(u64::from(run.cap.max(1)));
    let fair = puck_e2e::fairness::FairnessOptions {
        slow_delay: Duration::from_secs(run.slow_secs),
        a_subscriptions: opts.subscriptions,
        a_events: opts.events,
        idle_secs: 20,
        busy_secs: per_sub_rounds * run.slow_secs,
        drain_timeout: Duration::from_secs(per_sub_rounds * run.slow_secs * 2 + 60),
    };
    eprintln!("puck-load --fairness: {fair:?}, cap {}, {} pollers", run.cap, run.pollers);
    let report = puck_e2e::fairness::run(&clients[0], &clients[1], &fair, &|l| eprintln!("puck-load: {l}")).await;
    println!("{}", report.summary());
    println!("moto cpu                 {}", moto_cpu(&motos));
    stack.shutdown();
    motos.stop().await?;
    let ok = report.busy_p99 < 2.0
        && report.busy_p99 <= 1.5 * report.idle_p99
        && report.a_succeeded == report.a_deliveries
        && report.a_overlapped_b;
    Ok(!ok)
}
