//! Cold start, size and peak memory: every function binary started as a fresh process against a
//! loopback Lambda Runtime API ([`crate::runtime_api`]), its first invocation doing real work.
//! Measuring only; [`crate::report::cold_md`] writes the section.

use crate::runtime_api;
use crate::stack::{BenchStack, Tenant};
use crate::stats::{fmt_ms, ms, quantile};
use anyhow::{anyhow, Context as _, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// The sample event(s) a binary's runs get; dispatcher and dead-letter get a fresh real delivery
/// per run so the first invocation does its real work (read, sign, HTTPS POST / mark dead), and
/// ingest the sample batch for the tenant's account (publish).
async fn events_for(binary: &str, stack: &BenchStack, tenant: &Tenant, sub: &str) -> Result<Vec<Value>> {
    let root = puck_local::moto::repo_root();
    let event = match binary {
        "hello" => json!({ "hello": "world" }),
        "dispatcher" | "dead-letter" => {
            let delivery = fresh_delivery(stack, tenant, sub).await?;
            let body = json!({ "account_id": tenant.account.to_string(), "delivery_id": delivery }).to_string();
            json!({ "Records": [{
                "messageId": format!("bench-{delivery}"),
                "receiptHandle": "bench-receipt",
                "body": body,
                "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1777818121000" },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                "awsRegion": "us-east-1"
            }]})
        }
        "ingest" => {
            // The sample batch (one event, and a batch of two) for the tenant, so it publishes.
            let path = root.join("events/ingest.json");
            let mut e: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?)?;
            for record in e["Records"].as_array_mut().into_iter().flatten() {
                let mut body: Value = serde_json::from_str(record["body"].as_str().unwrap_or("{}"))?;
                body["account_id"] = json!(tenant.account.to_string());
                record["body"] = Value::String(body.to_string());
            }
            e
        }
        name => {
            let path = root.join("events").join(format!("{name}.json"));
            let mut e: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?)?;
            if let Some(auth) = e.pointer_mut("/headers/authorization") {
                *auth = Value::String(format!("Bearer {}", tenant.key));
            }
            e
        }
    };
    Ok(vec![event.clone(), event])
}

/// Inserts a pending delivery of a small event to `sub` (not enqueued) and returns its id.
pub async fn fresh_delivery(stack: &BenchStack, tenant: &Tenant, sub: &str) -> Result<String> {
    use puck_core::ids::{EventId, SubscriptionId};
    let sub_id = SubscriptionId::parse(sub).map_err(|e| anyhow!("{e:?}"))?;
    let sub =
        stack.ctx.subscriptions.get(&tenant.account, &sub_id).await?.ok_or_else(|| anyhow!("subscription gone"))?;
    let now = stack.ctx.clock.now();
    let envelope = puck_core::envelope::Envelope::new(EventId::generate(), "finding.discovered", now, sample_data());
    let expires_at = stack.ctx.settings.expires_at(now);
    let delivery = puck_core::services::events::pending_delivery(&sub, &envelope, None, now, expires_at);
    stack.ctx.deliveries.insert_deliveries(std::slice::from_ref(&delivery)).await?;
    Ok(delivery.id.to_string())
}

/// The `data` of every benchmark event: the sample finding of events/events-publish.json.
pub fn sample_data() -> Value {
    json!({ "finding_id": "fnd_123", "title": "Exposed admin panel", "severity": "high" })
}

#[derive(Debug, Default)]
pub struct BinaryFigures {
    pub name: String,
    pub runs: Vec<runtime_api::RunResult>,
    pub failures: Vec<String>,
    pub size: Option<u64>,
    pub zip: Option<u64>,
}

impl BinaryFigures {
    pub fn init_ms(&self) -> Vec<f64> {
        ms(self.runs.iter().map(|r| r.init))
    }
    pub fn q(&self, f: impl Fn(&runtime_api::RunResult) -> Option<Duration>, q: f64) -> Option<f64> {
        quantile(&ms(self.runs.iter().filter_map(f)), q)
    }
    pub fn hwm(&self) -> Option<u64> {
        self.runs.iter().filter_map(|r| r.vm_hwm_kib).max()
    }
}

/// Size of `bootstrap` zipped with the system `zip` (as `sam build`/cargo-lambda package it).
fn zip_size(binary: &Path, workdir: &Path) -> Option<u64> {
    let dir = workdir.join("zip");
    std::fs::create_dir_all(&dir).ok()?;
    let bootstrap = dir.join("bootstrap");
    let archive = dir.join("bootstrap.zip");
    std::fs::copy(binary, &bootstrap).ok()?;
    let _ = std::fs::remove_file(&archive);
    let ok =
        std::process::Command::new("zip").arg("-q").arg("-j").arg(&archive).arg(&bootstrap).status().ok()?.success();
    let size = if ok { std::fs::metadata(&archive).ok().map(|m| m.len()) } else { None };
    let _ = std::fs::remove_file(&bootstrap);
    size
}

/// Starts every binary `runs` times (see [`crate::report::cold_md`] for what is measured).
pub async fn measure(stack: &BenchStack, bin_dir: &Path, runs: usize, moto: &str) -> Result<Vec<BinaryFigures>> {
    let tenant = stack.tenant().await?;
    let sub = stack.subscribe(&tenant, 1).await?.remove(0);
    let mut binaries: Vec<String> = vec!["hello".into()];
    let mut routes: Vec<String> = puck_api::ROUTES.iter().map(|r| r.binary.to_owned()).collect();
    routes.dedup();
    binaries.extend(routes);
    binaries.extend(["dispatcher", "dead-letter", "ingest", "sweeper"].map(str::to_owned));
    let workdir = puck_local::moto::repo_root().join("target/bench");

    let mut all = Vec::new();
    for name in &binaries {
        let path = bin_dir.join(name);
        let mut fig = BinaryFigures { name: name.clone(), ..BinaryFigures::default() };
        if !path.is_file() {
            fig.failures.push(format!("{} not built", path.display()));
            all.push(fig);
            continue;
        }
        fig.size = std::fs::metadata(&path).ok().map(|m| m.len());
        fig.zip = zip_size(&path, &workdir);
        for _ in 0..runs {
            let events = events_for(name, stack, &tenant, &sub).await?;
            match runtime_api::run_once(&path, &stack.env, &events, moto).await {
                Ok(r) => fig.runs.push(r),
                Err(e) => fig.failures.push(format!("{e:#}")),
            }
        }
        println!(
            "cold start {name:22} init p50 {:>6} ms p90 {:>6} ms  first response p50 {:>6} ms  peak RSS {:>6} KiB  size {}  ({} ok, {} failed)",
            fmt_ms(quantile(&fig.init_ms(), 0.5)),
            fmt_ms(quantile(&fig.init_ms(), 0.9)),
            fmt_ms(fig.q(|r| r.first_response, 0.5)),
            fig.hwm().map_or("n/a".into(), |k| k.to_string()),
            fig.size.unwrap_or(0),
            fig.runs.len(),
            fig.failures.len()
        );
        all.push(fig);
    }
    stack.functions.take();
    Ok(all)
}
