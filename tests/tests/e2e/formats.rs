//! Slack and Teams formats (docs/receiving.md, "Formats") from the receiver's side: local HTTPS receivers that
//! answer 400 (as Slack does with `no_text`) unless the body has the product's required shape
//! and stays within its limits, signatures verified over the exact bytes received, a large
//! payload truncated rather than refused, and the delivery's `payload` equal to those bytes.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_e2e::delivery::{get_delivery, list_all_deliveries, standard_webhooks_verify};
use puck_e2e::{wait_until, ReceivedRequest, Receiver, Reply, Script, TestStack, EVENTUALLY};
use serde_json::{json, Value};

fn chars(v: &Value) -> usize {
    v.as_str().map_or(usize::MAX, |s| s.chars().count())
}

/// Why a body is not a valid Slack incoming-webhook Block Kit message, if it is not.
fn slack_problem(body: &Value) -> Option<String> {
    if chars(&body["text"]) > 3000 || body["text"].as_str().is_none_or(str::is_empty) {
        return Some("no_text".into());
    }
    let Some(blocks) = body["blocks"].as_array() else { return Some("no blocks".into()) };
    if blocks.is_empty() || blocks.len() > 50 {
        return Some(format!("{} blocks", blocks.len()));
    }
    if blocks[0]["type"] != "header"
        || blocks[0]["text"]["type"] != "plain_text"
        || chars(&blocks[0]["text"]["text"]) > 150
    {
        return Some(format!("bad header {}", blocks[0]));
    }
    for b in blocks {
        match b["type"].as_str() {
            Some("header") => {}
            Some("section") => {
                if !b["text"].is_null() && chars(&b["text"]["text"]) > 3000 {
                    return Some("section text over 3000".into());
                }
                if let Some(fields) = b["fields"].as_array() {
                    if fields.len() > 10 || fields.iter().any(|f| chars(&f["text"]) > 2000) {
                        return Some("section fields over the limits".into());
                    }
                }
                if b["text"].is_null() && b["fields"].is_null() {
                    return Some("empty section".into());
                }
            }
            Some("context") => {
                let elements = b["elements"].as_array().map_or(&[][..], Vec::as_slice);
                if elements.is_empty() || elements.len() > 10 {
                    return Some("context elements".into());
                }
            }
            other => return Some(format!("unexpected block {other:?}")),
        }
    }
    None
}

/// Why a body is not a Teams message with an Adaptive Card 1.4, if it is not.
fn teams_problem(body: &Value) -> Option<String> {
    if body["type"] != "message" {
        return Some("type is not message".into());
    }
    let att = &body["attachments"][0];
    if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
        return Some("contentType".into());
    }
    let card = &att["content"];
    if card["type"] != "AdaptiveCard" || card["version"] != "1.4" {
        return Some("not an AdaptiveCard 1.4".into());
    }
    let items = card["body"].as_array().map_or(&[][..], Vec::as_slice);
    if items.is_empty()
        || items.iter().any(|i| !["TextBlock", "FactSet"].contains(&i["type"].as_str().unwrap_or_default()))
    {
        return Some("card body".into());
    }
    if body.to_string().len() > 28_000 {
        return Some("over 28 KB".into());
    }
    None
}

