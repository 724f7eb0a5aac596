//! Writing the report: BENCHMARKS.md sections and BENCHMARKS.json from what the measuring
//! modules ([`crate::coldrun`], [`crate::costrun`], [`crate::throughput`], [`crate::signing`])
//! returned. No measuring here, so every section can be tested on hand-made figures.

use crate::coldrun::BinaryFigures;
use crate::cost::{self, Arch, Fixed, KeyLimit, Scope, Usage};
use crate::costrun::Measured;
use crate::floor::floor_per_million;
use crate::signing;
use crate::stats::{fmt_bytes, fmt_ms, ms, quantile, usd};
use crate::throughput::{PerfFigures, POLLERS, PUBLISH_CONCURRENCY};
use puck_core::services::dispatch::LAST_DELIVERY_REFRESH_SECS;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Cold start, where init goes, size and peak memory; `runs` starts per binary.
pub fn cold_md(all: &[BinaryFigures], runs: usize) -> String {
    let mut md = String::new();
    let hello = all.iter().find(|f| f.name == "hello");
    let hello_p50 = hello.and_then(|h| quantile(&h.init_ms(), 0.5));
    let _ = writeln!(md, "## Cold start\n");
    let _ = writeln!(
        md,
        "Each binary from `target/release` is started {} times as a fresh process against a loopback \
         implementation of the Lambda Runtime API (`GET …/invocation/next`, `POST …/response`, `…/error`, \
         `…/init/error`) with the function's configuration (`TABLE_NAME`, `DELIVERY_QUEUE_URL`, \
         `MASTER_KEY_SECRET_ID`, `AWS_ENDPOINT_URL` → moto, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128`, …). \
         **init** = process spawn → first `GET …/next`; **first response** = spawn → first response POST, \
         the first invocation being the function's `events/<binary>.json` sample with a valid API key \
         (dispatcher and dead-letter: an SQS batch with one real pending delivery, sent over HTTPS to the \
         loopback receiver; ingest: `events/ingest.json` for the tenant's account; sweeper: `events/sweeper.json`). The reference is `hello` (`infra/bench/src/bin/hello.rs`): \
         `lambda_runtime` on the same current-thread tokio runtime, same release profile. Goal: every \
         function's init ≤ 1.5× hello's.\n",
        runs
    );
    let _ = writeln!(md, "| function | init p50 ms | init p90 ms | init p50 ÷ hello | first response p50 ms | p90 ms | 1st invocation p50 ms | warm invocation p50 ms | 1st response |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut worst: Option<(String, f64)> = None;
    for f in all {
        let p50 = quantile(&f.init_ms(), 0.5);
        let ratio = match (p50, hello_p50) {
            (Some(a), Some(h)) if h > 0.0 => Some(a / h),
            _ => None,
        };
        if f.name != "hello" {
            if let Some(r) = ratio {
                if worst.as_ref().is_none_or(|(_, w)| r > *w) {
                    worst = Some((f.name.clone(), r));
                }
            }
        }
        let outcomes: BTreeMap<&str, usize> = f.runs.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.outcome.as_str()).or_default() += 1;
            m
        });
        let outcome = outcomes.keys().copied().collect::<Vec<_>>().join(", ");
        let failed = if f.failures.is_empty() { String::new() } else { format!(" ({} runs failed)", f.failures.len()) };
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {outcome}{failed} |",
            f.name,
            if f.name == "hello" { " (reference)" } else { "" },
            fmt_ms(p50),
            fmt_ms(quantile(&f.init_ms(), 0.9)),
            ratio.map_or("n/a".into(), |r| format!("{r:.2}×")),
            fmt_ms(f.q(|r| r.first_response, 0.5)),
            fmt_ms(f.q(|r| r.first_response, 0.9)),
            fmt_ms(f.q(|r| r.first_invocation, 0.5)),
            fmt_ms(f.q(|r| r.warm_invocation, 0.5)),
        );
    }
    for f in all.iter().filter(|f| !f.failures.is_empty()) {
        let _ = writeln!(md, "\n`{}` failures: {}", f.name, f.failures.first().map(String::as_str).unwrap_or_default());
    }
    let _ = writeln!(
        md,
        "\nRoute responses are the API Gateway `statusCode` of the sample event: ids in the samples do not exist \
         in the fresh table, so get/update/delete/replay answer 404 after authenticating and looking the id up \
         (the same calls a found id costs); `inbound-receive`'s sample URL key is unknown (401).\n"
    );

    // Where init goes.
    let _ = writeln!(md, "### Where init goes\n");
    let _ = writeln!(
        md,
        "Every AWS call of the function goes through a timestamping loopback relay to moto. The first call at init is \
         the master key's `GetSecretValue` (read once per container, docs/security.md), so init splits into: spawn → first \
         request byte (runtime, tracing, config, SDK config and clients), the GetSecretValue round trip (moto on \
         loopback), and the rest (keyring derivation, first `GET …/next`).\n"
    );
    let _ = writeln!(md, "| function | init p50 ms | spawn → GetSecretValue sent p50 | GetSecretValue round trip p50 | after it p50 | init − round trip, ÷ hello |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    let mut worst_without: Option<f64> = None;
    for f in all.iter().filter(|f| f.name != "hello") {
        let pre: Vec<f64> = ms(f.runs.iter().filter_map(|r| r.first_aws_request.filter(|t| *t < r.init)));
        let rtt: Vec<f64> = ms(f.runs.iter().filter_map(|r| match (r.first_aws_request, r.first_aws_response) {
            (Some(a), Some(b)) if b < r.init => Some(b - a),
            _ => None,
        }));
        let post: Vec<f64> =
            ms(f.runs.iter().filter_map(|r| r.first_aws_response.filter(|t| *t < r.init).map(|t| r.init - t)));
        let without: Vec<f64> = f
            .runs
            .iter()
            .filter_map(|r| match (r.first_aws_request, r.first_aws_response) {
                (Some(a), Some(b)) if b < r.init => Some((r.init - (b - a)).as_secs_f64() * 1000.0),
                _ => None,
            })
            .collect();
        let ratio = match (quantile(&without, 0.5), hello_p50) {
            (Some(a), Some(h)) if h > 0.0 => Some(a / h),
            _ => None,
        };
        if let Some(r) = ratio {
            worst_without = Some(worst_without.map_or(r, |w: f64| w.max(r)));
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            f.name,
            fmt_ms(quantile(&f.init_ms(), 0.5)),
            fmt_ms(quantile(&pre, 0.5)),
            fmt_ms(quantile(&rtt, 0.5)),
            fmt_ms(quantile(&post, 0.5)),
            ratio.map_or("n/a".into(), |r| format!("{r:.2}×"))
        );
    }
    let verdict = match (&worst, hello_p50) {
        (Some((name, r)), Some(h)) if *r <= 1.5 => format!(
            "**Goal met**: the slowest init ({name}) is {r:.2}× hello's {h:.1} ms."
        ),
        (Some((name, r)), Some(h)) => format!(
            "**Goal not met**: the slowest init ({name}) is {r:.2}× hello's {h:.1} ms (p50). Without the GetSecretValue \
             round trip the worst ratio is {}. The gap is the function's own init before its first `GET …/next`: the \
             tokio runtime and tracing are common to both, so it is building the AWS SDK config and three clients \
             (credentials, endpoint resolver, HTTP connector with rustls roots) and the master-key round trip; \
             in AWS that round trip is a TLS connection to Secrets Manager (typically tens of ms, not moto's loopback \
             figure), which only the design's once-per-container read keeps off the invocations.",
            worst_without.map_or("n/a".into(), |w| format!("{w:.2}×"))
        ),
        _ => "Goal could not be evaluated (no successful runs).".to_owned(),
    };
    let _ = writeln!(md, "\n{verdict}\n");

    // Size and memory.
    let _ = writeln!(md, "## Size and peak memory\n");
    let _ = writeln!(
        md,
        "Size as packaged: the binary is the Lambda's `bootstrap`; zip = `zip -j bootstrap.zip bootstrap` \
         (deflate, what `sam build` uploads). Peak memory = `VmHWM` (peak resident set) from \
         `/proc/<pid>/status` after the warm (second) invocation, the maximum over the {} runs. \
         Goal: fits a 128 MB Lambda with room to spare.\n",
        runs
    );
    let _ = writeln!(md, "| function | bootstrap bytes | zip bytes | peak RSS (max) | share of 128 MB |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    let mut max_hwm: Option<(String, u64)> = None;
    for f in all {
        let hwm = f.hwm();
        if f.name != "hello" {
            if let Some(h) = hwm {
                if max_hwm.as_ref().is_none_or(|(_, m)| h > *m) {
                    max_hwm = Some((f.name.clone(), h));
                }
            }
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            f.name,
            f.size.map_or("n/a".into(), fmt_bytes),
            f.zip.map_or("n/a".into(), fmt_bytes),
            hwm.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            hwm.map_or("n/a".into(), |k| format!("{:.0}%", k as f64 * 1024.0 / 128e6 * 100.0)),
        );
    }
    if let Some((name, h)) = max_hwm {
        let share = h as f64 * 1024.0 / 128e6 * 100.0;
        let _ = writeln!(
            md,
            "\n{} the largest peak is {name} at {:.1} MiB, {share:.0}% of 128 MB.\n",
            if share < 50.0 { "**Goal met**:" } else { "**Goal not met**:" },
            h as f64 / 1024.0
        );
    }
    md
}

/// Latency, throughput beside raw moto, CPU per delivery.
pub fn perf_md(f: &PerfFigures, profile: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Latency and throughput on the local stack\n");
    let _ = writeln!(
        md,
        "Publish = `POST /v1/events` through the in-process API gateway (the real `events-publish` handler); delivery = {POLLERS} \
         concurrent event-source-mapping loops (1 s long polls, batch size from template.yaml) invoking the real dispatcher handler, \
         which POSTs over HTTPS to the loopback receiver. Latency = publish request start → the receiver has the request.\n"
    );
    let _ = writeln!(
        md,
        "**publish → receiver latency** over {} sequential events (1 subscription): p50 **{} ms**, p99 **{} ms** (min {} ms, max {} ms).\n",
        f.latencies_ms.len(),
        fmt_ms(quantile(&f.latencies_ms, 0.5)),
        fmt_ms(quantile(&f.latencies_ms, 0.99)),
        fmt_ms(quantile(&f.latencies_ms, 0.0)),
        fmt_ms(quantile(&f.latencies_ms, 1.0))
    );
    let events = f.bulk_events;
    if events < f.requested_events {
        let _ = writeln!(
            md,
            "The bulk scenario was **scaled down from {} to {events} events** so it fits the {} s budget at the fan-out rate \
             measured just before (moto is a single Python process on a 2-core machine); `--events {} --bulk-budget-secs N` runs it in full.\n",
            f.requested_events,
            f.bulk_budget.as_secs(),
            f.requested_events
        );
    }

    // The raw moto reference: the same useful calls, straight to moto.
    let _ = writeln!(
        md,
        "The reference is moto's own rate for **the same SDK calls**: the calls counted during the scenario (DynamoDB and SQS, \
         minus the empty long polls of idle pollers) replayed straight to moto with uncounted clients and the scenario's batch sizes, \
         one at a time for the sequential scenario and {POLLERS} at a time for the others. \
         \"moto share\" = replay time ÷ scenario time, the part of the wall time that moto alone needs; the rest is our code \
         (handlers, signing, HTTPS, JSON, the SDK) and waiting.\n"
    );
    let _ = writeln!(md, "| scenario | deliveries | wall time s | deliveries/s | same calls straight to moto s | moto-only deliveries/s | moto share |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for (row, replay) in f.rows.iter().zip(&f.replays) {
        let rate = row.deliveries as f64 / row.elapsed.as_secs_f64();
        let moto_rate = row.deliveries as f64 / replay.as_secs_f64();
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | **{:.1}** | {:.2} | {:.1} | {:.0}% |",
            row.label,
            row.deliveries,
            row.elapsed.as_secs_f64(),
            rate,
            replay.as_secs_f64(),
            moto_rate,
            replay.as_secs_f64() / row.elapsed.as_secs_f64() * 100.0
        );
    }
    let _ = writeln!(
        md,
        "\nPublishing the {events} events alone took {:.2} s ({PUBLISH_CONCURRENCY} concurrent publishers).\n",
        f.publish_elapsed.as_secs_f64()
    );
    let retries = f.publish_retries;
    let _ = writeln!(
        md,
        "Publishes answered 500 and retried with the same `event_id` during these scenarios: **{retries}** (the local gateway \
         answers 500 when a handler exceeds the template's 10 s timeout; with moto saturated by the pollers a publish can wait \
         that long for its DynamoDB calls).\n"
    );
    let c = &f.cpu;
    let _ = writeln!(md, "### CPU per delivery\n");
    let _ = writeln!(
        md,
        "CPU seconds (utime + stime from `/proc/<pid>/stat`) over the bulk scenario ({} deliveries, {:.1} s wall): this process — the \
         in-process gateway and the real publish and dispatch handlers, the event-source-mapping loops **and the test receiver**, which \
         shares the process — against moto's process. Built with the **{profile}** profile; the receiver's TLS is included, so our \
         figure is an upper bound.\n",
        c.deliveries, c.wall_s
    );
    let _ = writeln!(md, "| process | CPU s | CPU ms per delivery |\n|---|---:|---:|");
    let _ = writeln!(
        md,
        "| puck-bench (publish + dispatch + receiver) | {} | **{}** |",
        c.ours_s.map_or("n/a".into(), |v| format!("{v:.2}")),
        fmt_ms(c.ours_ms_per_delivery())
    );
    let _ = writeln!(
        md,
        "| moto (reference: the AWS side) | {} | {} |\n",
        c.moto_s.map_or("n/a".into(), |v| format!("{v:.2}")),
        fmt_ms(c.moto_ms_per_delivery())
    );
    let _ = writeln!(
        md,
        "moto runs under waitress with HTTP/1.1 keep-alive and the patches of `infra/local/src/moto_patches.py` (a base-table \
         Query reads its partition only, an index Query one partition of index entries kept up to date from each write; \
         DynamoDB answers written as JSON directly; one DynamoDB request at a time, as DynamoDB makes each call atomic); here \
         one moto process serves DynamoDB, SQS and Secrets Manager (the local stack runs one per service). Its CPU per \
         delivery is Python answering each call: request parsing, expression evaluation and its web framework.\n"
    );
    md
}

