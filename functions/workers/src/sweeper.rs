//! The sweeper Lambda (schedule): re-enqueues in-flight deliveries whose next attempt is overdue,
//! so a crash between the DynamoDB write and the SQS send loses nothing.
//!
//! A run is bounded by the time the invocation has left (the Lambda context's deadline, less
//! [`DEADLINE_MARGIN_MS`]), and enqueues as it goes: under a backlog each run sends what it could
//! instead of timing out having sent nothing.

use puck_core::services::{sweeper, Context};
use puck_core::time::Timestamp;
use puck_core::AppError;
use serde_json::{json, Value};

/// Deliveries examined per run; a backlog larger than this drains over the next runs.
pub const SWEEP_BATCH: usize = 500;
/// Time kept back from the invocation's deadline for the last enqueue and the response.
pub const DEADLINE_MARGIN_MS: i64 = 5_000;

/// One run; `deadline_ms` is the invocation's deadline (Unix milliseconds).
pub async fn handle(ctx: &Context, grace_secs: i64, deadline_ms: i64, _event: Value) -> Result<Value, AppError> {
    let deadline = Timestamp(deadline_ms - DEADLINE_MARGIN_MS);
    let requeued = sweeper::sweep(ctx, grace_secs, SWEEP_BATCH, deadline).await?;
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
            let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
            handle(ctx, grace, deadline_ms, event.payload).await.map_err(|e| lambda_runtime::Error::from(e.to_string()))
        }))
        .await
    })
}
