//! Flow limits end to end (README.md, "Limits"): the account's publish rate, test-event rate and
//! subscription count; the per-subscription in-flight cap across dispatcher instances; and one
//! account's slow backlog beside another account's healthy subscription.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_e2e::delivery::list_all_deliveries;
use puck_e2e::{wait_until, Receiver, Reply, Script, TestStack, TestStackOptions, EVENTUALLY};
use puck_local::pollers::{QueuePoller, SqsWorker};
use puck_local::template::SqsConsumer;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn events(n: usize, event_type: &str) -> Value {
    json!({"events": (0..n).map(|i| json!({"event_type": event_type, "data": {"i": i}})).collect::<Vec<_>>()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_over_the_account_rate_is_429_with_retry_after_and_a_refused_request_publishes_nothing() {
    let stack = TestStack::start(TestStackOptions::default().env("ACCOUNT_PUBLISH_PER_SECOND", "5")).await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.*"]})).await;

    let refused = stack.post("/v1/events/batch", events(6, "chain.confirmed")).await;
    assert_error(&refused, 429, "rate_limited", "5 events per second");
    let retry_after: u32 = refused.2["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=1).contains(&retry_after), "a one-second window: {retry_after}");

    // Twenty single publishes at once: at most five per second-window are accepted.
    let started = Instant::now();
    let answers = futures::future::join_all(
        (0..20).map(|i| stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {"n": i}}))),
    )
    .await;
    let windows = started.elapsed().as_secs() as usize + 2;
    let accepted = answers.iter().filter(|a| a.0 == 202).count();
    let limited: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!(accepted + limited.len(), 20, "{answers:?}");
    assert!(accepted >= 5 && accepted <= 5 * windows, "accepted {accepted} over {windows} windows");
    assert!(limited.iter().all(|a| a.1["error"]["code"] == "rate_limited" && a.2.contains_key("retry-after")));
    receiver.wait_for(accepted, EVENTUALLY).await;
    let log = list_all_deliveries(&stack, "").await;
    assert_eq!(log.len(), accepted, "exactly the accepted events made deliveries: none of a refused one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_events_over_the_account_rate_are_429_and_a_subscription_over_the_count_is_400() {
    let stack = TestStack::start(
        TestStackOptions::default().env("ACCOUNT_TESTS_PER_MINUTE", "2").env("ACCOUNT_MAX_SUBSCRIPTIONS", "2"),
    )
    .await;
    let receiver = Receiver::start().await;
    let body = json!({"url": receiver.url(), "events": ["chain.*"]});
    let first = id_of(&create_subscription(&stack, body.clone()).await);
    create_subscription(&stack, body.clone()).await;
    let over = stack.post(SUBSCRIPTIONS, body.clone()).await;
    assert_error(&over, 400, "limit_exceeded", "the most it may have (2)");
    let other = stack.new_account(&puck_core::model::Scope::ALL).await;
    let (status, _, _) = stack.with_key(&other.api_key).post(SUBSCRIPTIONS, body).await;
    assert_eq!(status, 201, "the count is per account");

    // Two per minute: of four calls at least one is refused (two if no minute ends between them).
    let path = format!("{SUBSCRIPTIONS}/{first}/test");
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(stack.post(&path, Value::Null).await);
    }
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert!(!refused.is_empty() && answers.iter().filter(|a| a.0 == 202).count() <= 4, "{answers:?}");
    assert_error(refused[0], 429, "rate_limited", "2 test events per minute");
    let retry_after: u32 = refused[0].2["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

/// One more dispatcher instance polling the stack's delivery queue, with its own in-memory
/// counts, as another Lambda container of the event source would.
async fn another_dispatcher_instance(stack: &TestStack) -> tokio::task::JoinHandle<()> {
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
            timeout_secs: 30,
            max_concurrency: 20,
        },
        queue_url: url.to_owned(),
        queue_arn: arn.to_owned(),
        worker: SqsWorker::Dispatcher(dispatcher),
        sqs: local.clients.sqs.clone(),
        poll_interval: Duration::from_millis(100),
    }
    .spawn()
}

/// Most requests in progress at once at a receiver that answers each after `delay`.
fn most_at_once(receiver: &Receiver, delay: Duration) -> usize {
    let starts: Vec<Instant> = receiver.requests().iter().map(|r| r.received_at).collect();
    starts.iter().map(|&t| starts.iter().filter(|&&s| s <= t && t.duration_since(s) < delay).count()).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_holds_at_most_the_in_flight_cap_across_dispatcher_instances_and_gets_everything() {
    let stack = TestStack::start(TestStackOptions::default().env("SUBSCRIPTION_MAX_IN_FLIGHT", "2")).await;
    let others = [another_dispatcher_instance(&stack).await, another_dispatcher_instance(&stack).await];
    let delay = Duration::from_millis(2_500);
    let receiver = Receiver::start_with(Script::always(Reply::ok().delay(delay))).await;
    let sub = id_of(&create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.*"]})).await);
    let (status, _, _) = stack.post("/v1/events/batch", events(8, "chain.confirmed")).await;
    assert_eq!(status, 202);
    receiver.wait_for(8, EVENTUALLY).await;
    let query = format!("subscription_id={sub}&status=succeeded");
    wait_until(EVENTUALLY, "every delivery succeeded", || {
        let (stack, query) = (&stack, query.clone());
        async move { list_all_deliveries(stack, &query).await.len() == 8 }
    })
    .await;
    let log = list_all_deliveries(&stack, &format!("subscription_id={sub}")).await;
    assert!(log.iter().all(|d| d["attempt_count"] == 1), "waiting is not an attempt: {log:?}");
    assert_eq!(receiver.requests().len(), 8, "each delivered once");
    // Three dispatcher instances, each able to send a batch of ten at once: the cap holds them.
    let most = most_at_once(&receiver, delay - Duration::from_millis(300));
    assert!(most <= 2, "{most} attempts at once, over the cap of 2");
    for task in others {
        task.abort();
    }
}

/// Seconds from each publish to its receipt, for events carrying `{"sent_ms": …}` in `data`.
fn latencies(receiver: &Receiver, sent: &[(u64, Instant)]) -> Vec<f64> {
    receiver
        .requests()
        .iter()
        .filter_map(|r| {
            let n = r.json()["data"]["n"].as_u64()?;
            let (_, at) = sent.iter().find(|(m, _)| *m == n)?;
            Some(r.received_at.duration_since(*at).as_secs_f64())
        })
        .collect()
}

fn p99(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() as f64 * 0.99).ceil() as usize).clamp(1, xs.len()) - 1]
}

