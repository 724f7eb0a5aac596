//! Deliveries and published events, laid out so that a delivery costs few and small writes and
//! no partition key carries more than a slice of one account's traffic (DynamoDB allows one key
//! value 1,000 WCU/s and 3,000 RCU/s).
//!
//! Delivery (the log): `pk=ACCT#<account>#D<n>`, `sk=DLV#<id>`, where `n` is a stable hash of the
//! id modulo [`LOG_SHARDS`], so a get or update by id is still one call; ids are time-ordered, so
//! a reverse query of every shard, merged, is the newest-first log. `gsi1pk=SUB#<subscription>#<m>`
//! (`m` the same hash modulo [`SUB_SHARDS`]), `gsi1sk=<id>` for a subscription's log, read the
//! same way. A delivery waiting for a retry (or swept, or replayed) also has
//! `due_pk=DUE#<hash mod DUE_SHARDS>`, `due_at=<next attempt, epoch ms>` in the sparse due index;
//! a fresh `pending` one has none: its event record's entry stands for it (`unsent`), so a
//! delivery that succeeds at once never writes that index. The item holds the summary fields only
//! (well under 1 KB): no payload, no attempts, so each status change rewrites a small item.
//!
//! The items read only by key have a partition each, named with the account (tenant isolation):
//! - Event: `pk=EVT#<account>#<event_id>`, `sk=-`, written once (the idempotency record and the
//!   publish's durable point). It holds the ids of its deliveries, its bodies deflate-compressed
//!   (Binary list `bodies`, one per format; a delivery names its own with `body_at`) when they
//!   are at most 32 KiB compressed, and `due_pk=PUB#<n>`/`due_at=<publish>` for the sweeper.
//! - Body: `pk=BODY#<account>#<first delivery id of the body>`, `sk=-`, the Binary attribute
//!   `body`: only for an event whose bodies are larger, written in the same batch as its
//!   deliveries, which point at it with `body_ref`.
//! - Attempt: `pk=ATT#<account>#<delivery id>`, `sk=<number, 10 digits>`, one small item per
//!   attempt that a retry follows; a delivery is read with its newest [`MAX_LOGGED_ATTEMPTS`] (one
//!   reverse Query). The attempt that ends a delivery rides in the update recording it, as a
//!   compressed attribute of the delivery's item (`att<number>`, see `layout::inline_attempt`), so
//!   a delivery that succeeds at once writes no attempt item.
//!
//! Every item's `expires_at` (TTL, epoch seconds) is the value the use case decided. Items of the
//! unsharded layout (everything under `ACCT#<account>`) are not read: see docs/storage.md,
//! "Upgrading a stack with data".
//!
//! Indexes project only what their queries read ([`BY_SUB_INDEX`]: keys and the log filters'
//! attributes that never change, not `status`; [`DUE_INDEX`]: keys), so a delivery's writes cost
//! little index capacity; a page of a subscription's log is then read by key with BatchGetItem,
//! and filtered by status there (`by_status`).
//!
//! IAM: dynamodb:GetItem, PutItem, UpdateItem, DeleteItem, Query (table and `index/*`),
//! BatchGetItem, BatchWriteItem.

use super::item::{from_item, to_item, value_to_attr, Item};
use super::{account_pk, attr_str, corrupt, is_condition_failed, key, n, prefix_end, s, unavailable, Query, Table};
use crate::fault_gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use puck_core::ids::{time_floor, AccountId, DeliveryId, EventId, SubscriptionId};
use puck_core::model::{newest_attempts, Attempt, Delivery, DeliveryStatus, StoredEvent, MAX_LOGGED_ATTEMPTS};
use puck_core::ports::{
    AttemptUpdate, Claim, ClaimRequest, DeliveryFilter, DeliveryStore, RecordWrite, StoreError, StoreResult,
};
use puck_core::time::Timestamp;
use std::collections::HashMap;
use std::time::Duration;

mod by_status;
pub use by_status::{BASE_READS_PER_PAGE, ROUNDS_PER_PAGE};
mod claims;
mod layout;
mod log;
pub use log::EXAMINED_PER_PAGE;
mod records;
mod unsent;
use layout::*;

