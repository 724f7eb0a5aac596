//! The dispatcher's rate-limit step: a claimed delivery of a rate-limited subscription either
//! goes now or waits for the slot its bucket reserved ([`crate::rate`]).
//!
//! Waiting is not an attempt (docs/flow-control.md, "Rate limits"): the delivery keeps its status and
//! attempt count, its `next_attempt_at` becomes the slot, and a new message carrying the slot is
//! enqueued with `DelaySeconds` while the current one is deleted. A new message rather than a
//! visibility change of this one, so a wait spends none of the queue's receives (which bound the
//! attempts) and the job itself says that its slot is already reserved: it is never reserved
//! twice. The new message claims the delivery under the old message's name, taking over the claim
//! this one holds; a duplicate message finds the delivery held or not due and is dropped.

use super::Context;
use crate::error::AppError;
use crate::model::{Delivery, DeliveryStatus, Subscription};
use crate::ports::{DeliveryJob, MAX_ENQUEUE_DELAY_SECS};
use crate::rate::{Pause, RateBuckets, RateSlot};
use crate::time::Timestamp;

/// What the rate-limit step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pace {
    /// Send the attempt now.
    Go,
    /// The delivery waits until `until`; its new message is enqueued, this one is done.
    Waiting {
        /// The reserved slot.
        until: Timestamp,
    },
    /// A FIFO delivery whose slot is too far to wait for in process: its message is hidden for
    /// `delay_secs` (it stays at the head of its line) and reserves again when it is back.
    Hold {
        /// Seconds to hide the message.
        delay_secs: u32,
    },
}

/// The longest a FIFO delivery waits in process for its slot: with the attempt timeout it stays
/// well inside the dispatcher's 30 s.
pub const FIFO_MAX_PAUSE_MS: i64 = 10_000;

/// The claim holder a job's attempt is made under: the message that reserved its slot, or the
/// one that moved it into its FIFO line, if any; else the message itself.
pub fn holder<'a>(job: &'a DeliveryJob, message_id: &'a str) -> &'a str {
    job.rate_slot.as_ref().map(|s| s.holder.as_str()).or(job.claim_as.as_deref()).unwrap_or(message_id)
}

/// Decides whether the claimed `delivery` of `sub` goes now under the subscription's rate limit,
/// and when not, hands it to a delayed message. `holder` is the name the delivery is claimed under.
pub async fn pace(
    ctx: &Context,
    buckets: &dyn RateBuckets,
    pause: Option<&dyn Pause>,
    job: &DeliveryJob,
    delivery: &Delivery,
    sub: &Subscription,
    holder: &str,
) -> Result<Pace, AppError> {
    let Some(limit) = sub.rate_limit_per_second else { return Ok(Pace::Go) };
    let now = ctx.clock.now();
    let slot = match &job.rate_slot {
        Some(reserved) => reserved.at,
        None => {
            let shard = shard_of(&delivery.id.to_string(), limit.shards());
            buckets.reserve(&sub.account_id, &sub.id, shard, limit.shard_rate(), now).await?
        }
    };
    if slot <= now {
        return Ok(Pace::Go);
    }
    if job.fifo_group.is_some() {
        // In line: a new message would lose the delivery's place, so it waits where it is.
        return hold_in_line(ctx, pause, delivery, slot, now).await;
    }
    wait(ctx, job, delivery, RateSlot { at: slot, holder: holder.to_owned() }, now).await?;
    Ok(Pace::Waiting { until: slot })
}

/// Moves the delivery's `next_attempt_at` to the slot and enqueues the message that brings it
/// back then (SQS delays at most 15 min: a later slot is reached in several waits, each with the
/// same reservation). The delivery is written first: if the enqueue then fails, this message is
/// retried and the sweeper would find the delivery anyway.
async fn wait(
    ctx: &Context,
    job: &DeliveryJob,
    delivery: &Delivery,
    slot: RateSlot,
    now: Timestamp,
) -> Result<(), AppError> {
    let until = slot.at;
    ctx.deliveries
        .transition(&delivery.account_id, &delivery.id, &DeliveryStatus::IN_FLIGHT, delivery.status, Some(until), now)
        .await?;
    let delay = delay_secs(until, now);
    let next = DeliveryJob { rate_slot: Some(slot), ..job.clone() };
    ctx.queue.enqueue_delayed(&next, delay).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
    tracing::info!(
        account_id = %delivery.account_id,
        delivery_id = %delivery.id,
        subscription_id = %delivery.subscription_id,
        next_attempt_at = %until.rfc3339(),
        delay_secs = delay,
        "delivery waits on its subscription's rate limit"
    );
    Ok(())
}

/// A FIFO delivery's wait: in process when the slot is near (no receive spent, no reservation
/// lost), else its message hidden until the slot, the delivery's `next_attempt_at` saying when.
async fn hold_in_line(
    ctx: &Context,
    pause: Option<&dyn Pause>,
    delivery: &Delivery,
    slot: Timestamp,
    now: Timestamp,
) -> Result<Pace, AppError> {
    let ms = slot.unix_ms() - now.unix_ms();
    if let Some(pause) = pause.filter(|_| ms <= FIFO_MAX_PAUSE_MS) {
        pause.pause(u64::try_from(ms).unwrap_or(0)).await;
        return Ok(Pace::Go);
    }
    ctx.deliveries
        .transition(&delivery.account_id, &delivery.id, &DeliveryStatus::IN_FLIGHT, delivery.status, Some(slot), now)
        .await?;
    Ok(Pace::Hold { delay_secs: delay_secs(slot, now) })
}

