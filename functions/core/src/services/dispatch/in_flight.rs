//! The in-flight cap: at most `SUBSCRIPTION_MAX_IN_FLIGHT` attempts of one subscription at
//! once, so a slow receiver holds at most that many of the dispatcher's slots.
//!
//! Two counts, so that the common case costs nothing. Within one instance, attempts are counted
//! in memory (no store call). Across instances, an attempt takes one of the subscription's
//! `max_in_flight` slot leases in the shared [`LimitStore`] (one Query, one conditional PutItem,
//! one DeleteItem) unless this instance saw the subscription's last attempt end in less than
//! [`SLOW_ATTEMPT_MS`] (remembered [`MEMORY_SECS`]): a fast receiver's attempts end before they
//! could pile up, so in the steady state they never touch the store (one leased attempt per
//! subscription and instance every [`MEMORY_SECS`]), while a receiver that is slow, or not yet
//! known, is capped from its first attempt. A lease ends by itself at the claim's lease end, so
//! a crashed holder frees its slot. A receiver known fast that turns slow is capped once each
//! instance has seen one slow attempt; until then each instance may start up to its batch of
//! attempts to it (docs/flow-control.md).
//!
//! Waiting is not an attempt: the job's message is hidden for [`Gate::Wait`]'s delay and the
//! delivery is not touched (not even claimed).

use super::JobOutcome;
use crate::error::AppError;
use crate::ids::{AccountId, SubscriptionId};
use crate::limits::{LimitStore, Slot};
use crate::ports::{DeliveryJob, StoreResult};
use crate::time::Timestamp;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// An attempt at least this long marks its subscription slow in this instance.
pub const SLOW_ATTEMPT_MS: u64 = 2_000;
/// How long an instance remembers how fast a subscription's last attempt was.
pub const MEMORY_SECS: i64 = 600;
/// The longest wait asked for a job over the cap (the attempt timeout's order).
pub const MAX_WAIT_SECS: u32 = 30;

type Key = (AccountId, SubscriptionId);

/// What the gate decided for one job.
#[derive(Debug)]
pub enum Gate {
    /// Go ahead; hand the [`Entered`] back to [`InFlight::leave`] when the attempt is over.
    Go(Entered),
    /// The subscription is at its cap: hide the message this long and try again then.
    Wait {
        /// Seconds to hide the job's message.
        delay_secs: u32,
    },
}

/// One attempt inside the cap: its place in this instance's count (freed on drop) and its
/// shared slot, if it took one.
#[derive(Debug)]
pub struct Entered {
    key: Key,
    slot: Option<Slot>,
    started: std::time::Instant,
    _local: LocalGuard,
}

#[derive(Debug)]
struct LocalGuard {
    counts: Arc<Mutex<HashMap<Key, u32>>>,
    key: Key,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("in-flight counts");
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The per-instance state of the cap. One per dispatcher.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: Arc<Mutex<HashMap<Key, u32>>>,
    /// Subscription → (when its last attempt ended, its length in whole seconds).
    speed: Mutex<HashMap<Key, (Timestamp, u32)>>,
}

