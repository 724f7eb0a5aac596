//! Per-subscription rate limits: the setting, the token bucket's arithmetic and its port.
//!
//! `rate_limit_per_second` = r means at most r attempts start per second for the subscription,
//! from a token bucket whose burst is r (docs/flow-control.md, "Rate limits"). The bucket is kept as one
//! number, the *theoretical arrival time* `tat` of the generic cell rate algorithm: each attempt
//! reserves the next slot, `tat` moves on by 1/r s, and the slot is never earlier than 1 s before
//! the new `tat`, so an idle bucket lets r attempts go at once and then one every 1/r s.
//!
//! Reserving (rather than refusing and asking again) gives every waiting delivery its own slot in
//! one write: it waits once, for exactly as long as the limit asks, whatever the number of
//! dispatchers. The bucket lives in a store shared by every dispatcher ([`RateBuckets`]; DynamoDB
//! in AWS, one conditional UpdateItem per reservation), so the limit holds across containers.

use crate::ids::{AccountId, SubscriptionId};
use crate::ports::StoreResult;
use crate::time::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// The least `rate_limit_per_second` accepted.
pub const MIN_RATE: u32 = 1;
/// The most `rate_limit_per_second` accepted.
pub const MAX_RATE: u32 = 10_000;
/// Reservations one bucket item takes per second at most, well under DynamoDB's 1,000 writes/s
/// per item: a faster limit is split over several items ([`RateLimit::shards`]).
pub const MAX_RATE_PER_SHARD: u32 = 500;
/// Microseconds per second: the bucket counts in µs so 1/10,000 s is exact.
const MICROS: i64 = 1_000_000;

/// A subscription's `rate_limit_per_second`: an integer in 1..=10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct RateLimit(u32);

impl RateLimit {
    /// Parses the API's value; the error is the 400 message naming the field.
    pub fn parse(n: u64) -> Result<Self, String> {
        u32::try_from(n)
            .ok()
            .filter(|n| (MIN_RATE..=MAX_RATE).contains(n))
            .map(Self)
            .ok_or_else(|| format!("rate_limit_per_second must be an integer from {MIN_RATE} to {MAX_RATE}, or null"))
    }

    /// Attempts per second.
    pub fn per_second(self) -> u32 {
        self.0
    }

    /// How many bucket items share the limit: each holds `per_second / shards` with that burst,
    /// so together they never pass the limit, and none is written over
    /// [`MAX_RATE_PER_SHARD`] times a second.
    pub fn shards(self) -> u32 {
        self.0.div_ceil(MAX_RATE_PER_SHARD)
    }

    /// The rate of one shard's bucket (attempts per second, at least 1).
    pub fn shard_rate(self) -> u32 {
        (self.0 / self.shards()).max(1)
    }
}

impl TryFrom<u32> for RateLimit {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        Self::parse(u64::from(n))
    }
}

impl From<RateLimit> for u32 {
    fn from(r: RateLimit) -> u32 {
        r.0
    }
}

/// One reservation: the bucket's new `tat` and the slot the attempt may start at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The bucket's theoretical arrival time after this reservation, in µs since the epoch.
    pub tat_us: i64,
    /// When the attempt may start: `now` when the bucket has a token, later otherwise.
    pub slot: Timestamp,
}

/// The interval between two slots at `rate` per second, in µs (rounded up: never faster).
pub fn interval_us(rate: u32) -> i64 {
    (MICROS + i64::from(rate) - 1) / i64::from(rate.max(1))
}

/// Reserves the next slot of a bucket of `rate` per second (burst `rate`) whose theoretical
/// arrival time is `tat_us` (None: never used), at `now`.
pub fn reserve(tat_us: Option<i64>, rate: u32, now: Timestamp) -> Reservation {
    let now_us = now.unix_ms() * 1_000;
    let new_tat = tat_us.unwrap_or(now_us).max(now_us) + interval_us(rate);
    let slot_us = (new_tat - MICROS).max(now_us);
    Reservation { tat_us: new_tat, slot: Timestamp((slot_us + 999).div_euclid(1_000)) }
}

/// Where a delivery waiting on its subscription's rate limit goes next, carried by the job that
/// brings it back ([`crate::ports::DeliveryJob::rate_slot`]), so it does not reserve twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateSlot {
    /// The reserved slot: the attempt starts no earlier.
    pub at: Timestamp,
    /// The claim holder of the message that reserved it: the job carrying the slot takes over
    /// that claim, which another message cannot.
    pub holder: String,
}

