//! Adapters for the core ports: DynamoDB, SQS, Secrets Manager, the outbound HTTPS sender, and
//! the typed configuration every function reads at cold start.
//!
//! A function's `main` goes through [`bootstrap`]: [`telemetry::init`], [`Config::from_env`] and
//! [`build_context`] once, then the [`Context`] is handed to its handler. Adapters translate between the ports and the AWS
//! SDK and hold no business rules. The same code reaches moto, LocalStack or AWS depending only on
//! `AWS_ENDPOINT_URL`.

pub mod bootstrap;
pub mod config;
pub mod destinations;
pub mod dynamo;
mod fault_gate;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod secrets;
pub mod sender;
pub mod sqs;
pub mod telemetry;

pub use config::{Config, ConfigError};
pub use dynamo::{
    DynamoApiKeyStore, DynamoDeliveryStore, DynamoEndpointStore, DynamoInvestigationStore, DynamoSubscriptionStore,
};
pub use sender::{HttpSender, SenderOptions};
pub use sqs::{SqsDeliveryQueue, SqsRejectedMessages};

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use fault_gate::FaultGate;
use puck_core::cache::{CachedApiKeys, CachedSubscriptions};
use puck_core::crypto::Keyring;
use puck_core::oauth::cache::TokenCache;
use puck_core::ports::{RejectedMessages, SystemClock, WebhookSender};
use puck_core::services::Context;
use std::sync::Arc;
use std::time::Duration;

/// The shared AWS SDK configuration: region, `AWS_ENDPOINT_URL` when set, and (local stack only)
/// static credentials from the lookup; otherwise the default credential chain.
///
/// The HTTPS client is built here rather than left to each SDK client: one connection pool then
/// serves DynamoDB, SQS and Secrets Manager, and the test-only throttling fault has a client to
/// wrap (the SDK's own default is created inside each client, after the config is built).
pub async fn sdk_config(config: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.aws_region.clone()))
        .http_client(https_client());
    if let Some(endpoint) = &config.aws_endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(creds) = &config.static_credentials {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            creds.session_token.clone(),
            None,
            "puck-config",
        ));
    }
    loader.load().await
}

/// The SDK's default client, made explicitly: hyper 1 with rustls on aws-lc, the proxy taken from
/// the environment, connector settings (timeouts) and the sleep from each client's config.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Process-wide extra SDK interceptors, attached to every DynamoDB, SQS and Secrets Manager client
/// that [`build_context`] builds. Empty in Lambda (nothing registers one), so production clients
/// are unchanged; the benchmark (`infra/bench`) registers a call counter here to measure AWS calls
/// per delivery through the very adapters the functions use.
static SDK_INTERCEPTORS: std::sync::RwLock<Vec<aws_sdk_dynamodb::config::SharedInterceptor>> =
    std::sync::RwLock::new(Vec::new());

/// Registers an interceptor for every SDK client built by [`build_context`] from now on in this
/// process (clients built earlier keep theirs). Meant for measurement and tests, not for Lambda.
pub fn add_sdk_interceptor(interceptor: aws_sdk_dynamodb::config::SharedInterceptor) {
    SDK_INTERCEPTORS.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(interceptor);
}

