//! The DynamoDB/SQS ledger: the capacity units and requests AWS bills for a recorded call log,
//! and the units each partition key (table and every GSI) takes.
//!
//! Why a replay and not moto's `ConsumedCapacity`: moto does not bill index writes, the
//! before/after rule of updates or the doubling of transactions, and the bill must not depend on
//! which storage layout the handlers use. So the recorded calls are replayed in order against a
//! shadow of the table (seeded by a scan before the phase): a write bills the larger of the item
//! before and after (DynamoDB's rule for PutItem, UpdateItem and DeleteItem) in 1 KB units, and
//! every GSI the item is in before or after is written too at the projected size (a changed index
//! key is a delete plus a put; an unchanged projection is no index write); transactions cost 2×;
//! reads bill the full item (table) or the projected entry (index) in 4 KB units, half for
//! eventually consistent reads. The after-image of an UpdateItem comes from a scan after the phase
//! (an item updated several times in a phase is billed at its final size each time, an upper bound
//! when items only grow). SQS bills each 64 KiB of a request or response as one request.

use crate::call_log::{item_size, Call};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A DynamoDB item in its JSON wire form.
pub type Item = Map<String, Value>;

/// What a GSI copies from the table.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    /// Every attribute.
    All,
    /// Only the table and index keys.
    KeysOnly,
    /// The keys plus these attributes.
    Include(Vec<String>),
}

/// One global secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub name: String,
    pub pk: String,
    pub sk: Option<String>,
    pub projection: Projection,
}

/// The table's keys and indexes, read from template.yaml so the model follows the layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub pk: String,
    pub sk: Option<String>,
    pub indexes: Vec<Index>,
}

fn key_schema(keys: Option<&Value>) -> (Option<String>, Option<String>) {
    let mut hash = None;
    let mut range = None;
    for k in keys.and_then(Value::as_array).into_iter().flatten() {
        let name = k.get("AttributeName").and_then(Value::as_str).map(str::to_owned);
        match k.get("KeyType").and_then(Value::as_str) {
            Some("HASH") => hash = name,
            Some("RANGE") => range = name,
            _ => {}
        }
    }
    (hash, range)
}

