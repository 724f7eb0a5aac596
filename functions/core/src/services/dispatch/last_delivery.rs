//! When the dispatcher writes a subscription's `last_delivery_status`/`last_delivery_at`, per
//! warm container (docs/storage.md, "No subscription write per delivery").
//!
//! Why coalesced: the attempts of one SQS batch read the same subscription before any of them
//! writes it, and when a subscription's outcomes alternate (a share of its deliveries failing)
//! every attempt would change the recorded status. Written every time, that is a write per
//! attempt on the subscription's state key (DynamoDB allows one key 1,000 WCU/s). So a container
//! writes a subscription's last delivery when it differs from what is recorded (as read, or as
//! this container last wrote) or is [`LAST_DELIVERY_REFRESH_SECS`] old, and then at most once per
//! [`LAST_DELIVERY_COALESCE_MS`]: an outcome within that period of the container's previous write
//! is held and written when the period ends ([`Decision::Defer`], by a task the dispatcher
//! starts, [`Background`]; without one, by the container's next attempt after the period), the
//! newest held outcome winning.

use crate::ids::{AccountId, SubscriptionId};
use crate::model::{DeliveryStatus, Subscription};
use crate::ports::SubscriptionStore;
use crate::rate::Pause;
use crate::time::Timestamp;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How old a subscription's `last_delivery_at` may get before an attempt with the same outcome
/// writes it again. Between, a steady stream of deliveries costs no subscription write at all.
pub const LAST_DELIVERY_REFRESH_SECS: i64 = 60;

/// The shortest time between two writes of one subscription's last delivery by one container.
pub const LAST_DELIVERY_COALESCE_MS: i64 = 1000;

/// Subscriptions whose last-delivery write this container remembers; past it the map starts over.
const LAST_DELIVERY_WRITES_MAX: usize = 10_000;

/// Whether an attempt ending in `status` must update the subscription's `last_delivery_*`: when
/// the status differs from the recorded one, or the recorded time is over
/// [`LAST_DELIVERY_REFRESH_SECS`] old (so `last_delivery_at` is at most that stale).
pub fn last_delivery_is_stale(sub: &Subscription, status: DeliveryStatus, now: Timestamp) -> bool {
    sub.last_delivery_status.as_deref() != Some(status.as_str())
        || sub.last_delivery_at.is_none_or(|at| now.unix_ms() - at.unix_ms() >= LAST_DELIVERY_REFRESH_SECS * 1000)
}

/// What to do with an attempt's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write it now.
    Write,
    /// Held: write what [`LastDeliveryWrites::take_pending`] gives after `after_ms`.
    Defer {
        /// Milliseconds until the coalescing period of the previous write ends.
        after_ms: u64,
    },
    /// Nothing to write (recorded already, or held with a write already scheduled).
    Nothing,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// What this container last wrote (or claimed to write), with the outcome's time.
    written: (DeliveryStatus, Timestamp),
    /// The newest outcome held back since.
    pending: Option<(DeliveryStatus, Timestamp)>,
    /// Whether a timer will write `pending`.
    scheduled: bool,
}

type Key = (AccountId, SubscriptionId);

/// The last delivery each subscription was given by this container's writes, and what is held.
#[derive(Default)]
pub struct LastDeliveryWrites(Mutex<HashMap<Key, Entry>>);

