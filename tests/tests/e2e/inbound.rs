//! Inbound endpoints and receivers end to end (docs/inbound.md), and
//! replays of signed requests (docs/inbound.md).

use crate::support::{assert_error, create_endpoint, create_subscription, id_of, ENDPOINTS};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use puck_e2e::{wait_for_some, Receiver, TestStack, EVENTUALLY};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeSet;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), &[body])))
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The raw body of an `events/` sample (the exact bytes its signature was computed over).
fn sample_body(name: &str) -> Vec<u8> {
    let path = puck_local::moto::repo_root().join("events").join(format!("{name}.json"));
    let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    event["body"].as_str().unwrap().as_bytes().to_vec()
}

/// Every distinct `inv_…` id mentioned in `text`.
fn investigation_ids(text: &str) -> BTreeSet<String> {
    text.match_indices("inv_")
        .map(|(i, _)| text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>())
        .filter(|id| id.len() > 10)
        .collect()
}

/// Borrowed view of owned header pairs.
fn refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

/// POST to a receiver path with no API key.
async fn receive(stack: &TestStack, path: &str, headers: &[(&str, &str)], body: &[u8]) -> puck_e2e::ApiResponse {
    stack.anonymous().raw(Method::POST, path, headers, body.to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_created_for_each_provider_and_listed_without_their_keys() {
    let stack = TestStack::start_default().await;
    let mut keys = Vec::new();
    for provider in ["generic", "github", "crowdstrike"] {
        for secret in [None, Some(format!("{provider}-signing-secret-xyz"))] {
            let mut body =
                json!({"provider": provider, "default_scope": {"repos": ["acme/api"]}, "default_depth": "quick"});
            if let Some(s) = &secret {
                body["provider_signing_secret"] = json!(s);
            }
            let (created, path, key) = create_endpoint(&stack, body).await;
            assert!(id_of(&created).starts_with("ep_"), "{created}");
            assert_eq!(created["provider"], provider);
            assert_eq!(created["active"], true);
            assert_eq!(created["default_depth"], "quick");
            assert_eq!(created["default_scope"], json!({"repos": ["acme/api"]}));
            assert_eq!(created["signature_verification"], secret.is_some());
            assert!(created["created_at"].is_string());
            assert_eq!(path, format!("/v1/webhooks/incoming/{provider}/{key}"));
            assert_eq!(key.len(), 48, "{key}");
            assert!(key.starts_with(created["url_key_prefix"].as_str().unwrap()));
            if let Some(s) = &secret {
                assert!(!created.to_string().contains(s.as_str()), "signing secret echoed: {created}");
            }
            keys.push(key);
        }
    }
    let (status, listed, _) = stack.get(ENDPOINTS).await;
    assert_eq!(status, 200, "{listed}");
    let endpoints = listed["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 6);
    let text = listed.to_string();
    for key in &keys {
        assert!(!text.contains(key.as_str()), "a URL key is listed");
    }
    assert!(!text.contains("signing-secret"), "a signing secret is listed");
    for endpoint in endpoints {
        assert!(endpoint.get("url").is_none(), "{endpoint}");
        assert_eq!(endpoint["url_key_prefix"].as_str().unwrap().len(), 8);
    }

    // Bad create bodies are 400 naming the field.
    for (body, needle) in [
        (json!({"provider": "gitlab"}), "provider \"gitlab\" is not supported"),
        (json!({}), "provider is required"),
        (json!({"provider": 7}), "provider must be a string"),
        (json!({"provider": "github", "provider_signing_secret": ""}), "provider_signing_secret"),
        (json!({"provider": "github", "default_depth": "bottomless"}), "default_depth"),
        (json!({"provider": "github", "default_scope": "everything"}), "default_scope must be an object"),
        (json!({"provider": "github", "active": "yes"}), "active must be a boolean"),
        (json!({"provider": "github", "url": "https://x"}), "unknown field"),
    ] {
        assert_error(&stack.post(ENDPOINTS, body).await, 400, "validation_error", needle);
    }
    let (_, listed, _) = stack.get(ENDPOINTS).await;
    assert_eq!(listed["endpoints"].as_array().unwrap().len(), 6, "the 400s created nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_github_code_scanning_alert_queues_an_investigation_that_subscribers_receive() {
    let stack = TestStack::start_default().await;
    let subscriber = Receiver::start().await;
    let sub = create_subscription(&stack, json!({"url": subscriber.url(), "events": ["investigation.queued"]})).await;
    let sub_secret = sub["secret"].as_str().unwrap().to_owned();
    let gh_secret = "It's a Secret to Everybody";
    let (endpoint, path, _) = create_endpoint(
        &stack,
        json!({"provider": "github", "provider_signing_secret": gh_secret, "default_depth": "standard", "default_scope": {"repos": ["acme/api"]}}),
    )
    .await;

    let body = sample_body("inbound-github-code-scanning");
    let signature = github_signature(gh_secret, &body);
    let headers = |delivery: &str| {
        vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), "GitHub-Hookshot/7a1f2c3".to_owned()),
            ("x-github-event".to_owned(), "code_scanning_alert".to_owned()),
            ("x-github-delivery".to_owned(), delivery.to_owned()),
            ("x-hub-signature-256".to_owned(), signature.clone()),
        ]
    };
    let first = headers("72d3162e-cc78-11e3-81ab-4c9367dc0958");
    let first_refs = refs(&first);

    let (status, accepted, _) = receive(&stack, &path, &first_refs, &body).await;
    assert_eq!(status, 202, "{accepted}");
    let investigation_id = accepted["investigation_id"].as_str().expect("investigation_id").to_owned();
    assert!(investigation_id.starts_with("inv_"), "{investigation_id}");
    assert!(accepted.get("duplicate").is_none(), "{accepted}");

    let (status, inv, _) = stack.get(&format!("/v1/investigations/{investigation_id}")).await;
    assert_eq!(status, 200, "{inv}");
    assert_eq!(inv["id"], investigation_id.as_str());
    assert_eq!(inv["status"], "queued");
    assert_eq!(inv["provider"], "github");
    assert_eq!(inv["endpoint_id"], id_of(&endpoint).as_str());
    assert_eq!(inv["trigger"], "github:code_scanning_alert");
    assert_eq!(inv["depth"], "standard", "the endpoint's default depth");
    assert_eq!(inv["scope"], json!({"repos": ["acme/api"]}), "the endpoint's default scope");
    let summary = inv["summary"].as_str().unwrap();
    assert!(summary.contains("acme/api") && summary.contains("#42"), "{summary}");
    assert!(inv["query"].as_str().is_some_and(|q| !q.is_empty()), "{inv}");
    assert!(inv["created_at"].is_string());

    // The subscriber receives investigation.queued, signed with its secret.
    let delivered = subscriber.wait_for(1, EVENTUALLY).await.remove(0);
    assert_eq!(delivered.header("x-puck-event-type"), Some("investigation.queued"));
    let sig = delivered.header("x-puck-signature").expect("signature");
    assert_eq!(puck_verify::verify_now(sig, &delivered.body, &[&sub_secret]), Ok(()));
    assert_eq!(delivered.header("x-puck-signature-256"), Some(sig));
    let envelope = delivered.json();
    assert_eq!(envelope["event_type"], "investigation.queued");
    assert_eq!(envelope["data"]["investigation_id"], investigation_id.as_str());
    assert_eq!(envelope["data"]["provider"], "github");

    // GitHub's "Redeliver": same X-GitHub-Delivery → same investigation, nothing new.
    let (status, again, _) = receive(&stack, &path, &first_refs, &body).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["investigation_id"], investigation_id.as_str());
    let (_, deliveries, _) = stack.get("/v1/webhooks/deliveries").await;
    assert_eq!(
        deliveries["deliveries"].as_array().unwrap().len(),
        1,
        "one investigation.queued delivery: {deliveries}"
    );
    let in_table = investigation_ids(&stack.table_dump().await);
    assert_eq!(in_table, BTreeSet::from([investigation_id.clone()]), "one investigation stored");

    // Another signed body (here the same alert with a trailing newline) is a new event.
    let mut other_body = body.clone();
    other_body.push(b'\n');
    let other = [
        ("x-github-event", "code_scanning_alert"),
        ("x-github-delivery", "9a8b7c6d-0000-11e3-81ab-4c9367dc0958"),
        ("x-hub-signature-256", &github_signature(gh_secret, &other_body)),
    ];
    let (status, second, _) = receive(&stack, &path, &other, &other_body).await;
    assert_eq!(status, 202, "{second}");
    assert_ne!(second["investigation_id"], investigation_id.as_str());
    subscriber.wait_for(2, EVENTUALLY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_signed_request_replayed_with_a_fresh_delivery_header_opens_no_second_investigation() {
    let stack = TestStack::start_default().await;
    let subscriber = Receiver::start().await;
    create_subscription(&stack, json!({"url": subscriber.url(), "events": ["investigation.queued"]})).await;
    let gh_secret = "gh-replay-secret";
    let (_, github, _) =
        create_endpoint(&stack, json!({"provider": "github", "provider_signing_secret": gh_secret})).await;
    let body = sample_body("inbound-github-code-scanning");
    let signature = github_signature(gh_secret, &body);
    let post_github = |delivery: &'static str| {
        let (stack, github, body, signature) = (&stack, &github, &body, &signature);
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-github-event", "code_scanning_alert"),
                ("x-github-delivery", delivery),
                ("x-hub-signature-256", signature.as_str()),
            ];
            receive(stack, github, &headers, body).await
        }
    };
    let (status, first, _) = post_github("72d3162e-cc78-11e3-81ab-4c9367dc0958").await;
    assert_eq!(status, 202, "{first}");
    let gh_id = first["investigation_id"].as_str().expect("investigation_id").to_owned();
    // The attacker's replay: same body and signature, a fresh X-GitHub-Delivery.
    let (status, replay, _) = post_github("00000000-dead-beef-0000-000000000001").await;
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay, json!({"investigation_id": gh_id, "duplicate": true}));

    // Generic with X-Signature-256: a fresh Idempotency-Key is the same request.
    let plain = "generic-replay-secret";
    let (_, generic, _) =
        create_endpoint(&stack, json!({"provider": "generic", "provider_signing_secret": plain})).await;
    let body = br#"{"query": "check the host that just alerted"}"#;
    let sig = format!("sha256={}", hex::encode(hmac_sha256(plain.as_bytes(), &[body])));
    let (status, first, _) =
        receive(&stack, &generic, &[("x-signature-256", &sig), ("idempotency-key", "k-1")], body).await;
    assert_eq!(status, 202, "{first}");
    let gen_id = first["investigation_id"].as_str().expect("investigation_id").to_owned();
    let (status, replay, _) =
        receive(&stack, &generic, &[("x-signature-256", &sig), ("idempotency-key", "k-2")], body).await;
    assert_eq!((status, replay), (202, json!({"investigation_id": gen_id, "duplicate": true})));

    // Two investigations, each announced once.
    let stored = investigation_ids(&stack.table_dump().await);
    assert_eq!(stored, BTreeSet::from([gh_id.clone(), gen_id.clone()]), "no second investigation");
    let announced: BTreeSet<String> = subscriber
        .wait_for(2, EVENTUALLY)
        .await
        .iter()
        .map(|r| r.json()["data"]["investigation_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(announced, BTreeSet::from([gh_id, gen_id]));
    let (_, deliveries, _) = stack.get("/v1/webhooks/deliveries").await;
    assert_eq!(deliveries["deliveries"].as_array().unwrap().len(), 2, "one investigation.queued each: {deliveries}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_pings_and_events_not_acted_on_are_ignored_with_a_reason() {
    let stack = TestStack::start_default().await;
    let secret = "gh-secret-for-ignored-events";
    let (_, path, _) = create_endpoint(&stack, json!({"provider": "github", "provider_signing_secret": secret})).await;
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":480001234}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("ping", ping.to_vec(), "ping"),
        ("push", br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/api"}}"#.to_vec(), "push"),
        (
            "code_scanning_alert",
            br#"{"action":"fixed","alert":{"number":1},"repository":{"full_name":"acme/api"}}"#.to_vec(),
            "",
        ),
    ];
    for (event, body, reason_mentions) in cases {
        let sig = github_signature(secret, &body);
        let headers = [
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", "d-1"),
            ("x-hub-signature-256", sig.as_str()),
        ];
        let (status, answer, _) = receive(&stack, &path, &headers, &body).await;
        assert_eq!(status, 202, "{event}: {answer}");
        assert_eq!(answer["ignored"], true, "{event}: {answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty() && reason.contains(reason_mentions), "{event}: {answer}");
        assert!(answer.get("investigation_id").is_none());
    }
    let (_, deliveries, _) = stack.get("/v1/webhooks/deliveries").await;
    assert_eq!(deliveries["deliveries"], json!([]));
    assert!(investigation_ids(&stack.table_dump().await).is_empty(), "ignored events store no investigation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_endpoints_of_every_provider_accept_recognised_events() {
    let stack = TestStack::start_default().await;
    let (_, github, _) = create_endpoint(&stack, json!({"provider": "github"})).await;
    let (_, crowdstrike, _) =
        create_endpoint(&stack, json!({"provider": "crowdstrike", "default_depth": "deep"})).await;
    let (_, generic, _) = create_endpoint(&stack, json!({"provider": "generic"})).await;

    let gh_body = sample_body("inbound-github-code-scanning");
    let (status, gh, _) = receive(
        &stack,
        &github,
        &[
            ("content-type", "application/json"),
            ("x-github-event", "code_scanning_alert"),
            ("x-github-delivery", "u-1"),
        ],
        &gh_body,
    )
    .await;
    assert_eq!(status, 202, "{gh}");
    assert!(gh["investigation_id"].as_str().is_some(), "{gh}");

    let cs_body = sample_body("inbound-crowdstrike-detection");
    let (status, cs, _) = receive(&stack, &crowdstrike, &[("content-type", "application/json")], &cs_body).await;
    assert_eq!(status, 202, "{cs}");
    let cs_id = cs["investigation_id"].as_str().expect("crowdstrike investigation").to_owned();
    let (_, inv, _) = stack.get(&format!("/v1/investigations/{cs_id}")).await;
    assert_eq!(inv["trigger"], "crowdstrike:EppDetectionSummaryEvent");
    assert_eq!(inv["depth"], "deep");
    // The same detection again is the same investigation.
    let (_, cs_again, _) = receive(&stack, &crowdstrike, &[("content-type", "application/json")], &cs_body).await;
    assert_eq!(cs_again["investigation_id"], cs_id.as_str());

    let body =
        br#"{"query": "look at agent 7", "agent_ids": ["agent_7"], "scope": {"hosts": ["web-1"]}, "depth": "quick"}"#;
    let (status, gen, _) = receive(&stack, &generic, &[("content-type", "application/json")], body).await;
    assert_eq!(status, 202, "{gen}");
    let (_, inv, _) = stack.get(&format!("/v1/investigations/{}", gen["investigation_id"].as_str().unwrap())).await;
    assert_eq!(inv["trigger"], "generic");
    assert_eq!(inv["query"], "look at agent 7");
    assert_eq!(inv["agent_ids"], json!(["agent_7"]));
    assert_eq!(inv["scope"], json!({"hosts": ["web-1"]}));
    assert_eq!(inv["depth"], "quick");

    // A generic body without a query is ignored; one with a wrongly typed field is 400.
    let (status, ignored, _) = receive(&stack, &generic, &[], br#"{"note": "no query here"}"#).await;
    assert_eq!((status, &ignored["ignored"]), (202, &json!(true)), "{ignored}");
    let resp = receive(&stack, &generic, &[], br#"{"query": "x", "agent_ids": "agent_7"}"#).await;
    assert_error(&resp, 400, "validation_error", "agent_ids");
    let resp = receive(&stack, &generic, &[], b"query=not json").await;
    assert_eq!(resp.0, 400, "{}", resp.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowdstrike_signatures_are_verified_over_body_and_timestamp() {
    let stack = TestStack::start_default().await;
    let secret = "falcon-hmac-secret-e2e";
    let (_, path, _) =
        create_endpoint(&stack, json!({"provider": "crowdstrike", "provider_signing_secret": secret})).await;
    let body = sample_body("inbound-crowdstrike-detection");
    let sign = |ts: &str| STANDARD.encode(hmac_sha256(secret.as_bytes(), &[&body, ts.as_bytes()]));

    let ts = now_secs().to_string();
    let good = sign(&ts);
    let (status, accepted, _) = receive(
        &stack,
        &path,
        &[("content-type", "application/json"), ("x-cs-primary-signature", &good), ("x-cs-delivery-timestamp", &ts)],
        &body,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert!(accepted["investigation_id"].as_str().unwrap().starts_with("inv_"));

    let stale_ts = (now_secs() - 3600).to_string();
    let stale = sign(&stale_ts);
    let body_only = STANDARD.encode(hmac_sha256(secret.as_bytes(), &[&body]));
    let other_secret = STANDARD.encode(hmac_sha256(b"not the secret", &[&body, ts.as_bytes()]));
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a [u8]);
    let forged: Vec<Case> = vec![
        (vec![("x-cs-delivery-timestamp", &ts)], &body),
        (vec![("x-cs-primary-signature", &good)], &body),
        (vec![("x-cs-primary-signature", &other_secret), ("x-cs-delivery-timestamp", &ts)], &body),
        (vec![("x-cs-primary-signature", &body_only), ("x-cs-delivery-timestamp", &ts)], &body),
        (vec![("x-cs-primary-signature", &good), ("x-cs-delivery-timestamp", &ts)], &tampered),
        (vec![("x-cs-primary-signature", &stale), ("x-cs-delivery-timestamp", &stale_ts)], &body),
        (vec![("x-cs-primary-signature", "not base64!"), ("x-cs-delivery-timestamp", &ts)], &body),
    ];
    for (headers, body) in forged {
        let resp = receive(&stack, &path, &headers, body).await;
        assert_error(&resp, 401, "unauthorized", "signature verification failed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowdstrike_timestamp_that_does_not_parse_is_refused() {
    let stack = TestStack::start_default().await;
    let secret = "falcon-hmac-secret-bad-ts";
    let (_, path, _) =
        create_endpoint(&stack, json!({"provider": "crowdstrike", "provider_signing_secret": secret})).await;
    let body = sample_body("inbound-crowdstrike-detection");
    // Each correctly signed over body ‖ timestamp: only the timestamp is wrong.
    for ts in ["soon", "2026-13-45T00:00:00Z", "1777818121.5", "yesterday at noon"] {
        let sig = STANDARD.encode(hmac_sha256(secret.as_bytes(), &[&body, ts.as_bytes()]));
        let headers =
            [("content-type", "application/json"), ("x-cs-primary-signature", &sig), ("x-cs-delivery-timestamp", ts)];
        let resp = receive(&stack, &path, &headers, &body).await;
        assert_error(&resp, 401, "unauthorized", "signature verification failed");
    }
    assert!(investigation_ids(&stack.table_dump().await).is_empty(), "a refused request stores nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_signatures_are_verified_with_x_signature_256_or_standard_webhooks_headers() {
    let stack = TestStack::start_default().await;
    let plain_secret = "generic-plain-secret";
    let (_, plain, _) =
        create_endpoint(&stack, json!({"provider": "generic", "provider_signing_secret": plain_secret})).await;
    let body = br#"{"query": "check the host that just alerted"}"#;

    let good = format!("sha256={}", hex::encode(hmac_sha256(plain_secret.as_bytes(), &[body])));
    let (status, ok, _) = receive(&stack, &plain, &[("x-signature-256", &good)], body).await;
    assert_eq!(status, 202, "{ok}");
    assert!(ok["investigation_id"].is_string(), "{ok}");
    let bad = format!("sha256={}", hex::encode(hmac_sha256(b"wrong", &[body])));
    for headers in [vec![], vec![("x-signature-256", bad.as_str())], vec![("x-signature-256", "sha256=zz")]] {
        assert_error(
            &receive(&stack, &plain, &headers, body).await,
            401,
            "unauthorized",
            "signature verification failed",
        );
    }

    // Standard Webhooks with a whsec_ secret: the key is the base64 part.
    let raw_key = [7u8; 32];
    let sw_secret = format!("whsec_{}", STANDARD.encode(raw_key));
    let (_, sw, _) =
        create_endpoint(&stack, json!({"provider": "generic", "provider_signing_secret": sw_secret})).await;
    let sw_sign = |id: &str, ts: &str, key: &[u8]| {
        format!("v1,{}", STANDARD.encode(hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body])))
    };
    let ts = now_secs().to_string();
    let sig = sw_sign("msg_1", &ts, &raw_key);
    let headers = [("webhook-id", "msg_1"), ("webhook-timestamp", ts.as_str()), ("webhook-signature", sig.as_str())];
    let (status, first, _) = receive(&stack, &sw, &headers, body).await;
    assert_eq!(status, 202, "{first}");
    let id = first["investigation_id"].as_str().unwrap().to_owned();
    // The same webhook-id is a retry: same investigation.
    let (status, retry, _) = receive(&stack, &sw, &headers, body).await;
    assert_eq!((status, retry["investigation_id"].as_str()), (202, Some(id.as_str())), "{retry}");

    let stale_ts = (now_secs() - 3600).to_string();
    let stale = sw_sign("msg_2", &stale_ts, &raw_key);
    let wrong_key = sw_sign("msg_3", &ts, b"another key entirely");
    let other_id = sw_sign("msg_4", &ts, &raw_key);
    for headers in [
        vec![("webhook-id", "msg_2"), ("webhook-timestamp", stale_ts.as_str()), ("webhook-signature", stale.as_str())],
        vec![("webhook-id", "msg_3"), ("webhook-timestamp", ts.as_str()), ("webhook-signature", wrong_key.as_str())],
        vec![("webhook-id", "msg_5"), ("webhook-timestamp", ts.as_str()), ("webhook-signature", other_id.as_str())],
        vec![("webhook-id", "msg_4"), ("webhook-signature", other_id.as_str())],
    ] {
        assert_error(&receive(&stack, &sw, &headers, body).await, 401, "unauthorized", "signature verification failed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_refuse_bad_keys_deleted_or_inactive_endpoints_unknown_providers_and_huge_bodies() {
    let stack = TestStack::start_default().await;
    let body = br#"{"query": "check the host that just alerted"}"#;
    let (generic, generic_path, generic_key) = create_endpoint(&stack, json!({"provider": "generic"})).await;
    let (_, inactive_path, _) = create_endpoint(&stack, json!({"provider": "generic", "active": false})).await;
    let (_, github_path, _) =
        create_endpoint(&stack, json!({"provider": "github", "provider_signing_secret": "s3cr3t-gh"})).await;
    assert_eq!(receive(&stack, &generic_path, &[], body).await.0, 202, "the endpoint works before it is deleted");

    let invalid_key = |resp: puck_e2e::ApiResponse| assert_error(&resp, 401, "unauthorized", "invalid receiver key");
    // Unknown and malformed keys.
    invalid_key(receive(&stack, &format!("/v1/webhooks/incoming/generic/{}", "A".repeat(48)), &[], body).await);
    invalid_key(receive(&stack, "/v1/webhooks/incoming/generic/abc123secret", &[], body).await);
    // Provider mismatch: the generic key on the github and crowdstrike paths.
    for provider in ["github", "crowdstrike"] {
        invalid_key(
            receive(
                &stack,
                &format!("/v1/webhooks/incoming/{provider}/{generic_key}"),
                &[("x-github-event", "ping")],
                body,
            )
            .await,
        );
    }
    // Inactive endpoint.
    invalid_key(receive(&stack, &inactive_path, &[], body).await);
    // Bad or missing signature.
    let ping = br#"{"zen":"hi"}"#;
    for sig in [None, Some(github_signature("not-the-secret", ping))] {
        let mut headers = vec![("x-github-event", "ping"), ("x-github-delivery", "p-1")];
        if let Some(s) = &sig {
            headers.push(("x-hub-signature-256", s.as_str()));
        }
        assert_error(
            &receive(&stack, &github_path, &headers, ping).await,
            401,
            "unauthorized",
            "signature verification failed",
        );
    }
    // Unknown provider: 404, whatever the key.
    for provider in ["gitlab", "GitHub", "slack"] {
        let resp = receive(&stack, &format!("/v1/webhooks/incoming/{provider}/{generic_key}"), &[], body).await;
        assert_error(&resp, 404, "not_found", "inbound provider not found");
    }
    // Over 1 MiB: 413 (exactly 1 MiB of JSON is still accepted).
    let mut huge = br#"{"query": "big", "pad": ""#.to_vec();
    huge.resize(1024 * 1024 - 2, b'x');
    huge.extend_from_slice(b"\"}");
    assert_eq!(huge.len(), 1024 * 1024);
    assert_eq!(receive(&stack, &generic_path, &[], &huge).await.0, 202, "1 MiB exactly is within the limit");
    huge.insert(huge.len() - 2, b'x');
    assert_error(
        &receive(&stack, &generic_path, &[], &huge).await,
        413,
        "payload_too_large",
        "request body exceeds 1048576 bytes",
    );

    // Deleted endpoint: 204, then its URL answers 401 and a second delete is 404.
    let (status, _, _) = stack.delete(&format!("{ENDPOINTS}/{}", id_of(&generic))).await;
    assert_eq!(status, 204);
    invalid_key(receive(&stack, &generic_path, &[], body).await);
    assert_error(
        &stack.delete(&format!("{ENDPOINTS}/{}", id_of(&generic))).await,
        404,
        "not_found",
        "endpoint not found",
    );
    let (_, listed, _) = stack.get(ENDPOINTS).await;
    assert!(!listed.to_string().contains(&id_of(&generic)), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn investigation_reads_need_the_scope_and_unknown_ids_are_404() {
    let stack = TestStack::start_default().await;
    let (_, path, _) = create_endpoint(&stack, json!({"provider": "generic"})).await;
    let (_, accepted, _) = receive(&stack, &path, &[], br#"{"query": "q"}"#).await;
    let id = accepted["investigation_id"].as_str().unwrap().to_owned();
    let reader = stack.issue_key(stack.account_id(), &[puck_core::model::Scope::InvestigationsRead]).await;
    let manager = stack.issue_key(stack.account_id(), &[puck_core::model::Scope::WebhooksManage]).await;
    let inv = wait_for_some(EVENTUALLY, "the investigation to be readable", || async {
        let (status, inv, _) = stack.with_key(&reader).get(&format!("/v1/investigations/{id}")).await;
        (status == 200).then_some(inv)
    })
    .await;
    assert_eq!(inv["status"], "queued");
    assert_error(
        &stack.with_key(&manager).get(&format!("/v1/investigations/{id}")).await,
        403,
        "forbidden",
        "investigations:read",
    );
    for unknown in ["inv_01jtq8p5f7z9n1q4r6t8v0w2xc", "inv_x", "sub_01jtq8p5f7z9n1q4r6t8v0w2xc"] {
        assert_error(
            &stack.get(&format!("/v1/investigations/{unknown}")).await,
            404,
            "not_found",
            "investigation not found",
        );
    }
}
