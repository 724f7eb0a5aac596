//! The local stack: the whole service on one machine, with moto as the embedded AWS.
//!
//! Everything is derived from template.yaml (docs/local-stack.md): the tables, queues and secret it declares
//! are created in moto through the real AWS SDK; `Globals.Function.Environment` becomes the one
//! configuration every function shares; `HttpApi` events become the local HTTP API; `SQS` events
//! become pollers with `ReportBatchItemFailures` semantics; `Schedule` events become timers. The
//! handlers are the same functions the Lambda binaries run, called in-process.
//!
//! The library is what the end-to-end tests use: each test starts its own [`LocalStack`] under a
//! unique resource prefix against one shared [`Moto`], and drops it when done.

pub mod fifo_dedup;
pub mod gateway;
pub mod invocation;
pub mod keys;
pub mod moto;
pub mod pollers;
pub mod provision;
pub mod sqs_limits;
pub mod template;
#[cfg(feature = "test-tls")]
pub mod test_tls;

pub use keys::{issue_api_key, store_api_key};
pub use moto::{Moto, MotoServices, ServiceEndpoints};

use anyhow::{anyhow, Context as _, Result};
use puck_aws::faults::FaultSwitches;
use puck_core::ids::AccountId;
use puck_core::model::Scope;
use puck_core::services::Context;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Env vars the `puck-local` binary copies from its own environment into the functions' config.
pub const PASSTHROUGH_ENV: &[&str] = &[
    "ALLOW_PRIVATE_TARGETS",
    "EXTRA_CA_CERT",
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_MAX_SECONDS",
    "MAX_DELIVERY_ATTEMPTS",
    "PUBLIC_BASE_URL",
    "DELIVERY_TIMEOUT_SECONDS",
    "SWEEP_GRACE_SECONDS",
    "RUST_LOG",
    "ACCOUNT_PUBLISH_PER_SECOND",
    "ACCOUNT_TESTS_PER_MINUTE",
    "ACCOUNT_MAX_SUBSCRIPTIONS",
    "SUBSCRIPTION_MAX_IN_FLIGHT",
];

/// A hook that may replace or wrap the built [`Context`] (e.g. a test wrapping a port).
pub type ContextHook = Arc<dyn Fn(Context) -> Context + Send + Sync>;

/// How to start a [`LocalStack`].
#[derive(Clone)]
pub struct StackOptions {
    /// Port of the HTTP API on 127.0.0.1; 0 picks a free one.
    pub api_port: u16,
    /// moto (or LocalStack, or any AWS endpoint) URL, e.g. [`Moto::endpoint`].
    pub moto_endpoint: String,
    /// One endpoint per service (e.g. [`MotoServices::endpoints`]); `None` puts every service at
    /// `moto_endpoint`.
    pub service_endpoints: Option<ServiceEndpoints>,
    /// Prefix of every physical resource name (`<prefix>-<LogicalId>`); unique per stack so that
    /// many stacks can share one moto.
    pub resource_prefix: String,
    /// Applied over the template's `Globals` environment, e.g. `ALLOW_PRIVATE_TARGETS=1`,
    /// `EXTRA_CA_CERT=/path.pem`, `BACKOFF_BASE_SECONDS=1`.
    pub env_overrides: BTreeMap<String, String>,
    /// The development key to register (`pck_(live|test)_…`); a fresh one when `None`.
    pub dev_api_key: Option<String>,
    /// Pause of the queue pollers after an empty receive (≥ 1 s switches to 1 s long polling).
    pub poll_interval: Duration,
    /// Period of scheduled functions; `None` uses the template's `rate(...)`.
    pub sweep_interval: Option<Duration>,
    /// Fault switches consulted by the adapters (feature `fault-injection`).
    pub faults: Option<Arc<FaultSwitches>>,
    /// Called on the built context before anything uses it.
    pub context_hook: Option<ContextHook>,
    /// The template; `None` means `<repo root>/template.yaml`.
    pub template_path: Option<PathBuf>,
    /// Overrides the delivery queue's `VisibilityTimeout` (template: 180 s) after provisioning,
    /// so tests of "the dispatcher died; the message comes back" take seconds. Tests only.
    pub delivery_visibility_timeout_secs: Option<u32>,
    /// Concurrent pollers per SQS event source (default 1). Lambda runs several batches of one
    /// queue at once; each poller is one such concurrent invocation, with the same
    /// receive/invoke/delete-what-succeeded semantics, so this only adds throughput (load runs).
    pub pollers_per_queue: usize,
}

