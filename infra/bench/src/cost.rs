//! Dollars per delivery: counted calls × capacity units × AWS list prices (us-east-1).
//!
//! DynamoDB bills on-demand requests by capacity units that depend on item size, so every counted
//! DynamoDB call is attributed to the item(s) it touched: PutItem/BatchWriteItem items come from
//! the request itself (exact), GetItem/UpdateItem/Query items from a scan of the table after the
//! scenario (for UpdateItem that is the item after the update, which is what DynamoDB bills when
//! the item grew; for the GetItem of a delivery it over-counts slightly, the attempt being added
//! after the read).

use crate::calls::{item_size, Call};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// DynamoDB on-demand, per write request unit (1 KB), since the Nov 2024 price cut.
pub const DYNAMO_WRU_USD: f64 = 0.625 / 1e6;
/// DynamoDB on-demand, per read request unit (4 KB strongly consistent, or 2 eventually consistent reads).
pub const DYNAMO_RRU_USD: f64 = 0.125 / 1e6;
/// SQS standard queue, per request (each 64 KB chunk of payload).
pub const SQS_REQUEST_USD: f64 = 0.40 / 1e6;
/// Lambda, per request.
pub const LAMBDA_REQUEST_USD: f64 = 0.20 / 1e6;
/// Lambda x86, per GB-second.
pub const LAMBDA_GB_S_USD: f64 = 0.000_016_666_7;
/// Secrets Manager, per API call ($0.05 per 10,000).
pub const SECRETS_CALL_USD: f64 = 0.05 / 10_000.0;
/// Memory the cost model assumes (the template's functions fit 128 MB; see the memory figures).
pub const LAMBDA_MEMORY_GB: f64 = 0.125;

/// Capacity units of one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Units {
    /// Read request units.
    pub rru: f64,
    /// Write request units.
    pub wru: f64,
    /// SQS requests.
    pub sqs: f64,
    /// Secrets Manager calls.
    pub secrets: f64,
    /// How the units were derived (item sizes), for the report.
    pub note: String,
}

/// Items of the table keyed by `(pk, sk)`.
pub type ItemIndex = BTreeMap<(String, String), Map<String, Value>>;

/// Indexes scanned items by key.
pub fn index(items: Vec<Map<String, Value>>) -> ItemIndex {
    items
        .into_iter()
        .filter_map(|i| {
            let pk = i.get("pk")?.get("S")?.as_str()?.to_owned();
            let sk = i.get("sk")?.get("S")?.as_str()?.to_owned();
            Some(((pk, sk), i))
        })
        .collect()
}

fn key_of(v: &Value) -> Option<(String, String)> {
    Some((v.pointer("/pk/S")?.as_str()?.to_owned(), v.pointer("/sk/S")?.as_str()?.to_owned()))
}

fn kind(sk: &str) -> &str {
    sk.split('#').next().unwrap_or(sk)
}