/// A receiver that answers 200 only to bodies `check` accepts, 400 with the reason otherwise.
async fn checking_receiver(check: fn(&Value) -> Option<String>) -> Receiver {
    Receiver::start_with(Script::from_fn(move |req: &ReceivedRequest, _| {
        let problem = match serde_json::from_slice::<Value>(&req.body) {
            Ok(body) => check(&body),
            Err(e) => Some(format!("not JSON: {e}")),
        };
        match problem {
            None => Reply::ok().body("ok"),
            Some(p) => Reply::status(400).body(p),
        }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_teams_subscriptions_get_valid_signed_messages_even_for_a_huge_payload() {
    let stack = TestStack::start_default().await;
    let slack = checking_receiver(slack_problem).await;
    let teams = checking_receiver(teams_problem).await;
    let slack_sub =
        create_subscription(&stack, json!({"url": slack.url(), "events": ["finding.*"], "format": "slack"})).await;
    let teams_sub =
        create_subscription(&stack, json!({"url": teams.url(), "events": ["*"], "format": "ms_teams"})).await;
    assert_eq!((slack_sub["format"].as_str(), teams_sub["format"].as_str()), (Some("slack"), Some("ms_teams")));

    let mut data = serde_json::Map::new();
    data.insert("title".into(), json!(format!("SQL injection {}", "x".repeat(60_000))));
    data.insert("host".into(), json!("api.acme.example"));
    for i in 0..30 {
        data.insert(format!("field_{i}_{}", "k".repeat(100)), json!("v".repeat(1_500)));
    }
    for (id, d, severity) in [
        ("fmt-small", json!({"title": "SQL injection", "host": "api.acme.example"}), "critical"),
        ("fmt-big", Value::Object(data), "high"),
    ] {
        let (status, body, _) = stack
            .post(
                "/v1/events",
                json!({"event_id": id, "event_type": "finding.discovered", "data": d, "severity": severity}),
            )
            .await;
        assert_eq!((status, body["deliveries"].as_u64()), (202, Some(2)), "{body}");
    }
    wait_until(EVENTUALLY, "four deliveries to succeed", || async {
        let all = list_all_deliveries(&stack, "").await;
        all.len() == 4 && all.iter().all(|d| d["status"] == "succeeded")
    })
    .await;

    let small = slack.requests().into_iter().find(|r| r.header("x-puck-event-id") == Some("fmt-small")).unwrap();
    assert_eq!(small.json()["text"], "finding.discovered (critical): SQL injection on api.acme.example");
    let big = slack.requests().into_iter().find(|r| r.header("x-puck-event-id") == Some("fmt-big")).unwrap();
    assert!(big.json()["text"].as_str().unwrap().ends_with('…'), "the long summary is cut with an ellipsis");
    let card = teams.requests().into_iter().find(|r| r.header("x-puck-event-id") == Some("fmt-big")).unwrap();
    assert!(card.json()["attachments"][0]["content"]["body"][1]["text"]
        .as_str()
        .unwrap()
        .starts_with("finding.discovered (high): SQL injection"));

    for (receiver, sub) in [(&slack, &slack_sub), (&teams, &teams_sub)] {
        let secret = sub["secret"].as_str().unwrap();
        for req in receiver.requests() {
            puck_verify::verify_now(req.header("x-puck-signature").unwrap(), &req.body, &[secret])
                .expect("X-Puck-Signature over the bytes sent");
            standard_webhooks_verify(secret, &req.headers, &req.body)
                .await
                .expect("Standard Webhooks over the bytes sent");
            // The delivery log shows exactly those bytes.
            let listed = list_all_deliveries(&stack, &format!("subscription_id={}", id_of(sub))).await;
            let d =
                listed.iter().find(|d| Some(d["event_id"].as_str().unwrap()) == req.header("x-puck-event-id")).unwrap();
            let detail = get_delivery(&stack, d["id"].as_str().unwrap()).await;
            assert_eq!(detail["payload"].as_str().unwrap().as_bytes(), &req.body[..]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_event_sends_the_catalog_example_in_the_subscription_format() {
    let stack = TestStack::start_default().await;
    let slack = checking_receiver(slack_problem).await;
    let sub = create_subscription(&stack, json!({"url": slack.url(), "events": ["agent.*"], "format": "slack"})).await;
    let test_path = format!("{SUBSCRIPTIONS}/{}/test", id_of(&sub));
    let (status, body, _) = stack.post(&test_path, json!({"event_type": "chain.confirmed"})).await;
    assert_eq!(status, 202, "{body}");
    let reqs = slack.wait_for(1, EVENTUALLY).await;
    assert_eq!(reqs[0].header("x-puck-event-type"), Some("chain.confirmed"));
    assert_eq!(
        reqs[0].json()["text"],
        "chain.confirmed (critical): SQL injection to database credential theft (2 findings)"
    );

    assert_error(
        &stack.post(&test_path, json!({"event_type": "nope.nope"})).await,
        400,
        "validation_error",
        "event_type",
    );
    assert_error(&stack.post(&test_path, json!({"event_type": 1})).await, 400, "validation_error", "event_type");
    for bad in [json!("discord"), json!(5)] {
        assert_error(
            &stack.post(SUBSCRIPTIONS, json!({"url": slack.url(), "events": ["*"], "format": bad})).await,
            400,
            "validation_error",
            "format",
        );
        assert_error(
            &stack.patch(&format!("{SUBSCRIPTIONS}/{}", id_of(&sub)), json!({"format": bad})).await,
            400,
            "validation_error",
            "format",
        );
    }
    let (_, fetched, _) = stack.get(&format!("{SUBSCRIPTIONS}/{}", id_of(&sub))).await;
    assert_eq!(fetched["format"], "slack", "a refused PATCH changes nothing");
}
