//! The receiver: a POST to an inbound endpoint's URL triggers an investigation (docs/inbound.md,
//! docs/security.md). Provider signatures and event meanings are the pure functions of
//! [`crate::providers`]; this use case adds the storage around them.
//!
//! The receiver answers 401 with one of exactly two messages, "invalid receiver key" (unknown or
//! deleted key, provider mismatch, inactive endpoint) and "signature verification failed", so a
//! caller learns nothing about which check failed; the precise reason is logged.
//!
//! Writes are ordered so nothing is lost: the investigation (with a claim on the event's dedupe
//! key) first, then `investigation.queued` with an event id derived from the investigation id. A
//! redelivery finds the claim, creates nothing, and publishes again, which is a no-op unless a
//! crash lost the first publish. On an endpoint with a signing secret the key comes only from
//! what the signature covers ([`Trigger::claim_key`]), so a captured request replayed with a fresh
//! delivery header is a redelivery too, not a new investigation.

use super::events::{publish_event, NewEvent};
use super::Context;
use crate::error::AppError;
use crate::ids::{EventId, InvestigationId};
use crate::model::{Endpoint, Investigation, Provider};
use crate::providers::{recognize, verify_signature, Headers, Recognition, Trigger, Verified};
use crate::secret::Secret;
use crate::services::endpoints::URL_KEY_LEN;
use crate::validation::{EventType, Severity};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Status of every investigation this service creates; the investigation engine moves it on.
pub const QUEUED: &str = "queued";
const INVALID_KEY: &str = "invalid receiver key";
const BAD_SIGNATURE: &str = "signature verification failed";

/// The `{provider}` path segment of the receiver: unknown → 404 (docs/api.md).
pub fn parse_provider_segment(raw: &str) -> Result<Provider, AppError> {
    Provider::parse(raw).ok_or(AppError::NotFound("inbound provider"))
}

/// One POST to a receiver URL, as the route read it.
#[derive(Debug)]
pub struct InboundRequest<'a> {
    /// The `{provider}` path segment, already known to be a provider.
    pub provider: Provider,
    /// The `{key}` path segment: a credential, never logged.
    pub key: &'a str,
    /// The request headers, for signature checks and dedupe keys.
    pub headers: &'a Headers,
    /// The raw body, exactly as signed.
    pub body: &'a [u8],
}

/// What the receiver did with a request (both are HTTP 202).
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// An investigation was queued; `duplicate` when this was a redelivery of an event that
    /// already created it.
    Queued {
        /// `inv_` id of the investigation: the new one, or the earlier one when `duplicate`.
        investigation_id: InvestigationId,
        /// True when a dedupe claim showed the event was already received.
        duplicate: bool,
    },
    /// Verified but not acted on.
    Ignored {
        /// Why it was not acted on; returned to the sender.
        reason: String,
    },
}

impl Received {
    /// `{"investigation_id"}` (plus `"duplicate": true` on a redelivery) or
    /// `{"ignored": true, "reason"}`.
    pub fn view(&self) -> Value {
        match self {
            Received::Queued { investigation_id, duplicate: false } => json!({ "investigation_id": investigation_id }),
            Received::Queued { investigation_id, duplicate: true } => {
                json!({ "investigation_id": investigation_id, "duplicate": true })
            }
            Received::Ignored { reason } => json!({ "ignored": true, "reason": reason }),
        }
    }
}

fn well_formed_key(key: &str) -> bool {
    key.len() == URL_KEY_LEN && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Finds the active endpoint of `provider` whose key this is, or 401 "invalid receiver key".
async fn authenticate_key(ctx: &Context, provider: Provider, key: &str) -> Result<Endpoint, AppError> {
    let unauthorized = || AppError::Unauthorized(INVALID_KEY.into());
    if !well_formed_key(key) {
        tracing::warn!(provider = provider.as_str(), reason = "malformed key", "inbound request refused");
        return Err(unauthorized());
    }
    let Some(endpoint) = ctx.endpoints.find_by_key_hash(&ctx.keyring.lookup_hash(key)).await? else {
        tracing::warn!(provider = provider.as_str(), reason = "unknown key", "inbound request refused");
        return Err(unauthorized());
    };
    let refusal = if endpoint.provider != provider {
        Some("provider mismatch")
    } else if !endpoint.active {
        Some("endpoint inactive")
    } else {
        None
    };
    if let Some(reason) = refusal {
        tracing::warn!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, provider = provider.as_str(), reason, "inbound request refused");
        return Err(unauthorized());
    }
    Ok(endpoint)
}

