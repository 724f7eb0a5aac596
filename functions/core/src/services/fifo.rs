//! FIFO subscriptions (docs/flow-control.md, "FIFO order"): the deliveries of a `fifo: true` subscription
//! wait in one line, the subscription's message group on the FIFO delivery queue, and SQS hands
//! the dispatcher a group's next message only once the one before it is deleted. A failed
//! delivery's message is hidden for its backoff, which keeps its group, and so the line, blocked
//! until it succeeds, is dead-lettered or abandoned.
//!
//! A FIFO delivery can still reach the standard queue: the sweeper re-sends lost or expired jobs
//! there, knowing only ids. Sending it from there would pass the line, so the dispatcher moves it
//! to the back of its line instead, and pushes its due time out so the sweeper does not send it
//! again while it waits there.

use super::Context;
use crate::error::AppError;
use crate::model::Delivery;
use crate::ports::DeliveryJob;

/// How long a FIFO delivery moved into its line is left alone by the sweeper: a line can be held
/// by a failing head for the whole retry schedule, and each sweep of a waiting delivery adds a
/// (harmless, but paid) copy to the line.
pub const RESWEEP_AFTER_SECS: i64 = 6 * 3600;

/// Moves a FIFO delivery that came on the standard queue (claimed under `holder`) to the back of
/// its subscription's line: a copy on the FIFO queue that claims under the same name, and the due
/// time pushed [`RESWEEP_AFTER_SECS`] out. The standard message is then done.
pub async fn move_into_line(
    ctx: &Context,
    job: &DeliveryJob,
    delivery: &Delivery,
    holder: &str,
) -> Result<(), AppError> {
    let now = ctx.clock.now();
    let copy = DeliveryJob {
        fifo_group: Some(delivery.subscription_id.clone()),
        claim_as: Some(holder.to_owned()),
        rate_slot: None,
        ..job.clone()
    };
    ctx.deliveries.mark_swept(&delivery.account_id, &delivery.id, now.plus_seconds(RESWEEP_AFTER_SECS), now).await?;
    ctx.queue.enqueue(std::slice::from_ref(&copy)).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
    tracing::info!(
        account_id = %delivery.account_id,
        delivery_id = %delivery.id,
        subscription_id = %delivery.subscription_id,
        "fifo delivery came on the standard queue; moved to the back of its line"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::backoff::RetryPolicy;
    use crate::fakes::{caller, context_with, Memory};
    use crate::model::DeliveryStatus;
    use crate::ports::DeliveryJob;
    use crate::rate::Pause;
    use crate::services::dispatch::{Dispatcher, JobOutcome};
    use crate::services::{events, subscriptions};
    use crate::time::Timestamp;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use crate::fakes::Counting;

    /// Remembers how long it was asked to pause, without waiting.
    #[derive(Default)]
    struct Paused(AtomicU64);

    #[async_trait::async_trait]
    impl Pause for Paused {
        async fn pause(&self, ms: u64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    async fn fifo_sub(extra: Value, n: usize) -> (Dispatcher, Arc<Counting>, Arc<Memory>) {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let caller = caller();
        let mut body = json!({"url": "https://example.com/h", "events": ["chain.confirmed"], "fifo": true});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        subscriptions::create(&ctx, &caller, body).await.unwrap();
        for i in 0..n {
            events::publish(&ctx, &caller, json!({"event_type": "chain.confirmed", "data": {"n": i}})).await.unwrap();
        }
        let sender = Arc::new(Counting::default());
        (Dispatcher::new(ctx, sender.clone(), RetryPolicy::default()), sender, mem)
    }

    fn take_jobs(mem: &Memory) -> Vec<DeliveryJob> {
        std::mem::take(&mut *mem.queue.lock().unwrap())
    }

    #[tokio::test]
    async fn fifo_deliveries_are_enqueued_in_their_subscriptions_group_in_publish_order() {
        let (_, _, mem) = fifo_sub(json!({}), 3).await;
        let jobs = take_jobs(&mem);
        let sub = mem.subs.lock().unwrap().values().next().unwrap().id.clone();
        assert!(jobs.iter().all(|j| j.fifo_group.as_ref() == Some(&sub)), "{jobs:?}");
        let deliveries = mem.deliveries.lock().unwrap();
        let created: Vec<Timestamp> =
            jobs.iter().map(|j| deliveries.values().find(|d| d.id == j.delivery_id).unwrap().created_at).collect();
        assert!(created.windows(2).all(|w| w[0] <= w[1]));
    }

    #[tokio::test]
    async fn a_patch_of_fifo_applies_to_deliveries_created_afterwards_and_tests_never_queue() {
        let (dispatcher, _, mem) = fifo_sub(json!({"fifo": false}), 1).await;
        let ctx = &dispatcher.ctx;
        let caller = crate::model::Caller {
            account_id: mem.subs.lock().unwrap().values().next().unwrap().account_id.clone(),
            ..caller()
        };
        let sub = mem.subs.lock().unwrap().values().next().unwrap().id.clone();
        subscriptions::update(ctx, &caller, sub.as_str(), json!({"fifo": true})).await.unwrap();
        events::publish(ctx, &caller, json!({"event_type": "chain.confirmed", "data": {}})).await.unwrap();
        crate::services::test_events::send_test_event(ctx, &caller, sub.as_str(), None, false).await.unwrap();
        let groups: Vec<bool> = take_jobs(&mem).iter().map(|j| j.fifo_group.is_some()).collect();
        assert_eq!(groups, [false, true, false], "before the PATCH, after it, and the test event");
    }

    #[tokio::test]
    async fn a_fifo_delivery_on_the_standard_queue_is_moved_to_the_back_of_its_line_unsent() {
        let (dispatcher, sender, mem) = fifo_sub(json!({}), 1).await;
        let mut job = take_jobs(&mem).remove(0);
        job.fifo_group = None; // as the sweeper sends it
        let now = Timestamp::now();
        assert_eq!(dispatcher.dispatch(&job, "standard-1", 1, now).await.unwrap(), JobOutcome::Done);
        assert_eq!(sender.0.load(Ordering::SeqCst), 0, "never sent past the line");
        let copy = take_jobs(&mem).remove(0);
        assert!(copy.fifo_group.is_some() && copy.claim_as.as_deref() == Some("standard-1"), "{copy:?}");
        let d = mem.deliveries.lock().unwrap().values().next().unwrap().clone();
        assert!(d.next_attempt_at.unwrap() > now.plus_seconds(super::RESWEEP_AFTER_SECS - 5), "the sweeper leaves it");
        // The copy, in line, claims under the standard message's name and sends.
        assert_eq!(dispatcher.dispatch(&copy, "fifo-1", 1, now).await.unwrap(), JobOutcome::Done);
        assert_eq!(sender.0.load(Ordering::SeqCst), 1);
        let d = mem.deliveries.lock().unwrap().values().next().unwrap().clone();
        assert_eq!((d.status, d.attempt_count), (DeliveryStatus::Succeeded, 1));
    }

    #[tokio::test]
    async fn a_rate_limited_fifo_delivery_waits_for_its_slot_in_place() {
        let (dispatcher, sender, mem) = fifo_sub(json!({"rate_limit_per_second": 1}), 3).await;
        let paused = Arc::new(Paused::default());
        let dispatcher = dispatcher.with_pause(paused.clone());
        let jobs = take_jobs(&mem);
        let now = Timestamp::now();
        for (i, job) in jobs.iter().enumerate() {
            let outcome = dispatcher.dispatch(job, &format!("m{i}"), 1, now).await.unwrap();
            assert_eq!(outcome, JobOutcome::Done);
        }
        assert_eq!(sender.0.load(Ordering::SeqCst), 3, "each sent after pausing in line");
        let ms = paused.0.load(Ordering::SeqCst);
        assert!((2_500..=3_100).contains(&ms), "paused {ms} ms for slots 1 s and 2 s ahead");
        assert!(take_jobs(&mem).is_empty(), "no message of its own: it kept its place");
    }

    #[tokio::test]
    async fn without_an_in_process_pause_a_fifo_delivery_holds_its_message_until_its_slot() {
        let (dispatcher, sender, mem) = fifo_sub(json!({"rate_limit_per_second": 1}), 2).await;
        let jobs = take_jobs(&mem);
        let now = Timestamp::now();
        assert_eq!(dispatcher.dispatch(&jobs[0], "m0", 1, now).await.unwrap(), JobOutcome::Done);
        let held = dispatcher.dispatch(&jobs[1], "m1", 1, now).await.unwrap();
        assert_eq!(held, JobOutcome::Retry { delay_secs: 1 }, "hidden for its backoff-like wait: the line holds");
        assert_eq!(sender.0.load(Ordering::SeqCst), 1);
        let d = mem.deliveries.lock().unwrap().values().find(|d| d.id == jobs[1].delivery_id).unwrap().clone();
        assert_eq!((d.status, d.attempt_count), (DeliveryStatus::Pending, 0));
        assert!(d.next_attempt_at.unwrap() > now);
    }
}