const DLV_PREFIX: &str = "DLV#";
/// A subscription's log: `gsi1pk`/`gsi1sk`, projecting the keys and the log filters' attributes
/// that never change (`event_type`, `event_id`, `created_at`), so a status change writes the table
/// only. Named `by_sub_log` since `status` left its projection (the old `by_sub` projected it).
pub const BY_SUB_INDEX: &str = "by_sub_log";
/// The sweeper's sparse index of in-flight deliveries: `due_pk`/`due_at`, keys only.
pub const DUE_INDEX: &str = "due_keys";
/// Shards of an account's log (`ACCT#<account>#D<n>`). A delivery puts its summary item once (under
/// 1 KB: 1 WCU) and updates it at least once per attempt (1 WCU each), and reads it once per
/// attempt (1 RCU, consistent): about 2.1 WCU and 1.1 RCU per delivery when 10% of first attempts
/// fail. 10,000 deliveries/s of one account are then about 21,000 WCU/s; keeping every shard under
/// half DynamoDB's 1,000 WCU/s per partition key needs at least 42 shards, and 64 leaves room for
/// replays and further retries (up to 3.2 WCU per delivery). The price is on the log's reads: a
/// page queries every shard.
pub const LOG_SHARDS: u32 = 64;
/// Shards of a subscription's log in [`BY_SUB_INDEX`] (`gsi1pk=SUB#<subscription>#<n>`). The index
/// is written once, when a delivery is put (1 WCU; it projects nothing that changes later), so
/// 3,000 deliveries/s of one subscription are about 3,000 WCU/s, and 16 shards keep each near 190
/// (half the limit is 500, room for replays and bursts). A divisor of
/// [`LOG_SHARDS`], so each index shard's items come from a fixed quarter of the log shards.
pub const SUB_SHARDS: u32 = 16;
/// Shards of the due index (`due_pk=DUE#<n>` for deliveries, `PUB#<n>` for event records),
/// shared by every account: written once per published event, and per delivery only when an
/// attempt fails (its `due_at` moves with each retry, and the entry goes when it leaves flight).
/// 64 shards keep each under 500 WCU/s up to about 30,000 events/s across the whole service. The
/// sweeper queries every shard of both once a minute (128 Queries, 64 RRU, at zero traffic).
pub const DUE_SHARDS: u32 = 64;
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
    /// Records carry their own `expires_at` (decided in core), so no retention is held here.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { table: Table::new(client, table_name, 0) }
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.table = self.table.with_faults(faults);
        self
    }
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

impl DynamoDeliveryStore {
    /// The delivery of a log item with its payload: from its event record (`body_at`) or from a
    /// body item (`body_ref`). None when it names a record that does not exist: a publish that
    /// failed before its durable point, never answered 202.
    async fn with_payload(&self, account: &AccountId, item: &Item) -> StoreResult<Option<Delivery>> {
        let mut d = decode(item)?;
        let (pk, attr, at) = match (item.get("body_at"), attr_str(item, "body_ref")) {
            (Some(at), _) => {
                let at = at.as_n().ok().and_then(|v| v.parse::<usize>().ok());
                let at = at.ok_or_else(|| corrupt("delivery", "body_at is not a number"))?;
                (evt_pk(account, &d.event_id), "bodies", Some(at))
            }
            (None, Some(first)) => {
                let first = DeliveryId::parse(first).map_err(|e| corrupt("delivery", e))?;
                (body_pk(account, &first), "body", None)
            }
            (None, None) => return Err(corrupt("delivery", "no body_at or body_ref")),
        };
        let Some(found) = self.table.get_item("GetItem body", pk, ITEM_SK.to_owned()).await? else {
            return match at {
                Some(_) => Ok(None),
                None => Err(corrupt("delivery", "body item missing")),
            };
        };
        let value = match (found.get(attr), at) {
            (Some(AttributeValue::L(list)), Some(at)) => list.get(at),
            (value, None) => value,
            _ => None,
        };
        let bytes = value.and_then(|v| v.as_b().ok()).ok_or_else(|| corrupt("delivery", "its body is missing"))?;
        d.payload = decompress(bytes.as_ref())?;
        Ok(Some(d))
    }
}