/// `None` for an endpoint without a signing secret; else the verified request, or 401.
fn check_signature(ctx: &Context, endpoint: &Endpoint, req: &InboundRequest<'_>) -> Result<Option<Verified>, AppError> {
    let Some(enc) = &endpoint.signing_secret_enc else { return Ok(None) };
    let secret = ctx
        .keyring
        .decrypt(enc, endpoint.id.as_str())
        .map(Secret::new)
        .map_err(|e| AppError::internal(format!("signing secret of endpoint {}", endpoint.id), e))?;
    let now_secs = ctx.clock.now().unix_seconds();
    let verified = verify_signature(endpoint.provider, secret.expose(), req.headers, req.body, now_secs).map_err(|e| {
        tracing::warn!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, provider = endpoint.provider.as_str(), reason = %e, "inbound signature refused");
        AppError::Unauthorized(BAD_SIGNATURE.into())
    })?;
    Ok(Some(verified))
}

/// `POST /v1/webhooks/incoming/{provider}/{key}` (no API key): authenticate by URL key, verify
/// the provider signature when the endpoint has a secret, recognise the event, and queue an
/// investigation (emitting `investigation.queued`) or report why it was ignored.
pub async fn receive(ctx: &Context, req: InboundRequest<'_>) -> Result<Received, AppError> {
    let endpoint = authenticate_key(ctx, req.provider, req.key).await?;
    let verified = check_signature(ctx, &endpoint, &req)?;
    let trigger = match recognize(endpoint.provider, req.headers, req.body)? {
        Recognition::Ignored(reason) => {
            tracing::info!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, provider = endpoint.provider.as_str(), reason = %reason, "inbound event ignored");
            return Ok(Received::Ignored { reason });
        }
        Recognition::Trigger(t) => *t,
    };
    let claim_key = trigger.claim_key(verified.as_ref()).map(str::to_owned);
    queue_investigation(ctx, &endpoint, trigger, claim_key).await
}

/// Writes the investigation with its claim on `claim_key` (when there is one) and announces it;
/// a claim already taken answers with the investigation that took it.
async fn queue_investigation(
    ctx: &Context,
    endpoint: &Endpoint,
    trigger: Trigger,
    claim_key: Option<String>,
) -> Result<Received, AppError> {
    let now = ctx.clock.now();
    let inv = Investigation {
        id: InvestigationId::generate(now.unix_ms() as u64),
        account_id: endpoint.account_id.clone(),
        status: QUEUED.to_owned(),
        provider: endpoint.provider,
        endpoint_id: endpoint.id.clone(),
        trigger: trigger.trigger,
        query: trigger.query,
        summary: trigger.summary,
        agent_ids: trigger.agent_ids,
        scope: trigger.scope.or_else(|| endpoint.default_scope.clone()),
        depth: trigger.depth.map(|d| d.as_str().to_owned()).or_else(|| endpoint.default_depth.clone()),
        created_at: now,
    };
    let severity = trigger.severity;

    if let Some(existing_id) = ctx.investigations.insert(&inv, claim_key.as_deref()).await? {
        // A redelivery: nothing new, but finish the publish in case the first attempt crashed
        // before it (idempotent on the event id).
        match ctx.investigations.get(&endpoint.account_id, &existing_id).await? {
            Some(existing) => {
                publish_queued(ctx, &existing, severity).await?;
            }
            None => {
                tracing::warn!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, investigation_id = %existing_id, "dedupe claim points at a missing investigation")
            }
        }
        tracing::info!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, investigation_id = %existing_id, "inbound redelivery; investigation already queued");
        return Ok(Received::Queued { investigation_id: existing_id, duplicate: true });
    }

    let published = match publish_queued(ctx, &inv, severity).await {
        Ok(n) => n,
        Err(e) => {
            // With a dedupe claim the provider's retry finishes this investigation; without one
            // nothing would, so take it back and let the retry start afresh.
            if claim_key.is_none() {
                if let Err(undo) = ctx.investigations.remove(&inv.account_id, &inv.id).await {
                    tracing::warn!(account_id = %inv.account_id, investigation_id = %inv.id, error = %undo, "could not remove an unannounced investigation");
                }
            }
            return Err(e);
        }
    };
    tracing::info!(
        account_id = %inv.account_id,
        endpoint_id = %inv.endpoint_id,
        investigation_id = %inv.id,
        provider = inv.provider.as_str(),
        trigger = %inv.trigger,
        deliveries = published,
        "investigation queued"
    );
    Ok(Received::Queued { investigation_id: inv.id, duplicate: false })
}

