//! Deliveries and published events.
//!
//! Delivery: `pk=ACCT#<account>`, `sk=DLV#<id>` (ids are time-ordered, so a reverse query is the
//! newest-first log); `gsi1pk=SUB#<subscription>`, `gsi1sk=<id>` for a subscription's log; while
//! in flight (`pending`/`failed`) also `due_pk=DUE#<0..7>`, `due_at=<next attempt, epoch ms>` so
//! the sparse `due` index holds exactly what the sweeper watches. Sharding the due index 8 ways
//! keeps one hot partition from forming under load. `expires_at` (TTL) is creation + retention.
//!
//! Event: `pk=ACCT#<account>`, `sk=EVT#<event_id>`, written once (the idempotency record).
//!
//! IAM: dynamodb:GetItem, PutItem, UpdateItem, Query (table and `index/*`), BatchWriteItem.

use super::item::{from_item, to_item, value_to_attr, Item};
use super::{account_pk, attr_str, corrupt, is_condition_failed, key, n, prefix_end, s, unavailable, Query, Table};
use crate::gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use puck_core::ids::{time_floor, AccountId, DeliveryId, EventId, SubscriptionId};
use puck_core::model::{attempt_slot, Attempt, Delivery, DeliveryStatus, StoredEvent, MAX_LOGGED_ATTEMPTS};
use puck_core::ports::{AttemptUpdate, DeliveryFilter, DeliveryStore, StoreError, StoreResult};
use puck_core::time::Timestamp;
use std::collections::HashMap;
use std::time::Duration;

const DLV_PREFIX: &str = "DLV#";
/// Number of `due` index partitions.
pub const DUE_SHARDS: u32 = 8;
/// DynamoDB's BatchWriteItem limit.
const BATCH_SIZE: usize = 25;
/// Rounds of retrying unprocessed batch items before giving up.
const BATCH_RETRIES: u32 = 6;

/// [`DeliveryStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDeliveryStore {
    table: Table,
}

impl DynamoDeliveryStore {
    /// `retention_days` sets the TTL of deliveries and event records.
    pub fn new(client: Client, table_name: impl Into<String>, retention_days: i64) -> Self {
        Self { table: Table::new(client, table_name, retention_days) }
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.table = self.table.with_faults(faults);
        self
    }
}

fn dlv_sk(id: &DeliveryId) -> String {
    format!("{DLV_PREFIX}{id}")
}

fn evt_sk(id: &EventId) -> String {
    format!("EVT#{id}")
}

/// The due-index shard of a delivery: FNV-1a of its id, stable across processes and releases.
pub(crate) fn due_shard(id: &DeliveryId) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in id.as_str().bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("DUE#{}", hash % DUE_SHARDS)
}

/// When an in-flight delivery is due: its next attempt time, else `fallback`.
fn due_ms(next_attempt_at: Option<Timestamp>, fallback: Timestamp) -> i64 {
    next_attempt_at.unwrap_or(fallback).unix_ms()
}

/// The stored item of a delivery, with keys, due fields and TTL.
pub(crate) fn delivery_item(d: &Delivery, retention_days: i64) -> StoreResult<Item> {
    let mut item = to_item(d).map_err(|e| corrupt("delivery", e))?;
    item.extend(key(account_pk(&d.account_id), dlv_sk(&d.id)));
    item.insert("gsi1pk".into(), s(format!("SUB#{}", d.subscription_id)));
    item.insert("gsi1sk".into(), s(d.id.as_str()));
    item.insert("expires_at".into(), n(d.created_at.plus_seconds(retention_days * 86_400).unix_seconds()));
    if d.status.is_in_flight() {
        item.insert("due_pk".into(), s(due_shard(&d.id)));
        item.insert("due_at".into(), n(due_ms(d.next_attempt_at, d.updated_at)));
    }
    Ok(item)
}

fn decode(item: &Item) -> StoreResult<Delivery> {
    from_item(item).map_err(|e| corrupt("delivery", e))
}

