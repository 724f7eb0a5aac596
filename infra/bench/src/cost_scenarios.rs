//! Measuring the all-in bill: runs each cost scenario through the real handlers (publish behind
//! the in-process API gateway, the dispatcher behind an event-source-mapping loop), records every
//! SDK call, the handlers' log bytes and durations, and turns them into [`cost::Usage`] with the
//! [`Replay`] ledger. Also the idle sweeper run (fixed monthly cost). Measuring only;
//! [`crate::report`] writes the sections.

use crate::call_log::Call;
use crate::cost::{self, LambdaUse, Usage};
use crate::floor::FloorUse;
use crate::ledger::{stored_bytes, Item, Replay, Schema};
use crate::stack::{BenchStack, Tenant};
use anyhow::{anyhow, Result};
use puck_local::template::Template;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes the functions' tracing wrote (the JSON lines Lambda ships to CloudWatch Logs).
pub static LOG_BYTES: AtomicU64 = AtomicU64::new(0);

/// An `io::Write` that only counts.
pub struct CountingWriter;

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG_BYTES.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the subscriber the Lambdas use in AWS (`puck_aws::telemetry`: JSON lines, `info`),
/// writing into [`CountingWriter`], so log volume is measured from the handlers' own events.
pub fn count_logs() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(|| CountingWriter)
        .try_init();
}

/// Bytes of an event's body besides `data` (type, id, severity, JSON punctuation), kept out of
/// the payload so the whole event is the scenario's size.
pub const EVENT_FIELDS_BYTES: usize = 160;

/// One cost scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The key in BENCHMARKS.json, e.g. `1KiB_fanout10_single`.
    pub key: String,
    pub payload: usize,
    pub fanout: usize,
    /// Events per publish request (None: single publish).
    pub batch: Option<usize>,
    /// Published through the ingest queue (one event per SQS message) instead of the HTTP API.
    pub ingest: bool,
    /// Events published.
    pub events: usize,
}

/// The scenario grid: payload 1/16/128 KiB × fan-out 1/10/100, single publish, batch
/// publish of 100 at 1 KiB (1 and 10 subscriptions), and 1 KiB 1 → 1 through the ingest queue. `quick` publishes fewer events per scenario.
pub fn grid(quick: bool) -> Vec<Scenario> {
    let mut out = Vec::new();
    for kib in [1usize, 16, 128] {
        for fanout in [1usize, 10, 100] {
            let events = match (fanout, quick) {
                (1, false) => 20,
                (1, true) => 5,
                (10, false) => 3,
                _ => 1,
            };
            out.push(Scenario {
                key: format!("{kib}KiB_fanout{fanout}_single"),
                payload: kib * 1024,
                fanout,
                batch: None,
                ingest: false,
                events,
            });
        }
    }
    for fanout in [1usize, 10] {
        out.push(Scenario {
            key: format!("1KiB_fanout{fanout}_batch100"),
            payload: 1024,
            fanout,
            batch: Some(100),
            ingest: false,
            events: 100,
        });
    }
    out.push(Scenario {
        key: "1KiB_fanout1_ingest".to_owned(),
        payload: 1024,
        fanout: 1,
        batch: None,
        ingest: true,
        events: if quick { 10 } else { 20 },
    });
    out
}

/// An event `data` object whose JSON is exactly `bytes` long: finding records with varied
/// values (so compression by a storage layout sees realistic JSON, not a run of one letter).
pub fn payload(bytes: usize, seed: u64) -> Value {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut findings = Vec::new();
    let size = |f: &Vec<Value>, note: &str| json!({ "findings": f, "note": note }).to_string().len();
    loop {
        let r = next();
        const TITLES: [&str; 4] = ["Exposed admin panel", "Outdated TLS", "Open S3 bucket", "SQL injection"];
        const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
        let (title, severity) = (TITLES[(r % 4) as usize], SEVERITIES[((r >> 3) % 4) as usize]);
        let f = json!({
            "id": format!("fnd_{r:08x}"),
            "host": format!("10.{}.{}.{}", r % 256, (r >> 8) % 256, (r >> 16) % 256),
            "port": 1 + r % 65535,
            "title": title,
            "severity": severity,
            "evidence": format!("{:016x}{:016x}", next(), next()),
        });
        findings.push(f);
        if size(&findings, "") > bytes {
            findings.pop();
            break;
        }
    }
    let mut note = String::new();
    while size(&findings, &note) < bytes {
        note.push(char::from(b'a' + (next() % 26) as u8));
    }
    json!({ "findings": findings, "note": note })
}

