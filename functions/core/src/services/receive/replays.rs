//! Replays of signed requests: the dedupe key of a signed endpoint comes from what the signature
//! covers, so a captured request sent again with fresh unsigned headers finds the first
//! investigation (docs/inbound.md, replays).

use super::tests::post;
use super::*;
use crate::fakes::{caller, context_with, Memory};
use crate::services::endpoints::tests::endpoint;
use crate::services::subscriptions;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The investigation id of a queued answer, and whether it was a duplicate.
fn queued(r: Result<Received, AppError>) -> (InvestigationId, bool) {
    match r {
        Ok(Received::Queued { investigation_id, duplicate }) => (investigation_id, duplicate),
        other => panic!("not queued: {other:?}"),
    }
}

#[tokio::test]
async fn a_signed_request_replayed_with_fresh_unsigned_headers_is_the_first_investigation() {
    let mem = Arc::new(Memory::default());
    let ctx = context_with(mem.clone());
    let who = caller();
    let sub = json!({"url": "https://hooks.example.com/a", "events": ["investigation.queued"]});
    subscriptions::create(&ctx, &who, sub).await.unwrap();

    // GitHub: a fresh X-GitHub-Delivery (and the MAC in upper-case hex) is the same request.
    let (_, gh) = endpoint(&ctx, &who, json!({"provider": "github", "provider_signing_secret": "gh-secret"})).await;
    let body = br#"{"action":"created","repository":{"full_name":"acme/api"},"alert":{"number":7}}"#;
    let mac = hmac(b"gh-secret", &[body]);
    let (lower, upper) = (format!("sha256={}", hex::encode(&mac)), format!("sha256={}", hex::encode_upper(&mac)));
    let ev = ("x-github-event", "code_scanning_alert");
    let gh_post = |delivery: &'static str, sig: String| {
        let (ctx, gh) = (&ctx, &gh);
        async move {
            post(ctx, Provider::Github, gh, &[ev, ("x-github-delivery", delivery), ("x-hub-signature-256", &sig)], body)
                .await
        }
    };
    let (first, duplicate) = queued(gh_post("d-1", lower.clone()).await);
    assert!(!duplicate);
    assert_eq!(queued(gh_post("d-2", lower.clone()).await), (first.clone(), true));
    assert_eq!(queued(gh_post("d-3", upper).await), (first.clone(), true));
    // GitHub's "Redeliver" (same delivery id, same body and signature) too.
    assert_eq!(queued(gh_post("d-1", lower).await), (first.clone(), true));

    // Generic X-Signature-256: a fresh Idempotency-Key is the same request.
    let (_, gen) = endpoint(&ctx, &who, json!({"provider": "generic", "provider_signing_secret": "plain"})).await;
    let body = br#"{"query":"check the host that just alerted"}"#;
    let sig = format!("sha256={}", hex::encode(hmac(b"plain", &[body])));
    let (gen_first, _) = queued(
        post(&ctx, Provider::Generic, &gen, &[("x-signature-256", &sig), ("idempotency-key", "k-1")], body).await,
    );
    let replay = [("x-signature-256", sig.as_str()), ("idempotency-key", "k-2")];
    assert_eq!(queued(post(&ctx, Provider::Generic, &gen, &replay, body).await), (gen_first, true));

    // CrowdStrike without a detection id in the body: a fresh X-CS-Delivery-Id is the same request.
    let (_, cs) = endpoint(&ctx, &who, json!({"provider": "crowdstrike", "provider_signing_secret": "cs"})).await;
    let body = br#"{"data":{"detections":[{"name":"Suspicious script","severity":"High"}]}}"#;
    let ts = ctx.clock.now().unix_seconds().to_string();
    let sig = STANDARD.encode(hmac(b"cs", &[body, ts.as_bytes()]));
    let cs_post = |delivery: &'static str| {
        let (ctx, cs, sig, ts) = (&ctx, &cs, sig.clone(), ts.clone());
        async move {
            let hs = [
                ("x-cs-primary-signature", sig.as_str()),
                ("x-cs-delivery-timestamp", ts.as_str()),
                ("x-cs-delivery-id", delivery),
            ];
            post(ctx, Provider::Crowdstrike, cs, &hs, body).await
        }
    };
    let (cs_first, _) = queued(cs_post("c-1").await);
    assert_eq!(queued(cs_post("c-2").await), (cs_first, true));

    // One investigation, one claim and one investigation.queued delivery per signed request.
    assert_eq!(mem.investigations.lock().unwrap().len(), 3);
    assert_eq!(mem.claims.lock().unwrap().len(), 3);
    assert_eq!(mem.deliveries.lock().unwrap().len(), 3);
    assert_eq!(mem.events.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_crowdstrike_detection_signed_again_later_is_still_its_first_investigation() {
    let mem = Arc::new(Memory::default());
    let ctx = context_with(mem.clone());
    let who = caller();
    let (_, cs) = endpoint(&ctx, &who, json!({"provider": "crowdstrike", "provider_signing_secret": "cs"})).await;
    let body =
        br#"{"metadata":{"eventType":"EppDetectionSummaryEvent"},"event":{"CompositeId":"c:1","Name":"Malware"}}"#;
    let now = ctx.clock.now().unix_seconds();
    let signed_at = |ts: i64| {
        let ts = ts.to_string();
        let sig = STANDARD.encode(hmac(b"cs", &[body, ts.as_bytes()]));
        let (ctx, cs) = (&ctx, &cs);
        async move {
            let hs = [("x-cs-primary-signature", sig.as_str()), ("x-cs-delivery-timestamp", ts.as_str())];
            post(ctx, Provider::Crowdstrike, cs, &hs, body).await
        }
    };
    let (first, _) = queued(signed_at(now).await);
    // A new signature of the same detection: the detection id in the signed body decides.
    assert_eq!(queued(signed_at(now - 60).await), (first, true));
    assert_eq!(mem.investigations.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn unsigned_endpoints_still_dedupe_on_the_delivery_header() {
    let mem = Arc::new(Memory::default());
    let ctx = context_with(mem.clone());
    let who = caller();
    let (_, open) = endpoint(&ctx, &who, json!({"provider": "generic"})).await;
    let body = br#"{"query":"q"}"#;
    let (first, _) = queued(post(&ctx, Provider::Generic, &open, &[("idempotency-key", "k-1")], body).await);
    assert_eq!(
        queued(post(&ctx, Provider::Generic, &open, &[("idempotency-key", "k-1")], body).await),
        (first.clone(), true)
    );
    let (other, duplicate) = queued(post(&ctx, Provider::Generic, &open, &[("idempotency-key", "k-2")], body).await);
    assert!(other != first && !duplicate);
}
