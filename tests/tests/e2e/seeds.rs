//! The curl examples of the product documents (seeds 000 and 002) against the local stack, with
//! only the host, the key and the example ids changed.
//!
//! When `curl` is installed the commands run literally through `sh -c`; the same requests are also
//! sent through reqwest with exactly the headers curl sends (notably `curl -d` without `-H
//! Content-Type` sends `application/x-www-form-urlencoded`), so the behaviour is covered even on
//! a machine without curl.

use crate::support::{id_of, SUBSCRIPTIONS};
use puck_e2e::TestStack;
use reqwest::Method;
use serde_json::Value;
use std::process::Command;

/// Whether `curl` can be run here.
fn curl_available() -> bool {
    Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Runs one documented curl command with `substitutions` applied (and `$PUCK_API_KEY` in its
/// environment); returns the status code and the body.
fn run_curl(command: &str, api_key: &str, substitutions: &[(&str, &str)]) -> (u16, Value) {
    let mut cmd = command.to_owned();
    for (from, to) in substitutions {
        cmd = cmd.replace(from, to);
    }
    // Appended to the last line: silent, and the status code after the body.
    let script = format!("{cmd} -sS -w '\\n%{{http_code}}'");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PUCK_API_KEY", api_key)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{script}\nfailed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    let status = code.trim().parse().unwrap_or_else(|_| panic!("no status code from curl: {stdout}"));
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or(Value::String(body.into()))
    };
    (status, body)
}

// Seed 000, "Webhooks API" (the commands exactly as documented, line breaks restored).
const CREATE_000: &str = r#"curl https://api.puck.security/v1/webhooks/subscriptions \
  -H "Authorization: Bearer $PUCK_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{ "url": "https://your-server.example/puck/events", "events": ["investigation.completed", "finding.discovered"], "filters": { "min_severity": "high" } }'"#;
const LIST_000: &str = r#"curl https://api.puck.security/v1/webhooks/subscriptions \
  -H "Authorization: Bearer $PUCK_API_KEY""#;
const GET_000: &str = r#"curl "https://api.puck.security/v1/webhooks/subscriptions/sub_01hx…" \
  -H "Authorization: Bearer $PUCK_API_KEY""#;
const PAUSE_000: &str = r#"curl -X PATCH "https://api.puck.security/v1/webhooks/subscriptions/sub_01hx…" \
  -H "Authorization: Bearer $PUCK_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{ "active": false }'"#;
const TEST_000: &str = r#"curl -X POST "https://api.puck.security/v1/webhooks/subscriptions/sub_01hx…/test" \
  -H "Authorization: Bearer $PUCK_API_KEY""#;
const DLQ_000: &str = r#"curl "https://api.puck.security/v1/webhooks/deliveries?status=failed_permanent&subscription_id=sub_01hx…" \
  -H "Authorization: Bearer $PUCK_API_KEY""#;
const REPLAY_000: &str = r#"curl -X POST "https://api.puck.security/v1/webhooks/deliveries/dlv_01hx…/replay" \
  -H "Authorization: Bearer $PUCK_API_KEY""#;
const DELETE_000: &str = r#"curl -X DELETE "https://api.puck.security/v1/webhooks/subscriptions/sub_01hx…" \
  -H "Authorization: Bearer $PUCK_API_KEY""#;
const ENDPOINT_CREATE_000: &str = r#"curl https://api.puck.security/v1/webhooks/incoming/endpoints \
  -H "Authorization: Bearer $PUCK_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{ "provider": "github", "provider_signing_secret": "gh_secret_abc123", "default_depth": "standard", "active": true }'"#;
const ENDPOINT_LIST_000: &str = r#"curl https://api.puck.security/v1/webhooks/incoming/endpoints \
  -H "Authorization: Bearer $PUCK_API_KEY""#;
const ENDPOINT_DELETE_000: &str = r#"curl -X DELETE "https://api.puck.security/v1/webhooks/incoming/endpoints/ep_01hx…" \
  -H "Authorization: Bearer $PUCK_API_KEY""#;
const GENERIC_000: &str = r#"curl -X POST "https://api.puck.security/v1/webhooks/incoming/generic/abc123secret…" \
  -H "Content-Type: application/json" \
  -d '{ "query": "check the host that just alerted", "agent_ids": ["agent_01hx…"] }'"#;

// Seed 002, "Subscription management".
const CREATE_002: &str = r#"curl -X POST https://brain.your-org.example/v1/webhooks/subscriptions \
  -H "Authorization: Bearer pck_live_…" \
  -H "Content-Type: application/json" \
  -d '{ "url": "https://your-system.example/puck/events", "events": ["investigation.completed", "finding.discovered"], "filters": { "min_severity": "high" } }'"#;
const TEST_002: &str = r#"curl -X POST https://brain.your-org.example/v1/webhooks/subscriptions/sub_018f2e3a…/test \
  -H "Authorization: Bearer pck_live_…""#;
const EVENTS_002: &str = r#"curl -X PATCH https://brain.your-org.example/v1/webhooks/subscriptions/sub_018f2e3a… \
  -H "Authorization: Bearer pck_live_…" \
  -H "Content-Type: application/json" \
  -d '{ "events": ["investigation.completed", "chain.confirmed"] }'"#;
const DISABLE_002: &str = r#"curl -X PATCH https://brain.your-org.example/v1/webhooks/subscriptions/sub_018f2e3a… \
  -H "Authorization: Bearer pck_live_…" \
  -d '{ "active": false }'"#;
const DELETE_002: &str = r#"curl -X DELETE https://brain.your-org.example/v1/webhooks/subscriptions/sub_018f2e3a… \
  -H "Authorization: Bearer pck_live_…""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_curl_examples_work_as_written() {
    if !curl_available() {
        eprintln!("curl is not installed: the literal seed commands are skipped (the reqwest equivalents still run)");
        return;
    }
    let stack = TestStack::start_default().await;
    let key = stack.api_key().to_owned();
    let base = stack.base_url().to_owned();
    let host = [("https://api.puck.security", base.as_str())];
    let curl = |cmd: &'static str, extra: Vec<(&'static str, String)>| {
        let key = key.clone();
        let mut subs: Vec<(&str, String)> = host.iter().map(|(a, b)| (*a, (*b).to_owned())).collect();
        subs.extend(extra);
        tokio::task::spawn_blocking(move || {
            let pairs: Vec<(&str, &str)> = subs.iter().map(|(a, b)| (*a, b.as_str())).collect();
            run_curl(cmd, &key, &pairs)
        })
    };

    let (status, created) = curl(CREATE_000, vec![]).await.unwrap();
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["filters"]["min_severity"], "high");
    let id = id_of(&created);
    let with_id = || vec![("sub_01hx…", id.clone())];

    let (status, listed) = curl(LIST_000, vec![]).await.unwrap();
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 1);
    let (status, fetched) = curl(GET_000, with_id()).await.unwrap();
    assert_eq!((status, fetched["id"].as_str()), (200, Some(id.as_str())), "{fetched}");
    assert!(fetched.get("secret").is_none());
    let (status, paused) = curl(PAUSE_000, with_id()).await.unwrap();
    assert_eq!((status, &paused["active"]), (200, &Value::Bool(false)), "{paused}");
    let (status, test) = curl(TEST_000, with_id()).await.unwrap();
    assert_eq!(status, 202, "{test}");
    let delivery_id = test["delivery_id"].as_str().expect("delivery_id").to_owned();
    let (status, dlq) = curl(DLQ_000, with_id()).await.unwrap();
    assert_eq!(status, 200, "{dlq}");
    assert!(dlq["deliveries"].is_array(), "{dlq}");
    // The seed replays a dead-lettered delivery (only a finished one replays); the seed's receiver
    // is not reachable from here, so the test dead-letters it as an outage would.
    let dead = stack
        .ctx()
        .deliveries
        .transition(
            stack.account_id(),
            &puck_core::ids::DeliveryId::parse(&delivery_id).unwrap(),
            &puck_core::model::DeliveryStatus::IN_FLIGHT,
            puck_core::model::DeliveryStatus::FailedPermanent,
            None,
            puck_core::time::Timestamp::now(),
        )
        .await
        .expect("the delivery store answers");
    assert!(dead, "the test delivery was still in flight");
    let (status, replay) = curl(REPLAY_000, vec![("dlv_01hx…", delivery_id.clone())]).await.unwrap();
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay["delivery_id"], delivery_id.as_str());
    assert_eq!(replay["status"], "pending");
    let (status, deleted) = curl(DELETE_000, with_id()).await.unwrap();
    assert_eq!((status, deleted), (204, Value::Null));

    let (status, endpoint) = curl(ENDPOINT_CREATE_000, vec![]).await.unwrap();
    assert_eq!(status, 201, "{endpoint}");
    assert_eq!(endpoint["provider"], "github");
    assert_eq!(endpoint["default_depth"], "standard");
    let (status, endpoints) = curl(ENDPOINT_LIST_000, vec![]).await.unwrap();
    assert_eq!(status, 200, "{endpoints}");
    assert_eq!(endpoints["endpoints"].as_array().unwrap().len(), 1);
    assert!(!endpoints.to_string().contains("gh_secret_abc123"));

    let (_, generic, _) =
        stack.post("/v1/webhooks/incoming/endpoints", serde_json::json!({"provider": "generic"})).await;
    let generic_url = generic["url"].as_str().unwrap();
    let generic_key = generic_url.rsplit('/').next().unwrap().to_owned();
    let (status, received) = curl(GENERIC_000, vec![("abc123secret…", generic_key)]).await.unwrap();
    assert_eq!(status, 202, "{received}");
    let investigation = received["investigation_id"].as_str().expect("investigation id");
    let (status, inv, _) = stack.get(&format!("/v1/investigations/{investigation}")).await;
    assert_eq!(status, 200, "{inv}");
    assert_eq!(inv["query"], "check the host that just alerted");
    assert_eq!(inv["agent_ids"], serde_json::json!(["agent_01hx…"]));

    let (status, deleted) = curl(ENDPOINT_DELETE_000, vec![("ep_01hx…", id_of(&endpoint))]).await.unwrap();
    assert_eq!((status, deleted), (204, Value::Null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_curl_examples_work_as_written() {
    if !curl_available() {
        eprintln!("curl is not installed: the literal seed commands are skipped (the reqwest equivalents still run)");
        return;
    }
    let stack = TestStack::start_default().await;
    let base = stack.base_url().to_owned();
    let key = stack.api_key().to_owned();
    let run = |cmd: &'static str, id: Option<String>| {
        let (base, key) = (base.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            let mut subs = vec![("https://brain.your-org.example", base.as_str()), ("pck_live_…", key.as_str())];
            if let Some(id) = &id {
                subs.push(("sub_018f2e3a…", id.as_str()));
            }
            run_curl(cmd, &key, &subs)
        })
    };

    let (status, created) = run(CREATE_002, None).await.unwrap();
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let id = id_of(&created);
    let (status, test) = run(TEST_002, Some(id.clone())).await.unwrap();
    assert_eq!(status, 202, "{test}");
    let (status, updated) = run(EVENTS_002, Some(id.clone())).await.unwrap();
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["events"], serde_json::json!(["investigation.completed", "chain.confirmed"]));
    // No Content-Type: curl sends application/x-www-form-urlencoded; the API parses JSON anyway.
    let (status, disabled) = run(DISABLE_002, Some(id.clone())).await.unwrap();
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["active"], false);
    assert_eq!(disabled["events"], updated["events"], "only active changed");
    let (status, deleted) = run(DELETE_002, Some(id.clone())).await.unwrap();
    assert_eq!((status, deleted), (204, Value::Null));
    let (status, _, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_requests_work_with_exactly_the_headers_curl_sends() {
    let stack = TestStack::start_default().await;
    let api = stack.api();
    let json = [("content-type", "application/json"), ("accept", "*/*")];
    let form = [("content-type", "application/x-www-form-urlencoded"), ("accept", "*/*")];

    let create = r#"{ "url": "https://your-system.example/puck/events", "events": ["investigation.completed", "finding.discovered"], "filters": { "min_severity": "high" } }"#;
    let (status, created, _) = api.raw(Method::POST, SUBSCRIPTIONS, &json, create.as_bytes().to_vec()).await;
    assert_eq!(status, 201, "{created}");
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&created));

    // `curl -d` without a Content-Type header (seed 002's "Disable" example).
    let (status, disabled, _) = api.raw(Method::PATCH, &path, &form, br#"{ "active": false }"#.to_vec()).await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["active"], false);
    assert_eq!(disabled["events"], created["events"]);

    // The same create without Content-Type works too.
    let (status, again, _) = api.raw(Method::POST, SUBSCRIPTIONS, &form, create.as_bytes().to_vec()).await;
    assert_eq!(status, 201, "{again}");

    // Bodyless POST (test) and DELETE, as curl -X sends them (no Content-Type, no body).
    let (status, test, _) = api.raw(Method::POST, &format!("{path}/test"), &[("accept", "*/*")], Vec::new()).await;
    assert_eq!(status, 202, "{test}");
    let (status, _, _) = api.raw(Method::DELETE, &path, &[("accept", "*/*")], Vec::new()).await;
    assert_eq!(status, 204);

    // The seed's generic inbound example, exactly.
    let (_, endpoint, _) =
        stack.post("/v1/webhooks/incoming/endpoints", serde_json::json!({"provider": "generic"})).await;
    let url = endpoint["url"].as_str().unwrap();
    let receive_path = &url[url.find("/v1/").unwrap()..];
    let body = r#"{ "query": "check the host that just alerted", "agent_ids": ["agent_01hx…"] }"#;
    let (status, received, _) =
        stack.anonymous().raw(Method::POST, receive_path, &json, body.as_bytes().to_vec()).await;
    assert_eq!(status, 202, "{received}");
    assert!(received["investigation_id"].as_str().unwrap().starts_with("inv_"));
}