impl Schema {
    /// The first `AWS::DynamoDB::Table` of the template (as JSON).
    pub fn from_template(doc: &Value) -> Option<Self> {
        let table = doc
            .get("Resources")?
            .as_object()?
            .values()
            .find(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))?;
        let props = table.get("Properties")?;
        let (pk, sk) = key_schema(props.get("KeySchema"));
        let indexes = props
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| {
                let (pk, sk) = key_schema(g.get("KeySchema"));
                let projection = match g.pointer("/Projection/ProjectionType").and_then(Value::as_str) {
                    Some("KEYS_ONLY") => Projection::KeysOnly,
                    Some("INCLUDE") => Projection::Include(
                        g.pointer("/Projection/NonKeyAttributes")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                            .unwrap_or_default(),
                    ),
                    _ => Projection::All,
                };
                Some(Index { name: g.get("IndexName")?.as_str()?.to_owned(), pk: pk?, sk, projection })
            })
            .collect();
        Some(Self { pk: pk?, sk, indexes })
    }

    /// The table key of an item or key map, as `(pk, sk)` strings.
    fn key_of(&self, item: &Item) -> Option<(String, String)> {
        let pk = scalar(item.get(&self.pk)?)?;
        let sk = match &self.sk {
            Some(sk) => scalar(item.get(sk)?)?,
            None => String::new(),
        };
        Some((pk, sk))
    }

    /// The entry `item` has in `index` (None when it lacks the index's key attributes).
    pub fn project(&self, index: &Index, item: &Item) -> Option<Item> {
        item.get(&index.pk)?;
        if let Some(sk) = &index.sk {
            item.get(sk)?;
        }
        if index.projection == Projection::All {
            return Some(item.clone());
        }
        let mut keep: Vec<&str> = vec![&self.pk, &index.pk];
        keep.extend(self.sk.as_deref());
        keep.extend(index.sk.as_deref());
        if let Projection::Include(extra) = &index.projection {
            keep.extend(extra.iter().map(String::as_str));
        }
        Some(item.iter().filter(|(k, _)| keep.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// The string form of an S/N/B key attribute.
fn scalar(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    ["S", "N", "B"].iter().find_map(|t| obj.get(*t).and_then(Value::as_str).map(str::to_owned))
}

/// Write units of an item of `bytes` (1 KB each, at least 1).
pub fn write_units(bytes: usize) -> f64 {
    bytes.max(1).div_ceil(1024) as f64
}

/// Read units of `bytes` read in one request (4 KB each, at least 1; half if eventually consistent).
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let u = bytes.max(1).div_ceil(4096) as f64;
    if consistent {
        u
    } else {
        u / 2.0
    }
}

/// SQS requests billed for a call moving `bytes` (each 64 KiB chunk is one request).
pub fn sqs_requests(bytes: usize) -> f64 {
    bytes.max(1).div_ceil(64 * 1024) as f64
}

/// Units on one partition key.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    pub wru: f64,
    pub rru: f64,
    /// The part of `rru` that read configuration the functions cache (`CONFIG_CACHE_SECONDS`):
    /// subscriptions and API key records. Under sustained traffic it is paid once per container
    /// per cache period, not per delivery.
    pub cached_rru: f64,
    /// The part of `wru` written to subscription items (`sk=SUB#…`) or their state items
    /// (`pk=SUBSTATE#…`) while deliveries run: the dispatcher's record of a subscription's last
    /// delivery and its failing clock, written when the outcome changes (at most once per
    /// `LAST_DELIVERY_COALESCE_MS` per container) and otherwise once per
    /// `LAST_DELIVERY_REFRESH_SECS` per container; and the in-flight cap's slot leases
    /// (`pk=SLOTS#…`, see `is_slot_lease`), taken per container for a fast receiver.
    pub state_wru: f64,
}

/// Whether a read is of configuration behind the functions' read cache (`puck_core::cache`): a
/// subscription (`sk=SUB#…`, by key or the account's list) or an API key record (`pk=APIKEY#…`).
fn is_cached_config(pk: &str, sk_or_prefix: Option<&str>) -> bool {
    pk.starts_with("APIKEY#") || is_subscription_state(pk) || sk_or_prefix.is_some_and(|sk| sk.starts_with("SUB#"))
}

/// Whether `pk` is a subscription's runtime state item (`SUBSTATE#<account>#<subscription>`):
/// read with the subscription, through the same cache, and written by delivery outcomes.
fn is_subscription_state(pk: &str) -> bool {
    pk.starts_with("SUBSTATE#")
}

/// Whether `pk` holds a subscription's in-flight slot leases (`SLOTS#<account>#<subscription>`).
/// An instance takes one (a Query, a PutItem and a DeleteItem) for an attempt only while it does
/// not know the subscription's receiver to be fast (`puck_core::services::dispatch::in_flight`):
/// its first attempts of the subscription, then one every `MEMORY_SECS`; so with the scenarios'
/// fast receiver they are paid per instance, not per delivery, like subscription state. A slow
/// receiver's attempts each take one: BENCHMARKS.md's table of what the optional mechanisms add
/// prices that.
fn is_slot_lease(pk: &str) -> bool {
    pk.starts_with("SLOTS#")
}

/// What a call log costs.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Read units (table and indexes).
    pub rru: f64,
    /// Write units on the table itself.
    pub table_wru: f64,
    /// Write units per GSI.
    pub index_wru: BTreeMap<String, f64>,
    /// SQS requests as billed (64 KiB chunks).
    pub sqs: f64,
    /// Secrets Manager API calls.
    pub secrets: f64,
    /// Calls per `Service.Operation`.
    pub calls: BTreeMap<String, u64>,
    /// Units per `(table or index name, partition key value)`.
    pub keys: BTreeMap<(String, String), Load>,
    /// Item kinds written (first segment of the sort key) with their sizes, for the report.
    pub writes: BTreeMap<String, (u64, usize)>,
    /// Write and read units of the sample paid per warm container and period, not per delivery
    /// (subscription state, cached configuration), which [`Ledger::billed_per_delivery`] moved
    /// out of `table_wru` and `rru`.
    pub per_container: (f64, f64),
}

impl Ledger {
    /// This ledger as a per-delivery bill: the sample's subscription-state writes and cached
    /// configuration reads ([`Load::state_wru`], [`Load::cached_rru`]) are paid once per warm
    /// container and period (`LAST_DELIVERY_REFRESH_SECS`, `CONFIG_CACHE_SECONDS`) whatever the
    /// delivery rate, so a small sample would bill them to a handful of deliveries; they move to
    /// [`Ledger::per_container`]. The partition model still sees them on their keys.
    pub fn billed_per_delivery(mut self) -> Self {
        let state: f64 = self.keys.values().map(|l| l.state_wru).sum();
        let cached: f64 = self.keys.values().map(|l| l.cached_rru).sum();
        self.table_wru = (self.table_wru - state).max(0.0);
        self.rru = (self.rru - cached).max(0.0);
        self.per_container = (state, cached);
        self
    }

