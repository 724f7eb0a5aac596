//! A subscription's runtime state (last delivery, failing clock) on its own key
//! (docs/storage.md, "A subscription's runtime state on its own key"): delivery outcomes write
//! that item and never the subscription's, which every subscription of the account shares a key
//! with; reads show it; a delete takes it along and a late write does not bring it back; a
//! subscription from before the upgrade shows the last delivery on its own item until it has one.

use crate::support::{create_subscription, id_of, SUBSCRIPTIONS};
use aws_sdk_dynamodb::types::AttributeValue;
use puck_core::ids::SubscriptionId;
use puck_core::model::DeliveryStatus;
use puck_core::time::Timestamp;
use puck_e2e::delivery::{list_all_deliveries, wait_for_delivery_status};
use puck_e2e::{wait_until, Receiver, Script, TestStack, TestStackOptions, EVENTUALLY};
use puck_local::provision::Physical;
use serde_json::{json, Value};

/// Every raw item of the stack's table whose `pk` is `pk`, as JSON.
async fn items_under(stack: &TestStack, pk: &str) -> Vec<Value> {
    let all = puck_e2e::dynamo::scan_all(&stack.stack).await;
    let mut found: Vec<Value> = all.into_iter().filter(|i| i["pk"] == pk).collect();
    found.iter_mut().for_each(|i| _ = i.as_object_mut().unwrap().remove("__table"));
    found
}

fn sub_pk(stack: &TestStack) -> String {
    format!("ACCT#{}", stack.account_id())
}

fn state_pk(stack: &TestStack, id: &str) -> String {
    format!("SUBSTATE#{}#{id}", stack.account_id())
}

/// The raw subscription item of `id`.
async fn subscription_item(stack: &TestStack, id: &str) -> Value {
    let items = items_under(stack, &sub_pk(stack)).await;
    items.into_iter().find(|i| i["sk"] == format!("SUB#{id}")).unwrap_or_else(|| panic!("no item for {id}"))
}

