//! Flow limits: what one account may ask of the service, and how many attempts of one
//! subscription may run at once (docs/flow-control.md).
//!
//! Both kinds must hold across every Lambda instance, so the counts live in the store behind
//! [`LimitStore`]: a counter per account and window (one conditional write per request, never
//! one per event) and, for subscriptions whose attempts are slow, one lease item per in-flight
//! slot. [`MemoryLimits`] is the same port in memory, for unit tests.

use crate::ids::{AccountId, SubscriptionId};
use crate::ports::StoreResult;
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// The limits, from `ACCOUNT_PUBLISH_PER_SECOND`, `ACCOUNT_TESTS_PER_MINUTE`,
/// `ACCOUNT_MAX_SUBSCRIPTIONS` and `SUBSCRIPTION_MAX_IN_FLIGHT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events one account may publish per second (each event of a batch counts).
    pub publish_per_second: u32,
    /// `POST …/test` calls one account may make per minute.
    pub tests_per_minute: u32,
    /// Subscriptions one account may have.
    pub max_subscriptions: u32,
    /// Attempts of one subscription that may run at once.
    pub max_in_flight: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { publish_per_second: 1_000, tests_per_minute: 30, max_subscriptions: 1_000, max_in_flight: 10 }
    }
}

/// A fixed window of a rate limit: the counter `name` of an account between `start` and
/// `start + secs` (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// What is counted: `publish` or `test`.
    pub name: &'static str,
    /// Start of the window, unix seconds, a multiple of `secs`.
    pub start: i64,
    /// Length of the window in seconds.
    pub secs: i64,
}

impl Window {
    /// The window of length `secs` holding `now`.
    pub fn at(name: &'static str, secs: i64, now: Timestamp) -> Self {
        let secs = secs.max(1);
        let s = now.unix_seconds();
        Self { name, start: s - s.rem_euclid(secs), secs }
    }

    /// Whole seconds from `now` until the window ends (at least 1): the `Retry-After` of a refusal.
    pub fn retry_after_secs(&self, now: Timestamp) -> u32 {
        let left_ms = (self.start + self.secs) * 1000 - now.unix_ms();
        u32::try_from((left_ms + 999) / 1000).unwrap_or(1).max(1)
    }
}

/// One live lease of a subscription's in-flight slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Which of the subscription's `max_in_flight` slots (0-based).
    pub index: u32,
    /// Who holds it (the attempt's id).
    pub holder: String,
    /// When the lease ends if it is not released first (a crashed holder's slot frees itself).
    pub until: Timestamp,
}

/// Counters and leases shared by every instance. DynamoDB adapter: `UpdateItem` (counters),
/// `Query`, `PutItem` and `DeleteItem` (slots), all on the one table, every item with a TTL.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Adds `amount` to the account's counter for `window` if the total stays at most `limit`;
    /// false (and nothing added) otherwise. One conditional write.
    async fn take(&self, account: &AccountId, window: &Window, amount: u32, limit: u32) -> StoreResult<bool>;
    /// The subscription's slot leases as stored (expired ones included).
    async fn slots(&self, account: &AccountId, sub: &SubscriptionId) -> StoreResult<Vec<Slot>>;
    /// Takes `slot` if it is free or its lease ended before `now`; false if another holds it.
    async fn take_slot(
        &self,
        account: &AccountId,
        sub: &SubscriptionId,
        slot: &Slot,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Frees `slot` if `slot.holder` still holds it.
    async fn release_slot(&self, account: &AccountId, sub: &SubscriptionId, slot: &Slot) -> StoreResult<()>;
}

/// [`LimitStore`] in memory: the behaviour the DynamoDB adapter must have, for unit tests.
#[derive(Default)]
pub struct MemoryLimits {
    counters: Mutex<HashMap<String, u64>>,
    slots: Mutex<HashMap<String, Vec<Slot>>>,
}

fn slot_key(account: &AccountId, sub: &SubscriptionId) -> String {
    format!("{account}#{sub}")
}

#[async_trait]
impl LimitStore for MemoryLimits {
    async fn take(&self, account: &AccountId, window: &Window, amount: u32, limit: u32) -> StoreResult<bool> {
        let mut counters = self.counters.lock().expect("limit counters");
        let n = counters.entry(format!("{account}#{}#{}", window.name, window.start)).or_default();
        if *n + u64::from(amount) > u64::from(limit) {
            return Ok(false);
        }
        *n += u64::from(amount);
        Ok(true)
    }

    async fn slots(&self, account: &AccountId, sub: &SubscriptionId) -> StoreResult<Vec<Slot>> {
        Ok(self.slots.lock().expect("slots").get(&slot_key(account, sub)).cloned().unwrap_or_default())
    }

    async fn take_slot(
        &self,
        account: &AccountId,
        sub: &SubscriptionId,
        slot: &Slot,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut all = self.slots.lock().expect("slots");
        let held = all.entry(slot_key(account, sub)).or_default();
        if held.iter().any(|s| s.index == slot.index && s.until > now) {
            return Ok(false);
        }
        held.retain(|s| s.index != slot.index);
        held.push(slot.clone());
        Ok(true)
    }

    async fn release_slot(&self, account: &AccountId, sub: &SubscriptionId, slot: &Slot) -> StoreResult<()> {
        if let Some(held) = self.slots.lock().expect("slots").get_mut(&slot_key(account, sub)) {
            held.retain(|s| !(s.index == slot.index && s.holder == slot.holder));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_retry_after_counts_to_their_end() {
        let now = Timestamp(1_700_000_042_300);
        let w = Window::at("test", 60, now);
        assert_eq!(w.start % 60, 0);
        assert!(w.start <= now.unix_seconds() && now.unix_seconds() < w.start + 60);
        assert_eq!(w.retry_after_secs(now), u32::try_from(w.start + 60 - now.unix_seconds()).unwrap());
        let second = Window::at("publish", 1, now);
        assert_eq!(second.retry_after_secs(now), 1);
    }

    #[tokio::test]
    async fn a_counter_refuses_what_would_pass_the_limit_and_adds_nothing() {
        let store = MemoryLimits::default();
        let a = AccountId::generate(1);
        let w = Window::at("publish", 1, Timestamp(1_700_000_000_000));
        assert!(store.take(&a, &w, 7, 10).await.unwrap());
        assert!(!store.take(&a, &w, 4, 10).await.unwrap(), "7 + 4 > 10");
        assert!(store.take(&a, &w, 3, 10).await.unwrap(), "the refused 4 were not counted");
        assert!(!store.take(&a, &w, 1, 10).await.unwrap());
        let next = Window::at("publish", 1, Timestamp(1_700_000_001_000));
        assert!(store.take(&a, &next, 10, 10).await.unwrap(), "a new window starts at zero");
    }
}