/// The signing section.
pub fn signing_md(s: &signing::SigningFigures) -> String {
    println!(
        "signing: delivery_headers {:.2} µs, bare HMAC-SHA256 {:.2} µs",
        s.headers_ns / 1000.0,
        s.hmac_ns / 1000.0
    );
    format!(
        "## Signing\n\n\
         Median of 7 batches × {} iterations (`std::hint::black_box`), {} B envelope, one secret:\n\n\
         | operation | per call | ÷ bare HMAC |\n|---|---:|---:|\n\
         | `puck_core::signing::delivery_headers` (all 10 headers: `X-Puck-Signature` t=,v1= hex + Standard Webhooks `webhook-signature` base64, ids) | {:.2} µs | {:.2}× |\n\
         | bare HMAC-SHA256 of the same bytes (reference) | {:.2} µs | 1.00× |\n\n\
         Two HMACs (one per scheme) are the floor, so ≈2× is the expected ratio; the rest is hex/base64 encoding and the \
         header strings. Either way signing is microseconds against a delivery's milliseconds of network and storage.\n",
        s.iterations,
        s.body_len,
        s.headers_ns / 1000.0,
        s.headers_ns / s.hmac_ns,
        s.hmac_ns / 1000.0
    )
}

/// Everything the cost and partition sections report.
pub struct CostFigures {
    /// Scenarios measured, in grid order.
    pub measured: Vec<Measured>,
    /// Scenarios not run and why (e.g. "n/a: route not built").
    pub skipped: Vec<(String, String)>,
    /// One failed attempt per payload size (bytes).
    pub failed: BTreeMap<usize, Usage>,
    pub fixed: Fixed,
    /// Key shapes of the partition scenario, and its deliveries.
    pub partition: Vec<(Scope, KeyLimit)>,
    pub partition_scenario: String,
    /// The functions' configuration cache period (`CONFIG_CACHE_SECONDS` of the template).
    pub config_cache_secs: f64,
    /// Calls each function makes at container init.
    pub init_calls: BTreeMap<String, u64>,
}

