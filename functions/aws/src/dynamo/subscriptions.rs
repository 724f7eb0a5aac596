//! Subscriptions: `pk=ACCT#<account>`, `sk=SUB#<id>`. Ids are time-ordered, so a query over the
//! `SUB#` range lists them oldest first without an index.
//!
//! The runtime state (last delivery, failing clock) is not on this item but on one of its own
//! ([`state`]), merged in by the reads that show a subscription (`get`, `list_page`); fan-out
//! (`list_all`) does not read it. Auto-disable (`disabled_reason`, `disabled_at`, `active`) is one
//! transaction checking the clock on the state item. A PATCH is an UpdateItem of the settings
//! only, conditioned on the `version` it read, so it neither undoes another PATCH or an
//! auto-disable nor rewrites the attempt path's fields.
//!
//! A payload filter (`filters.payload`) is stored as its JSON text rather than as a map: its
//! operands may be numbers DynamoDB cannot hold (`1e300`, more than 38 digits) or objects with
//! an empty key, and a filter must never make its subscription unwritable.
//!
//! IAM: dynamodb:PutItem, GetItem, BatchGetItem, Query, DeleteItem, UpdateItem, and in
//! transactions PutItem, DeleteItem, UpdateItem, ConditionCheckItem.

mod state;

use super::item::{from_item, to_item, Item};
use super::{
    account_pk, corrupt, is_condition_failed, is_transaction_condition_failed, is_transaction_conflict, key,
    prefix_end, s, unavailable, Query, Table,
};
use crate::fault_gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use puck_core::ids::{AccountId, SubscriptionId};
use puck_core::model::{DeliveryStatus, Subscription, DISABLED_FAILING};
use puck_core::ports::{SettingsWrite, StoreError, StoreResult, SubscriptionStore};
use puck_core::time::Timestamp;
use serde_json::Value;
use state::{attr, StateUpdate, Written};
use std::collections::HashMap;

const SK_PREFIX: &str = "SUB#";

/// [`SubscriptionStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoSubscriptionStore {
    table: Table,
}

impl DynamoSubscriptionStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { table: Table::new(client, table_name, 0) }
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.table = self.table.with_faults(faults);
        self
    }
}

pub(crate) fn sub_sk(id: &SubscriptionId) -> String {
    format!("{SK_PREFIX}{id}")
}

/// Where the payload filter sits in a subscription's JSON shape.
const PAYLOAD_FILTER: &str = "/filters/payload";

/// The attributes of a subscription (without keys), its payload filter as JSON text.
fn stored_attributes(sub: &Subscription) -> StoreResult<Item> {
    let mut shape = serde_json::to_value(sub).map_err(|e| corrupt("subscription", e))?;
    if let Some(payload) = shape.pointer_mut(PAYLOAD_FILTER) {
        *payload = Value::String(payload.to_string());
    }
    to_item(&shape).map_err(|e| corrupt("subscription", e))
}

/// The stored item of a subscription.
pub(crate) fn subscription_item(sub: &Subscription) -> StoreResult<Item> {
    let mut item = stored_attributes(sub)?;
    item.extend(key(account_pk(&sub.account_id), sub_sk(&sub.id)));
    Ok(item)
}

fn decode(item: &Item) -> StoreResult<Subscription> {
    let mut shape: Value = from_item(item).map_err(|e| corrupt("subscription", e))?;
    if let Some(payload) = shape.pointer_mut(PAYLOAD_FILTER) {
        if let Value::String(text) = payload {
            *payload = serde_json::from_str(text).map_err(|e| corrupt("subscription", e))?;
        }
    }
    serde_json::from_value(shape).map_err(|e| corrupt("subscription", e))
}

#[async_trait]
impl SubscriptionStore for DynamoSubscriptionStore {
    async fn insert(&self, sub: &Subscription) -> StoreResult<()> {
        self.table.faults.dynamo()?;
        let put = Put::builder().table_name(&self.table.name).set_item(Some(subscription_item(sub)?)).build();
        let put = put.map_err(|_| StoreError::Corrupt("subscription put could not be built".into()))?;
        self.table
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(state::put_new(&self.table, &sub.account_id, &sub.id)?)
            .send()
            .await
            .map_err(|e| unavailable("TransactWriteItems subscription", &e))?;
        Ok(())
    }

    async fn get(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        let (item, state_item) = tokio::try_join!(
            self.table.get_item("GetItem subscription", account_pk(account), sub_sk(id)),
            self.table.get_item("GetItem subscription state", state::state_pk(account, id), state::STATE_SK.into()),
        )?;
        let Some(item) = item else { return Ok(None) };
        let mut sub = decode(&item)?;
        state::merge(&mut sub, state_item.as_ref())?;
        Ok(Some(sub))
    }