    /// Write units on the table and every index.
    pub fn wru(&self) -> f64 {
        self.table_wru + self.index_wru.values().sum::<f64>()
    }
}

/// Replays calls against a shadow of the table.
pub struct Replay<'a> {
    schema: &'a Schema,
    table: String,
    shadow: BTreeMap<(String, String), Item>,
    after: BTreeMap<(String, String), Item>,
    /// The result.
    pub ledger: Ledger,
}

impl<'a> Replay<'a> {
    /// `before`: the table's items when the phase started; `after`: when it ended.
    pub fn new(schema: &'a Schema, table: &str, before: &[Item], after: &[Item]) -> Self {
        let by_key = |items: &[Item]| items.iter().filter_map(|i| Some((schema.key_of(i)?, i.clone()))).collect();
        Self {
            schema,
            table: table.to_owned(),
            shadow: by_key(before),
            after: by_key(after),
            ledger: Ledger::default(),
        }
    }

    /// Replays a whole log and returns the ledger.
    pub fn run(mut self, calls: &[Call]) -> Ledger {
        for c in calls {
            self.call(c);
        }
        self.ledger
    }

    fn load(&mut self, on: &str, pk: String) -> &mut Load {
        self.ledger.keys.entry((on.to_owned(), pk)).or_default()
    }

    /// Charges `units` written to the table item `key` to its partition key, noting subscription
    /// state (`sk=SUB#…`) apart.
    fn charge_write(&mut self, key: &(String, String), units: f64) {
        let table = self.table.clone();
        let load = self.load(&table, key.0.clone());
        load.wru += units;
        if key.1.starts_with("SUB#") || is_subscription_state(&key.0) || is_slot_lease(&key.0) {
            load.state_wru += units;
        }
    }

    /// Bills one item write (factor 2 inside a transaction) and moves the shadow on.
    fn write(&mut self, key: (String, String), after: Option<Item>, factor: f64) {
        let before = self.shadow.get(&key).cloned();
        let size = before.as_ref().map_or(0, item_size).max(after.as_ref().map_or(0, item_size));
        let units = factor * write_units(size);
        self.ledger.table_wru += units;
        self.charge_write(&key, units);
        let kind = key.1.split('#').next().unwrap_or_default().to_owned();
        let e = self.ledger.writes.entry(kind).or_default();
        e.0 += 1;
        e.1 = e.1.max(size);
        for index in &self.schema.indexes {
            let old = before.as_ref().and_then(|i| self.schema.project(index, i));
            let new = after.as_ref().and_then(|i| self.schema.project(index, i));
            let mut entries: Vec<(String, f64)> = Vec::new();
            let pk_of = |i: &Item| i.get(&index.pk).and_then(scalar).unwrap_or_default();
            let keys_of = |i: &Item| (pk_of(i), index.sk.as_ref().and_then(|s| i.get(s)).and_then(scalar));
            match (&old, &new) {
                (Some(o), Some(n)) if keys_of(o) == keys_of(n) => {
                    if o != n {
                        entries.push((pk_of(n), factor * write_units(item_size(o).max(item_size(n)))));
                    }
                }
                _ => {
                    if let Some(o) = &old {
                        entries.push((pk_of(o), factor * write_units(item_size(o))));
                    }
                    if let Some(n) = &new {
                        entries.push((pk_of(n), factor * write_units(item_size(n))));
                    }
                }
            }
            for (pk, units) in entries {
                *self.ledger.index_wru.entry(index.name.clone()).or_default() += units;
                self.ledger.keys.entry((index.name.clone(), pk)).or_default().wru += units;
            }
        }
        match after {
            Some(item) => self.shadow.insert(key, item),
            None => self.shadow.remove(&key),
        };
    }

    /// The item an UpdateItem leaves: the scan after the phase, else the item before (created and
    /// deleted within the phase: billed at its earlier size).
    fn updated(&self, key: &(String, String)) -> Option<Item> {
        self.after.get(key).or_else(|| self.shadow.get(key)).cloned()
    }

