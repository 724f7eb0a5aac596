//! Fault injection (docs/delivery.md): receivers that fail, stall, reset, flood or
//! redirect; a dispatcher that dies between its POST and its write; DynamoDB failing in the
//! middle of any request. Real sockets, the real local stack; each ends as docs/delivery.md says and
//! says why in the attempt log. SQS failing after the DynamoDB write at publish time is the
//! sweeper's scenario in `retries.rs` (`a_lost_enqueue_is_recovered_by_the_sweeper`).

use crate::support::{create_subscription, id_of, SUBSCRIPTIONS};
use puck_aws::faults::FaultSwitches;
use puck_e2e::leaks::assert_not_leaked;
use puck_e2e::raw::{Misbehave, RawReceiver};
use puck_e2e::{wait_for_some, Receiver, Reply, Script, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Subscribes `url` and sends it a test delivery; returns (subscription, delivery path).
async fn test_delivery(stack: &TestStack, url: &str) -> (Value, String) {
    let sub = create_subscription(stack, json!({"url": url, "events": ["agent.*"]})).await;
    let (status, accepted, _) = stack.post(&format!("{SUBSCRIPTIONS}/{}/test", id_of(&sub)), Value::Null).await;
    assert_eq!(status, 202, "{accepted}");
    (sub, format!("/v1/webhooks/deliveries/{}", accepted["delivery_id"].as_str().unwrap()))
}

/// Waits until the delivery at `path` has `status` and returns it.
async fn wait_for_status(stack: &TestStack, path: &str, status: &str) -> Value {
    wait_for_some(EVENTUALLY, &format!("{path} to be {status}"), || async {
        let (_, d, _) = stack.get(path).await;
        (d["status"] == status).then_some(d)
    })
    .await
}

fn attempts(delivery: &Value) -> &Vec<Value> {
    delivery["attempts"].as_array().unwrap_or_else(|| panic!("no attempts in {delivery}"))
}

fn error_of(attempt: &Value) -> &str {
    attempt["error"].as_str().unwrap_or_else(|| panic!("attempt has no error: {attempt}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_logged_until_a_2xx() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start_with(Script::sequence([
        Reply::status(500).body("boom"),
        Reply::status(503).header("Retry-After", "1"),
        Reply::status(502),
    ]))
    .await;
    let (sub, path) = test_delivery(&stack, &receiver.url()).await;
    let delivery = wait_for_status(&stack, &path, "succeeded").await;
    let statuses: Vec<&Value> = attempts(&delivery).iter().map(|a| &a["response_status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(502), &json!(200)], "{delivery}");
    assert_eq!(attempts(&delivery)[0]["response_body"], "boom");
    let ids: Vec<_> = receiver.requests().iter().map(|r| r.header("x-puck-event-id").unwrap().to_owned()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "same event_id on every retry: {ids:?}");
    assert_not_leaked(&stack, &[("subscription secret".into(), sub["secret"].as_str().unwrap().into())]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_slower_than_the_attempt_timeout_is_a_timed_out_attempt_then_retried() {
    let stack = TestStack::start(TestStackOptions::default().delivery_timeout_secs(1)).await;
    let receiver = Receiver::start_with(Script::sequence([Reply::ok().delay(Duration::from_secs(3))])).await;
    let (_, path) = test_delivery(&stack, &receiver.url()).await;
    let delivery = wait_for_status(&stack, &path, "succeeded").await;
    let first = &attempts(&delivery)[0];
    assert_eq!(first["response_status"], Value::Null, "{first}");
    assert_eq!(error_of(first), "timeout after 1s");
    assert!(first["duration_ms"].as_u64().unwrap() < 2_500, "the timeout cut the attempt short: {first}");
    assert_eq!(attempts(&delivery).len(), 2, "{delivery}");
    assert_eq!(attempts(&delivery)[1]["response_status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stalls_mid_body_is_cut_off_by_the_timeout_and_retried() {
    let stack = TestStack::start(TestStackOptions::default().delivery_timeout_secs(1)).await;
    let receiver = RawReceiver::start([
        Misbehave::HangMidBody { status: 503, stall: Duration::from_secs(20) },
        Misbehave::Answer(200),
    ])
    .await;
    let (_, path) = test_delivery(&stack, &receiver.url()).await;
    let delivery = wait_for_status(&stack, &path, "succeeded").await;
    let first = &attempts(&delivery)[0];
    assert_eq!(first["response_status"], 503, "{first}");
    assert_eq!(first["response_body"], "partial body", "what arrived is kept");
    assert_eq!(error_of(first), "response body incomplete: timeout after 1s");
    assert!(first["duration_ms"].as_u64().unwrap() < 2_500, "not held by the stalled receiver: {first}");
    assert_eq!(attempts(&delivery).last().unwrap()["response_status"], 200);
    assert_eq!(receiver.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reset_without_an_answer_is_a_failed_attempt_then_retried() {
    let stack = TestStack::start_default().await;
    let receiver = RawReceiver::start([Misbehave::Reset, Misbehave::Answer(204)]).await;
    let (_, path) = test_delivery(&stack, &receiver.url()).await;
    let delivery = wait_for_status(&stack, &path, "succeeded").await;
    let first = &attempts(&delivery)[0];
    assert_eq!(first["response_status"], Value::Null, "{first}");
    let error = error_of(first);
    assert!(
        error.contains("reset") || error.contains("closed") || error.contains("connection"),
        "a clear error for a reset: {error}"
    );
    assert_eq!(attempts(&delivery)[1]["response_status"], 204);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("x-puck-event-id"), requests[1].header("x-puck-event-id"));
}

/// Resident set size of this process, from /proc (None elsewhere).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_answer_is_read_only_to_4_kib_and_the_dispatcher_stays_small() {
    const HUGE: u64 = 50 * 1024 * 1024;
    let stack = TestStack::start_default().await;
    let receiver = RawReceiver::start([Misbehave::HugeBody { status: 200, bytes: HUGE }]).await;
    let before = rss_bytes();
    let (_, path) = test_delivery(&stack, &receiver.url()).await;
    let delivery = wait_for_status(&stack, &path, "succeeded").await;
    assert_eq!(attempts(&delivery).len(), 1, "{delivery}");
    let body = attempts(&delivery)[0]["response_body"].as_str().unwrap();
    assert_eq!(body.len(), 4096, "the attempt keeps the first 4 KiB");
    assert!(body.bytes().all(|b| b == b'x'));
    // The dispatcher stopped reading and hung up: the receiver could not push the 50 MB.
    wait_for_some(EVENTUALLY, "the huge answer to stop", || async {
        let a = receiver.body_bytes_written();
        tokio::time::sleep(Duration::from_millis(300)).await;
        (receiver.body_bytes_written() == a).then_some(())
    })
    .await;
    let written = receiver.body_bytes_written();
    assert!(written < HUGE / 4, "the receiver pushed {written} bytes; the sender should have stopped reading");
    if let (Some(before), Some(after)) = (before, rss_bytes()) {
        let grown = after.saturating_sub(before);
        assert!(grown < 40 * 1024 * 1024, "the process grew by {grown} bytes while a 50 MB answer was offered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_never_followed_not_even_to_another_receiver_or_the_metadata_service() {
    let stack = TestStack::start_default().await;
    let elsewhere = Receiver::start().await;
    let receiver = Receiver::start_with(Script::sequence([
        Reply::status(302).header("Location", &elsewhere.url()),
        Reply::status(307).header("Location", "https://169.254.169.254/latest/meta-data/"),
        Reply::status(301).header("Location", "https://127.0.0.1:1/"),
    ]))
    .await;
    let (_, path) = test_delivery(&stack, &receiver.url()).await;
    let delivery = wait_for_status(&stack, &path, "succeeded").await;
    let statuses: Vec<&Value> = attempts(&delivery).iter().map(|a| &a["response_status"]).collect();
    assert_eq!(statuses, [&json!(302), &json!(307), &json!(301), &json!(200)], "{delivery}");
    assert_eq!(attempts(&delivery)[0]["response_headers"]["location"], elsewhere.url(), "the 3xx is logged");
    assert_eq!(elsewhere.requests().len(), 0, "the redirect target must never be called");
    assert_eq!(receiver.requests().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_dying_after_the_post_is_retried_after_the_visibility_timeout_and_the_receiver_sees_the_event_twice(
) {
    let faults = Arc::new(FaultSwitches::default());
    let stack = TestStack::start(TestStackOptions::default().faults(faults.clone()).visibility_timeout_secs(3)).await;
    let receiver = Receiver::start().await;
    faults.fail_record_after_send.store(1, Ordering::SeqCst);
    let (sub, path) = test_delivery(&stack, &receiver.url()).await;

    let requests = receiver.wait_for(2, EVENTUALLY).await;
    assert_eq!(faults.fail_record_after_send.load(Ordering::SeqCst), 0, "the fault fired");
    let delivery = wait_for_status(&stack, &path, "succeeded").await;
    assert_eq!(requests[0].header("x-puck-event-id"), requests[1].header("x-puck-event-id"), "same event_id again");
    assert_ne!(requests[0].header("x-puck-delivery-id"), requests[1].header("x-puck-delivery-id"), "a new attempt id");
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= Duration::from_secs(2), "came back after the visibility timeout, not at once: {gap:?}");
    // Only the attempt that was recorded is in the log; the lost one was never written.
    assert_eq!(delivery["attempt_count"], 1, "{delivery}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.requests().len(), 2, "succeeded: no third send");
    assert_not_leaked(&stack, &[("subscription secret".into(), sub["secret"].as_str().unwrap().into())]).await;
}

/// The stack's tables as sorted item texts: equal before and after means nothing was written.
///
/// The per-account rate counters (`LIMIT#…`, docs/flow-control.md) are left out: they meter
/// requests, and a request that failed was still made, as API Gateway's own throttle counts it.
pub async fn table_state(stack: &TestStack) -> Vec<String> {
    let mut items: Vec<String> = puck_e2e::dynamo::scan_all(&stack.stack)
        .await
        .iter()
        .filter(|item| !item["pk"].as_str().is_some_and(|pk| pk.starts_with("LIMIT#")))
        .map(|v| canonical(v).to_string())
        .collect();
    items.sort();
    items
}

/// `v` with every object's keys sorted (a scan returns attributes in no particular order).
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Who calls a route in the DynamoDB-failure sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Api,
    InboundWithKey,
    InboundWithoutKey,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_failing_at_any_call_of_any_route_answers_503_json_and_leaves_nothing_half_written() {
    let faults = Arc::new(FaultSwitches::default());
    // No queue traffic (every enqueue fails; the deliveries stay put) and no sweeper run, so the
    // only DynamoDB calls are the request's own and the table changes only through it.
    let stack =
        TestStack::start(TestStackOptions::default().faults(faults.clone()).sweep_interval(Duration::from_secs(3600)))
            .await;
    faults.fail_sqs_send.store(true, Ordering::SeqCst);
    let sub = create_subscription(&stack, crate::support::subscription_body()).await;
    let sub_path = format!("{SUBSCRIPTIONS}/{}", id_of(&sub));
    let (_, test, _) = stack.post(&format!("{sub_path}/test"), Value::Null).await;
    let delivery_path = format!("/v1/webhooks/deliveries/{}", test["delivery_id"].as_str().unwrap());
    // Only a finished delivery replays: one of a deleted subscription is abandoned.
    let gone = create_subscription(&stack, crate::support::subscription_body()).await;
    let (_, gone_test, _) = stack.post(&format!("{SUBSCRIPTIONS}/{}/test", id_of(&gone)), Value::Null).await;
    stack.delete(&format!("{SUBSCRIPTIONS}/{}", id_of(&gone))).await;
    let finished_path = format!("/v1/webhooks/deliveries/{}", gone_test["delivery_id"].as_str().unwrap());
    let (endpoint, receive_path, _) = crate::support::create_endpoint(&stack, json!({"provider": "generic"})).await;
    let (_, inv, _) = stack.anonymous().post(&receive_path, json!({"query": "look at host 7"})).await;
    let investigation = format!("/v1/investigations/{}", inv["investigation_id"].as_str().unwrap());
    let event = json!({"event_type": "investigation.completed", "severity": "critical", "data": {}, "event_id": "dynamo-down-1"});

    use reqwest::Method;
    let routes: Vec<(Method, String, Value, Caller)> = vec![
        (Method::POST, SUBSCRIPTIONS.into(), crate::support::subscription_body(), Caller::Api),
        (Method::GET, SUBSCRIPTIONS.into(), Value::Null, Caller::Api),
        (Method::GET, sub_path.clone(), Value::Null, Caller::Api),
        (Method::PATCH, sub_path.clone(), json!({"name": "renamed", "secret": null}), Caller::Api),
        (Method::POST, format!("{sub_path}/test"), Value::Null, Caller::Api),
        (Method::POST, format!("{finished_path}/replay"), Value::Null, Caller::Api),
        (
            Method::POST,
            format!("{sub_path}/recover"),
            json!({"since": puck_core::time::Timestamp::now().plus_seconds(-3600).rfc3339()}),
            Caller::Api,
        ),
        (Method::POST, "/v1/events".into(), event, Caller::Api),
        (Method::GET, "/v1/webhooks/deliveries".into(), Value::Null, Caller::Api),
        (Method::GET, delivery_path.clone(), Value::Null, Caller::Api),
        (Method::POST, crate::support::ENDPOINTS.into(), json!({"provider": "github"}), Caller::Api),
        (Method::GET, crate::support::ENDPOINTS.into(), Value::Null, Caller::Api),
        // Inbound: a provider retries with the same idempotency key (see below)…
        (Method::POST, receive_path.clone(), json!({"query": "look at host 8"}), Caller::InboundWithKey),
        // …or without one: then a failed request must leave nothing behind either.
        (Method::POST, receive_path.clone(), json!({"query": "look at host 9"}), Caller::InboundWithoutKey),
        (Method::GET, investigation, Value::Null, Caller::Api),
        (Method::DELETE, format!("{}/{}", crate::support::ENDPOINTS, id_of(&endpoint)), Value::Null, Caller::Api),
        (Method::DELETE, sub_path.clone(), Value::Null, Caller::Api),
    ];
    let mut report = Vec::new();
    for (method, path, body, caller) in routes {
        let anonymous = caller != Caller::Api;
        let client = if anonymous { stack.anonymous() } else { stack.api().clone() };
        let headers: &[(&str, &str)] = if caller == Caller::InboundWithKey {
            &[("content-type", "application/json"), ("idempotency-key", "retry-me-1")]
        } else {
            &[("content-type", "application/json")]
        };
        let raw_body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
        let mut failed_at = 0;
        for n in 1..=30u32 {
            let before = table_state(&stack).await;
            faults.fail_dynamo_call_in.store(n, Ordering::SeqCst);
            let (status, resp, headers) = client.raw(method.clone(), &path, headers, raw_body.clone()).await;
            let untriggered = faults.fail_dynamo_call_in.swap(0, Ordering::SeqCst);
            if status != 503 {
                assert!(status < 300, "{method} {path} with DynamoDB call {n} failing: {status} {resp}");
                // Only DELETE of a subscription may succeed past a failed call: the abandoning of
                // its deliveries after the delete (the commit point) is best effort, because the
                // dispatcher abandons a delivery whose subscription is gone.
                let after_commit = method == Method::DELETE && path == sub_path;
                assert!(
                    untriggered > 0 || after_commit,
                    "{method} {path}: DynamoDB call {n} failed, yet the route answered {status}"
                );
                break;
            }
            failed_at = n;
            assert_eq!(resp["error"]["code"], "service_unavailable", "{method} {path} (call {n}): {resp}");
            assert!(
                resp["error"]["message"].as_str().is_some_and(|m| !m.is_empty() && !m.contains("dynamodb")),
                "{resp}"
            );
            assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"), "{method} {path}");
            if caller == Caller::InboundWithKey {
                // The inbound receiver writes the investigation (and its idempotency claim)
                // before publishing `investigation.queued`; a failure after that is finished by
                // the provider's retry with the same key, checked once the route succeeds.
                continue;
            }
            let after = table_state(&stack).await;
            let added: Vec<&String> = after.iter().filter(|i| !before.contains(i)).collect();
            let removed: Vec<&String> = before.iter().filter(|i| !after.contains(i)).collect();
            assert!(
                added.is_empty() && removed.is_empty(),
                "{method} {path} failed at DynamoDB call {n} with 503 but changed the table:\nadded {added:#?}\nremoved {removed:#?}"
            );
        }
        if caller == Caller::InboundWithKey {
            let state = table_state(&stack).await;
            let investigations: Vec<&String> =
                state.iter().filter(|i| i.contains("look at host 8") && i.contains("\"sk\":\"INV#")).collect();
            assert_eq!(
                investigations.len(),
                1,
                "retries with one idempotency key make one investigation: {investigations:#?}"
            );
            let id: Value = serde_json::from_str(investigations[0]).unwrap();
            let event_pk = format!("#investigation.queued.{}\"", id["id"].as_str().unwrap());
            let published = state.iter().any(|i| i.contains("\"pk\":\"EVT#") && i.contains(&event_pk));
            assert!(published, "and its investigation.queued event is published");
        }
        report.push(format!("{method} {path}: {failed_at} failure points"));
        assert!(failed_at >= 1, "{method} {path}: never failed");
    }
    eprintln!("{}", report.join("\n"));
    let (status, _, _) = stack.get(&sub_path).await;
    assert_eq!(status, 404, "the subscription was deleted");
}

/// `sam build` runs `cargo lambda build --release --bin <name>` at the repository root, which
/// builds the workspace's `default-members` with their features unified. If any of them enabled
/// `fault-injection` on a dependency, the deployed functions would carry the fault switches.
#[test]
fn no_crate_built_by_sam_build_enables_the_fault_switches() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = manifest.find("default-members").expect("the workspace declares default-members");
    let list = &manifest[start..manifest[start..].find(']').map(|e| start + e).unwrap()];
    let members: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
    assert!(members.contains(&"functions/api") && members.contains(&"functions/workers"), "{members:?}");
    for forbidden in ["infra/local", "infra/bench", "tests"] {
        assert!(!members.contains(&forbidden), "{forbidden} enables fault-injection and must not be a default member");
    }
    for member in members {
        let text = std::fs::read_to_string(root.join(member).join("Cargo.toml")).unwrap();
        for line in text.lines().map(str::trim) {
            let enables =
                line.contains("fault-injection") && !line.starts_with('#') && !line.starts_with("fault-injection =");
            assert!(!enables, "{member}/Cargo.toml enables the fault switches: {line}");
        }
    }
}
