//! Inbound endpoints and the receiver: external systems (GitHub, CrowdStrike, anything that can
//! POST JSON) trigger investigations (DESIGN §4 "Inbound endpoints … and receiver", §7).
//!
//! An endpoint's URL key is the credential of its receiver URL. It is shown once, at creation,
//! and stored only as a keyed hash that is also its lookup key, so the receiver finds the endpoint
//! with one read and never compares keys in application code. A provider signing secret, when
//! set, is stored AES-256-GCM-encrypted with the endpoint id as associated data.
//!
//! The receiver answers 401 with one of exactly two messages, "invalid receiver key" (unknown or
//! deleted key, provider mismatch, inactive endpoint) and "signature verification failed", so a
//! caller learns nothing about which check failed; the precise reason is logged.
//!
//! Writes are ordered so nothing is lost: the investigation (with a claim on the provider's
//! delivery id) first, then `investigation.queued` with an event id derived from the
//! investigation id. A redelivery finds the claim, creates nothing, and publishes again, which is
//! a no-op unless a crash lost the first publish.

use super::events::{publish_event, NewEvent};
use super::input::{wrong_type, Fields};
use super::Context;
use crate::error::AppError;
use crate::ids::{EndpointId, EventId, InvestigationId};
use crate::inbound::{recognize, verify_signature, Depth, Headers, Recognition, Trigger};
use crate::model::{Caller, Endpoint, Investigation, Provider};
use crate::secret::Secret;
use crate::validation::EventType;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Length of a receiver URL key: 48 characters from `[A-Za-z0-9]` (~285 bits).
pub const URL_KEY_LEN: usize = 48;
/// How much of the URL key is kept in clear to recognise an endpoint in a list.
pub const URL_KEY_PREFIX_LEN: usize = 8;
/// Bounds of `provider_signing_secret` (characters).
pub const MAX_SIGNING_SECRET_CHARS: usize = 256;
/// Largest `default_scope`, as serialised JSON.
pub const MAX_SCOPE_BYTES: usize = 8 * 1024;
/// Status of every investigation this service creates; the investigation engine moves it on.
pub const QUEUED: &str = "queued";

const CREATE_FIELDS: &[&str] = &["provider", "provider_signing_secret", "default_scope", "default_depth", "active"];
const INVALID_KEY: &str = "invalid receiver key";
const BAD_SIGNATURE: &str = "signature verification failed";

/// Parses an endpoint id from the path; a malformed id is a 404 like an unknown one.
pub fn parse_endpoint_id(raw: &str) -> Result<EndpointId, AppError> {
    EndpointId::parse(raw).map_err(|_| AppError::NotFound("endpoint"))
}

/// The `{provider}` path segment of the receiver: unknown → 404 (DESIGN §4).
pub fn parse_provider_segment(raw: &str) -> Result<Provider, AppError> {
    Provider::parse(raw).ok_or(AppError::NotFound("inbound provider"))
}

/// A fresh URL key from the OS CSPRNG.
fn mint_url_key() -> Secret {
    Secret::new(rand::rngs::OsRng.sample_iter(&Alphanumeric).take(URL_KEY_LEN).map(char::from).collect::<String>())
}

/// The receiver URL of an endpoint: `<base>/v1/webhooks/incoming/<provider>/<key>`.
pub fn receiver_url(base: &str, provider: Provider, key: &str) -> String {
    format!("{}/v1/webhooks/incoming/{}/{key}", base.trim_end_matches('/'), provider.as_str())
}

fn parse_create_provider(fields: &Fields) -> Result<Provider, AppError> {
    let raw = fields.req_str("provider")?;
    Provider::parse(raw).ok_or_else(|| {
        AppError::validation(format!(
            "provider {} is not supported; must be one of generic, github, crowdstrike",
            crate::validation::quoted(raw)
        ))
    })
}

