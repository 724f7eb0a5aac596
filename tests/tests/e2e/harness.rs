//! The harness itself: receiver scripts behave as documented, and the stack's defaults make
//! retries come back within seconds (so delivery tests built on them stay quick).

use crate::support::{create_subscription, id_of, SUBSCRIPTIONS};
use puck_e2e::receiver::test_ca_pem_path;
use puck_e2e::{wait_for_some, Receiver, Reply, Script, TestStack, EVENTUALLY};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A client that trusts the test CA, like the service's sender under `EXTRA_CA_CERT`.
fn client() -> reqwest::Client {
    let pem = std::fs::read(test_ca_pem_path()).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_receiver_answers_by_script_over_trusted_https_and_records_every_request() {
    let receiver = Receiver::start_with(
        Script::sequence([Reply::status(500), Reply::status(410), Reply::status(429).header("Retry-After", "7")])
            .then(Reply::ok().body("fine")),
    )
    .await;
    let http = client();
    let mut statuses = Vec::new();
    for i in 0..5 {
        let resp =
            http.post(receiver.url()).header("x-n", i.to_string()).body(format!("body {i}")).send().await.unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert_eq!(resp.headers()["retry-after"], "7");
        }
        if resp.status() == 200 {
            assert_eq!(resp.text().await.unwrap(), "fine");
        }
    }
    assert_eq!(statuses, [500, 410, 429, 200, 200]);
    let requests = receiver.wait_for(5, Duration::from_secs(1)).await;
    for (i, r) in requests.iter().enumerate() {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook"));
        assert_eq!(r.header("x-n"), Some(i.to_string().as_str()));
        assert_eq!(r.text(), format!("body {i}"));
    }
    assert!(requests.windows(2).all(|w| w[0].received_at <= w[1].received_at));

    // A delay holds the answer back; a script can be swapped at run time.
    receiver.set_script(Script::always(Reply::status(204).delay(Duration::from_millis(300))));
    let started = Instant::now();
    let resp = http.get(receiver.url_with_path("/slow?x=1")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(receiver.requests().last().unwrap().path, "/slow?x=1");
}

#[tokio::test]
async fn random_failures_are_reproducible_from_their_seed() {
    let http = client();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let receiver = Receiver::start_with(Script::random_failures(0.5, 42)).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(http.post(receiver.url()).send().await.unwrap().status().as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&500) && runs[0].contains(&200), "{:?}", runs[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_retried_within_seconds_with_the_same_event_id() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start_with(Script::fail_times(2)).await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["agent.*"]})).await;
    let (status, accepted, _) = stack.post(&format!("{SUBSCRIPTIONS}/{}/test", id_of(&sub)), Value::Null).await;
    assert_eq!(status, 202, "{accepted}");

    let attempts = receiver.wait_for(3, EVENTUALLY).await;
    let event_ids: Vec<_> = attempts.iter().map(|r| r.header("x-puck-event-id").unwrap().to_owned()).collect();
    assert!(event_ids.iter().all(|id| *id == event_ids[0]), "{event_ids:?}");
    let delivery_ids: std::collections::BTreeSet<_> =
        attempts.iter().map(|r| r.header("x-puck-delivery-id").unwrap()).collect();
    assert_eq!(delivery_ids.len(), 3, "one X-Puck-Delivery-Id per attempt");

    let path = format!("/v1/webhooks/deliveries/{}", accepted["delivery_id"].as_str().unwrap());
    let delivery = wait_for_some(EVENTUALLY, "the delivery to succeed", || async {
        let (_, d, _) = stack.get(&path).await;
        (d["status"] == "succeeded").then_some(d)
    })
    .await;
    assert_eq!(delivery["attempt_count"], 3, "{delivery}");
    let statuses: Vec<&Value> =
        delivery["attempts"].as_array().unwrap().iter().map(|a| &a["response_status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);
}
