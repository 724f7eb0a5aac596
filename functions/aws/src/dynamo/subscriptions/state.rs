//! A subscription's runtime state on a partition key of its own: `pk=SUBSTATE#<account>#<id>`,
//! `sk=STATE`, one small item holding `last_delivery_status`/`last_delivery_at` and the failing
//! clock (`failing_since`, absent when unset, and `consecutive_failures`).
//!
//! Why apart from the subscription item: every subscription item of an account shares the key
//! `ACCT#<account>`, so outcome writes there would cap one account at DynamoDB's 1,000 WCU/s per
//! key value when deliveries fail now and then (docs/storage.md, "partition model"). Here each
//! subscription's outcome writes load its own key only.
//!
//! "Only if the subscription still exists": the item is created with the subscription and
//! deleted with it (one transaction), and every write of it is conditioned on the item existing,
//! so a write racing a delete never resurrects it. A subscription created before this item
//! existed (docs/storage.md, the upgrade note) gets it on its first state write, by a transaction
//! that checks the subscription item is still there.
//!
//! IAM: dynamodb:UpdateItem, GetItem, BatchGetItem, PutItem, and in transactions
//! ConditionCheckItem, UpdateItem and DeleteItem.

use super::super::item::{from_item, value_to_attr, Item};
use super::super::{
    account_pk, attr_str, corrupt, is_condition_failed, is_transaction_condition_failed, is_transaction_conflict, key,
    unavailable, Table,
};
use super::sub_sk;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update};
use puck_core::ids::{AccountId, SubscriptionId};
use puck_core::model::Subscription;
use puck_core::ports::{StoreError, StoreResult};
use puck_core::time::Timestamp;
use serde::Deserialize;
use std::collections::HashMap;

/// The sort key of every state item.
pub(crate) const STATE_SK: &str = "STATE";

/// The partition key of a subscription's state item.
pub(crate) fn state_pk(account: &AccountId, id: &SubscriptionId) -> String {
    format!("SUBSTATE#{account}#{id}")
}

/// The key of a subscription's state item.
pub(crate) fn state_key(account: &AccountId, id: &SubscriptionId) -> Item {
    key(state_pk(account, id), STATE_SK.to_owned())
}

/// The state item's attributes as stored (every one optional: a fresh item has only its keys).
#[derive(Debug, Default, Deserialize)]
struct Stored {
    #[serde(default)]
    last_delivery_status: Option<String>,
    #[serde(default)]
    last_delivery_at: Option<Timestamp>,
    #[serde(default)]
    failing_since: Option<Timestamp>,
    #[serde(default)]
    consecutive_failures: u32,
}

/// Puts the runtime state of `state` (an item read, or None when there is none) into `sub`.
/// Without a state item (a subscription from before the upgrade), the last delivery recorded on
/// the subscription item is kept and the failing clock starts afresh (docs/storage.md).
pub(crate) fn merge(sub: &mut Subscription, state: Option<&Item>) -> StoreResult<()> {
    match state {
        Some(item) => {
            let s: Stored = from_item(item).map_err(|e| corrupt("subscription state", e))?;
            sub.last_delivery_status = s.last_delivery_status;
            sub.last_delivery_at = s.last_delivery_at;
            sub.failing_since = s.failing_since;
            sub.consecutive_failures = s.consecutive_failures;
        }
        None => {
            sub.failing_since = None;
            sub.consecutive_failures = 0;
        }
    }
    Ok(())
}

/// Merges into each of `subs` its state item, read with one BatchGetItem per 100.
pub(crate) async fn merge_all(table: &Table, subs: &mut [Subscription]) -> StoreResult<()> {
    if subs.is_empty() {
        return Ok(());
    }
    let keys: Vec<Item> = subs.iter().map(|s| state_key(&s.account_id, &s.id)).collect();
    let found = table.batch_get("BatchGetItem subscription state", &keys).await?;
    let by_pk: HashMap<&str, &Item> = found.iter().filter_map(|i| Some((attr_str(i, "pk")?, i))).collect();
    for sub in subs {
        let pk = state_pk(&sub.account_id, &sub.id);
        merge(sub, by_pk.get(pk.as_str()).copied())?;
    }
    Ok(())
}

