//! The benchmark's local stack: the puck-local building blocks (template provisioning into moto,
//! the in-process API gateway, the real handlers), assembled so that every AWS call is counted.
//!
//! Why not `LocalStack::start` as is: its queue pollers run on their own uncounted SQS client and
//! cannot be paused, so the SQS requests of the event source mapping (which AWS bills) would be
//! invisible and background polls would land in the middle of a measurement. Here the event
//! source mapping is [`BenchStack::poll_once`]: puck-local's [`QueuePoller`] (ReceiveMessage →
//! dispatcher handler → DeleteMessageBatch) on a client carrying its own counter, driven
//! explicitly or by [`BenchStack::spawn_pollers`].

use crate::call_log::CallCounter;
use crate::receiver::Receiver;
use anyhow::{anyhow, Result};
use puck_core::ids::AccountId;
use puck_core::model::Scope;
use puck_core::services::Context;
use puck_local::pollers::QueuePoller;
use puck_local::provision::{self, Clients};
use puck_local::template::Template;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A provisioned stack with counted clients.
pub struct BenchStack {
    /// The functions' environment (template Globals + endpoint + dev overrides).
    pub env: BTreeMap<String, String>,
    /// The context the in-process handlers share (clients carry the function counter).
    pub ctx: Context,
    /// `http://127.0.0.1:<port>` of the in-process HTTP API.
    pub base_url: String,
    /// Uncounted clients straight to moto (provisioning, raw-rate reference, table scans).
    pub raw: Clients,
    /// The table name.
    pub table: String,
    /// Calls made by the functions (API handlers, dispatcher).
    pub functions: CallCounter,
    /// Calls made by the event source mapping (ReceiveMessage, DeleteMessageBatch).
    pub esm: CallCounter,
    /// The HTTPS receiver every subscription points at.
    pub receiver: Receiver,
    /// Publishes retried after a 5xx (see [`BenchStack::publish`]).
    pub publish_retries: std::sync::atomic::AtomicU64,
    /// Duration of every dispatcher handler invocation (what Lambda bills).
    pub handler_durations: std::sync::Mutex<Vec<Duration>>,
    /// The event source mapping: puck-local's poller on the counted SQS client.
    poller: QueuePoller,
    /// The ingest queue's event source mapping, when the template has the ingest function.
    ingest: Option<QueuePoller>,
    /// Duration of every ingest handler invocation.
    pub ingest_durations: std::sync::Mutex<Vec<Duration>>,
    http: reqwest::Client,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
}

/// An account with an API key (one per scenario, so fan-out is exactly the subscriptions made).
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The account.
    pub account: AccountId,
    /// Its key (all scopes).
    pub key: String,
}

