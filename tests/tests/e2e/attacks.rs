//! Attacks (docs/security.md, "Outbound requests"): the SSRF guard at send time (host names that resolve to loopback,
//! stored URLs that "turned" private, redirects — see also `faults::redirects_are_never_followed…`),
//! cross-account access through every remaining door (filters, cursors, publishing), and
//! signatures of real deliveries forged, truncated, stale or replayed against `puck_verify`.
//! Secrets issued here are checked against the logs and a raw table dump.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_core::ids::SubscriptionId;
use puck_core::model::Scope;
use puck_core::validation::TargetUrl;
use puck_e2e::leaks::assert_not_leaked;
use puck_e2e::{wait_for_some, Receiver, TestStack, TestStackOptions, EVENTUALLY};
use puck_verify::VerifyError;
use serde_json::{json, Value};
use std::time::Duration;

/// Waits for the delivery's first recorded attempt.
async fn first_attempt(stack: &TestStack, delivery_id: &str) -> Value {
    let path = format!("/v1/webhooks/deliveries/{delivery_id}");
    wait_for_some(EVENTUALLY, "a recorded attempt", || async {
        let (_, d, _) = stack.get(&path).await;
        d["attempts"].as_array().and_then(|a| a.first().cloned())
    })
    .await
}

/// A host name of this machine that resolves only to loopback/private addresses yet is not a
/// name the creation-time check refuses (e.g. the hostname in /etc/hosts), if there is one.
async fn name_resolving_to_loopback() -> Option<String> {
    let hostname = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned());
    for name in hostname.into_iter().chain(["ip6-localhost".to_owned(), "ip6-loopback".to_owned()]) {
        if name.is_empty() || TargetUrl::parse(&format!("https://{name}/")).is_err() {
            continue;
        }
        let Ok(addrs) = tokio::net::lookup_host((name.as_str(), 443)).await else { continue };
        let addrs: Vec<_> = addrs.collect();
        if !addrs.is_empty() && addrs.iter().all(|a| puck_core::validation::is_forbidden_ip(a.ip())) {
            return Some(name);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_checks_the_resolved_address_at_send_time() {
    // As in AWS: no ALLOW_PRIVATE_TARGETS, so loopback receivers must be unreachable.
    let stack = TestStack::start(TestStackOptions::default().deny_private_targets()).await;
    let receiver = Receiver::start().await;
    let port = receiver.url().rsplit(':').next().unwrap().trim_end_matches("/hook").to_owned();

    // 1. A URL that looked public at creation and now points at loopback (DNS rebinding, or a
    //    record edited behind the API's back): the stored URL is rewritten under the API.
    let mut targets = vec![
        format!("https://localhost:{port}/hook"),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://[::ffff:127.0.0.1]:{port}/hook"),
    ];
    // 2. A host name that passes the creation check but resolves to loopback on this machine.
    let via_api = name_resolving_to_loopback().await.map(|name| format!("https://{name}:{port}/hook"));
    let mut secrets = Vec::new();
    let mut deliveries = Vec::new();
    for target in targets.drain(..) {
        let sub =
            create_subscription(&stack, json!({"url": "https://hooks.example.com/puck", "events": ["agent.*"]})).await;
        secrets.push(("subscription secret".to_owned(), sub["secret"].as_str().unwrap().to_owned()));
        let id = SubscriptionId::parse(&id_of(&sub)).unwrap();
        let mut stored = stack.ctx().subscriptions.get(stack.account_id(), &id).await.unwrap().unwrap();
        stored.url = Some(TargetUrl::parse_with(&target, true).unwrap());
        assert_eq!(
            stack.ctx().subscriptions.update_settings(&stored, stored.version, false).await.unwrap(),
            puck_core::ports::SettingsWrite::Written
        );
        let (status, accepted, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test"), Value::Null).await;
        assert_eq!(status, 202, "{accepted}");
        deliveries.push((target, accepted["delivery_id"].as_str().unwrap().to_owned()));
    }
    if let Some(url) = &via_api {
        let sub = create_subscription(&stack, json!({"url": url, "events": ["agent.*"]})).await;
        let (status, accepted, _) = stack.post(&format!("{SUBSCRIPTIONS}/{}/test", id_of(&sub)), Value::Null).await;
        assert_eq!(status, 202, "{accepted}");
        deliveries.push((url.clone(), accepted["delivery_id"].as_str().unwrap().to_owned()));
    } else {
        eprintln!("no host name on this machine resolves only to loopback; the resolver case is covered by the sender's unit tests");
    }
    for (target, delivery_id) in &deliveries {
        let attempt = first_attempt(&stack, delivery_id).await;
        assert_eq!(attempt["response_status"], Value::Null, "{target}: {attempt}");
        let error = attempt["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("blocked:"), "{target}: the attempt says why: {error:?}");
    }
    assert_eq!(receiver.requests().len(), 0, "nothing reached the loopback receiver");
    assert_not_leaked(&stack, &secrets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_learns_nothing_through_filters_cursors_or_publishing() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let a_sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["finding.*"]})).await;
    for n in 0..3 {
        let (status, _, _) =
            stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": {"n": n}})).await;
        assert_eq!(status, 202);
    }
    receiver.wait_for(3, EVENTUALLY).await;
    let (_, a_page, _) = stack.get("/v1/webhooks/deliveries?limit=1").await;
    let a_cursor = a_page["next_cursor"].as_str().expect("A has more than one delivery").to_owned();
    let (_, a_subs, _) = stack.get(&format!("{SUBSCRIPTIONS}?limit=1")).await;

    let b = stack.new_account(&Scope::ALL).await;
    let b_client = stack.with_key(&b.api_key);
    // Filtering B's log by A's subscription says it does not exist (and reads no log).
    let (status, filtered, _) =
        b_client.get(&format!("/v1/webhooks/deliveries?subscription_id={}", id_of(&a_sub))).await;
    assert_eq!((status, &filtered["error"]["code"]), (404, &json!("not_found")), "B filtering by A's subscription");
    // A's cursors page through B's data only.
    let (status, page, _) = b_client.get(&format!("/v1/webhooks/deliveries?limit=100&cursor={a_cursor}")).await;
    assert!(status == 400 || (status == 200 && page["deliveries"] == json!([])), "B with A's cursor: {status} {page}");
    if let Some(c) = a_subs["next_cursor"].as_str() {
        let (status, page, _) = b_client.get(&format!("{SUBSCRIPTIONS}?cursor={c}")).await;
        assert!(status == 400 || (status == 200 && page["subscriptions"] == json!([])), "{status} {page}");
    }
    // B's events never reach A's subscriptions.
    let (status, published, _) =
        b_client.post("/v1/events", json!({"event_type": "finding.discovered", "data": {"from": "b"}})).await;
    assert_eq!((status, published["deliveries"].clone()), (202, json!(0)), "{published}");
    // B reusing one of A's event ids neither sees A's count nor suppresses its own publish.
    let a_event = receiver.requests()[0].header("x-puck-event-id").unwrap().to_owned();
    let (status, again, _) =
        b_client.post("/v1/events", json!({"event_type": "finding.discovered", "data": {}, "event_id": a_event})).await;
    assert_eq!((status, again["deliveries"].clone()), (202, json!(0)), "{again}");
    // A's own routes, with B's key and A's ids: 404 (the complete per-route table is isolation.rs).
    assert_error(
        &b_client.get(&format!("{SUBSCRIPTIONS}/{}", id_of(&a_sub))).await,
        404,
        "not_found",
        "subscription not found",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.requests().len(), 3, "nothing of B's reached A's receiver");
    assert_not_leaked(
        &stack,
        &[("B's API key".into(), b.api_key.clone()), ("A's secret".into(), a_sub["secret"].as_str().unwrap().into())],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_truncated_stale_and_replayed_signatures_of_a_real_delivery_are_rejected() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["agent.*"]})).await;
    let secret = sub["secret"].as_str().unwrap().to_owned();
    let (status, _, _) = stack.post(&format!("{SUBSCRIPTIONS}/{}/test", id_of(&sub)), Value::Null).await;
    assert_eq!(status, 202);
    let request = receiver.wait_for(1, EVENTUALLY).await.remove(0);
    let header = request.header("x-puck-signature").unwrap().to_owned();
    let body = request.body.to_vec();
    let t: i64 = header.split(',').find_map(|p| p.strip_prefix("t=")).unwrap().parse().unwrap();
    let secrets = [secret.as_str()];

    assert_eq!(puck_verify::verify(&header, &body, &secrets, t), Ok(()), "the genuine delivery verifies");
    assert_eq!(request.header("x-puck-signature-256"), Some(header.as_str()));

    let sig = header.split(',').find_map(|p| p.strip_prefix("v1=")).unwrap().to_owned();
    let mut flipped = sig.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    /// (what, header, body, secrets, receiver clock, expected error)
    type Case<'a> = (&'a str, String, Vec<u8>, Vec<&'a str>, i64, VerifyError);
    let cases: Vec<Case> = vec![
        (
            "forged with another secret",
            puck_verify::sign("whsec_QW5vdGhlclNlY3JldEFub3RoZXJTZWNyZXQxMjM=", t, &body),
            body.clone(),
            secrets.to_vec(),
            t,
            VerifyError::SignatureMismatch,
        ),
        (
            "one hex digit changed",
            format!("t={t},v1={flipped}"),
            body.clone(),
            secrets.to_vec(),
            t,
            VerifyError::SignatureMismatch,
        ),
        (
            "truncated signature",
            format!("t={t},v1={}", &sig[..63]),
            body.clone(),
            secrets.to_vec(),
            t,
            VerifyError::MalformedHeader,
        ),
        (
            "truncated header",
            header[..header.len() - 20].to_owned(),
            body.clone(),
            secrets.to_vec(),
            t,
            VerifyError::MalformedHeader,
        ),
        ("signature only", format!("v1={sig}"), body.clone(), secrets.to_vec(), t, VerifyError::MissingTimestamp),
        (
            "timestamp moved",
            format!("t={},v1={sig}", t + 1),
            body.clone(),
            secrets.to_vec(),
            t,
            VerifyError::SignatureMismatch,
        ),
        (
            "stale: replayed 301 s later",
            header.clone(),
            body.clone(),
            secrets.to_vec(),
            t + 301,
            VerifyError::TimestampOutOfTolerance,
        ),
        (
            "stale: replayed an hour later",
            header.clone(),
            body.clone(),
            secrets.to_vec(),
            t + 3600,
            VerifyError::TimestampOutOfTolerance,
        ),
        (
            "from the future",
            header.clone(),
            body.clone(),
            secrets.to_vec(),
            t - 301,
            VerifyError::TimestampOutOfTolerance,
        ),
        (
            "replayed onto another body",
            header.clone(),
            br#"{"event_type":"agent.registered"}"#.to_vec(),
            secrets.to_vec(),
            t,
            VerifyError::SignatureMismatch,
        ),
        (
            "body truncated",
            header.clone(),
            body[..body.len() - 1].to_vec(),
            secrets.to_vec(),
            t,
            VerifyError::SignatureMismatch,
        ),
        (
            "key without its whsec_ prefix",
            header.clone(),
            body.clone(),
            vec![secret.strip_prefix("whsec_").unwrap()],
            t,
            VerifyError::SignatureMismatch,
        ),
    ];
    for (what, header, body, secrets, now, want) in cases {
        assert_eq!(puck_verify::verify(&header, &body, &secrets, now), Err(want), "{what}");
    }
    // Within the window a replay of the exact request verifies: a signature proves the sender,
    // not freshness; receivers dedupe on X-Puck-Event-Id (docs/receiving.md).
    assert_eq!(puck_verify::verify(&header, &body, &secrets, t + 299), Ok(()));
    assert_not_leaked(&stack, &[("subscription secret".into(), secret.clone())]).await;
}
