//! A 202 means durable, and one delivery is sent by one worker at a time (RELIABILITY.md,
//! "Publish and claims"). DynamoDB storing a write and losing its answer, a batch failing at its
//! records, a duplicate job arriving while the first is being sent, a replay of an in-flight
//! delivery: each against the real local stack and a real HTTPS receiver.

use crate::faults::table_state;
use crate::support::{create_subscription, id_of};
use puck_aws::faults::{FaultSwitches, LostAnswers};
use puck_core::ids::DeliveryId;
use puck_core::ports::DeliveryJob;
use puck_e2e::delivery::{
    get_delivery, list_all_deliveries, send_job, wait_for_delivery_status, wait_for_empty_delivery_queue,
};
use puck_e2e::{Receiver, Reply, Script, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A stack whose DynamoDB loses the next answer of `operation` on a request naming `marker`.
async fn stack_losing(operation: &str, marker: &str) -> (TestStack, Arc<FaultSwitches>) {
    let faults = Arc::new(FaultSwitches::default());
    let stack = TestStack::start(TestStackOptions::default().faults(faults.clone())).await;
    *faults.lose_dynamo_answers.lock().unwrap() =
        Some(LostAnswers { operation: operation.into(), body_contains: marker.into(), remaining: 1 });
    (stack, faults)
}

fn lost_answers_left(faults: &FaultSwitches) -> u32 {
    faults.lose_dynamo_answers.lock().unwrap().as_ref().map_or(0, |l| l.remaining)
}

/// Event ids of the requests a receiver got, with how often each arrived.
fn arrivals(receiver: &Receiver) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for r in receiver.requests() {
        *seen.entry(r.header("x-puck-event-id").unwrap_or_default().to_owned()).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_whose_stored_record_lost_its_answer_is_still_delivered() {
    // The SDK tries the record's PutItem again; that try finds the record its first try stored.
    let (stack, faults) = stack_losing("PutItem", "EVT#").await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let (status, accepted, _) =
        stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": {}, "event_id": "lost-1"})).await;
    assert_eq!((status, &accepted["deliveries"]), (202, &json!(1)), "{accepted}");
    assert_eq!(lost_answers_left(&faults), 0, "the record's answer was lost");
    receiver.wait_for(1, EVENTUALLY).await;
    let log = list_all_deliveries(&stack, "event_id=lost-1").await;
    assert_eq!(log.len(), 1, "{log:?}");
    wait_for_delivery_status(&stack, log[0]["id"].as_str().unwrap(), "succeeded", EVENTUALLY).await;
    // The producer's retry is answered from the record, and sends nothing more.
    let (status, again, _) =
        stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": {}, "event_id": "lost-1"})).await;
    assert_eq!((status, &again["deliveries"]), (202, &json!(1)), "{again}");
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(arrivals(&receiver).get("lost-1"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_stored_records_lost_their_answer_is_delivered_once_each() {
    // Generated event ids: the records go in one transaction, whose answer is lost.
    let events: Vec<Value> = (0..3).map(|i| json!({"event_type": "finding.discovered", "data": {"i": i}})).collect();
    a_batch_losing_the_answer_of(events, "TransactWriteItems").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_event_ids_whose_stored_record_lost_its_answer_is_delivered_once_each() {
    // The producer's ids: one PutItem per record, and one of them loses its answer.
    let events: Vec<Value> = (0..3)
        .map(|i| json!({"event_type": "finding.discovered", "data": {"i": i}, "event_id": format!("lb-{i}")}))
        .collect();
    a_batch_losing_the_answer_of(events, "PutItem").await;
}

async fn a_batch_losing_the_answer_of(events: Vec<Value>, operation: &str) {
    let (stack, faults) = stack_losing(operation, "EVT#").await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let (status, accepted, _) = stack.post("/v1/events/batch", json!({ "events": events })).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(lost_answers_left(&faults), 0, "the records' answer was lost");
    receiver.wait_for(3, EVENTUALLY).await;
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    let seen = arrivals(&receiver);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "each event once: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_naming_one_event_id_twice_is_published_once() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let event = |id: &str| json!({"event_type": "finding.discovered", "data": {}, "event_id": id});
    let (status, accepted, _) =
        stack.post("/v1/events/batch", json!({"events": [event("rep-a"), event("rep-b"), event("rep-a")]})).await;
    assert_eq!(status, 202, "{accepted}");
    let ids: Vec<&str> =
        accepted["results"].as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["rep-a", "rep-b", "rep-a"]);
    // The whole batch again (a producer's retry): its lookup names every id twice or more.
    let (status, again, _) =
        stack.post("/v1/events/batch", json!({"events": [event("rep-a"), event("rep-b"), event("rep-a")]})).await;
    assert_eq!((status, &again), (202, &accepted));
    receiver.wait_for(2, EVENTUALLY).await;
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(arrivals(&receiver), BTreeMap::from([("rep-a".to_owned(), 1), ("rep-b".to_owned(), 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_at_any_call_publishes_nothing_and_its_retry_publishes_each_event_once() {
    let faults = Arc::new(FaultSwitches::default());
    let stack = TestStack::start(TestStackOptions::default().faults(faults.clone())).await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    // No event_id: a retry cannot name what the failed try published, so the try publishes all or nothing.
    let events: Vec<Value> = (0..4).map(|i| json!({"event_type": "finding.discovered", "data": {"i": i}})).collect();
    let body = json!({ "events": events });
    let mut failures = 0;
    for n in 1..=30u32 {
        let before = table_state(&stack).await;
        faults.fail_dynamo_call_in.store(n, Ordering::SeqCst);
        let (status, answer, _) = stack.post("/v1/events/batch", body.clone()).await;
        let untriggered = faults.fail_dynamo_call_in.swap(0, Ordering::SeqCst);
        if status == 202 {
            assert!(untriggered > 0, "DynamoDB call {n} failed, yet the batch answered 202");
            break;
        }
        assert_eq!(status, 503, "call {n}: {answer}");
        failures += 1;
        assert_eq!(table_state(&stack).await, before, "the batch failed at DynamoDB call {n} but changed the table");
    }
    assert!(failures >= 3, "the batch's reads and writes each failed once ({failures})");
    receiver.wait_for(4, EVENTUALLY).await;
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    let data: Vec<Value> = receiver.requests().iter().map(|r| r.json()["data"]["i"].clone()).collect();
    assert_eq!(data.len(), 4, "each event once: {data:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_event_ids_failing_at_any_call_is_delivered_once_each_after_its_retry() {
    let faults = Arc::new(FaultSwitches::default());
    let stack = TestStack::start(TestStackOptions::default().faults(faults.clone())).await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    // The producer's ids: each record is written on its own, so a failed try may leave some
    // published; the producer's retry (the same ids) publishes only what is missing. Each round
    // fails a fresh batch at its n-th DynamoDB call, then retries it without the fault.
    let mut expected = BTreeMap::new();
    let mut failures = 0;
    for n in 1..=30u32 {
        let ids: Vec<String> = (0..4).map(|i| format!("fb-{n}-{i}")).collect();
        let events: Vec<Value> =
            ids.iter().map(|id| json!({"event_type": "finding.discovered", "data": {}, "event_id": id})).collect();
        let body = json!({ "events": events });
        // Only the publish's calls count: the dispatcher has sent every earlier round.
        receiver.wait_for(expected.len(), EVENTUALLY).await;
        wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
        faults.fail_dynamo_call_in.store(n, Ordering::SeqCst);
        let (status, answer, _) = stack.post("/v1/events/batch", body.clone()).await;
        let untriggered = faults.fail_dynamo_call_in.swap(0, Ordering::SeqCst);
        expected.extend(ids.iter().map(|id| (id.clone(), 1)));
        if status == 503 {
            failures += 1;
            let (status, answer, _) = stack.post("/v1/events/batch", body).await;
            assert_eq!(status, 202, "the retry after call {n} failed: {answer}");
        } else {
            // The failed call was read back and written again within the request.
            assert_eq!(status, 202, "call {n}: {answer}");
        }
        if untriggered > 0 {
            break; // the batch made fewer than n calls: every call has failed once
        }
    }
    assert!(failures >= 3, "the batch's reads and writes each failed once ({failures})");
    receiver.wait_for(expected.len(), EVENTUALLY).await;
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(arrivals(&receiver), expected, "each event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_job_arriving_while_its_delivery_is_being_sent_sends_nothing() {
    // Two pollers, as Lambda runs several dispatchers at once: one takes the duplicate while the
    // other is still sending.
    let stack = TestStack::start(TestStackOptions::default().pollers_per_queue(2)).await;
    let receiver = Receiver::start_with(Script::always(Reply::ok().delay(Duration::from_secs(3)))).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let (status, accepted, _) = stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": {}})).await;
    assert_eq!(status, 202, "{accepted}");
    receiver.wait_for(1, EVENTUALLY).await;
    let log = list_all_deliveries(&stack, &format!("subscription_id={}", id_of(&sub))).await;
    let id = log[0]["id"].as_str().unwrap().to_owned();
    // While the receiver holds the first attempt, the same job arrives again (SQS at-least-once,
    // or the sweeper's copy).
    let job = DeliveryJob::new(stack.account_id().clone(), DeliveryId::parse(&id).unwrap());
    send_job(&stack, &job).await;
    let d = wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(receiver.requests().len(), 1, "the duplicate was not sent beside the first attempt");
    assert_eq!(d["attempt_count"], 1, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_delivery_in_flight_is_409_and_a_finished_one_202() {
    // Retries far off, so the failed delivery stays in flight for the whole test.
    let stack = TestStack::start(TestStackOptions::default().backoff(600, 600)).await;
    let receiver = Receiver::start_with(Script::sequence([Reply::status(500)])).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": {}})).await;
    receiver.wait_for(1, EVENTUALLY).await;
    let log = list_all_deliveries(&stack, &format!("subscription_id={}", id_of(&sub))).await;
    let id = log[0]["id"].as_str().unwrap().to_owned();
    let failed = wait_for_delivery_status(&stack, &id, "failed", EVENTUALLY).await;
    let replay = format!("/v1/webhooks/deliveries/{id}/replay");
    let (status, body, _) = stack.post(&replay, Value::Null).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("is failed") && message.contains("can be replayed"), "{message}");
    assert_eq!(get_delivery(&stack, &id).await["attempt_count"], failed["attempt_count"], "nothing changed");

    // Finished (the subscription deleted abandons it), it replays.
    let (status, _, _) = stack.delete(&format!("/v1/webhooks/subscriptions/{}", id_of(&sub))).await;
    assert_eq!(status, 204);
    wait_for_delivery_status(&stack, &id, "abandoned", EVENTUALLY).await;
    let (status, body, _) = stack.post(&replay, Value::Null).await;
    assert_eq!((status, &body["status"]), (202, &json!("pending")), "{body}");
}