/// What the template says the model needs: table layout, memory per function, retention, the
/// batch route, fixed resources.
pub struct Layout {
    pub schema: Schema,
    /// MemorySize per binary (Globals default when the function sets none).
    pub memory_mb: BTreeMap<String, f64>,
    pub default_memory_mb: f64,
    pub retention_days: f64,
    /// Lambda's own log bytes per invocation at the functions' `SystemLogLevel`.
    pub platform_log_bytes_per_invocation: f64,
    /// The HTTP API's access-log format, when it has an access log.
    pub access_log_format: Option<String>,
    /// The log groups' retention (days).
    pub log_retention_days: f64,
    /// The batch publish route's path and binary, when the template has it.
    pub batch_route: Option<(String, String)>,
    pub esm_queues: usize,
    pub secrets: usize,
    pub alarms: usize,
    pub dashboards: usize,
    pub schedule_period_s: Option<u64>,
    /// The table has point-in-time recovery / is encrypted with KMS.
    pub pitr: bool,
    pub dynamo_kms: bool,
}

impl Layout {
    pub fn from_template(t: &Template) -> Result<Self> {
        let schema = Schema::from_template(&t.doc)
            .ok_or_else(|| anyhow!("template.yaml has no DynamoDB table with a key schema"))?;
        let default_memory_mb = t.doc.pointer("/Globals/Function/MemorySize").and_then(Value::as_f64).unwrap_or(128.0);
        let mut memory_mb = BTreeMap::new();
        for (_, binary, resource) in t.functions()? {
            let m = resource.pointer("/Properties/MemorySize").and_then(Value::as_f64).unwrap_or(default_memory_mb);
            memory_mb.insert(binary, m);
        }
        let retention_days = t
            .doc
            .pointer("/Globals/Function/Environment/Variables/RETENTION_DAYS")
            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_f64()))
            .unwrap_or(30.0);
        let batch_route = t
            .routes()?
            .into_iter()
            .find(|r| r.path == "/v1/events/batch" || r.binary == "events-publish-batch")
            .map(|r| (r.path, r.binary));
        let count = |ty: &str| t.resources_of_type(ty).count();
        let resolve = |v: &Value| t.value_with_defaults(v);
        let system_log_level = t.doc.pointer("/Globals/Function/LoggingConfig/SystemLogLevel").and_then(resolve);
        let access_log_format = t
            .resources_of_type("AWS::Serverless::HttpApi")
            .find_map(|(_, api)| api.pointer("/Properties/AccessLogSettings/Format").and_then(resolve));
        let log_retention_days = t
            .resources_of_type("AWS::Logs::LogGroup")
            .find_map(|(_, group)| group.pointer("/Properties/RetentionInDays").and_then(resolve))
            .and_then(|days| days.parse().ok())
            .ok_or_else(|| anyhow!("template.yaml has no log group with a retention"))?;
        Ok(Self {
            schema,
            memory_mb,
            default_memory_mb,
            retention_days,
            platform_log_bytes_per_invocation: cost::platform_log_bytes(system_log_level.as_deref()),
            access_log_format,
            log_retention_days,
            batch_route,
            esm_queues: t.sqs_consumers()?.len(),
            secrets: count("AWS::SecretsManager::Secret"),
            alarms: count("AWS::CloudWatch::Alarm"),
            dashboards: count("AWS::CloudWatch::Dashboard"),
            schedule_period_s: t.schedules()?.iter().filter_map(|s| s.period_secs).min(),
            pitr: table_flag(t, "/Properties/PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled"),
            dynamo_kms: table_flag(t, "/Properties/SSESpecification/SSEEnabled"),
        })
    }

    /// A usage with what the template decides for every scenario: retention and log settings.
    fn usage(&self) -> Usage {
        Usage {
            pitr: self.pitr,
            retention_days: self.retention_days,
            platform_log_bytes_per_invocation: self.platform_log_bytes_per_invocation,
            log_retention_days: self.log_retention_days,
            ..Usage::default()
        }
    }

    /// The access-log bytes of one API request.
    fn access_log_bytes(&self, route_key: &str, status: u16, response_len: usize) -> f64 {
        self.access_log_format
            .as_deref()
            .map_or(0.0, |f| cost::access_log_line_bytes(f, route_key, status, response_len) as f64)
    }

    fn lambda(&self, binary: &str, invocations: f64, billed_ms: f64) -> LambdaUse {
        LambdaUse {
            invocations,
            billed_ms,
            memory_mb: self.memory_mb.get(binary).copied().unwrap_or(self.default_memory_mb),
        }
    }
}

