//! Raw DynamoDB dumps: what an attacker with read access to the table would see (docs/security.md).

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use puck_local::provision::Physical;
use puck_local::LocalStack;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Every item of every table the stack provisioned, via paginated `Scan`, as JSON objects (one
/// per item, with the table name under `"__table"`).
///
/// # Panics
/// When a scan fails.
pub async fn scan_all(stack: &LocalStack) -> Vec<Value> {
    let mut items = Vec::new();
    for physical in stack.provisioned.resources.values() {
        let Physical::Table { name, .. } = physical else { continue };
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = stack
                .clients
                .dynamodb
                .scan()
                .table_name(name)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap_or_else(|e| panic!("scan of {name} failed: {e:?}"));
            for item in page.items() {
                let mut obj = item_to_json(item);
                obj.insert("__table".into(), Value::String(name.clone()));
                items.push(Value::Object(obj));
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
    }
    items
}

/// One item as a JSON object (binary attributes base64-encoded, numbers as strings).
pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Map<String, Value> {
    item.iter().map(|(k, v)| (k.clone(), attribute_to_json(v))).collect()
}

fn attribute_to_json(value: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodb::primitives::Blob| {
        Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
    };
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => Value::String(s.clone()),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::B(b) => b64(b),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => Value::Array(v.iter().cloned().map(Value::String).collect()),
        AttributeValue::Bs(v) => Value::Array(v.iter().map(b64).collect()),
        AttributeValue::L(v) => Value::Array(v.iter().map(attribute_to_json).collect()),
        AttributeValue::M(m) => Value::Object(item_to_json(m)),
        other => Value::String(format!("{other:?}")),
    }
}
