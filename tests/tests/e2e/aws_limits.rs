//! What AWS enforces and moto does not (docs/local-stack.md), held against the local stack's
//! enforcing SQS (`puck_local::sqs_limits`, a proxy in front of moto that every function and
//! poller goes through): a visibility change past the 12 h window of its receive is refused, as
//! SQS refuses it, and messages expire by their queue's `MessageRetentionPeriod`.

use crate::support::{create_subscription, id_of};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use puck_core::time::Timestamp;
use puck_e2e::delivery::{get_delivery, list_all_deliveries};
use puck_e2e::{wait_for_some, Receiver, Reply, Script, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::json;

/// A receiver answering `429` with `Retry-After: 86400` (a day) gets its next attempt about 12 h
/// later: the longest SQS allows after the receive, less the dispatcher's margin, and the
/// delivery's `next_attempt_at` is when SQS will really show the message again.
///
/// On the code before the visibility window was counted from the receive, this fails: the dispatcher asked for 43,200 s from *now*, a little
/// after the receive, which SQS (and the proxy) refuses; the message then came back after the
/// queue's 180 s while the log said 12 h.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_long_retry_after_waits_twelve_hours_and_the_queue_agrees() {
    let stack = TestStack::start(TestStackOptions::default().backoff(1, 43_200)).await;
    let receiver = Receiver::start_with(Script::always(Reply::status(429).header("Retry-After", "86400"))).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed"]})).await;
    let (status, accepted, _) = stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
    assert_eq!(status, 202, "{accepted}");
    let log = list_all_deliveries(&stack, &format!("subscription_id={}", id_of(&sub))).await;
    let id = log[0]["id"].as_str().unwrap().to_owned();

    let limits = stack.stack.sqs_limits.clone();
    let receive = wait_for_some(EVENTUALLY, "the backoff visibility to be set on the delivery's message", || {
        let limits = limits.clone();
        let id = id.clone();
        async move { limits.receives().into_iter().find(|r| r.body.contains(&id) && r.visible_at.is_some()) }
    })
    .await;
    assert_eq!(limits.refusals(), [], "SQS would have refused the visibility change");
    let visible_at = receive.visible_at.unwrap();
    let hidden_for = visible_at - receive.received_at;
    let margin = f64::from(puck_core::backoff::RECEIVE_MARGIN_SECS);
    assert!(hidden_for <= 43_200.0, "visible {hidden_for:.0}s after the receive: past SQS's 12 h");
    assert!(hidden_for >= 43_200.0 - margin - 10.0, "hidden only {hidden_for:.0}s: not about 12 h");

    let delivery = get_delivery(&stack, &id).await;
    assert_eq!(
        (delivery["status"].as_str(), delivery["attempt_count"].as_u64()),
        (Some("failed"), Some(1)),
        "{delivery}"
    );
    let next = Timestamp::parse_rfc3339(delivery["next_attempt_at"].as_str().expect("next_attempt_at")).unwrap();
    let next_secs = next.unix_ms() as f64 / 1000.0;
    assert!((next_secs - visible_at).abs() <= 2.0, "next_attempt_at {next_secs:.0} vs real visibility {visible_at:.0}");
    assert_eq!(receiver.requests().len(), 1, "no early retry");
}

