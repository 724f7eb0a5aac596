//! Payload filters (docs/api.md, "Payload filters"): a subscription's condition on the event's `data`
//! decides, with the other filters, which events it gets, on single and batch publishes alike;
//! an invalid filter is a 400 naming its exact path, on create and on PATCH.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_e2e::delivery::{list_all_deliveries, wait_for_empty_delivery_queue};
use puck_e2e::{wait_until, Receiver, TestStack, EVENTUALLY};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn finding(id: &str, data: Value) -> Value {
    json!({"event_type": "finding.discovered", "event_id": id, "data": data, "severity": "high"})
}

fn event_ids(receiver: &Receiver) -> BTreeSet<String> {
    receiver.requests().iter().map(|r| r.header("x-puck-event-id").unwrap_or_default().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_filter_selects_events_by_their_data_on_single_and_batch_publish() {
    let stack = TestStack::start_default().await;
    let (filtered, everything) = (Receiver::start().await, Receiver::start().await);
    let payload = json!({
        "asset": {"host": {"$endsWith": ".prod.acme.example"}},
        "$or": [{"port": {"$in": [443, 8443]}}, {"labels": {"$contains": "pci"}}],
        "cvss": {"$gte": 7}
    });
    let created = create_subscription(
        &stack,
        json!({"url": filtered.url(), "events": ["finding.*"], "filters": {"min_severity": "medium", "payload": payload}}),
    )
    .await;
    assert_eq!(created["filters"]["payload"], payload, "{created}");
    let (_, got, _) = stack.get(&format!("{SUBSCRIPTIONS}/{}", id_of(&created))).await;
    assert_eq!(got["filters"]["payload"], payload, "stored and read back: {got}");
    create_subscription(&stack, json!({"url": everything.url(), "events": ["finding.*"]})).await;

    let host = |h: &str| json!({"host": h});
    let prod = "web-1.prod.acme.example";
    let singles = [
        ("s-match-port", json!({"asset": host(prod), "port": 443, "cvss": 9.8}), true),
        ("s-match-label", json!({"asset": host(prod), "labels": ["edge", "pci"], "cvss": 7}), true),
        ("s-dev-host", json!({"asset": host("web-1.dev.acme.example"), "port": 443, "cvss": 9.8}), false),
        ("s-low-cvss", json!({"asset": host(prod), "port": 443, "cvss": 6.9}), false),
        ("s-no-or", json!({"asset": host(prod), "port": 22, "cvss": 9.8}), false),
        ("s-missing", json!({"port": 443, "cvss": 9.8}), false),
    ];
    let mut wanted = BTreeSet::new();
    for (id, data, matches) in singles {
        let (status, accepted, _) = stack.post("/v1/events", finding(id, data)).await;
        assert_eq!((status, &accepted["deliveries"]), (202, &json!(1 + u32::from(matches))), "{id}: {accepted}");
        if matches {
            wanted.insert(id.to_owned());
        }
    }
    let batch = json!({"events": [
        finding("b-match", json!({"asset": host(prod), "port": 8443, "cvss": 7.5})),
        finding("b-string-cvss", json!({"asset": host(prod), "port": 8443, "cvss": "9"})),
        finding("b-match-2", json!({"asset": host("db.prod.acme.example"), "labels": ["pci"], "cvss": 10})),
    ]});
    let (status, accepted, _) = stack.post("/v1/events/batch", batch).await;
    assert_eq!(status, 202, "{accepted}");
    let counts: Vec<&Value> = accepted["results"].as_array().unwrap().iter().map(|r| &r["deliveries"]).collect();
    assert_eq!(counts, [&json!(2), &json!(1), &json!(2)], "a number never orders against a string: {accepted}");
    wanted.extend(["b-match".to_owned(), "b-match-2".to_owned()]);

    wait_until(EVENTUALLY, "every delivery to succeed", || async {
        let all = list_all_deliveries(&stack, "").await;
        all.len() == 9 + wanted.len() && all.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(event_ids(&filtered), wanted, "the filtered subscription gets exactly the matching events");
    assert_eq!(event_ids(&everything).len(), 9, "the unfiltered one gets them all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_payload_filter_is_a_400_naming_its_path_on_create_and_patch() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let body =
        |payload: Value| json!({"url": receiver.url(), "events": ["finding.*"], "filters": {"payload": payload}});
    let cases = [
        (json!({"host": {"$startsWith": 1}}), "filters.payload.host.$startsWith: must be a string"),
        (json!({"host": {"$like": "web-%"}}), "filters.payload.host.$like: unknown operator"),
        (json!({"$or": [{"a": 1}, {"b": {"$in": "x"}}]}), "filters.payload.$or[1].b.$in: must be an array"),
        (json!({"a": {"$exist": "yes"}}), "filters.payload.a.$exist: must be a boolean"),
        (json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}), "filters.payload.a.b.c.d.e: nesting deeper than 5 levels"),
        (json!({"a": "x".repeat(5000)}), "filters.payload: must be at most 4096 bytes of JSON"),
        (json!("host == web"), "filters.payload: must be an object"),
    ];
    for (payload, message) in &cases {
        let resp = stack.post(SUBSCRIPTIONS, body(payload.clone())).await;
        assert_error(&resp, 400, "validation_error", message);
        assert_eq!(resp.1["error"]["message"], *message, "the whole message");
    }
    let (_, list, _) = stack.get(SUBSCRIPTIONS).await;
    assert_eq!(list["subscriptions"], json!([]), "nothing created");

    let sub = id_of(&create_subscription(&stack, body(json!({"host": "web-1"}))).await);
    let path = format!("{SUBSCRIPTIONS}/{sub}");
    let resp = stack.patch(&path, json!({"filters": {"payload": {"host": {"$gt": true}}}})).await;
    assert_error(&resp, 400, "validation_error", "filters.payload.host.$gt: must be a number or a string");
    let (_, unchanged, _) = stack.get(&path).await;
    assert_eq!(unchanged["filters"], json!({"payload": {"host": "web-1"}}), "a refused PATCH changes nothing");

    // PATCH `filters` replaces the filters, as for min_severity and tags.
    let (status, patched, _) =
        stack.patch(&path, json!({"filters": {"payload": {"host": {"$startsWith": "db-"}}}})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["filters"], json!({"payload": {"host": {"$startsWith": "db-"}}}));
    let publish = |host: &str| json!({"event_type": "finding.discovered", "data": {"host": host}});
    let (_, web, _) = stack.post("/v1/events", publish("web-1")).await;
    let (_, db, _) = stack.post("/v1/events", publish("db-1")).await;
    assert_eq!((&web["deliveries"], &db["deliveries"]), (&json!(0), &json!(1)), "{web} {db}");
    let (status, cleared, _) = stack.patch(&path, json!({"filters": {"min_severity": "low"}})).await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["filters"], json!({"min_severity": "low"}), "the payload filter is gone");
}
