//! Publishing from inside AWS (docs/api.md, "Publishing from inside AWS"): a producer sends messages to
//! the ingest queue through the AWS SDK, and the ingest function publishes their events exactly as
//! `POST /v1/events` and `POST /v1/events/batch` do (same filters, same deliveries to real HTTPS
//! receivers, idempotent per `event_id` across both ways in). A message that can never be
//! published (malformed, unknown account, invalid event) lands in the ingest DLQ on its first
//! receive with its reason, is logged with that reason, and publishes nothing; a message that
//! failed for a transient reason (DynamoDB down) is retried by SQS and then published.

use crate::support::create_subscription;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use puck_aws::faults::FaultSwitches;
use puck_e2e::delivery::{list_all_deliveries, queue_depth, wait_for_empty_delivery_queue};
use puck_e2e::{captured_logs, wait_until, ReceivedRequest, Receiver, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Sends `body` to the ingest queue as a producer would (the SDK against the stack's SQS) and
/// returns the message id.
async fn send(stack: &TestStack, body: impl Into<String>) -> String {
    let out = stack
        .stack
        .clients
        .sqs
        .send_message()
        .queue_url(&stack.stack.ingest_queue_url)
        .message_body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SendMessage to the ingest queue: {e:?}"));
    out.message_id.expect("SQS returns a message id")
}

/// Waits until the ingest queue holds no message (each one processed and deleted) and every
/// delivery job they made has been consumed, so nothing more can arrive.
async fn wait_until_drained(stack: &TestStack) {
    let url = stack.stack.ingest_queue_url.clone();
    wait_until(EVENTUALLY, "the ingest queue to be empty", || {
        let url = url.clone();
        async move { queue_depth(stack, &url).await == (0, 0, 0) }
    })
    .await;
    wait_for_empty_delivery_queue(stack, EVENTUALLY).await;
}

/// What a receiver got, keyed by event id without its `h-`/`q-` prefix, with `emitted_at` (the
/// publish time) dropped: the HTTP-published and queue-published copies must then be equal.
fn by_event(requests: &[ReceivedRequest], prefix: &str) -> BTreeMap<String, Value> {
    requests
        .iter()
        .map(ReceivedRequest::json)
        .filter_map(|mut envelope| {
            let id = envelope["event_id"].as_str()?.strip_prefix(prefix)?.to_owned();
            let object = envelope.as_object_mut()?;
            object.remove("emitted_at");
            object.remove("event_id");
            Some((id, envelope))
        })
        .collect()
}

/// The events both ways publish, under ids `<prefix>1` … (the filters pick their receivers).
fn events(prefix: &str) -> Vec<Value> {
    vec![
        json!({"event_type": "finding.discovered", "event_id": format!("{prefix}1"), "severity": "high",
               "tags": {"team": "red"}, "data": {"finding_id": "fnd_1", "title": "Exposed admin panel"}}),
        json!({"event_type": "finding.discovered", "event_id": format!("{prefix}2"), "severity": "low",
               "data": {"finding_id": "fnd_2"}}),
        json!({"event_type": "agent.registered", "event_id": format!("{prefix}3"), "data": {"agent_id": "agent_1"}}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_events_reach_the_same_receivers_as_http_published_ones_once_per_event_id() {
    let stack = TestStack::start_default().await;
    let high = Receiver::start().await;
    let red = Receiver::start().await;
    let agents = Receiver::start().await;
    let filters_high = json!({"min_severity": "high"});
    create_subscription(&stack, json!({"url": high.url(), "events": ["finding.*"], "filters": filters_high})).await;
    let filters_red = json!({"tags": {"team": "red"}});
    create_subscription(&stack, json!({"url": red.url(), "events": ["*"], "filters": filters_red})).await;
    create_subscription(&stack, json!({"url": agents.url(), "events": ["agent.*"]})).await;
    let account = stack.account_id().to_string();

    // Over HTTP: one event alone, the other two as a batch.
    let http = events("h-");
    let (status, body, _) = stack.post("/v1/events", http[0].clone()).await;
    assert_eq!((status, body["deliveries"].clone()), (202, json!(2)), "{body}");
    let (status, body, _) = stack.post("/v1/events/batch", json!({"events": http[1..]})).await;
    assert_eq!(status, 202, "{body}");

    // The same through the queue: a single-event message and a batch message.
    let queued = events("q-");
    let mut single = queued[0].clone();
    single["account_id"] = json!(account);
    send(&stack, single.to_string()).await;
    send(&stack, json!({"account_id": account, "events": queued[1..]}).to_string()).await;
    wait_until_drained(&stack).await;

    for (name, receiver, count) in [("high", &high, 1), ("red", &red, 1), ("agents", &agents, 1)] {
        let got = receiver.requests();
        let (h, q) = (by_event(&got, "h-"), by_event(&got, "q-"));
        assert_eq!(h.len(), count, "{name}: {h:?}");
        assert_eq!(q, h, "{name}: the queued events arrive exactly as the HTTP-published ones");
    }
    let log = list_all_deliveries(&stack, "").await;
    let queued_deliveries = log.iter().filter(|d| d["event_id"].as_str().is_some_and(|e| e.starts_with("q-"))).count();
    assert_eq!(queued_deliveries, 3, "one delivery per matching subscription, none for q-2");

    // At least once: the same messages again (and again over HTTP) publish nothing more.
    send(&stack, single.to_string()).await;
    send(&stack, json!({"account_id": account, "events": queued[1..]}).to_string()).await;
    let (status, body, _) = stack.post("/v1/events", queued[0].clone()).await;
    assert_eq!((status, body["deliveries"].clone()), (202, json!(2)), "the first publish's answer: {body}");
    // And an event first published over HTTP, sent through the queue, is not published again.
    send(&stack, json!({"account_id": account, "events": [http[2].clone()]}).to_string()).await;
    wait_until_drained(&stack).await;
    assert_eq!((high.requests().len(), red.requests().len(), agents.requests().len()), (2, 2, 2));
    assert_eq!(list_all_deliveries(&stack, "").await.len(), 6);
}

/// Receives from the ingest DLQ until `n` messages arrived (attributes included), each kept
/// invisible so it is received once.
async fn dead_letters(stack: &TestStack, n: usize) -> Vec<Message> {
    let started = std::time::Instant::now();
    let mut got: Vec<Message> = Vec::new();
    while got.len() < n {
        assert!(started.elapsed() < EVENTUALLY, "only {} of {n} messages reached the ingest DLQ: {got:?}", got.len());
        let out = stack
            .stack
            .clients
            .sqs
            .receive_message()
            .queue_url(&stack.stack.ingest_dead_letter_queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("ReceiveMessage from the ingest DLQ: {e:?}"));
        got.extend(out.messages.unwrap_or_default());
    }
    got
}

fn attribute<'a>(message: &'a Message, name: &str) -> &'a str {
    message
        .message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .unwrap_or_else(|| panic!("no {name} attribute on {message:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_can_never_be_published_go_to_the_ingest_dlq_at_once_with_their_reason() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["*"]})).await;
    let account = stack.account_id().to_string();
    let unknown = puck_local::keys::new_account_id().to_string();
    let ok = json!({"event_type": "finding.discovered", "data": {"n": 1}});

    // (body, kind, what the reason says)
    let bad = [
        ("{\"account_id\": \"".to_owned() + &account + "\", \"event_type\"", "malformed", "message body is not JSON"),
        (
            json!({"account_id": unknown, "event_type": "finding.discovered", "data": {}}).to_string(),
            "unknown_account",
            "does not exist",
        ),
        (
            json!({"account_id": account, "event_type": "finding.discovered", "data": "not an object"}).to_string(),
            "invalid_event",
            "data must be an object",
        ),
        (
            json!({"account_id": account, "events": [ok.clone(), {"event_type": "nope", "data": {}}]}).to_string(),
            "invalid_event",
            "events[1].event_type: ",
        ),
    ];
    let mut sent = BTreeMap::new();
    for (body, kind, reason) in &bad {
        sent.insert(send(&stack, body.clone()).await, (body.clone(), *kind, *reason));
    }
    // A good message beside them is published, so the poller did run on all of them.
    let mut good = ok.clone();
    good["account_id"] = json!(account);
    send(&stack, good.to_string()).await;

    let parked = dead_letters(&stack, bad.len()).await;
    assert_eq!(parked.len(), bad.len(), "{parked:?}");
    for message in &parked {
        let source = attribute(message, "source_message_id");
        let (body, kind, reason) = sent.get(source).unwrap_or_else(|| panic!("unknown source {source}"));
        assert_eq!(message.body(), Some(body.as_str()), "the body is kept exactly");
        assert_eq!(attribute(message, "kind"), *kind, "{body}");
        assert!(attribute(message, "reason").contains(reason), "{body}: {}", attribute(message, "reason"));
        assert_eq!(attribute(message, "receive_count"), "1", "{body}: parked on its first receive, never retried");
        let system = message.attributes().expect("system attributes");
        assert_eq!(system.get(&MessageSystemAttributeName::ApproximateReceiveCount).map(String::as_str), Some("1"));
        // The log line says why, by message id.
        let logs = captured_logs();
        let line = logs
            .lines()
            .find(|l| l.contains("ingest message rejected") && l.contains(source))
            .unwrap_or_else(|| panic!("no rejection logged for {source}"));
        assert!(line.contains(reason) && line.contains(kind), "{line}");
    }

    wait_until_drained(&stack).await;
    let requests = receiver.wait_for(1, EVENTUALLY).await;
    assert_eq!(requests.len(), 1, "only the good message published");
    assert_eq!(requests[0].json()["data"], json!({"n": 1}));
    assert_eq!(list_all_deliveries(&stack, "").await.len(), 1, "nothing of a rejected message was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_meets_a_store_outage_is_retried_by_sqs_and_published_once_it_is_over() {
    let faults = Arc::new(FaultSwitches::default());
    let stack = TestStack::start(TestStackOptions::default().faults(faults.clone())).await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    // The template's 180 s would make the test wait minutes for the retry.
    stack
        .stack
        .clients
        .sqs
        .set_queue_attributes()
        .queue_url(&stack.stack.ingest_queue_url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "2")
        .send()
        .await
        .unwrap();

    faults.fail_dynamo.store(true, Ordering::SeqCst);
    let body = json!({"account_id": stack.account_id(), "event_type": "finding.discovered", "data": {"n": 7}});
    let id = send(&stack, body.to_string()).await;
    wait_until(EVENTUALLY, "the ingest function to fail on the message twice", || {
        let id = id.clone();
        async move {
            captured_logs().lines().any(|l| {
                l.contains("ingest message failed; SQS will retry it")
                    && l.contains(&id)
                    && l.contains("receive_count=2")
            })
        }
    })
    .await;
    faults.fail_dynamo.store(false, Ordering::SeqCst);

    let requests = receiver.wait_for(1, EVENTUALLY).await;
    assert_eq!(requests[0].json()["data"], json!({"n": 7}));
    wait_until_drained(&stack).await;
    assert_eq!(receiver.requests().len(), 1);
    let dlq = queue_depth(&stack, &stack.stack.ingest_dead_letter_queue_url).await;
    assert_eq!(dlq, (0, 0, 0), "a transient failure is never parked");
    assert!(!captured_logs().lines().any(|l| l.contains("ingest message rejected") && l.contains(&id)));
}
