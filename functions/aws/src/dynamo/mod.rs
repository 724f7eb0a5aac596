//! DynamoDB adapters for the storage ports, over one single table.
//!
//! Layout (template.yaml declares the table): `pk`/`sk` strings as the primary key; GSI `by_sub_log`
//! (`gsi1pk`, `gsi1sk`; keys and the log's filter attributes) lists a subscription's deliveries,
//! sharded [`SUB_SHARDS`] ways; sparse GSI `due_keys` (`due_pk`, `due_at` number; keys only) holds
//! only in-flight deliveries, sharded [`DUE_SHARDS`] ways, for the sweeper; TTL on `expires_at`
//! (epoch seconds). Per-account records (subscriptions, keys, endpoints) live under
//! `ACCT#<account>`; a delivery's items are spread so that no key carries one account's whole
//! traffic (see `deliveries.rs` and [`LOG_SHARDS`]). Records are stored as their serde shape (see
//! [`item`]) plus those key attributes, so a model field added in core is stored without touching
//! this crate.
//!
//! Errors never carry item contents (they may hold ciphertext): only the operation and the
//! service's error code.

mod api_keys;
mod deliveries;
mod endpoints;
mod investigations;
pub mod item;
mod limits;
mod rate_buckets;
mod subscriptions;

pub use api_keys::DynamoApiKeyStore;
pub use deliveries::{
    DynamoDeliveryStore, BASE_READS_PER_PAGE, DUE_SHARDS, EXAMINED_PER_PAGE, LOG_SHARDS, ROUNDS_PER_PAGE, SUB_SHARDS,
};
pub use endpoints::DynamoEndpointStore;
pub use investigations::DynamoInvestigationStore;
pub use limits::DynamoLimitStore;
pub use rate_buckets::DynamoRateBuckets;
pub use subscriptions::DynamoSubscriptionStore;

use crate::fault_gate::FaultGate;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use item::Item;
use puck_core::ids::AccountId;
use puck_core::ports::{StoreError, StoreResult};
use std::collections::HashMap;

/// What every DynamoDB adapter holds: the client, the table and retention.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) client: Client,
    pub(crate) name: String,
    /// Days until `expires_at` (TTL) for records that expire.
    pub(crate) retention_days: i64,
    pub(crate) faults: FaultGate,
}

impl Table {
    pub(crate) fn new(client: Client, name: impl Into<String>, retention_days: i64) -> Self {
        Self { client, name: name.into(), retention_days, faults: FaultGate::default() }
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.faults = faults;
        self
    }