impl LastDeliveryWrites {
    /// What an attempt of `sub` (as read) ending in `status` at `now` writes. A
    /// [`Decision::Write`] claims the write: [`Self::release`] it if the write fails.
    pub fn decide(&self, sub: &Subscription, status: DeliveryStatus, now: Timestamp) -> Decision {
        let mut map = self.0.lock().expect("last-delivery lock");
        let key = (sub.account_id.clone(), sub.id.clone());
        let entry = map.get_mut(&key);
        let mine = entry.as_ref().map(|e| e.written);
        let newer_mine = mine.filter(|(_, at)| sub.last_delivery_at.is_none_or(|read| *at >= read));
        let recorded = match newer_mine {
            Some((st, at)) => Some((st.as_str(), at)),
            None => sub.last_delivery_status.as_deref().zip(sub.last_delivery_at),
        };
        let fresh = recorded.is_some_and(|(st, at)| {
            st == status.as_str() && now.unix_ms() - at.unix_ms() < LAST_DELIVERY_REFRESH_SECS * 1000
        });
        match entry {
            Some(e) if fresh => {
                e.pending = None;
                Decision::Nothing
            }
            None if fresh => Decision::Nothing,
            Some(e) if now.unix_ms() - e.written.1.unix_ms() < LAST_DELIVERY_COALESCE_MS => {
                e.pending = Some((status, now));
                if e.scheduled {
                    return Decision::Nothing;
                }
                e.scheduled = true;
                let left = LAST_DELIVERY_COALESCE_MS - (now.unix_ms() - e.written.1.unix_ms());
                Decision::Defer { after_ms: left.max(1) as u64 }
            }
            _ => {
                if map.len() >= LAST_DELIVERY_WRITES_MAX {
                    map.clear();
                }
                map.insert(key, Entry { written: (status, now), pending: None, scheduled: false });
                Decision::Write
            }
        }
    }

    /// The outcome held for the subscription, if any, now to be written (claimed as written).
    pub fn take_pending(&self, account: &AccountId, id: &SubscriptionId) -> Option<(DeliveryStatus, Timestamp)> {
        let mut map = self.0.lock().expect("last-delivery lock");
        let e = map.get_mut(&(account.clone(), id.clone()))?;
        e.scheduled = false;
        let pending = e.pending.take()?;
        e.written = pending;
        Some(pending)
    }

    /// Forgets a claim whose write failed, so the next attempt writes.
    pub fn release(&self, account: &AccountId, id: &SubscriptionId) {
        self.0.lock().expect("last-delivery lock").remove(&(account.clone(), id.clone()));
    }
}

/// Runs a future on its own task (tokio's `spawn` in the functions): how the dispatcher writes a
/// held outcome when its period ends without holding up the attempt that held it.
pub type Background = Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>;

