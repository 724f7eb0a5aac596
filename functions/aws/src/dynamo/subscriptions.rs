//! Subscriptions: `pk=ACCT#<account>`, `sk=SUB#<id>`. Ids are time-ordered, so a query over the
//! `SUB#` range lists them oldest first without an index.
//!
//! Auto-disable's state (`failing_since`, absent when unset; `disabled_reason`, `disabled_at`) is
//! changed by conditional UpdateItems, each written only when the state changes (never per
//! attempt).
//!
//! IAM: dynamodb:PutItem, GetItem, Query, DeleteItem, UpdateItem.

use super::item::{from_item, to_item, value_to_attr, Item};
use super::{account_pk, corrupt, is_condition_failed, key, prefix_end, s, unavailable, Query, Table};
use crate::gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use puck_core::ids::{AccountId, SubscriptionId};
use puck_core::model::{DeliveryStatus, Subscription, DISABLED_FAILING};
use puck_core::ports::{StoreError, StoreResult, SubscriptionStore};
use puck_core::time::Timestamp;
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

fn sub_sk(id: &SubscriptionId) -> String {
    format!("{SK_PREFIX}{id}")
}

/// The stored item of a subscription.
pub(crate) fn subscription_item(sub: &Subscription) -> StoreResult<Item> {
    let mut item = to_item(sub).map_err(|e| corrupt("subscription", e))?;
    item.extend(key(account_pk(&sub.account_id), sub_sk(&sub.id)));
    Ok(item)
}

fn decode(item: &Item) -> StoreResult<Subscription> {
    from_item(item).map_err(|e| corrupt("subscription", e))
}

#[async_trait]
impl SubscriptionStore for DynamoSubscriptionStore {
    async fn insert(&self, sub: &Subscription) -> StoreResult<()> {
        self.table.faults.dynamo()?;
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(subscription_item(sub)?))
            .send()
            .await
            .map_err(|e| unavailable("PutItem subscription", &e))?;
        Ok(())
    }

    async fn get(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        let item = self.table.get_item("GetItem subscription", account_pk(account), sub_sk(id)).await?;
        item.as_ref().map(decode).transpose()
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
        let next = if more { subs.last().map(|s| s.id.clone()) } else { None };
        Ok((subs, next))
    }

    async fn list_all(&self, account: &AccountId) -> StoreResult<Vec<Subscription>> {
        let q = Query { key_condition: "pk = :pk AND begins_with(sk, :p)".into(), forward: true, ..Query::default() }
            .value(":pk", s(account_pk(account)))
            .value(":p", s(SK_PREFIX));
        let items = self.table.query("Query subscriptions", &q, None).await?;
        items.iter().map(decode).collect()
    }

    async fn replace(&self, sub: &Subscription) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        let res = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(subscription_item(sub)?))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("PutItem subscription", &e)),
        }
    }

    async fn delete(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        let out = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .set_key(Some(key(account_pk(account), sub_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem subscription", &e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn record_last_delivery(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        status: DeliveryStatus,
        at: Timestamp,
    ) -> StoreResult<()> {
        let values = HashMap::from([(":st".to_owned(), s(status.as_str())), (":at".to_owned(), attr(&at)?)]);
        let update = "SET last_delivery_status = :st, last_delivery_at = :at";
        self.update_if("UpdateItem subscription", account, id, update, "attribute_exists(pk)", Some(values))
            .await
            .map(|_| ())
    }

    async fn mark_failing(&self, account: &AccountId, id: &SubscriptionId, since: Timestamp) -> StoreResult<bool> {
        let values = HashMap::from([(":fs".to_owned(), attr(&since)?)]);
        let condition = "attribute_exists(pk) AND attribute_not_exists(failing_since)";
        self.update_if(
            "UpdateItem subscription failing",
            account,
            id,
            "SET failing_since = :fs",
            condition,
            Some(values),
        )
        .await
    }

    async fn clear_failing(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<()> {
        self.update_if(
            "UpdateItem subscription failing",
            account,
            id,
            "REMOVE failing_since",
            "attribute_exists(pk)",
            None,
        )
        .await
        .map(|_| ())
    }

    async fn disable_failing(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let values = HashMap::from([
            (":fs".to_owned(), attr(&failing_since)?),
            (":at".to_owned(), attr(&at)?),
            (":no".to_owned(), AttributeValue::Bool(false)),
            (":yes".to_owned(), AttributeValue::Bool(true)),
            (":why".to_owned(), s(DISABLED_FAILING)),
        ]);
        self.update_if(
            "UpdateItem subscription disable",
            account,
            id,
            "SET active = :no, disabled_reason = :why, disabled_at = :at, updated_at = :at",
            "attribute_exists(pk) AND active = :yes AND failing_since = :fs",
            Some(values),
        )
        .await
    }
}

fn attr<T: serde::Serialize>(v: &T) -> StoreResult<AttributeValue> {
    value_to_attr(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl DynamoSubscriptionStore {
    /// One conditional UpdateItem; false when the condition did not hold.
    async fn update_if(
        &self,
        op: &'static str,
        account: &AccountId,
        id: &SubscriptionId,
        update: &str,
        condition: &str,
        values: Option<HashMap<String, AttributeValue>>,
    ) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        let res = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(account_pk(account), sub_sk(id))))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(op, &e)),
        }
    }
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
    }
}