/// Emits `investigation.queued` for `inv` with event id `investigation.queued.<inv_id>`, so a
/// repeat is a no-op. Returns the number of deliveries.
async fn publish_queued(ctx: &Context, inv: &Investigation, severity: Option<Severity>) -> Result<u32, AppError> {
    let event_id = EventId::parse(&format!("investigation.queued.{}", inv.id))
        .map_err(|e| AppError::internal("investigation event id", e))?;
    let event_type =
        EventType::parse("investigation.queued").map_err(|e| AppError::internal("investigation.queued", e))?;
    let tags = BTreeMap::from([
        ("provider".to_owned(), inv.provider.as_str().to_owned()),
        ("trigger".to_owned(), inv.trigger.clone()),
        ("endpoint_id".to_owned(), inv.endpoint_id.to_string()),
    ]);
    let data = json!({
        "investigation_id": inv.id,
        "status": inv.status,
        "provider": inv.provider,
        "endpoint_id": inv.endpoint_id,
        "trigger": inv.trigger,
        "query": inv.query,
        "summary": inv.summary,
        "scope": inv.scope,
        "depth": inv.depth,
        "agent_ids": inv.agent_ids,
        "created_at": inv.created_at,
    });
    let published =
        publish_event(ctx, &inv.account_id, NewEvent { event_id, event_type, data, severity, tags, id_given: true })
            .await?;
    Ok(published.deliveries)
}

