//! Rate-limit buckets: `pk=ACCT#<account>`, `sk=RATE#<subscription>#<shard>`, one number `tat`
//! (the bucket's theoretical arrival time, µs since the epoch; see `puck_core::rate`), and
//! `expires_at` (TTL) a week on, so the bucket of a deleted or idle subscription goes away.
//!
//! A reservation is one conditional UpdateItem, atomic against every dispatcher in every
//! container, which is what makes the limit hold across them:
//! - backlogged (`tat` ahead of now): `SET tat = tat + interval` if `tat > now`, returning the new
//!   value. Increments never conflict with each other, so concurrent dispatchers all succeed;
//! - idle (`tat` absent or behind): `SET tat = now + interval` if `tat` is absent or `<= now`.
//!
//! Each container remembers which case it last saw per bucket and tries that one first, so a
//! reservation is one write, and two when the bucket changed case since. No read, no retry storm.
//!
//! IAM: dynamodb:UpdateItem.

use super::item::Item;
use super::{account_pk, is_condition_failed, key, n, unavailable};
use crate::fault_gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use puck_core::ids::{AccountId, SubscriptionId};
use puck_core::ports::{StoreError, StoreResult};
use puck_core::rate::{interval_us, RateBuckets};
use puck_core::time::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long an unused bucket item stays (TTL), in seconds.
const BUCKET_TTL_SECS: i64 = 7 * 86_400;
/// Writes one reservation may take before it reports the table unavailable: each failed
/// condition means the bucket changed case in between, which cannot go on for long.
const MAX_TRIES: usize = 6;

/// [`RateBuckets`] on DynamoDB.
pub struct DynamoRateBuckets {
    client: Client,
    table: String,
    faults: FaultGate,
    /// Per bucket, its `tat` after the last reservation this container made: whether it is
    /// still ahead of the clock is the best guess of the bucket's case.
    last_tat: Mutex<HashMap<String, i64>>,
}

impl DynamoRateBuckets {
    /// Buckets in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), faults: FaultGate::default(), last_tat: Mutex::new(HashMap::new()) }
    }

    /// One conditional write; Ok(Some(new tat)) when it applied, Ok(None) when its condition
    /// did not hold.
    async fn try_write(
        &self,
        pk: &str,
        sk: &str,
        backlogged: bool,
        rate: u32,
        now_us: i64,
    ) -> StoreResult<Option<i64>> {
        let interval = interval_us(rate);
        let expires = now_us / 1_000_000 + BUCKET_TTL_SECS;
        let (update, condition, values) = if backlogged {
            (
                "SET tat = tat + :iv, expires_at = :exp",
                "tat > :now",
                HashMap::from([(":iv".to_owned(), n(interval)), (":now".to_owned(), n(now_us))]),
            )
        } else {
            (
                "SET tat = :tat, expires_at = :exp",
                "attribute_not_exists(tat) OR tat <= :now",
                HashMap::from([(":tat".to_owned(), n(now_us + interval)), (":now".to_owned(), n(now_us))]),
            )
        };
        let mut values = values;
        values.insert(":exp".to_owned(), n(expires));
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.to_owned(), sk.to_owned())))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .send()
            .await;
        match res {
            Ok(out) => Ok(Some(tat_of(out.attributes.as_ref()).unwrap_or(now_us + interval))),
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => {
                if matches!(e.as_service_error(), Some(UpdateItemError::ProvisionedThroughputExceededException(_))) {
                    tracing::warn!(sk, "rate bucket throttled");
                }
                Err(unavailable("UpdateItem rate bucket", &e))
            }
        }
    }
}

fn tat_of(item: Option<&Item>) -> Option<i64> {
    item?.get("tat")?.as_n().ok()?.parse().ok()
}

#[async_trait]
impl RateBuckets for DynamoRateBuckets {
    async fn reserve(
        &self,
        account: &AccountId,
        subscription: &SubscriptionId,
        shard: u32,
        rate: u32,
        now: Timestamp,
    ) -> StoreResult<Timestamp> {
        self.faults.dynamo()?;
        let (pk, sk) = (account_pk(account), format!("RATE#{subscription}#{shard}"));
        let cache_key = format!("{pk}/{sk}");
        let now_us = now.unix_ms() * 1_000;
        let last = self.last_tat.lock().expect("bucket cache lock").get(&cache_key).copied();
        let mut backlogged = last.is_some_and(|tat| tat > now_us);
        for _ in 0..MAX_TRIES {
            if let Some(tat) = self.try_write(&pk, &sk, backlogged, rate, now_us).await? {
                let mut cache = self.last_tat.lock().expect("bucket cache lock");
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(cache_key, tat);
                let slot_us = (tat - 1_000_000).max(now_us);
                return Ok(Timestamp((slot_us + 999).div_euclid(1_000)));
            }
            backlogged = !backlogged;
        }
        Err(StoreError::Unavailable("rate bucket kept changing under its reservation".into()))
    }
}
