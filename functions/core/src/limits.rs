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
    /// Which of the counter's [`counter_shards`] this is; None when it has one (its key is the
    /// account's alone).
    pub shard: Option<u32>,
}

impl Window {
    /// The window of length `secs` holding `now`.
    pub fn at(name: &'static str, secs: i64, now: Timestamp) -> Self {
        let secs = secs.max(1);
        let s = now.unix_seconds();
        Self { name, start: s - s.rem_euclid(secs), secs, shard: None }
    }

    /// This window's counter in shard `shard` of a sharded counter.
    pub fn in_shard(&self, shard: u32) -> Self {
        Self { shard: Some(shard), ..self.clone() }
    }

    /// Whole seconds from `now` until the window ends (at least 1): the `Retry-After` of a refusal.
    pub fn retry_after_secs(&self, now: Timestamp) -> u32 {
        let left_ms = (self.start + self.secs) * 1000 - now.unix_ms();
        u32::try_from((left_ms + 999) / 1000).unwrap_or(1).max(1)
    }
}

/// The most requests per second one shard of an account's rate counter takes when the account
/// publishes at its limit: under half of DynamoDB's 1,000 write units per second per key, so the
/// counter is never the account's hot key, whatever limit it is given.
pub const COUNTER_SHARD_WRITES_PER_SEC: u32 = 400;

/// The most events one request counts at once (a batch): every shard's share of the limit holds
/// at least this many, so any request fits in one shard.
pub const COUNTER_SHARD_MIN_SHARE: u32 = 100;

/// How many shards the counter of a `limit` per `window_secs` has: enough that each takes at most
/// [`COUNTER_SHARD_WRITES_PER_SEC`] requests a second at the limit, few enough that each share
/// holds a whole batch. 1 (one exact counter) for small limits.
pub const fn counter_shards(limit: u32, window_secs: i64) -> u32 {
    let secs = if window_secs < 1 {
        1
    } else if window_secs > u32::MAX as i64 {
        u32::MAX
    } else {
        window_secs as u32
    };
    let by_rate = limit.div_ceil(secs).div_ceil(COUNTER_SHARD_WRITES_PER_SEC);
    let by_share = limit / COUNTER_SHARD_MIN_SHARE;
    let shards = if by_rate < by_share { by_rate } else { by_share };
    if shards < 1 {
        1
    } else if shards > 64 {
        64
    } else {
        shards
    }
}

/// Shard `shard`'s share of `limit` split over `shards`: the shares add up to `limit`.
pub fn shard_share(limit: u32, shards: u32, shard: u32) -> u32 {
    limit / shards + u32::from(shard < limit % shards)
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
        let n = counters.entry(format!("{account}#{}#{}#{:?}", window.name, window.start, window.shard)).or_default();
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
    fn a_counter_has_as_many_shards_as_keep_each_under_400_writes_a_second_and_a_batch_fits_each_share() {
        assert_eq!(counter_shards(30, 60), 1, "the test limit: one exact counter");
        assert_eq!(counter_shards(5, 1), 1);
        assert_eq!(counter_shards(400, 1), 1);
        assert_eq!(counter_shards(1_000, 1), 3);
        assert_eq!(counter_shards(10_000, 1), 25);
        assert_eq!(counter_shards(150, 1), 1, "a share below a batch would refuse a batch of 100 forever");
        for limit in [401, 1_000, 4_321, 10_000, 1_000_000] {
            let shards = counter_shards(limit, 1);
            let shares: Vec<u32> = (0..shards).map(|i| shard_share(limit, shards, i)).collect();
            assert_eq!(shares.iter().sum::<u32>(), limit, "{limit}: the shares add up to the limit");
            assert!(shares.iter().all(|&s| s >= COUNTER_SHARD_MIN_SHARE), "{limit}: {shares:?}");
            let per_shard_writes = limit.div_ceil(shards);
            assert!(shards == 64 || per_shard_writes <= COUNTER_SHARD_WRITES_PER_SEC, "{limit}: {per_shard_writes}");
        }
    }

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