impl std::fmt::Debug for StackOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackOptions")
            .field("api_port", &self.api_port)
            .field("moto_endpoint", &self.moto_endpoint)
            .field("service_endpoints", &self.service_endpoints)
            .field("resource_prefix", &self.resource_prefix)
            .field("env_overrides", &self.env_overrides)
            .field("dev_api_key", &self.dev_api_key.as_ref().map(|_| "***"))
            .field("poll_interval", &self.poll_interval)
            .field("sweep_interval", &self.sweep_interval)
            .field("faults", &self.faults.is_some())
            .field("context_hook", &self.context_hook.is_some())
            .field("template_path", &self.template_path)
            .field("delivery_visibility_timeout_secs", &self.delivery_visibility_timeout_secs)
            .field("pollers_per_queue", &self.pollers_per_queue)
            .finish()
    }
}

impl StackOptions {
    /// Defaults for a stack against `moto_endpoint`: ephemeral port, a random `puck-xxxxxxxx`
    /// prefix, fresh dev key, 200 ms polling, the template's schedule.
    pub fn new(moto_endpoint: impl Into<String>) -> Self {
        Self {
            api_port: 0,
            moto_endpoint: moto_endpoint.into(),
            service_endpoints: None,
            resource_prefix: unique_prefix("puck"),
            env_overrides: BTreeMap::new(),
            dev_api_key: None,
            poll_interval: Duration::from_millis(200),
            sweep_interval: None,
            faults: None,
            context_hook: None,
            template_path: None,
            delivery_visibility_timeout_secs: None,
            pollers_per_queue: 1,
        }
    }

    /// Where each service's resources live: [`StackOptions::service_endpoints`], else
    /// `moto_endpoint` for all.
    pub fn endpoints(&self) -> ServiceEndpoints {
        self.service_endpoints.clone().unwrap_or_else(|| ServiceEndpoints::all(&self.moto_endpoint))
    }

    /// Adds one environment override (builder style).
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env_overrides.insert(name.to_owned(), value.into());
        self
    }
}

/// `<base>-<8 random lowercase alphanumerics>`: a resource prefix no other stack uses.
pub fn unique_prefix(base: &str) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    let suffix = Alphanumeric.sample_string(&mut rand::thread_rng(), 8).to_ascii_lowercase();
    format!("{base}-{suffix}")
}

/// A running local stack. Dropping it (or [`LocalStack::shutdown`]) stops the HTTP API, the
/// pollers and the schedules; moto is owned by the caller.
pub struct LocalStack {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base_url: String,
    /// The development API key (scopes: all). Only its hash is stored.
    pub api_key: String,
    /// The development account the key belongs to.
    pub account_id: AccountId,
    pub table_name: String,
    pub delivery_queue_url: String,
    pub dead_letter_queue_url: String,
    /// The ingest queue: producers send events to it, the ingest function publishes them.
    pub ingest_queue_url: String,
    /// The ingest DLQ: rejected ingest messages wait there with their reason (message attributes).
    pub ingest_dead_letter_queue_url: String,
    /// The context every function of this stack shares.
    pub ctx: Context,
    /// The functions' environment: resolved `Globals` plus overrides and the endpoint.
    pub env: BTreeMap<String, String>,
    /// The provisioned resources (logical id → physical).
    pub provisioned: provision::Provisioned,
    /// The endpoint the stack's resources live at ([`StackOptions::moto_endpoint`]).
    pub aws_endpoint: String,
    /// Where each service's resources live (all at `aws_endpoint` unless the options said otherwise).
    pub endpoints: ServiceEndpoints,
    /// SDK clients against that endpoint (handy for tests that inspect queues).
    pub clients: provision::Clients,
    /// The SQS proxy every function and poller of this stack goes through: what it refused and
    /// expired, and each receive's real visibility.
    pub sqs_limits: Arc<sqs_limits::SqsLimits>,
    schedules: Vec<(template::Scheduled, pollers::ScheduledWorker)>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LocalStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStack")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field("table_name", &self.table_name)
            .field("delivery_queue_url", &self.delivery_queue_url)
            .finish_non_exhaustive()
    }
}

/// Access key and secret for the local endpoint: the process's if set, else moto's `test`.
fn local_credentials() -> (String, String) {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "test".to_owned());
    (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"))
}