pub(crate) fn attr<T: serde::Serialize>(v: &T) -> StoreResult<AttributeValue> {
    value_to_attr(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn built<T, E>(r: Result<T, E>) -> StoreResult<T> {
    r.map_err(|_| StoreError::Corrupt("subscription state transaction could not be built".into()))
}

/// One UpdateItem of a state item: its expression, condition (besides the item existing) and values.
pub(crate) struct StateUpdate<'a> {
    pub op: &'static str,
    pub update: &'a str,
    /// What must hold besides the item existing; None: nothing more.
    pub condition: Option<&'a str>,
    pub values: HashMap<String, AttributeValue>,
    /// Whether a missing item is created (with the subscription still there) and the write retried.
    pub create_missing: bool,
}

/// What a conditional state write did.
pub(crate) enum Written {
    /// Written; the attributes it set when asked for (`UPDATED_NEW`).
    Yes(Option<Item>),
    /// Not written: the condition did not hold, or the subscription is gone.
    No,
}

/// Creates the state item of a subscription that has none, only while the subscription item
/// exists; true when the item exists now (created here or concurrently).
async fn create(table: &Table, account: &AccountId, id: &SubscriptionId) -> StoreResult<bool> {
    let check = built(
        ConditionCheck::builder()
            .table_name(&table.name)
            .set_key(Some(key(account_pk(account), sub_sk(id))))
            .condition_expression("attribute_exists(pk)")
            .build(),
    )?;
    let put = built(
        Put::builder()
            .table_name(&table.name)
            .set_item(Some(state_key(account, id)))
            .condition_expression("attribute_not_exists(pk)")
            .build(),
    )?;
    let res = table
        .client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().condition_check(check).build())
        .transact_items(TransactWriteItem::builder().put(put).build())
        .send()
        .await;
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_transaction_condition_failed(&e, 0) => Ok(false),
        Err(e) if is_transaction_condition_failed(&e, 1) || is_transaction_conflict(&e) => Ok(true),
        Err(e) => Err(unavailable("TransactWriteItems subscription state", &e)),
    }
}

/// A conditional UpdateItem of the state item; with `create_missing`, an item that turns out
/// missing (not a failed condition) is created and the write made once more.
pub(crate) async fn update(
    table: &Table,
    account: &AccountId,
    id: &SubscriptionId,
    u: &StateUpdate<'_>,
) -> StoreResult<Written> {
    table.faults.dynamo()?;
    let condition = match u.condition {
        Some(c) => format!("attribute_exists(pk) AND ({c})"),
        None => "attribute_exists(pk)".to_owned(),
    };
    for round in 0..2 {
        let res = table
            .client
            .update_item()
            .table_name(&table.name)
            .set_key(Some(state_key(account, id)))
            .update_expression(u.update)
            .condition_expression(&condition)
            .set_expression_attribute_values((!u.values.is_empty()).then(|| u.values.clone()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match res {
            Ok(out) => return Ok(Written::Yes(out.attributes)),
            Err(e) if is_condition_failed(&e) => {
                if !u.create_missing || round > 0 {
                    return Ok(Written::No);
                }
                let op = "GetItem subscription state";
                if table.get_item(op, state_pk(account, id), STATE_SK.to_owned()).await?.is_some() {
                    return Ok(Written::No);
                }
                if !create(table, account, id).await? {
                    return Ok(Written::No);
                }
            }
            Err(e) => return Err(unavailable(u.op, &e)),
        }
    }
    Ok(Written::No)
}

/// The Put of a new subscription's (empty) state item, for the transaction that creates it.
pub(crate) fn put_new(table: &Table, account: &AccountId, id: &SubscriptionId) -> StoreResult<TransactWriteItem> {
    let put = built(Put::builder().table_name(&table.name).set_item(Some(state_key(account, id))).build())?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The Delete of a subscription's state item, for the transaction that deletes the subscription.
pub(crate) fn delete_with(table: &Table, account: &AccountId, id: &SubscriptionId) -> StoreResult<TransactWriteItem> {
    let del = built(Delete::builder().table_name(&table.name).set_key(Some(state_key(account, id))).build())?;
    Ok(TransactWriteItem::builder().delete(del).build())
}

/// The condition check "still failing since `:fs`" on the state item, for auto-disable's transaction.
pub(crate) fn check_failing_since(
    table: &Table,
    account: &AccountId,
    id: &SubscriptionId,
    since: Timestamp,
) -> StoreResult<TransactWriteItem> {
    let check = built(
        ConditionCheck::builder()
            .table_name(&table.name)
            .set_key(Some(state_key(account, id)))
            .condition_expression("failing_since = :fs")
            .expression_attribute_values(":fs", attr(&since)?)
            .build(),
    )?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// An Update of the subscription item, for a transaction.
pub(crate) fn update_sub(
    table: &Table,
    account: &AccountId,
    id: &SubscriptionId,
    update: &str,
    condition: &str,
    values: HashMap<String, AttributeValue>,
) -> StoreResult<TransactWriteItem> {
    let u = built(
        Update::builder()
            .table_name(&table.name)
            .set_key(Some(key(account_pk(account), sub_sk(id))))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().update(u).build())
}
