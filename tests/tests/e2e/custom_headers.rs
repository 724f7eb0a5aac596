//! Custom request headers per subscription (docs/api.md): sent on every attempt, shown as `***` in
//! get/list and in the delivery log, absent from a raw table dump and from every log line, and
//! refused with a 400 naming the header when reserved or malformed.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_e2e::delivery::{get_delivery, list_all_deliveries};
use puck_e2e::leaks::assert_not_leaked;
use puck_e2e::{install_log_capture, wait_until, Receiver, Script, TestStack, EVENTUALLY};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_arrive_on_every_attempt_and_are_never_shown_back() {
    install_log_capture();
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start_with(Script::fail_times(1)).await;
    let token = "Splunk 6f1c0e2a-SIEM-token-9b7d";
    let created = create_subscription(
        &stack,
        json!({"url": receiver.url(), "events": ["*"], "headers": {"Authorization": token, "X-Team": "blue"}}),
    )
    .await;
    assert_eq!(created["headers"], json!({"Authorization": "***", "X-Team": "***"}));
    let id = id_of(&created);

    let (status, _, _) =
        stack.post("/v1/events", json!({"event_type": "agent.registered", "data": {"agent_id": "a1"}})).await;
    assert_eq!(status, 202);
    wait_until(EVENTUALLY, "the retry to succeed", || async {
        list_all_deliveries(&stack, "").await.first().is_some_and(|d| d["status"] == "succeeded")
    })
    .await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one failure, one success");
    for r in &requests {
        assert_eq!(
            (r.header("authorization"), r.header("x-team")),
            (Some(token), Some("blue")),
            "sent on every attempt"
        );
    }

    let (_, fetched, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(fetched["headers"], json!({"Authorization": "***", "X-Team": "***"}));
    let (_, listed, _) = stack.get(SUBSCRIPTIONS).await;
    assert!(!listed.to_string().contains(token));
    let delivery = list_all_deliveries(&stack, "").await.remove(0);
    let detail = get_delivery(&stack, delivery["id"].as_str().unwrap()).await;
    for attempt in detail["attempts"].as_array().unwrap() {
        assert_eq!(attempt["request_headers"]["Authorization"], "***", "{attempt}");
        assert_eq!(attempt["url"], receiver.url(), "each attempt names its target");
    }
    assert!(!detail.to_string().contains(token));
    assert_not_leaked(
        &stack,
        &[
            ("custom header value".into(), token.into()),
            ("subscription secret".into(), created["secret"].as_str().unwrap().into()),
        ],
    )
    .await;

    // PATCH replaces the set; null removes it.
    let (_, replaced, _) = stack.patch(&format!("{SUBSCRIPTIONS}/{id}"), json!({"headers": {"X-Other": "1"}})).await;
    assert_eq!(replaced["headers"], json!({"X-Other": "***"}));
    let (_, removed, _) = stack.patch(&format!("{SUBSCRIPTIONS}/{id}"), json!({"headers": null})).await;
    assert_eq!(removed["headers"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_or_malformed_headers_are_400_naming_the_header_and_nothing_is_stored() {
    let stack = TestStack::start_default().await;
    let eleven: serde_json::Map<String, serde_json::Value> = (0..11).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    let cases = [
        (json!({"Host": "evil.example"}), "headers.Host"),
        (json!({"Content-Type": "text/plain"}), "headers.Content-Type"),
        (json!({"webhook-id": "x"}), "headers.webhook-id"),
        (json!({"X-Puck-Signature": "t=1,v1=00"}), "headers.X-Puck-Signature"),
        (json!({"Bad Name": "v"}), "Bad Name"),
        (json!({"X-A": "a".repeat(1025)}), "headers.X-A"),
        (json!({"X-A": "a\r\nX-Injected: 1"}), "headers.X-A"),
        (json!({"X-A": ""}), "headers.X-A"),
        (serde_json::Value::Object(eleven), "at most 10"),
        (json!("Authorization: x"), "headers"),
    ];
    for (headers, needle) in cases {
        let resp = stack
            .post(SUBSCRIPTIONS, json!({"url": "https://hooks.example.com/x", "events": ["*"], "headers": headers}))
            .await;
        assert_error(&resp, 400, "validation_error", needle);
    }
    let (_, listed, _) = stack.get(SUBSCRIPTIONS).await;
    assert!(listed["subscriptions"].as_array().unwrap().is_empty(), "nothing stored: {listed}");
}
