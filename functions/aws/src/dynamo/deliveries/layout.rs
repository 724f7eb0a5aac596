//! How a delivery, its body, its attempts and its event record are laid out as items: keys,
//! encodings, the due-index fields and the shared pieces of update expressions. The store in the
//! parent module only issues the calls.

use super::*;

pub(super) fn dlv_sk(id: &DeliveryId) -> String {
    format!("{DLV_PREFIX}{id}")
}

/// FNV-1a of a delivery id: stable across processes and releases, so a delivery's shards (log,
/// subscription log, due index) are computed from its id alone and a get or update stays one call.
pub(crate) fn shard_hash(id: &DeliveryId) -> u32 {
    fnv1a(id.as_str())
}

/// FNV-1a of a string.
pub(super) fn fnv1a(text: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// What comes before the shard number of an account's log partitions: `ACCT#<account>#D`.
pub(super) fn log_pk_prefix(account: &AccountId) -> String {
    format!("{}#D", account_pk(account))
}

/// The log partition of one shard: `ACCT#<account>#D<shard>`.
pub(super) fn log_shard_pk(account: &AccountId, shard: u32) -> String {
    format!("{}{shard}", log_pk_prefix(account))
}

/// The log partition a delivery's summary item lives in.
pub(super) fn log_pk(account: &AccountId, id: &DeliveryId) -> String {
    log_shard_pk(account, shard_hash(id) % LOG_SHARDS)
}

/// The account of a log partition key (`ACCT#<account>#D<n>`), as the due index returns it.
pub(super) fn account_of_log_pk(pk: &str) -> Option<AccountId> {
    let (account, shard) = pk.strip_prefix("ACCT#")?.rsplit_once("#D")?;
    shard.parse::<u32>().ok()?;
    AccountId::parse(account).ok()
}

/// A subscription's partition of the `by_sub_log` index for one shard: `SUB#<subscription>#<shard>`.
pub(super) fn sub_shard_pk(sub: &SubscriptionId, shard: u32) -> String {
    format!("SUB#{sub}#{shard}")
}

/// The `by_sub` partition a delivery is indexed under.
pub(super) fn sub_pk(sub: &SubscriptionId, id: &DeliveryId) -> String {
    sub_shard_pk(sub, shard_hash(id) % SUB_SHARDS)
}

/// The sort key of the single-item partitions (event record, body): the partition key says it all.
pub(super) const ITEM_SK: &str = "-";

/// The idempotency record of an event: its own partition, keyed by account and event id.
pub(super) fn evt_pk(account: &AccountId, id: &EventId) -> String {
    format!("EVT#{account}#{id}")
}

/// A body is keyed by the first delivery of its event in the write that stored it (unique per
/// publish, so undoing a failed publish can never remove the body of a concurrent one).
pub(super) fn body_pk(account: &AccountId, first: &DeliveryId) -> String {
    format!("BODY#{account}#{first}")
}

/// The partition holding one delivery's attempts, sorted by number.
pub(super) fn att_pk(account: &AccountId, id: &DeliveryId) -> String {
    format!("ATT#{account}#{id}")
}

/// An attempt's sort key: its number, 10 digits, so a reverse Query reads the newest first.
pub(super) fn att_sk(number: u32) -> String {
    format!("{number:010}")
}

/// The envelope as stored in a body item: raw deflate.
pub(crate) fn compress(payload: &str) -> StoreResult<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(payload.as_bytes()).and_then(|_| enc.finish()).map_err(|e| corrupt("body", e))
}

pub(crate) fn decompress(bytes: &[u8]) -> StoreResult<String> {
    use std::io::Read;
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(bytes).read_to_string(&mut out).map_err(|e| corrupt("body", e))?;
    Ok(out)
}

/// The most compressed body bytes of one event held in its record: a batch's records (up to 100)
/// go in one transaction, which DynamoDB caps at 4 MB. An event with more keeps them in a body
/// item of its own, written with its deliveries.
pub(super) const RECORD_BODIES_MAX: usize = 32 * 1024;

/// An event's bodies compressed, or None when they are too large for its record.
pub(super) fn record_bodies(bodies: &[String]) -> StoreResult<Option<Vec<Vec<u8>>>> {
    let compressed = bodies.iter().map(|b| compress(b)).collect::<StoreResult<Vec<_>>>()?;
    Ok((compressed.iter().map(Vec::len).sum::<usize>() <= RECORD_BODIES_MAX).then_some(compressed))
}

