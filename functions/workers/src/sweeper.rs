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

/// The sweeper's `main`: the context built once; a failed sweep fails its invocation (logged).
pub fn run() -> Result<(), lambda_runtime::Error> {
    let build = |config: &'static puck_aws::Config| async move {
        anyhow::Ok((puck_aws::build_context(config).await?, config.sweep_grace_seconds))
    };
    puck_aws::bootstrap::run_events(build, |(ctx, grace_secs), event: lambda_runtime::LambdaEvent<Value>| async move {
        let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        handle(ctx, *grace_secs, deadline_ms, event.payload).await.map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use puck_core::services::{events, subscriptions};
    use puck_core::testing::{caller, context_with, Memory};
    use std::sync::Arc;

    /// `events/sweeper.json`: the EventBridge scheduled event the sweeper runs on.
    fn sample_event() -> Value {
        serde_json::from_str(include_str!("../../../events/sweeper.json")).unwrap()
    }

    const GRACE_SECS: i64 = 300;

    /// A context holding one pending delivery that is due now (its enqueue already done).
    async fn setup() -> (Context, Arc<Memory>) {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let caller = caller();
        subscriptions::create(&ctx, &caller, json!({"url": "https://example.com/h", "events": ["chain.confirmed"]}))
            .await
            .unwrap();
        events::publish(&ctx, &caller, json!({"event_type": "chain.confirmed", "data": {}})).await.unwrap();
        mem.queue.lock().unwrap().clear();
        (ctx, mem)
    }

    #[tokio::test]
    async fn a_delivery_within_the_grace_period_is_left_alone() {
        let (ctx, mem) = setup().await;
        assert_eq!(handle(&ctx, GRACE_SECS, i64::MAX, sample_event()).await.unwrap(), json!({"requeued": 0}));
        assert!(mem.queue.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_overdue_delivery_is_requeued_once_and_its_due_time_pushed_forward() {
        let (ctx, mem) = setup().await;
        let (id, due) = {
            let mut deliveries = mem.deliveries.lock().unwrap();
            let d = deliveries.values_mut().next().unwrap();
            d.next_attempt_at = d.next_attempt_at.map(|t| t.plus_seconds(-(GRACE_SECS + 60)));
            (d.id.clone(), d.next_attempt_at.unwrap())
        };
        assert_eq!(handle(&ctx, GRACE_SECS, i64::MAX, sample_event()).await.unwrap(), json!({"requeued": 1}));
        let queued: Vec<_> = mem.queue.lock().unwrap().iter().map(|j| j.delivery_id.clone()).collect();
        assert_eq!(queued, [id]);
        let pushed = mem.deliveries.lock().unwrap().values().next().unwrap().next_attempt_at.unwrap();
        assert!(pushed > due.plus_seconds(GRACE_SECS), "{pushed:?} vs {due:?}");
        // The message is in flight now: the next run does not enqueue it again.
        assert_eq!(handle(&ctx, GRACE_SECS, i64::MAX, sample_event()).await.unwrap(), json!({"requeued": 0}));
        assert_eq!(mem.queue.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn finished_deliveries_are_never_requeued() {
        let (ctx, mem) = setup().await;
        mem.deliveries.lock().unwrap().values_mut().for_each(|d| {
            d.status = puck_core::model::DeliveryStatus::Succeeded;
            d.next_attempt_at = Some(puck_core::time::Timestamp(0));
        });
        assert_eq!(handle(&ctx, GRACE_SECS, i64::MAX, sample_event()).await.unwrap(), json!({"requeued": 0}));
        assert!(mem.queue.lock().unwrap().is_empty());
    }
}
