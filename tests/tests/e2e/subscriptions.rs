//! Subscription management through the HTTP API (docs/api.md).

use crate::support::{assert_error, create_subscription, id_of, subscription_body, SUBSCRIPTIONS};
use puck_e2e::{Receiver, TestStack, TestStackOptions, EVENTUALLY};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_returns_201_with_a_secret_that_get_and_list_never_show() {
    let stack = TestStack::start_default().await;
    let created = create_subscription(
        &stack,
        json!({
            "name": "prod alerts",
            "url": "https://hooks.example.com/puck",
            "events": ["investigation.completed", "finding.*"],
            "filters": {"min_severity": "high", "tags": {"env": "prod"}}
        }),
    )
    .await;
    let id = id_of(&created);
    assert!(id.starts_with("sub_"), "{id}");
    let secret = created["secret"].as_str().expect("secret on create");
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    assert_eq!(created["active"], true);
    assert_eq!(created["name"], "prod alerts");
    assert_eq!(created["events"], json!(["investigation.completed", "finding.*"]));
    assert_eq!(created["filters"], json!({"min_severity": "high", "tags": {"env": "prod"}}));
    for field in ["created_at", "updated_at"] {
        assert!(created[field].is_string(), "{field}: {created}");
    }
    for field in ["last_delivery_status", "last_delivery_at"] {
        assert!(created.get(field).is_some(), "{field} missing: {created}");
    }

    let (status, fetched, _) = stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await;
    assert_eq!(status, 200, "{fetched}");
    assert!(fetched.get("secret").is_none(), "{fetched}");
    let mut without_secret = created.clone();
    without_secret.as_object_mut().unwrap().remove("secret");
    assert_eq!(fetched, without_secret);

    let (status, listed, _) = stack.get(SUBSCRIPTIONS).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["subscriptions"], json!([without_secret]));
    assert!(listed.get("next_cursor").is_some_and(Value::is_null), "{listed}");
    assert!(!listed.to_string().contains(secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_subscription_bodies_get_400_naming_the_field() {
    // As in AWS: private targets are refused (the local dev switch is off).
    let stack = TestStack::start(TestStackOptions::default().deny_private_targets()).await;
    let ok_events = json!(["finding.discovered"]);
    let with = |url: Value| json!({"url": url, "events": ok_events});
    let cases: Vec<(Value, &str)> = vec![
        (with(json!("http://hooks.example.com/puck")), "url must use https"),
        (with(json!("https://10.1.2.3/hook")), "url host is a private, loopback, link-local or metadata address"),
        (with(json!("https://192.168.1.20/hook")), "url host is a private"),
        (with(json!("https://172.16.0.1/hook")), "url host is a private"),
        (with(json!("https://127.0.0.1:8443/hook")), "url host is a private"),
        (with(json!("https://[::1]/hook")), "url host is a private"),
        (with(json!("https://169.254.169.254/latest/meta-data")), "url host is a private"),
        (with(json!("https://[fe80::1]/hook")), "url host is a private"),
        (with(json!("https://[::ffff:127.0.0.1]/hook")), "url host is a private"),
        (with(json!("not a url")), "url"),
        (with(json!("https://")), "url"),
        (with(json!(42)), "url must be a string"),
        (json!({"events": ok_events}), "url is required"),
        (json!({"url": "https://hooks.example.com"}), "events is required"),
        (json!({"url": "https://hooks.example.com", "events": []}), "events must not be empty"),
        (json!({"url": "https://hooks.example.com", "events": ["finding.exploded"]}), "events: \"finding.exploded\""),
        (json!({"url": "https://hooks.example.com", "events": ["nothing.*"]}), "events: \"nothing.*\""),
        (json!({"url": "https://hooks.example.com", "events": "finding.discovered"}), "events must be an array"),
        (json!({"url": "https://hooks.example.com", "events": [7]}), "events items must be strings"),
        (
            json!({"url": "https://hooks.example.com", "events": ok_events, "filters": {"min_severity": "urgent"}}),
            "filters.min_severity must be one of low, medium, high, critical",
        ),
        (
            json!({"url": "https://hooks.example.com", "events": ok_events, "filters": {"min_severity": 3}}),
            "filters.min_severity must be a string",
        ),
        (
            json!({"url": "https://hooks.example.com", "events": ok_events, "filters": {"tags": {"env": 1}}}),
            "filters.tags.env must be a string",
        ),
        (
            json!({"url": "https://hooks.example.com", "events": ok_events, "filters": {"tags": ["env"]}}),
            "filters.tags must be an object",
        ),
        (
            json!({"url": "https://hooks.example.com", "events": ok_events, "filters": "high"}),
            "filters must be an object",
        ),
        (json!({"url": "https://hooks.example.com", "events": ok_events, "active": "yes"}), "active must be a boolean"),
        (json!({"url": "https://hooks.example.com", "events": ok_events, "name": 5}), "name must be a string"),
        (json!({"url": "https://hooks.example.com", "events": ok_events, "colour": "red"}), "unknown field \"colour\""),
        (json!(["url", "events"]), "request body must be a JSON object"),
    ];
    for (body, needle) in &cases {
        let resp = stack.post(SUBSCRIPTIONS, body.clone()).await;
        assert_error(&resp, 400, "validation_error", needle);
    }

    // Malformed and empty bodies are 400 too (a different code: the JSON itself is bad).
    for raw in [&b"{\"url\": "[..], b"", b"url=https://x"] {
        let resp =
            stack.api().raw(Method::POST, SUBSCRIPTIONS, &[("content-type", "application/json")], raw.to_vec()).await;
        assert_error(&resp, 400, "invalid_json", "JSON");
    }

    // Nothing was created by any of them.
    let (_, listed, _) = stack.get(SUBSCRIPTIONS).await;
    assert_eq!(listed["subscriptions"], json!([]), "{listed}");

    // PATCH validates the same way and changes nothing when it refuses.
    let created = create_subscription(&stack, subscription_body()).await;
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&created));
    for (body, needle) in [
        (json!({"url": "http://hooks.example.com"}), "url must use https"),
        (json!({"url": "https://10.0.0.9/x"}), "url host is a private"),
        (json!({"events": []}), "events must not be empty"),
        (json!({"filters": {"min_severity": "severe"}}), "filters.min_severity"),
        (json!({"active": null}), "active must be a boolean"),
        (json!({"secret": "not-a-whsec"}), "secret"),
        (json!({"id": "sub_x"}), "unknown field"),
    ] {
        assert_error(&stack.patch(&path, body).await, 400, "validation_error", needle);
    }
    let (_, fetched, _) = stack.get(&path).await;
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(fetched, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_changes_only_the_given_fields_and_returns_a_secret_only_when_rotating() {
    let stack = TestStack::start_default().await;
    let created = create_subscription(
        &stack,
        json!({
            "name": "ops",
            "url": "https://hooks.example.com/puck",
            "events": ["investigation.completed", "finding.discovered"],
            "filters": {"min_severity": "high"}
        }),
    )
    .await;
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&created));
    let first_secret = created["secret"].as_str().unwrap().to_owned();

    let (status, paused, _) = stack.patch(&path, json!({"active": false})).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["active"], false);
    assert!(paused.get("secret").is_none(), "no secret unless rotating: {paused}");
    for unchanged in ["name", "url", "events", "filters", "created_at"] {
        assert_eq!(paused[unchanged], created[unchanged], "{unchanged}");
    }

    let (status, changed, _) =
        stack.patch(&path, json!({"events": ["investigation.completed", "chain.confirmed"]})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["events"], json!(["investigation.completed", "chain.confirmed"]));
    assert_eq!(changed["active"], false, "the earlier PATCH is kept");
    assert_eq!(changed["filters"], created["filters"]);

    let (status, cleared, _) = stack.patch(&path, json!({"filters": null, "name": null})).await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["filters"], json!({}));
    assert!(cleared["name"].is_null(), "{cleared}");

    // "secret": null generates a new one, returned once.
    let (status, rotated, _) = stack.patch(&path, json!({"secret": null})).await;
    assert_eq!(status, 200, "{rotated}");
    let generated = rotated["secret"].as_str().expect("generated secret returned").to_owned();
    assert!(generated.starts_with("whsec_"));
    assert_ne!(generated, first_secret);

    // "secret": "<value>" sets it, returned once.
    let chosen = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let (status, set, _) = stack.patch(&path, json!({"secret": chosen})).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["secret"], chosen);

    let (status, fetched, _) = stack.get(&path).await;
    assert_eq!(status, 200);
    assert!(fetched.get("secret").is_none(), "{fetched}");
    assert!(!fetched.to_string().contains("whsec_"), "{fetched}");

    // The seed's PATCH with no Content-Type header at all still parses as JSON.
    let resp = stack.api().raw(Method::PATCH, &path, &[], br#"{ "active": true }"#.to_vec()).await;
    assert_eq!(resp.0, 200, "{}", resp.1);
    assert_eq!(resp.1["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_returns_204_and_the_subscription_is_gone_from_every_route() {
    let stack = TestStack::start_default().await;
    let created = create_subscription(&stack, subscription_body()).await;
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&created));

    let (status, body, _) = stack.delete(&path).await;
    assert_eq!((status, body), (204, Value::Null));

    assert_error(&stack.get(&path).await, 404, "not_found", "subscription not found");
    assert_error(&stack.patch(&path, json!({"active": true})).await, 404, "not_found", "subscription not found");
    assert_error(&stack.delete(&path).await, 404, "not_found", "subscription not found");
    assert_error(&stack.post(&format!("{path}/test"), Value::Null).await, 404, "not_found", "subscription not found");
    let (_, listed, _) = stack.get(SUBSCRIPTIONS).await;
    assert_eq!(listed["subscriptions"], json!([]));

    // Ids that never existed, or are not ids at all, are 404 as well.
    for id in ["sub_01jtq8p5f7z9n1q4r6t8v0w2xc", "sub_nope", "dlv_01jtq8p5f7z9n1q4r6t8v0w2xc", "%20"] {
        assert_error(&stack.get(&format!("{SUBSCRIPTIONS}/{id}")).await, 404, "not_found", "subscription not found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_seven_subscriptions_three_at_a_time_without_gaps_or_duplicates() {
    let stack = TestStack::start_default().await;
    let mut created = BTreeSet::new();
    for i in 0..7 {
        let body = json!({"url": format!("https://hooks.example.com/{i}"), "events": ["agent.*"]});
        created.insert(id_of(&create_subscription(&stack, body).await));
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{SUBSCRIPTIONS}?limit=3&cursor={c}"),
            None => format!("{SUBSCRIPTIONS}?limit=3"),
        };
        let (status, page, _) = stack.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let items = page["subscriptions"].as_array().unwrap();
        assert!(items.len() <= 3, "{page}");
        seen.extend(items.iter().map(id_of));
        pages += 1;
        assert!(pages <= 4, "pagination does not end: {page}");
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(page["next_cursor"].is_null(), "{page}");
                break;
            }
        }
    }
    assert_eq!(seen.len(), 7, "no duplicates: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), created, "no omissions");
    assert_eq!(pages, 3, "3 + 3 + 1");

    let (status, all, _) = stack.get(&format!("{SUBSCRIPTIONS}?limit=100")).await;
    assert_eq!(status, 200);
    assert_eq!(all["subscriptions"].as_array().unwrap().len(), 7);
    assert!(all["next_cursor"].is_null(), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_cursors_and_bad_limits_are_400() {
    let stack = TestStack::start_default().await;
    create_subscription(&stack, subscription_body()).await;
    use base64::Engine;
    let wrong_kind = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("dlv_01jtq8p5f7z9n1q4r6t8v0w2xc");
    for cursor in ["not-a-cursor!!", "AAAA", wrong_kind.as_str()] {
        let resp = stack.get(&format!("{SUBSCRIPTIONS}?cursor={cursor}")).await;
        assert_error(&resp, 400, "validation_error", "cursor");
    }
    for limit in ["0", "101", "ten", "-1"] {
        let resp = stack.get(&format!("{SUBSCRIPTIONS}?limit={limit}")).await;
        assert_error(&resp, 400, "validation_error", "limit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_management_limit_get_413() {
    let stack = TestStack::start_default().await;
    let padding = "x".repeat(64 * 1024);
    let body = json!({"url": "https://hooks.example.com/puck", "events": ["agent.*"], "name": padding});
    assert_error(
        &stack.post(SUBSCRIPTIONS, body.clone()).await,
        413,
        "payload_too_large",
        "request body exceeds 65536 bytes",
    );
    let created = create_subscription(&stack, subscription_body()).await;
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&created));
    assert_error(
        &stack.patch(&path, json!({"name": padding})).await,
        413,
        "payload_too_large",
        "request body exceeds 65536 bytes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_route_returns_202_and_a_signed_investigation_queued_reaches_the_receiver() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    // Subscribed to something else entirely, with a filter the test event would fail: the test
    // delivery is sent regardless.
    let created = create_subscription(
        &stack,
        json!({
            "url": receiver.url(),
            "events": ["agent.disconnected"],
            "filters": {"min_severity": "critical", "tags": {"env": "nowhere"}}
        }),
    )
    .await;
    let id = id_of(&created);
    let secret = created["secret"].as_str().unwrap().to_owned();

    let (status, accepted, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test"), Value::Null).await;
    assert_eq!(status, 202, "{accepted}");
    let delivery_id = accepted["delivery_id"].as_str().expect("delivery_id").to_owned();
    assert!(delivery_id.starts_with("dlv_"), "{delivery_id}");

    let request = receiver.wait_for(1, EVENTUALLY).await.remove(0);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.header("x-puck-event-type"), Some("investigation.queued"));
    let signature = request.header("x-puck-signature").expect("signature header");
    assert_eq!(puck_verify::verify_now(signature, &request.body, &[&secret]), Ok(()));
    let envelope = request.json();
    assert_eq!(envelope["event_type"], "investigation.queued");
    assert_eq!(envelope["api_version"], "v1");
    assert_eq!(request.header("x-puck-event-id"), envelope["event_id"].as_str());

    // It appears in the delivery log, and ends up succeeded.
    let path = format!("/v1/webhooks/deliveries/{delivery_id}");
    puck_e2e::wait_until(EVENTUALLY, "the test delivery to be recorded as succeeded", || async {
        let (status, d, _) = stack.get(&path).await;
        status == 200 && d["status"] == "succeeded"
    })
    .await;
    let (_, log, _) = stack.get(&format!("/v1/webhooks/deliveries?subscription_id={id}")).await;
    let ids: Vec<&str> = log["deliveries"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids, vec![delivery_id.as_str()], "exactly one delivery: the test one");
    assert_eq!(receiver.requests().len(), 1);
}