/// The unsharded key of an account's own items (its subscriptions among them).
const ACCOUNT_KEY: &str = "ACCT#{acct}";

/// The published goals for a scenario key, as `(limit in $ per million, what it is)`.
fn goal(key: &str, base_1kib: Option<f64>) -> Option<(f64, String)> {
    match key {
        "1KiB_fanout1_single" => Some((3.75, "≤ $3.75".into())),
        "1KiB_fanout10_single" => Some((0.70, "≤ $0.70".into())),
        "1KiB_fanout1_batch100" => Some((1.30, "≤ $1.30".into())),
        "1KiB_fanout1_ingest" => Some((2.60, "≤ $2.60".into())),
        "16KiB_fanout1_single" => base_1kib.map(|b| (2.0 * b, format!("≤ 2× 1 KiB = {}", usd(2.0 * b)))),
        "128KiB_fanout1_single" => base_1kib.map(|b| (5.0 * b, format!("≤ 5× 1 KiB = {}", usd(5.0 * b)))),
        _ => None,
    }
}

impl CostFigures {
    /// $ per million successful deliveries of a scenario (None when not measured).
    pub fn per_million(&self, key: &str, arch: Arch) -> Option<f64> {
        self.measured.iter().find(|m| m.scenario.key == key).map(|m| cost::per_million(&m.usage, arch))
    }

