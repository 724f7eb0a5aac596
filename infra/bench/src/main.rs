//! `puck-bench`: measures what performance means for this serverless service — cold start,
//! package size, peak memory, the all-in AWS bill per delivery and at zero traffic, the partition
//! ceiling, local-stack latency, throughput and CPU, and signing cost — each beside a reference or
//! goal, and writes BENCHMARKS.md and BENCHMARKS.json.
//!
//! Run it through `infra/scripts/bench.sh`, which builds the binaries first. Every figure in the
//! report comes from this run; nothing is copied from an earlier one. This file only orchestrates:
//! measuring lives in `cold_starts`, `cost_scenarios`, `throughput`, `signing`; the arithmetic in `ledger` and
//! `cost`; writing in `report`.

mod call_log;
mod cold_starts;
mod cost;
mod cost_scenarios;
mod cpu;
mod floor;
mod ledger;
mod receiver;
mod report;
mod runtime_api;
mod signing;
mod stack;
mod stats;
mod throughput;

use anyhow::{anyhow, Context as _, Result};
use call_log::{tally, CallCounter};
use report::CostFigures;
use stack::BenchStack;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Command-line options.
#[derive(Debug, Clone)]
struct Args {
    /// Cold starts per binary.
    runs: usize,
    /// Events of the "N events → 10 subscriptions" scenario (may be scaled down, see report).
    events: usize,
    /// Sequential publishes of the latency scenario.
    latency_events: usize,
    /// Where the function binaries are (target/release, or target/debug for a quick run).
    bin_dir: PathBuf,
    /// The reports.
    out: PathBuf,
    json: PathBuf,
    /// Wall-clock budget of the bulk scenario; it is scaled down to fit.
    bulk_budget: Duration,
    /// Fewer events per cost scenario and smaller defaults (stated in the report).
    quick: bool,
    /// Only the bill, fixed cost and partition model (no latency, throughput or cold starts).
    cost_only: bool,
}

const USAGE: &str = "puck-bench [--quick] [--cost-only] [--runs 10] [--events 1000] [--latency-events 100] [--bin-dir target/release] [--out BENCHMARKS.md] [--json BENCHMARKS.json] [--bulk-budget-secs 150]";

