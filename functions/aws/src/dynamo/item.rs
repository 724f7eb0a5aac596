//! Records ↔ DynamoDB items, through each model's serde shape.
//!
//! A record is serialised to JSON (its one canonical shape, the same the model's tests pin) and
//! the JSON tree is mapped onto attribute values: objects → `M`, arrays → `L`, strings → `S`,
//! numbers → `N`, booleans → `BOOL`, null → `NULL`. Reading maps back and deserialises, so every
//! field round-trips, `None` included (stored as `NULL`). Timestamps are RFC 3339 strings here;
//! attributes used in key conditions (`due_at`, `expires_at`) are numbers the adapters add.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Why a conversion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ItemError(String);

/// Serialises a record (a struct) into an item.
pub fn to_item<T: Serialize>(value: &T) -> Result<Item, ItemError> {
    match serde_json::to_value(value).map_err(|e| ItemError(e.to_string()))? {
        Value::Object(map) => Ok(map.into_iter().map(|(k, v)| (k, to_attr(v))).collect()),
        _ => Err(ItemError("record did not serialise to an object".into())),
    }
}

/// Deserialises a record from an item; attributes the record does not know (keys, TTL) are
/// ignored.
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, ItemError> {
    let mut map = Map::new();
    for (k, v) in item {
        map.insert(k.clone(), from_attr(v)?);
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| ItemError(e.to_string()))
}

/// A JSON value as an attribute value.
pub fn to_attr(value: Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s),
        Value::Array(items) => AttributeValue::L(items.into_iter().map(to_attr).collect()),
        Value::Object(map) => AttributeValue::M(map.into_iter().map(|(k, v)| (k, to_attr(v))).collect()),
    }
}

/// Serialises any value (e.g. an attempt or a timestamp) into one attribute value.
pub fn value_to_attr<T: Serialize>(value: &T) -> Result<AttributeValue, ItemError> {
    serde_json::to_value(value).map(to_attr).map_err(|e| ItemError(e.to_string()))
}

/// An attribute value as JSON. Sets (never written by this crate) read as arrays.
pub fn from_attr(attr: &AttributeValue) -> Result<Value, ItemError> {
    Ok(match attr {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(raw) => Value::Number(parse_number(raw)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => Value::Array(items.iter().map(from_attr).collect::<Result<_, _>>()?),
        AttributeValue::M(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), from_attr(v)?);
            }
            Value::Object(out)
        }
        AttributeValue::Ss(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(items) => {
            Value::Array(items.iter().map(|n| parse_number(n).map(Value::Number)).collect::<Result<_, _>>()?)
        }
        _ => return Err(ItemError("unsupported attribute type".into())),
    })
}

