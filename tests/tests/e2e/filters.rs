//! Fan-out through `POST /v1/events`: every filter rule of docs/api.md (exact type, `prefix.*`,
//! `min_severity`, `tags`, inactive subscriptions) decides who gets what, the 202's `deliveries`
//! count is what receivers actually get, and publishing the same `event_id` twice delivers once.

use crate::support::create_subscription;
use puck_e2e::delivery::{list_all_deliveries, wait_for_empty_delivery_queue};
use puck_e2e::{wait_until, Receiver, TestStack, EVENTUALLY};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Publishes and returns the 202 body.
async fn publish(stack: &TestStack, event: Value) -> Value {
    let (status, accepted, _) = stack.post("/v1/events", event.clone()).await;
    assert_eq!(status, 202, "publish {event}: {accepted}");
    accepted
}

/// The X-Puck-Event-Id of every request a receiver got.
fn event_ids(receiver: &Receiver) -> Vec<String> {
    receiver.requests().iter().map(|r| r.header("x-puck-event-id").unwrap_or_default().to_owned()).collect()
}

/// Waits until the account's log holds `n` deliveries, all succeeded, and the queue is drained:
/// after that nothing more can reach a receiver.
async fn wait_until_all_delivered(stack: &TestStack, n: usize) {
    wait_until(EVENTUALLY, &format!("{n} deliveries to succeed"), || async {
        let all = list_all_deliveries(stack, "").await;
        all.len() == n && all.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    wait_for_empty_delivery_queue(stack, EVENTUALLY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_subscription_gets_exactly_the_events_its_types_and_filters_select() {
    let stack = TestStack::start_default().await;
    let mut receivers = BTreeMap::new();
    for (name, body) in [
        ("exact", json!({"events": ["finding.discovered"]})),
        ("prefix", json!({"events": ["finding.*"]})),
        ("severity", json!({"events": ["investigation.*"], "filters": {"min_severity": "high"}})),
        ("tags", json!({"events": ["agent.*"], "filters": {"tags": {"env": "prod", "team": "red"}}})),
        ("inactive", json!({"events": ["finding.*", "agent.*"], "active": false})),
        ("several", json!({"events": ["chain.confirmed", "agent.registered"]})),
    ] {
        let receiver = Receiver::start().await;
        let mut body = body;
        body["url"] = json!(receiver.url());
        create_subscription(&stack, body).await;
        receivers.insert(name, receiver);
    }

    // (event id, event, who must get it)
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("e-finding", json!({"event_type": "finding.discovered", "data": {}}), vec!["exact", "prefix"]),
        (
            "e-critical",
            json!({"event_type": "investigation.completed", "data": {}, "severity": "critical"}),
            vec!["severity"],
        ),
        ("e-high", json!({"event_type": "investigation.started", "data": {}, "severity": "high"}), vec!["severity"]),
        ("e-medium", json!({"event_type": "investigation.failed", "data": {}, "severity": "medium"}), vec![]),
        ("e-low", json!({"event_type": "investigation.failed", "data": {}, "severity": "low"}), vec![]),
        ("e-no-severity", json!({"event_type": "investigation.queued", "data": {}}), vec!["severity"]),
        (
            "e-all-tags",
            json!({"event_type": "agent.registered", "data": {}, "tags": {"env": "prod", "team": "red", "extra": "x"}}),
            vec!["tags", "several"],
        ),
        ("e-partial-tags", json!({"event_type": "agent.disconnected", "data": {}, "tags": {"env": "prod"}}), vec![]),
        (
            "e-wrong-tag",
            json!({"event_type": "agent.disconnected", "data": {}, "tags": {"env": "prod", "team": "blue"}}),
            vec![],
        ),
        ("e-no-tags", json!({"event_type": "agent.disconnected", "data": {}}), vec![]),
        ("e-chain", json!({"event_type": "chain.confirmed", "data": {}, "severity": "low"}), vec!["several"]),
    ];
    let mut expected: BTreeMap<&str, BTreeSet<String>> = receivers.keys().map(|k| (*k, BTreeSet::new())).collect();
    let mut total = 0;
    for (id, mut event, who) in cases {
        event["event_id"] = json!(id);
        let accepted = publish(&stack, event).await;
        assert_eq!(accepted["event_id"], id);
        assert_eq!(accepted["deliveries"], who.len(), "{id} should reach {who:?}");
        total += who.len();
        for w in who {
            expected.get_mut(w).unwrap().insert(id.to_owned());
        }
    }

    wait_until_all_delivered(&stack, total).await;
    for (name, receiver) in &receivers {
        let got = event_ids(receiver);
        assert_eq!(got.len(), expected[name].len(), "{name} got {got:?}, expected {:?}", expected[name]);
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected[name], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_the_same_event_id_twice_creates_the_deliveries_once() {
    let stack = TestStack::start_default().await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    for r in [&a, &b] {
        create_subscription(&stack, json!({"url": r.url(), "events": ["finding.*"]})).await;
    }
    let event = json!({"event_type": "finding.discovered", "data": {"n": 1}, "event_id": "evt-once"});
    let first = publish(&stack, event.clone()).await;
    assert_eq!(first, json!({"event_id": "evt-once", "deliveries": 2}));
    let second = publish(&stack, event).await;
    assert_eq!(second, first, "a repeat answers with the same count");
    // A repeat with different content is still the same event (the id decides).
    let third =
        publish(&stack, json!({"event_type": "finding.discovered", "data": {"n": 2}, "event_id": "evt-once"})).await;
    assert_eq!(third, first);

    // Two concurrent publishes of a new id: one wins, both answer the same.
    let racer = json!({"event_type": "finding.discovered", "data": {}, "event_id": "evt-race"});
    let (r1, r2) = tokio::join!(publish(&stack, racer.clone()), publish(&stack, racer));
    assert_eq!(r1, json!({"event_id": "evt-race", "deliveries": 2}));
    assert_eq!(r2, r1);

    wait_until_all_delivered(&stack, 4).await;
    for r in [&a, &b] {
        let mut ids = event_ids(r);
        ids.sort();
        assert_eq!(ids, ["evt-once", "evt-race"], "each receiver gets each event once");
        let once = r.requests().into_iter().find(|q| q.header("x-puck-event-id") == Some("evt-once")).unwrap();
        assert_eq!(once.json()["data"], json!({"n": 1}), "the first publish's content is what is delivered");
    }
}
