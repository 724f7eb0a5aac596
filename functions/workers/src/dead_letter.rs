//! The dead-letter Lambda: messages redriven to the DLQ ran out of attempts; their deliveries
//! become `failed_permanent` (the DLQ listing is `GET /v1/webhooks/deliveries?status=failed_permanent`).

use crate::{parse_job, process_batch};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use puck_core::services::{dead_letter, Context};

pub async fn handle(ctx: &Context, event: SqsEvent) -> SqsBatchResponse {
    process_batch(&event, |m| async move {
        let Some(job) = parse_job(m) else { return false };
        match dead_letter::mark_dead_lettered(ctx, &job).await {
            Ok(_) => false,
            Err(e) => {
                tracing::error!(delivery_id = %job.delivery_id, error = %e, "could not mark delivery failed_permanent");
                true
            }
        }
    })
    .await
}

pub fn run() -> Result<(), lambda_runtime::Error> {
    puck_aws::telemetry::init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let config = puck_aws::Config::from_env()?;
        let ctx: &'static Context = Box::leak(Box::new(puck_aws::build_context(&config).await?));
        lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            Ok::<_, std::convert::Infallible>(handle(ctx, event.payload).await)
        }))
        .await
    })
}