    /// The same with 10% of deliveries failing once: + 0.1 × one failed attempt at that payload.
    pub fn per_million_failing(&self, m: &Measured, arch: Arch) -> Option<f64> {
        let failed = self.failed.get(&m.scenario.payload)?;
        Some(cost::per_million(&m.usage, arch) + 0.1 * cost::per_million(failed, arch))
    }

    fn ceiling(&self, scopes: &[Scope], half: bool) -> f64 {
        let keys: Vec<KeyLimit> =
            self.partition.iter().filter(|(s, _)| scopes.contains(s)).map(|(_, k)| k.clone()).collect();
        cost::ceiling(&keys) * if half { 0.5 } else { 1.0 }
    }

    /// Sustained deliveries/s for one account (keys shared by its traffic) at the limit or half of it.
    pub fn account_ceiling(&self, half: bool) -> f64 {
        self.ceiling(&[Scope::Account], half)
    }

    /// The same for one subscription (its own keys and the account's).
    pub fn subscription_ceiling(&self, half: bool) -> f64 {
        self.ceiling(&[Scope::Account, Scope::Subscription], half)
    }

    /// Write units of subscription state one failed attempt (1 KiB, fresh subscription) put on
    /// the account's key.
    pub fn failed_attempt_state_wru(&self) -> f64 {
        self.failed.get(&1024).map_or(0.0, |u| {
            u.ledger
                .keys
                .iter()
                .filter(|((_, pk), _)| cost::key_shape(pk, &[]).0 == ACCOUNT_KEY)
                .map(|(_, l)| l.state_wru)
                .sum()
        })
    }

    /// With a share `failing` of deliveries failing once: the account key, its write units per
    /// delivery, and the deliveries/s one account reaches with it under half its write limit.
    pub fn account_ceiling_when_failing(&self, failing: f64) -> Option<(String, f64, f64)> {
        let (_, key) = self.partition.iter().find(|(_, k)| k.key.ends_with(&format!(": {ACCOUNT_KEY}")))?;
        let per_delivery =
            key.wru_per_delivery + cost::state_wru_when_failing(self.failed_attempt_state_wru(), failing);
        Some((key.key.clone(), per_delivery, cost::PARTITION_WCU_S / 2.0 / per_delivery.max(1e-12)))
    }
}

fn rate(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.0}")
    } else {
        "unbounded".into()
    }
}

