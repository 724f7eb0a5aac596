//! `POST /v1/events/batch` (docs/api.md): results in request order, one delivery per matching
//! subscription and event, each receiver getting the exact envelope (read back from the one
//! compressed body item per event), idempotent per `event_id` so a retried batch sends nothing
//! twice, and a batch with any invalid event refused whole with a 400 naming it.

use crate::support::{assert_error, create_subscription};
use puck_e2e::delivery::{get_delivery, list_all_deliveries, wait_for_empty_delivery_queue};
use puck_e2e::{wait_until, Receiver, TestStack, EVENTUALLY};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_fans_out_in_order_and_a_retry_publishes_only_what_is_missing() {
    let stack = TestStack::start_default().await;
    let findings = Receiver::start().await;
    let agents = Receiver::start().await;
    create_subscription(&stack, json!({"url": findings.url(), "events": ["finding.*"]})).await;
    create_subscription(&stack, json!({"url": agents.url(), "events": ["agent.*", "finding.discovered"]})).await;

    // Already published alone: the batch must answer it, not publish it again.
    let (status, single, _) =
        stack.post("/v1/events", json!({"event_type": "agent.registered", "data": {}, "event_id": "b-old"})).await;
    assert_eq!((status, single["deliveries"].clone()), (202, json!(1)), "{single}");

    let big = "z".repeat(100 * 1024);
    let events = json!({"events": [
        {"event_type": "finding.discovered", "data": {"n": 1, "big": big}, "event_id": "b-1"},
        {"event_type": "agent.disconnected", "data": {"n": 2}, "event_id": "b-2"},
        {"event_type": "chain.confirmed", "data": {"n": 3}, "event_id": "b-3"},
        {"event_type": "agent.registered", "data": {}, "event_id": "b-old"},
    ]});
    let (status, body, _) = stack.post("/v1/events/batch", events.clone()).await;
    assert_eq!(status, 202, "{body}");
    let results: Vec<(String, u64)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["event_id"].as_str().unwrap().to_owned(), r["deliveries"].as_u64().unwrap()))
        .collect();
    let want = [("b-1", 2), ("b-2", 1), ("b-3", 0), ("b-old", 1)];
    assert_eq!(results, want.iter().map(|(id, n)| (id.to_string(), *n)).collect::<Vec<_>>());

    let got_findings = findings.wait_for(1, EVENTUALLY).await;
    let got_agents = agents.wait_for(3, EVENTUALLY).await;
    let envelope = got_findings[0].json();
    assert_eq!(envelope["event_id"], "b-1");
    assert_eq!(
        envelope["data"]["big"].as_str().map(str::len),
        Some(100 * 1024),
        "the body item round-trips the whole payload"
    );
    let agent_ids: BTreeSet<String> =
        got_agents.iter().map(|r| r.json()["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(agent_ids, BTreeSet::from(["b-old".to_owned(), "b-1".to_owned(), "b-2".to_owned()]));
    wait_until(EVENTUALLY, "4 deliveries to succeed", || async {
        let all = list_all_deliveries(&stack, "").await;
        all.len() == 4 && all.iter().all(|d| d["status"] == "succeeded")
    })
    .await;

    // Each delivery shows its one attempt; the retried batch answers the same and sends nothing.
    for d in list_all_deliveries(&stack, "").await {
        let detail = get_delivery(&stack, d["id"].as_str().unwrap()).await;
        assert_eq!(detail["attempts"].as_array().map(Vec::len), Some(1), "{detail}");
        assert_eq!(detail["attempts"][0]["response_status"], 200, "{detail}");
    }
    let (status, again, _) = stack.post("/v1/events/batch", events).await;
    assert_eq!((status, again["results"].clone()), (202, body["results"].clone()));
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(list_all_deliveries(&stack, "").await.len(), 4);
    assert_eq!((findings.requests().len(), agents.requests().len()), (1, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_any_bad_event_is_refused_whole_naming_it() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*", "chain.*"]})).await;
    let ok = json!({"event_type": "finding.discovered", "data": {}});
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({}), 400, "validation_error", "events is required"),
        (json!({"events": "x"}), 400, "validation_error", "events must be an array"),
        (json!({"events": []}), 400, "validation_error", "events must hold 1 to 100 events"),
        (json!({"events": vec![ok.clone(); 101]}), 400, "validation_error", "not 101"),
        (json!({"events": [ok.clone()], "extra": 1}), 400, "validation_error", "unknown field \"extra\""),
        (
            json!({"events": [ok.clone(), ok.clone(), ok.clone(), {"event_type": "nope", "data": {}}]}),
            400,
            "validation_error",
            "events[3].event_type: ",
        ),
        (
            json!({"events": [ok.clone(), {"event_type": "chain.confirmed"}]}),
            400,
            "validation_error",
            "events[1].data: is required",
        ),
        (
            json!({"events": [{"event_type": "chain.confirmed", "data": {}, "severity": "huge"}]}),
            400,
            "validation_error",
            "events[0].severity: ",
        ),
        (
            json!({"events": [{"event_type": "chain.confirmed", "data": {}, "event_id": "a b"}]}),
            400,
            "validation_error",
            "events[0].event_id: ",
        ),
        (json!({"events": [ok.clone(), [1]]}), 400, "validation_error", "events[1]: must be a JSON object"),
        (
            json!({"events": [ok.clone(), {"event_type": "chain.confirmed", "data": {"x": "y".repeat(130 * 1024)}}]}),
            400,
            "validation_error",
            "events[1]: event is ",
        ),
        (
            json!({"events": vec![json!({"event_type": "chain.confirmed", "data": {"x": "y".repeat(120 * 1024)}}); 9]}),
            413,
            "payload_too_large",
            "1048576",
        ),
    ];
    for (body, status, code, needle) in cases {
        let resp = stack.post("/v1/events/batch", body).await;
        assert_error(&resp, status, code, needle);
    }
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert!(list_all_deliveries(&stack, "").await.is_empty(), "nothing was published");
    assert!(receiver.requests().is_empty());
}
