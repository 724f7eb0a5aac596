//! Delivery semantics (docs/delivery.md) end to end: retries with growing backoff, `Retry-After`,
//! `410`, redirects not followed, the DLQ and replay, abandoning on delete, duplicate SQS
//! messages, the sweeper recovering a lost enqueue, and the SSRF guard at send time.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_aws::faults::FaultSwitches;
use puck_aws::{HttpSender, SenderOptions};
use puck_core::ids::DeliveryId;
use puck_core::ports::{DeliveryJob, OutboundRequest, WebhookSender};
use puck_core::sending::Target;
use puck_core::validation::TargetUrl;
use puck_e2e::delivery::{
    get_delivery, list_all_deliveries, queue_depth, send_job, wait_for_delivery_status, wait_for_empty_delivery_queue,
};
use puck_e2e::receiver::test_ca_pem_path;
use puck_e2e::{
    wait_for_some, wait_until, ReceivedRequest, Receiver, Reply, Script, TestStack, TestStackOptions, EVENTUALLY,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Publishes one `event_type` event that must create exactly one delivery; returns its id.
async fn publish_one(stack: &TestStack, event_type: &str, subscription_id: &str) -> String {
    let (status, accepted, _) = stack.post("/v1/events", json!({"event_type": event_type, "data": {"k": "v"}})).await;
    assert_eq!((status, &accepted["deliveries"]), (202, &json!(1)), "{accepted}");
    let event_id = accepted["event_id"].as_str().unwrap();
    let log = list_all_deliveries(stack, &format!("subscription_id={subscription_id}")).await;
    let mine: Vec<&Value> = log.iter().filter(|d| d["event_id"] == event_id).collect();
    assert_eq!(mine.len(), 1, "{log:?}");
    mine[0]["id"].as_str().unwrap().to_owned()
}

/// Seconds between consecutive requests.
fn gaps(requests: &[ReceivedRequest]) -> Vec<f64> {
    requests.windows(2).map(|w| w[1].received_at.duration_since(w[0].received_at).as_secs_f64()).collect()
}

fn header_values<'a>(requests: &'a [ReceivedRequest], name: &str) -> Vec<&'a str> {
    requests.iter().map(|r| r.header(name).unwrap_or_else(|| panic!("no {name}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_three_times_gets_four_attempts_with_growing_delays_then_succeeded() {
    // Backoff base 1 s, cap 8 s: the delays after attempts 1, 2, 3 lie in [1, 1], [1, 2], [2, 4].
    let stack = TestStack::start(TestStackOptions::default().backoff(1, 8)).await;
    let failures = (1..=3).map(|i| Reply::status(500).header("x-receiver", "down").body(format!("boom {i}")));
    let big_body = "x".repeat(10_000);
    let receiver = Receiver::start_with(Script::sequence(failures).then(Reply::ok().body(big_body))).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let id = publish_one(&stack, "finding.discovered", &id_of(&sub)).await;

    let delivery = wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4, "3 failures + 1 success");
    assert_eq!(delivery["attempt_count"], 4, "{delivery}");
    assert_eq!(delivery["last_response_status"], 200);
    assert_eq!(delivery["last_error"], Value::Null);

    // Same event id on every attempt, a distinct delivery id per attempt, the same bytes.
    let event_ids = header_values(&requests, "x-puck-event-id");
    assert!(event_ids.iter().all(|e| *e == delivery["event_id"]), "{event_ids:?}");
    let attempt_ids = header_values(&requests, "x-puck-delivery-id");
    assert_eq!(attempt_ids.iter().collect::<BTreeSet<_>>().len(), 4, "{attempt_ids:?}");
    assert!(requests.iter().all(|r| r.body == requests[0].body));

    // Every attempt is in the log, numbered, with its response.
    let attempts = delivery["attempts"].as_array().unwrap();
    let numbers: Vec<u64> = attempts.iter().map(|a| a["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let logged_ids: Vec<&str> = attempts.iter().map(|a| a["attempt_id"].as_str().unwrap()).collect();
    assert_eq!(logged_ids, attempt_ids, "attempt ids in the log are the X-Puck-Delivery-Id values, in order");
    for (i, a) in attempts.iter().take(3).enumerate() {
        assert_eq!(a["response_status"], 500, "{a}");
        assert_eq!(a["response_body"], format!("boom {}", i + 1));
        assert_eq!(a["response_headers"]["x-receiver"], "down", "{a}");
        assert_eq!(a["error"], Value::Null, "{a}");
        assert!(a["duration_ms"].is_u64() && a["started_at"].is_string(), "{a}");
    }
    assert_eq!(attempts[3]["response_status"], 200);
    assert_eq!(attempts[3]["response_body"].as_str().unwrap().len(), 4096, "only the first 4 KiB of the body is kept");
    for a in attempts {
        let headers = &a["request_headers"];
        assert_eq!(headers["x-puck-signature"], "[redacted]");
        assert_eq!(headers["x-puck-signature-256"], "[redacted]");
        assert_eq!(headers["webhook-signature"], "[redacted]");
        assert_eq!(headers["x-puck-event-id"], delivery["event_id"]);
    }

    // Growing delays, each within its schedule bound (plus 3 s for an attempt's own round trip
    // through moto on a loaded machine: CI measured 4.0 s for a 1–2 s step).
    let gaps = gaps(&requests);
    eprintln!("retry gaps (s): {gaps:?}");
    for (gap, (lo, hi)) in gaps.iter().zip([(1.0, 1.0), (1.0, 2.0), (2.0, 4.0)]) {
        assert!(*gap >= lo - 0.05 && *gap <= hi + 3.0, "gap {gap:.2}s outside [{lo}, {hi}] s: {gaps:?}");
    }
    assert!(gaps[2] > gaps[0], "delays grow: {gaps:?}");
    assert!(gaps.windows(2).all(|w| w[1] >= w[0] - 0.5), "delays never shrink: {gaps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_delivery_is_dead_lettered_then_replay_delivers_the_same_event() {
    let stack = TestStack::start(TestStackOptions::default().max_delivery_attempts(3).backoff(1, 2)).await;
    let receiver = Receiver::start_with(Script::status(500)).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed"]})).await;
    let id = publish_one(&stack, "chain.confirmed", &id_of(&sub)).await;

    // While retrying the delivery is `failed` (will retry) with a next attempt.
    let failed = wait_for_delivery_status(&stack, &id, "failed", EVENTUALLY).await;
    assert!(failed["next_attempt_at"].is_string(), "{failed}");
    assert_eq!(failed["last_response_status"], 500);
    assert_eq!(failed["last_error"], "HTTP 500");

    let dead = wait_for_delivery_status(&stack, &id, "failed_permanent", EVENTUALLY).await;
    assert_eq!(dead["attempt_count"], 3, "MAX_DELIVERY_ATTEMPTS=3: {dead}");
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    let dlq = stack.stack.dead_letter_queue_url.clone();
    wait_until(EVENTUALLY, "the DLQ to be drained by the dead-letter function", || async {
        queue_depth(&stack, &dlq).await == (0, 0, 0)
    })
    .await;
    assert_eq!(receiver.requests().len(), 3, "exactly MAX_DELIVERY_ATTEMPTS attempts");

    // The DLQ listing.
    let dead_list = list_all_deliveries(&stack, "status=failed_permanent").await;
    assert_eq!(dead_list.iter().map(|d| d["id"].as_str().unwrap()).collect::<Vec<_>>(), [id.as_str()]);
    assert!(list_all_deliveries(&stack, "status=failed").await.is_empty());
    let (_, sub_now, _) = stack.get(&format!("{SUBSCRIPTIONS}/{}", id_of(&sub))).await;
    assert_eq!(sub_now["last_delivery_status"], "failed_permanent", "{sub_now}");

    // Fix the receiver and replay.
    receiver.set_script(Script::default());
    let (status, replayed, _) = stack.post(&format!("/v1/webhooks/deliveries/{id}/replay"), Value::Null).await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed, json!({"delivery_id": id, "status": "pending"}));
    let done = wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(done["event_id"], dead["event_id"], "replay keeps the event id");
    assert_eq!(requests[3].header("x-puck-event-id"), requests[0].header("x-puck-event-id"));
    assert_eq!(requests[3].body, requests[0].body, "replay sends the same envelope");
    assert_ne!(requests[3].header("x-puck-delivery-id"), requests[2].header("x-puck-delivery-id"));
    let numbers: Vec<u64> =
        done["attempts"].as_array().unwrap().iter().map(|a| a["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    // A success within a second of the container's previous write is written when that second
    // ends (docs/storage.md, "A subscription's runtime state on its own key").
    wait_until(EVENTUALLY, "the subscription shows the success", || async {
        stack.get(&format!("{SUBSCRIPTIONS}/{}", id_of(&sub))).await.1["last_delivery_status"] == "succeeded"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_410_fails_permanently_after_exactly_one_attempt() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start_with(Script::always(Reply::status(410).body("unsubscribed"))).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["agent.*"]})).await;
    let id = publish_one(&stack, "agent.disconnected", &id_of(&sub)).await;
    let d = wait_for_delivery_status(&stack, &id, "failed_permanent", EVENTUALLY).await;
    // The message is gone from the queue: no retry can come.
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(d["attempt_count"], 1, "{d}");
    assert_eq!(d["last_response_status"], 410);
    assert_eq!(d["attempts"][0]["response_body"], "unsubscribed");
    assert_eq!(d["next_attempt_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_and_503_is_honoured_within_the_schedule_cap() {
    // Base 1 s, cap 4 s: without Retry-After the delays would be 1 s then 1–2 s.
    let stack = TestStack::start(TestStackOptions::default().backoff(1, 4)).await;
    let receiver = Receiver::start_with(
        Script::sequence([
            Reply::status(429).header("Retry-After", "3"),
            Reply::status(503).header("Retry-After", "100"), // beyond the cap: clamped to 4 s
        ])
        .then(Reply::ok()),
    )
    .await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let id = publish_one(&stack, "finding.discovered", &id_of(&sub)).await;
    let d = wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;
    assert_eq!(d["attempt_count"], 3);
    let gaps = gaps(&receiver.requests());
    eprintln!("Retry-After gaps (s): {gaps:?}");
    // Upper bounds leave 3.5 s for a loaded 2-core machine running other e2e tests; the lower bounds
    // are the check: without Retry-After the first gap would be the 1 s base.
    assert!((2.95..6.5).contains(&gaps[0]), "Retry-After: 3 → ≈3 s, got {gaps:?}");
    assert!((3.95..7.5).contains(&gaps[1]), "Retry-After: 100 → the 4 s cap, got {gaps:?}");
    assert_eq!(d["attempts"][0]["response_headers"]["retry-after"], "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_count_as_failed_attempts() {
    let stack = TestStack::start_default().await;
    let target = Receiver::start().await;
    let receiver = Receiver::start_with(
        Script::sequence([
            Reply::status(307).header("Location", &target.url()),
            Reply::status(301).header("Location", &target.url()),
        ])
        .then(Reply::ok()),
    )
    .await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let id = publish_one(&stack, "finding.discovered", &id_of(&sub)).await;
    let d = wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;
    assert_eq!(receiver.requests().len(), 3, "one request per attempt, none followed");
    assert!(target.requests().is_empty(), "the redirect target was never called");
    let statuses: Vec<&Value> = d["attempts"].as_array().unwrap().iter().map(|a| &a["response_status"]).collect();
    assert_eq!(statuses, [&json!(307), &json!(301), &json!(200)]);
    assert_eq!(d["attempts"][0]["response_headers"]["location"], target.url().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_subscription_abandons_its_in_flight_deliveries_and_nothing_more_is_sent() {
    // Base 4 s: the first retry comes 2–4 s after the first failure, long after the delete.
    let stack = TestStack::start(TestStackOptions::default().backoff(4, 8)).await;
    let receiver = Receiver::start_with(Script::status(503)).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["agent.*"]})).await;
    let sub_id = id_of(&sub);
    let ids = [
        publish_one(&stack, "agent.registered", &sub_id).await,
        publish_one(&stack, "agent.disconnected", &sub_id).await,
    ];
    for id in &ids {
        wait_for_delivery_status(&stack, id, "failed", EVENTUALLY).await;
    }
    let (status, _, _) = stack.delete(&format!("{SUBSCRIPTIONS}/{sub_id}")).await;
    assert_eq!(status, 204);
    let sent = receiver.requests().len();
    for id in &ids {
        let d = get_delivery(&stack, id).await;
        assert_eq!(d["status"], "abandoned", "{d}");
        assert_eq!(d["next_attempt_at"], Value::Null);
    }
    // The retries' messages come back, find the deliveries abandoned and are deleted unsent.
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(receiver.requests().len(), sent, "no request after the delete");
    let abandoned = list_all_deliveries(&stack, "status=abandoned").await;
    assert_eq!(abandoned.len(), 2);
    for id in &ids {
        assert_eq!(get_delivery(&stack, id).await["attempt_count"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_sqs_message_for_a_succeeded_delivery_sends_nothing() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    let id = publish_one(&stack, "finding.discovered", &id_of(&sub)).await;
    wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(receiver.requests().len(), 1);

    // The same job, as the publisher sends it, twice more (SQS is at-least-once).
    let job = DeliveryJob::new(stack.account_id().clone(), DeliveryId::parse(&id).unwrap());
    for _ in 0..2 {
        send_job(&stack, &job).await;
    }
    // Consumed (the poller deletes only what the dispatcher finished) without a send.
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(receiver.requests().len(), 1, "a succeeded delivery is never re-sent by a duplicate message");
    let d = get_delivery(&stack, &id).await;
    assert_eq!((d["status"].as_str(), d["attempt_count"].as_u64()), (Some("succeeded"), Some(1)), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_enqueue_is_recovered_by_the_sweeper() {
    let faults = Arc::new(FaultSwitches::default());
    let stack = TestStack::start(
        TestStackOptions::default()
            .faults(faults.clone())
            .env("SWEEP_GRACE_SECONDS", "1")
            .sweep_interval(Duration::from_millis(500)),
    )
    .await;
    let receiver = Receiver::start().await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;

    // The SQS send fails after the deliveries were written: publish still answers 202.
    faults.fail_sqs_send.store(true, Ordering::SeqCst);
    let id = publish_one(&stack, "finding.discovered", &id_of(&sub)).await;
    assert_eq!(queue_depth(&stack, &stack.stack.delivery_queue_url).await, (0, 0, 0), "the job was never enqueued");
    assert_eq!(get_delivery(&stack, &id).await["status"], "pending");
    // A fresh delivery has no due-index entry of its own (it would cost an index write at the
    // publish and another at its outcome): its event record's entry stands for it.
    let far = puck_core::time::Timestamp::now().plus_seconds(86_400);
    assert!(stack.ctx().deliveries.overdue(far, 10, &[]).await.unwrap().is_empty(), "no per-delivery due entry");
    faults.fail_sqs_send.store(false, Ordering::SeqCst);

    // The sweeper finds it overdue and re-enqueues it.
    let requests = receiver.wait_for(1, EVENTUALLY).await;
    let d = wait_for_delivery_status(&stack, &id, "succeeded", EVENTUALLY).await;
    assert_eq!(requests[0].header("x-puck-event-id"), d["event_id"].as_str());
    assert_eq!(d["attempt_count"], 1);
    wait_for_empty_delivery_queue(&stack, EVENTUALLY).await;
    assert_eq!(receiver.requests().len(), 1);
}

/// Points a stored subscription at `url` behind the API's back: what a subscription created
/// while private targets were allowed, or a host name whose DNS changed since, looks like.
async fn repoint(stack: &TestStack, sub_id: &str, url: &str) {
    let id = puck_core::ids::SubscriptionId::parse(sub_id).unwrap();
    let mut sub = stack.ctx().subscriptions.get(stack.account_id(), &id).await.unwrap().expect("subscription");
    sub.url = Some(TargetUrl::parse_with(url, true).unwrap());
    assert_eq!(
        stack.ctx().subscriptions.update_settings(&sub, sub.version, false).await.unwrap(),
        puck_core::ports::SettingsWrite::Written
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_guard_on_private_targets_are_refused_at_creation_and_at_send_time() {
    let stack = TestStack::start(TestStackOptions::default().deny_private_targets()).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://127.0.0.1:8443/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
    ] {
        let resp = stack.post(SUBSCRIPTIONS, json!({"url": url, "events": ["chain.confirmed"]})).await;
        assert_error(&resp, 400, "validation_error", "url");
    }

    // A stored subscription whose target is (now) loopback: the sender refuses it at send time,
    // by host name (resolved to 127.0.0.1) and by IP literal, and never contacts the receiver.
    let receiver = Receiver::start().await;
    let sub =
        create_subscription(&stack, json!({"url": "https://hooks.example.com/puck", "events": ["chain.confirmed"]}))
            .await;
    let by_name = receiver.url().replace("127.0.0.1", "localhost");
    for target in [by_name.as_str(), &receiver.url()] {
        repoint(&stack, &id_of(&sub), target).await;
        let id = publish_one(&stack, "chain.confirmed", &id_of(&sub)).await;
        let d = wait_for_some(EVENTUALLY, "the blocked attempt to be recorded", || async {
            let d = get_delivery(&stack, &id).await;
            (d["attempt_count"].as_u64() >= Some(1)).then_some(d)
        })
        .await;
        let error = d["attempts"][0]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("blocked"), "{target}: {d}");
        assert_eq!(d["attempts"][0]["response_status"], Value::Null);
        assert_eq!(d["status"], "failed", "{d}");
    }
    assert!(receiver.requests().is_empty(), "the receiver was never contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_with_the_guard_on_refuses_loopback_by_name_and_by_address() {
    let receiver = Receiver::start().await;
    let pem = std::fs::read(test_ca_pem_path()).unwrap();
    let sender = |allow| {
        HttpSender::new(SenderOptions {
            timeout: Duration::from_secs(5),
            allow_private_targets: allow,
            extra_ca_pem: Some(pem.clone()),
        })
        .unwrap()
    };
    // Parsed as a stored URL is read back (any host): the guard at send time is what is tested.
    let request = |url: String| OutboundRequest {
        target: Target::Https(TargetUrl::parse_with(&url, true).unwrap()),
        headers: vec![("content-type".into(), "application/json".into())],
        body: "{}".into(),
    };
    let by_name = receiver.url().replace("127.0.0.1", "localhost");
    let guarded = sender(false);
    for url in [by_name.clone(), receiver.url()] {
        let out = guarded.send(&request(url.clone())).await;
        assert_eq!(out.status, None, "{url}");
        assert!(out.error.as_deref().unwrap_or_default().starts_with("blocked"), "{url}: {:?}", out.error);
    }
    assert!(receiver.requests().is_empty());
    // The same requests get through with the dev switch on (so the refusals above were the guard).
    let open = sender(true);
    for url in [by_name, receiver.url()] {
        assert_eq!(open.send(&request(url)).await.status, Some(200));
    }
    assert_eq!(receiver.requests().len(), 2);
}

/// The sweeper looks past one account's backlog to the others': the due index query leaves out
/// the accounts it is told to skip, evaluated by moto as DynamoDB would (`NOT begins_with`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweepers_due_query_leaves_out_the_accounts_it_skips() {
    let stack = TestStack::start(TestStackOptions::default().max_delivery_attempts(20)).await;
    let receiver = Receiver::start_with(Script::status(500)).await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed"]})).await;
    let (status, accepted, _) = stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
    assert_eq!((status, &accepted["deliveries"]), (202, &json!(1)), "{accepted}");
    // Once its first attempt failed the delivery waits for a retry, with a due entry of its own.
    let id = accepted_delivery(&stack).await;
    wait_for_delivery_status(&stack, &id, "failed", EVENTUALLY).await;
    let later = puck_core::time::Timestamp::now().plus_seconds(86_400);
    let account = stack.account_id().clone();
    let other = puck_core::ids::AccountId::generate(1);
    let deliveries = &stack.ctx().deliveries;
    let found = deliveries.overdue(later, 10, std::slice::from_ref(&other)).await.unwrap();
    assert_eq!(found.iter().map(|(a, _)| a).collect::<Vec<_>>(), [&account], "{found:?}");
    assert!(deliveries.overdue(later, 10, &[other, account]).await.unwrap().is_empty());
}

/// The id of the account's one delivery.
async fn accepted_delivery(stack: &TestStack) -> String {
    let listed = list_all_deliveries(stack, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    listed[0]["id"].as_str().unwrap().to_owned()
}
