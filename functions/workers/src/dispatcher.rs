//! The dispatcher Lambda: sends a batch's deliveries concurrently and reports the ones to retry.
//!
//! Backoff is SQS visibility: a failed delivery's message is hidden for the backoff delay with
//! ChangeMessageVisibility and reported as a batch item failure, so SQS keeps it and brings it
//! back; after `maxReceiveCount` receives, redrive moves it to the DLQ.

use crate::{fifo_batch, parse_job, process_batch, receive_count};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use puck_core::services::dispatch::{Dispatcher, JobOutcome};
use puck_core::time::Timestamp;
use std::convert::Infallible;

/// Handles one batch. Never fails as a whole: per-message failures are reported.
/// The batch's receive time is taken as the handler's start: SQS's 12 h visibility window runs
/// from the receive, which the event does not carry (the dispatcher keeps a margin for the gap).
pub async fn handle(dispatcher: &Dispatcher, event: SqsEvent) -> SqsBatchResponse {
    let received_at = dispatcher.ctx.clock.now();
    if fifo_batch::is_fifo(&event) {
        return fifo_batch::process_in_order(&event, |m| handle_message(dispatcher, m, received_at, true)).await;
    }
    process_batch(&event, |m| handle_message(dispatcher, m, received_at, false)).await
}

/// True when the message must be kept (reported as failed).
async fn handle_message(dispatcher: &Dispatcher, message: &SqsMessage, received_at: Timestamp, fifo: bool) -> bool {
    let Some(job) = parse_job(message) else { return false };
    let message_id = message.message_id.as_deref().unwrap_or_default();
    match dispatcher.dispatch(&job, message_id, receive_count(message), received_at).await {
        Ok(JobOutcome::Done) => false,
        Ok(JobOutcome::Retry { delay_secs }) => {
            if let Some(receipt) = message.receipt_handle.as_deref() {
                let queue = &dispatcher.ctx.queue;
                let delayed = if fifo {
                    queue.delay_fifo(receipt, delay_secs).await
                } else {
                    queue.delay(receipt, delay_secs).await
                };
                if let Err(e) = delayed {
                    // The message still returns after the queue's visibility timeout.
                    tracing::warn!(delivery_id = %job.delivery_id, error = %e, "could not set backoff delay");
                }
            }
            true
        }
        Err(e) => {
            // Transient (e.g. DynamoDB throttled past the SDK's retries): the message comes back
            // after the queue's visibility timeout. Not an attempt: the delivery's attempt_count,
            // which the limit counts, is unchanged, so the throttled receive costs no attempt.
            tracing::error!(account_id = %job.account_id, delivery_id = %job.delivery_id, error = %e, "dispatch failed; message will be retried");
            true
        }
    }
}

