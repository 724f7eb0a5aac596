//! `webhook.subscription.failing` and `webhook.subscription.recovered` (docs/api.md,
//! "Operational events") through the running dispatcher: one of each per failing run, to another subscription
//! that listens to `webhook.*`, never to the subscription they are about.

use crate::support::{create_subscription, id_of};
use puck_core::time::Timestamp;
use puck_e2e::delivery::{get_delivery, list_all_deliveries, wait_for_delivery_status};
use puck_e2e::{Receiver, Script, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::time::Duration;

fn time(v: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_failed_attempts_in_a_row_announce_failing_once_and_the_next_success_recovered_once() {
    let stack = TestStack::start(TestStackOptions::default().max_delivery_attempts(10).backoff(1, 1)).await;
    let flaky = Receiver::start_with(Script::fail_times(4)).await;
    let ops = Receiver::start().await;
    let everything = Receiver::start().await;
    // The failing subscription listens to webhook.* too: it never hears about itself.
    let f = id_of(
        &create_subscription(&stack, json!({"url": flaky.url(), "events": ["chain.confirmed", "webhook.*"]})).await,
    );
    create_subscription(&stack, json!({"url": ops.url(), "events": ["webhook.*"]})).await;
    create_subscription(&stack, json!({"url": everything.url(), "events": ["*"]})).await;

    let (_, accepted, _) = stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
    assert_eq!(accepted["deliveries"], 2, "{accepted}");
    let log = list_all_deliveries(&stack, &format!("subscription_id={f}")).await;
    let dlv = log[0]["id"].as_str().unwrap().to_owned();
    let delivered = wait_for_delivery_status(&stack, &dlv, "succeeded", EVENTUALLY).await;
    assert_eq!(delivered["attempt_count"], 5, "{delivered}");
    let events = ops.wait_for(2, EVENTUALLY).await;
    let by_type = |t: &str| events.iter().map(|r| r.json()).find(|e| e["event_type"] == t).unwrap();
    let (failing, recovered) = (by_type("webhook.subscription.failing"), by_type("webhook.subscription.recovered"));

    let attempts = get_delivery(&stack, &dlv).await["attempts"].as_array().unwrap().clone();
    let failing_since = time(&failing["data"]["failing_since"]);
    assert!(failing_since >= time(&attempts[0]["started_at"]), "the run starts at the first failure");
    assert!(failing_since < time(&attempts[1]["started_at"]), "and not at a later one");
    assert_eq!(failing["data"]["subscription_id"], f.as_str());
    assert_eq!(failing["data"]["url"], flaky.url());
    assert_eq!(failing["data"]["consecutive_failures"], 4);
    assert_eq!(failing["data"]["last_response_status"], 500);
    assert_eq!(failing["data"]["last_error"], "HTTP 500");
    assert_eq!(recovered["data"]["subscription_id"], f.as_str());
    assert_eq!(recovered["data"]["url"], flaky.url());
    assert_eq!(recovered["data"]["failing_since"], failing["data"]["failing_since"]);
    assert!(time(&recovered["data"]["recovered_at"]) >= time(&attempts[4]["started_at"]));

    // Nothing more: not another failing/recovered pair, not to `f`, not to "*".
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ops.requests().len(), 2, "one failing and one recovered event");
    let to_f = flaky.requests();
    assert_eq!(to_f.len(), 5, "five attempts of the one chain.confirmed delivery");
    assert!(to_f.iter().all(|r| r.header("x-puck-event-type") == Some("chain.confirmed")));
    assert_eq!(list_all_deliveries(&stack, &format!("subscription_id={f}")).await.len(), 1);
    assert!(everything.requests().iter().all(|r| r.header("x-puck-event-type") == Some("chain.confirmed")));

    // Failures that are not 4 in a row (here 2, then a success) announce nothing.
    flaky.set_script(Script::fail_times(2));
    stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
    let log = list_all_deliveries(&stack, &format!("subscription_id={f}")).await;
    let second = log.iter().find(|d| d["id"] != dlv.as_str()).unwrap()["id"].as_str().unwrap().to_owned();
    wait_for_delivery_status(&stack, &second, "succeeded", EVENTUALLY).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ops.requests().len(), 2, "a short run is neither failing nor recovered");
}