impl LocalStack {
    /// Provisions the template's resources, builds the shared context, registers the dev key and
    /// starts the HTTP API, the pollers and the schedules.
    pub async fn start(opts: StackOptions) -> Result<Self> {
        let template_path = opts.template_path.clone().unwrap_or_else(|| moto::repo_root().join("template.yaml"));
        let mut template = template::Template::load(&template_path)?;
        // An override of e.g. MAX_DELIVERY_ATTEMPTS must also set the queue's maxReceiveCount
        // (both `!Ref MaxDeliveryAttempts`), or the dispatcher's last attempt is not the last.
        template.override_parameters_from_env(&opts.env_overrides);
        let routes = template.routes()?;
        let consumers = template.sqs_consumers()?;
        let scheduled = template.schedules()?;

        let (access_key, secret_key) = local_credentials();
        let endpoints = opts.endpoints();
        let clients = provision::Clients::for_endpoints(&endpoints, &access_key, &secret_key).await;
        let provisioned = provision::provision(&template, &clients, &opts.resource_prefix).await?;

        // The functions' environment, as Lambda would set it: Globals, the region, then the
        // local-only endpoint and credentials, then the caller's overrides.
        let mut env = provision::function_environment(&template, &provisioned)?;
        env.insert("AWS_REGION".into(), provision::LOCAL_REGION.into());
        env.insert("AWS_ENDPOINT_URL".into(), opts.moto_endpoint.clone());
        env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoints.dynamodb.clone());
        env.insert("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), endpoints.secrets_manager.clone());
        let access_key_for_pollers = access_key.clone();
        env.insert("AWS_ACCESS_KEY_ID".into(), access_key);
        env.insert("AWS_SECRET_ACCESS_KEY".into(), secret_key.clone());
        // SQS through the proxy that enforces what moto does not (12 h window, retention).
        let sqs_limits = Arc::new(sqs_limits::SqsLimits::start(&endpoints.sqs).await?);
        env.insert("AWS_ENDPOINT_URL_SQS".into(), sqs_limits.endpoint().to_owned());
        env.extend(opts.env_overrides.clone());

        let config = puck_aws::Config::from_lookup(|name| env.get(name).cloned())
            .context("The template's Globals environment is not a valid puck_aws::Config")?;
        let ctx = invocation::as_function(invocation::COLD_START, async {
            match &opts.faults {
                Some(faults) => puck_aws::build_context_with_faults(&config, faults.clone()).await,
                None => puck_aws::build_context(&config).await,
            }
        })
        .await?;
        let ctx = match &opts.context_hook {
            Some(hook) => hook(ctx),
            None => ctx,
        };
        let workers = pollers::Workers::build(&ctx, &config).await?;
        let shared = workers.ctx.clone();

        // The development account and key.
        let account_id = keys::new_account_id();
        let api_key = match &opts.dev_api_key {
            Some(key) => {
                keys::store_api_key(&ctx, &account_id, key, &Scope::ALL).await?;
                key.clone()
            }
            None => keys::issue_api_key(&ctx, &account_id, &Scope::ALL, false).await?.0,
        };

        let mut tasks = Vec::new();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.api_port))
            .await
            .with_context(|| format!("Failed to bind 127.0.0.1:{}", opts.api_port))?;
        let base_url = format!("http://{}", listener.local_addr()?);
        tasks.push(gateway::Gateway::new(&routes, shared.clone())?.serve(listener));

        if let Some(secs) = opts.delivery_visibility_timeout_secs {
            clients
                .sqs
                .set_queue_attributes()
                .queue_url(&config.delivery_queue_url)
                .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, secs.to_string())
                .send()
                .await
                .context("Failed to override the delivery queue's VisibilityTimeout")?;
        }
        let (ingest_queue_url, ingest_dead_letter_queue_url) = ingest_queues_of(&consumers, &provisioned, &config)?;
        let poller_sqs = provision::Clients::new(sqs_limits.endpoint(), &access_key_for_pollers, &secret_key).await.sqs;
        for consumer in consumers {
            let worker = pollers::sqs_worker(&consumer.binary, &workers)?;
            let (url, arn) = provisioned.queue(&consumer.queue)?;
            // Each poller is one concurrent invocation: never more than the source's MaximumConcurrency.
            for _ in 0..opts.pollers_per_queue.clamp(1, consumer.max_concurrency.max(1)) {
                let poller = pollers::QueuePoller {
                    queue_url: url.to_owned(),
                    queue_arn: arn.to_owned(),
                    consumer: consumer.clone(),
                    worker: worker.clone(),
                    sqs: poller_sqs.clone(),
                    poll_interval: opts.poll_interval,
                };
                tasks.push(poller.spawn());
            }
        }
        let mut schedules = Vec::new();
        for schedule in scheduled {
            let worker = pollers::scheduled_worker(&schedule.binary, &shared, &config)?;
            let period = opts
                .sweep_interval
                .or(schedule.period_secs.map(Duration::from_secs))
                .ok_or_else(|| anyhow!("{}: only rate(...) schedules are supported locally", schedule.function))?;
            tasks.push(pollers::spawn_schedule(schedule.clone(), worker.clone(), period));
            schedules.push((schedule, worker));
        }

        let table_name = config.table_name.clone();
        let delivery_queue_url = config.delivery_queue_url.clone();
        let dead_letter_queue_url = dead_letter_queue_of(&template, &provisioned, &delivery_queue_url)?;
        tracing::info!(
            base_url = base_url.as_str(),
            account_id = %account_id,
            table = table_name.as_str(),
            prefix = opts.resource_prefix.as_str(),
            "local stack ready"
        );
        Ok(Self {
            base_url,
            api_key,
            account_id,
            table_name,
            delivery_queue_url,
            dead_letter_queue_url,
            ingest_queue_url,
            ingest_dead_letter_queue_url,
            ctx,
            env,
            provisioned,
            aws_endpoint: opts.moto_endpoint,
            endpoints,
            clients,
            sqs_limits,
            schedules,
            tasks,
        })
    }

    /// Runs every scheduled function once now (the sweeper), instead of waiting for its period.
    pub async fn run_schedules_now(&self) -> Result<()> {
        for (schedule, worker) in &self.schedules {
            worker.invoke(&schedule.function).await?;
        }
        Ok(())
    }

    /// Issues another key (e.g. with fewer scopes, or for a second account).
    pub async fn issue_key(&self, account: &AccountId, scopes: &[Scope]) -> Result<String> {
        Ok(keys::issue_api_key(&self.ctx, account, scopes, false).await?.0)
    }

    /// Stops the HTTP API, pollers and schedules (also done on drop).
    pub fn shutdown(mut self) {
        self.stop_tasks();
    }

    fn stop_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