fn parse_args() -> Result<Args> {
    let root = puck_local::moto::repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let mut args = Args {
        runs: 10,
        events: 1000,
        latency_events: 100,
        bin_dir: target.join("release"),
        out: root.join("BENCHMARKS.md"),
        json: root.join("BENCHMARKS.json"),
        bulk_budget: Duration::from_secs(150),
        quick: false,
        cost_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => {
                args.quick = true;
                args.runs = 3;
                args.events = 200;
                args.latency_events = 40;
                args.bulk_budget = Duration::from_secs(60);
            }
            "--cost-only" => args.cost_only = true,
            "--runs" => args.runs = value()?.parse()?,
            "--events" => args.events = value()?.parse()?,
            "--latency-events" => args.latency_events = value()?.parse()?,
            "--bin-dir" => args.bin_dir = PathBuf::from(value()?),
            "--out" => args.out = PathBuf::from(value()?),
            "--json" => args.json = PathBuf::from(value()?),
            "--bulk-budget-secs" => args.bulk_budget = Duration::from_secs(value()?.parse()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(anyhow!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// The build profile of the measured binaries, as the report states it.
fn profile(bin_dir: &std::path::Path) -> &'static str {
    if bin_dir.ends_with("debug") {
        "dev (debug build: unoptimised, so durations and CPU are upper bounds)"
    } else {
        "release: opt-level 3, fat LTO, 1 codegen unit, panic=abort, stripped"
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    cost_scenarios::count_logs();
    // Two workers: the machine the figures are published for has two cores.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(args))
}

/// The cost scenarios, the failed attempts, the idle sweep and the partition model.
async fn measure_costs(stack: &BenchStack, init_calls: BTreeMap<String, u64>, quick: bool) -> Result<CostFigures> {
    let template = puck_local::template::Template::load(&puck_local::moto::repo_root().join("template.yaml"))?;
    let layout = cost_scenarios::Layout::from_template(&template)?;
    let sweep = cost_scenarios::idle_sweep(stack, &layout).await?;
    let mut measured = Vec::new();
    let mut skipped = Vec::new();
    for s in cost_scenarios::grid(quick) {
        if s.batch.is_some() && layout.batch_route.is_none() {
            skipped.push((s.key.clone(), "n/a: route not built".to_owned()));
            continue;
        }
        if s.ingest && !stack.has_ingest() {
            skipped.push((s.key.clone(), "n/a: no ingest queue".to_owned()));
            continue;
        }
        eprintln!("bench: cost scenario {} ({} events)…", s.key, s.events);
        let m = cost_scenarios::run(stack, &layout, &s).await.with_context(|| s.key.clone())?;
        println!(
            "cost {:26} {} (x86_64) {} (arm64) per million deliveries",
            s.key,
            stats::usd(cost::per_million(&m.usage, cost::Arch::X86_64)),
            stats::usd(cost::per_million(&m.usage, cost::Arch::Arm64))
        );
        measured.push(m);
    }
    let mut failed = BTreeMap::new();
    for kib in [1usize, 16, 128] {
        failed.insert(kib * 1024, cost_scenarios::failed_attempt(stack, &layout, kib * 1024).await?);
    }
    let part = measured
        .iter()
        .find(|m| m.scenario.key == "1KiB_fanout1_single")
        .ok_or_else(|| anyhow!("no 1 KiB 1 → 1 scenario"))?;
    let config_cache_secs = stack.env.get("CONFIG_CACHE_SECONDS").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let partition =
        cost::partition_keys(&part.usage.ledger.keys, part.usage.deliveries, &part.event_ids, config_cache_secs > 0.0);
    let partition_scenario = format!("{} ({} events)", part.scenario.key, part.scenario.events);
    let fixed = cost::Fixed {
        esm_queues: layout.esm_queues as f64,
        idle_receives_per_queue_month: cost::idle_receives_per_month(),
        secrets: layout.secrets as f64,
        alarms: layout.alarms as f64,
        dashboards: layout.dashboards as f64,
        dynamo_kms: layout.dynamo_kms,
        scheduled_per_month: layout.schedule_period_s.map_or(0.0, |p| cost::MONTH_S / p as f64),
        scheduled_run: sweep,
    };
    Ok(CostFigures { measured, skipped, failed, fixed, partition, partition_scenario, config_cache_secs, init_calls })
}

async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let measured_at = utc_now();
    let root = puck_local::moto::repo_root();
    let workdir = root.join("target/bench");
    let functions = CallCounter::default();
    puck_aws::add_sdk_interceptor(functions.interceptor());
    let profile = profile(&args.bin_dir);
    let machine = machine(profile);
    println!("{machine}");

    eprintln!("bench: starting moto…");
    let moto = puck_local::Moto::start().await?;
    let stack = Arc::new(BenchStack::start(&moto.endpoint, functions.clone(), &workdir).await?);
    let init_calls = tally(&functions.take());

    if args.cost_only {
        return cost_only(&args, &stack, init_calls, &measured_at, moto).await;
    }
    eprintln!("bench: signing…");
    let sign = signing::measure();
    // Latency and throughput first, on a near-empty moto: the cost scenarios (up to 128 KiB ×
    // fan-out 100) leave it holding tens of megabytes, which slows every moto call after them.
    // Units, not speed, make the cost figures, so they lose nothing by coming second.
    eprintln!("bench: latency and throughput…");
    let perf = throughput::measure(&stack, args.latency_events, args.events, args.bulk_budget, moto.pid()).await?;
    functions.take();
    eprintln!("bench: all-in cost scenarios…");
    let costs = measure_costs(&stack, init_calls, args.quick).await?;
    eprintln!("bench: cold starts ({} runs per binary)…", args.runs);
    let cold = cold_starts::measure(&stack, &args.bin_dir, args.runs, &moto.endpoint).await?;

    let command = format!(
        "target/{}/puck-bench {}--runs {} --events {} --latency-events {}",
        if args.quick { "debug" } else { "release" },
        if args.quick { "--quick " } else { "" },
        args.runs,
        args.events,
        args.latency_events
    );
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `infra/scripts/bench.sh` (the `puck-bench` binary, `infra/bench`), with BENCHMARKS.json beside it. Every figure \
         below was measured in the run that wrote this file ({measured_at}), and every reference beside it in the same run. Re-run \
         the command to refresh it; figures move by a few percent between runs on a shared machine.\n"
    );
    let _ = writeln!(md, "## Machine and commands\n\n{machine}\n");
    let _ = writeln!(
        md,
        "```sh\ninfra/scripts/bench.sh {}          # this run: {command}\n```\n",
        if args.quick { "--quick" } else { "" }
    );
    if args.quick {
        let _ = writeln!(
            md,
            "**This is a quick run** (`--quick`): dev-profile binaries, fewer events per cost scenario, {} cold starts per binary. \
             Cost figures depend on units, not speed, except the Lambda duration lines (upper bounds here); cold-start, latency \
             and CPU figures of a dev build are upper bounds of the release build's. `infra/scripts/bench.sh` without `--quick` \
             runs the full size on release builds.\n",
            args.runs
        );
    }
    let _ = writeln!(
        md,
        "The AWS side is moto {} on loopback (`infra/scripts/bootstrap-python.sh`), provisioned from template.yaml; \
         deliveries go over HTTPS (rustls) to a loopback receiver with a certificate from a throw-away CA \
         (`EXTRA_CA_CERT`, `ALLOW_PRIVATE_TARGETS=1`).\n",
        puck_local::moto::MOTO_REQUIREMENT
    );
    md.push_str(&report::cost_md(&costs));
    md.push_str(&report::perf_md(&perf, profile));
    md.push_str(&report::cold_md(&cold, args.runs));
    md.push_str(&report::signing_md(&sign));
    let _ = writeln!(md, "\n_Whole run: {:.0} s._", started.elapsed().as_secs_f64());
    std::fs::write(&args.out, &md).with_context(|| format!("Failed to write {}", args.out.display()))?;
    let json = report::json(&costs, Some(&perf), &cold, &measured_at, &command);
    std::fs::write(&args.json, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("Failed to write {}", args.json.display()))?;
    println!("\nwrote {} and {} ({:.0} s)", args.out.display(), args.json.display(), started.elapsed().as_secs_f64());
    drop(stack);
    moto.stop().await?;
    Ok(())
}

/// `--cost-only`: the cost sections and the JSON's cost keys, for comparing layouts quickly.
async fn cost_only(
    args: &Args,
    stack: &Arc<BenchStack>,
    init_calls: BTreeMap<String, u64>,
    measured_at: &str,
    moto: puck_local::Moto,
) -> Result<()> {
    let costs = measure_costs(stack, init_calls, args.quick).await?;
    let md = format!("# Benchmarks (cost only, {measured_at})\n\n{}", report::cost_md(&costs));
    std::fs::write(&args.out, md).with_context(|| format!("Failed to write {}", args.out.display()))?;
    let json = report::json(&costs, None, &[], measured_at, "puck-bench --cost-only");
    std::fs::write(&args.json, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("Failed to write {}", args.json.display()))?;
    moto.stop().await?;
    Ok(())
}

/// The current UTC time as RFC 3339, from the system clock.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    puck_core::time::Timestamp::from_unix_seconds(secs as i64).to_string()
}

/// CPU, cores, memory, OS, rustc.
fn machine(profile: &str) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("PRETTY_NAME="))
                .map(|l| l.trim_start_matches("PRETTY_NAME=").trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    format!(
        "| | |\n|---|---|\n| CPU | {cpu} |\n| cores | {cores} |\n| memory | {:.1} GiB |\n| OS | {os} (kernel {kernel}) |\n| rustc | {rustc} |\n| profile | {profile} |",
        mem_kib as f64 / 1_048_576.0
    )
}
