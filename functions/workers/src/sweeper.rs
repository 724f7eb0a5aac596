//! The sweeper Lambda (schedule): re-enqueues in-flight deliveries whose next attempt is overdue,
//! so a crash between the DynamoDB write and the SQS send loses nothing.
//!
//! A run works until the time the invocation has left (the Lambda context's deadline, less
//! [`DEADLINE_MARGIN_MS`]; the local stack passes the template's timeout the same way), taking
//! overdue deliveries round-robin between accounts, and enqueues as it goes: under a backlog each
//! run sends all it can in its time instead of a fixed count.

use puck_core::services::{sweeper, Context};
use puck_core::time::Timestamp;
use puck_core::AppError;
use serde_json::{json, Value};

/// Time kept back from the invocation's deadline for the last enqueue and the response.
pub const DEADLINE_MARGIN_MS: i64 = 5_000;

/// One run; `deadline_ms` is the invocation's deadline (Unix milliseconds).
pub async fn handle(ctx: &Context, grace_secs: i64, deadline_ms: i64, _event: Value) -> Result<Value, AppError> {
    let deadline = Timestamp(deadline_ms - DEADLINE_MARGIN_MS);
    let requeued = sweeper::sweep(ctx, grace_secs, deadline).await?;
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
    use puck_core::fakes::{caller, context_with, Memory};
    use puck_core::ids::{AccountId, DeliveryId};
    use puck_core::model::Delivery;
    use puck_core::services::{events, subscriptions};
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

    /// `n` more overdue copies of the stored delivery for `account`, due `ago_secs` ago.
    fn overdue_copies(mem: &Memory, account: &AccountId, n: usize, ago_secs: i64) {
        let mut all = mem.deliveries.lock().unwrap();
        let template = all.values().next().unwrap().clone();
        let due = Timestamp::now().plus_seconds(-ago_secs);
        for i in 0..n {
            let id = DeliveryId::generate(due.unix_ms() as u64 + i as u64);
            let d = Delivery {
                id: id.clone(),
                account_id: account.clone(),
                next_attempt_at: Some(due),
                ..template.clone()
            };
            all.insert((account.to_string(), id.to_string()), d);
        }
    }

    #[tokio::test]
    async fn a_backlog_of_many_pages_is_drained_in_one_run_and_the_run_stops_at_its_deadline() {
        let (ctx, mem) = setup().await;
        let account = mem.deliveries.lock().unwrap().values().next().unwrap().account_id.clone();
        overdue_copies(&mem, &account, 2_500, GRACE_SECS + 60);
        let past = Timestamp::now().unix_ms();
        assert_eq!(handle(&ctx, GRACE_SECS, past, sample_event()).await.unwrap(), json!({"requeued": 0}));
        let in_time = Timestamp::now().plus_seconds(60).unix_ms();
        assert_eq!(handle(&ctx, GRACE_SECS, in_time, sample_event()).await.unwrap(), json!({"requeued": 2_500}));
        assert_eq!(mem.queue.lock().unwrap().len(), 2_500);
    }

    #[tokio::test]
    async fn overdue_deliveries_are_taken_round_robin_between_accounts() {
        let (ctx, mem) = setup().await;
        let (noisy, quiet) = (AccountId::generate(7), AccountId::generate(8));
        // The noisy account's leftovers are older and fill more than a query's page.
        overdue_copies(&mem, &noisy, sweeper::SCAN_PAGE + 200, GRACE_SECS + 3_600);
        overdue_copies(&mem, &quiet, 3, GRACE_SECS + 60);
        let in_time = Timestamp::now().plus_seconds(60).unix_ms();
        handle(&ctx, GRACE_SECS, in_time, sample_event()).await.unwrap();
        let order: Vec<AccountId> = mem.queue.lock().unwrap().iter().map(|j| j.account_id.clone()).collect();
        assert_eq!(order.len(), sweeper::SCAN_PAGE + 203);
        let quiet_at: Vec<usize> = order.iter().enumerate().filter(|(_, a)| **a == quiet).map(|(i, _)| i).collect();
        assert_eq!(quiet_at, [1, 3, 5], "the quiet account's deliveries go in turn, not after the backlog");
    }

    #[test]
    fn round_robin_takes_one_of_each_account_in_turn_keeping_each_accounts_order() {
        let (a, b) = (AccountId::generate(1), AccountId::generate(2));
        let ids: Vec<DeliveryId> = (0..5).map(|i| DeliveryId::generate(1_700_000_000_000 + i)).collect();
        let items = vec![
            (a.clone(), ids[0].clone()),
            (a.clone(), ids[1].clone()),
            (a.clone(), ids[2].clone()),
            (b.clone(), ids[3].clone()),
            (b.clone(), ids[4].clone()),
            (a.clone(), ids[0].clone()), // seen twice: once
        ];
        let got: Vec<DeliveryId> = sweeper::round_robin(items).into_iter().map(|(_, id)| id).collect();
        assert_eq!(got, [ids[0].clone(), ids[3].clone(), ids[1].clone(), ids[4].clone(), ids[2].clone()]);
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