/// The dispatcher's `main`: config, clients, master key and HTTP client built once.
pub fn run() -> Result<(), lambda_runtime::Error> {
    puck_aws::bootstrap::run_events(puck_aws::build_dispatcher, |dispatcher, event| async move {
        Ok::<_, Infallible>(handle(dispatcher, event.payload).await)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use puck_core::fakes::{context_with, Memory};
    use puck_core::ids::{AccountId, DeliveryId};
    use puck_core::model::Caller;
    use puck_core::ports::{OutboundRequest, SendOutcome, WebhookSender};
    use puck_core::services::{events, subscriptions};
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    /// Answers every request with a fixed status and remembers what it was sent.
    struct FixedSender {
        status: u16,
        sent: Mutex<Vec<OutboundRequest>>,
    }

    #[async_trait::async_trait]
    impl WebhookSender for FixedSender {
        async fn send(&self, request: &OutboundRequest) -> SendOutcome {
            self.sent.lock().unwrap().push(request.clone());
            SendOutcome { status: Some(self.status), ..SendOutcome::default() }
        }
    }

    fn sample_batch() -> SqsEvent {
        serde_json::from_str(include_str!("../../../events/dispatcher.json")).unwrap()
    }

    /// The sample batch with its two messages pointed at real deliveries of `account`.
    fn batch_for(account: &AccountId, deliveries: &[DeliveryId]) -> SqsEvent {
        let mut event = sample_batch();
        for (record, id) in event.records.iter_mut().zip(deliveries) {
            record.body = Some(json!({ "account_id": account, "delivery_id": id }).to_string());
        }
        event
    }

    async fn setup(status: u16) -> (Dispatcher, Arc<FixedSender>, Arc<Memory>, Caller) {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let sender = Arc::new(FixedSender { status, sent: Mutex::new(Vec::new()) });
        let caller = puck_core::fakes::caller();
        subscriptions::create(&ctx, &caller, json!({"url": "https://example.com/h", "events": ["chain.confirmed"]}))
            .await
            .unwrap();
        for n in 0..2 {
            events::publish(&ctx, &caller, json!({"event_type": "chain.confirmed", "data": {"n": n}})).await.unwrap();
        }
        let dispatcher = Dispatcher::new(ctx, sender.clone(), puck_core::backoff::RetryPolicy::default());
        (dispatcher, sender, mem, caller)
    }

    fn delivery_ids(mem: &Memory) -> Vec<DeliveryId> {
        mem.deliveries.lock().unwrap().values().map(|d| d.id.clone()).collect()
    }

    #[tokio::test]
    async fn sample_batch_for_unknown_deliveries_is_deleted_without_sending() {
        let (dispatcher, sender, _, _) = setup(200).await;
        let resp = handle(&dispatcher, sample_batch()).await;
        assert!(resp.batch_item_failures.is_empty());
        assert!(sender.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn successful_sends_are_deleted_and_a_duplicate_message_sends_nothing() {
        let (dispatcher, sender, mem, caller) = setup(204).await;
        let batch = batch_for(&caller.account_id, &delivery_ids(&mem));
        assert!(handle(&dispatcher, batch.clone()).await.batch_item_failures.is_empty());
        assert_eq!(sender.sent.lock().unwrap().len(), 2);
        assert!(handle(&dispatcher, batch).await.batch_item_failures.is_empty());
        assert_eq!(sender.sent.lock().unwrap().len(), 2, "succeeded deliveries are never re-sent");
    }

    #[tokio::test]
    async fn failed_sends_are_reported_so_sqs_keeps_them() {
        let (dispatcher, _, mem, caller) = setup(503).await;
        let batch = batch_for(&caller.account_id, &delivery_ids(&mem));
        let ids: Vec<String> = batch.records.iter().filter_map(|r| r.message_id.clone()).collect();
        let reported: Vec<String> =
            handle(&dispatcher, batch).await.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        assert_eq!(reported, ids);
    }

    #[tokio::test]
    async fn a_delivery_out_of_attempts_is_failed_permanently_without_sending_whatever_the_receive_count() {
        // Its message expired and the sweeper sent it again: SQS's receive count is back at 1.
        let (dispatcher, sender, mem, caller) = setup(503).await;
        for d in mem.deliveries.lock().unwrap().values_mut() {
            d.attempt_count = dispatcher.policy.max_attempts;
        }
        let batch = batch_for(&caller.account_id, &delivery_ids(&mem));
        assert!(handle(&dispatcher, batch).await.batch_item_failures.is_empty(), "the messages are deleted");
        assert!(sender.sent.lock().unwrap().is_empty(), "no attempt past the limit");
        assert!(mem
            .deliveries
            .lock()
            .unwrap()
            .values()
            .all(|d| d.status == puck_core::model::DeliveryStatus::FailedPermanent));
    }

    #[tokio::test]
    async fn the_last_attempt_fails_the_delivery_permanently_on_any_receive() {
        let (dispatcher, _, mem, caller) = setup(503).await;
        for d in mem.deliveries.lock().unwrap().values_mut() {
            d.attempt_count = dispatcher.policy.max_attempts - 1;
        }
        let batch = batch_for(&caller.account_id, &delivery_ids(&mem));
        assert!(handle(&dispatcher, batch).await.batch_item_failures.is_empty());
        let deliveries = mem.deliveries.lock().unwrap();
        assert!(deliveries.values().all(|d| d.status == puck_core::model::DeliveryStatus::FailedPermanent
            && d.attempt_count == dispatcher.policy.max_attempts));
    }

    #[tokio::test]
    async fn a_malformed_message_does_not_fail_its_batch() {
        let (dispatcher, _, _, _) = setup(200).await;
        let mut batch = sample_batch();
        batch.records[0].body = Some("not json".into());
        assert!(handle(&dispatcher, batch).await.batch_item_failures.is_empty());
    }
}