/// The all-in cost, fixed monthly cost and partition model sections.
pub fn cost_md(c: &CostFigures) -> String {
    let mut md = String::new();
    // Every scenario's usage carries the template's log settings; the first one says them.
    let template_logs = c
        .measured
        .first()
        .map_or((0.0, 0.0), |m| (m.usage.platform_log_bytes_per_invocation, m.usage.log_retention_days));
    let _ = writeln!(md, "## All-in cost per million successful deliveries\n");
    let _ = writeln!(
        md,
        "Every request the SDK transmits is recorded by an interceptor (`Intercept::read_before_transmit`, once per attempt = once \
         per billed request; `read_after_deserialization` adds the response) registered with `puck_aws::add_sdk_interceptor`, so \
         the log comes from the real adapters: the publish handler behind the in-process API gateway, and the dispatcher behind an \
         event-source-mapping loop whose SQS client is recorded too (AWS bills those receives and deletes). The log is replayed \
         against a shadow of the table (`infra/bench/src/ledger.rs`), whose keys and GSIs (key attributes, projection) are read \
         from template.yaml: a write bills the larger of the item before and after in 1 KB units, and **every GSI the item is in \
         before or after is written too** at the projected size (a changed index key = delete + put; an unchanged projection = no \
         index write); TransactWriteItems costs 2×; reads bill the full item (table) or the projected entry (index) in 4 KB units, \
         half when eventually consistent; SQS bills every 64 KiB of a request or response. Lambda: the measured durations, each \
         rounded up to 1 ms, at the function's MemorySize from the template (publish: the HTTP round trip through the local \
         gateway, an upper bound of the handler time). CloudWatch Logs: the bytes the handlers logged through the same JSON \
         subscriber as in Lambda, plus Lambda's own lines at the template's `SystemLogLevel` ({} B per invocation; {} B at \
         INFO for START/END/REPORT), plus one HTTP API access-log line per API request in the template's format (each \
         `$context` variable as long as API Gateway writes it); stored for the log groups' retention ({} days), priced on \
         the ingested bytes though AWS bills them compressed. Data transfer out: each delivery's body \
         plus its signed headers, and the API responses. Storage: bytes left in the table and its indexes (100 B per item and \
         entry) kept for the retention period. Prices: {}.\n",
        template_logs.0,
        cost::LAMBDA_PLATFORM_LOG_BYTES,
        template_logs.1,
        cost::PRICES_AS_OF
    );
    let _ = writeln!(md, "At container init each function makes: {}.\n", summarize(&c.init_calls));
    let base = c.per_million("1KiB_fanout1_single", Arch::Arm64);
    let _ = writeln!(
        md,
        "| scenario | deliveries measured | x86_64 | arm64 | floor | arm64 ÷ floor | 10% failing once, x86_64 | arm64 | goal (arm64) | |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
    let mut gaps = Vec::new();
    for m in &c.measured {
        let k = &m.scenario.key;
        let x = cost::per_million(&m.usage, Arch::X86_64);
        let a = cost::per_million(&m.usage, Arch::Arm64);
        let fx = c.per_million_failing(m, Arch::X86_64).map_or("n/a".into(), usd);
        let fa = c.per_million_failing(m, Arch::Arm64).map_or("n/a".into(), usd);
        let (g, verdict) = match goal(k, base) {
            Some((limit, text)) if a <= limit => (text, "met".to_owned()),
            Some((limit, text)) => {
                gaps.push((k.clone(), a, limit));
                (text, "**not met**".to_owned())
            }
            None => (String::new(), String::new()),
        };
        let floor = floor_per_million(&m.floor);
        let _ = writeln!(
            md,
            "| `{k}` | {} | {} | **{}** | {} | {:.2} | {fx} | {fa} | {g} | {verdict} |",
            m.usage.deliveries,
            usd(x),
            usd(a),
            usd(floor),
            a / floor
        );
    }
    for (k, why) in &c.skipped {
        let _ = writeln!(md, "| `{k}` | | {why} | {why} | | | | | | |");
    }
    md.push_str(&floor_md(c));
    // Line by line.
    let _ = writeln!(md, "\n### The bill line by line ($ per million successful deliveries, arm64)\n");
    let _ = write!(md, "| line |");
    for m in &c.measured {
        let _ = write!(md, " `{}` |", m.scenario.key);
    }
    let _ = write!(md, "\n|---|");
    for _ in &c.measured {
        let _ = write!(md, "---:|");
    }
    let _ = writeln!(md);
    let bills: Vec<Vec<cost::Line>> = c.measured.iter().map(|m| cost::bill(&m.usage, Arch::Arm64)).collect();
    if let Some(first) = bills.first() {
        for (i, line) in first.iter().enumerate() {
            let _ = write!(md, "| {} |", line.item);
            for (b, m) in bills.iter().zip(&c.measured) {
                let _ = write!(md, " {} |", usd(b[i].usd / m.usage.deliveries.max(1.0) * 1e6));
            }
            let _ = writeln!(md);
        }
    }
    // Units per delivery.
    let _ = writeln!(md, "\n### Units per delivery\n");
    let _ = writeln!(md, "| scenario | table WRU | index WRU | RRU | SQS requests | Lambda invocations | log B (all ingested) | out B | stored B | calls per delivery |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for m in &c.measured {
        let u = &m.usage;
        let d = u.deliveries.max(1.0);
        let inv = u.invocations();
        let idx: f64 = u.ledger.index_wru.values().sum();
        let calls =
            u.ledger.calls.iter().map(|(k, n)| format!("{k} {:.2}", *n as f64 / d)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            md,
            "| `{}` | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.0} | {:.0} | {:.0} | {calls} |",
            m.scenario.key,
            u.ledger.table_wru / d,
            idx / d,
            u.ledger.rru / d,
            u.ledger.sqs / d,
            inv / d,
            u.ingested_log_bytes() / d,
            u.data_out_bytes / d,
            u.stored_bytes / d
        );
    }
    if let Some(m) = c.measured.first() {
        let writes = m
            .usage
            .ledger
            .writes
            .iter()
            .map(|(k, (n, b))| format!("{k} ×{n} (largest {b} B)"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(md, "\nItems written in `{}` (by sort-key prefix): {writes}.\n", m.scenario.key);
    }
    let _ = writeln!(
        md,
        "One failed attempt (receiver answers 500), which a delivery failing once adds to its successful one:\n"
    );
    let _ = writeln!(md, "| payload | WRU (table + indexes) | RRU | SQS requests | $ per million failed attempts, arm64 |\n|---|---:|---:|---:|---:|");
    for (p, u) in &c.failed {
        let _ = writeln!(
            md,
            "| {} KiB | {} | {} | {} | {} |",
            p / 1024,
            u.ledger.wru(),
            u.ledger.rru,
            u.ledger.sqs,
            usd(cost::per_million(u, Arch::Arm64))
        );
    }
    if gaps.is_empty() {
        let _ = writeln!(md, "\n**Every cost goal met** (arm64).\n");
    } else {
        let _ = writeln!(
            md,
            "\n**Goals not met** (arm64): {}.",
            gaps.iter().map(|(k, a, l)| format!("`{k}` {} vs {}", usd(*a), usd(*l))).collect::<Vec<_>>().join("; ")
        );
        if let Some(m) = c.measured.iter().find(|m| m.scenario.key == gaps[0].0) {
            let bill = cost::bill(&m.usage, Arch::Arm64);
            let mut top: Vec<&cost::Line> = bill.iter().collect();
            top.sort_by(|a, b| b.usd.total_cmp(&a.usd));
            let _ = writeln!(
                md,
                "Cause, from the bill of `{}`: {}.\n",
                m.scenario.key,
                top.iter()
                    .take(3)
                    .map(|l| format!("{} {} ({})", l.item, usd(l.usd / m.usage.deliveries.max(1.0) * 1e6), l.quantity))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    // Fixed.
    let _ = writeln!(md, "### Fixed monthly cost at zero traffic\n");
    let _ = writeln!(md, "| line | quantity | $ per month, x86_64 | arm64 |\n|---|---|---:|---:|");
    let fx = cost::fixed_lines(&c.fixed, Arch::X86_64);
    let fa = cost::fixed_lines(&c.fixed, Arch::Arm64);
    for (x, a) in fx.iter().zip(&fa) {
        let _ = writeln!(md, "| {} | {} | {} | {} |", x.item, x.quantity, usd(x.usd), usd(a.usd));
    }
    let _ = writeln!(md, "| **total** | | **{}** | **{}** |\n", usd(cost::total(&fx)), usd(cost::total(&fa)));
    let _ = writeln!(
        md,
        "The event source mappings' idle receives assume Lambda's {} pollers per queue in {} s long polls (AWS does not publish the \
         idle poller count; this is the documented starting concurrency). The sweeper run is measured in-process with nothing overdue.\n",
        cost::IDLE_POLLERS,
        cost::IDLE_POLL_S
    );
    md.push_str(&partition_md(c));
    md
}

/// What the floor counts, and what one failed attempt adds.
fn floor_md(c: &CostFigures) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n**Floor** (`infra/bench/src/floor.rs`): the least the scenario can cost on this shape, from the same prices: per \
         publish request its API Gateway request (none through the ingest queue) and Lambda request; per SQS message (one \
         per event, carrying its deliveries; plus each ingest message) one send and a tenth of a receive and of a delete; \
         one write unit per event; a tenth of a write unit per delivery outcome; the payload stored once for the retention; \
         the same data out as the bill. **arm64 ÷ floor** is how close the design is to that (goal ≤ 1.25). The 10%-failing \
         columns add a tenth of one failed attempt (below) to each delivery's own successful attempt, so they count the \
         failed attempt and the success after it.\n"
    );
    if let Some(u) = c.failed.get(&1024) {
        let _ = writeln!(
            md,
            "One failed attempt (1 KiB, 1 → 1) adds **{}** per million failing deliveries on arm64 (goal ≤ $3.00: {}).\n",
            usd(cost::per_million(u, Arch::Arm64)),
            if cost::per_million(u, Arch::Arm64) <= 3.0 { "met" } else { "**not met**" }
        );
    }
    md
}

fn partition_md(c: &CostFigures) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Partition model\n");
    let _ = writeln!(
        md,
        "From the ledger of `{}` (one account, one subscription): for each partition key of the table and of each GSI, the \
         units one value of it takes per delivery (ids in key values are shown as `{{acct}}`, `{{sub}}`, `{{evt}}`, `{{dlv}}`, \
         digit runs such as shard numbers or time buckets as `{{n}}`). For an unsharded key that is its hottest value's units. \
         A hash-sharded key (a delivery's shard is a stable hash of its id) takes an equal share under sustained traffic, \
         while a sample this small puts only a few deliveries on each shard: its sustained units are the owner's units over \
         all its shards divided by the shard count, and the sample's hottest shard is shown beside them. A key shared by an \
         account's traffic bounds the account; one of a subscription bounds that subscription; per-event and per-delivery \
         keys take one event's burst, not sustained traffic. DynamoDB allows a partition key 1,000 WCU/s and 3,000 RCU/s.\n\n\
         Reads of configuration (subscriptions, API key records) go through the functions' read cache \
         (`CONFIG_CACHE_SECONDS` = {} s): the sample's reads of it are cache misses, paid under sustained traffic once per \
         container per cache period, whatever the delivery rate. They are not counted per delivery; the column \
         \"cached RRU\" shows them, and the last column how many containers may each refresh once per period with the \
         key under half its 3,000 RCU/s (taking the whole sample's cached reads as one refresh).\n\n\
         Writes of a subscription's state (its last delivery, its failing clock) are made by the dispatcher when the \
         outcome changes and otherwise once per container every {} s, whatever the delivery rate: the column \"state WRU\" \
         shows the sample's, not counted per delivery, and the next column how many containers may each write it once per \
         period with the key under half its 1,000 WCU/s. Changes of outcome are the failure case below.\n",
        c.partition_scenario, c.config_cache_secs, LAST_DELIVERY_REFRESH_SECS
    );
    let _ = writeln!(
        md,
        "| key | owner | shards | WRU per delivery | RRU per delivery | sample's hottest value, WRU / RRU | deliveries/s at the limit | at half the limit | cached RRU | containers at half the read limit | state WRU | containers at half the write limit |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (scope, k) in &c.partition {
        let containers = k.containers_at_half(c.config_cache_secs);
        let writers = k.containers_at_half_write(LAST_DELIVERY_REFRESH_SECS as f64);
        let count = |n: f64| if n.is_finite() { format!("{n:.0}") } else { "—".into() };
        let _ = writeln!(
            md,
            "| `{}` | {scope:?} | {} | {:.3} | {:.3} | {:.2} / {:.2} | {} | {} | {:.1} | {} | {:.1} | {} |",
            k.key,
            k.shards,
            k.wru_per_delivery,
            k.rru_per_delivery,
            k.sample_hottest.0,
            k.sample_hottest.1,
            rate(k.at_limit),
            rate(k.at_limit / 2.0),
            k.cached_rru,
            count(containers),
            k.state_wru,
            count(writers)
        );
    }
    let (acc, sub) = (c.account_ceiling(true), c.subscription_ceiling(true));
    let _ = writeln!(
        md,
        "\nHighest sustained deliveries/s with every key under **half** its limit: one account **{}** (goal ≥ 10,000: {}), one \
         subscription **{}** (goal ≥ 3,000: {}); at the full limit {} and {}.\n",
        rate(acc),
        if acc >= 10_000.0 { "met" } else { "**not met**" },
        rate(sub),
        if sub >= 3_000.0 { "met" } else { "**not met**" },
        rate(c.account_ceiling(false)),
        rate(c.subscription_ceiling(false))
    );
    if let Some((key, per_delivery, ceiling)) = c.account_ceiling_when_failing(0.1) {
        let _ = writeln!(
            md,
            "**When 10% of deliveries fail once** (measured: one failed attempt of a fresh subscription writes its state, \
             {:.1} WRU on `{key}`; the success that follows writes it back): every change of outcome is written by the \
             container that sees it, so the account's key takes {per_delivery:.2} WRU per delivery and one account reaches \
             **{}** deliveries/s with it under half its limit ({}). The subscription items of an account share that key; \
             the fix is a partition of its own for each subscription's state and writes of a change coalesced per container.\n",
            c.failed_attempt_state_wru(),
            rate(ceiling),
            if ceiling >= 10_000.0 { "goal ≥ 10,000: met" } else { "goal ≥ 10,000: **not met**" }
        );
    }
    if acc < 10_000.0 || sub < 3_000.0 {
        let hot =
            c.partition.iter().filter(|(s, _)| *s != Scope::Item).min_by(|a, b| a.1.at_limit.total_cmp(&b.1.at_limit));
        if let Some((_, k)) = hot {
            let (w, r) = (k.wru_per_delivery, k.rru_per_delivery);
            if k.shards > 1 {
                let _ = writeln!(md, "Cause: `{}`, spread over {} shards, still takes {w:.3} WRU, {r:.3} RRU per delivery on each; more shards raise the ceiling.\n", k.key, k.shards);
            } else {
                let verb = if w / cost::PARTITION_WCU_S >= r / cost::PARTITION_RCU_S { "writes" } else { "reads" };
                let _ = writeln!(md, "Cause: every delivery of the account {verb} `{}` ({w:.2} WRU, {r:.2} RRU per delivery); only spreading that key's traffic (sharding it, or not reading it per delivery) raises the ceiling.\n", k.key);
            }
        }
    }
    md
}

fn summarize(t: &BTreeMap<String, u64>) -> String {
    if t.is_empty() {
        return "no AWS call".into();
    }
    t.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", ")
}

fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 10_000.0).round() / 10_000.0)
    } else {
        Value::Null
    }
}