    async fn list_page(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&SubscriptionId>,
    ) -> StoreResult<(Vec<Subscription>, Option<SubscriptionId>)> {
        let lo = after.map_or_else(|| SK_PREFIX.to_owned(), sub_sk);
        let q =
            Query { key_condition: "pk = :pk AND sk BETWEEN :lo AND :hi".into(), forward: true, ..Query::default() }
                .value(":pk", s(account_pk(account)))
                .value(":lo", s(lo.clone()))
                .value(":hi", s(prefix_end(SK_PREFIX)));
        // BETWEEN is inclusive: one extra to make up for `after` itself, one to see if more follow.
        let items = self.table.query("Query subscriptions", &q, Some(limit + 1)).await?;
        let mut subs = Vec::with_capacity(limit + 1);
        for item in &items {
            if after.is_some() && super::attr_str(item, "sk") == Some(lo.as_str()) {
                continue;
            }
            subs.push(decode(item)?);
        }
        let more = subs.len() > limit;
        subs.truncate(limit);
        state::merge_all(&self.table, &mut subs).await?;
        let next = if more { subs.last().map(|s| s.id.clone()) } else { None };
        Ok((subs, next))
    }

    /// Without the runtime state: fan-out does not read it (the last delivery is the subscription
    /// item's own from before the upgrade, if any, and the clock unset).
    async fn list_all(&self, account: &AccountId) -> StoreResult<Vec<Subscription>> {
        let q = Query { key_condition: "pk = :pk AND begins_with(sk, :p)".into(), forward: true, ..Query::default() }
            .value(":pk", s(account_pk(account)))
            .value(":p", s(SK_PREFIX));
        let items = self.table.query("Query subscriptions", &q, None).await?;
        items.iter().map(decode).collect()
    }

    async fn update_settings(
        &self,
        sub: &Subscription,
        read_version: u64,
        restart_failing_clock: bool,
    ) -> StoreResult<SettingsWrite> {
        self.table.faults.dynamo()?;
        if restart_failing_clock {
            // Before the settings: a read between the two writes then sees the old settings (a
            // disabled subscription, the old URL) with no clock, never new settings with the old
            // clock, which would announce the first success after a re-enable as a recovery
            // (test `operate::an_always_failing_subscription_is_disabled_announced_and_can_be_re_enabled`).
            // If the settings are then refused, the clock has restarted early: harmless.
            self.clear_failing(&sub.account_id, &sub.id).await?;
        }
        let (update, names, mut values) = settings_update(sub, restart_failing_clock)?;
        values.insert(":rv".to_owned(), AttributeValue::N(read_version.to_string()));
        values.insert(":nv".to_owned(), AttributeValue::N((read_version + 1).to_string()));
        let res = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(account_pk(&sub.account_id), sub_sk(&sub.id))))
            .update_expression(update)
            // Records written before versions existed have none: they are at version 0.
            .condition_expression("attribute_exists(pk) AND (version = :rv OR attribute_not_exists(version))")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match res {
            Ok(_) => Ok(SettingsWrite::Written),
            Err(e) if is_condition_failed(&e) => {
                let op = "GetItem subscription after a refused update";
                let exists = self.table.get_item(op, account_pk(&sub.account_id), sub_sk(&sub.id)).await?.is_some();
                Ok(if exists { SettingsWrite::Changed } else { SettingsWrite::Gone })
            }
            Err(e) => Err(unavailable("UpdateItem subscription settings", &e)),
        }
    }

    async fn delete(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        // The subscription and its state item go together, so no state is left behind; a state
        // write racing it finds no item and creates none (see `state`).
        for round in 0..5u32 {
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20u64 << round)).await;
            }
            let del = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table.name)
                .set_key(Some(key(account_pk(account), sub_sk(id))))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(|_| StoreError::Corrupt("subscription delete could not be built".into()))?;
            let res = self
                .table
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(del).build())
                .transact_items(state::delete_with(&self.table, account, id)?)
                .send()
                .await;
            match res {
                Ok(_) => return Ok(true),
                Err(e) if is_transaction_condition_failed(&e, 0) => return Ok(false),
                Err(e) if is_transaction_conflict(&e) => continue,
                Err(e) => return Err(unavailable("TransactWriteItems subscription delete", &e)),
            }
        }
        Err(StoreError::Unavailable("TransactWriteItems subscription delete: transaction conflicts persisted".into()))
    }

    async fn record_last_delivery(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        status: DeliveryStatus,
        at: Timestamp,
    ) -> StoreResult<()> {
        let values = HashMap::from([(":st".to_owned(), s(status.as_str())), (":at".to_owned(), attr(&at)?)]);
        let u = StateUpdate {
            op: "UpdateItem subscription state",
            update: "SET last_delivery_status = :st, last_delivery_at = :at",
            // A write delayed past a newer one (another container's) does not undo it.
            condition: Some("attribute_not_exists(last_delivery_at) OR last_delivery_at <= :at"),
            values,
            create_missing: true,
        };
        state::update(&self.table, account, id, &u).await.map(|_| ())
    }

    async fn mark_failing(&self, account: &AccountId, id: &SubscriptionId, since: Timestamp) -> StoreResult<bool> {
        let values =
            HashMap::from([(":fs".to_owned(), attr(&since)?), (":one".to_owned(), AttributeValue::N("1".into()))]);
        let u = StateUpdate {
            op: "UpdateItem subscription state failing",
            update: "SET failing_since = :fs, consecutive_failures = :one",
            condition: Some("attribute_not_exists(failing_since)"),
            values,
            create_missing: true,
        };
        Ok(matches!(state::update(&self.table, account, id, &u).await?, Written::Yes(_)))
    }

    async fn clear_failing(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<()> {
        // No state item: no clock to clear (one on an item from before the upgrade is not read).
        let u = StateUpdate {
            op: "UpdateItem subscription state failing",
            update: "REMOVE failing_since, consecutive_failures",
            condition: None,
            values: HashMap::new(),
            create_missing: false,
        };
        state::update(&self.table, account, id, &u).await.map(|_| ())
    }

    async fn count_failure(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        limit: u32,
    ) -> StoreResult<Option<u32>> {
        let values = HashMap::from([
            (":fs".to_owned(), attr(&failing_since)?),
            (":one".to_owned(), AttributeValue::N("1".into())),
            (":limit".to_owned(), AttributeValue::N(limit.to_string())),
        ]);
        let u = StateUpdate {
            op: "UpdateItem subscription state failures",
            update: "ADD consecutive_failures :one",
            condition: Some(
                "failing_since = :fs AND (attribute_not_exists(consecutive_failures) OR consecutive_failures < :limit)",
            ),
            values,
            create_missing: false,
        };
        match state::update(&self.table, account, id, &u).await? {
            Written::Yes(attributes) => {
                let count = attributes.as_ref().and_then(|a| a.get("consecutive_failures"));
                let n = count.and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u32>().ok());
                n.map(Some).ok_or_else(|| corrupt("subscription state", "consecutive_failures is not a count"))
            }
            Written::No => Ok(None),
        }
    }

    async fn disable_failing(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        let values = HashMap::from([
            (":at".to_owned(), attr(&at)?),
            (":no".to_owned(), AttributeValue::Bool(false)),
            (":yes".to_owned(), AttributeValue::Bool(true)),
            (":why".to_owned(), s(DISABLED_FAILING)),
            (":one".to_owned(), AttributeValue::N("1".into())),
        ]);
        // The clock is on the state item, the flag on the subscription's: one transaction (rare).
        let res = self
            .table
            .client
            .transact_write_items()
            .transact_items(state::check_failing_since(&self.table, account, id, failing_since)?)
            .transact_items(state::update_sub(
                &self.table,
                account,
                id,
                "SET active = :no, disabled_reason = :why, disabled_at = :at, updated_at = :at ADD version :one",
                "attribute_exists(pk) AND active = :yes",
                values,
            )?)
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_transaction_condition_failed(&e, 0) || is_transaction_condition_failed(&e, 1) => Ok(false),
            Err(e) if is_transaction_conflict(&e) => Ok(false),
            Err(e) => Err(unavailable("TransactWriteItems subscription disable", &e)),
        }
    }
}

