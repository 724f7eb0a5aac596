//! API keys on every route: 401 for missing, malformed, unknown or revoked keys, 403 for a
//! missing scope (docs/security.md, "Keys and tenants").

use crate::support::{assert_error, create_subscription, id_of, subscription_body, ENDPOINTS, SUBSCRIPTIONS};
use puck_core::model::Scope;
use puck_e2e::TestStack;
use reqwest::Method;
use serde_json::{json, Value};

/// Every authenticated route, with an existing-looking id where one is needed.
fn authenticated_routes(sub_id: &str) -> Vec<(Method, String, Scope)> {
    let manage = Scope::WebhooksManage;
    vec![
        (Method::POST, SUBSCRIPTIONS.to_owned(), manage),
        (Method::GET, SUBSCRIPTIONS.to_owned(), manage),
        (Method::GET, format!("{SUBSCRIPTIONS}/{sub_id}"), manage),
        (Method::PATCH, format!("{SUBSCRIPTIONS}/{sub_id}"), manage),
        (Method::DELETE, format!("{SUBSCRIPTIONS}/{sub_id}"), manage),
        (Method::POST, format!("{SUBSCRIPTIONS}/{sub_id}/test"), manage),
        (Method::POST, format!("{SUBSCRIPTIONS}/{sub_id}/recover"), manage),
        (Method::GET, "/v1/webhooks/deliveries".to_owned(), manage),
        (Method::GET, "/v1/webhooks/deliveries/dlv_01jtq8p5f7z9n1q4r6t8v0w2xc".to_owned(), manage),
        (Method::POST, "/v1/webhooks/deliveries/dlv_01jtq8p5f7z9n1q4r6t8v0w2xc/replay".to_owned(), manage),
        (Method::POST, ENDPOINTS.to_owned(), manage),
        (Method::GET, ENDPOINTS.to_owned(), manage),
        (Method::DELETE, format!("{ENDPOINTS}/ep_01jtq8p5f7z9n1q4r6t8v0w2xc"), manage),
        (Method::POST, "/v1/events".to_owned(), Scope::EventsPublish),
        (Method::GET, "/v1/investigations/inv_01jtq8p5f7z9n1q4r6t8v0w2xc".to_owned(), Scope::InvestigationsRead),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_and_unknown_keys_get_401_json_on_every_route() {
    let stack = TestStack::start_default().await;
    let sub_id = id_of(&create_subscription(&stack, subscription_body()).await);
    let unknown = format!("pck_test_{}", "Z".repeat(40));
    let bad_headers: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some(format!("Basic {}", stack.api_key())),
        Some(format!("Token {}", stack.api_key())),
        Some("Bearer pck_test_short".to_owned()),
        Some(format!("Bearer pck_prod_{}", "a".repeat(40))),
        Some(format!("Bearer {}!", stack.api_key())),
        Some(format!("Bearer {unknown}")),
        Some(format!("Bearer {}", stack.api_key().replace("pck_test_", "pck_live_"))),
    ];
    for (method, path, _) in authenticated_routes(&sub_id) {
        for header in &bad_headers {
            let headers: Vec<(&str, &str)> = header.iter().map(|h| ("authorization", h.as_str())).collect();
            let resp = stack.anonymous().raw(method.clone(), &path, &headers, br#"{}"#.to_vec()).await;
            // Each refusal names what is wrong: the header missing, the scheme, or the key.
            let needle = match header.as_deref() {
                None => "missing Authorization header",
                Some("") => "Authorization",
                Some(h) if h.starts_with("Bearer") => "invalid API key",
                Some(_) => "Authorization must be Bearer <API key>",
            };
            assert_error(&resp, 401, "unauthorized", needle);
            let message = resp.1["error"]["message"].as_str().unwrap();
            assert!(!message.contains(stack.api_key()), "{message}");
        }
    }
    // Nothing was changed by any of those requests.
    let (status, sub, _) = stack.get(&format!("{SUBSCRIPTIONS}/{sub_id}")).await;
    assert_eq!(status, 200, "{sub}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_gets_401() {
    let stack = TestStack::start_default().await;
    let account = stack.new_account(&Scope::ALL).await;
    let client = stack.with_key(&account.api_key);
    let (status, _, _) = client.get(SUBSCRIPTIONS).await;
    assert_eq!(status, 200);

    let record = stack
        .ctx()
        .api_keys
        .find_by_hash(&stack.ctx().keyring.lookup_hash(&account.api_key))
        .await
        .unwrap()
        .expect("the key is stored by its hash");
    assert!(stack.ctx().api_keys.revoke(&account.account_id, &record.key_id).await.unwrap());

    assert_error(&client.get(SUBSCRIPTIONS).await, 401, "unauthorized", "invalid API key");
    assert_error(&client.post(SUBSCRIPTIONS, subscription_body()).await, 401, "unauthorized", "invalid API key");
    assert_error(
        &client.post("/v1/events", json!({"event_type": "agent.registered", "data": {}})).await,
        401,
        "unauthorized",
        "invalid API key",
    );
    // Other keys are unaffected.
    assert_eq!(stack.get(SUBSCRIPTIONS).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_lacking_the_routes_scope_gets_403_and_can_use_its_own_scope() {
    let stack = TestStack::start_default().await;
    let sub_id = id_of(&create_subscription(&stack, subscription_body()).await);
    let publisher = stack.issue_key(stack.account_id(), &[Scope::EventsPublish]).await;
    let reader = stack.issue_key(stack.account_id(), &[Scope::InvestigationsRead]).await;

    for (method, path, scope) in authenticated_routes(&sub_id) {
        for (key, has) in [(&publisher, Scope::EventsPublish), (&reader, Scope::InvestigationsRead)] {
            if scope == has {
                continue;
            }
            let resp = stack.with_key(key).json(method.clone(), &path, json!({})).await;
            assert_error(&resp, 403, "forbidden", scope.as_str());
        }
    }

    // The publisher can publish.
    let (status, published, _) = stack
        .with_key(&publisher)
        .post("/v1/events", json!({"event_type": "agent.registered", "data": {"agent_id": "a1"}}))
        .await;
    assert_eq!(status, 202, "{published}");
    assert_eq!(published["deliveries"], 0);
    // The reader reaches the route (404 for an unknown investigation, not 401/403).
    let resp = stack.with_key(&reader).get("/v1/investigations/inv_01jtq8p5f7z9n1q4r6t8v0w2xc").await;
    assert_error(&resp, 404, "not_found", "investigation not found");

    // The 403s changed nothing.
    let (status, sub, _) = stack.get(&format!("{SUBSCRIPTIONS}/{sub_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(sub["active"], true);
    assert_ne!(sub, Value::Null);
}