/// The body item of an event: one per event, however many deliveries it has; `d` is the first.
pub(super) fn body_item(d: &Delivery) -> StoreResult<Item> {
    let mut item = key(body_pk(&d.account_id, &d.id), ITEM_SK.to_owned());
    item.insert("body".into(), AttributeValue::B(compress(&d.payload)?.into()));
    item.insert("expires_at".into(), n(d.expires_at.unix_seconds()));
    Ok(item)
}

/// Replaces the numeric TTL attribute with the record's RFC 3339 `expires_at`, so the serde shape
/// decodes (`expires_at` is epoch seconds in the table, for DynamoDB's TTL).
pub(super) fn ttl_to_field(item: &mut Item) {
    if let Some(secs) = item.get("expires_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()) {
        item.insert("expires_at".into(), s(Timestamp::from_unix_seconds(secs).rfc3339()));
    }
}

/// The due-index shard of a delivery, from the same hash as its log shards.
pub(crate) fn due_shard(id: &DeliveryId) -> String {
    format!("DUE#{}", shard_hash(id) % DUE_SHARDS)
}

/// The due-index shard of an event record (`PUB#<n>`, apart from the deliveries' `DUE#<n>`): the
/// sweeper's one entry per published event, which stands for all of its deliveries until they
/// have been taken (see `unsent`).
pub(super) fn pub_shard_pk(shard: u32) -> String {
    format!("PUB#{shard}")
}

/// The `PUB#<n>` shard of an event record, from a hash of its key.
pub(super) fn pub_shard(account: &AccountId, event: &EventId) -> String {
    pub_shard_pk(fnv1a(&evt_pk(account, event)) % DUE_SHARDS)
}

/// Whether a delivery as written has a due-index entry of its own: every in-flight one except a
/// fresh `pending` one (no attempt yet), which its event record's entry stands for until the
/// dispatcher or the sweeper takes it.
pub(super) fn has_own_due_entry(d: &Delivery) -> bool {
    d.status.is_in_flight() && !(d.status == DeliveryStatus::Pending && d.attempt_count == 0)
}

/// When an in-flight delivery is due: its next attempt time, else `fallback`.
pub(super) fn due_ms(next_attempt_at: Option<Timestamp>, fallback: Timestamp) -> i64 {
    next_attempt_at.unwrap_or(fallback).unix_ms()
}

/// The stored item of a delivery, with keys, due fields (see [`has_own_due_entry`]) and TTL;
/// payload and attempts live in their own items.
pub(crate) fn delivery_item(d: &Delivery) -> StoreResult<Item> {
    let mut item = to_item(d).map_err(|e| corrupt("delivery", e))?;
    // The keys name the account and the id ([`decode`] reads them back from there), and a
    // payload and attempts live elsewhere: the item stays small enough for one write unit
    // with the attempt that ends it.
    for name in ["payload", "attempts", "id", "account_id"] {
        item.remove(name);
    }
    item.extend(key(log_pk(&d.account_id, &d.id), dlv_sk(&d.id)));
    item.insert("gsi1pk".into(), s(sub_pk(&d.subscription_id, &d.id)));
    item.insert("gsi1sk".into(), s(d.id.as_str()));
    item.insert("expires_at".into(), n(d.expires_at.unix_seconds()));
    if has_own_due_entry(d) {
        item.insert("due_pk".into(), s(due_shard(&d.id)));
        item.insert("due_at".into(), n(due_ms(d.next_attempt_at, d.updated_at)));
    }
    Ok(item)
}

/// A delivery from its item: the summary with the attempts its item holds ([`inline_attempt`]);
/// `payload` empty (it lives in the event record or a body item).
pub(super) fn decode(item: &Item) -> StoreResult<Delivery> {
    let mut fields = item.clone();
    fields.retain(|name, _| !is_inline_attempt(name));
    ttl_to_field(&mut fields);
    fields.insert("payload".into(), s(""));
    if let Some(id) = attr_str(item, "sk").and_then(|sk| sk.strip_prefix(DLV_PREFIX)) {
        fields.entry("id".into()).or_insert_with(|| s(id));
    }
    if let Some(account) = attr_str(item, "pk").and_then(account_of_log_pk) {
        fields.entry("account_id".into()).or_insert_with(|| s(account.as_str()));
    }
    let mut d: Delivery = from_item(&fields).map_err(|e| corrupt("delivery", e))?;
    for (name, value) in item {
        if is_inline_attempt(name) {
            let bytes = value.as_b().map_err(|_| corrupt("attempt", "an inline attempt is not binary"))?;
            let json = decompress(bytes.as_ref())?;
            d.attempts.push(serde_json::from_str(&json).map_err(|e| corrupt("attempt", e))?);
        }
    }
    Ok(d)
}