/// Attributes a settings write leaves as stored: keys and identity, the attempt path's
/// bookkeeping (last delivery, failing clock and its count), and the version (set from the condition's).
const NOT_SETTINGS: &[&str] = &[
    "pk",
    "sk",
    "id",
    "account_id",
    "created_at",
    "last_delivery_status",
    "last_delivery_at",
    "failing_since",
    "consecutive_failures",
    "version",
];

/// An UpdateItem expression with its attribute names and values.
type UpdateExpression = (String, HashMap<String, String>, HashMap<String, AttributeValue>);

/// The UpdateItem expression that sets every other attribute of `sub` (names as placeholders:
/// several are reserved words), the new version `:nv`, and removes the failing clock on request.
fn settings_update(sub: &Subscription, restart_failing_clock: bool) -> StoreResult<UpdateExpression> {
    let item = stored_attributes(sub)?;
    let (mut names, mut values, mut sets) = (HashMap::new(), HashMap::new(), Vec::new());
    for (i, (name, value)) in item.into_iter().filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str())).enumerate() {
        names.insert(format!("#s{i}"), name);
        values.insert(format!(":s{i}"), value);
        sets.push(format!("#s{i} = :s{i}"));
    }
    let mut update = format!("SET {}, version = :nv", sets.join(", "));
    if restart_failing_clock {
        update.push_str(" REMOVE failing_since, consecutive_failures");
    }
    Ok((update, names, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_carries_keys_and_round_trips() {
        let sub = crate::dynamo::item::tests::subscription();
        let item = subscription_item(&sub).unwrap();
        assert_eq!(super::super::attr_str(&item, "pk"), Some(format!("ACCT#{}", sub.account_id).as_str()));
        assert_eq!(super::super::attr_str(&item, "sk"), Some(format!("SUB#{}", sub.id).as_str()));
        assert_eq!(decode(&item).unwrap(), sub);
        let AttributeValue::M(filters) = &item["filters"] else { panic!("filters is a map") };
        assert!(matches!(&filters["payload"], AttributeValue::S(text) if text.contains("1e+300")), "{filters:?}");
    }
}