/// The token buckets of rate-limited subscriptions, shared by every dispatcher. The DynamoDB
/// adapter needs `dynamodb:UpdateItem`.
#[async_trait]
pub trait RateBuckets: Send + Sync {
    /// Reserves the next slot of shard `shard` of the subscription's bucket at `rate` per second
    /// ([`reserve`]), atomically against every other reservation; answers the slot.
    async fn reserve(
        &self,
        account: &AccountId,
        subscription: &SubscriptionId,
        shard: u32,
        rate: u32,
        now: Timestamp,
    ) -> StoreResult<Timestamp>;
}

/// Waits in process: how a FIFO delivery waits for a slot a few seconds ahead, holding its line
/// (docs/flow-control.md, "FIFO order"). The adapters crate gives the dispatcher one on tokio's timer.
#[async_trait]
pub trait Pause: Send + Sync {
    /// Returns after `ms` milliseconds.
    async fn pause(&self, ms: u64);
}

/// [`RateBuckets`] in this process's memory: unit tests, and the default of a dispatcher built
/// without a shared store.
#[derive(Default)]
pub struct MemoryRateBuckets(Mutex<HashMap<(AccountId, SubscriptionId, u32), i64>>);

#[async_trait]
impl RateBuckets for MemoryRateBuckets {
    async fn reserve(
        &self,
        account: &AccountId,
        subscription: &SubscriptionId,
        shard: u32,
        rate: u32,
        now: Timestamp,
    ) -> StoreResult<Timestamp> {
        let mut buckets = self.0.lock().expect("rate buckets lock");
        let key = (account.clone(), subscription.clone(), shard);
        let r = reserve(buckets.get(&key).copied(), rate, now);
        buckets.insert(key, r.tat_us);
        Ok(r.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_1_to_10000_and_names_the_field_otherwise() {
        assert_eq!(RateLimit::parse(1).unwrap().per_second(), 1);
        assert_eq!(RateLimit::parse(10_000).unwrap().per_second(), 10_000);
        for bad in [0, 10_001, u64::MAX] {
            assert!(RateLimit::parse(bad).unwrap_err().starts_with("rate_limit_per_second must be"), "{bad}");
        }
    }

    #[test]
    fn shards_keep_each_item_under_its_write_rate_and_the_sum_under_the_limit() {
        for rate in [1, 2, 499, 500, 501, 999, 1_000, 7_777, 10_000] {
            let r = RateLimit::parse(rate).unwrap();
            assert!(r.shard_rate() <= MAX_RATE_PER_SHARD, "{rate}");
            assert!(u64::from(r.shard_rate() * r.shards()) <= rate, "{rate}");
        }
    }

    #[test]
    fn an_idle_bucket_lets_the_burst_go_at_once_then_one_per_interval() {
        let t0 = Timestamp(1_000_000);
        let mut tat = None;
        let slots: Vec<i64> = (0..40)
            .map(|_| {
                let r = reserve(tat, 2, t0);
                tat = Some(r.tat_us);
                r.slot.unix_ms() - t0.unix_ms()
            })
            .collect();
        assert_eq!(&slots[..4], &[0, 0, 500, 1_000]);
        assert_eq!(slots[39], 19_000, "40 at 2/s: the last starts 19 s after the first");
        assert!(slots.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn no_one_second_window_gets_more_than_burst_plus_rate() {
        // Reservations at random-ish times: count slots in every window of 1 s.
        let mut tat = None;
        let mut slots = Vec::new();
        for i in 0..500i64 {
            let now = Timestamp(1_000_000 + (i * 37) % 900 + i * 3);
            let r = reserve(tat, 5, now);
            tat = Some(r.tat_us);
            slots.push(r.slot.unix_ms());
        }
        slots.sort();
        for (i, s) in slots.iter().enumerate() {
            let in_window = slots[i..].iter().take_while(|t| **t < s + 1_000).count();
            assert!(in_window <= 10, "{in_window} slots in the second after {s}");
        }
    }

    #[test]
    fn a_bucket_idle_for_long_is_full_again_but_not_fuller() {
        let r = reserve(Some(0), 3, Timestamp(50_000));
        assert_eq!(r.slot, Timestamp(50_000));
        assert_eq!(r.tat_us, 50_000_000 + interval_us(3));
    }

    #[tokio::test]
    async fn memory_buckets_are_per_subscription_and_shard() {
        let b = MemoryRateBuckets::default();
        let a = AccountId::generate(1);
        let s1 = SubscriptionId::generate(1);
        let s2 = SubscriptionId::generate(2);
        let now = Timestamp(10_000);
        assert_eq!(b.reserve(&a, &s1, 0, 1, now).await.unwrap(), now);
        assert_eq!(b.reserve(&a, &s1, 0, 1, now).await.unwrap(), now.plus_seconds(1));
        assert_eq!(b.reserve(&a, &s2, 0, 1, now).await.unwrap(), now);
        assert_eq!(b.reserve(&a, &s1, 1, 1, now).await.unwrap(), now);
    }
}