    /// GetItem by primary key; `None` when absent.
    pub(crate) async fn get_item(&self, op: &'static str, pk: String, sk: String) -> StoreResult<Option<Item>> {
        self.faults.dynamo()?;
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(op, &e))?;
        Ok(out.item)
    }

    /// An unconditional PutItem (the caller checks the fault gate, once per operation).
    pub(crate) async fn put_item(&self, op: &'static str, item: Item) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable(op, &e))?;
        Ok(())
    }

    /// BatchGetItem (consistent) of `keys` (items holding at least `pk` and `sk`), in chunks of
    /// 100, retrying unprocessed keys; the items found, in the order of `keys` (a key whose item
    /// is gone, e.g. expired, is skipped).
    pub(crate) async fn batch_get(&self, op: &'static str, keys: &[Item]) -> StoreResult<Vec<Item>> {
        self.faults.dynamo()?;
        let wanted: Vec<(String, String)> =
            keys.iter().filter_map(|k| Some((attr_str(k, "pk")?.to_owned(), attr_str(k, "sk")?.to_owned()))).collect();
        let mut found: HashMap<(String, String), Item> = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(100) {
            let mut pending: Vec<Item> = chunk.iter().map(|(pk, sk)| key(pk.clone(), sk.clone())).collect();
            let mut round = 0u32;
            while !pending.is_empty() {
                if round > 0 {
                    if round > 6 {
                        return Err(StoreError::Unavailable(format!("dynamodb {op} failed: unprocessed keys")));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25u64 << round.min(6))).await;
                }
                round += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|_| StoreError::Corrupt("batch get request could not be built".into()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, request)
                    .send()
                    .await
                    .map_err(|e| unavailable(op, &e))?;
                for item in out.responses.and_then(|mut r| r.remove(&self.name)).unwrap_or_default() {
                    if let (Some(pk), Some(sk)) = (attr_str(&item, "pk"), attr_str(&item, "sk")) {
                        found.insert((pk.to_owned(), sk.to_owned()), item);
                    }
                }
                pending =
                    out.unprocessed_keys.and_then(|mut m| m.remove(&self.name)).map(|k| k.keys).unwrap_or_default();
            }
        }
        Ok(wanted.into_iter().filter_map(|k| found.remove(&k)).collect())
    }

    fn query_request(
        &self,
        q: &Query,
        start: Option<Item>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let mut req = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression(&q.key_condition)
            .set_filter_expression(q.filter.clone())
            .set_projection_expression(q.projection.clone())
            .set_index_name(q.index.map(str::to_owned))
            .set_expression_attribute_values(Some(q.values.clone()))
            .scan_index_forward(q.forward)
            .set_exclusive_start_key(start);
        if !q.names.is_empty() {
            req = req.set_expression_attribute_names(Some(q.names.clone()));
        }
        req
    }

    /// One Query call evaluating at most `limit` items from `start`: the items that passed the
    /// filter, and where to continue (`None` at the end of the key range).
    pub(crate) async fn query_page(
        &self,
        op: &'static str,
        q: &Query,
        limit: usize,
        start: Option<Item>,
    ) -> StoreResult<(Vec<Item>, Option<Item>)> {
        self.faults.dynamo()?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX).max(1);
        let page = self.query_request(q, start).limit(limit).send().await.map_err(|e| unavailable(op, &e))?;
        Ok((page.items.unwrap_or_default(), page.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// Runs a query to the end, or until more than `want` items were collected (so the caller can
    /// tell whether more may follow).
    pub(crate) async fn query(&self, op: &'static str, q: &Query, want: Option<usize>) -> StoreResult<Vec<Item>> {
        self.faults.dynamo()?;
        let mut out: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self.query_request(q, start.take());
            if let Some(want) = want {
                // Evaluated items per round; with a filter we keep going until enough matched.
                req = req.limit(i32::try_from(want.saturating_add(1)).unwrap_or(i32::MAX).max(1));
            }
            let page = req.send().await.map_err(|e| unavailable(op, &e))?;
            out.extend(page.items.unwrap_or_default());
            if want.is_some_and(|w| out.len() > w) {
                break;
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// One Query's parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub(crate) index: Option<&'static str>,
    pub(crate) key_condition: String,
    pub(crate) filter: Option<String>,
    pub(crate) projection: Option<String>,
    pub(crate) names: HashMap<String, String>,
    pub(crate) values: HashMap<String, AttributeValue>,
    pub(crate) forward: bool,
}

impl Query {
    pub(crate) fn value(mut self, name: &str, v: AttributeValue) -> Self {
        self.values.insert(name.to_owned(), v);
        self
    }

    pub(crate) fn name(mut self, alias: &str, attr: &str) -> Self {
        self.names.insert(alias.to_owned(), attr.to_owned());
        self
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(crate) fn account_pk(account: &AccountId) -> String {
    format!("ACCT#{account}")
}

/// The smallest string greater than every string starting with `prefix` (for BETWEEN ranges).
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    if let Some(last) = chars.pop() {
        let next = char::from_u32(u32::from(last) + 1).unwrap_or(char::MAX);
        chars.push(next);
    }
    chars.into_iter().collect()
}

/// The service's short error code, never the message (which may echo request values).
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    match err {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("service error").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "dispatch failure".to_owned(),
        SdkError::ResponseError(_) => "unparseable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request construction failed".to_owned(),
        _ => "unknown error".to_owned(),
    }
}

/// A failed DynamoDB call as a transient store error naming the operation.
pub(crate) fn unavailable<E: ProvideErrorMetadata, R>(op: &'static str, err: &SdkError<E, R>) -> StoreError {
    let code = error_code(err);
    tracing::warn!(operation = op, error_code = %code, "dynamodb call failed");
    StoreError::Unavailable(format!("dynamodb {op} failed: {code}"))
}

/// Whether a PutItem/UpdateItem/DeleteItem failed only because its condition did not hold.
pub(crate) fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}

/// Whether a TransactWriteItems was cancelled because the condition of item `index` failed.
/// If the service gave no reasons, any cancellation counts.
pub(crate) fn is_transaction_condition_failed(
    err: &SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
    index: usize,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            let reasons = e.cancellation_reasons();
            reasons.is_empty() || reasons.get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
        }
        _ => false,
    }
}

/// Whether a transaction was cancelled because another one touched the same items at once
/// (`TransactionConflict`): retrying after a fresh read succeeds or finds the items gone.
pub(crate) fn is_transaction_conflict(
    err: &SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().iter().any(|r| r.code() == Some("TransactionConflict"))
        }
        _ => false,
    }
}

/// A record that could not be read back.
pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    tracing::error!(record = what, error = %detail, "stored record could not be decoded");
    StoreError::Corrupt(format!("stored {what} could not be decoded"))
}

/// Reads a string attribute.
pub(crate) fn attr_str<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end("SUB#"), "SUB$");
        assert!("SUB#zzzz" < prefix_end("SUB#").as_str());
        assert!("SUC" > prefix_end("SUB#").as_str());
    }
}
