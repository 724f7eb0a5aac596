//! The dead-letter Lambda: messages redriven to the DLQ used up their receives. A delivery with
//! attempts left (its receives went on processing errors) is handed back to the delivery queue;
//! the others become `failed_permanent` (the DLQ listing is
//! `GET /v1/webhooks/deliveries?status=failed_permanent`). See [`dead_letter`].

use crate::{parse_job, process_batch};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use puck_core::services::{dead_letter, Context};
use std::convert::Infallible;

/// Handles one batch; `max_attempts` is `MAX_DELIVERY_ATTEMPTS`.
pub async fn handle(ctx: &Context, max_attempts: u32, event: SqsEvent) -> SqsBatchResponse {
    process_batch(&event, |m| async move {
        let Some(job) = parse_job(m) else { return false };
        match dead_letter::handle_dead_letter(ctx, &job, max_attempts).await {
            Ok(_) => false,
            Err(e) => {
                tracing::error!(delivery_id = %job.delivery_id, error = %e, "could not hand back or mark a dead-lettered delivery");
                true
            }
        }
    })
    .await
}

/// The dead-letter function's `main`: the context built once, then one batch per invocation.
pub fn run() -> Result<(), lambda_runtime::Error> {
    let build = |config: &'static puck_aws::Config| async move {
        anyhow::Ok((puck_aws::build_context(config).await?, config.max_delivery_attempts))
    };
    puck_aws::bootstrap::run_events(build, |(ctx, max_attempts), event| async move {
        Ok::<_, Infallible>(handle(ctx, *max_attempts, event.payload).await)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use puck_core::fakes::{caller, context_with, Memory};
    use puck_core::model::DeliveryStatus;
    use puck_core::services::{events, subscriptions};
    use serde_json::json;
    use std::sync::Arc;

    /// `events/dead-letter.json`: one message that SQS redrove after its 15th receive.
    fn sample_batch() -> SqsEvent {
        serde_json::from_str(include_str!("../../../events/dead-letter.json")).unwrap()
    }

    /// A context holding one pending delivery, and the sample batch pointed at it.
    async fn setup() -> (Context, Arc<Memory>, SqsEvent) {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let caller = caller();
        subscriptions::create(&ctx, &caller, json!({"url": "https://example.com/h", "events": ["chain.confirmed"]}))
            .await
            .unwrap();
        events::publish(&ctx, &caller, json!({"event_type": "chain.confirmed", "data": {}})).await.unwrap();
        let id = mem.deliveries.lock().unwrap().values().next().unwrap().id.clone();
        let mut batch = sample_batch();
        batch.records[0].body = Some(json!({"account_id": caller.account_id, "delivery_id": id}).to_string());
        (ctx, mem, batch)
    }

    /// `MAX_DELIVERY_ATTEMPTS` in these tests.
    const MAX_ATTEMPTS: u32 = 15;

    /// Sets every delivery's recorded attempts.
    fn attempted(mem: &Memory, attempts: u32) {
        mem.deliveries.lock().unwrap().values_mut().for_each(|d| d.attempt_count = attempts);
    }

    /// The batch's message as handed back `n` times already.
    fn handed_back(mut batch: SqsEvent, n: u32) -> SqsEvent {
        let mut body: serde_json::Value = serde_json::from_str(batch.records[0].body.as_deref().unwrap()).unwrap();
        body["handed_back"] = json!(n);
        batch.records[0].body = Some(body.to_string());
        batch
    }

    fn statuses(mem: &Memory) -> Vec<DeliveryStatus> {
        mem.deliveries.lock().unwrap().values().map(|d| d.status).collect()
    }

    #[tokio::test]
    async fn the_sample_message_for_an_unknown_delivery_is_deleted_and_changes_nothing() {
        let (ctx, mem, _) = setup().await;
        let resp = handle(&ctx, MAX_ATTEMPTS, sample_batch()).await;
        assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
        assert_eq!(statuses(&mem), [DeliveryStatus::Pending]);
    }

    #[tokio::test]
    async fn a_dead_lettered_delivery_becomes_failed_permanent_on_it_and_its_subscription() {
        let (ctx, mem, batch) = setup().await;
        attempted(&mem, MAX_ATTEMPTS);
        mem.queue.lock().unwrap().clear();
        assert!(handle(&ctx, MAX_ATTEMPTS, batch.clone()).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::FailedPermanent]);
        let sub_status = mem.subs.lock().unwrap().values().next().unwrap().last_delivery_status.clone();
        assert_eq!(sub_status.as_deref(), Some("failed_permanent"));
        // SQS delivers at least once: the same message again is deleted and changes nothing.
        assert!(handle(&ctx, MAX_ATTEMPTS, batch).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::FailedPermanent]);
    }

    #[tokio::test]
    async fn a_delivery_whose_receives_went_on_processing_errors_is_handed_back_while_attempts_remain() {
        let (ctx, mem, batch) = setup().await;
        attempted(&mem, 2); // 15 receives, 2 attempts: 13 receives were throttled, not attempts
        mem.queue.lock().unwrap().clear();
        assert!(handle(&ctx, MAX_ATTEMPTS, batch).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::Pending], "not dead: it has 13 attempts left");
        let queued = mem.queue.lock().unwrap().clone();
        assert_eq!(queued.len(), 1, "a fresh job on the delivery queue");
        assert_eq!(queued[0].handed_back, 1);
        assert_eq!(mem.deliveries.lock().unwrap().values().next().unwrap().id, queued[0].delivery_id);
    }

    #[tokio::test]
    async fn a_delivery_handed_back_the_most_times_becomes_failed_permanent() {
        let (ctx, mem, batch) = setup().await;
        attempted(&mem, 2);
        mem.queue.lock().unwrap().clear();
        let last = dead_letter::MAX_HAND_BACKS;
        assert!(handle(&ctx, MAX_ATTEMPTS, handed_back(batch, last)).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::FailedPermanent], "the loop ends");
        assert!(mem.queue.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_delivery_that_succeeded_meanwhile_stays_succeeded() {
        let (ctx, mem, batch) = setup().await;
        mem.deliveries.lock().unwrap().values_mut().for_each(|d| d.status = DeliveryStatus::Succeeded);
        assert!(handle(&ctx, MAX_ATTEMPTS, batch).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::Succeeded]);
    }

    #[tokio::test]
    async fn a_malformed_message_is_deleted_not_kept() {
        let (ctx, mem, mut batch) = setup().await;
        batch.records[0].body = Some("not a job".into());
        assert!(handle(&ctx, MAX_ATTEMPTS, batch).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::Pending]);
    }
}
