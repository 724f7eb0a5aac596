//! Event records: the idempotency markers of published events and the durable point of a publish.
//!
//! A record is written only if none with its id exists. The condition check returns the item it
//! found (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), so a write that the SDK tried again
//! after DynamoDB stored it (its answer lost) sees its own `publish_token` and counts as written;
//! only another publish's token means another publish holds the id. A batch whose event ids were
//! generated writes its records in one TransactWriteItems (at most 100, the batch route's limit),
//! all or none, so a batch that fails publishes nothing and its retry (with new ids) publishes
//! each event once; a batch whose ids are all the producer's writes one conditional PutItem each
//! (half the write units), since its retry publishes only what is missing.

use super::*;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};

/// Records of one batch written at once when each is written alone (a batch holds at most 100).
const RECORD_PUTS_AT_ONCE: usize = 16;

/// The stored item of an event record, with its keys and TTL.
fn record_item(event: &StoredEvent) -> StoreResult<Item> {
    let mut item = to_item(event).map_err(|e| corrupt("event", e))?;
    // The bodies compressed (Binary), when they fit; else they are in a body item.
    item.remove("bodies");
    if let Some(bodies) = record_bodies(&event.bodies)? {
        let list = bodies.into_iter().map(|b| AttributeValue::B(b.into())).collect();
        item.insert("bodies".into(), AttributeValue::L(list));
    }
    item.extend(key(evt_pk(&event.account_id, &event.event_id), ITEM_SK.to_owned()));
    item.insert("expires_at".into(), n(event.expires_at.unix_seconds()));
    if !event.deliveries.is_empty() {
        // The sweeper's entry for the event's deliveries (see `unsent`), due at the publish.
        item.insert("due_pk".into(), s(pub_shard(&event.account_id, &event.event_id)));
        item.insert("due_at".into(), n(event.emitted_at.unix_ms()));
    }
    Ok(item)
}

/// What a failed condition found: another publish's record, or None when it is this write's own
/// (same token) and so counts as written.
fn other_publish(event: &StoredEvent, found: Option<Item>) -> StoreResult<Option<StoredEvent>> {
    let Some(found) = found else {
        return Err(StoreError::Unavailable("event record condition failed without the item".into()));
    };
    let existing = decode_event(found)?;
    let ours = event.publish_token.is_some() && existing.publish_token == event.publish_token;
    Ok((!ours).then_some(existing))
}

impl DynamoDeliveryStore {
    pub(super) async fn find_event_record(
        &self,
        account: &AccountId,
        id: &EventId,
    ) -> StoreResult<Option<StoredEvent>> {
        let item = self.table.get_item("GetItem event", evt_pk(account, id), ITEM_SK.to_owned()).await?;
        item.map(decode_event).transpose()
    }

    pub(super) async fn find_event_records(
        &self,
        account: &AccountId,
        ids: &[EventId],
    ) -> StoreResult<Vec<StoredEvent>> {
        // BatchGetItem refuses a request that names one key twice.
        let mut keys: Vec<String> = ids.iter().map(|id| evt_pk(account, id)).collect();
        keys.sort();
        keys.dedup();
        let keys: Vec<Item> = keys.into_iter().map(|pk| key(pk, ITEM_SK.to_owned())).collect();
        let items = self.table.batch_get("BatchGetItem events", &keys).await?;
        items.into_iter().map(decode_event).collect()
    }

    pub(super) async fn insert_event_records(
        &self,
        events: &[StoredEvent],
        mode: RecordWrite,
    ) -> StoreResult<Vec<Option<StoredEvent>>> {
        match (events, mode) {
            ([], _) => Ok(Vec::new()),
            ([one], _) => Ok(vec![self.put_record(one).await?]),
            (many, RecordWrite::AllOrNone) => self.transact_records(many).await,
            (many, RecordWrite::EachAlone) => {
                // One write unit a record instead of a transaction's two; a failure leaves some
                // stored, which the publish reads back (`record_events`).
                let mut found = Vec::with_capacity(many.len());
                for chunk in many.chunks(RECORD_PUTS_AT_ONCE) {
                    let mut puts = Vec::with_capacity(chunk.len());
                    for event in chunk {
                        puts.push(self.put_record(event));
                    }
                    found.extend(futures::future::join_all(puts).await);
                }
                found.into_iter().collect()
            }
        }
    }

    async fn put_record(&self, event: &StoredEvent) -> StoreResult<Option<StoredEvent>> {
        self.table.faults.dynamo()?;
        let res = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(record_item(event)?))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok(None),
            Err(e) if is_condition_failed(&e) => {
                let found = match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => c.item.clone(),
                    _ => None,
                };
                other_publish(event, found)
            }
            Err(e) => Err(unavailable("PutItem event", &e)),
        }
    }

    async fn transact_records(&self, events: &[StoredEvent]) -> StoreResult<Vec<Option<StoredEvent>>> {
        self.table.faults.dynamo()?;
        let mut items = Vec::with_capacity(events.len());
        for event in events {
            let put = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(record_item(event)?))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(|e| corrupt("event record put", e))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // The SDK gives the call one idempotency token for all its tries, so AWS answers a retry
        // of a stored transaction with success; where it does not (moto), the tokens below do.
        let res = self.table.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let err = match res {
            Ok(_) => return Ok(vec![None; events.len()]),
            Err(e) => e,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => c.cancellation_reasons().to_vec(),
            _ => return Err(unavailable("TransactWriteItems events", &err)),
        };
        if reasons.len() != events.len() || !reasons.iter().any(|r| r.code() == Some("ConditionalCheckFailed")) {
            return Err(unavailable("TransactWriteItems events", &err));
        }
        let mut found = Vec::with_capacity(events.len());
        for (event, reason) in events.iter().zip(reasons) {
            found.push(match reason.code() {
                Some("ConditionalCheckFailed") => other_publish(event, reason.item)?,
                _ => None,
            });
        }
        // All None: every failed condition found this write's own records, so an earlier try
        // stored them all (a transaction is all or none).
        Ok(found)
    }
}