fn parse_signing_secret(fields: &Fields) -> Result<Option<Secret>, AppError> {
    match fields.opt_str("provider_signing_secret")? {
        None => Ok(None),
        Some(s) if s.is_empty() || s.chars().count() > MAX_SIGNING_SECRET_CHARS => Err(AppError::validation(format!(
            "provider_signing_secret must be 1 to {MAX_SIGNING_SECRET_CHARS} characters"
        ))),
        Some(s) => Ok(Some(Secret::new(s))),
    }
}

fn parse_default_scope(fields: &Fields) -> Result<Option<Value>, AppError> {
    match fields.raw("default_scope") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => {
            if v.to_string().len() > MAX_SCOPE_BYTES {
                return Err(AppError::validation(format!("default_scope must be at most {MAX_SCOPE_BYTES} bytes of JSON")));
            }
            Ok(Some(v.clone()))
        }
        Some(_) => Err(wrong_type("default_scope", "an object")),
    }
}

/// `POST /v1/webhooks/incoming/endpoints`.
///
/// Body: `provider` (required: `generic` | `github` | `crowdstrike`), `provider_signing_secret`
/// (1–256 characters), `default_scope` (object), `default_depth` (`quick` | `standard` | `deep`),
/// `active` (default true); unknown fields are refused. Returns the endpoint's view plus `url`,
/// the receiver URL with its key: the only time the key is ever shown. `base_url` is the public
/// base of this API (scheme and host, no trailing path).
pub async fn create_endpoint(ctx: &Context, caller: &Caller, body: Value, base_url: &str) -> Result<Value, AppError> {
    let fields = Fields::new(body)?;
    fields.deny_unknown(CREATE_FIELDS)?;
    let provider = parse_create_provider(&fields)?;
    let secret = parse_signing_secret(&fields)?;
    let default_scope = parse_default_scope(&fields)?;
    let default_depth = fields.opt_str("default_depth")?.map(|d| Depth::parse("default_depth", d)).transpose()?;
    let active = fields.opt_bool("active")?.unwrap_or(true);

    let now = ctx.clock.now();
    let id = EndpointId::generate(now.unix_ms() as u64);
    let key = mint_url_key();
    let endpoint = Endpoint {
        signing_secret_enc: secret.as_ref().map(|s| ctx.keyring.encrypt(s.expose(), id.as_str())),
        id,
        account_id: caller.account_id.clone(),
        provider,
        url_key_hash: ctx.keyring.lookup_hash(key.expose()),
        url_key_prefix: key.expose().chars().take(URL_KEY_PREFIX_LEN).collect(),
        active,
        default_scope,
        default_depth: default_depth.map(|d| d.as_str().to_owned()),
        created_at: now,
    };
    ctx.endpoints.insert(&endpoint).await?;
    tracing::info!(
        account_id = %endpoint.account_id,
        endpoint_id = %endpoint.id,
        provider = provider.as_str(),
        signature_verification = endpoint.signing_secret_enc.is_some(),
        "inbound endpoint created"
    );
    let mut view = endpoint.view();
    view["url"] = Value::String(receiver_url(base_url, provider, key.expose()));
    Ok(view)
}

/// `GET /v1/webhooks/incoming/endpoints`: `{"endpoints": [...]}`, never a key or a secret.
pub async fn list_endpoints(ctx: &Context, caller: &Caller) -> Result<Value, AppError> {
    let endpoints = ctx.endpoints.list(&caller.account_id).await?;
    Ok(json!({ "endpoints": endpoints.iter().map(Endpoint::view).collect::<Vec<_>>() }))
}