/// Where an event's bodies are kept.
enum BodyPlace {
    /// In its record (`bodies`), a delivery naming its own by index (`body_at`).
    Record,
    /// In body items, keyed by the first delivery of each body (`body_ref`).
    Item(Vec<DeliveryId>),
}

/// The status part of a delivery update.
struct StatusChange<'a> {
    to: DeliveryStatus,
    next_attempt_at: Option<Timestamp>,
    now: Timestamp,
    claim: ClaimChange<'a>,
}

/// What a delivery update does with the delivery's claim ([`claims`]).
enum ClaimChange<'a> {
    /// Leaves it as it is.
    Keep,
    /// Removes it and the sweep mark.
    Clear,
    /// Applies only while the delivery holds this claim, and releases it.
    Release(&'a puck_core::ids::AttemptId),
}

impl DynamoDeliveryStore {
    /// An UpdateItem of a delivery's log item with `update` applied only if `condition` holds
    /// (`#st` names `status` in both); the caller adds return values and sends it.
    fn conditional_update(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        update: impl Into<String>,
        condition: impl Into<String>,
        values: HashMap<String, AttributeValue>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(log_pk(account, id), dlv_sk(id))))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
    }

    /// One conditional UpdateItem: sets status, `next_attempt_at`, `updated_at` and the due-index
    /// attributes that go with the new status, plus `extra_set`, and applies `change.claim`, only
    /// while the status is one of `from`. False when that condition failed.
    #[allow(clippy::too_many_arguments)]
    async fn update_if_status(
        &self,
        op: &'static str,
        account: &AccountId,
        id: &DeliveryId,
        from: &[DeliveryStatus],
        change: StatusChange<'_>,
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
        let mut cond = status_in(from, &mut values);
        let claim_remove = match change.claim {
            ClaimChange::Keep => None,
            ClaimChange::Clear => Some(claims::CLAIM_ATTRS),
            ClaimChange::Release(token) => {
                cond.push_str(" AND claim_token = :claim");
                values.insert(":claim".to_owned(), s(token.as_str()));
                Some(claims::CLAIM_ATTRS)
            }
        };
        let removes: Vec<&str> = [due_remove, claim_remove].into_iter().flatten().collect();
        if !removes.is_empty() {
            expr.push_str(" REMOVE ");
            expr.push_str(&removes.join(", "));
        }
        match self.conditional_update(account, id, expr, cond, values).send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(op, &e)),
        }
    }
}

#[async_trait]
impl DeliveryStore for DynamoDeliveryStore {
    async fn find_event(&self, account: &AccountId, event_id: &EventId) -> StoreResult<Option<StoredEvent>> {
        self.find_event_record(account, event_id).await
    }

    async fn find_events(&self, account: &AccountId, event_ids: &[EventId]) -> StoreResult<Vec<StoredEvent>> {
        self.find_event_records(account, event_ids).await
    }

    async fn insert_events(&self, events: &[StoredEvent], mode: RecordWrite) -> StoreResult<Vec<Option<StoredEvent>>> {
        self.insert_event_records(events, mode).await
    }

    async fn claim(&self, account: &AccountId, id: &DeliveryId, request: &ClaimRequest) -> StoreResult<Claim> {
        self.claim_delivery(account, id, request).await
    }

