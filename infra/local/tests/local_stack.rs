//! The local stack as the end-to-end tests use it: one moto, several stacks under their own
//! prefixes, routes from the template, the dev key, and clean shutdown.

use puck_local::{LocalStack, Moto, StackOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_share_one_moto_and_serve_the_template_routes() {
    let moto = Moto::start().await.expect("moto starts");
    let (a, b) = tokio::join!(
        LocalStack::start(StackOptions::new(moto.endpoint.clone()).env("ALLOW_PRIVATE_TARGETS", "1")),
        LocalStack::start(StackOptions::new(moto.endpoint.clone()))
    );
    let (a, b) = (a.expect("stack a starts"), b.expect("stack b starts"));
    assert_ne!(a.table_name, b.table_name);
    assert_ne!(a.base_url, b.base_url);
    assert!(a.dead_letter_queue_url.ends_with("-DeadLetterQueue"), "{}", a.dead_letter_queue_url);
    assert_eq!(a.env["ALLOW_PRIVATE_TARGETS"], "1");
    assert_eq!(a.env["MAX_DELIVERY_ATTEMPTS"], "17");
    assert!(a.api_key.starts_with("pck_test_"));

    let http = reqwest::Client::new();
    let not_found = http.get(format!("{}/nope", a.base_url)).send().await.unwrap();
    assert_eq!(not_found.status(), 404);
    let body: serde_json::Value = not_found.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["message"], "no route for GET /nope");

    let wrong_method = http.put(format!("{}/v1/webhooks/subscriptions", a.base_url)).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET, POST");

    let too_big =
        http.post(format!("{}/v1/events", a.base_url)).body(vec![b'x'; 6 * 1024 * 1024 + 1]).send().await.unwrap();
    assert_eq!(too_big.status(), 413);

    // Each stack's key works on its own stack only (separate tables and master keys).
    for (stack, other) in [(&a, &b), (&b, &a)] {
        let own = http
            .get(format!("{}/v1/webhooks/subscriptions", stack.base_url))
            .bearer_auth(&stack.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(own.status(), 200, "{}", own.text().await.unwrap());
        let foreign = http
            .get(format!("{}/v1/webhooks/subscriptions", stack.base_url))
            .bearer_auth(&other.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), 401);
    }

    a.run_schedules_now().await.expect("the sweeper runs on demand");

    let url = a.base_url.clone();
    a.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(http.get(format!("{url}/v1/webhooks/subscriptions")).send().await.is_err(), "server stopped");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_dev_key_is_used_and_a_malformed_one_refused() {
    let moto = Moto::start().await.expect("moto starts");
    let key = format!("pck_test_{}", "A1".repeat(20));
    let mut opts = StackOptions::new(moto.endpoint.clone());
    opts.dev_api_key = Some(key.clone());
    let stack = LocalStack::start(opts).await.expect("stack starts");
    assert_eq!(stack.api_key, key);
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/webhooks/deliveries", stack.base_url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let mut bad = StackOptions::new(moto.endpoint.clone());
    bad.dev_api_key = Some("pck_test_short".into());
    assert!(LocalStack::start(bad).await.is_err());
}