/// The interceptors registered with [`add_sdk_interceptor`].
fn sdk_interceptors() -> Vec<aws_sdk_dynamodb::config::SharedInterceptor> {
    SDK_INTERCEPTORS.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// Builds every adapter once: reads the master key from Secrets Manager (one GetSecretValue per
/// container) and wires DynamoDB, SQS and the system clock into a [`Context`].
pub async fn build_context(config: &Config) -> anyhow::Result<Context> {
    build(config, FaultGate::default()).await
}

/// [`build_context`] with test fault switches wired into every DynamoDB and SQS adapter.
#[cfg(feature = "fault-injection")]
pub async fn build_context_with_faults(config: &Config, faults: Arc<faults::FaultSwitches>) -> anyhow::Result<Context> {
    build(config, FaultGate::new(faults)).await
}

async fn build(config: &Config, faults: FaultGate) -> anyhow::Result<Context> {
    let sdk = sdk_config(config).await;
    let interceptors = sdk_interceptors();
    let secrets = {
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(&sdk);
        builder.set_interceptors(interceptors.clone());
        if let Some(endpoint) = &config.aws_endpoint_url_secrets_manager {
            builder.set_endpoint_url(Some(endpoint.clone()));
        }
        aws_sdk_secretsmanager::Client::from_conf(builder.build())
    };
    let master = secrets::read_master_key(&secrets, &config.master_key_secret_id).await?;
    let keyring = Keyring::from_master_key(&master);
    drop(master);

    let dynamo = {
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&sdk);
        builder.set_interceptors(interceptors.clone());
        builder.set_http_client(faults.dynamo_http_client(sdk.http_client()));
        if let Some(endpoint) = &config.aws_endpoint_url_dynamodb {
            builder.set_endpoint_url(Some(endpoint.clone()));
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    };
    let sqs = {
        let mut builder = aws_sdk_sqs::config::Builder::from(&sdk);
        builder.set_interceptors(interceptors);
        if let Some(endpoint) = &config.aws_endpoint_url_sqs {
            builder.set_endpoint_url(Some(endpoint.clone()));
        }
        aws_sdk_sqs::Client::from_conf(builder.build())
    };
    let http = http_sender(config)?;
    let table = config.table_name.as_str();
    let cache_ttl = Duration::from_secs(config.config_cache_seconds);
    Ok(Context {
        keyring,
        api_keys: CachedApiKeys::wrap(
            Arc::new(DynamoApiKeyStore::new(dynamo.clone(), table).with_faults(faults.clone())),
            cache_ttl,
        ),
        subscriptions: CachedSubscriptions::wrap(
            Arc::new(DynamoSubscriptionStore::new(dynamo.clone(), table).with_faults(faults.clone())),
            cache_ttl,
        ),
        deliveries: Arc::new(DynamoDeliveryStore::new(dynamo.clone(), table).with_faults(faults.clone())),
        endpoints: Arc::new(DynamoEndpointStore::new(dynamo.clone(), table).with_faults(faults.clone())),
        investigations: Arc::new(
            DynamoInvestigationStore::new(dynamo.clone(), table, config.retention_days).with_faults(faults.clone()),
        ),
        limits: Arc::new(dynamo::DynamoLimitStore::new(dynamo, table).with_faults(faults.clone())),
        queue: Arc::new(
            SqsDeliveryQueue::new(sqs, config.delivery_queue_url.clone())
                .with_fifo_queue(config.delivery_fifo_queue_url.clone())
                .with_faults(faults),
        ),
        clock: Arc::new(SystemClock),
        sender: Some(with_destinations(http.clone(), config).await),
        tokens: Some(Arc::new(TokenCache::new(http))),
        settings: config.settings(),
    })
}

/// The ingest DLQ (ingest function only): `INGEST_DEAD_LETTER_QUEUE_URL` is required here.
pub async fn build_rejected_messages(config: &Config) -> anyhow::Result<Arc<dyn RejectedMessages>> {
    let url = config
        .ingest_dead_letter_queue_url
        .clone()
        .ok_or(ConfigError::Missing("INGEST_DEAD_LETTER_QUEUE_URL"))
        .context("the ingest function parks rejected messages there")?;
    let sdk = sdk_config(config).await;
    let mut builder = aws_sdk_sqs::config::Builder::from(&sdk);
    builder.set_interceptors(sdk_interceptors());
    if let Some(endpoint) = &config.aws_endpoint_url_sqs {
        builder.set_endpoint_url(Some(endpoint.clone()));
    }
    Ok(Arc::new(SqsRejectedMessages::new(aws_sdk_sqs::Client::from_conf(builder.build()), url)))
}

/// The outbound sender: one pooled HTTPS client with the SSRF guard, timeout and `EXTRA_CA_CERT`
/// from config, and the AWS-destination sender, behind one [`WebhookSender`].
pub async fn build_sender(config: &Config) -> anyhow::Result<Arc<dyn WebhookSender>> {
    Ok(with_destinations(http_sender(config)?, config).await)
}

/// `http` for HTTPS receivers beside the AWS-destination sender (STS, SQS, EventBridge clients).
async fn with_destinations(http: Arc<HttpSender>, config: &Config) -> Arc<dyn WebhookSender> {
    let aws = destinations::build(config, &sdk_config(config).await);
    Arc::new(puck_core::sending::TargetSender::new(http, Arc::new(aws)))
}

/// The HTTPS client behind [`build_sender`], which also fetches OAuth 2.0 tokens (its
/// `TokenSource`): the same guard, timeout and trusted roots for both.
fn http_sender(config: &Config) -> anyhow::Result<Arc<HttpSender>> {
    let extra_ca_pem = match &config.extra_ca_cert {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("Failed to read EXTRA_CA_CERT {}", path.display()))?)
        }
        None => None,
    };
    let sender = HttpSender::new(SenderOptions {
        timeout: Duration::from_secs(config.delivery_timeout_seconds),
        allow_private_targets: config.allow_private_targets,
        extra_ca_pem,
    })?;
    Ok(Arc::new(sender))
}

/// Everything the dispatcher needs, built once per container: the context, one HTTP client and
/// the retry policy from config.
pub async fn build_dispatcher(config: &Config) -> anyhow::Result<puck_core::services::dispatch::Dispatcher> {
    dispatcher_over(build_context(config).await?, config).await
}

/// The dispatcher over `ctx`: it sends with the context's sender, so a container holds one HTTPS
/// client and one set of AWS-destination clients; the retry policy, claim lease and the shared
/// rate-limit buckets come from `config`.
pub async fn dispatcher_over(
    ctx: Context,
    config: &Config,
) -> anyhow::Result<puck_core::services::dispatch::Dispatcher> {
    let sender = match &ctx.sender {
        Some(sender) => sender.clone(),
        None => build_sender(config).await?,
    };
    Ok(puck_core::services::dispatch::Dispatcher::new(ctx, sender, config.retry_policy())
        .with_claim_lease(config.claim_lease_seconds())
        .with_rate_buckets(build_rate_buckets(config).await)
        .with_pause(Arc::new(TokioPause))
        .with_background(Arc::new(|held| drop(tokio::spawn(held)))))
}

/// [`puck_core::rate::Pause`] on tokio's timer.
pub struct TokioPause;

#[async_trait::async_trait]
impl puck_core::rate::Pause for TokioPause {
    async fn pause(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The rate-limit buckets every dispatcher shares (docs/flow-control.md, "Rate limits"): in the table.
pub async fn build_rate_buckets(config: &Config) -> Arc<dyn puck_core::rate::RateBuckets> {
    let sdk = sdk_config(config).await;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&sdk);
    builder.set_interceptors(sdk_interceptors());
    if let Some(endpoint) = &config.aws_endpoint_url_dynamodb {
        builder.set_endpoint_url(Some(endpoint.clone()));
    }
    let client = aws_sdk_dynamodb::Client::from_conf(builder.build());
    Arc::new(dynamo::DynamoRateBuckets::new(client, config.table_name.as_str()))
}
