//! Operating at scale (docs/api.md, "Recover after an outage" and "Operational events"): recover by time range after a
//! receiver outage, operational `webhook.*` events through the normal pipeline (and their
//! loop-freedom), and auto-disable of a subscription that only fails. Plus the delivery-log
//! filters recover is built on.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_core::model::Scope;
use puck_core::time::Timestamp;
use puck_e2e::delivery::{get_delivery, list_all_deliveries, wait_for_delivery_status};
use puck_e2e::{wait_until, Receiver, Script, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Publishes `n` events of `event_type` (each must make exactly one delivery) and returns the
/// delivery ids, oldest first.
async fn publish_n(stack: &TestStack, event_type: &str, sub: &str, n: usize) -> Vec<String> {
    let mut event_ids = BTreeSet::new();
    for _ in 0..n {
        let (status, accepted, _) =
            stack.post("/v1/events", json!({"event_type": event_type, "data": {"k": "v"}})).await;
        assert_eq!((status, &accepted["deliveries"]), (202, &json!(1)), "{accepted}");
        event_ids.insert(accepted["event_id"].as_str().unwrap().to_owned());
    }
    let log = list_all_deliveries(stack, &format!("subscription_id={sub}")).await;
    let mut ids: Vec<String> = log
        .iter()
        .filter(|d| event_ids.contains(d["event_id"].as_str().unwrap()))
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), n, "{log:?}");
    ids
}

async fn wait_all(stack: &TestStack, ids: &[String], status: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        out.push(wait_for_delivery_status(stack, id, status, EVENTUALLY).await);
    }
    out
}

fn created_at(d: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(d["created_at"].as_str().unwrap()).unwrap()
}

fn ids_of(list: &[Value]) -> BTreeSet<String> {
    list.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
}