/// `DELETE /v1/webhooks/incoming/endpoints/{id}`: its receiver URL answers 401 from then on.
pub async fn delete_endpoint(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<(), AppError> {
    let id = parse_endpoint_id(raw_id)?;
    if !ctx.endpoints.delete(&caller.account_id, &id).await? {
        return Err(AppError::NotFound("endpoint"));
    }
    tracing::info!(account_id = %caller.account_id, endpoint_id = %id, "inbound endpoint deleted");
    Ok(())
}

/// `GET /v1/investigations/{id}`: another account's investigation is 404, like an unknown one.
pub async fn get_investigation(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<Value, AppError> {
    let id = InvestigationId::parse(raw_id).map_err(|_| AppError::NotFound("investigation"))?;
    let inv = ctx.investigations.get(&caller.account_id, &id).await?.ok_or(AppError::NotFound("investigation"))?;
    Ok(inv.view())
}

/// One POST to a receiver URL, as the route read it.
#[derive(Debug)]
pub struct InboundRequest<'a> {
    /// The `{provider}` path segment, already known to be a provider.
    pub provider: Provider,
    /// The `{key}` path segment: a credential, never logged.
    pub key: &'a str,
    pub headers: &'a Headers,
    /// The raw body, exactly as signed.
    pub body: &'a [u8],
}

/// What the receiver did with a request (both are HTTP 202).
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// An investigation was queued; `duplicate` when this was a redelivery of an event that
    /// already created it.
    Queued { investigation_id: InvestigationId, duplicate: bool },
    /// Verified but not acted on.
    Ignored { reason: String },
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

fn check_signature(ctx: &Context, endpoint: &Endpoint, req: &InboundRequest<'_>) -> Result<(), AppError> {
    let Some(enc) = &endpoint.signing_secret_enc else { return Ok(()) };
    let secret = ctx.keyring.decrypt(enc, endpoint.id.as_str()).map(Secret::new).map_err(|e| {
        AppError::Internal(format!("signing secret of endpoint {} could not be decrypted: {e}", endpoint.id))
    })?;
    let now_secs = ctx.clock.now().unix_seconds();
    verify_signature(endpoint.provider, secret.expose(), req.headers, req.body, now_secs).map_err(|e| {
        tracing::warn!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, provider = endpoint.provider.as_str(), reason = %e, "inbound signature refused");
        AppError::Unauthorized(BAD_SIGNATURE.into())
    })
}

/// `POST /v1/webhooks/incoming/{provider}/{key}` (no API key): authenticate by URL key, verify
/// the provider signature when the endpoint has a secret, recognise the event, and queue an
/// investigation (emitting `investigation.queued`) or report why it was ignored.
pub async fn receive(ctx: &Context, req: InboundRequest<'_>) -> Result<Received, AppError> {
    let endpoint = authenticate_key(ctx, req.provider, req.key).await?;
    check_signature(ctx, &endpoint, &req)?;
    let trigger = match recognize(endpoint.provider, req.headers, req.body)? {
        Recognition::Ignored(reason) => {
            tracing::info!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, provider = endpoint.provider.as_str(), reason = %reason, "inbound event ignored");
            return Ok(Received::Ignored { reason });
        }
        Recognition::Trigger(t) => *t,
    };
    queue_investigation(ctx, &endpoint, trigger).await
}

