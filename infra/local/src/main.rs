//! `puck-local`: the whole service on one machine (docs/local-stack.md). Thin on purpose: starts one moto
//! per AWS service, starts a [`puck_local::LocalStack`] from template.yaml and waits for Ctrl-C.
//!
//! Environment: `PORT` (default 3000), `DEV_API_KEY` (fixes the dev key), and the dev switches
//! copied into the functions' config: see [`puck_local::PASSTHROUGH_ENV`].

use anyhow::{Context as _, Result};
use puck_local::{LocalStack, MotoServices, StackOptions};
use std::collections::BTreeMap;

fn main() -> Result<()> {
    // Before any thread exists: the SDK credential chain (used by anything built from the process
    // environment) needs credentials, and moto accepts any. Real ones, if set, are kept.
    for (name, value) in [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")]
    {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    puck_aws::telemetry::init();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

async fn run() -> Result<()> {
    let port: u16 = match std::env::var("PORT") {
        Ok(raw) => raw.parse().with_context(|| format!("PORT={raw:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let env_overrides: BTreeMap<String, String> = puck_local::PASSTHROUGH_ENV
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), std::env::var(name).ok()?)))
        .collect();
    let dev_api_key = std::env::var("DEV_API_KEY").ok().filter(|k| !k.is_empty());

    let motos = MotoServices::start().await?;
    let endpoints = motos.endpoints();
    let mut opts = StackOptions::new(endpoints.dynamodb.clone());
    opts.service_endpoints = Some(endpoints.clone());
    opts.api_port = port;
    opts.resource_prefix = "puck-local".to_owned();
    opts.env_overrides = env_overrides;
    opts.dev_api_key = dev_api_key;
    opts.poll_interval = std::time::Duration::from_secs(1);
    let stack = LocalStack::start(opts).await?;

    println!();
    println!("  Puck webhooks: local stack is up");
    println!("  base URL      {}", stack.base_url);
    println!("  API key       {}", stack.api_key);
    println!("  account       {}", stack.account_id);
    println!("  moto (AWS), one per service; for puck-admin and the aws CLI:");
    println!("    export AWS_ENDPOINT_URL={}", endpoints.dynamodb);
    println!("    export AWS_ENDPOINT_URL_DYNAMODB={}", endpoints.dynamodb);
    println!("    export AWS_ENDPOINT_URL_SQS={}", endpoints.sqs);
    println!("    export AWS_ENDPOINT_URL_SECRETS_MANAGER={}", endpoints.secrets_manager);
    // AWS destinations (docs/receiving.md): STS, IAM and EventBridge are served by the first moto.
    for service in ["STS", "IAM", "EVENTBRIDGE"] {
        println!("    export AWS_ENDPOINT_URL_{service}={}", endpoints.dynamodb);
    }
    println!("  table         {}", stack.table_name);
    println!("  queue         {}", stack.delivery_queue_url);
    println!("  ingest queue  {}", stack.ingest_queue_url);
    println!("  ingest DLQ    {}", stack.ingest_dead_letter_queue_url);
    println!();
    println!("  curl -H 'Authorization: Bearer {}' {}/v1/webhooks/subscriptions", stack.api_key, stack.base_url);
    println!("  Ctrl-C stops everything.");
    println!();

    tokio::signal::ctrl_c().await.context("Failed to wait for Ctrl-C")?;
    tracing::info!("shutting down");
    stack.shutdown();
    motos.stop().await?;
    Ok(())
}