#[cfg(test)]
mod replays;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fakes::{caller, context, context_with, Memory};
    use crate::ids::EndpointId;
    use crate::model::DeliveryStatus;
    use crate::services::endpoints::delete_endpoint;
    use crate::services::endpoints::tests::endpoint;
    use crate::services::investigations::get_investigation;
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

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    pub(crate) async fn post(
        ctx: &Context,
        provider: Provider,
        key: &str,
        hs: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Received, AppError> {
        let h = headers(hs);
        receive(ctx, InboundRequest { provider, key, headers: &h, body }).await
    }

    fn code_scanning_body() -> Vec<u8> {
        json!({"action": "created", "repository": {"full_name": "acme/api"},
               "alert": {"number": 42, "rule": {"description": "SQL injection", "security_severity_level": "high"}}})
        .to_string()
        .into_bytes()
    }

    fn invalid_key() -> AppError {
        AppError::Unauthorized(INVALID_KEY.into())
    }

    fn bad_signature() -> AppError {
        AppError::Unauthorized(BAD_SIGNATURE.into())
    }

    #[tokio::test]
    async fn delete_is_404_for_unknown_foreign_or_malformed_ids_and_kills_the_url() {
        let ctx = context();
        let who = caller();
        let (id, key) = endpoint(&ctx, &who, json!({"provider": "generic"})).await;
        assert_eq!(delete_endpoint(&ctx, &caller(), &id).await, Err(AppError::NotFound("endpoint")));
        assert_eq!(delete_endpoint(&ctx, &who, "ep_nope").await, Err(AppError::NotFound("endpoint")));
        assert_eq!(
            delete_endpoint(&ctx, &who, &EndpointId::generate(5).to_string()).await,
            Err(AppError::NotFound("endpoint"))
        );
        assert!(post(&ctx, Provider::Generic, &key, &[], br#"{"query":"q"}"#).await.is_ok());
        delete_endpoint(&ctx, &who, &id).await.unwrap();
        assert_eq!(post(&ctx, Provider::Generic, &key, &[], br#"{"query":"q"}"#).await, Err(invalid_key()));
        assert_eq!(delete_endpoint(&ctx, &who, &id).await, Err(AppError::NotFound("endpoint")));
    }

    #[tokio::test]
    async fn unknown_key_provider_mismatch_and_inactive_endpoint_are_401() {
        let ctx = context();
        let who = caller();
        let (_, key) = endpoint(&ctx, &who, json!({"provider": "github"})).await;
        let (_, inactive) = endpoint(&ctx, &who, json!({"provider": "generic", "active": false})).await;
        let gh = [("x-github-event", "code_scanning_alert")];
        let body = code_scanning_body();
        assert_eq!(post(&ctx, Provider::Generic, &key, &gh, &body).await, Err(invalid_key()));
        assert_eq!(post(&ctx, Provider::Crowdstrike, &key, &gh, &body).await, Err(invalid_key()));
        assert_eq!(post(&ctx, Provider::Github, &"A".repeat(URL_KEY_LEN), &gh, &body).await, Err(invalid_key()));
        assert_eq!(post(&ctx, Provider::Github, "short", &gh, &body).await, Err(invalid_key()));
        assert_eq!(post(&ctx, Provider::Generic, &inactive, &[], br#"{"query":"q"}"#).await, Err(invalid_key()));
        assert!(matches!(post(&ctx, Provider::Github, &key, &gh, &body).await, Ok(Received::Queued { .. })));
        assert_eq!(parse_provider_segment("gitlab"), Err(AppError::NotFound("inbound provider")));
        assert_eq!(parse_provider_segment("github"), Ok(Provider::Github));
    }

    #[tokio::test]
    async fn github_with_and_without_secret() {
        let ctx = context();
        let who = caller();
        let secret = "It's a Secret to Everybody";
        let (_, signed) = endpoint(&ctx, &who, json!({"provider": "github", "provider_signing_secret": secret})).await;
        let (_, open) = endpoint(&ctx, &who, json!({"provider": "github"})).await;
        let body = code_scanning_body();
        let good = format!("sha256={}", hex::encode(hmac(secret.as_bytes(), &[&body])));
        let forged = format!("sha256={}", hex::encode(hmac(b"guess", &[&body])));
        let ev = ("x-github-event", "code_scanning_alert");

        assert!(matches!(
            post(&ctx, Provider::Github, &signed, &[ev, ("x-hub-signature-256", &good)], &body).await,
            Ok(Received::Queued { .. })
        ));
        assert_eq!(
            post(&ctx, Provider::Github, &signed, &[ev, ("x-hub-signature-256", &forged)], &body).await,
            Err(bad_signature())
        );
        assert_eq!(post(&ctx, Provider::Github, &signed, &[ev], &body).await, Err(bad_signature()));
        // No secret: no check, whatever the headers say.
        assert!(matches!(
            post(&ctx, Provider::Github, &open, &[ev, ("x-hub-signature-256", &forged)], &body).await,
            Ok(Received::Queued { .. })
        ));
        assert!(matches!(post(&ctx, Provider::Github, &open, &[ev], &body).await, Ok(Received::Queued { .. })));

        // The signature is checked before anything else, ping included.
        let ping = br#"{"zen":"hi"}"#;
        let ping_sig = format!("sha256={}", hex::encode(hmac(secret.as_bytes(), &[ping])));
        assert_eq!(
            post(&ctx, Provider::Github, &signed, &[("x-github-event", "ping")], ping).await,
            Err(bad_signature())
        );
        let got = post(
            &ctx,
            Provider::Github,
            &signed,
            &[("x-github-event", "ping"), ("x-hub-signature-256", &ping_sig)],
            ping,
        )
        .await
        .unwrap();
        assert_eq!(got.view(), json!({"ignored": true, "reason": "ping"}));
        let push = post(&ctx, Provider::Github, &open, &[("x-github-event", "push")], b"{}").await.unwrap();
        assert_eq!(push.view(), json!({"ignored": true, "reason": "github event push is not acted on"}));
    }

    #[tokio::test]
    async fn crowdstrike_with_and_without_secret() {
        let ctx = context();
        let who = caller();
        let secret = "cs-hmac-secret";
        let (_, signed) =
            endpoint(&ctx, &who, json!({"provider": "crowdstrike", "provider_signing_secret": secret})).await;
        let (_, open) = endpoint(&ctx, &who, json!({"provider": "crowdstrike"})).await;
        let body = json!({"metadata": {"eventType": "EppDetectionSummaryEvent"}, "event": {"CompositeId": "c:1", "Name": "Malware", "Severity": 80}}).to_string();
        let ts = ctx.clock.now().unix_seconds().to_string();
        let good = STANDARD.encode(hmac(secret.as_bytes(), &[body.as_bytes(), ts.as_bytes()]));
        let forged = STANDARD.encode(hmac(b"nope", &[body.as_bytes(), ts.as_bytes()]));

        let ok = post(
            &ctx,
            Provider::Crowdstrike,
            &signed,
            &[("X-CS-Primary-Signature", &good), ("X-CS-Delivery-Timestamp", &ts)],
            body.as_bytes(),
        )
        .await;
        assert!(matches!(ok, Ok(Received::Queued { duplicate: false, .. })), "{ok:?}");
        assert_eq!(
            post(
                &ctx,
                Provider::Crowdstrike,
                &signed,
                &[("X-CS-Primary-Signature", &forged), ("X-CS-Delivery-Timestamp", &ts)],
                body.as_bytes()
            )
            .await,
            Err(bad_signature())
        );
        assert_eq!(
            post(&ctx, Provider::Crowdstrike, &signed, &[("X-CS-Primary-Signature", &good)], body.as_bytes()).await,
            Err(bad_signature())
        );
        assert_eq!(post(&ctx, Provider::Crowdstrike, &signed, &[], body.as_bytes()).await, Err(bad_signature()));
        assert!(matches!(
            post(&ctx, Provider::Crowdstrike, &open, &[], body.as_bytes()).await,
            Ok(Received::Queued { .. })
        ));
        let other = post(
            &ctx,
            Provider::Crowdstrike,
            &open,
            &[],
            br#"{"metadata":{"eventType":"AuthActivityAuditEvent"},"event":{}}"#,
        )
        .await
        .unwrap();
        assert_eq!(
            other,
            Received::Ignored { reason: "crowdstrike event AuthActivityAuditEvent is not acted on".into() }
        );
    }

    #[tokio::test]
    async fn generic_with_and_without_secret() {
        let ctx = context();
        let who = caller();
        let (_, signed) = endpoint(
            &ctx,
            &who,
            json!({"provider": "generic", "provider_signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        )
        .await;
        let (_, plain_secret) =
            endpoint(&ctx, &who, json!({"provider": "generic", "provider_signing_secret": "plain"})).await;
        let (_, open) = endpoint(
            &ctx,
            &who,
            json!({"provider": "generic", "default_depth": "deep", "default_scope": {"env": "prod"}}),
        )
        .await;
        let body = br#"{"query":"check the host that just alerted","agent_ids":["agent_1"]}"#;
        let ts = ctx.clock.now().unix_seconds().to_string();
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sw = format!("v1,{}", STANDARD.encode(hmac(&key, &[b"msg_1", b".", ts.as_bytes(), b".", body])));
        let sw_headers =
            [("webhook-id", "msg_1"), ("webhook-timestamp", ts.as_str()), ("webhook-signature", sw.as_str())];
        assert!(matches!(post(&ctx, Provider::Generic, &signed, &sw_headers, body).await, Ok(Received::Queued { .. })));
        let stale = (ctx.clock.now().unix_seconds() - 400).to_string();
        let sw_stale = format!("v1,{}", STANDARD.encode(hmac(&key, &[b"msg_2", b".", stale.as_bytes(), b".", body])));
        assert_eq!(
            post(
                &ctx,
                Provider::Generic,
                &signed,
                &[("webhook-id", "msg_2"), ("webhook-timestamp", &stale), ("webhook-signature", &sw_stale)],
                body
            )
            .await,
            Err(bad_signature())
        );
        let hex_sig = format!("sha256={}", hex::encode(hmac(b"plain", &[body])));
        assert!(matches!(
            post(&ctx, Provider::Generic, &plain_secret, &[("X-Signature-256", &hex_sig)], body).await,
            Ok(Received::Queued { .. })
        ));
        assert_eq!(
            post(&ctx, Provider::Generic, &plain_secret, &[("X-Signature-256", "sha256=00")], body).await,
            Err(bad_signature())
        );
        assert_eq!(post(&ctx, Provider::Generic, &plain_secret, &[], body).await, Err(bad_signature()));

        // Unsigned endpoint: defaults fill in what the event does not say.
        let Received::Queued { investigation_id, .. } = post(&ctx, Provider::Generic, &open, &[], body).await.unwrap()
        else {
            panic!("queued")
        };
        let inv = get_investigation(&ctx, &who, investigation_id.as_str()).await.unwrap();
        assert_eq!(inv["status"], "queued");
        assert_eq!(inv["trigger"], "generic");
        assert_eq!(inv["query"], "check the host that just alerted");
        assert_eq!(inv["agent_ids"], json!(["agent_1"]));
        assert_eq!(inv["depth"], "deep");
        assert_eq!(inv["scope"], json!({"env": "prod"}));
        let own = post(&ctx, Provider::Generic, &open, &[], br#"{"query":"q","depth":"quick","scope":{"env":"dev"}}"#)
            .await
            .unwrap();
        let Received::Queued { investigation_id, .. } = own else { panic!("queued") };
        let inv = get_investigation(&ctx, &who, investigation_id.as_str()).await.unwrap();
        assert_eq!((inv["depth"].as_str(), &inv["scope"]), (Some("quick"), &json!({"env": "dev"})));

        assert_eq!(
            post(&ctx, Provider::Generic, &open, &[], br#"{"note":"hi"}"#).await,
            Ok(Received::Ignored { reason: "no query".into() })
        );
        assert!(matches!(
            post(&ctx, Provider::Generic, &open, &[], b"query=hi").await,
            Err(AppError::MalformedJson(_))
        ));
    }

    #[tokio::test]
    async fn redelivery_creates_one_investigation_and_subscribers_get_one_delivery() {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let who = caller();
        subscriptions::create(&ctx, &who, json!({"url": "https://hooks.example.com/a", "events": ["investigation.queued"], "filters": {"tags": {"provider": "github"}}})).await.unwrap();
        subscriptions::create(&ctx, &who, json!({"url": "https://hooks.example.com/b", "events": ["investigation.*"], "filters": {"min_severity": "critical"}})).await.unwrap();
        let (ep_id, key) = endpoint(&ctx, &who, json!({"provider": "github", "default_depth": "standard"})).await;
        let hs =
            [("x-github-event", "code_scanning_alert"), ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")];
        let body = code_scanning_body();

        let first = post(&ctx, Provider::Github, &key, &hs, &body).await.unwrap();
        let Received::Queued { investigation_id, duplicate: false } = first.clone() else { panic!("{first:?}") };
        assert_eq!(first.view(), json!({"investigation_id": investigation_id}));
        let again = post(&ctx, Provider::Github, &key, &hs, &body).await.unwrap();
        assert_eq!(again, Received::Queued { investigation_id: investigation_id.clone(), duplicate: true });
        assert_eq!(mem.investigations.lock().unwrap().len(), 1);

        // Only the github-tagged subscriber matches (severity high < critical).
        let deliveries: Vec<_> = mem.deliveries.lock().unwrap().values().cloned().collect();
        assert_eq!(deliveries.len(), 1);
        let d = &deliveries[0];
        assert_eq!(d.event_type, "investigation.queued");
        assert_eq!(d.event_id.as_str(), format!("investigation.queued.{investigation_id}"));
        assert_eq!(d.status, DeliveryStatus::Pending);
        let envelope: Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(envelope["data"]["investigation_id"], investigation_id.as_str());
        assert_eq!(envelope["data"]["endpoint_id"], ep_id);
        assert_eq!(envelope["data"]["trigger"], "github:code_scanning_alert");
        assert_eq!(envelope["data"]["summary"], "GitHub code scanning alert #42 in acme/api: SQL injection (high)");
        assert_eq!(envelope["data"]["depth"], "standard");
        assert_eq!(mem.queue.lock().unwrap().len(), 1);

        // A different delivery id is a new event.
        let other = post(&ctx, Provider::Github, &key, &[hs[0], ("x-github-delivery", "other")], &body).await.unwrap();
        assert!(matches!(other, Received::Queued { duplicate: false, .. }));
        assert_eq!(mem.investigations.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn redelivery_republishes_when_the_first_publish_was_lost() {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let who = caller();
        subscriptions::create(
            &ctx,
            &who,
            json!({"url": "https://hooks.example.com/a", "events": ["investigation.queued"]}),
        )
        .await
        .unwrap();
        let (_, key) = endpoint(&ctx, &who, json!({"provider": "generic"})).await;
        let hs = [("webhook-id", "msg_crash")];
        let body = br#"{"query":"q"}"#;
        let Received::Queued { investigation_id, .. } = post(&ctx, Provider::Generic, &key, &hs, body).await.unwrap()
        else {
            panic!()
        };
        // Simulate a crash between the investigation write and the publish.
        mem.deliveries.lock().unwrap().clear();
        mem.events.lock().unwrap().clear();
        let again = post(&ctx, Provider::Generic, &key, &hs, body).await.unwrap();
        assert_eq!(again, Received::Queued { investigation_id, duplicate: true });
        assert_eq!(mem.deliveries.lock().unwrap().len(), 1);
        // And once published, further redeliveries add nothing.
        post(&ctx, Provider::Generic, &key, &hs, body).await.unwrap();
        assert_eq!(mem.deliveries.lock().unwrap().len(), 1);
    }
}