/// Whether the template's DynamoDB table sets the boolean at `pointer` (under the resource).
fn table_flag(t: &Template, pointer: &str) -> bool {
    t.resources_of_type("AWS::DynamoDB::Table").any(|(_, table)| table.pointer(pointer) == Some(&Value::Bool(true)))
}

/// A scenario as measured.
pub struct Measured {
    pub scenario: Scenario,
    pub usage: Usage,
    /// Event ids published (to recognise per-event keys in the partition model).
    pub event_ids: Vec<String>,
    /// What the scenario's floor counts.
    pub floor: FloorUse,
}

/// Bytes of a single publish's answer, `{"event_id":"…","deliveries":N}`.
const PUBLISH_RESPONSE_BYTES: usize = 60;

/// Bytes on the wire of one delivery request beyond its body: request line, Host, the signed
/// headers (`X-Puck-*`, Standard Webhooks), content-length; measured once from the real signer.
fn delivery_header_bytes(body: &str) -> usize {
    use puck_core::ids::{AttemptId, EventId};
    use puck_core::secret::SigningSecret;
    use puck_core::signing::{delivery_headers, AttemptToSign};
    use puck_core::signing_key::SigningKey;
    let secret = SigningKey::Hmac(SigningSecret::generate());
    let event_id = EventId::parse("0193f3c2-7a1b-7c3d-9e4f-0123456789ab").expect("valid id");
    let attempt_id = AttemptId::generate(1_777_000_000_000);
    let secrets = [&secret];
    let headers = delivery_headers(&AttemptToSign {
        event_id: &event_id,
        event_type: "finding.discovered",
        attempt_id: &attempt_id,
        timestamp: 1_777_000_000,
        body,
        secrets: &secrets,
    });
    // "POST /hooks/… HTTP/1.1\r\nhost: receiver.example.com\r\ncontent-length: N\r\n\r\n"
    let fixed = 80;
    fixed + headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>()
}

fn billed_ms(durations: &[Duration]) -> f64 {
    durations.iter().map(|d| (d.as_secs_f64() * 1000.0).ceil().max(1.0)).sum()
}

async fn dispatch_until(stack: &BenchStack, expected: u64, max_polls: usize) -> Result<()> {
    for _ in 0..max_polls {
        if stack.receiver.count() >= expected {
            return Ok(());
        }
        // A job told to wait (a slot of the in-flight cap taken by a concurrent attempt) comes
        // back within seconds: wait for it rather than hand it to the sweeper.
        if stack.poll_once(0).await? == 0 {
            stack.poll_once(1).await?;
        }
    }
    if stack.receiver.count() >= expected {
        return Ok(());
    }
    // A publish answered after a retry (its first try timed out after the durable point, before
    // the queue) leaves deliveries only the sweeper sends, as in AWS: one run, then poll again.
    let deadline = stack.ctx.clock.now().plus_seconds(50);
    puck_core::services::sweeper::sweep(&stack.ctx, 0, deadline).await.map_err(|e| anyhow!("sweep: {e:?}"))?;
    for _ in 0..max_polls {
        if stack.receiver.count() >= expected {
            return Ok(());
        }
        stack.poll_once(0).await?;
    }
    Err(anyhow!("receiver saw {} of {expected} deliveries", stack.receiver.count()))
}