/// The ingest queue (the one the `ingest` function consumes) and the ingest DLQ the function
/// sends rejected messages to, both provisioned.
fn ingest_queues_of(
    consumers: &[template::SqsConsumer],
    provisioned: &provision::Provisioned,
    config: &puck_aws::Config,
) -> Result<(String, String)> {
    let consumer = consumers
        .iter()
        .find(|c| c.binary == "ingest")
        .ok_or_else(|| anyhow!("template.yaml has no ingest function on an SQS queue"))?;
    let queue_url = provisioned.queue(&consumer.queue)?.0.to_owned();
    let dead_letter_url = config
        .ingest_dead_letter_queue_url
        .clone()
        .ok_or_else(|| anyhow!("the template's Globals set no INGEST_DEAD_LETTER_QUEUE_URL"))?;
    Ok((queue_url, dead_letter_url))
}

/// The DLQ of the delivery queue: its `RedrivePolicy.deadLetterTargetArn`, provisioned.
fn dead_letter_queue_of(
    template: &template::Template,
    provisioned: &provision::Provisioned,
    delivery_queue_url: &str,
) -> Result<String> {
    for (logical_id, physical) in &provisioned.resources {
        let provision::Physical::Queue { url, .. } = physical else { continue };
        if url != delivery_queue_url {
            continue;
        }
        let redrive = template.resources()[logical_id.as_str()]
            .pointer("/Properties/RedrivePolicy/deadLetterTargetArn")
            .ok_or_else(|| anyhow!("{logical_id} has no RedrivePolicy.deadLetterTargetArn"))?;
        let target_arn = provisioned.resolve_string(redrive)?;
        for physical in provisioned.resources.values() {
            if let provision::Physical::Queue { url, arn, .. } = physical {
                if *arn == target_arn {
                    return Ok(url.clone());
                }
            }
        }
    }
    Err(anyhow!("no provisioned queue is the delivery queue's dead-letter target"))
}
