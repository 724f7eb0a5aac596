//! A subscription's state under concurrency: auto-disable while many deliveries are in flight
//! (each attempted with a cached copy of the subscription), and PATCHes that race each other or
//! the service's own writes. See RELIABILITY.md.

use crate::support::{create_subscription, id_of, SUBSCRIPTIONS};
use puck_core::ids::{ApiKeyId, SubscriptionId};
use puck_core::model::{Caller, DeliveryStatus, Scope, Subscription};
use puck_core::ports::SettingsWrite;
use puck_core::services::subscriptions;
use puck_core::time::Timestamp;
use puck_e2e::{wait_until, Receiver, Script, TestStack, TestStackOptions, EVENTUALLY};
use puck_local::pollers::{QueuePoller, SqsWorker};
use puck_local::template::SqsConsumer;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One more dispatcher container: its own config cache (and last-delivery memory), polling the
/// stack's delivery queue as one more concurrent Lambda of the event source mapping would.
pub(crate) async fn another_dispatcher_container(stack: &TestStack) -> tokio::task::JoinHandle<()> {
    let local = &stack.stack;
    let config = puck_aws::Config::from_lookup(|name| local.env.get(name).cloned()).expect("config");
    let dispatcher = Arc::new(puck_aws::build_dispatcher(&config).await.expect("dispatcher"));
    let (url, arn) = local.provisioned.queue("DeliveryQueue").expect("delivery queue");
    QueuePoller {
        consumer: SqsConsumer {
            function: "DispatcherFunction".into(),
            binary: "dispatcher".into(),
            queue: "DeliveryQueue".into(),
            batch_size: 10,
            report_batch_item_failures: true,
            timeout_secs: 60,
            max_concurrency: 20,
        },
        queue_url: url.to_owned(),
        queue_arn: arn.to_owned(),
        worker: SqsWorker::Dispatcher(dispatcher),
        sqs: local.clients.sqs.clone(),
        poll_interval: Duration::from_millis(50),
    }
    .spawn()
}