fn attr<T: serde::Serialize>(v: &T) -> StoreResult<AttributeValue> {
    value_to_attr(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The `SET`/`REMOVE` clauses keeping the due index in step with `status`.
fn due_clauses(
    id: &DeliveryId,
    status: DeliveryStatus,
    next_attempt_at: Option<Timestamp>,
    now: Timestamp,
    values: &mut HashMap<String, AttributeValue>,
) -> (Option<&'static str>, Option<&'static str>) {
    if status.is_in_flight() {
        values.insert(":due_pk".into(), s(due_shard(id)));
        values.insert(":due_at".into(), n(due_ms(next_attempt_at, now)));
        (Some("due_pk = :due_pk, due_at = :due_at"), None)
    } else {
        (None, Some("REMOVE due_pk, due_at"))
    }
}

/// `#st IN (:from0, :from1, …)` over `from`.
fn status_in(from: &[DeliveryStatus], values: &mut HashMap<String, AttributeValue>) -> String {
    let names: Vec<String> = from
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let name = format!(":from{i}");
            values.insert(name.clone(), s(st.as_str()));
            name
        })
        .collect();
    format!("#st IN ({})", names.join(", "))
}

impl DynamoDeliveryStore {
    /// BatchWriteItem in chunks of 25, retrying unprocessed items with a short backoff.
    async fn batch_write(&self, op: &'static str, requests: Vec<WriteRequest>) -> StoreResult<()> {
        self.table.faults.dynamo()?;
        for chunk in requests.chunks(BATCH_SIZE) {
            let mut pending = chunk.to_vec();
            let mut round = 0;
            while !pending.is_empty() {
                if round > 0 {
                    if round > BATCH_RETRIES {
                        tracing::warn!(operation = op, unprocessed = pending.len(), "batch write gave up");
                        return Err(StoreError::Unavailable(format!("dynamodb {op} failed: unprocessed items")));
                    }
                    tokio::time::sleep(Duration::from_millis(25u64 << round.min(6))).await;
                }
                round += 1;
                let out = self
                    .table
                    .client
                    .batch_write_item()
                    .request_items(&self.table.name, pending)
                    .send()
                    .await
                    .map_err(|e| unavailable(op, &e))?;
                pending = out.unprocessed_items.and_then(|mut m| m.remove(&self.table.name)).unwrap_or_default();
            }
        }
        Ok(())
    }
}

/// The status part of a delivery update.
struct StatusChange {
    to: DeliveryStatus,
    next_attempt_at: Option<Timestamp>,
    now: Timestamp,
}

impl DynamoDeliveryStore {
    /// One conditional UpdateItem: sets status, `next_attempt_at`, `updated_at` and the due-index
    /// attributes that go with the new status, plus `extra_set`, only while the status is one of
    /// `from`. False when that condition failed.
    #[allow(clippy::too_many_arguments)]
    async fn update_if_status(
        &self,
        op: &'static str,
        account: &AccountId,
        id: &DeliveryId,
        from: &[DeliveryStatus],
        change: StatusChange,
        extra_set: Option<&str>,
        mut values: HashMap<String, AttributeValue>,
    ) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        values.insert(":to".to_owned(), s(change.to.as_str()));
        values.insert(":nat".to_owned(), attr(&change.next_attempt_at)?);
        values.insert(":now".to_owned(), attr(&change.now)?);
        let (due_set, due_remove) = due_clauses(id, change.to, change.next_attempt_at, change.now, &mut values);
        let mut expr = "SET #st = :to, next_attempt_at = :nat, updated_at = :now".to_owned();
        for clause in [extra_set, due_set].into_iter().flatten() {
            expr.push_str(", ");
            expr.push_str(clause);
        }
        if let Some(remove) = due_remove {
            expr.push(' ');
            expr.push_str(remove);
        }
        let cond = status_in(from, &mut values);
        let mut req = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(account_pk(account), dlv_sk(id))))
            .update_expression(expr)
            .condition_expression(cond)
            .expression_attribute_names("#st", "status");
        if extra_set.is_some_and(|e| e.contains("#att")) {
            req = req.expression_attribute_names("#att", "attempts");
        }
        match req.set_expression_attribute_values(Some(values)).send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(op, &e)),
        }
    }
}