/// BENCHMARKS.json: the machine-readable figures (the published keys, plus the 10%-failing and
/// every other measured scenario). Scenarios not measured are `null` with a `_why`.
pub fn json(
    c: &CostFigures,
    perf: Option<&PerfFigures>,
    cold: &[BinaryFigures],
    measured_at: &str,
    run: &str,
) -> Value {
    let per_arch = |f: &dyn Fn(Arch) -> Option<f64>| -> Value {
        let mut m = Map::new();
        for a in Arch::ALL {
            m.insert(a.name().into(), f(a).map_or(Value::Null, finite));
        }
        Value::Object(m)
    };
    let mut costs = Map::new();
    let mut failing = Map::new();
    let mut floors = Map::new();
    let mut ratios = Map::new();
    for m in &c.measured {
        let floor = floor_per_million(&m.floor);
        costs.insert(m.scenario.key.clone(), per_arch(&|a| Some(cost::per_million(&m.usage, a))));
        failing.insert(m.scenario.key.clone(), per_arch(&|a| c.per_million_failing(m, a)));
        floors.insert(m.scenario.key.clone(), per_arch(&|_| Some(floor)));
        ratios.insert(m.scenario.key.clone(), per_arch(&|a| Some(cost::per_million(&m.usage, a) / floor)));
    }
    for (k, why) in &c.skipped {
        for map in [&mut costs, &mut floors, &mut ratios] {
            map.insert(k.clone(), Value::Null);
            map.insert(format!("{k}_why"), json!(why));
        }
    }
    let failed_attempt = per_arch(&|a| c.failed.get(&1024).map(|u| cost::per_million(u, a)));
    let fixed = per_arch(&|a| Some(cost::total(&cost::fixed_lines(&c.fixed, a))));
    let mut init = Map::new();
    for f in cold {
        init.insert(f.name.clone(), quantile(&f.init_ms(), 0.5).map_or(Value::Null, finite));
    }
    json!({
        "measured_at": measured_at,
        "run": run,
        "prices": cost::PRICES_AS_OF,
        "cost_usd_per_million": costs,
        "cost_usd_per_million_10pct_failing_once": failing,
        "floor_usd_per_million": floors,
        "cost_over_floor": ratios,
        "failed_attempt_usd_per_million": failed_attempt,
        "fixed_usd_per_month": fixed,
        "ceiling_deliveries_per_s": {
            "account": finite(c.account_ceiling(true)),
            "subscription": finite(c.subscription_ceiling(true)),
            "account_at_limit": finite(c.account_ceiling(false)),
            "subscription_at_limit": finite(c.subscription_ceiling(false)),
            "account_10pct_failing_once": c.account_ceiling_when_failing(0.1).map_or(Value::Null, |(_, _, v)| finite(v)),
            "note": "every key under half its limit (1,000 WCU/s, 3,000 RCU/s); null = no key bounds it"
        },
        "cpu_ms_per_delivery": perf.and_then(|p| p.cpu.ours_ms_per_delivery()).map_or(Value::Null, finite),
        "moto_cpu_ms_per_delivery": perf.and_then(|p| p.cpu.moto_ms_per_delivery()).map_or(Value::Null, finite),
        "local_latency_ms": {
            "p50": perf.and_then(|p| quantile(&p.latencies_ms, 0.5)).map_or(Value::Null, finite),
            "p99": perf.and_then(|p| quantile(&p.latencies_ms, 0.99)).map_or(Value::Null, finite),
        },
        "init_ms": init,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costrun::Scenario;
    use crate::ledger::Ledger;

    fn measured(key: &str, payload: usize, wru: f64) -> Measured {
        let usage =
            Usage { deliveries: 1.0, ledger: Ledger { table_wru: wru, ..Ledger::default() }, ..Usage::default() };
        Measured {
            scenario: Scenario { key: key.into(), payload, fanout: 1, batch: None, ingest: false, events: 1 },
            usage,
            event_ids: vec![],
            floor: crate::floor::FloorUse::of(1.0, 1.0, 1.0, false, payload as f64),
        }
    }

    fn figures() -> CostFigures {
        let mut failed = BTreeMap::new();
        failed.insert(
            1024,
            Usage { deliveries: 1.0, ledger: Ledger { table_wru: 2.0, ..Ledger::default() }, ..Usage::default() },
        );
        CostFigures {
            // 1 KiB: 4 WRU = $2.50/M (goal $3 met); 16 KiB: 10 WRU = $6.25 > 2 × $2.50 (not met).
            measured: vec![measured("1KiB_fanout1_single", 1024, 4.0), measured("16KiB_fanout1_single", 16384, 10.0)],
            skipped: vec![("1KiB_fanout1_batch100".into(), "n/a: route not built".into())],
            failed,
            fixed: Fixed::default(),
            partition: vec![
                (Scope::Account, KeyLimit::new("t: ACCT#{acct}".into(), 4.0, 1.0)),
                (Scope::Item, KeyLimit::new("t: EVT#{evt}".into(), 100.0, 0.0)),
            ],
            partition_scenario: "1KiB_fanout1_single".into(),
            config_cache_secs: 5.0,
            init_calls: BTreeMap::new(),
        }
    }

    #[test]
    fn cost_section_states_goals_gaps_and_skipped_scenarios() {
        let md = cost_md(&figures());
        // Floor of 1 → 1 at 1 KiB with no data out: API 1.00 + Lambda 0.20 + SQS 0.48 + 1.1 WRU
        // 0.6875 + storage ≈ 0.25: $2.62; the bill of 2.50 is 0.95 of it.
        assert!(md.contains("| `1KiB_fanout1_single` | 1 | $2.5000 | **$2.5000** | $2.6"), "{md}");
        assert!(md.contains(" | 0.95 | $2.6250 | $2.6250 |"), "{md}");
        assert!(md.contains("≤ 2× 1 KiB = $5.0000 | **not met**"), "{md}");
        assert!(md.contains("`1KiB_fanout1_batch100` | | n/a: route not built"));
        assert!(md.contains("Cause, from the bill of `16KiB_fanout1_single`: DynamoDB writes, table $6.2500"), "{md}");
        // The per-event key does not bound sustained traffic; the account key does: 250/s, half 125.
        assert!(md.contains("one account **125** (goal ≥ 10,000: **not met**)"), "{md}");
    }

    #[test]
    fn partition_section_shows_shards_and_the_samples_hottest_shard() {
        let mut c = figures();
        // 2.56 WRU per delivery over 64 shards: 0.04 on each, 25,000/s at the limit.
        c.partition =
            vec![(Scope::Account, KeyLimit::sharded("t: ACCT#{acct}#D{n}".into(), 0.04, 0.0, 64, (0.5, 0.25)))];
        let md = partition_md(&c);
        assert!(
            md.contains("| `t: ACCT#{acct}#D{n}` | Account | 64 | 0.040 | 0.000 | 0.50 / 0.25 | 25000 | 12500 |"),
            "{md}"
        );
        assert!(md.contains("one account **12500** (goal ≥ 10,000: met)"), "{md}");
        assert!(md.contains("divided by the shard count"), "{md}");
    }

    #[test]
    fn json_has_the_keys_of_issue_15() {
        let v = json(&figures(), None, &[], "2026-12-02T05:00:00Z", "quick");
        assert_eq!(v["cost_usd_per_million"]["1KiB_fanout1_single"]["arm64"], json!(2.5));
        assert_eq!(v["cost_usd_per_million"]["1KiB_fanout1_batch100"], Value::Null);
        assert_eq!(v["cost_usd_per_million_10pct_failing_once"]["1KiB_fanout1_single"]["x86_64"], json!(2.625));
        assert_eq!(v["ceiling_deliveries_per_s"]["account"], json!(125.0));
        assert_eq!(v["ceiling_deliveries_per_s"]["subscription"], json!(125.0));
        let floor = v["floor_usd_per_million"]["1KiB_fanout1_single"]["arm64"].as_f64().unwrap();
        let ratio = v["cost_over_floor"]["1KiB_fanout1_single"]["arm64"].as_f64().unwrap();
        assert!((floor - 2.62).abs() < 0.01 && (ratio - 2.5 / floor).abs() < 1e-3, "{floor} {ratio}");
        assert_eq!(v["floor_usd_per_million"]["1KiB_fanout1_batch100"], Value::Null);
        assert_eq!(v["failed_attempt_usd_per_million"]["arm64"], json!(1.25));
        for k in ["fixed_usd_per_month", "cpu_ms_per_delivery", "local_latency_ms", "init_ms", "measured_at"] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}