/// The scenario as a new user would try it: a receiver that always answers 500, an event every
/// 300 ms, a short window and short backoff, many deliveries in flight on four dispatcher
/// containers, each with its own cached copy of the subscription. It is disabled soon after its
/// window and announced exactly once to a subscription listening for `webhook.*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_subscription_with_many_deliveries_in_flight_is_disabled_soon_after_its_window_once() {
    const WINDOW_SECS: i64 = 8;
    let stack = TestStack::start(
        TestStackOptions::default().backoff(1, 2).env("AUTO_DISABLE_AFTER_SECONDS", WINDOW_SECS.to_string()),
    )
    .await;
    let mut containers = Vec::new();
    for _ in 0..3 {
        containers.push(another_dispatcher_container(&stack).await);
    }
    let receiver = Receiver::start_with(Script::status(500)).await;
    let ops = Receiver::start().await;
    let f = id_of(&create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed"]})).await);
    create_subscription(&stack, json!({"url": ops.url(), "events": ["webhook.*"]})).await;
    let disabled = publish_until_disabled(&stack, &f, WINDOW_SECS).await;
    let attempts = receiver.requests().len();
    let sub = disabled.unwrap_or_else(|| panic!("still active after {attempts} failed attempts"));
    assert_eq!(sub["disabled_reason"], "failing", "{sub}");
    let disabled_events = || {
        let all = ops.requests();
        all.iter().map(|r| r.json()).filter(|e| e["event_type"] == "webhook.subscription.disabled").collect::<Vec<_>>()
    };
    wait_until(EVENTUALLY, "the disabled event", || async { !disabled_events().is_empty() }).await;
    let event = disabled_events().remove(0);
    assert_eq!(event["data"]["subscription_id"], f.as_str());
    let failing_since = Timestamp::parse_rfc3339(event["data"]["failing_since"].as_str().unwrap()).unwrap();
    let disabled_at = Timestamp::parse_rfc3339(sub["disabled_at"].as_str().unwrap()).unwrap();
    let late_ms = disabled_at.unix_ms() - failing_since.plus_seconds(WINDOW_SECS).unix_ms();
    assert!((0..10_000).contains(&late_ms), "disabled {late_ms} ms after its window ended ({attempts} attempts)");
    // Attempts still in flight on every container when it was disabled do not announce it again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(disabled_events().len(), 1, "announced once");
    // Its failing run was announced once too, although four containers counted its failures.
    let failing_events =
        || ops.requests().iter().filter(|r| r.json()["event_type"] == "webhook.subscription.failing").count();
    assert_eq!(failing_events(), 1, "one failing event per failing run");

    // Re-enabled on another API container (so no dispatcher's cache hears of it) and still
    // failing: every container sees it active again within its cache's TTL, although attempts
    // keep updating their cached copies, so it is disabled again one window later and announced
    // once more.
    let api_container = {
        let config = puck_aws::Config::from_lookup(|name| stack.stack.env.get(name).cloned()).expect("config");
        puck_aws::build_context(&config).await.expect("context")
    };
    let caller =
        Caller { account_id: stack.account_id().clone(), key_id: ApiKeyId::generate(1), scopes: Scope::ALL.to_vec() };
    let enabled = subscriptions::update(&api_container, &caller, &f, json!({"active": true})).await.unwrap();
    assert_eq!(enabled["active"], true, "{enabled}");
    let again = publish_until_disabled(&stack, &f, WINDOW_SECS).await;
    let attempts = receiver.requests().len();
    let again = again.unwrap_or_else(|| panic!("not disabled again after re-enabling ({attempts} failed attempts)"));
    assert_eq!(again["disabled_reason"], "failing", "{again}");
    wait_until(EVENTUALLY, "the second disabled event", || async { disabled_events().len() == 2 }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(disabled_events().len(), 2, "once per disable");
    assert_eq!(failing_events(), 2, "re-enabling restarts the clock: a new failing run, announced once");
    containers.iter().for_each(|c| c.abort());
}

/// Publishes an event every 300 ms until the subscription is inactive (its view returned) or
/// the window and [`EVENTUALLY`] have passed (None).
async fn publish_until_disabled(stack: &TestStack, f: &str, window_secs: i64) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(window_secs as u64) + EVENTUALLY;
    while Instant::now() < deadline {
        stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
        let (_, sub, _) = stack.get(&format!("{SUBSCRIPTIONS}/{f}")).await;
        if sub["active"] == false {
            return Some(sub);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    None
}

/// On DynamoDB (moto): a PATCH is written only at the version it read and never rewrites the
/// attempt path's fields; an auto-disable moves the version, so a PATCH that read before it
/// cannot undo it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_writes_only_at_the_version_it_read_and_leaves_the_attempt_paths_fields_alone() {
    let stack = TestStack::start_default().await;
    let store = stack.ctx().subscriptions.clone();
    let account = stack.account_id().clone();
    let f = id_of(&create_subscription(&stack, json!({"url": "https://hooks.example.com/a", "events": ["*"]})).await);
    let id = SubscriptionId::parse(&f).unwrap();
    let before = store.get_fresh(&account, &id).await.unwrap().unwrap();
    let since = Timestamp::now();
    assert!(store.mark_failing(&account, &id, since).await.unwrap());
    store.record_last_delivery(&account, &id, DeliveryStatus::Failed, since).await.unwrap();

    let (status, rotated, _) = stack.patch(&format!("{SUBSCRIPTIONS}/{f}"), json!({"secret": null})).await;
    assert_eq!(status, 200, "{rotated}");
    let stored = store.get_fresh(&account, &id).await.unwrap().unwrap();
    assert_eq!(stack.ctx().keyring.decrypt(&stored.secret_enc, &f).unwrap(), rotated["secret"].as_str().unwrap());
    assert_eq!((stored.failing_since, stored.last_delivery_status.as_deref()), (Some(since), Some("failed")));
    assert_eq!(stored.version, before.version + 1);

    // What a PATCH that read before the rotation would write: refused, the rotation stands.
    let stale = Subscription { active: false, ..before.clone() };
    assert_eq!(store.update_settings(&stale, before.version, false).await.unwrap(), SettingsWrite::Changed);
    let kept = store.get_fresh(&account, &id).await.unwrap().unwrap();
    assert_eq!((kept.secret_enc.as_str(), kept.active), (stored.secret_enc.as_str(), true));

    // An auto-disable moves the version: a PATCH that read before it conflicts.
    assert!(store.disable_failing(&account, &id, since, Timestamp::now()).await.unwrap());
    let disabled = store.get_fresh(&account, &id).await.unwrap().unwrap();
    assert_eq!((disabled.active, disabled.version), (false, stored.version + 1));
    let renamed = Subscription { name: Some("x".into()), ..stored.clone() };
    assert_eq!(store.update_settings(&renamed, stored.version, false).await.unwrap(), SettingsWrite::Changed);
    // Re-enabled through the API (a fresh read): written, the clock restarts.
    let (status, enabled, _) = stack.patch(&format!("{SUBSCRIPTIONS}/{f}"), json!({"active": true})).await;
    assert_eq!((status, &enabled["active"], &enabled["disabled_reason"]), (200, &json!(true), &Value::Null));
    let after = store.get_fresh(&account, &id).await.unwrap().unwrap();
    assert_eq!((after.failing_since, after.disabled_at, after.version), (None, None, disabled.version + 1));

    let (status, _, _) = stack.delete(&format!("{SUBSCRIPTIONS}/{f}")).await;
    assert_eq!(status, 204);
    assert_eq!(store.update_settings(&after, after.version, false).await.unwrap(), SettingsWrite::Gone);
}