/// What starts the name of an attempt kept in its delivery's item (`att<number>`).
const INLINE_ATTEMPT_PREFIX: &str = "att";

/// Whether an attribute of a delivery's item is an attempt kept there: `att` and its number.
fn is_inline_attempt(name: &str) -> bool {
    name.strip_prefix(INLINE_ATTEMPT_PREFIX).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The largest compressed attempt kept in its delivery's item. A delivery's item is about 450
/// bytes (test `storage::a_delivery_that_succeeds_at_once_is_one_item_within_one_write_unit`),
/// so with one this size it stays within the 1 KB of one write unit: the update recording the
/// attempt costs what it would without it, and the attempt's own item (a write unit more) is
/// saved. A larger attempt gets an item of its own.
pub(super) const INLINE_ATTEMPT_MAX: usize = 480;

/// The attempt that ends a delivery (it succeeded, or it failed for good) is kept in the
/// delivery's own item when it compresses to at most [`INLINE_ATTEMPT_MAX`] bytes: the attribute
/// name and its bytes, for the update that records it. Other attempts (followed by a retry, or
/// larger) get an item of their own. Each attempt has its own attribute, so a replay's attempts
/// add to the item and never overwrite one.
pub(super) fn inline_attempt(attempt: &Attempt, ends_delivery: bool) -> StoreResult<Option<(String, Vec<u8>)>> {
    if !ends_delivery {
        return Ok(None);
    }
    let json = serde_json::to_string(attempt).map_err(|e| corrupt("attempt", e))?;
    let bytes = compress(&json)?;
    Ok((bytes.len() <= INLINE_ATTEMPT_MAX).then(|| (format!("{INLINE_ATTEMPT_PREFIX}{}", attempt.number), bytes)))
}

/// An event record without its bodies (read only to send, see `with_payload`).
pub(super) fn decode_event(mut item: Item) -> StoreResult<StoredEvent> {
    item.remove("bodies");
    ttl_to_field(&mut item);
    from_item(&item).map_err(|e| corrupt("event", e))
}

pub(super) fn decode_attempt(item: &Item) -> StoreResult<Attempt> {
    from_item(item).map_err(|e| corrupt("attempt", e))
}

pub(super) fn attr<T: serde::Serialize>(v: &T) -> StoreResult<AttributeValue> {
    value_to_attr(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The `SET` clause and the attributes to `REMOVE` keeping the due index in step with `status`.
pub(super) fn due_clauses(
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
        (None, Some("due_pk, due_at"))
    }
}

/// `#st IN (:from0, :from1, …)` over `from`.
pub(super) fn status_in(from: &[DeliveryStatus], values: &mut HashMap<String, AttributeValue>) -> String {
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

pub(super) fn put_request(item: Item) -> StoreResult<WriteRequest> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|_| StoreError::Corrupt("put request could not be built".into()))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// The sweeper's query of one shard of the due index: entries due before `before`, keys only,
/// leaving out the accounts in `skip`. Only entries of sharded log items (`ACCT#<account>#D<n>`):
/// an in-flight item of the unsharded layout is never sent again (see docs/storage.md, "Upgrading a
/// stack with data") and must neither fail nor crowd out the sweep until its TTL removes it.
pub(super) fn due_query(shard: u32, before: Timestamp, skip: &[AccountId]) -> Query {
    let mut filter = "contains(pk, :sharded)".to_owned();
    (0..skip.len()).for_each(|i| filter.push_str(&format!(" AND NOT begins_with(pk, :skip{i})")));
    let mut q = Query {
        index: Some(DUE_INDEX),
        key_condition: "due_pk = :d AND due_at < :before".into(),
        filter: Some(filter),
        projection: Some("pk, sk, due_at".into()),
        forward: true,
        ..Query::default()
    }
    .value(":d", s(format!("DUE#{shard}")))
    .value(":sharded", s("#D"))
    .value(":before", n(before.unix_ms()));
    for (i, account) in skip.iter().enumerate() {
        q = q.value(&format!(":skip{i}"), s(log_pk_prefix(account)));
    }
    q
}
