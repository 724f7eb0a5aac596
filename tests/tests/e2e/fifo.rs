//! FIFO subscriptions (docs/flow-control.md, "FIFO order") end to end, and the SQS FIFO rules the local
//! stack holds as SQS does: a group blocked while a message of it is in flight (moto does this
//! too), and deduplication over 5 minutes including deleted messages (moto does not; the SQS
//! limits proxy does).

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_e2e::delivery::list_all_deliveries;
use puck_e2e::{wait_until, Receiver, Reply, Script, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::time::Duration;

/// An SQS client through the stack's SQS limits proxy, as the functions and pollers use it.
async fn proxied_sqs(stack: &TestStack) -> aws_sdk_sqs::Client {
    let env = &stack.stack.env;
    let (key, secret) = (&env["AWS_ACCESS_KEY_ID"], &env["AWS_SECRET_ACCESS_KEY"]);
    puck_local::provision::Clients::new(stack.stack.sqs_limits.endpoint(), key, secret).await.sqs
}

/// A FIFO queue of its own (the stack's is drained by its dispatcher).
async fn fifo_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    let out = sqs
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .expect("CreateQueue");
    out.queue_url.unwrap()
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("ReceiveMessage");
    out.messages.unwrap_or_default()
}

async fn send(sqs: &aws_sdk_sqs::Client, url: &str, body: &str, dedup: &str) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id("g")
        .message_deduplication_id(dedup)
        .send()
        .await
        .expect("SendMessage");
}

/// The proxy part fails on plain moto, which delivers the re-send (shown on the direct client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_resend_within_five_minutes_is_not_delivered_even_after_the_first_was_deleted() {
    let stack = TestStack::start_default().await;
    for (sqs, proxied) in [(proxied_sqs(&stack).await, true), (stack.stack.clients.sqs.clone(), false)] {
        let url = fifo_queue(&sqs, &format!("dedup-{}-{proxied}", std::process::id())).await;
        send(&sqs, &url, "first", "same-id").await;
        let got = receive(&sqs, &url).await;
        assert_eq!(got.len(), 1);
        sqs.delete_message().queue_url(&url).receipt_handle(got[0].receipt_handle().unwrap()).send().await.unwrap();
        send(&sqs, &url, "first", "same-id").await;
        let again = receive(&sqs, &url).await;
        if proxied {
            assert!(again.is_empty(), "SQS drops a duplicate within 5 minutes: {again:?}");
        } else {
            assert_eq!(again.len(), 1, "plain moto delivers it (why the proxy enforces the window)");
        }
    }
}

/// A group's next message is not handed out while an earlier one is in flight, also once that
/// one's visibility was extended (a backoff): as SQS, and as moto already does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_group_is_held_while_its_head_is_in_flight_and_resumes_in_order() {
    let stack = TestStack::start_default().await;
    let sqs = proxied_sqs(&stack).await;
    let url = fifo_queue(&sqs, &format!("order-{}", std::process::id())).await;
    for i in 0..3 {
        send(&sqs, &url, &format!("m{i}"), &format!("d{i}")).await;
    }
    let first = sqs.receive_message().queue_url(&url).max_number_of_messages(1).send().await.unwrap();
    let head = first.messages.unwrap_or_default().remove(0);
    assert_eq!(head.body(), Some("m0"));
    sqs.change_message_visibility()
        .queue_url(&url)
        .receipt_handle(head.receipt_handle().unwrap())
        .visibility_timeout(2)
        .send()
        .await
        .unwrap();
    assert!(receive(&sqs, &url).await.is_empty(), "m1 must wait while m0 is in flight");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let back: Vec<String> = receive(&sqs, &url).await.iter().map(|m| m.body().unwrap().to_owned()).collect();
    assert_eq!(back.first().map(String::as_str), Some("m0"), "the head comes back first: {back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_is_a_boolean_set_at_creation_or_by_patch() {
    let stack = TestStack::start_default().await;
    let body = json!({"url": "https://hooks.example.com/p", "events": ["chain.confirmed"], "fifo": "yes"});
    assert_error(&stack.post(SUBSCRIPTIONS, body).await, 400, "validation_error", "fifo");
    let sub =
        create_subscription(&stack, json!({"url": "https://hooks.example.com/p", "events": ["chain.confirmed"]})).await;
    assert_eq!(sub["fifo"], false);
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&sub));
    assert_error(&stack.patch(&path, json!({"fifo": null})).await, 400, "validation_error", "fifo");
    let (status, patched, _) = stack.patch(&path, json!({"fifo": true})).await;
    assert_eq!((status, &patched["fifo"]), (200, &json!(true)), "{patched}");
}