impl BenchStack {
    /// Provisions the template into moto under a fresh prefix and wires the counted context. The
    /// function counter must already be registered with `puck_aws::add_sdk_interceptor`.
    pub async fn start(moto_endpoint: &str, functions: CallCounter, _workdir: &std::path::Path) -> Result<Self> {
        let template = Template::load(&puck_local::moto::repo_root().join("template.yaml"))?;
        let raw = Clients::new(moto_endpoint, "test", "test").await;
        let provisioned = provision::provision(&template, &raw, &puck_local::unique_prefix("bench")).await?;
        let receiver = Receiver::start().await?;

        let mut env = provision::function_environment(&template, &provisioned)?;
        env.insert("AWS_REGION".into(), provision::LOCAL_REGION.into());
        env.insert("AWS_ENDPOINT_URL".into(), moto_endpoint.to_owned());
        env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
        env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
        env.insert("ALLOW_PRIVATE_TARGETS".into(), "1".into());
        env.insert("EXTRA_CA_CERT".into(), receiver.ca_path.display().to_string());
        // The account limit of the rate the partition model asks about (its counter's shards,
        // `cost::SHARDED_SHAPES`); the bill is the same at any limit (one write per request).
        env.insert("ACCOUNT_PUBLISH_PER_SECOND".into(), crate::cost::MODELED_PUBLISH_PER_SECOND.to_string());

        let config = puck_aws::Config::from_lookup(|name| env.get(name).cloned())?;
        let ctx = puck_aws::build_context(&config).await?;
        let workers = puck_local::pollers::Workers::build(&ctx, &config).await?;

        let esm = CallCounter::default();
        let esm_sqs = {
            let sdk = puck_aws::sdk_config(&config).await;
            let mut builder = aws_sdk_sqs::config::Builder::from(&sdk);
            builder.push_interceptor(esm.interceptor());
            aws_sdk_sqs::Client::from_conf(builder.build())
        };

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        // The handlers run in this process: unoptimised in a quick (debug) run, where a batch of
        // 100 events takes longer than the route's 10 s, so their timeouts are stretched 6×.
        let mut routes = template.routes()?;
        if cfg!(debug_assertions) {
            routes.iter_mut().for_each(|r| r.timeout_secs *= 6);
        }
        let gateway = puck_local::gateway::Gateway::new(&routes, Arc::new(ctx.clone()))?.serve(listener);

        let consumer = template
            .sqs_consumers()?
            .into_iter()
            .find(|c| c.binary == "dispatcher")
            .ok_or_else(|| anyhow!("template has no dispatcher SQS consumer"))?;
        let poller_of = |consumer: &puck_local::template::SqsConsumer| -> Result<QueuePoller> {
            let (queue_url, queue_arn) = provisioned.queue(&consumer.queue)?;
            Ok(QueuePoller {
                queue_url: queue_url.to_owned(),
                queue_arn: queue_arn.to_owned(),
                worker: puck_local::pollers::sqs_worker(&consumer.binary, &workers)?,
                consumer: consumer.clone(),
                sqs: esm_sqs.clone(),
                poll_interval: Duration::from_secs(1),
            })
        };
        let poller = poller_of(&consumer)?;
        let ingest = template.sqs_consumers()?.into_iter().find(|c| c.binary == "ingest");
        let ingest = ingest.as_ref().map(poller_of).transpose()?;
        Ok(Self {
            table: config.table_name.clone(),
            env,
            ctx,
            base_url,
            raw,
            functions,
            esm,
            receiver,
            publish_retries: std::sync::atomic::AtomicU64::new(0),
            handler_durations: std::sync::Mutex::new(Vec::new()),
            poller,
            ingest,
            ingest_durations: std::sync::Mutex::new(Vec::new()),
            http: reqwest::Client::new(),
            tasks: std::sync::Mutex::new(vec![gateway]),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A new account with an all-scopes key.
    pub async fn tenant(&self) -> Result<Tenant> {
        let account = puck_local::keys::new_account_id();
        let (key, _) = puck_local::issue_api_key(&self.ctx, &account, &Scope::ALL, false).await?;
        Ok(Tenant { account, key })
    }

    /// Creates `n` subscriptions of `tenant` to the receiver, for every event type, via the API.
    pub async fn subscribe(&self, tenant: &Tenant, n: usize) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let body = json!({ "url": self.receiver.url, "events": ["finding.*", "investigation.*"], "name": format!("bench-{i}") });
            let resp = self.api("POST", "/v1/webhooks/subscriptions", &tenant.key, Some(body)).await?;
            ids.push(resp["id"].as_str().ok_or_else(|| anyhow!("no subscription id in {resp}"))?.to_owned());
        }
        Ok(ids)
    }

    /// Publishes one event through the HTTP API; returns the deliveries created. A 5xx (the local
    /// gateway answers 500 when a handler exceeds its template timeout under load) is retried up
    /// to 3 times with the same `event_id`, which is idempotent, and counted in
    /// [`BenchStack::publish_retries`] for the report.
    pub async fn publish(&self, tenant: &Tenant, event_id: &str, data: &Value) -> Result<u64> {
        let body =
            json!({ "event_type": "finding.discovered", "event_id": event_id, "severity": "high", "data": data });
        let mut attempt = 0;
        loop {
            match self.api("POST", "/v1/events", &tenant.key, Some(body.clone())).await {
                Ok(resp) => return resp["deliveries"].as_u64().ok_or_else(|| anyhow!("publish answered {resp}")),
                Err(e) if attempt < 3 && e.to_string().contains("answered 5") => {
                    attempt += 1;
                    self.publish_retries.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One API call; errors on a non-2xx status.
    pub async fn api(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Result<Value> {
        let method = http::Method::from_bytes(method.as_bytes())?;
        let mut req = self.http.request(method, format!("{}{path}", self.base_url)).bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(anyhow!("{path} answered {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// One event source mapping cycle through puck-local's poller on the counted client:
    /// receive up to a batch, invoke the dispatcher handler (timed: that is the billed Lambda
    /// duration), delete what it did not report as failed. Returns the number of messages received.
    pub async fn poll_once(&self, wait_secs: i32) -> Result<usize> {
        let polled = self.poller.poll_waiting(wait_secs).await?;
        if polled.messages > 0 {
            self.handler_durations.lock().expect("durations lock").push(polled.worker_time);
        }
        Ok(polled.messages)
    }

    /// Whether the template has the ingest queue and its function.
    pub fn has_ingest(&self) -> bool {
        self.ingest.is_some()
    }

    /// Sends one message to the ingest queue as a producer does (a SendMessage, counted with the
    /// event source mapping's calls: the account pays it).
    pub async fn send_ingest(&self, body: &Value) -> Result<()> {
        let ingest = self.ingest.as_ref().ok_or_else(|| anyhow!("template has no ingest queue"))?;
        ingest.sqs.send_message().queue_url(&ingest.queue_url).message_body(body.to_string()).send().await?;
        Ok(())
    }

    /// One event source mapping cycle of the ingest queue; returns the messages received.
    pub async fn poll_ingest_once(&self) -> Result<usize> {
        let ingest = self.ingest.as_ref().ok_or_else(|| anyhow!("template has no ingest queue"))?;
        let polled = ingest.poll_waiting(0).await?;
        if polled.messages > 0 {
            self.ingest_durations.lock().expect("durations lock").push(polled.worker_time);
        }
        Ok(polled.messages)
    }

    /// Starts `n` concurrent pollers (Lambda's event source mapping starts with 5), long polling
    /// 1 s like the mapping does (moto answers as soon as a message arrives).
    pub fn spawn_pollers(self: &Arc<Self>, n: usize) {
        self.stop.store(false, Ordering::SeqCst);
        let mut tasks = self.tasks.lock().expect("tasks lock");
        for _ in 0..n {
            let stack = self.clone();
            tasks.push(tokio::spawn(async move {
                while !stack.stop.load(Ordering::SeqCst) {
                    if let Err(e) = stack.poll_once(1).await {
                        eprintln!("bench poller: {e:#}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }));
        }
    }

    /// Asks the pollers to stop after their current poll and waits for them (≤ ~1 s).
    pub async fn stop_pollers(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let tasks: Vec<_> = {
            let mut all = self.tasks.lock().expect("tasks lock");
            let gateway = all.remove(0);
            std::mem::replace(&mut *all, vec![gateway])
        };
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Waits until the receiver has seen `total` requests, or fails after `timeout`.
    pub async fn wait_received(&self, total: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.receiver.count() < total {
            if Instant::now() > deadline {
                return Err(anyhow!("only {} of {total} deliveries arrived within {timeout:?}", self.receiver.count()));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Every item of the table (uncounted), for item sizes.
    pub async fn scan_items(&self) -> Result<Vec<serde_json::Map<String, Value>>> {
        // The SDK's AttributeValue is not serde; go through moto's JSON API with the raw client's
        // scan and convert each value to the wire form that `item_size` expects.
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self.raw.dynamodb.scan().table_name(&self.table).set_exclusive_start_key(start).send().await?;
            for item in page.items() {
                out.push(item.iter().map(|(k, v)| (k.clone(), wire(v))).collect());
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }
}

impl Drop for BenchStack {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            for t in tasks.iter() {
                t.abort();
            }
        }
    }
}

/// An SDK attribute value in DynamoDB's JSON wire form.
pub fn wire(v: &aws_sdk_dynamodb::types::AttributeValue) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => json!({ "S": s }),
        A::N(n) => json!({ "N": n }),
        A::B(b) => json!({ "B": "x".repeat(b.as_ref().len() * 4 / 3) }),
        A::Bool(b) => json!({ "BOOL": b }),
        A::Null(_) => json!({ "NULL": true }),
        A::L(l) => json!({ "L": l.iter().map(wire).collect::<Vec<_>>() }),
        A::M(m) => json!({ "M": m.iter().map(|(k, v)| (k.clone(), wire(v))).collect::<serde_json::Map<_, _>>() }),
        A::Ss(s) => json!({ "SS": s }),
        A::Ns(s) => json!({ "NS": s }),
        _ => Value::Null,
    }
}