    fn read(&mut self, on: &str, key: (String, Option<String>), bytes: usize, consistent: bool, factor: f64) {
        let units = factor * read_units(bytes, consistent);
        self.ledger.rru += units;
        let cached = is_cached_config(&key.0, key.1.as_deref()) || is_slot_lease(&key.0);
        let load = self.load(on, key.0);
        load.rru += units;
        if cached {
            load.cached_rru += units;
        }
    }

    /// Bills one recorded call.
    pub fn call(&mut self, c: &Call) {
        *self.ledger.calls.entry(c.label()).or_default() += 1;
        match c.service.as_str() {
            "SQS" => self.ledger.sqs += sqs_requests(c.request_bytes.max(c.response_bytes)),
            "SecretsManager" => self.ledger.secrets += 1.0,
            "DynamoDB" => self.dynamo(c),
            _ => {}
        }
    }

    fn dynamo(&mut self, c: &Call) {
        let empty = Value::Null;
        let body = c.body.as_ref().unwrap_or(&empty);
        let failed = c.response.as_ref().and_then(|r| r.get("__type")).and_then(Value::as_str).map(str::to_owned);
        let consistent = body.get("ConsistentRead").and_then(Value::as_bool).unwrap_or(false);
        let schema = self.schema;
        let key_in = |v: Option<&Value>| v.and_then(Value::as_object).and_then(|m| schema.key_of(m));
        if let Some(error) = failed {
            // A failed conditional write is billed (at the item's size); throttles are not.
            if error.contains("ConditionalCheckFailed") {
                let key = key_in(body.get("Key")).or_else(|| key_in(body.get("Item")));
                let size = key.as_ref().and_then(|k| self.shadow.get(k)).map_or(1, item_size);
                self.ledger.table_wru += write_units(size);
                if let Some(k) = key {
                    self.charge_write(&k, write_units(size));
                }
            }
            return;
        }
        let table = self.table.clone();
        match c.operation.as_str() {
            "GetItem" => {
                let Some(key) = key_in(body.get("Key")) else { return };
                let size = self.shadow.get(&key).map_or(0, item_size);
                self.read(&table, (key.0, Some(key.1)), size, consistent, 1.0);
            }
            "BatchGetItem" => {
                for req in body.get("RequestItems").and_then(Value::as_object).into_iter().flat_map(|m| m.values()) {
                    let consistent = req.get("ConsistentRead").and_then(Value::as_bool).unwrap_or(false);
                    for k in req.get("Keys").and_then(Value::as_array).into_iter().flatten() {
                        let Some(key) = key_in(Some(k)) else { continue };
                        let size = self.shadow.get(&key).map_or(0, item_size);
                        self.read(&table, (key.0, Some(key.1)), size, consistent, 1.0);
                    }
                }
            }
            "TransactGetItems" => {
                for t in body.get("TransactItems").and_then(Value::as_array).into_iter().flatten() {
                    let Some(key) = key_in(t.pointer("/Get/Key")) else { continue };
                    let size = self.shadow.get(&key).map_or(0, item_size);
                    self.read(&table, (key.0, Some(key.1)), size, true, 2.0);
                }
            }
            "Query" | "Scan" => {
                let index = body
                    .get("IndexName")
                    .and_then(Value::as_str)
                    .and_then(|n| self.schema.indexes.iter().find(|i| i.name == n))
                    .cloned();
                let returned: Vec<Item> = c
                    .response
                    .as_ref()
                    .and_then(|r| r.get("Items"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_object).cloned().collect())
                    .unwrap_or_default();
                // Billed on what the query read: the full table item, or the projected index entry.
                let bytes: usize = returned
                    .iter()
                    .map(|r| {
                        let full = self
                            .schema
                            .key_of(r)
                            .and_then(|k| self.shadow.get(&k).cloned())
                            .unwrap_or_else(|| r.clone());
                        match &index {
                            Some(ix) => self.schema.project(ix, &full).map_or(item_size(r), |p| item_size(&p)),
                            None => item_size(&full),
                        }
                    })
                    .sum();
                let pk_attr = index.as_ref().map_or(self.schema.pk.clone(), |i| i.pk.clone());
                let pk = query_partition(body, &pk_attr).unwrap_or_else(|| "?".into());
                // A query's sort-key prefix (`begins_with(sk, :p)`) says what it lists.
                let prefix = body
                    .pointer("/ExpressionAttributeValues/:p/S")
                    .and_then(Value::as_str)
                    .filter(|_| index.is_none())
                    .map(str::to_owned);
                let on = index.map_or(table, |i| i.name);
                self.read(&on, (pk, prefix), bytes, consistent, 1.0);
            }
            "PutItem" => {
                let Some(item) = body.get("Item").and_then(Value::as_object).cloned() else { return };
                let Some(key) = self.schema.key_of(&item) else { return };
                self.write(key, Some(item), 1.0);
            }
            "UpdateItem" => {
                let Some(key) = key_in(body.get("Key")) else { return };
                let after = self.updated(&key);
                self.write(key, after, 1.0);
            }
            "DeleteItem" => {
                let Some(key) = key_in(body.get("Key")) else { return };
                self.write(key, None, 1.0);
            }
            "BatchWriteItem" => {
                for req in body
                    .get("RequestItems")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|m| m.values())
                    .filter_map(Value::as_array)
                    .flatten()
                {
                    if let Some(item) = req.pointer("/PutRequest/Item").and_then(Value::as_object) {
                        if let Some(key) = self.schema.key_of(item) {
                            self.write(key, Some(item.clone()), 1.0);
                        }
                    } else if let Some(key) = key_in(req.pointer("/DeleteRequest/Key")) {
                        self.write(key, None, 1.0);
                    }
                }
            }
            "TransactWriteItems" => {
                for t in body.get("TransactItems").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(item) = t.pointer("/Put/Item").and_then(Value::as_object) {
                        if let Some(key) = self.schema.key_of(item) {
                            self.write(key, Some(item.clone()), 2.0);
                        }
                    } else if let Some(key) = key_in(t.pointer("/Update/Key")) {
                        let after = self.updated(&key);
                        self.write(key, after, 2.0);
                    } else if let Some(key) = key_in(t.pointer("/Delete/Key")) {
                        self.write(key, None, 2.0);
                    } else if let Some(key) = key_in(t.pointer("/ConditionCheck/Key")) {
                        // A condition check in a transaction is billed as a transactional read.
                        let size = self.shadow.get(&key).map_or(0, item_size);
                        self.read(&table, (key.0, Some(key.1)), size, true, 2.0);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Per-item storage overhead DynamoDB adds (table items and index entries alike).
pub const ITEM_OVERHEAD_BYTES: usize = 100;

/// Bytes a phase left stored: items new or changed since `before` (changed ones net of their
/// old size), each with its index entries, at 100 B overhead per item and entry.
pub fn stored_bytes(schema: &Schema, before: &[Item], after: &[Item]) -> i64 {
    let stored = |i: &Item| -> i64 {
        let entries: usize = schema
            .indexes
            .iter()
            .filter_map(|ix| schema.project(ix, i))
            .map(|p| item_size(&p) + ITEM_OVERHEAD_BYTES)
            .sum();
        (item_size(i) + ITEM_OVERHEAD_BYTES + entries) as i64
    };
    let old: BTreeMap<(String, String), &Item> = before.iter().filter_map(|i| Some((schema.key_of(i)?, i))).collect();
    let mut total = 0;
    let mut seen = std::collections::BTreeSet::new();
    for item in after {
        let Some(key) = schema.key_of(item) else { continue };
        match old.get(&key) {
            Some(o) if *o == item => {}
            Some(o) => total += stored(item) - stored(o),
            None => total += stored(item),
        }
        seen.insert(key);
    }
    for (key, o) in &old {
        if !seen.contains(key) {
            total -= stored(o);
        }
    }
    total
}

/// The partition a Query reads: the value compared with `=` to the partition key attribute in
/// its `KeyConditionExpression` (names resolved through `ExpressionAttributeNames`).
fn query_partition(body: &Value, pk_attr: &str) -> Option<String> {
    let expr = body.get("KeyConditionExpression")?.as_str()?;
    let names = body.get("ExpressionAttributeNames").and_then(Value::as_object);
    let values = body.get("ExpressionAttributeValues")?.as_object()?;
    for part in expr.split(" AND ").chain(expr.split(" and ")) {
        let Some((left, right)) = part.split_once('=') else { continue };
        let left = left.trim().trim_start_matches('(');
        let name = if left.starts_with('#') {
            names.and_then(|n| n.get(left)).and_then(Value::as_str).unwrap_or(left)
        } else {
            left
        };
        if name == pk_attr {
            return values.get(right.trim().trim_end_matches(')')).and_then(scalar);
        }
    }
    None
}

#[cfg(test)]
mod tests;