/// The calls and dispatcher durations since the last take.
pub fn take_phase(stack: &BenchStack) -> (Vec<Call>, Vec<Duration>) {
    let mut calls = stack.functions.take();
    calls.extend(stack.esm.take());
    let durations = std::mem::take(&mut *stack.handler_durations.lock().expect("durations lock"));
    (calls, durations)
}

fn event_body(id: &str, data: &Value) -> Value {
    json!({ "event_type": "finding.discovered", "event_id": id, "severity": "high", "data": data })
}

/// Runs one scenario on a fresh tenant and measures its usage.
pub async fn run(stack: &BenchStack, layout: &Layout, s: &Scenario) -> Result<Measured> {
    drain(stack).await?;
    let tenant = stack.tenant().await?;
    stack.subscribe(&tenant, s.fanout).await?;
    let before: Vec<Item> = stack.scan_items().await?;
    take_phase(stack);
    let received_before = stack.receiver.count();
    let logs_before = LOG_BYTES.load(Ordering::Relaxed);
    let tag = format!("{}-{}", s.key.replace('_', "."), rand_tag());
    let ids: Vec<String> = (0..s.events).map(|i| format!("evt-{tag}-{i}")).collect();
    // The event's JSON body is the scenario's size: its `data` leaves room for the other fields
    // (the API accepts events up to 128 KiB).
    let data = payload(s.payload - EVENT_FIELDS_BYTES, 7);
    let mut publish_ms = Vec::new();
    let mut api_requests = 0.0;
    let mut api_out_bytes = 0usize;
    let mut access_log_bytes = 0.0;
    let mut created = 0u64;
    let publish_binary;
    match s.batch {
        None if s.ingest => {
            publish_binary = "ingest".to_owned();
            publish_ms = ingest_all(stack, &tenant, &ids, &data).await?;
            created = (s.events * s.fanout) as u64;
        }
        None => {
            publish_binary = "events-publish".to_owned();
            for id in &ids {
                let body = event_body(id, &data).to_string();
                let t = Instant::now();
                created += stack.publish(&tenant, id, &data).await?;
                publish_ms.push(t.elapsed());
                api_requests += body.len().div_ceil(cost::APIGW_METER_BYTES).max(1) as f64;
                api_out_bytes += PUBLISH_RESPONSE_BYTES;
                access_log_bytes += layout.access_log_bytes("POST /v1/events", 202, PUBLISH_RESPONSE_BYTES);
            }
        }
        Some(n) => {
            let (path, binary) = layout.batch_route.clone().ok_or_else(|| anyhow!("no batch route"))?;
            publish_binary = binary;
            for chunk in ids.chunks(n) {
                let body = json!({ "events": chunk.iter().map(|id| event_body(id, &data)).collect::<Vec<_>>() });
                let len = body.to_string().len();
                let t = Instant::now();
                let resp = api_retrying_5xx(stack, &path, &tenant.key, body).await?;
                publish_ms.push(t.elapsed());
                let results = resp["results"].as_array().ok_or_else(|| anyhow!("batch publish answered {resp}"))?;
                created += results.iter().filter_map(|r| r["deliveries"].as_u64()).sum::<u64>();
                api_requests += len.div_ceil(cost::APIGW_METER_BYTES).max(1) as f64;
                let resp_len = resp.to_string().len();
                api_out_bytes += resp_len;
                access_log_bytes += layout.access_log_bytes(&format!("POST {path}"), 202, resp_len);
            }
        }
    }
    let expected = (s.events * s.fanout) as u64;
    if created != expected {
        return Err(anyhow!("{}: publish created {created} deliveries, expected {expected}", s.key));
    }
    let (publish_calls, _) = take_phase(stack);
    dispatch_until(stack, received_before + expected, 50 + expected as usize).await?;
    let (dispatch_calls, durations) = take_phase(stack);
    let log_bytes = LOG_BYTES.load(Ordering::Relaxed) - logs_before;
    let after: Vec<Item> = stack.scan_items().await?;
    let all: Vec<Call> = publish_calls.iter().chain(dispatch_calls.iter()).cloned().collect();
    let ledger = Replay::new(&layout.schema, &stack.table, &before, &after).run(&all).billed_per_delivery();
    let envelope = puck_core::envelope::Envelope::new(
        puck_core::ids::EventId::parse(&ids[0]).map_err(|e| anyhow!("{e:?}"))?,
        "finding.discovered",
        stack.ctx.clock.now(),
        data.clone(),
    )
    .to_json();
    let per_delivery_out = envelope.len() + delivery_header_bytes(&envelope);
    let mut lambda = BTreeMap::new();
    lambda.insert(
        publish_binary.clone(),
        layout.lambda(&publish_binary, publish_ms.len() as f64, billed_ms(&publish_ms)),
    );
    lambda.insert("dispatcher".to_owned(), layout.lambda("dispatcher", durations.len() as f64, billed_ms(&durations)));
    let usage = Usage {
        deliveries: expected as f64,
        api_requests,
        lambda,
        stored_bytes: stored_bytes(&layout.schema, &before, &after) as f64,
        ledger,
        log_bytes: log_bytes as f64,
        access_log_bytes,
        data_out_bytes: (per_delivery_out as u64 * expected) as f64 + api_out_bytes as f64,
        ..layout.usage()
    };
    let per_request = s.batch.unwrap_or(1) as f64;
    let mut floor = FloorUse::of(s.events as f64, s.fanout as f64, per_request, s.ingest, s.payload as f64);
    floor.data_out_bytes = usage.data_out_bytes;
    floor.retention_days = usage.retention_days;
    Ok(Measured { scenario: s.clone(), usage, event_ids: ids, floor })
}