/// The range-key window `[lo, hi]` (bare delivery ids) of a log query. Ids are time-ordered, so
/// `since`/`until` narrow the key range itself and nothing outside the window is read; `before`
/// (the cursor) is inclusive here and dropped from the results.
fn id_window(filter: &DeliveryFilter, before: Option<&DeliveryId>) -> (Option<String>, Option<String>) {
    let lo = filter.since.map(|t| time_floor(DeliveryId::PREFIX, t.unix_ms()));
    let until = filter.until.map(|t| time_floor(DeliveryId::PREFIX, t.unix_ms()));
    let hi = match (before.map(|b| b.as_str().to_owned()), until) {
        (Some(b), Some(u)) => Some(b.min(u)),
        (b, u) => b.or(u),
    };
    (lo, hi)
}

/// The log filters that are not part of the key: event type and id, and `created_at` in
/// `[since, until)` (stored as millisecond RFC 3339 text, which sorts as time).
fn log_filters(filter: &DeliveryFilter, mut q: Query, filters: &mut Vec<&'static str>) -> Query {
    if let Some(t) = &filter.event_type {
        filters.push("event_type = :et");
        q = q.value(":et", s(t.as_str()));
    }
    if let Some(e) = &filter.event_id {
        filters.push("event_id = :eid");
        q = q.value(":eid", s(e.as_str()));
    }
    if let Some(t) = filter.since {
        filters.push("created_at >= :since");
        q = q.value(":since", s(t.rfc3339()));
    }
    if let Some(t) = filter.until {
        filters.push("created_at < :until");
        q = q.value(":until", s(t.rfc3339()));
    }
    q
}

#[async_trait]
impl DeliveryStore for DynamoDeliveryStore {
    async fn find_event(&self, account: &AccountId, event_id: &EventId) -> StoreResult<Option<StoredEvent>> {
        let item = self.table.get_item("GetItem event", account_pk(account), evt_sk(event_id)).await?;
        item.as_ref().map(|i| from_item(i).map_err(|e| corrupt("event", e))).transpose()
    }

