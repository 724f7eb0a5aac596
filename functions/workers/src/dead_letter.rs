//! The dead-letter Lambda: messages redriven to the DLQ ran out of attempts; their deliveries
//! become `failed_permanent` (the DLQ listing is `GET /v1/webhooks/deliveries?status=failed_permanent`).

use crate::{parse_job, process_batch};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use puck_core::services::{dead_letter, Context};
use std::convert::Infallible;

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

/// The dead-letter function's `main`: the context built once, then one batch per invocation.
pub fn run() -> Result<(), lambda_runtime::Error> {
    puck_aws::bootstrap::run_events(puck_aws::build_context, |ctx, event| async move {
        Ok::<_, Infallible>(handle(ctx, event.payload).await)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use puck_core::model::DeliveryStatus;
    use puck_core::services::{events, subscriptions};
    use puck_core::testing::{caller, context_with, Memory};
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

    fn statuses(mem: &Memory) -> Vec<DeliveryStatus> {
        mem.deliveries.lock().unwrap().values().map(|d| d.status).collect()
    }

    #[tokio::test]
    async fn the_sample_message_for_an_unknown_delivery_is_deleted_and_changes_nothing() {
        let (ctx, mem, _) = setup().await;
        let resp = handle(&ctx, sample_batch()).await;
        assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
        assert_eq!(statuses(&mem), [DeliveryStatus::Pending]);
    }

    #[tokio::test]
    async fn a_dead_lettered_delivery_becomes_failed_permanent_on_it_and_its_subscription() {
        let (ctx, mem, batch) = setup().await;
        assert!(handle(&ctx, batch.clone()).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::FailedPermanent]);
        let sub_status = mem.subs.lock().unwrap().values().next().unwrap().last_delivery_status.clone();
        assert_eq!(sub_status.as_deref(), Some("failed_permanent"));
        // SQS delivers at least once: the same message again is deleted and changes nothing.
        assert!(handle(&ctx, batch).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::FailedPermanent]);
    }

    #[tokio::test]
    async fn a_delivery_that_succeeded_meanwhile_stays_succeeded() {
        let (ctx, mem, batch) = setup().await;
        mem.deliveries.lock().unwrap().values_mut().for_each(|d| d.status = DeliveryStatus::Succeeded);
        assert!(handle(&ctx, batch).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::Succeeded]);
    }

    #[tokio::test]
    async fn a_malformed_message_is_deleted_not_kept() {
        let (ctx, mem, mut batch) = setup().await;
        batch.records[0].body = Some("not a job".into());
        assert!(handle(&ctx, batch).await.batch_item_failures.is_empty());
        assert_eq!(statuses(&mem), [DeliveryStatus::Pending]);
    }
}