/// Whole seconds from `now` until `until`, rounded up (never early), 1 to 900.
pub fn delay_secs(until: Timestamp, now: Timestamp) -> u32 {
    let ms = (until.unix_ms() - now.unix_ms()).max(1);
    u32::try_from((ms + 999) / 1_000).unwrap_or(u32::MAX).clamp(1, MAX_ENQUEUE_DELAY_SECS)
}

/// The bucket shard a delivery reserves from: spread by its id.
fn shard_of(delivery_id: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let h = delivery_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    h % shards
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::RetryPolicy;
    use crate::fakes::{caller, context_with, Memory};
    use crate::services::dispatch::{Dispatcher, JobOutcome};
    use crate::services::{events, subscriptions};
    use serde_json::json;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use crate::fakes::Counting;

    async fn rate_limited(n: usize) -> (Dispatcher, Arc<Counting>, Arc<Memory>) {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let body = json!({"url": "https://example.com/h", "events": ["chain.confirmed"], "rate_limit_per_second": 2});
        let caller = caller();
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
    async fn over_the_rate_deliveries_wait_in_a_delayed_message_without_an_attempt() {
        let (dispatcher, sender, mem) = rate_limited(5).await;
        let now = Timestamp::now();
        for (i, job) in take_jobs(&mem).iter().enumerate() {
            let outcome = dispatcher.dispatch(job, &format!("m{i}"), 1, now).await.unwrap();
            assert_eq!(outcome, JobOutcome::Done, "a waiting delivery's message is deleted");
        }
        assert_eq!(sender.0.load(Ordering::SeqCst), 2, "the burst is the rate");
        let delayed = mem.delayed.lock().unwrap().clone();
        assert_eq!(delayed.iter().map(|(_, d)| *d).collect::<Vec<_>>(), vec![1, 1, 2]);
        for (job, _) in &delayed {
            let slot = job.rate_slot.clone().expect("the new message carries its slot");
            let d = mem.deliveries.lock().unwrap().values().find(|d| d.id == job.delivery_id).unwrap().clone();
            assert_eq!((d.status, d.attempt_count), (DeliveryStatus::Pending, 0), "waiting is not an attempt");
            assert_eq!(d.next_attempt_at, Some(slot.at), "next_attempt_at says when it goes");
            assert!(slot.at > now);
        }
    }

    #[tokio::test]
    async fn a_waiting_delivery_keeps_its_slot_and_a_duplicate_message_is_dropped() {
        let (dispatcher, sender, mem) = rate_limited(3).await;
        let jobs = take_jobs(&mem);
        let now = Timestamp::now();
        for (i, job) in jobs.iter().enumerate() {
            dispatcher.dispatch(job, &format!("m{i}"), 1, now).await.unwrap();
        }
        let (waiting, _) = mem.delayed.lock().unwrap()[0].clone();
        let slot = waiting.rate_slot.clone().unwrap();
        take_jobs(&mem);
        // The duplicate of the waiting delivery's first message: held by the waiting message.
        dispatcher.dispatch(&jobs[2], "m-duplicate", 1, now).await.unwrap();
        assert!(mem.queue.lock().unwrap().is_empty(), "a duplicate reserves nothing and sends nothing");
        // The delayed message, come back early: waits again for the same slot, reserving nothing.
        dispatcher.dispatch(&waiting, "m-new", 1, now).await.unwrap();
        let again = take_jobs(&mem);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].rate_slot.as_ref(), Some(&slot), "the same reservation");
        assert_eq!(sender.0.load(Ordering::SeqCst), 2);
        // At its slot it goes, under the claim it reserved with.
        tokio::time::sleep(std::time::Duration::from_millis(
            (slot.at.unix_ms() - Timestamp::now().unix_ms()).max(0) as u64 + 5,
        ))
        .await;
        dispatcher.dispatch(&again[0], "m-later", 1, Timestamp::now()).await.unwrap();
        assert_eq!(sender.0.load(Ordering::SeqCst), 3);
        let d = mem.deliveries.lock().unwrap().values().find(|d| d.id == waiting.delivery_id).unwrap().clone();
        assert_eq!((d.status, d.attempt_count), (DeliveryStatus::Succeeded, 1));
    }

    #[test]
    fn delays_round_up_and_stay_within_sqs_bounds() {
        let now = Timestamp(10_000);
        assert_eq!(delay_secs(now.plus_ms(1), now), 1);
        assert_eq!(delay_secs(now.plus_ms(1_001), now), 2);
        assert_eq!(delay_secs(now.plus_seconds(5_000), now), 900);
        assert_eq!(delay_secs(now, now), 1);
    }

    #[test]
    fn shards_spread_over_the_range() {
        let seen: std::collections::HashSet<u32> = (0..200).map(|i| shard_of(&format!("dlv_{i}"), 4)).collect();
        assert_eq!(seen.len(), 4);
        assert_eq!(shard_of("dlv_x", 1), 0);
    }
}
