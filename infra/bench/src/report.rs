//! Writing the report: BENCHMARKS.md sections and BENCHMARKS.json from what the measuring
//! modules ([`crate::cold_starts`], [`crate::cost_scenarios`], [`crate::throughput`], [`crate::signing`])
//! returned. No measuring here, so every section can be tested on hand-made figures.

use crate::cold_starts::BinaryFigures;
use crate::cost::{self, Arch, Fixed, KeyLimit, Scope, Usage};
use crate::cost_scenarios::Measured;
use crate::floor::floor_per_million;
use crate::signing;
use crate::stats::{fmt_bytes, fmt_ms, ms, quantile, usd};
use crate::throughput::{PerfFigures, POLLERS, PUBLISH_CONCURRENCY};
use puck_core::services::dispatch::LAST_DELIVERY_REFRESH_SECS;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

mod failing;
mod mechanisms;
mod performance;
pub use performance::{cold_md, perf_md, signing_md};

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
    let per_container: Vec<String> = c
        .measured
        .iter()
        .filter(|m| m.usage.ledger.per_container != (0.0, 0.0))
        .map(|m| {
            let (w, r) = m.usage.ledger.per_container;
            format!("`{}` {w} WRU, {r} RRU", m.scenario.key)
        })
        .collect();
    if !per_container.is_empty() {
        let _ = writeln!(
            md,
            "Left out of the per-delivery bill: the samples' writes of subscription state, reads of cached \
             configuration and in-flight slot leases of a receiver not yet known fast ({}). Each warm \
             container pays them once per subscription per period (`LAST_DELIVERY_REFRESH_SECS`, \
             `CONFIG_CACHE_SECONDS`, the in-flight cap's `MEMORY_SECS`) whatever the delivery rate: at 1,000 \
             deliveries/s, 10 containers and 10 subscriptions they are about $0.002 per million deliveries. \
             The partition model below keeps them on their keys.\n",
            per_container.join("; ")
        );
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
    md.push_str(&mechanisms::mechanisms_md());
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
         Writes of a subscription's state (its last delivery, its failing clock; on its own key `SUBSTATE#…`) are made by \
         the dispatcher when the outcome changes, at most once a second per container, and otherwise once per container \
         every {} s, whatever the delivery rate: the column \"state WRU\" shows the sample's, not counted per delivery, \
         and the next column how many containers may each write it once per period with the key under half its 1,000 \
         WCU/s. Changes of outcome are the failure case below.\n",
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
    if let Some(failing) = c.failing_md() {
        md.push_str(&failing);
        md.push('\n');
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
            "account_10pct_failing_once": c.account_ceiling_when_failing(0.1).map_or(Value::Null, finite),
            "subscription_10pct_failing_once": c.subscription_ceiling_when_failing(0.1).map_or(Value::Null, finite),
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
mod tests;