/// The enforcing SQS itself, through the real SDK: the 12 h window of a receive, and retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_sqs_refuses_visibility_past_the_window_and_expires_messages_by_retention() {
    let stack = TestStack::start_default().await;
    let limits = stack.stack.sqs_limits.clone();
    let direct = &stack.stack.clients.sqs;
    let name = format!("{}-limits", puck_local::unique_prefix("q"));
    let url = direct.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let sqs = puck_local::provision::Clients::new(limits.endpoint(), "test", "test").await.sqs;

    sqs.send_message().queue_url(&url).message_body("window").send().await.unwrap();
    let got = sqs.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default();
    let handle = got[0].receipt_handle.clone().unwrap();
    let refused =
        sqs.change_message_visibility().queue_url(&url).receipt_handle(&handle).visibility_timeout(43_200).send().await;
    let err = refused.expect_err("12 h from now is past 12 h from the receive");
    assert_eq!(err.as_service_error().and_then(|e| e.code()), Some("InvalidParameterValue"), "{err:?}");
    sqs.change_message_visibility()
        .queue_url(&url)
        .receipt_handle(&handle)
        .visibility_timeout(43_000)
        .send()
        .await
        .expect("inside the window");
    // Later in the receive's life less is left: 12 h minus the time since the receive.
    limits.advance(3_600.0);
    assert!(sqs
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(&handle)
        .visibility_timeout(40_000)
        .send()
        .await
        .is_err());
    sqs.change_message_visibility()
        .queue_url(&url)
        .receipt_handle(&handle)
        .visibility_timeout(39_000)
        .send()
        .await
        .expect("inside what is left");
    assert_eq!(limits.refusals().len(), 2);

    // Retention counts from the first enqueue; an expired message is deleted, never received.
    let old = format!("{name}-retention");
    let url = direct.create_queue().queue_name(&old).send().await.unwrap().queue_url.unwrap();
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod, "60")
        .send()
        .await
        .unwrap();
    let sent = sqs.send_message().queue_url(&url).message_body("expires").send().await.unwrap().message_id.unwrap();
    limits.advance(61.0);
    let got = sqs.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default();
    assert!(got.is_empty(), "an expired message was received: {got:?}");
    assert_eq!(limits.expired(), [sent]);
    let left = direct.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default();
    assert!(left.is_empty(), "the expired message is deleted from moto too");
}

/// Under DynamoDB throttling (a fifth of its requests answered `ProvisionedThroughputExceeded`
/// or `ThrottlingException` below the SDK, as DynamoDB answers them) every event still reaches
/// its receiver and ends `succeeded`, none `failed_permanent`: the SDK's retries and the queue's
/// redelivery absorb the throttles, and a receive that could not record its attempt does not use
/// up the attempts. A request whose calls stay throttled through the SDK's retries answers 503,
/// which a client retries (publishing is idempotent on `event_id`).
///
/// Before the SDK's HTTP client was built explicitly this failed: the switch found no client to
/// wrap and throttled nothing (`dynamo_throttled` stayed 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_dynamodb_delays_deliveries_but_loses_none_and_fails_none() {
    use std::sync::atomic::Ordering;
    let faults = std::sync::Arc::new(puck_aws::faults::FaultSwitches::default());
    let stack = TestStack::start(TestStackOptions::default().faults(faults.clone()).visibility_timeout_secs(3)).await;
    let receiver = Receiver::start().await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed"]})).await;
    faults.throttle_dynamo_per_mille.store(200, Ordering::Relaxed);
    let mut published = Vec::new();
    for n in 0..10 {
        let event_id = format!("throttled-{n}");
        let body = json!({"event_type": "chain.confirmed", "data": {"n": n}, "event_id": event_id});
        let accepted = wait_for_some(EVENTUALLY, "the publish to be accepted", || async {
            let (status, accepted, _) = stack.post("/v1/events", body.clone()).await;
            assert!(status == 202 || status == 503, "202, or 503 when throttled past the retries: {accepted}");
            (status == 202).then_some(accepted)
        })
        .await;
        assert_eq!(accepted["event_id"], event_id);
        published.push(event_id);
    }
    // Every event is sent while DynamoDB is still throttled, so its record step is too.
    let received = wait_for_some(EVENTUALLY, "every event to reach the receiver", || async {
        let mut ids: Vec<String> =
            receiver.requests().iter().map(|r| r.header("x-puck-event-id").unwrap().to_owned()).collect();
        ids.sort();
        ids.dedup();
        (ids.len() == published.len()).then_some(ids)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    faults.throttle_dynamo_per_mille.store(0, Ordering::Relaxed);
    assert!(faults.dynamo_throttled.load(Ordering::Relaxed) > 0, "the switch throttled DynamoDB requests");
    published.sort();
    assert_eq!(received, published, "every event reached the receiver");
    let query = format!("subscription_id={}", id_of(&sub));
    let log = wait_for_some(EVENTUALLY, "every delivery to be succeeded", || async {
        let log = list_all_deliveries(&stack, &query).await;
        (log.len() == published.len() && log.iter().all(|d| d["status"] == "succeeded")).then_some(log)
    })
    .await;
    assert!(log.iter().all(|d| d["attempt_count"].as_u64() >= Some(1)), "{log:?}");
}
