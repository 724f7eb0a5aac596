//! The sweeper Lambda (schedule): re-enqueues in-flight deliveries whose next attempt is overdue,
//! so a crash between the DynamoDB write and the SQS send loses nothing.

use puck_core::services::{workers, Context};
use puck_core::AppError;
use serde_json::{json, Value};

/// Deliveries examined per run; a backlog larger than this drains over the next runs.
pub const SWEEP_BATCH: usize = 500;

pub async fn handle(ctx: &Context, grace_secs: i64, _event: Value) -> Result<Value, AppError> {
    let requeued = workers::sweep(ctx, grace_secs, SWEEP_BATCH).await?;
    Ok(json!({ "requeued": requeued }))
}

pub fn run() -> Result<(), lambda_runtime::Error> {
    puck_aws::telemetry::init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let config = puck_aws::Config::from_env()?;
        let grace = config.sweep_grace_seconds;
        let ctx: &'static Context = Box::leak(Box::new(puck_aws::build_context(&config).await?));
        lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| async move {
            handle(ctx, grace, event.payload).await.map_err(|e| lambda_runtime::Error::from(e.to_string()))
        }))
        .await
    })
}