async fn queue_investigation(ctx: &Context, endpoint: &Endpoint, trigger: Trigger) -> Result<Received, AppError> {
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

    if let Some(existing_id) = ctx.investigations.insert(&inv, trigger.dedupe_key.as_deref()).await? {
        // A redelivery: nothing new, but finish the publish in case the first attempt crashed
        // before it (idempotent on the event id).
        match ctx.investigations.get(&endpoint.account_id, &existing_id).await? {
            Some(existing) => {
                publish_queued(ctx, &existing, severity).await?;
            }
            None => tracing::warn!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, investigation_id = %existing_id, "dedupe claim points at a missing investigation"),
        }
        tracing::info!(account_id = %endpoint.account_id, endpoint_id = %endpoint.id, investigation_id = %existing_id, "inbound redelivery; investigation already queued");
        return Ok(Received::Queued { investigation_id: existing_id, duplicate: true });
    }

    let published = match publish_queued(ctx, &inv, severity).await {
        Ok(n) => n,
        Err(e) => {
            // With a dedupe claim the provider's retry finishes this investigation; without one
            // nothing would, so take it back and let the retry start afresh.
            if trigger.dedupe_key.is_none() {
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
async fn publish_queued(ctx: &Context, inv: &Investigation, severity: Option<crate::validation::Severity>) -> Result<u32, AppError> {
    let event_id = EventId::parse(&format!("investigation.queued.{}", inv.id))
        .map_err(|e| AppError::Internal(format!("investigation event id: {e}")))?;
    let event_type = EventType::parse("investigation.queued").map_err(AppError::Internal)?;
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
    let published = publish_event(ctx, &inv.account_id, NewEvent { event_id, event_type, data, severity, tags }).await?;
    Ok(published.deliveries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeliveryStatus;
    use crate::services::subscriptions;
    use crate::testing::{caller, context, context_with, Memory};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use std::sync::Arc;

    const BASE: &str = "https://api.example.test";

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

    /// Creates an endpoint and returns (id, key).
    async fn endpoint(ctx: &Context, who: &Caller, body: Value) -> (String, String) {
        let created = create_endpoint(ctx, who, body, BASE).await.unwrap();
        let url = created["url"].as_str().unwrap();
        let key = url.rsplit('/').next().unwrap().to_owned();
        (created["id"].as_str().unwrap().to_owned(), key)
    }

    async fn post(ctx: &Context, provider: Provider, key: &str, hs: &[(&str, &str)], body: &[u8]) -> Result<Received, AppError> {
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
    async fn create_returns_the_url_once_and_list_never() {
        let ctx = context();
        let who = caller();
        let created = create_endpoint(&ctx, &who, json!({"provider": "github", "default_depth": "standard"}), "https://api.example.test/").await.unwrap();
        let url = created["url"].as_str().unwrap();
        let key = url.strip_prefix("https://api.example.test/v1/webhooks/incoming/github/").unwrap();
        assert_eq!(key.len(), URL_KEY_LEN);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(created["url_key_prefix"], key[..8]);
        assert_eq!(created["active"], true);
        assert_eq!(created["default_depth"], "standard");
        assert_eq!(created["signature_verification"], false);
        assert!(created["id"].as_str().unwrap().starts_with("ep_"));

        let listed = list_endpoints(&ctx, &who).await.unwrap();
        assert_eq!(listed["endpoints"].as_array().unwrap().len(), 1);
        assert!(!listed.to_string().contains(key));
        assert!(listed["endpoints"][0].get("url").is_none());
        let stored = ctx.endpoints.list(&who.account_id).await.unwrap().remove(0);
        assert_eq!(stored.url_key_hash, ctx.keyring.lookup_hash(key));
        assert!(list_endpoints(&ctx, &caller()).await.unwrap()["endpoints"].as_array().unwrap().is_empty());
    }

    #[tokio::test]
    async fn signing_secret_is_stored_encrypted() {
        let ctx = context();
        let who = caller();
        let created = create_endpoint(&ctx, &who, json!({"provider": "github", "provider_signing_secret": "gh-webhook-secret-value"}), BASE).await.unwrap();
        assert_eq!(created["signature_verification"], true);
        assert!(!created.to_string().contains("gh-webhook-secret-value"));
        let stored = ctx.endpoints.list(&who.account_id).await.unwrap().remove(0);
        let enc = stored.signing_secret_enc.clone().unwrap();
        assert!(!format!("{stored:?}").contains("gh-webhook-secret-value"));
        assert_eq!(ctx.keyring.decrypt(&enc, stored.id.as_str()).unwrap(), "gh-webhook-secret-value");
    }

    #[tokio::test]
    async fn create_validation_names_the_field() {
        let ctx = context();
        let who = caller();
        let cases = [
            (json!({}), "provider is required"),
            (json!({"provider": 1}), "provider must be a string"),
            (json!({"provider": "gitlab"}), "provider \"gitlab\" is not supported; must be one of generic, github, crowdstrike"),
            (json!({"provider": "GitHub"}), "provider \"GitHub\" is not supported"),
            (json!({"provider": "github", "provider_signing_secret": ""}), "provider_signing_secret must be 1 to 256 characters"),
            (json!({"provider": "github", "provider_signing_secret": "x".repeat(257)}), "provider_signing_secret must be 1 to 256 characters"),
            (json!({"provider": "github", "provider_signing_secret": 5}), "provider_signing_secret must be a string"),
            (json!({"provider": "github", "default_scope": "all"}), "default_scope must be an object"),
            (json!({"provider": "github", "default_depth": "fast"}), "default_depth must be one of quick, standard, deep"),
            (json!({"provider": "github", "default_depth": {"level": 1}}), "default_depth must be a string"),
            (json!({"provider": "github", "active": "yes"}), "active must be a boolean"),
            (json!({"provider": "github", "url": "x"}), "unknown field \"url\""),
            (json!("github"), "request body must be a JSON object"),
        ];
        for (input, want) in cases {
            match create_endpoint(&ctx, &who, input.clone(), BASE).await {
                Err(AppError::Validation(msg)) => assert!(msg.starts_with(want), "{input}: got {msg}"),
                other => panic!("{input}: expected validation error, got {other:?}"),
            }
        }
        assert!(ctx.endpoints.list(&who.account_id).await.unwrap().is_empty());
        // Nulls are absent.
        let ok = create_endpoint(&ctx, &who, json!({"provider": "generic", "provider_signing_secret": null, "default_scope": null, "default_depth": null}), BASE).await.unwrap();
        assert_eq!(ok["default_scope"], Value::Null);
    }

    #[tokio::test]
    async fn delete_is_404_for_unknown_foreign_or_malformed_ids_and_kills_the_url() {
        let ctx = context();
        let who = caller();
        let (id, key) = endpoint(&ctx, &who, json!({"provider": "generic"})).await;
        assert_eq!(delete_endpoint(&ctx, &caller(), &id).await, Err(AppError::NotFound("endpoint")));
        assert_eq!(delete_endpoint(&ctx, &who, "ep_nope").await, Err(AppError::NotFound("endpoint")));
        assert_eq!(delete_endpoint(&ctx, &who, &EndpointId::generate(5).to_string()).await, Err(AppError::NotFound("endpoint")));
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

        assert!(matches!(post(&ctx, Provider::Github, &signed, &[ev, ("x-hub-signature-256", &good)], &body).await, Ok(Received::Queued { .. })));
        assert_eq!(post(&ctx, Provider::Github, &signed, &[ev, ("x-hub-signature-256", &forged)], &body).await, Err(bad_signature()));
        assert_eq!(post(&ctx, Provider::Github, &signed, &[ev], &body).await, Err(bad_signature()));
        // No secret: no check, whatever the headers say.
        assert!(matches!(post(&ctx, Provider::Github, &open, &[ev, ("x-hub-signature-256", &forged)], &body).await, Ok(Received::Queued { .. })));
        assert!(matches!(post(&ctx, Provider::Github, &open, &[ev], &body).await, Ok(Received::Queued { .. })));

        // The signature is checked before anything else, ping included.
        let ping = br#"{"zen":"hi"}"#;
        let ping_sig = format!("sha256={}", hex::encode(hmac(secret.as_bytes(), &[ping])));
        assert_eq!(post(&ctx, Provider::Github, &signed, &[("x-github-event", "ping")], ping).await, Err(bad_signature()));
        let got = post(&ctx, Provider::Github, &signed, &[("x-github-event", "ping"), ("x-hub-signature-256", &ping_sig)], ping).await.unwrap();
        assert_eq!(got.view(), json!({"ignored": true, "reason": "ping"}));
        let push = post(&ctx, Provider::Github, &open, &[("x-github-event", "push")], b"{}").await.unwrap();
        assert_eq!(push.view(), json!({"ignored": true, "reason": "github event push is not acted on"}));
    }

    #[tokio::test]
    async fn crowdstrike_with_and_without_secret() {
        let ctx = context();
        let who = caller();
        let secret = "cs-hmac-secret";
        let (_, signed) = endpoint(&ctx, &who, json!({"provider": "crowdstrike", "provider_signing_secret": secret})).await;
        let (_, open) = endpoint(&ctx, &who, json!({"provider": "crowdstrike"})).await;
        let body = json!({"metadata": {"eventType": "EppDetectionSummaryEvent"}, "event": {"CompositeId": "c:1", "Name": "Malware", "Severity": 80}}).to_string();
        let ts = ctx.clock.now().unix_seconds().to_string();
        let good = STANDARD.encode(hmac(secret.as_bytes(), &[body.as_bytes(), ts.as_bytes()]));
        let forged = STANDARD.encode(hmac(b"nope", &[body.as_bytes(), ts.as_bytes()]));

        let ok = post(&ctx, Provider::Crowdstrike, &signed, &[("X-CS-Primary-Signature", &good), ("X-CS-Delivery-Timestamp", &ts)], body.as_bytes()).await;
        assert!(matches!(ok, Ok(Received::Queued { duplicate: false, .. })), "{ok:?}");
        assert_eq!(post(&ctx, Provider::Crowdstrike, &signed, &[("X-CS-Primary-Signature", &forged), ("X-CS-Delivery-Timestamp", &ts)], body.as_bytes()).await, Err(bad_signature()));
        assert_eq!(post(&ctx, Provider::Crowdstrike, &signed, &[("X-CS-Primary-Signature", &good)], body.as_bytes()).await, Err(bad_signature()));
        assert_eq!(post(&ctx, Provider::Crowdstrike, &signed, &[], body.as_bytes()).await, Err(bad_signature()));
        assert!(matches!(post(&ctx, Provider::Crowdstrike, &open, &[], body.as_bytes()).await, Ok(Received::Queued { .. })));
        let other = post(&ctx, Provider::Crowdstrike, &open, &[], br#"{"metadata":{"eventType":"AuthActivityAuditEvent"},"event":{}}"#).await.unwrap();
        assert_eq!(other, Received::Ignored { reason: "crowdstrike event AuthActivityAuditEvent is not acted on".into() });
    }

    #[tokio::test]
    async fn generic_with_and_without_secret() {
        let ctx = context();
        let who = caller();
        let (_, signed) = endpoint(&ctx, &who, json!({"provider": "generic", "provider_signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})).await;
        let (_, plain_secret) = endpoint(&ctx, &who, json!({"provider": "generic", "provider_signing_secret": "plain"})).await;
        let (_, open) = endpoint(&ctx, &who, json!({"provider": "generic", "default_depth": "deep", "default_scope": {"env": "prod"}})).await;
        let body = br#"{"query":"check the host that just alerted","agent_ids":["agent_1"]}"#;
        let ts = ctx.clock.now().unix_seconds().to_string();
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sw = format!("v1,{}", STANDARD.encode(hmac(&key, &[b"msg_1", b".", ts.as_bytes(), b".", body])));
        let sw_headers = [("webhook-id", "msg_1"), ("webhook-timestamp", ts.as_str()), ("webhook-signature", sw.as_str())];
        assert!(matches!(post(&ctx, Provider::Generic, &signed, &sw_headers, body).await, Ok(Received::Queued { .. })));
        let stale = (ctx.clock.now().unix_seconds() - 400).to_string();
        let sw_stale = format!("v1,{}", STANDARD.encode(hmac(&key, &[b"msg_2", b".", stale.as_bytes(), b".", body])));
        assert_eq!(
            post(&ctx, Provider::Generic, &signed, &[("webhook-id", "msg_2"), ("webhook-timestamp", &stale), ("webhook-signature", &sw_stale)], body).await,
            Err(bad_signature())
        );
        let hex_sig = format!("sha256={}", hex::encode(hmac(b"plain", &[body])));
        assert!(matches!(post(&ctx, Provider::Generic, &plain_secret, &[("X-Signature-256", &hex_sig)], body).await, Ok(Received::Queued { .. })));
        assert_eq!(post(&ctx, Provider::Generic, &plain_secret, &[("X-Signature-256", "sha256=00")], body).await, Err(bad_signature()));
        assert_eq!(post(&ctx, Provider::Generic, &plain_secret, &[], body).await, Err(bad_signature()));

        // Unsigned endpoint: defaults fill in what the event does not say.
        let Received::Queued { investigation_id, .. } = post(&ctx, Provider::Generic, &open, &[], body).await.unwrap() else { panic!("queued") };
        let inv = get_investigation(&ctx, &who, investigation_id.as_str()).await.unwrap();
        assert_eq!(inv["status"], "queued");
        assert_eq!(inv["trigger"], "generic");
        assert_eq!(inv["query"], "check the host that just alerted");
        assert_eq!(inv["agent_ids"], json!(["agent_1"]));
        assert_eq!(inv["depth"], "deep");
        assert_eq!(inv["scope"], json!({"env": "prod"}));
        let own = post(&ctx, Provider::Generic, &open, &[], br#"{"query":"q","depth":"quick","scope":{"env":"dev"}}"#).await.unwrap();
        let Received::Queued { investigation_id, .. } = own else { panic!("queued") };
        let inv = get_investigation(&ctx, &who, investigation_id.as_str()).await.unwrap();
        assert_eq!((inv["depth"].as_str(), &inv["scope"]), (Some("quick"), &json!({"env": "dev"})));

        assert_eq!(post(&ctx, Provider::Generic, &open, &[], br#"{"note":"hi"}"#).await, Ok(Received::Ignored { reason: "no query".into() }));
        assert!(matches!(post(&ctx, Provider::Generic, &open, &[], b"query=hi").await, Err(AppError::MalformedJson(_))));
    }

    #[tokio::test]
    async fn redelivery_creates_one_investigation_and_subscribers_get_one_delivery() {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let who = caller();
        subscriptions::create(&ctx, &who, json!({"url": "https://hooks.example.com/a", "events": ["investigation.queued"], "filters": {"tags": {"provider": "github"}}})).await.unwrap();
        subscriptions::create(&ctx, &who, json!({"url": "https://hooks.example.com/b", "events": ["investigation.*"], "filters": {"min_severity": "critical"}})).await.unwrap();
        let (ep_id, key) = endpoint(&ctx, &who, json!({"provider": "github", "default_depth": "standard"})).await;
        let hs = [("x-github-event", "code_scanning_alert"), ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")];
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
        subscriptions::create(&ctx, &who, json!({"url": "https://hooks.example.com/a", "events": ["investigation.queued"]})).await.unwrap();
        let (_, key) = endpoint(&ctx, &who, json!({"provider": "generic"})).await;
        let hs = [("webhook-id", "msg_crash")];
        let body = br#"{"query":"q"}"#;
        let Received::Queued { investigation_id, .. } = post(&ctx, Provider::Generic, &key, &hs, body).await.unwrap() else { panic!() };
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

    #[tokio::test]
    async fn investigations_are_invisible_to_other_accounts() {
        let ctx = context();
        let who = caller();
        let (_, key) = endpoint(&ctx, &who, json!({"provider": "generic"})).await;
        let Received::Queued { investigation_id, .. } = post(&ctx, Provider::Generic, &key, &[], br#"{"query":"q"}"#).await.unwrap() else { panic!() };
        assert!(get_investigation(&ctx, &who, investigation_id.as_str()).await.is_ok());
        assert_eq!(get_investigation(&ctx, &caller(), investigation_id.as_str()).await, Err(AppError::NotFound("investigation")));
        assert_eq!(get_investigation(&ctx, &who, "inv_bad").await, Err(AppError::NotFound("investigation")));
    }
}