    async fn insert_event_if_absent(&self, event: &StoredEvent) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        let mut item = to_item(event).map_err(|e| corrupt("event", e))?;
        item.extend(key(account_pk(&event.account_id), evt_sk(&event.event_id)));
        let expires = Timestamp::now().plus_seconds(self.table.retention_days * 86_400);
        item.insert("expires_at".into(), n(expires.unix_seconds()));
        let res = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("PutItem event", &e)),
        }
    }

    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> StoreResult<()> {
        let mut requests = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let put = PutRequest::builder()
                .set_item(Some(delivery_item(d, self.table.retention_days)?))
                .build()
                .map_err(|_| StoreError::Corrupt("delivery put request could not be built".into()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write("BatchWriteItem deliveries", requests).await
    }

    async fn remove_deliveries(&self, account: &AccountId, ids: &[DeliveryId]) -> StoreResult<()> {
        let mut requests = Vec::with_capacity(ids.len());
        for id in ids {
            let del = DeleteRequest::builder()
                .set_key(Some(key(account_pk(account), dlv_sk(id))))
                .build()
                .map_err(|_| StoreError::Corrupt("delivery delete request could not be built".into()))?;
            requests.push(WriteRequest::builder().delete_request(del).build());
        }
        self.batch_write("BatchWriteItem remove deliveries", requests).await
    }

    async fn get(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        let item = self.table.get_item("GetItem delivery", account_pk(account), dlv_sk(id)).await?;
        item.as_ref().map(decode).transpose()
    }

    async fn list_page(
        &self,
        account: &AccountId,
        filter: &DeliveryFilter,
        limit: usize,
        before: Option<&DeliveryId>,
    ) -> StoreResult<(Vec<Delivery>, Option<DeliveryId>)> {
        let mut filters = Vec::new();
        let mut q = Query { forward: false, ..Query::default() };
        q = q.value(":pk", s(account_pk(account)));
        let (partition, range_attr, range_prefix) = match &filter.subscription_id {
            // The subscription's partition of gsi1; the account check keeps a foreign
            // subscription id from revealing another tenant's log.
            Some(sub) => {
                q.index = Some("gsi1");
                q = q.value(":g", s(format!("SUB#{sub}")));
                filters.push("pk = :pk");
                ("gsi1pk = :g", "gsi1sk", "")
            }
            None => ("pk = :pk", "sk", DLV_PREFIX),
        };
        match id_window(filter, before) {
            (None, None) => {
                q.key_condition = format!("{partition} AND begins_with({range_attr}, :p)");
                q = q.value(":p", s(format!("{range_prefix}{}", DeliveryId::PREFIX)));
            }
            // BETWEEN is inclusive; `before` itself is dropped below.
            (lo, hi) => {
                q.key_condition = format!("{partition} AND {range_attr} BETWEEN :lo AND :hi");
                let lo = lo.unwrap_or_else(|| DeliveryId::PREFIX.to_owned());
                let hi = hi.unwrap_or_else(|| prefix_end(DeliveryId::PREFIX));
                q = q.value(":lo", s(format!("{range_prefix}{lo}"))).value(":hi", s(format!("{range_prefix}{hi}")));
            }
        }
        if let Some(status) = filter.status {
            filters.push("#st = :st");
            q = q.name("#st", "status").value(":st", s(status.as_str()));
        }
        q = log_filters(filter, q, &mut filters);
        if !filters.is_empty() {
            q.filter = Some(filters.join(" AND "));
        }
        let items = self.table.query("Query deliveries", &q, Some(limit + 1)).await?;
        let skip = before.map(dlv_sk);
        let mut out = Vec::with_capacity(limit + 1);
        for item in &items {
            if skip.is_some() && attr_str(item, "sk") == skip.as_deref() {
                continue;
            }
            out.push(decode(item)?);
        }
        let more = out.len() > limit;
        out.truncate(limit);
        let next = if more { out.last().map(|d| d.id.clone()) } else { None };
        Ok((out, next))
    }

    async fn record_attempt(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        attempt: &Attempt,
        update: &AttemptUpdate,
    ) -> StoreResult<bool> {
        self.table.faults.record_attempt()?;
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":ac".to_owned(), attr(&update.attempt_count)?),
            (":lrs".to_owned(), attr(&update.last_response_status)?),
            (":le".to_owned(), attr(&update.last_error)?),
            (":empty".to_owned(), AttributeValue::L(Vec::new())),
            (":one".to_owned(), AttributeValue::L(vec![attr(attempt)?])),
        ]);
        if attempt.number > MAX_LOGGED_ATTEMPTS {
            values.retain(|k, _| k != ":empty" && k != ":one");
            values.insert(":att".to_owned(), attr(attempt)?);
        }
        let change = StatusChange { to: update.status, next_attempt_at: update.next_attempt_at, now: update.updated_at };
        // The first MAX_LOGGED_ATTEMPTS attempts append; later ones overwrite the oldest slot.
        let ring_slot;
        let set = if attempt.number <= MAX_LOGGED_ATTEMPTS {
            "attempt_count = :ac, last_response_status = :lrs, last_error = :le, \
             #att = list_append(if_not_exists(#att, :empty), :one)"
        } else {
            ring_slot = format!(
                "attempt_count = :ac, last_response_status = :lrs, last_error = :le, #att[{}] = :att",
                attempt_slot(attempt.number)
            );
            ring_slot.as_str()
        };
        self.update_if_status("UpdateItem delivery attempt", account, id, &[DeliveryStatus::Pending, DeliveryStatus::Failed], change, Some(set), values)
            .await
    }

    async fn transition(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        from: &[DeliveryStatus],
        to: DeliveryStatus,
        next_attempt_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        if from.is_empty() {
            return Ok(false);
        }
        let change = StatusChange { to, next_attempt_at, now };
        self.update_if_status("UpdateItem delivery transition", account, id, from, change, None, HashMap::new()).await
    }

    async fn in_flight_for_subscription(
        &self,
        account: &AccountId,
        subscription: &SubscriptionId,
    ) -> StoreResult<Vec<DeliveryId>> {
        let q = Query {
            index: Some("gsi1"),
            key_condition: "gsi1pk = :g".into(),
            filter: Some("pk = :pk AND #st IN (:p, :f)".into()),
            projection: Some("#id".into()),
            forward: true,
            ..Query::default()
        }
        .name("#st", "status")
        .name("#id", "id")
        .value(":g", s(format!("SUB#{subscription}")))
        .value(":pk", s(account_pk(account)))
        .value(":p", s(DeliveryStatus::Pending.as_str()))
        .value(":f", s(DeliveryStatus::Failed.as_str()));
        let items = self.table.query("Query in-flight deliveries", &q, None).await?;
        items
            .iter()
            .map(|item| {
                attr_str(item, "id")
                    .and_then(|raw| DeliveryId::parse(raw).ok())
                    .ok_or_else(|| corrupt("delivery", "missing or invalid id"))
            })
            .collect()
    }

    async fn overdue(&self, due_before: Timestamp, limit: usize) -> StoreResult<Vec<(AccountId, DeliveryId)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let queries = (0..DUE_SHARDS).map(|shard| {
            let q = Query {
                index: Some("due"),
                key_condition: "due_pk = :d AND due_at < :before".into(),
                projection: Some("account_id, #id, due_at".into()),
                forward: true,
                ..Query::default()
            }
            .name("#id", "id")
            .value(":d", s(format!("DUE#{shard}")))
            .value(":before", n(due_before.unix_ms()));
            async move { self.table.query("Query due deliveries", &q, Some(limit)).await }
        });
        let mut due: Vec<(i64, AccountId, DeliveryId)> = Vec::new();
        for result in futures::future::join_all(queries).await {
            for item in result? {
                let account = attr_str(&item, "account_id").and_then(|a| AccountId::parse(a).ok());
                let id = attr_str(&item, "id").and_then(|d| DeliveryId::parse(d).ok());
                let at = item.get("due_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
                match (account, id, at) {
                    (Some(account), Some(id), Some(at)) => due.push((at, account, id)),
                    _ => return Err(corrupt("delivery", "due index entry without account, id or due_at")),
                }
            }
        }
        due.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
        due.truncate(limit);
        Ok(due.into_iter().map(|(_, account, id)| (account, id)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_item_has_due_fields_and_ttl() {
        let d = crate::dynamo::item::tests::delivery();
        let item = delivery_item(&d, 30).unwrap();
        assert_eq!(attr_str(&item, "sk"), Some(format!("DLV#{}", d.id).as_str()));
        assert_eq!(attr_str(&item, "gsi1pk"), Some(format!("SUB#{}", d.subscription_id).as_str()));
        assert_eq!(attr_str(&item, "gsi1sk"), Some(d.id.as_str()));
        assert!(attr_str(&item, "due_pk").is_some_and(|p| p.starts_with("DUE#")));
        assert_eq!(item.get("due_at"), Some(&AttributeValue::N("1700000030000".into())));
        assert_eq!(item.get("expires_at"), Some(&AttributeValue::N((1_700_000_000 + 30 * 86_400).to_string())));
        assert_eq!(decode(&item).unwrap(), d);
    }

    #[test]
    fn terminal_item_has_no_due_fields() {
        let mut d = crate::dynamo::item::tests::delivery();
        d.status = DeliveryStatus::Succeeded;
        let item = delivery_item(&d, 30).unwrap();
        assert!(!item.contains_key("due_pk") && !item.contains_key("due_at"));
    }

    #[test]
    fn due_shard_is_stable_and_in_range() {
        let id = DeliveryId::parse("dlv_01hzy0000000000000000000aa").unwrap();
        let shard = due_shard(&id);
        assert_eq!(shard, due_shard(&id));
        let n: u32 = shard.trim_start_matches("DUE#").parse().unwrap();
        assert!(n < DUE_SHARDS);
        let spread: std::collections::HashSet<String> =
            (0..200).map(|i| due_shard(&DeliveryId::generate(1_700_000_000_000 + i))).collect();
        assert_eq!(spread.len(), DUE_SHARDS as usize);
    }
}