    async fn mark_swept(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        next_attempt_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.mark_delivery_swept(account, id, next_attempt_at, now).await
    }

    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> StoreResult<()> {
        let mut requests = Vec::with_capacity(deliveries.len() + 1);
        // Per event (in order of first appearance): its bodies, and where they are kept.
        let mut events: Vec<(&AccountId, &EventId, Vec<String>, BodyPlace)> = Vec::new();
        for d in deliveries {
            let at = match events.iter().position(|(a, e, _, _)| *a == &d.account_id && *e == &d.event_id) {
                Some(at) => at,
                None => {
                    let mine: Vec<Delivery> = deliveries
                        .iter()
                        .filter(|o| o.account_id == d.account_id && o.event_id == d.event_id)
                        .cloned()
                        .collect();
                    let bodies = StoredEvent::bodies_of(&mine);
                    // Small bodies go in the event record (written after the deliveries, the
                    // publish's durable point); large ones in a body item in this same batch.
                    let place = match record_bodies(&bodies)? {
                        Some(_) => BodyPlace::Record,
                        None => BodyPlace::Item(Vec::new()),
                    };
                    events.push((&d.account_id, &d.event_id, bodies, place));
                    events.len() - 1
                }
            };
            let (_, _, bodies, place) = &mut events[at];
            let index = bodies.iter().position(|b| b == &d.payload).unwrap_or_default();
            let mut item = delivery_item(d)?;
            match place {
                BodyPlace::Record => {
                    item.insert("body_at".into(), n(index as i64));
                }
                BodyPlace::Item(firsts) => {
                    // One body item per body, keyed by the first delivery that sends it.
                    if firsts.len() <= index {
                        requests.push(put_request(body_item(d)?)?);
                        firsts.push(d.id.clone());
                    }
                    item.insert("body_ref".into(), s(firsts[index].as_str()));
                }
            }
            requests.push(put_request(item)?);
        }
        self.batch_write("BatchWriteItem deliveries", requests).await
    }

    async fn remove_deliveries(&self, account: &AccountId, ids: &[DeliveryId]) -> StoreResult<()> {
        // A body item is keyed by one of the publish's delivery ids: deleting `BODY#<account>#<id>`
        // of each (absent ones are no-ops) takes it with them, and never another publish's body.
        let mut requests = Vec::with_capacity(2 * ids.len());
        let keys = ids
            .iter()
            .flat_map(|id| [key(log_pk(account, id), dlv_sk(id)), key(body_pk(account, id), ITEM_SK.to_owned())]);
        for k in keys {
            let del = DeleteRequest::builder()
                .set_key(Some(k))
                .build()
                .map_err(|_| StoreError::Corrupt("delivery delete request could not be built".into()))?;
            requests.push(WriteRequest::builder().delete_request(del).build());
        }
        self.batch_write("BatchWriteItem remove deliveries", requests).await
    }

    async fn get(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        let Some(mut d) = self.get_to_send(account, id).await? else { return Ok(None) };
        let q = Query { key_condition: "pk = :pk".into(), forward: false, ..Query::default() }
            .value(":pk", s(att_pk(account, id)));
        let items = self.table.query("Query attempts", &q, Some(MAX_LOGGED_ATTEMPTS as usize)).await?;
        let mut attempts = std::mem::take(&mut d.attempts);
        for item in items.iter().take(MAX_LOGGED_ATTEMPTS as usize) {
            attempts.push(decode_attempt(item)?);
        }
        d.attempts = newest_attempts(attempts);
        Ok(Some(d))
    }

    async fn get_to_send(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        let Some(item) = self.table.get_item("GetItem delivery", log_pk(account, id), dlv_sk(id)).await? else {
            return Ok(None);
        };
        // A delivery whose publish never reached its durable point is shown without a body.
        match self.with_payload(account, &item).await? {
            Some(d) => Ok(Some(d)),
            None => decode(&item).map(Some),
        }
    }

    async fn list_page(
        &self,
        account: &AccountId,
        filter: &DeliveryFilter,
        limit: usize,
        before: Option<&DeliveryId>,
    ) -> StoreResult<(Vec<Delivery>, Option<DeliveryId>)> {
        self.list_log_page(account, filter, limit, before).await
    }