fn table_name(stack: &TestStack) -> String {
    let tables = stack.stack.provisioned.resources.values();
    tables.filter_map(|p| if let Physical::Table { name, .. } = p { Some(name.clone()) } else { None }).next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_outcomes_write_the_state_item_never_the_subscription_item_and_reads_show_them() {
    let stack = TestStack::start(TestStackOptions::default().max_delivery_attempts(5).backoff(1, 1)).await;
    let flaky = Receiver::start_with(Script::fail_times(1)).await;
    let f = id_of(&create_subscription(&stack, json!({"url": flaky.url(), "events": ["chain.confirmed"]})).await);
    let before = subscription_item(&stack, &f).await;
    let (_, state, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!((&state["last_delivery_status"], &state["last_delivery_at"]), (&Value::Null, &Value::Null));

    stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
    let log = list_all_deliveries(&stack, &format!("subscription_id={f}")).await;
    let dlv = log[0]["id"].as_str().unwrap().to_owned();
    let delivered = wait_for_delivery_status(&stack, &dlv, "succeeded", EVENTUALLY).await;
    assert_eq!(delivered["attempt_count"], 2, "one failure, then a success: {delivered}");
    // The success is written, at once or (within a second of the failure's write) held and then.
    let shown = || async {
        let (_, one, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
        (one["last_delivery_status"] == "succeeded").then_some(one)
    };
    wait_until(EVENTUALLY, "GET shows the success", || async { shown().await.is_some() }).await;
    let one = shown().await.unwrap();
    let at = Timestamp::parse_rfc3339(one["last_delivery_at"].as_str().unwrap()).unwrap();
    assert!(at >= Timestamp::parse_rfc3339(delivered["created_at"].as_str().unwrap()).unwrap(), "{one}");
    let (_, page, _) = stack.get(SUBSCRIPTIONS).await;
    let listed = page["subscriptions"].as_array().unwrap().iter().find(|s| s["id"] == f.as_str()).unwrap().clone();
    assert_eq!(
        (&listed["last_delivery_status"], &listed["last_delivery_at"]),
        (&one["last_delivery_status"], &one["last_delivery_at"])
    );

    let state = items_under(&stack, &state_pk(&stack, &f)).await;
    assert_eq!(state.len(), 1, "{state:?}");
    assert_eq!((&state[0]["sk"], &state[0]["last_delivery_status"]), (&json!("STATE"), &json!("succeeded")));
    assert_eq!(state[0].get("failing_since"), None, "a lone failure starts no failing clock: {state:?}");
    assert_eq!(subscription_item(&stack, &f).await, before, "the subscription item is not rewritten by outcomes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_subscription_removes_its_state_and_a_late_state_write_does_not_bring_it_back() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let f = id_of(&create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed"]})).await);
    stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
    receiver.wait_for(1, EVENTUALLY).await;
    let pk = state_pk(&stack, &f);
    wait_until(EVENTUALLY, "the state item holds the delivery", || async {
        items_under(&stack, &pk).await.first().is_some_and(|i| i["last_delivery_status"] == "succeeded")
    })
    .await;

    let (status, _, _) = stack.delete(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!(status, 204);
    assert!(items_under(&stack, &pk).await.is_empty(), "the state item went with the subscription");

    // A dispatcher that read the subscription before the delete writes its outcome after it.
    let (store, account) = (stack.ctx().subscriptions.clone(), stack.account_id().clone());
    let id = SubscriptionId::parse(&f).unwrap();
    store.record_last_delivery(&account, &id, DeliveryStatus::Failed, Timestamp::now()).await.unwrap();
    assert!(!store.mark_failing(&account, &id, Timestamp::now()).await.unwrap());
    store.clear_failing(&account, &id).await.unwrap();
    assert_eq!(store.count_failure(&account, &id, Timestamp::now(), 4).await.unwrap(), None);
    assert!(!store.disable_failing(&account, &id, Timestamp::now(), Timestamp::now()).await.unwrap());
    assert!(items_under(&stack, &pk).await.is_empty(), "no state item resurrected");
    assert!(items_under(&stack, &sub_pk(&stack)).await.iter().all(|i| i["sk"] != format!("SUB#{f}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_from_before_the_upgrade_shows_its_old_last_delivery_until_it_has_a_state_item() {
    let stack = TestStack::start_default().await;
    let f = id_of(&create_subscription(&stack, json!({"url": "https://hooks.example.com/a", "events": ["*"]})).await);
    // As an older release left it: the state on the subscription item, no state item.
    let (client, table) = (stack.stack.clients.dynamodb.clone(), table_name(&stack));
    let key = |pk: String, sk: &str| {
        [("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), AttributeValue::S(sk.into()))]
    };
    client
        .delete_item()
        .table_name(&table)
        .set_key(Some(key(state_pk(&stack, &f), "STATE").into()))
        .send()
        .await
        .unwrap();
    let old = "2026-01-02T03:04:05.000Z";
    client
        .update_item()
        .table_name(&table)
        .set_key(Some(key(sub_pk(&stack), &format!("SUB#{f}")).into()))
        .update_expression(
            "SET last_delivery_status = :st, last_delivery_at = :at, failing_since = :at, consecutive_failures = :n",
        )
        .expression_attribute_values(":st", AttributeValue::S("failed".into()))
        .expression_attribute_values(":at", AttributeValue::S(old.into()))
        .expression_attribute_values(":n", AttributeValue::N("2".into()))
        .send()
        .await
        .unwrap();
    let (_, shown, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!((&shown["last_delivery_status"], &shown["last_delivery_at"]), (&json!("failed"), &json!(old)));
    let (store, account, id) =
        (stack.ctx().subscriptions.clone(), stack.account_id().clone(), SubscriptionId::parse(&f).unwrap());
    assert_eq!(store.get_fresh(&account, &id).await.unwrap().unwrap().failing_since, None, "the old clock is not read");

    // The first outcome after the upgrade creates the state item, which then supersedes the old fields.
    let now = Timestamp::now();
    store.record_last_delivery(&account, &id, DeliveryStatus::Succeeded, now).await.unwrap();
    let (_, shown, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!((&shown["last_delivery_status"], &shown["last_delivery_at"]), (&json!("succeeded"), &json!(now)));
    assert!(store.mark_failing(&account, &id, now).await.unwrap());
    assert_eq!(store.get_fresh(&account, &id).await.unwrap().unwrap().failing_since, Some(now));
    // An older outcome written late (a held write of another container) does not undo a newer one.
    store.record_last_delivery(&account, &id, DeliveryStatus::Failed, now.plus_seconds(-5)).await.unwrap();
    let (_, shown, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!(shown["last_delivery_status"], "succeeded");
}
