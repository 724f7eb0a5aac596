//! What the table holds for a delivery (docs/storage.md): the attempt that ends a delivery rides
//! in the delivery's own item, so a delivery that succeeds at once writes no attempt item and its
//! outcome costs one write unit; attempts a retry follows keep items of their own, and the log
//! shows all of them in order.

use aws_sdk_dynamodb::types::AttributeValue;
use puck_e2e::delivery::{list_all_deliveries, wait_for_delivery_status};
use puck_e2e::{wait_for_some, Receiver, Script, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::collections::HashMap;

use crate::support::{create_subscription, id_of};

type Item = HashMap<String, AttributeValue>;

/// Publishes one event to the stack's only subscription; the id of its delivery.
async fn publish_one(stack: &TestStack, subscription_id: &str) -> String {
    let (status, accepted, _) = stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": {}})).await;
    assert_eq!(status, 202, "{accepted}");
    let log = list_all_deliveries(stack, &format!("subscription_id={subscription_id}")).await;
    let mine: Vec<&Value> = log.iter().filter(|d| d["event_id"] == accepted["event_id"]).collect();
    assert_eq!(mine.len(), 1, "{log:?}");
    mine[0]["id"].as_str().unwrap().to_owned()
}

/// Every item of the stack's table whose partition or sort key mentions `needle`.
async fn items_naming(stack: &TestStack, needle: &str) -> Vec<Item> {
    let out = stack.stack.clients.dynamodb.scan().table_name(&stack.stack.table_name).send().await.unwrap();
    let mentions = |item: &Item, k: &str| item.get(k).and_then(|v| v.as_s().ok()).is_some_and(|v| v.contains(needle));
    out.items().iter().filter(|i| mentions(i, "pk") || mentions(i, "sk")).cloned().collect()
}

/// An item's size as DynamoDB bills it: attribute names plus values (numbers about one byte per
/// two digits, plus one).
fn billed_size(item: &Item) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value(v)).sum::<usize>(),
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>(),
            _ => 1,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

fn attempt_numbers(delivery: &Value) -> Vec<u64> {
    delivery["attempts"].as_array().unwrap().iter().map(|a| a["number"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_succeeds_at_once_is_one_item_within_one_write_unit() {
    let stack = TestStack::start(TestStackOptions::default()).await;
    let receiver = Receiver::start().await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let id = publish_one(&stack, &id_of(&sub)).await;
    let delivery = wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;

    let items = items_naming(&stack, &id).await;
    assert_eq!(items.len(), 1, "only the delivery's own item, no attempt item: {items:?}");
    let item = &items[0];
    eprintln!("the delivery's item: {} bytes", billed_size(item));
    assert!(item.contains_key("att1"), "the attempt is kept in the delivery's item: {item:?}");
    assert!(billed_size(item) <= 1024, "{} bytes: more than one write unit", billed_size(item));

    assert_eq!(attempt_numbers(&delivery), [1]);
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["response_status"], 200, "{attempt}");
    assert_eq!(attempt["request_headers"]["x-puck-signature"], "[redacted]", "{attempt}");
    assert_eq!(attempt["request_headers"]["x-puck-event-id"], delivery["event_id"], "{attempt}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_attempts_keep_their_own_items_and_the_log_shows_every_attempt_in_order() {
    let stack = TestStack::start(TestStackOptions::default().backoff(1, 2)).await;
    let receiver = Receiver::start_with(Script::fail_times(1)).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let id = publish_one(&stack, &id_of(&sub)).await;
    let delivery = wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;
    assert_eq!(attempt_numbers(&delivery), [1, 2]);
    assert_eq!(delivery["attempts"][0]["response_status"], 500);
    assert_eq!(delivery["attempts"][1]["response_status"], 200);

    // A replay's attempts add to the item; none overwrites an earlier one.
    let (status, body, _) = stack.post(&format!("/v1/webhooks/deliveries/{id}/replay"), json!({})).await;
    assert_eq!(status, 202, "{body}");
    receiver.wait_for(3, EVENTUALLY).await;
    let replayed = wait_for_some(EVENTUALLY, "the replay's attempt in the log", || async {
        let (_, d, _) = stack.get(&format!("/v1/webhooks/deliveries/{id}")).await;
        (d["status"] == "succeeded" && attempt_numbers(&d).len() == 3).then_some(d)
    })
    .await;
    assert_eq!(attempt_numbers(&replayed), [1, 2, 3]);
    assert!(replayed["attempts"].as_array().unwrap().iter().skip(1).all(|a| a["response_status"] == 200));

    let items = items_naming(&stack, &id).await;
    let attempt_items = items.iter().filter(|i| i["pk"].as_s().unwrap().starts_with("ATT#")).count();
    assert_eq!(attempt_items, 1, "only the failed attempt, which a retry followed, has an item: {items:?}");
    let own = items.iter().find(|i| i["sk"].as_s().unwrap().starts_with("DLV#")).expect("the delivery's item");
    assert!(own.contains_key("att2") && own.contains_key("att3"), "{own:?}");
}