impl InFlight {
    /// Admits one attempt of `sub` as `holder` (the attempt's id), or says how long to wait.
    #[allow(clippy::too_many_arguments)]
    pub async fn enter(
        &self,
        store: &dyn LimitStore,
        cap: u32,
        account: &AccountId,
        sub: &SubscriptionId,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Gate> {
        let key = (account.clone(), sub.clone());
        let last_secs = self.last_secs(&key, now);
        let wait = Gate::Wait { delay_secs: wait_secs(last_secs) };
        let Some(local) = self.count_in(&key, cap) else { return Ok(wait) };
        let mut slot = None;
        if last_secs.is_none_or(|secs| u64::from(secs) * 1000 >= SLOW_ATTEMPT_MS) {
            slot = take_free_slot(store, cap, &key, holder, now, lease_until).await?;
            if slot.is_none() {
                return Ok(wait);
            }
        }
        Ok(Gate::Go(Entered { key, slot, started: std::time::Instant::now(), _local: local }))
    }

    /// Ends an attempt: frees its shared slot and, when a request was `sent` (not a duplicate
    /// job that found nothing to do), learns how fast the subscription's receiver is.
    pub async fn leave(&self, store: &dyn LimitStore, entered: Entered, sent: bool, now: Timestamp) {
        let took = entered.started.elapsed().as_millis() as u64;
        if sent {
            // Whole seconds, rounded up from the slow threshold on, down below it (fast: 0 or 1).
            let secs = if took >= SLOW_ATTEMPT_MS { took.div_ceil(1000) } else { (took / 1000).min(1) };
            let secs = u32::try_from(secs).unwrap_or(MAX_WAIT_SECS);
            self.speed.lock().expect("subscription speeds").insert(entered.key.clone(), (now, secs));
        }
        if let Some(slot) = &entered.slot {
            let (account, sub) = &entered.key;
            if let Err(e) = store.release_slot(account, sub, slot).await {
                // The lease ends by itself at its `until`.
                tracing::warn!(%account, subscription_id = %sub, error = %e, "could not release an in-flight slot");
            }
        }
    }

    /// How long the subscription's last attempt in this instance took (whole seconds), if it
    /// ended within [`MEMORY_SECS`].
    fn last_secs(&self, key: &Key, now: Timestamp) -> Option<u32> {
        let mut speed = self.speed.lock().expect("subscription speeds");
        match speed.get(key) {
            Some(&(at, secs)) if now.unix_ms() - at.unix_ms() < MEMORY_SECS * 1000 => Some(secs),
            Some(_) => {
                speed.remove(key);
                None
            }
            None => None,
        }
    }

    /// A place in this instance's count, unless `cap` attempts of the subscription already run here.
    fn count_in(&self, key: &Key, cap: u32) -> Option<LocalGuard> {
        let mut counts = self.counts.lock().expect("in-flight counts");
        let n = counts.entry(key.clone()).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(LocalGuard { counts: self.counts.clone(), key: key.clone() })
    }
}

impl super::Dispatcher {
    /// A job over its subscription's in-flight cap: not an attempt, the delivery untouched. Its
    /// message comes back after `delay_secs`; on the message's last receive (the queue would
    /// redrive it) a fresh message is sent instead.
    pub(super) async fn wait(
        &self,
        job: &DeliveryJob,
        receive_count: u32,
        delay_secs: u32,
    ) -> Result<JobOutcome, AppError> {
        tracing::info!(account_id = %job.account_id, delivery_id = %job.delivery_id, subscription_id = ?job.subscription_id, delay_secs, "subscription at its in-flight cap; the delivery waits");
        if receive_count >= self.policy.max_attempts {
            self.ctx.queue.enqueue(std::slice::from_ref(job)).await.map_err(|e| AppError::Unavailable(e.0))?;
            return Ok(JobOutcome::Done);
        }
        Ok(JobOutcome::Retry { delay_secs })
    }
}

/// A wait about as long as the subscription's attempts take, spread by up to a second so the
/// waiting jobs do not all come back at once.
fn wait_secs(last_secs: Option<u32>) -> u32 {
    let base = last_secs.unwrap_or(1).clamp(1, MAX_WAIT_SECS);
    base + u32::from(rand::random::<bool>())
}

/// Takes one of the subscription's `cap` slots not held by a live lease: one Query, then a
/// conditional write on a free slot (a second one if another instance took it first).
async fn take_free_slot(
    store: &dyn LimitStore,
    cap: u32,
    (account, sub): &Key,
    holder: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> StoreResult<Option<Slot>> {
    let live: HashSet<u32> =
        store.slots(account, sub).await?.into_iter().filter(|s| s.until > now).map(|s| s.index).collect();
    let start = rand::random::<u32>() % cap.max(1);
    let free = (0..cap).map(|i| (start + i) % cap).filter(|i| !live.contains(i));
    for index in free.take(2) {
        let slot = Slot { index, holder: holder.to_owned(), until: lease_until };
        if store.take_slot(account, sub, &slot, now).await? {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

impl InFlight {
    /// Remembers the subscription's last attempt as `secs` long, as [`InFlight::leave`] does.
    #[cfg(test)]
    fn saw(&self, account: &AccountId, sub: &SubscriptionId, now: Timestamp, secs: u32) {
        self.speed.lock().expect("subscription speeds").insert((account.clone(), sub.clone()), (now, secs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MemoryLimits;

    fn go(gate: Gate) -> Entered {
        match gate {
            Gate::Go(e) => e,
            Gate::Wait { .. } => panic!("expected to go"),
        }
    }

    #[tokio::test]
    async fn one_instance_counts_in_memory_and_frees_a_place_when_an_attempt_ends() {
        let store = MemoryLimits::default();
        let (a, s) = (AccountId::generate(1), SubscriptionId::generate(1));
        let now = Timestamp(1_700_000_000_000);
        let gate = InFlight::default();
        gate.saw(&a, &s, now, 0);
        let first = go(gate.enter(&store, 2, &a, &s, "t1", now, now.plus_seconds(30)).await.unwrap());
        let _second = go(gate.enter(&store, 2, &a, &s, "t2", now, now.plus_seconds(30)).await.unwrap());
        let third = gate.enter(&store, 2, &a, &s, "t3", now, now.plus_seconds(30)).await.unwrap();
        assert!(matches!(third, Gate::Wait { delay_secs: 1..=2 }), "{third:?}");
        assert!(store.slots(&a, &s).await.unwrap().is_empty(), "a fast subscription never touches the store");
        let unknown = SubscriptionId::generate(2);
        go(gate.enter(&store, 2, &a, &unknown, "t4", now, now.plus_seconds(30)).await.unwrap());
        assert_eq!(store.slots(&a, &unknown).await.unwrap().len(), 1, "one not yet seen fast takes a lease");
        gate.leave(&store, first, true, now).await;
        go(gate.enter(&store, 2, &a, &s, "t5", now, now.plus_seconds(30)).await.unwrap());
    }

    #[tokio::test]
    async fn a_job_that_sent_nothing_does_not_make_its_subscription_look_fast() {
        let store = MemoryLimits::default();
        let (a, s) = (AccountId::generate(1), SubscriptionId::generate(1));
        let now = Timestamp(1_700_000_000_000);
        let gate = InFlight::default();
        let duplicate = go(gate.enter(&store, 2, &a, &s, "t1", now, now.plus_seconds(30)).await.unwrap());
        gate.leave(&store, duplicate, false, now).await;
        go(gate.enter(&store, 2, &a, &s, "t2", now, now.plus_seconds(30)).await.unwrap());
        assert_eq!(store.slots(&a, &s).await.unwrap().len(), 1, "still not known fast: the attempt took a lease");
        let sent = go(gate.enter(&store, 2, &a, &s, "t3", now, now.plus_seconds(30)).await.unwrap());
        gate.leave(&store, sent, true, now).await;
        go(gate.enter(&store, 2, &a, &s, "t4", now, now.plus_seconds(30)).await.unwrap());
        assert_eq!(store.slots(&a, &s).await.unwrap().len(), 1, "a fast attempt seen: no more leases");
    }

    #[tokio::test]
    async fn a_slow_subscription_is_capped_across_instances_by_leases_that_end_by_themselves() {
        let store = MemoryLimits::default();
        let (a, s) = (AccountId::generate(1), SubscriptionId::generate(1));
        let now = Timestamp(1_700_000_000_000);
        let lease = now.plus_seconds(30);
        let (one, two) = (InFlight::default(), InFlight::default());
        one.saw(&a, &s, now, 9);
        two.saw(&a, &s, now, 9);
        let held = go(one.enter(&store, 2, &a, &s, "t1", now, lease).await.unwrap());
        go(two.enter(&store, 2, &a, &s, "t2", now, lease).await.unwrap());
        let over = two.enter(&store, 2, &a, &s, "t3", now, lease).await.unwrap();
        assert!(matches!(over, Gate::Wait { delay_secs: 9..=10 }), "waits about one slow attempt: {over:?}");
        assert!(matches!(one.enter(&store, 2, &a, &s, "t4", now, lease).await.unwrap(), Gate::Wait { .. }));
        one.leave(&store, held, false, now).await;
        go(two.enter(&store, 2, &a, &s, "t5", now, lease).await.unwrap());
        assert!(matches!(one.enter(&store, 2, &a, &s, "t6", now, lease).await.unwrap(), Gate::Wait { .. }));
        // Holders that crashed: their leases end, and the slots are taken again.
        let later = lease.plus_seconds(1);
        let (three, four) = (InFlight::default(), InFlight::default());
        // (Never seen here: capped from the first attempt.)
        go(three.enter(&store, 2, &a, &s, "t7", later, later.plus_seconds(30)).await.unwrap());
        go(four.enter(&store, 2, &a, &s, "t8", later, later.plus_seconds(30)).await.unwrap());
    }
}

#[cfg(test)]
mod dispatcher_tests {
    use crate::backoff::RetryPolicy;
    use crate::fakes::{caller, context_with, Memory};
    use crate::model::DeliveryStatus;
    use crate::ports::{OutboundRequest, SendOutcome, WebhookSender};
    use crate::services::dispatch::{Dispatcher, JobOutcome};
    use crate::services::{events, subscriptions};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A receiver that answers 204 after 200 ms.
    #[derive(Default)]
    struct Slowish(AtomicUsize);

    #[async_trait::async_trait]
    impl WebhookSender for Slowish {
        async fn send(&self, _: &OutboundRequest) -> SendOutcome {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            SendOutcome { status: Some(204), ..SendOutcome::default() }
        }
    }

    #[tokio::test]
    async fn a_job_over_the_cap_waits_without_an_attempt_or_a_claim_and_goes_later() {
        let mem = Arc::new(Memory::default());
        let mut ctx = context_with(mem.clone());
        ctx.settings.limits.max_in_flight = 1;
        let who = caller();
        subscriptions::create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["chain.*"]}))
            .await
            .unwrap();
        for i in 0..2 {
            events::publish(&ctx, &who, json!({"event_type": "chain.confirmed", "data": {"i": i}})).await.unwrap();
        }
        let jobs = mem.queue.lock().unwrap().clone();
        assert!(jobs.iter().all(|j| j.subscription_id.is_some()), "publish names the subscription in the job");
        let policy = RetryPolicy { max_attempts: 5, ..RetryPolicy::default() };
        let sender = Arc::new(Slowish::default());
        let d = Dispatcher::new(ctx.clone(), sender.clone(), policy);
        let now = ctx.clock.now();
        let (a, b) = tokio::join!(d.dispatch(&jobs[0], "m0", 1, now), d.dispatch(&jobs[1], "m1", 1, now));
        let outcomes = [a.unwrap(), b.unwrap()];
        assert!(outcomes.contains(&JobOutcome::Done), "{outcomes:?}");
        assert!(outcomes.iter().any(|o| matches!(o, JobOutcome::Retry { delay_secs: 1..=2 })), "{outcomes:?}");
        assert_eq!(sender.0.load(Ordering::SeqCst), 1, "one attempt at a time");
        let waiting = &jobs[usize::from(outcomes[0] == JobOutcome::Done)];
        let stored = mem.deliveries.lock().unwrap().values().find(|d| d.id == waiting.delivery_id).cloned().unwrap();
        assert_eq!((stored.status, stored.attempt_count), (DeliveryStatus::Pending, 0), "waiting is not an attempt");
        // Its message comes back under another receive: the claim was never taken, so it goes.
        assert_eq!(d.dispatch(waiting, "m1", 2, now).await.unwrap(), JobOutcome::Done);
        assert_eq!(sender.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_job_waiting_on_its_last_receive_goes_back_as_a_fresh_message_instead_of_the_dlq() {
        let mem = Arc::new(Memory::default());
        let mut ctx = context_with(mem.clone());
        ctx.settings.limits.max_in_flight = 1;
        let who = caller();
        subscriptions::create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["chain.*"]}))
            .await
            .unwrap();
        for i in 0..2 {
            events::publish(&ctx, &who, json!({"event_type": "chain.confirmed", "data": {"i": i}})).await.unwrap();
        }
        let jobs: Vec<_> = mem.queue.lock().unwrap().drain(..).collect();
        let policy = RetryPolicy { max_attempts: 5, ..RetryPolicy::default() };
        let d = Dispatcher::new(ctx.clone(), Arc::new(Slowish::default()), policy);
        let now = ctx.clock.now();
        let (a, b) = tokio::join!(d.dispatch(&jobs[0], "m0", 1, now), d.dispatch(&jobs[1], "m1", 5, now));
        assert_eq!((a.unwrap(), b.unwrap()), (JobOutcome::Done, JobOutcome::Done));
        assert_eq!(*mem.queue.lock().unwrap(), vec![jobs[1].clone()], "the waiting job is sent again, fresh");
    }
}

#[cfg(test)]
mod sweeper_job_tests {
    use crate::backoff::RetryPolicy;
    use crate::fakes::{caller, context_with, Memory};
    use crate::ports::{DeliveryJob, OutboundRequest, SendOutcome, WebhookSender};
    use crate::services::dispatch::{Dispatcher, JobOutcome};
    use crate::services::{events, subscriptions};
    use serde_json::json;
    use std::sync::Arc;

    struct Slowish;

    #[async_trait::async_trait]
    impl WebhookSender for Slowish {
        async fn send(&self, _: &OutboundRequest) -> SendOutcome {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            SendOutcome { status: Some(204), ..SendOutcome::default() }
        }
    }

    #[tokio::test]
    async fn a_job_that_does_not_name_its_subscription_is_capped_too() {
        let mem = Arc::new(Memory::default());
        let mut ctx = context_with(mem.clone());
        ctx.settings.limits.max_in_flight = 1;
        let who = caller();
        subscriptions::create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["chain.*"]}))
            .await
            .unwrap();
        for i in 0..2 {
            events::publish(&ctx, &who, json!({"event_type": "chain.confirmed", "data": {"i": i}})).await.unwrap();
        }
        // As the sweeper sends them: the account and the delivery only.
        let jobs: Vec<DeliveryJob> =
            mem.queue.lock().unwrap().drain(..).map(|j| DeliveryJob::new(j.account_id, j.delivery_id)).collect();
        let d =
            Dispatcher::new(ctx.clone(), Arc::new(Slowish), RetryPolicy { max_attempts: 5, ..RetryPolicy::default() });
        let now = ctx.clock.now();
        let (a, b) = tokio::join!(d.dispatch(&jobs[0], "m0", 1, now), d.dispatch(&jobs[1], "m1", 5, now));
        assert_eq!(a.unwrap(), JobOutcome::Done);
        assert_eq!(b.unwrap(), JobOutcome::Done, "on its last receive it is sent again, fresh");
        let fresh = mem.queue.lock().unwrap().clone();
        assert_eq!(fresh.len(), 1);
        assert!(fresh[0].subscription_id.is_some(), "the fresh job names the subscription it read");
    }
}