/// Publishes one event a second to B for `secs` seconds; returns (n, publish time) of each.
async fn one_a_second(stack: &TestStack, key: &str, from: u64, secs: u64) -> Vec<(u64, Instant)> {
    let api = stack.with_key(key);
    let mut sent = Vec::new();
    for n in from..from + secs {
        let at = Instant::now();
        let (status, _, _) = api.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {"n": n}})).await;
        assert_eq!(status, 202);
        sent.push((n, at));
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(at.elapsed())).await;
    }
    sent
}

/// The fairness measurement, short: account A has three subscriptions whose receiver answers
/// after 3 s (the load script's long run uses 9 s; 3 s is still far above B's attempt time and
/// keeps the test short) and a backlog of 30 deliveries; account B has one healthy subscription
/// receiving an event a second. B's publish → receipt p99 is measured idle, then beside A's
/// backlog, in the same run. Eight dispatcher pollers, well within the template's
/// MaximumConcurrency; cap 2 per subscription, so A's slow attempts hold at most 6 of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_slow_backlog_leaves_a_healthy_subscription_as_prompt_as_on_an_idle_stack() {
    let stack = TestStack::start(
        TestStackOptions::default().env("SUBSCRIPTION_MAX_IN_FLIGHT", "2").pollers_per_queue(8),
    )
    .await;
    let b = stack.new_account(&puck_core::model::Scope::ALL).await;
    let healthy = Receiver::start().await;
    let (status, _, _) = stack
        .with_key(&b.api_key)
        .post(SUBSCRIPTIONS, json!({"url": healthy.url(), "events": ["chain.confirmed"]}))
        .await;
    assert_eq!(status, 201);
    let idle_sent = one_a_second(&stack, &b.api_key, 0, 8).await;
    healthy.wait_for(8, EVENTUALLY).await;
    let idle = p99(latencies(&healthy, &idle_sent));

    let slow = Receiver::start_with(Script::always(Reply::ok().delay(Duration::from_secs(3)))).await;
    for _ in 0..3 {
        create_subscription(&stack, json!({"url": slow.url(), "events": ["finding.*"]})).await;
    }
    let (status, _, _) = stack.post("/v1/events/batch", events(10, "finding.discovered")).await;
    assert_eq!(status, 202);
    let busy_sent = one_a_second(&stack, &b.api_key, 100, 15).await;
    healthy.wait_for(8 + 15, EVENTUALLY).await;
    let busy = p99(latencies(&healthy, &busy_sent));
    eprintln!("fairness: B p99 idle {idle:.3} s, beside A's slow backlog {busy:.3} s");
    assert!(busy < 2.0, "B's p99 {busy:.3} s beside A's backlog");
    assert!(busy <= 1.5 * idle.max(0.2), "B's p99 {busy:.3} s, idle {idle:.3} s");

    wait_until(EVENTUALLY, "every delivery of A succeeded", || {
        let stack = &stack;
        async move { list_all_deliveries(stack, "status=succeeded").await.len() == 30 }
    })
    .await;
    let log = list_all_deliveries(&stack, "").await;
    assert!(log.iter().all(|d| d["attempt_count"] == 1), "A's waits were not attempts");
    let a_times: Vec<Instant> = slow.requests().iter().map(|r| r.received_at).collect();
    let (first, last) = (a_times.iter().min().unwrap(), a_times.iter().max().unwrap());
    assert!(*first < busy_sent[3].1 && *last > busy_sent[10].1, "A's backlog was being sent while B was measured");
}
