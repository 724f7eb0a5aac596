//! [`LimitStore`] on DynamoDB: rate counters and in-flight slot leases, each under a partition
//! key of its own (never an account's `ACCT#` key, which the configuration reads sit on), every
//! item removed by TTL once it no longer matters.
//!
//! - Counter: `pk = LIMIT#<account>`, `sk = <name>#<window start>`, `n`. One UpdateItem
//!   `ADD n :amount` on the condition that the sum stays within the limit (a refused request
//!   writes nothing, and a failed condition bills one write unit).
//! - Slot lease: `pk = SLOTS#<account>#<subscription>`, `sk = <index>`, `holder`, `until` (ms).
//!   Taken by a PutItem on the condition that the slot is absent or its lease ended; released by
//!   a DeleteItem on the condition that the holder is still the taker.

use super::{attr_str, is_condition_failed, n, s, unavailable, Query, Table};
use crate::fault_gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use puck_core::ids::{AccountId, SubscriptionId};
use puck_core::limits::{LimitStore, Slot, Window};
use puck_core::ports::StoreResult;
use puck_core::time::Timestamp;
use std::collections::HashMap;

/// How long after its window or lease a limit item stays before TTL may remove it.
const KEEP_SECS: i64 = 3_600;

/// [`LimitStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoLimitStore {
    table: Table,
}

impl DynamoLimitStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { table: Table::new(client, table_name, 0) }
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.table = self.table.with_faults(faults);
        self
    }
}

/// `LIMIT#<account>`, or `LIMIT#<account>#<shard>` for a shard of a sharded counter.
fn counter_pk(account: &AccountId, window: &Window) -> String {
    match window.shard {
        None => format!("LIMIT#{account}"),
        Some(shard) => format!("LIMIT#{account}#{shard}"),
    }
}

fn slots_pk(account: &AccountId, sub: &SubscriptionId) -> String {
    format!("SLOTS#{account}#{sub}")
}

fn slot_item(account: &AccountId, sub: &SubscriptionId, slot: &Slot) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(slots_pk(account, sub))),
        ("sk".to_owned(), s(format!("{:04}", slot.index))),
        ("holder".to_owned(), s(slot.holder.clone())),
        ("until".to_owned(), n(slot.until.unix_ms())),
        ("expires_at".to_owned(), n(slot.until.unix_seconds() + KEEP_SECS)),
    ])
}

#[async_trait]
impl LimitStore for DynamoLimitStore {
    async fn take(&self, account: &AccountId, window: &Window, amount: u32, limit: u32) -> StoreResult<bool> {
        if amount > limit {
            return Ok(false);
        }
        self.table.faults.dynamo()?;
        let result = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(counter_pk(account, window)))
            .key("sk", s(format!("{}#{}", window.name, window.start)))
            .update_expression("ADD n :amount SET expires_at = :expires")
            .condition_expression("attribute_not_exists(n) OR n <= :most")
            .expression_attribute_values(":amount", n(i64::from(amount)))
            .expression_attribute_values(":most", n(i64::from(limit - amount)))
            .expression_attribute_values(":expires", n(window.start + window.secs + KEEP_SECS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("UpdateItem(limit counter)", &e)),
        }
    }

    async fn slots(&self, account: &AccountId, sub: &SubscriptionId) -> StoreResult<Vec<Slot>> {
        let q = Query { key_condition: "pk = :pk".into(), forward: true, ..Query::default() }
            .value(":pk", s(slots_pk(account, sub)));
        let items = self.table.query("Query(in-flight slots)", &q, None).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let index = attr_str(item, "sk")?.parse().ok()?;
                let holder = attr_str(item, "holder")?.to_owned();
                let until = match item.get("until") {
                    Some(AttributeValue::N(v)) => v.parse().ok()?,
                    _ => return None,
                };
                Some(Slot { index, holder, until: Timestamp(until) })
            })
            .collect())
    }

    async fn take_slot(
        &self,
        account: &AccountId,
        sub: &SubscriptionId,
        slot: &Slot,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(slot_item(account, sub, slot)))
            .condition_expression("attribute_not_exists(pk) OR #until < :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now.unix_ms()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("PutItem(in-flight slot)", &e)),
        }
    }

    async fn release_slot(&self, account: &AccountId, sub: &SubscriptionId, slot: &Slot) -> StoreResult<()> {
        self.table.faults.dynamo()?;
        let result = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(slots_pk(account, sub)))
            .key("sk", s(format!("{:04}", slot.index)))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(slot.holder.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Its lease ended and another attempt took the slot: nothing of ours to free.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable("DeleteItem(in-flight slot)", &e)),
        }
    }
}