fn recover_path(sub: &str) -> String {
    format!("{SUBSCRIPTIONS}/{sub}/recover")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_recover_brings_the_window_to_succeeded_in_bounded_calls_and_nothing_else() {
    let stack = TestStack::start(
        TestStackOptions::default().max_delivery_attempts(2).backoff(1, 1).env("RECOVER_MAX_PER_CALL", "2"),
    )
    .await;
    let receiver = Receiver::start_with(Script::status(500)).await; // the receiver is down
    let sub = id_of(
        &create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed", "finding.*"]})).await,
    );

    let before = publish_n(&stack, "chain.confirmed", &sub, 1).await;
    let before_d = wait_all(&stack, &before, "failed_permanent").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let window = publish_n(&stack, "chain.confirmed", &sub, 4).await;
    let mut window = [window, publish_n(&stack, "finding.discovered", &sub, 1).await].concat();
    window.sort();
    let window_d = wait_all(&stack, &window, "failed_permanent").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after = publish_n(&stack, "chain.confirmed", &sub, 1).await;
    wait_all(&stack, &after, "failed_permanent").await;
    let since = created_at(&before_d[0]).plus_ms(1);
    let until = window_d.iter().map(created_at).max().unwrap().plus_ms(1);
    assert!(since <= window_d.iter().map(created_at).min().unwrap());

    // The log's filters select exactly the window, newest first, combinable.
    let q = format!("subscription_id={sub}&status=failed_permanent&since={since}&until={until}");
    let listed = list_all_deliveries(&stack, &q).await;
    assert_eq!(ids_of(&listed), window.iter().cloned().collect());
    let listed_ids: Vec<&str> = listed.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert!(listed_ids.windows(2).all(|w| w[0] > w[1]), "newest first: {listed_ids:?}");
    let findings = list_all_deliveries(&stack, &format!("{q}&event_type=finding.discovered")).await;
    assert_eq!(findings.len(), 1);
    let by_event =
        list_all_deliveries(&stack, &format!("event_id={}", before_d[0]["event_id"].as_str().unwrap())).await;
    assert_eq!(ids_of(&by_event), before.iter().cloned().collect());
    let (_, page, _) = stack.get(&format!("/v1/webhooks/deliveries?{q}&limit=2")).await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());

    // The receiver comes back; one recover call and its continuations (2 per call here).
    receiver.set_script(Script::default());
    let sent_during_outage = receiver.requests().len();
    assert_eq!(sent_during_outage, 7 * 2, "two attempts per delivery");
    let body = json!({"since": since.rfc3339(), "until": until.rfc3339()});
    let (status, first, _) = stack.post(&recover_path(&sub), body.clone()).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["recovered"], 2, "bounded per call: {first}");
    let cursor = first["next_cursor"].as_str().expect("more to recover").to_owned();

    // A cursor is bound to its subscription and account.
    let other = id_of(&create_subscription(&stack, json!({"url": receiver.url(), "events": ["agent.*"]})).await);
    let with_cursor = json!({"since": since.rfc3339(), "cursor": cursor});
    assert_error(&stack.post(&recover_path(&other), with_cursor.clone()).await, 400, "validation_error", "cursor");
    let stranger = stack.new_account(&[Scope::WebhooksManage]).await;
    let stranger = stack.with_key(&stranger.api_key);
    assert_error(&stranger.post(&recover_path(&sub), with_cursor.clone()).await, 404, "not_found", "subscription");
    let (_, theirs, _) = stranger.post(SUBSCRIPTIONS, json!({"url": receiver.url(), "events": ["agent.*"]})).await;
    assert_error(&stranger.post(&recover_path(&id_of(&theirs)), with_cursor).await, 400, "validation_error", "cursor");

    let mut recovered = first["recovered"].as_u64().unwrap();
    let mut next = Some(cursor);
    let mut calls = 1;
    while let Some(c) = next {
        let mut b = body.clone();
        b["cursor"] = json!(c);
        let (status, page, _) = stack.post(&recover_path(&sub), b).await;
        assert_eq!(status, 202, "{page}");
        assert!(page["recovered"].as_u64().unwrap() <= 2, "{page}");
        recovered += page["recovered"].as_u64().unwrap();
        next = page["next_cursor"].as_str().map(str::to_owned);
        calls += 1;
    }
    assert_eq!((recovered, calls), (5, 3));

    let done = wait_all(&stack, &window, "succeeded").await;
    for (d, dead) in done.iter().zip(&window_d) {
        assert_eq!(d["event_id"], dead["event_id"], "same event id, as a replay");
        assert_eq!(d["attempt_count"], 3, "two failed attempts, then the recovered one: {d}");
    }
    let outside: Vec<String> = before.iter().chain(&after).cloned().collect();
    for id in &outside {
        assert_eq!(get_delivery(&stack, id).await["status"], "failed_permanent", "{id} is outside the window");
    }
    let requests = receiver.requests();
    let delivered: BTreeSet<String> =
        requests[sent_during_outage..].iter().map(|r| r.header("x-puck-event-id").unwrap().to_owned()).collect();
    assert_eq!(requests.len() - sent_during_outage, 5, "one request per recovered delivery");
    let window_events: BTreeSet<String> = window_d.iter().map(|d| d["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(delivered, window_events, "after the outage, only the window's events were sent");

    // Recovering again finds nothing left in that status.
    let (status, again, _) = stack.post(&recover_path(&sub), body).await;
    assert_eq!((status, again), (202, json!({"recovered": 0, "next_cursor": null})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_and_log_filters_refuse_bad_input_naming_the_field() {
    let stack = TestStack::start_default().await;
    let sub =
        id_of(&create_subscription(&stack, json!({"url": "https://hooks.example.com/x", "events": ["agent.*"]})).await);
    let now = Timestamp::now();
    let hour_ago = now.plus_seconds(-3600).rfc3339();
    let cases = [
        (json!({}), "since is required"),
        (json!({"since": "yesterday"}), "since must be an RFC 3339 time"),
        (json!({"since": hour_ago, "until": "2026-13-01T00:00:00Z"}), "until must be an RFC 3339 time"),
        (json!({"since": hour_ago, "until": now.plus_seconds(-7200).rfc3339()}), "since must be before until"),
        (
            json!({"since": now.plus_seconds(-31 * 86_400).rfc3339()}),
            "since is older than the delivery log's retention of 30 days",
        ),
        (json!({"since": hour_ago, "status": "succeeded"}), "status must be failed_permanent or failed"),
        (json!({"since": hour_ago, "cursor": "not a cursor"}), "cursor is invalid"),
        (json!({"since": hour_ago, "limit": 5}), "unknown field \"limit\""),
        (json!({"since": 5}), "since must be a string"),
    ];
    for (body, needle) in cases {
        assert_error(&stack.post(&recover_path(&sub), body).await, 400, "validation_error", needle);
    }
    assert_error(
        &stack.post(&recover_path("sub_01jtq8m3d5x7k9n2p4r6s8t0va"), json!({"since": hour_ago})).await,
        404,
        "not_found",
        "subscription",
    );
    let (status, ok, _) = stack.post(&recover_path(&sub), json!({"since": hour_ago, "status": "failed"})).await;
    assert_eq!((status, ok), (202, json!({"recovered": 0, "next_cursor": null})));

    for (query, needle) in [
        ("event_type=nope", "event_type \"nope\" is not a known event type"),
        ("event_id=a%20b", "event_id is not a valid event id"),
        ("since=noon", "since must be an RFC 3339 time"),
        ("until=2026-02-30T00:00:00Z", "until must be an RFC 3339 time"),
        ("since=2026-05-03T00:00:00Z&until=2026-05-02T00:00:00Z", "since must be before until"),
    ] {
        assert_error(&stack.get(&format!("/v1/webhooks/deliveries?{query}")).await, 400, "validation_error", needle);
    }
    // Producers cannot publish the service's own operational events.
    assert_error(
        &stack.post("/v1/events", json!({"event_type": "webhook.subscription.disabled", "data": {}})).await,
        400,
        "validation_error",
        "event_type \"webhook.subscription.disabled\" is an operational event type",
    );
}

/// The loop-freedom promise (RELIABILITY.md): an operational event never goes to the subscription
/// it is about, and none is emitted about the delivery of an operational event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettered_deliveries_are_announced_once_each_to_other_subscriptions_without_loops() {
    let stack = TestStack::start(TestStackOptions::default().max_delivery_attempts(2).backoff(1, 1)).await;
    let failing = Receiver::start_with(Script::status(500)).await;
    let gone = Receiver::start_with(Script::status(410)).await;
    let ops = Receiver::start().await;
    // `failing` also listens to every operational event: it gets the one about `gone`, never the
    // one about itself, and its own failure to take it is announced to nobody.
    let f = id_of(
        &create_subscription(&stack, json!({"url": failing.url(), "events": ["chain.confirmed", "webhook.*"]})).await,
    );
    let g = id_of(&create_subscription(&stack, json!({"url": gone.url(), "events": ["agent.*"]})).await);
    let o = id_of(
        &create_subscription(&stack, json!({"url": ops.url(), "events": ["webhook.delivery.dead_lettered"]})).await,
    );

    // A 410 is dead-lettered at once, and announced at once.
    let g_dlv = publish_n(&stack, "agent.registered", &g, 1).await.remove(0);
    let first = ops.wait_for(1, EVENTUALLY).await;
    let about_g = first[0].json();
    assert_eq!(first[0].header("x-puck-event-type"), Some("webhook.delivery.dead_lettered"));
    assert_eq!(about_g["data"]["delivery_id"], g_dlv.as_str());
    assert_eq!(about_g["data"]["subscription_id"], g.as_str());
    assert_eq!(about_g["data"]["attempt_count"], 1);
    assert_eq!(about_g["data"]["last_response_status"], 410);
    assert_eq!(about_g["data"]["event_type"], "agent.registered");

    let f_dlv = publish_n(&stack, "chain.confirmed", &f, 1).await.remove(0);
    let second = ops.wait_for(2, EVENTUALLY).await;
    let about_f = second[1].json();
    assert_eq!(about_f["data"]["delivery_id"], f_dlv.as_str());
    assert_eq!(about_f["data"]["subscription_id"], f.as_str());
    assert_eq!(about_f["data"]["attempt_count"], 2);
    assert_eq!(about_f["data"]["last_error"], "HTTP 500");

    // `failing`'s log: its chain.confirmed delivery and the announcement about `gone` (which it
    // failed in turn); nothing about itself.
    wait_until(EVENTUALLY, "f's copy of the announcement about g to be dead-lettered", || async {
        let log =
            list_all_deliveries(&stack, &format!("subscription_id={f}&event_type=webhook.delivery.dead_lettered"))
                .await;
        log.len() == 1 && log[0]["status"] == "failed_permanent"
    })
    .await;
    let f_log = list_all_deliveries(&stack, &format!("subscription_id={f}")).await;
    assert_eq!(f_log.len(), 2, "{f_log:?}");
    let op_to_f = f_log.iter().find(|d| d["event_type"] == "webhook.delivery.dead_lettered").unwrap();
    assert_eq!(op_to_f["event_id"], about_g["event_id"], "the announcement about g, not about f");
    // Give a (wrong) announcement of that dead-lettered operational delivery time to appear.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ops.requests().len(), 2, "one event per dead-lettered delivery, none about an operational delivery");
    assert!(
        list_all_deliveries(&stack, &format!("subscription_id={g}")).await.len() == 1,
        "g never hears about itself"
    );
    assert_eq!(list_all_deliveries(&stack, &format!("subscription_id={o}")).await.len(), 2);
    let all = list_all_deliveries(&stack, "event_type=webhook.delivery.dead_lettered").await;
    assert_eq!(all.len(), 3, "about g → o and f; about f → o: {all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_subscription_is_disabled_announced_and_can_be_re_enabled() {
    let stack = TestStack::start(
        // A window of several 1 s retries, wide enough for retries slowed by a loaded machine.
        TestStackOptions::default().max_delivery_attempts(20).backoff(1, 1).env("AUTO_DISABLE_AFTER_SECONDS", "8"),
    )
    .await;
    let receiver = Receiver::start_with(Script::status(503)).await;
    let ops = Receiver::start().await;
    let f = id_of(&create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed"]})).await);
    let o = id_of(&create_subscription(&stack, json!({"url": ops.url(), "events": ["webhook.*"]})).await);
    let (_, fresh, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!((fresh["disabled_reason"].clone(), fresh["disabled_at"].clone()), (Value::Null, Value::Null));

    let first = publish_n(&stack, "chain.confirmed", &f, 1).await.remove(0);
    // Its fourth failure announced it failing first (tests/tests/e2e/failing.rs).
    let disabled_event =
        || ops.requests().iter().map(|r| r.json()).find(|e| e["event_type"] == "webhook.subscription.disabled");
    wait_until(EVENTUALLY, "the disabled event", || async { disabled_event().is_some() }).await;
    let event = disabled_event().unwrap();
    assert_eq!(event["data"]["subscription_id"], f.as_str());
    assert_eq!(event["data"]["url"], receiver.url());
    assert_eq!(event["data"]["reason"], "failing");
    let failing_since = Timestamp::parse_rfc3339(event["data"]["failing_since"].as_str().unwrap()).unwrap();
    let first_attempt = get_delivery(&stack, &first).await["attempts"][0]["started_at"]
        .as_str()
        .map(|t| Timestamp::parse_rfc3339(t).unwrap())
        .unwrap();
    assert!(failing_since >= first_attempt, "the clock starts at the first failure");

    let (_, disabled, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!(disabled["active"], false, "{disabled}");
    assert_eq!(disabled["disabled_reason"], "failing");
    let disabled_at = Timestamp::parse_rfc3339(disabled["disabled_at"].as_str().unwrap()).unwrap();
    assert!(disabled_at.unix_ms() - failing_since.unix_ms() >= 8000, "disabled only after AUTO_DISABLE_AFTER_SECONDS");
    let attempts_when_disabled = get_delivery(&stack, &first).await["attempt_count"].as_u64().unwrap();
    assert!(attempts_when_disabled >= 3, "several failed attempts first: {attempts_when_disabled}");

    // Disabled: no new deliveries.
    let (_, accepted, _) = stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
    assert_eq!(accepted["deliveries"], 0, "{accepted}");

    // Re-enabled: the reason is cleared, and a success keeps it enabled.
    receiver.set_script(Script::default());
    let (status, enabled, _) = stack.patch(&format!("{SUBSCRIPTIONS}/{f}"), json!({"active": true})).await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(
        (enabled["active"].clone(), enabled["disabled_reason"].clone(), enabled["disabled_at"].clone()),
        (json!(true), Value::Null, Value::Null)
    );
    let next = publish_n(&stack, "chain.confirmed", &f, 1).await.remove(0);
    wait_for_delivery_status(&stack, &next, "succeeded", EVENTUALLY).await;
    let (_, after, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!(after["active"], true, "{after}");
    let mut heard: Vec<String> =
        ops.requests().iter().map(|r| r.json()["event_type"].as_str().unwrap().to_owned()).collect();
    heard.sort();
    assert_eq!(
        heard,
        ["webhook.subscription.disabled", "webhook.subscription.failing"],
        "one disabled event after one failing event; the operational subscription {o} heard nothing else (re-enabling \
         restarts the clock, so the success after it is no recovery)"
    );
}