/// Writes the outcome held for `key` after `after_ms` (a Lambda container frozen meanwhile
/// writes it when it next runs; the store keeps a newer outcome written since).
pub fn write_later(
    writes: Arc<LastDeliveryWrites>,
    store: Arc<dyn SubscriptionStore>,
    pause: Arc<dyn Pause>,
    key: (AccountId, SubscriptionId),
    after_ms: u64,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        pause.pause(after_ms).await;
        let (account, id) = key;
        let Some((status, at)) = writes.take_pending(&account, &id) else { return };
        if let Err(e) = store.record_last_delivery(&account, &id, status, at).await {
            writes.release(&account, &id);
            tracing::warn!(account_id = %account, subscription_id = %id, error = %e, "could not write the subscription's last delivery");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_sub() -> Subscription {
        let mut sub = crate::fakes::subscription_for(&["finding.*"]);
        sub.last_delivery_status = None;
        sub.last_delivery_at = None;
        sub
    }

    #[test]
    fn last_delivery_is_written_on_a_change_or_once_a_minute() {
        let mut sub = fresh_sub();
        let now = Timestamp(1_700_000_000_000);
        assert!(last_delivery_is_stale(&sub, DeliveryStatus::Succeeded, now));
        sub.last_delivery_status = Some("succeeded".into());
        sub.last_delivery_at = Some(now.plus_seconds(-59));
        assert!(!last_delivery_is_stale(&sub, DeliveryStatus::Succeeded, now));
        assert!(last_delivery_is_stale(&sub, DeliveryStatus::Failed, now));
        sub.last_delivery_at = Some(now.plus_seconds(-LAST_DELIVERY_REFRESH_SECS));
        assert!(last_delivery_is_stale(&sub, DeliveryStatus::Succeeded, now));
    }

    #[test]
    fn a_batch_of_attempts_that_read_the_same_stale_subscription_writes_it_once() {
        let sub = fresh_sub();
        let now = Timestamp(1_700_000_000_000);
        let writes = LastDeliveryWrites::default();
        let decided: Vec<Decision> = (0..10).map(|_| writes.decide(&sub, DeliveryStatus::Succeeded, now)).collect();
        assert_eq!(decided.iter().filter(|d| **d == Decision::Write).count(), 1, "one write for the batch");
        assert!(decided[1..].iter().all(|d| *d == Decision::Nothing), "{decided:?}");
        let mut other = fresh_sub();
        other.id = SubscriptionId::generate(1);
        assert_eq!(writes.decide(&other, DeliveryStatus::Failed, now), Decision::Write, "per subscription");
        writes.release(&sub.account_id, &sub.id);
        assert_eq!(writes.decide(&sub, DeliveryStatus::Succeeded, now), Decision::Write, "a failed write is retried");
    }

    #[test]
    fn alternating_outcomes_write_at_most_once_a_second_and_the_newest_outcome_last() {
        let sub = fresh_sub();
        let t0 = Timestamp(1_700_000_000_000);
        let writes = LastDeliveryWrites::default();
        assert_eq!(writes.decide(&sub, DeliveryStatus::Succeeded, t0), Decision::Write);
        // Nine of ten attempts succeed, one fails, for a second: one timer, no other write.
        let mut decided = Vec::new();
        for ms in 1..1000 {
            let status = if ms % 10 == 0 { DeliveryStatus::Failed } else { DeliveryStatus::Succeeded };
            decided.push(writes.decide(&sub, status, Timestamp(t0.unix_ms() + ms)));
        }
        assert_eq!(decided.iter().filter(|d| **d == Decision::Write).count(), 0);
        let deferred: Vec<_> = decided.iter().filter(|d| matches!(d, Decision::Defer { .. })).collect();
        assert_eq!(deferred, [&Decision::Defer { after_ms: 990 }], "the first change waits out the second");
        // The last outcome (a success at 999 ms) equals the one written: nothing is held.
        assert_eq!(writes.take_pending(&sub.account_id, &sub.id), None);

        let t1 = Timestamp(t0.unix_ms() + 1500);
        assert_eq!(writes.decide(&sub, DeliveryStatus::Failed, t1), Decision::Write, "a second on: written");
        let t2 = Timestamp(t1.unix_ms() + 100);
        assert_eq!(writes.decide(&sub, DeliveryStatus::Succeeded, t2), Decision::Defer { after_ms: 900 });
        assert_eq!(writes.take_pending(&sub.account_id, &sub.id), Some((DeliveryStatus::Succeeded, t2)));
        let t3 = Timestamp(t2.unix_ms() + 10);
        assert_eq!(writes.decide(&sub, DeliveryStatus::Succeeded, t3), Decision::Nothing, "as written by the timer");
    }

    #[test]
    fn a_newer_record_read_from_another_container_counts_as_recorded() {
        let mut sub = fresh_sub();
        let t0 = Timestamp(1_700_000_000_000);
        let writes = LastDeliveryWrites::default();
        assert_eq!(writes.decide(&sub, DeliveryStatus::Failed, t0), Decision::Write);
        sub.last_delivery_status = Some("succeeded".into());
        sub.last_delivery_at = Some(t0.plus_seconds(5));
        let t1 = t0.plus_seconds(6);
        assert_eq!(writes.decide(&sub, DeliveryStatus::Succeeded, t1), Decision::Nothing);
        let later = t1.plus_seconds(LAST_DELIVERY_REFRESH_SECS);
        assert_eq!(writes.decide(&sub, DeliveryStatus::Succeeded, later), Decision::Write, "refreshed once a minute");
    }
}
