//! The dispatcher Lambda: sends a batch's deliveries concurrently and reports the ones to retry.
//!
//! Backoff is SQS visibility: a failed delivery's message is hidden for the backoff delay with
//! ChangeMessageVisibility and reported as a batch item failure, so SQS keeps it and brings it
//! back; after `maxReceiveCount` receives, redrive moves it to the DLQ.

use crate::{batch_response, parse_job, receive_count};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use puck_core::services::dispatch::{Dispatcher, JobOutcome};

/// Handles one batch. Never fails as a whole: per-message failures are reported.
pub async fn handle(dispatcher: &Dispatcher, event: SqsEvent) -> SqsBatchResponse {
    let results = join_all(event.records.iter().map(|m| handle_message(dispatcher, m))).await;
    batch_response(event.records.iter().zip(results).filter(|(_, retry)| *retry).filter_map(|(m, _)| m.message_id.clone()))
}

/// True when the message must be kept (reported as failed).
async fn handle_message(dispatcher: &Dispatcher, message: &SqsMessage) -> bool {
    let Some(job) = parse_job(message) else { return false };
    match dispatcher.dispatch(&job, receive_count(message)).await {
        Ok(JobOutcome::Done) => false,
        Ok(JobOutcome::Retry { delay_secs }) => {
            if let Some(receipt) = message.receipt_handle.as_deref() {
                if let Err(e) = dispatcher.ctx.queue.delay(receipt, delay_secs).await {
                    // The message still returns after the queue's visibility timeout.
                    tracing::warn!(delivery_id = %job.delivery_id, error = %e, "could not set backoff delay");
                }
            }
            true
        }
        Err(e) => {
            tracing::error!(account_id = %job.account_id, delivery_id = %job.delivery_id, error = %e, "dispatch failed; message will be retried");
            true
        }
    }
}

/// The dispatcher's `main`: config, clients, master key and HTTP client built once.
pub fn run() -> Result<(), lambda_runtime::Error> {
    puck_aws::telemetry::init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let config = puck_aws::Config::from_env()?;
        let dispatcher: &'static Dispatcher = Box::leak(Box::new(puck_aws::build_dispatcher(&config).await?));
        lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            Ok::<_, std::convert::Infallible>(handle(dispatcher, event.payload).await)
        }))
        .await
    })
}