/// The units one call costs.
pub fn units(call: &Call, items: &ItemIndex) -> Units {
    let body = call.body.clone().unwrap_or(Value::Null);
    let consistent = body.get("ConsistentRead").and_then(Value::as_bool).unwrap_or(false);
    let read_units = |bytes: usize| {
        let u = bytes.max(1).div_ceil(4096) as f64;
        if consistent {
            u
        } else {
            u / 2.0
        }
    };
    match (call.service.as_str(), call.operation.as_str()) {
        ("SQS", _) => Units { sqs: 1.0, note: "1 request".into(), ..Units::default() },
        ("SecretsManager", _) => Units { secrets: 1.0, note: "1 API call".into(), ..Units::default() },
        ("DynamoDB", "GetItem") => {
            let key = body.get("Key").and_then(key_of);
            let size = key.as_ref().and_then(|k| items.get(k)).map_or(0, item_size);
            let what = key.map(|k| kind(&k.1).to_owned()).unwrap_or_default();
            Units { rru: read_units(size), note: format!("{what} item {size} B, consistent={consistent}"), ..Units::default() }
        }
        ("DynamoDB", "PutItem") => {
            let (size, what) = body
                .get("Item")
                .and_then(Value::as_object)
                .map(|i| (item_size(i), key_of(&Value::Object(i.clone())).map(|k| kind(&k.1).to_owned())))
                .unwrap_or((0, None));
            Units { wru: size.max(1).div_ceil(1024) as f64, note: format!("{} item {size} B", what.unwrap_or_default()), ..Units::default() }
        }
        ("DynamoDB", "UpdateItem" | "DeleteItem") => {
            let key = body.get("Key").and_then(key_of);
            let size = key.as_ref().and_then(|k| items.get(k)).map_or(0, item_size);
            let what = key.map(|k| kind(&k.1).to_owned()).unwrap_or_default();
            Units { wru: size.max(1).div_ceil(1024) as f64, note: format!("{what} item {size} B after update"), ..Units::default() }
        }
        ("DynamoDB", "BatchWriteItem") => {
            let mut wru = 0.0;
            let mut sizes = Vec::new();
            if let Some(tables) = body.get("RequestItems").and_then(Value::as_object) {
                for req in tables.values().filter_map(Value::as_array).flatten() {
                    let size = match (req.pointer("/PutRequest/Item"), req.pointer("/DeleteRequest/Key")) {
                        (Some(Value::Object(i)), _) => item_size(i),
                        (_, Some(k)) => key_of(k).and_then(|k| items.get(&k)).map_or(1, item_size),
                        _ => 1,
                    };
                    sizes.push(size);
                    wru += size.max(1).div_ceil(1024) as f64;
                }
            }
            Units { wru, note: format!("{} items of {:?} B", sizes.len(), sizes), ..Units::default() }
        }
        ("DynamoDB", "Query") => {
            // Items of the queried partition (and sort-key prefix) as they stand after the run.
            let values: Vec<String> = body
                .get("ExpressionAttributeValues")
                .and_then(Value::as_object)
                .map(|m| m.values().filter_map(|v| v.get("S").and_then(Value::as_str).map(str::to_owned)).collect())
                .unwrap_or_default();
            let on_index = body.get("IndexName").is_some();
            let matched: usize = items
                .iter()
                .filter(|((pk, sk), _)| {
                    !on_index && values.contains(pk) && values.iter().any(|p| p != pk && sk.starts_with(p.as_str()))
                })
                .map(|(_, i)| item_size(i))
                .sum();
            Units {
                rru: read_units(matched),
                note: format!("{matched} B returned, consistent={consistent}"),
                ..Units::default()
            }
        }
        _ => Units { note: "not priced".into(), ..Units::default() },
    }
}

/// Sum of units per `Service.Operation`.
pub fn by_operation(calls: &[Call], items: &ItemIndex) -> BTreeMap<String, (u64, Units)> {
    let mut out: BTreeMap<String, (u64, Units)> = BTreeMap::new();
    for c in calls {
        let u = units(c, items);
        let e = out.entry(c.label()).or_default();
        e.0 += 1;
        e.1.rru += u.rru;
        e.1.wru += u.wru;
        e.1.sqs += u.sqs;
        e.1.secrets += u.secrets;
        if e.1.note.is_empty() {
            e.1.note = u.note;
        } else if !e.1.note.contains(&u.note) && e.1.note.len() < 160 {
            e.1.note = format!("{}; {}", e.1.note, u.note);
        }
    }
    out
}

/// Lambda cost of `invocations` invocations lasting `total_ms` in all (each rounded up to 1 ms).
pub fn lambda_usd(invocations: f64, billed_ms: f64) -> f64 {
    invocations * LAMBDA_REQUEST_USD + LAMBDA_MEMORY_GB * billed_ms / 1000.0 * LAMBDA_GB_S_USD
}