/// The measured promise: five events to a FIFO subscription whose receiver fails the second
/// one's first attempt arrive in publish order, the third only after the second succeeded; a
/// `/test` sent while the line waits is not held by it; a replay joins the back of the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_subscription_receives_events_in_publish_order_behind_a_failed_one() {
    let stack = TestStack::start(TestStackOptions::default().backoff(3, 3)).await;
    let receiver = Receiver::start_with(Script::sequence([Reply::ok(), Reply::status(500)]).then(Reply::ok())).await;
    let body = json!({"url": receiver.url(), "events": ["chain.confirmed", "investigation.queued"], "fifo": true});
    let sub = id_of(&create_subscription(&stack, body).await);
    let mut event_ids = Vec::new();
    for i in 0..5 {
        let (status, accepted, _) =
            stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {"n": i}})).await;
        assert_eq!(status, 202, "{accepted}");
        event_ids.push(accepted["event_id"].as_str().unwrap().to_owned());
    }
    // The second event's first attempt fails; while it waits for its retry, a test event goes.
    receiver.wait_for(2, EVENTUALLY).await;
    let (status, test, _) = stack.post(&format!("{SUBSCRIPTIONS}/{sub}/test"), json!({})).await;
    assert_eq!(status, 202, "{test}");
    let requests = receiver.wait_for(7, Duration::from_secs(60)).await;
    let seen: Vec<String> = requests.iter().map(|r| r.header("x-puck-event-id").unwrap().to_owned()).collect();
    let test_at = seen.iter().position(|e| !event_ids.contains(e)).expect("the test event arrived");
    let line: Vec<&String> = seen.iter().filter(|e| event_ids.contains(e)).collect();
    let expected: Vec<&String> = [0, 1, 1, 2, 3, 4].iter().map(|&i| &event_ids[i]).collect();
    assert_eq!(line, expected, "publish order, the failed one retried before the rest");
    let retry_at = seen.iter().rposition(|e| *e == event_ids[1]).unwrap();
    assert!(test_at < retry_at, "the test event did not queue behind the line: {seen:?}");
    let gap = requests[retry_at + 1].received_at.duration_since(requests[retry_at - 1].received_at);
    assert!(gap >= Duration::from_secs(2), "the third waited for the second's retry ({gap:?})");
    let log = list_all_deliveries(&stack, &format!("subscription_id={sub}")).await;
    assert!(log.iter().all(|d| d["status"] == "succeeded"), "{log:?}");

    // A replay (within 5 minutes of the first send: a new deduplication id) joins the line.
    let first = log.iter().find(|d| d["event_id"] == event_ids[0]).unwrap()["id"].as_str().unwrap().to_owned();
    let (status, _, _) = stack.post(&format!("/v1/webhooks/deliveries/{first}/replay"), Value::Null).await;
    assert_eq!(status, 202);
    let requests = receiver.wait_for(8, EVENTUALLY).await;
    assert_eq!(requests[7].header("x-puck-event-id"), Some(event_ids[0].as_str()));
    wait_until(EVENTUALLY, "the replay to succeed", || async {
        list_all_deliveries(&stack, &format!("subscription_id={sub}&status=succeeded")).await.len() == log.len()
    })
    .await;
}
