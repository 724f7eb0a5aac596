//! Queue and schedule consumers: the dispatcher (delivery queue), the dead-letter function (DLQ),
//! the ingest function (ingest queue) and the sweeper (schedule).
//!
//! Each SQS message is parsed on its own, so one bad message cannot fail its batch; the handlers
//! return only the failed message ids (`ReportBatchItemFailures` must be enabled on the trigger,
//! as template.yaml does), and SQS deletes the rest.

pub mod dead_letter;
pub mod dispatcher;
mod fifo_batch;
pub mod ingest;
pub mod sweeper;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use puck_core::ports::DeliveryJob;

/// The job inside a message, or None for a malformed message (logged; deleted, since retrying a
/// message that cannot parse would only fill the DLQ with noise).
pub(crate) fn parse_job(message: &SqsMessage) -> Option<DeliveryJob> {
    let body = message.body.as_deref().unwrap_or_default();
    match serde_json::from_str(body) {
        Ok(job) => Some(job),
        Err(e) => {
            tracing::error!(message_id = ?message.message_id, error = %e, "malformed delivery job; dropped");
            None
        }
    }
}

/// ApproximateReceiveCount of a message (1 on its first delivery).
pub(crate) fn receive_count(message: &SqsMessage) -> u32 {
    message.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// Runs `keep` on every message of the batch concurrently; the messages for which it returns
/// true are reported as batch item failures (kept by SQS), the others are deleted.
pub(crate) async fn process_batch<'a, F, Fut>(event: &'a SqsEvent, keep: F) -> SqsBatchResponse
where
    F: Fn(&'a SqsMessage) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let results = futures::future::join_all(event.records.iter().map(keep)).await;
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = event
        .records
        .iter()
        .zip(results)
        .filter(|(_, kept)| *kept)
        .filter_map(|(m, _)| m.message_id.clone())
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    resp
}
