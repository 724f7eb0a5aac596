//! OAuth 2.0 client credentials receivers (docs/api.md, "OAuth 2.0 receivers"): a real HTTPS token
//! endpoint beside the HTTPS receiver. The bearer arrives and is one token for many deliveries;
//! a receiver's 401 makes the retry fetch a new token; a refused grant is the attempt's error
//! and the receiver gets nothing; the client secret is never shown, logged or stored in clear;
//! bad `auth` is a 400 naming the field.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use puck_e2e::delivery::{get_delivery, list_all_deliveries};
use puck_e2e::leaks::assert_not_leaked;
use puck_e2e::{wait_for_some, ReceivedRequest, Receiver, Reply, Script, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const CLIENT_ID: &str = "puck-e2e-client";
const CLIENT_SECRET: &str = "cs-7Hq2-e2e-client-secret-Zx91";

/// A token endpoint issuing `tok-<n>-<salt>` (an hour each) to requests with the right Basic
/// credentials and a client credentials grant, `400 invalid_client` to anything else and to the
/// first `refuse_first` requests.
async fn token_endpoint(salt: &'static str, refuse_first: usize) -> Receiver {
    let issued = Arc::new(AtomicUsize::new(0));
    Receiver::start_with(Script::from_fn(move |request: &ReceivedRequest, index| {
        let basic = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
        let grant = request.text().split('&').any(|p| p == "grant_type=client_credentials");
        if request.header("authorization") != Some(basic.as_str()) || !grant || index < refuse_first {
            return Reply::status(400).body(r#"{"error":"invalid_client"}"#);
        }
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::ok().header("content-type", "application/json").body(
            json!({"access_token": format!("tok-{n}-{salt}"), "token_type": "Bearer", "expires_in": 3600}).to_string(),
        )
    }))
    .await
}

fn auth(token: &Receiver) -> Value {
    json!({
        "type": "oauth2_client_credentials",
        "token_url": token.url_with_path("/oauth/token"),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "webhooks:receive",
        "audience": "https://siem.example",
    })
}

fn bearers(receiver: &Receiver) -> Vec<String> {
    receiver.requests().iter().map(|r| r.header("authorization").unwrap_or("-").to_owned()).collect()
}

async fn publish(stack: &TestStack, agent: &str) {
    let event = json!({"event_type": "agent.registered", "data": {"agent_id": agent}});
    let (status, body, _) = stack.post("/v1/events", event).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_carry_one_cached_bearer_token_and_the_client_secret_is_never_shown() {
    let stack = TestStack::start_default().await;
    let (token, receiver) = (token_endpoint("a9", 0).await, Receiver::start().await);
    let created =
        create_subscription(&stack, json!({"url": receiver.url(), "events": ["*"], "auth": auth(&token)})).await;
    let id = id_of(&created);
    assert_eq!(created["auth"]["client_secret"], "***");
    assert_eq!(created["auth"]["client_id"], CLIENT_ID);

    for agent in ["a1", "a2", "a3"] {
        publish(&stack, agent).await;
    }
    receiver.wait_for(3, EVENTUALLY).await;
    let (_, wait, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test?wait=true"), Value::Null).await;
    assert_eq!(wait["status"], "succeeded", "{wait}");
    assert_eq!(wait["attempt"]["request_headers"]["authorization"], "***", "{wait}");
    assert_eq!(bearers(&receiver), vec!["Bearer tok-1-a9"; 4], "one token for every delivery, the test included");
    let grants = token.requests();
    assert_eq!(grants.len(), 1, "the token endpoint was asked once for four deliveries");
    assert_eq!(grants[0].method, "POST");
    assert_eq!(grants[0].path, "/oauth/token");
    assert_eq!(grants[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        grants[0].text(),
        "grant_type=client_credentials&scope=webhooks%3Areceive&audience=https%3A%2F%2Fsiem.example"
    );

    let (_, fetched, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(fetched["auth"], created["auth"]);
    let (_, listed, _) = stack.get(SUBSCRIPTIONS).await;
    let deliveries = list_all_deliveries(&stack, "").await;
    assert_eq!(deliveries.len(), 4);
    for d in &deliveries {
        let detail = get_delivery(&stack, d["id"].as_str().unwrap()).await;
        assert_eq!(detail["attempts"][0]["request_headers"]["authorization"], "***", "{detail}");
        assert!(!detail.to_string().contains("tok-1-a9"), "the bearer is redacted: {detail}");
    }
    for shown in [&created, &fetched, &listed, &wait] {
        assert!(!shown.to_string().contains(CLIENT_SECRET), "{shown}");
    }
    let basic = STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let secrets = [
        ("client secret".to_owned(), CLIENT_SECRET.to_owned()),
        ("basic credentials".to_owned(), basic),
        ("access token".to_owned(), "tok-1-a9".to_owned()),
    ];
    assert_not_leaked(&stack, &secrets).await;

    // PATCH replaces auth (the new one is used: a new token), null removes it.
    let (status, removed, _) = stack.patch(&format!("{SUBSCRIPTIONS}/{id}"), json!({"auth": null})).await;
    assert_eq!((status, removed["auth"].clone()), (200, Value::Null), "{removed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_401_drops_the_token_and_the_retry_fetches_a_new_one() {
    let stack = TestStack::start_default().await;
    let token = token_endpoint("b7", 0).await;
    let receiver = Receiver::start_with(Script::sequence([Reply::status(401)])).await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["*"], "auth": auth(&token)})).await;
    publish(&stack, "a1").await;
    let delivery = wait_for_some(EVENTUALLY, "the retry to succeed", || async {
        list_all_deliveries(&stack, "").await.into_iter().find(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(bearers(&receiver), vec!["Bearer tok-1-b7", "Bearer tok-2-b7"], "the 401 dropped the first token");
    assert_eq!(token.requests().len(), 2);
    let detail = get_delivery(&stack, delivery["id"].as_str().unwrap()).await;
    assert_eq!(detail["attempts"][0]["response_status"], 401, "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_is_the_attempts_error_the_receiver_gets_nothing_and_the_retry_recovers() {
    let stack = TestStack::start_default().await;
    let token = token_endpoint("c3", 2).await;
    let receiver = Receiver::start().await;
    let created =
        create_subscription(&stack, json!({"url": receiver.url(), "events": ["*"], "auth": auth(&token)})).await;
    let id = id_of(&created);

    let (_, wait, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test?wait=true"), Value::Null).await;
    assert_eq!(wait["status"], "failed_permanent", "{wait}");
    assert_eq!(wait["attempt"]["error"], "oauth2 token: HTTP 400 invalid_client", "{wait}");
    assert_eq!(wait["attempt"]["response_status"], Value::Null);

    // Queued: the token error is the attempt's, retried on the schedule like any failed attempt;
    // once the endpoint issues a token, the retry delivers.
    publish(&stack, "a1").await;
    let delivery = wait_for_some(EVENTUALLY, "the retry to succeed", || async {
        let all = list_all_deliveries(&stack, "event_type=agent.registered").await;
        all.into_iter().find(|d| d["status"] == "succeeded")
    })
    .await;
    let detail = get_delivery(&stack, delivery["id"].as_str().unwrap()).await;
    let first = &detail["attempts"][0];
    assert_eq!(first["error"], "oauth2 token: HTTP 400 invalid_client", "{detail}");
    assert_eq!(first["response_status"], Value::Null, "{detail}");
    assert!(first["request_headers"].get("authorization").is_none(), "{detail}");
    assert_eq!(detail["attempts"][1]["response_status"], 200, "{detail}");
    assert_eq!(bearers(&receiver), vec!["Bearer tok-1-c3"], "the refused attempts sent the receiver nothing");
    assert_eq!(token.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_auth_is_a_400_naming_the_field_and_nothing_is_stored() {
    let stack = TestStack::start(TestStackOptions::default().deny_private_targets()).await;
    let good = json!({"type": "oauth2_client_credentials", "token_url": "https://auth.example.com/token",
        "client_id": "c", "client_secret": "s"});
    let with = |field: &str, value: Value| {
        let mut a = good.clone();
        a[field] = value;
        a
    };
    let cases = [
        (with("token_url", json!("http://auth.example.com/token")), "auth.token_url: must use https"),
        (with("token_url", json!("https://169.254.169.254/token")), "auth.token_url: host is a private"),
        (with("type", json!("oauth2_password")), "auth.type"),
        (with("client_id", Value::Null), "auth.client_id: is required"),
        (with("client_secret", json!("")), "auth.client_secret"),
        (with("scope", json!(7)), "auth.scope: must be a string"),
        (with("grant_type", json!("x")), "unknown field auth.grant_type"),
        (json!("Bearer abc"), "auth must be an object"),
    ];
    for (auth, needle) in cases {
        let body = json!({"url": "https://hooks.example.com/x", "events": ["*"], "auth": auth});
        assert_error(&stack.post(SUBSCRIPTIONS, body).await, 400, "validation_error", needle);
    }
    let both = json!({"url": "https://hooks.example.com/x", "events": ["*"], "auth": good,
        "headers": {"Authorization": "Splunk x"}});
    assert_error(&stack.post(SUBSCRIPTIONS, both).await, 400, "validation_error", "headers.Authorization");
    let (_, listed, _) = stack.get(SUBSCRIPTIONS).await;
    assert!(listed["subscriptions"].as_array().unwrap().is_empty(), "nothing stored: {listed}");

    let created =
        create_subscription(&stack, json!({"url": "https://hooks.example.com/x", "events": ["*"], "auth": good})).await;
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&created));
    let conflict = stack.patch(&path, json!({"headers": {"authorization": "Splunk x"}})).await;
    assert_error(&conflict, 400, "validation_error", "headers.authorization");
    assert_error(
        &stack.patch(&path, json!({"auth": {"type": "oauth2_client_credentials"}})).await,
        400,
        "validation_error",
        "auth.token_url: is required",
    );
}
