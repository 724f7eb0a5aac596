//! Flow control per subscription (docs/flow-control.md, "Rate limits"): `rate_limit_per_second` validated
//! and changed through the API, and held end to end by the token bucket in the table across two
//! dispatcher containers, with waiting that is not an attempt.

use crate::subscription_state::another_dispatcher_container;
use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_core::rate::MAX_RATE;
use puck_core::time::Timestamp;
use puck_e2e::delivery::list_all_deliveries;
use puck_e2e::{wait_for_some, Receiver, TestStack, TestStackOptions};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_second_is_validated_and_patchable() {
    let stack = TestStack::start_default().await;
    let base = json!({"url": "https://hooks.example.com/p", "events": ["chain.confirmed"]});
    let with = |v: Value| {
        let mut b = base.clone();
        b["rate_limit_per_second"] = v;
        b
    };
    for bad in [json!(0), json!(MAX_RATE + 1), json!(1.5), json!(-1), json!("2"), json!(true)] {
        let resp = stack.post(SUBSCRIPTIONS, with(bad.clone())).await;
        assert_error(&resp, 400, "validation_error", "rate_limit_per_second");
    }
    let created = create_subscription(&stack, base.clone()).await;
    assert_eq!(created["rate_limit_per_second"], Value::Null, "default: no limit");
    let limited = create_subscription(&stack, with(json!(MAX_RATE))).await;
    assert_eq!(limited["rate_limit_per_second"], MAX_RATE);
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&created));
    let (status, patched, _) = stack.patch(&path, json!({"rate_limit_per_second": 1})).await;
    assert_eq!((status, &patched["rate_limit_per_second"]), (200, &json!(1)), "{patched}");
    assert_eq!(stack.get(&path).await.1["rate_limit_per_second"], 1);
    assert_error(
        &stack.patch(&path, json!({"rate_limit_per_second": 0})).await,
        400,
        "validation_error",
        "rate_limit_per_second",
    );
    let (status, cleared, _) = stack.patch(&path, json!({"rate_limit_per_second": null})).await;
    assert_eq!((status, &cleared["rate_limit_per_second"]), (200, &Value::Null), "{cleared}");
}

/// The measured promise: 2/s, 40 events published at once, two dispatcher containers. They
/// arrive over at least 19 s (2 at once, then one per 0.5 s), every one, each in one attempt;
/// while they wait they are `pending` with no attempt and a `next_attempt_at` ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_limited_to_2_per_second_receives_40_events_over_19_s_each_in_one_attempt() {
    let stack = TestStack::start(TestStackOptions::default()).await;
    let second = another_dispatcher_container(&stack).await;
    let receiver = Receiver::start().await;
    let body = json!({"url": receiver.url(), "events": ["chain.confirmed"], "rate_limit_per_second": 2});
    let sub = id_of(&create_subscription(&stack, body).await);
    let events: Vec<Value> = (0..40).map(|i| json!({"event_type": "chain.confirmed", "data": {"n": i}})).collect();
    let (status, published, _) = stack.post("/v1/events/batch", json!({ "events": events })).await;
    assert_eq!(status, 202, "{published}");

    // A few seconds in, most wait: pending, no attempt, due later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = wait_for_some(Duration::from_secs(10), "deliveries waiting on the rate limit", || async {
        let now = Timestamp::now();
        let log = list_all_deliveries(&stack, &format!("subscription_id={sub}&status=pending")).await;
        let ahead: Vec<Value> = log
            .into_iter()
            .filter(|d| d["next_attempt_at"].as_str().and_then(Timestamp::parse_rfc3339).is_some_and(|t| t > now))
            .collect();
        (ahead.len() >= 20).then_some(ahead)
    })
    .await;
    assert!(waiting.iter().all(|d| d["attempt_count"] == 0 && d["last_error"].is_null()), "{waiting:?}");

    let requests = receiver.wait_for(40, Duration::from_secs(60)).await;
    let span = requests[39].received_at.duration_since(requests[0].received_at);
    assert!(span >= Duration::from_secs(19), "40 at 2/s took only {span:?}");
    let ids: BTreeSet<&str> = requests.iter().map(|r| r.header("x-puck-event-id").unwrap()).collect();
    assert_eq!(ids.len(), 40, "every event, once");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.requests().len(), 40, "no duplicate sends");
    let log = list_all_deliveries(&stack, &format!("subscription_id={sub}")).await;
    assert_eq!(log.len(), 40);
    assert!(log.iter().all(|d| d["status"] == "succeeded" && d["attempt_count"] == 1), "{log:?}");
    second.abort();
}

/// The bucket itself, as two containers see it: reservations made concurrently through two
/// adapters (each with its own memory of the bucket) get the schedule of one bucket, no slot
/// given twice beyond the burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_reserving_from_one_bucket_get_one_schedule() {
    let stack = TestStack::start_default().await;
    let local = &stack.stack;
    let config = puck_aws::Config::from_lookup(|name| local.env.get(name).cloned()).expect("config");
    let (a, b) = (puck_aws::build_rate_buckets(&config).await, puck_aws::build_rate_buckets(&config).await);
    let account = stack.account_id().clone();
    let sub = puck_core::ids::SubscriptionId::generate(1);
    let now = Timestamp::now();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let bucket = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (account, sub) = (account.clone(), sub.clone());
        tasks.push(tokio::spawn(async move { bucket.reserve(&account, &sub, 0, 5, now).await.unwrap() }));
    }
    let mut offsets = Vec::new();
    for t in tasks {
        offsets.push(t.await.unwrap().unix_ms() - now.unix_ms());
    }
    offsets.sort();
    let expected: Vec<i64> = (0..30).map(|i| (i as i64 - 4).max(0) * 200).collect();
    assert_eq!(offsets, expected, "5 at once, then one per 200 ms");
}