    async fn record_attempt(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        attempt: &Attempt,
        update: &AttemptUpdate,
    ) -> StoreResult<bool> {
        self.table.faults.record_attempt()?;
        if update.only_if.is_empty() {
            return Ok(false);
        }
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":ac".to_owned(), attr(&update.attempt_count)?),
            (":lrs".to_owned(), attr(&update.last_response_status)?),
            (":le".to_owned(), attr(&update.last_error)?),
        ]);
        let mut set = "attempt_count = :ac, last_response_status = :lrs, last_error = :le".to_owned();
        let inline = inline_attempt(attempt, !update.status.is_in_flight())?;
        if let Some((name, bytes)) = &inline {
            // The attempt rides in the update of its delivery: one write for both.
            set.push_str(&format!(", {name} = :att"));
            values.insert(":att".to_owned(), AttributeValue::B(bytes.clone().into()));
        } else {
            // The attempt first: if this fails nothing changed and the message is retried. Then
            // the small conditional update of the delivery; if that finds it no longer in
            // flight, the attempt record is taken back, as the port promises.
            let mut item = to_item(attempt).map_err(|e| corrupt("attempt", e))?;
            item.extend(key(att_pk(account, id), att_sk(attempt.number)));
            item.insert("expires_at".into(), n(update.expires_at.unix_seconds()));
            self.table.faults.dynamo()?;
            self.table.put_item("PutItem attempt", item).await?;
        }
        let claim = match &update.claim {
            Some(token) => ClaimChange::Release(token),
            None => ClaimChange::Keep,
        };
        let change =
            StatusChange { to: update.status, next_attempt_at: update.next_attempt_at, now: update.updated_at, claim };
        let applied = self
            .update_if_status("UpdateItem delivery attempt", account, id, update.only_if, change, Some(&set), values)
            .await?;
        if !applied && inline.is_none() {
            let res = self
                .table
                .client
                .delete_item()
                .table_name(&self.table.name)
                .set_key(Some(key(att_pk(account, id), att_sk(attempt.number))))
                .send()
                .await;
            if let Err(e) = res {
                unavailable("DeleteItem attempt", &e);
            }
        }
        Ok(applied)
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
        let change = StatusChange { to, next_attempt_at, now, claim: ClaimChange::Keep };
        self.update_if_status("UpdateItem delivery transition", account, id, from, change, None, HashMap::new()).await
    }

    async fn replay(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        from: &[DeliveryStatus],
        now: Timestamp,
    ) -> StoreResult<bool> {
        if from.is_empty() {
            return Ok(false);
        }
        let change =
            StatusChange { to: DeliveryStatus::Pending, next_attempt_at: Some(now), now, claim: ClaimChange::Clear };
        let values = HashMap::from([(":zero".to_owned(), n(0))]);
        let restart = "round_start = if_not_exists(attempt_count, :zero)";
        self.update_if_status("UpdateItem delivery replay", account, id, from, change, Some(restart), values).await
    }

    async fn in_flight_for_subscription(
        &self,
        account: &AccountId,
        subscription: &SubscriptionId,
    ) -> StoreResult<Vec<DeliveryId>> {
        self.sub_in_flight(account, subscription).await
    }

    async fn unsent(&self, before: Timestamp, limit: usize) -> StoreResult<puck_core::ports::Unsent> {
        self.unsent_published(before, limit).await
    }

    async fn unsent_swept(&self, upto: Timestamp) -> StoreResult<()> {
        self.move_sweep_mark(upto).await
    }

    async fn overdue(
        &self,
        due_before: Timestamp,
        limit: usize,
        skip: &[AccountId],
    ) -> StoreResult<Vec<(AccountId, DeliveryId)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let per_shard = limit.div_ceil(DUE_SHARDS as usize).saturating_mul(2); // ids spread evenly; 2x for skew
        let queries = (0..DUE_SHARDS).map(|shard| {
            let q = due_query(shard, due_before, skip);
            async move { self.table.query("Query due deliveries", &q, Some(per_shard)).await }
        });
        let mut due: Vec<(i64, AccountId, DeliveryId)> = Vec::new();
        for result in futures::future::join_all(queries).await {
            for item in result? {
                let account = attr_str(&item, "pk").and_then(account_of_log_pk);
                let id = attr_str(&item, "sk")
                    .and_then(|k| k.strip_prefix(DLV_PREFIX))
                    .and_then(|d| DeliveryId::parse(d).ok());
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
mod tests;