fn parse_number(raw: &str) -> Result<Number, ItemError> {
    if let Ok(i) = raw.parse::<i64>() {
        return Ok(Number::from(i));
    }
    if let Ok(u) = raw.parse::<u64>() {
        return Ok(Number::from(u));
    }
    raw.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| ItemError("attribute is not a valid number".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use puck_core::ids::{AccountId, AttemptId, DeliveryId, EndpointId, EventId, SubscriptionId};
    use puck_core::model::{Attempt, Delivery, DeliveryStatus, Endpoint, Provider, Subscription};
    use puck_core::time::Timestamp;
    use puck_core::validation::{EventPattern, Filters, Severity, TargetUrl};
    use std::collections::BTreeMap;

    pub(crate) fn subscription() -> Subscription {
        Subscription {
            id: SubscriptionId::generate(1_700_000_000_000),
            account_id: AccountId::generate(1_700_000_000_000),
            name: None,
            url: Some(TargetUrl::parse("https://example.com/hook?x=1").unwrap()),
            events: vec![
                EventPattern::parse("finding.discovered").unwrap(),
                EventPattern::parse("investigation.*").unwrap(),
            ],
            filters: Filters {
                min_severity: Some(Severity::High),
                tags: BTreeMap::from([("team".to_owned(), "red".to_owned())]),
                // Operands DynamoDB could not hold as a map: stored as JSON text.
                payload: Some(
                    puck_core::filters::payload::PayloadFilter::parse(
                        "filters.payload",
                        &serde_json::json!({"risk": {"$lt": 1e300}, "meta": {"$eq": {"": 1}}}),
                    )
                    .unwrap(),
                ),
            },
            active: true,
            format: puck_core::body_formats::Format::MsTeams,
            header_names: vec!["Authorization".into()],
            headers_enc: Some("v1.nonce.sealed".into()),
            auth: Some(puck_core::oauth::StoredAuth {
                token_url: TargetUrl::parse("https://auth.example.com/token").unwrap(),
                client_id: "puck".into(),
                client_secret_enc: "v1.n.s".into(),
                scope: Some("hooks:write".into()),
                audience: None,
            }),
            created_at: Timestamp(1_700_000_000_123),
            updated_at: Timestamp(1_700_000_000_456),
            last_delivery_status: Some("succeeded".into()),
            last_delivery_at: None,
            secret_enc: "v1.abc.def".into(),
            previous_secret_enc: None,
            previous_secret_expires_at: Some(Timestamp(1_700_000_100_000)),
            failing_since: None,
            consecutive_failures: 0,
            disabled_reason: None,
            disabled_at: None,
            version: 0,
            signature_scheme: Default::default(),
            public_key: None,
            rate_limit_per_second: puck_core::rate::RateLimit::parse(2).ok(),
            fifo: true,
            destination: None,
        }
    }

    pub(crate) fn delivery() -> Delivery {
        Delivery {
            id: DeliveryId::generate(1_700_000_000_000),
            account_id: AccountId::generate(1_700_000_000_000),
            subscription_id: SubscriptionId::generate(1_700_000_000_000),
            event_id: EventId::parse("evt-1").unwrap(),
            event_type: "finding.discovered".into(),
            status: DeliveryStatus::Failed,
            attempt_count: 1,
            round_start: 0,
            fifo: false,
            next_attempt_at: Some(Timestamp(1_700_000_030_000)),
            last_response_status: Some(503),
            last_error: None,
            created_at: Timestamp(1_700_000_000_000),
            updated_at: Timestamp(1_700_000_001_000),
            expires_at: Timestamp::from_unix_seconds(1_700_000_000 + 30 * 86_400),
            payload: r#"{"event_id":"evt-1","data":{"n":1.5,"x":null}}"#.into(),
            attempts: vec![Attempt {
                attempt_id: AttemptId::generate(1_700_000_000_500),
                number: 1,
                started_at: Timestamp(1_700_000_000_500),
                duration_ms: 42,
                url: Some("https://example.com/hook?x=1".into()),
                request_headers: BTreeMap::from([("x-puck-signature".to_owned(), "***".to_owned())]),
                response_status: Some(503),
                response_headers: BTreeMap::new(),
                response_headers_omitted: 0,
                response_body: Some(String::new()),
                error: None,
            }],
        }
    }

    #[test]
    fn subscription_round_trips() {
        let sub = subscription();
        let item = to_item(&sub).unwrap();
        assert_eq!(item.get("name"), Some(&AttributeValue::Null(true)));
        assert_eq!(from_item::<Subscription>(&item).unwrap(), sub);
    }

    #[test]
    fn a_subscription_with_an_aws_destination_round_trips() {
        let raw = serde_json::json!({"type": "eventbridge", "event_bus_arn": "arn:aws:events:eu-west-1:111122223333:event-bus/soc", "role_arn": "arn:aws:iam::111122223333:role/puck"});
        let sub = Subscription {
            url: None,
            destination: Some(puck_core::destination::AwsDestination::parse(&raw).unwrap()),
            ..subscription()
        };
        let item = to_item(&sub).unwrap();
        assert_eq!(item.get("url"), Some(&AttributeValue::Null(true)));
        assert_eq!(from_item::<Subscription>(&item).unwrap(), sub);
    }

    #[test]
    fn delivery_round_trips_with_extra_key_attributes() {
        let d = delivery();
        let mut item = to_item(&d).unwrap();
        item.insert("pk".into(), AttributeValue::S("ACCT#x".into()));
        item.insert("due_at".into(), AttributeValue::N("1700000030000".into()));
        assert_eq!(item.get("status"), Some(&AttributeValue::S("failed".into())));
        assert_eq!(from_item::<Delivery>(&item).unwrap(), d);
    }

    #[test]
    fn endpoint_round_trips_with_json_scope() {
        let ep = Endpoint {
            id: EndpointId::generate(1),
            account_id: AccountId::generate(1),
            provider: Provider::Github,
            url_key_hash: "ab".repeat(32),
            url_key_prefix: "whk_abcd".into(),
            signing_secret_enc: Some("v1.x.y".into()),
            active: true,
            default_scope: Some(serde_json::json!({"repos": ["a", "b"], "depth": 2, "none": null, "f": -1.25})),
            default_depth: None,
            created_at: Timestamp(5),
        };
        assert_eq!(from_item::<Endpoint>(&to_item(&ep).unwrap()).unwrap(), ep);
    }

    #[test]
    fn bad_items_are_errors_not_panics() {
        let mut item = to_item(&subscription()).unwrap();
        item.insert("created_at".into(), AttributeValue::N("12".into()));
        assert!(from_item::<Subscription>(&item).is_err());
        item.insert("created_at".into(), AttributeValue::N("nan?".into()));
        assert!(from_item::<Subscription>(&item).is_err());
    }
}