/// One batch publish; a 5xx (the local gateway answers 500 when a handler passes its template
/// timeout, which a debug build on a loaded machine can) is sent again up to 3 times, as
/// [`BenchStack::publish`] does: publishing is idempotent per `event_id`. Counted in
/// `publish_retries`.
async fn api_retrying_5xx(stack: &BenchStack, path: &str, key: &str, body: Value) -> Result<Value> {
    let mut attempt = 0;
    loop {
        match stack.api("POST", path, key, Some(body.clone())).await {
            Err(e) if attempt < 3 && e.to_string().contains("answered 5") => {
                attempt += 1;
                stack.publish_retries.fetch_add(1, Ordering::SeqCst);
            }
            other => return other,
        }
    }
}

/// Sends one ingest message per event (as a producer in AWS does) and runs the ingest
/// function's event source mapping until every message was taken; returns its invocations'
/// durations. The messages are not checked here: the scenario counts the deliveries made.
async fn ingest_all(stack: &BenchStack, tenant: &Tenant, ids: &[String], data: &Value) -> Result<Vec<Duration>> {
    for id in ids {
        let mut body = event_body(id, data);
        body["account_id"] = json!(tenant.account.as_str());
        stack.send_ingest(&body).await?;
    }
    let mut taken = 0;
    for _ in 0..(50 + ids.len()) {
        if taken >= ids.len() {
            break;
        }
        taken += stack.poll_ingest_once().await?;
    }
    if taken < ids.len() {
        return Err(anyhow!("the ingest function took {taken} of {} messages", ids.len()));
    }
    Ok(std::mem::take(&mut *stack.ingest_durations.lock().expect("durations lock")))
}

/// One failed attempt (the receiver answers 500) of a 1 → 1 delivery of `payload` bytes: what a
/// delivery that fails once adds to its successful attempt. The subscription is deleted after,
/// so the message does not come back in the middle of later scenarios.
pub async fn failed_attempt(stack: &BenchStack, layout: &Layout, payload_bytes: usize) -> Result<Usage> {
    drain(stack).await?;
    let tenant: Tenant = stack.tenant().await?;
    let sub = stack.subscribe(&tenant, 1).await?.remove(0);
    stack.receiver.state.fail.store(true, Ordering::SeqCst);
    let before_count = stack.receiver.count();
    let result = async {
        stack
            .publish(
                &tenant,
                &format!("evt-fail-{}-{}", payload_bytes, rand_tag()),
                &payload(payload_bytes - EVENT_FIELDS_BYTES, 9),
            )
            .await?;
        take_phase(stack);
        let before: Vec<Item> = stack.scan_items().await?;
        let logs_before = LOG_BYTES.load(Ordering::Relaxed);
        dispatch_until(stack, before_count + 1, 50).await?;
        let (calls, durations) = take_phase(stack);
        let log_bytes = LOG_BYTES.load(Ordering::Relaxed) - logs_before;
        let after: Vec<Item> = stack.scan_items().await?;
        let ledger = Replay::new(&layout.schema, &stack.table, &before, &after).run(&calls);
        let mut lambda = BTreeMap::new();
        lambda.insert(
            "dispatcher".to_owned(),
            layout.lambda("dispatcher", durations.len() as f64, billed_ms(&durations)),
        );
        let envelope_bytes = payload_bytes + 200;
        Ok::<Usage, anyhow::Error>(Usage {
            deliveries: 1.0,
            lambda,
            ledger,
            log_bytes: log_bytes as f64,
            data_out_bytes: (envelope_bytes + delivery_header_bytes("{}")) as f64,
            stored_bytes: stored_bytes(&layout.schema, &before, &after) as f64,
            ..layout.usage()
        })
    }
    .await;
    stack.receiver.state.fail.store(false, Ordering::SeqCst);
    stack.api("DELETE", &format!("/v1/webhooks/subscriptions/{sub}"), &tenant.key, None).await?;
    take_phase(stack);
    result
}

