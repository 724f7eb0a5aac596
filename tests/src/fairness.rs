//! The fairness measurement (docs/flow-control.md), shared by the
//! short e2e test and the long run of `infra/scripts/load.sh --fairness`.
//!
//! Account B has one healthy subscription receiving an event a second; its publish → receipt
//! latencies are measured first on an idle stack, then while account A's subscriptions to a slow
//! receiver work through a backlog, in the same run. Then every delivery of A must succeed, each
//! with one attempt (waiting on the in-flight cap is not an attempt).

use crate::{ApiClient, Receiver, Reply, Script};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The scenario's sizes.
#[derive(Debug, Clone)]
pub struct FairnessOptions {
    /// How long A's receiver takes to answer.
    pub slow_delay: Duration,
    /// A's subscriptions to the slow receiver.
    pub a_subscriptions: usize,
    /// Events A publishes at once (each makes one delivery per subscription).
    pub a_events: usize,
    /// Seconds (= events) B publishes on the idle stack.
    pub idle_secs: u64,
    /// Seconds (= events) B publishes beside A's backlog.
    pub busy_secs: u64,
    /// How long to wait for A's whole backlog to succeed.
    pub drain_timeout: Duration,
}

/// What the run measured.
#[derive(Debug, Clone)]
pub struct FairnessReport {
    /// B's publish → receipt p99 on the idle stack, seconds.
    pub idle_p99: f64,
    /// B's publish → receipt p99 beside A's backlog, seconds.
    pub busy_p99: f64,
    /// A's deliveries `succeeded`, of `a_deliveries`.
    pub a_succeeded: usize,
    /// A's deliveries.
    pub a_deliveries: usize,
    /// A's deliveries with an `attempt_count` other than 1.
    pub a_retried: usize,
    /// Whether A's receiver was busy from before B's fourth busy publish until after its tenth.
    pub a_overlapped_b: bool,
    /// From A's publish to its last delivery, seconds.
    pub a_drain_secs: f64,
}

impl FairnessReport {
    /// One line per figure.
    pub fn summary(&self) -> String {
        format!(
            "B p99 idle               {:.3} s\nB p99 beside A's backlog {:.3} s ({:.2}x)\nA succeeded              {} of {} ({} with more than one attempt), drained in {:.1} s",
            self.idle_p99,
            self.busy_p99,
            self.busy_p99 / self.idle_p99.max(1e-9),
            self.a_succeeded,
            self.a_deliveries,
            self.a_retried,
            self.a_drain_secs
        )
    }
}

/// The 99th percentile (nearest rank) of `xs`, seconds.
pub fn p99(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() as f64 * 0.99).ceil() as usize).clamp(1, xs.len()) - 1]
}

/// Publishes one event a second to `api` for `secs` seconds, numbered from `from`.
async fn one_a_second(api: &ApiClient, from: u64, secs: u64) -> Vec<(u64, Instant)> {
    let mut sent = Vec::new();
    for n in from..from + secs {
        let at = Instant::now();
        // Retried (same event_id) if a loaded machine cuts the handler off; timed from the first try.
        let event = json!({"event_type": "chain.confirmed", "event_id": format!("b-{n}"), "data": {"n": n}});
        for tries in 1.. {
            let (status, body, _) = api.post("/v1/events", event.clone()).await;
            if status == 202 {
                break;
            }
            assert!(tries < 5 && status >= 500, "{status} {body}");
        }
        sent.push((n, at));
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(at.elapsed())).await;
    }
    sent
}

/// Seconds from each publish in `sent` to its receipt.
fn latencies(receiver: &Receiver, sent: &[(u64, Instant)]) -> Vec<f64> {
    receiver
        .requests()
        .iter()
        .filter_map(|r| {
            let n = r.json()["data"]["n"].as_u64()?;
            let (_, at) = sent.iter().find(|(m, _)| *m == n)?;
            Some(r.received_at.duration_since(*at).as_secs_f64())
        })
        .collect()
}

/// Every delivery of the account, through the API.
async fn deliveries(api: &ApiClient) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page, _) = api.get(&format!("/v1/webhooks/deliveries?limit=100{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["deliveries"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// Runs the scenario with account A's and account B's clients (both empty accounts).
pub async fn run(a: &ApiClient, b: &ApiClient, opts: &FairnessOptions, log: &dyn Fn(&str)) -> FairnessReport {
    let healthy = Receiver::start().await;
    let (status, _, _) =
        b.post("/v1/webhooks/subscriptions", json!({"url": healthy.url(), "events": ["chain.confirmed"]})).await;
    assert_eq!(status, 201);
    log(&format!("B idle: {} events, one a second", opts.idle_secs));
    let idle_sent = one_a_second(b, 0, opts.idle_secs).await;
    healthy.wait_for(opts.idle_secs as usize, crate::EVENTUALLY).await;
    let idle_p99 = p99(latencies(&healthy, &idle_sent));

    let slow = Receiver::start_with(Script::always(Reply::ok().delay(opts.slow_delay))).await;
    for _ in 0..opts.a_subscriptions {
        let (status, _, _) =
            a.post("/v1/webhooks/subscriptions", json!({"url": slow.url(), "events": ["finding.*"]})).await;
        assert_eq!(status, 201);
    }
    let a_started = Instant::now();
    // Batches of 20 with event ids, so a publish cut off on a loaded machine is simply retried.
    for chunk in (0..opts.a_events).collect::<Vec<_>>().chunks(20) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"event_type": "finding.discovered", "event_id": format!("a-{i}"), "data": {"i": i}}))
            .collect();
        let mut tries = 0;
        loop {
            let (status, body, _) = a.post("/v1/events/batch", json!({ "events": events })).await;
            tries += 1;
            if status == 202 {
                break;
            }
            assert!(tries < 5 && status >= 500, "{status} {body}");
        }
    }
    let a_deliveries = opts.a_events * opts.a_subscriptions;
    log(&format!(
        "A: backlog of {a_deliveries} deliveries to a receiver answering after {:?}; B busy: {} events",
        opts.slow_delay, opts.busy_secs
    ));
    let busy_sent = one_a_second(b, 1_000_000, opts.busy_secs).await;
    healthy.wait_for((opts.idle_secs + opts.busy_secs) as usize, crate::EVENTUALLY).await;
    let busy_p99 = p99(latencies(&healthy, &busy_sent));

    let deadline = Instant::now() + opts.drain_timeout;
    let mut a_log = deliveries(a).await;
    while a_log.iter().any(|d| d["status"] != "succeeded") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        a_log = deliveries(a).await;
    }
    let times: Vec<Instant> = slow.requests().iter().map(|r| r.received_at).collect();
    let a_drain_secs = times.iter().max().map_or(0.0, |t| t.duration_since(a_started).as_secs_f64());
    let (first, last) = (times.iter().min().copied(), times.iter().max().copied());
    let a_overlapped_b =
        busy_sent.len() > 10 && first.is_some_and(|f| f < busy_sent[3].1) && last.is_some_and(|l| l > busy_sent[10].1);
    FairnessReport {
        idle_p99,
        busy_p99,
        a_succeeded: a_log.iter().filter(|d| d["status"] == "succeeded").count(),
        a_deliveries,
        a_retried: a_log.iter().filter(|d| d["attempt_count"] != 1).count(),
        a_overlapped_b,
        a_drain_secs,
    }
}