/// Handles what earlier phases left on the queues (the throughput run's last jobs, an ingest
/// message, a job that waited), so the next phase bills only its own work; what it handles here
/// is billed to nothing.
async fn drain(stack: &BenchStack) -> Result<()> {
    // Deliveries an earlier phase left in flight (its pollers stopped between a send and its
    // record) are the sweeper's: sweep them now, or a scenario's own sweep would send them.
    let deadline = stack.ctx.clock.now().plus_seconds(50);
    puck_core::services::sweeper::sweep(&stack.ctx, 0, deadline).await.map_err(|e| anyhow!("sweep: {e:?}"))?;
    for _ in 0..200 {
        let ingested = if stack.has_ingest() { stack.poll_ingest_once().await? } else { 0 };
        if stack.poll_once(0).await? + ingested == 0 {
            break;
        }
    }
    take_phase(stack);
    Ok(())
}

/// One sweeper run with nothing overdue (the scheduled cost at zero traffic).
pub async fn idle_sweep(stack: &BenchStack, layout: &Layout) -> Result<Usage> {
    let before: Vec<Item> = stack.scan_items().await?;
    take_phase(stack);
    let logs_before = LOG_BYTES.load(Ordering::Relaxed);
    let grace = stack.env.get("SWEEP_GRACE_SECONDS").and_then(|g| g.parse().ok()).unwrap_or(300);
    let t = Instant::now();
    let deadline = stack.ctx.clock.now().plus_seconds(60);
    puck_core::services::sweeper::sweep(&stack.ctx, grace, deadline).await.map_err(|e| anyhow!("sweep: {e:?}"))?;
    let elapsed = t.elapsed();
    let (calls, _) = take_phase(stack);
    let ledger = Replay::new(&layout.schema, &stack.table, &before, &before).run(&calls);
    let mut lambda = BTreeMap::new();
    lambda.insert("sweeper".to_owned(), layout.lambda("sweeper", 1.0, billed_ms(&[elapsed])));
    Ok(Usage {
        deliveries: 1.0,
        lambda,
        ledger,
        log_bytes: (LOG_BYTES.load(Ordering::Relaxed) - logs_before) as f64,
        ..layout.usage()
    })
}

fn rand_tag() -> String {
    format!(
        "{:08x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_exactly_the_asked_size_and_not_one_letter() {
        for bytes in [1024, 16 * 1024, 128 * 1024] {
            let p = payload(bytes, 7);
            assert_eq!(p.to_string().len(), bytes);
            assert!(p["findings"].as_array().unwrap().len() > 2);
        }
    }

    #[test]
    fn the_grid_has_every_scenario_of_the_issue() {
        let keys: Vec<String> = grid(true).into_iter().map(|s| s.key).collect();
        for k in [
            "1KiB_fanout1_single",
            "1KiB_fanout10_single",
            "1KiB_fanout100_single",
            "1KiB_fanout1_batch100",
            "16KiB_fanout1_single",
            "128KiB_fanout1_single",
            "128KiB_fanout100_single",
        ] {
            assert!(keys.contains(&k.to_owned()), "{k}");
        }
    }
}
