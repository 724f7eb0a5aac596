//! Inbound endpoints: an account's receiver URLs for GitHub, CrowdStrike or any system that can
//! POST JSON (docs/inbound.md, docs/security.md). What a receiver does with a request is in
//! [`super::receive`].
//!
//! An endpoint's URL key is the credential of its receiver URL. It is shown once, at creation,
//! and stored only as a keyed hash that is also its lookup key, so the receiver finds the endpoint
//! with one read and never compares keys in application code. A provider signing secret, when
//! set, is stored AES-256-GCM-encrypted with the endpoint id as associated data.

use super::json_fields::{wrong_type, Fields};
use super::Context;
use crate::error::AppError;
use crate::ids::EndpointId;
use crate::model::{Caller, Endpoint, Provider};
use crate::providers::Depth;
use crate::secret::Secret;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};

/// Length of a receiver URL key: 48 characters from `[A-Za-z0-9]` (~285 bits).
pub const URL_KEY_LEN: usize = 48;
/// How much of the URL key is kept in clear to recognise an endpoint in a list.
pub const URL_KEY_PREFIX_LEN: usize = 8;
/// Bounds of `provider_signing_secret` (characters).
pub const MAX_SIGNING_SECRET_CHARS: usize = 256;
/// Largest `default_scope`, as serialised JSON.
pub const MAX_SCOPE_BYTES: usize = 8 * 1024;

const CREATE_FIELDS: &[&str] = &["provider", "provider_signing_secret", "default_scope", "default_depth", "active"];

/// Parses an endpoint id from the path; a malformed id is a 404 like an unknown one.
pub fn parse_endpoint_id(raw: &str) -> Result<EndpointId, AppError> {
    EndpointId::parse(raw).map_err(|_| AppError::NotFound("endpoint"))
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
        AppError::validation(
            "provider",
            format!(
                "provider {} is not supported; must be one of generic, github, crowdstrike",
                crate::validation::quoted(raw)
            ),
        )
    })
}

fn parse_signing_secret(fields: &Fields) -> Result<Option<Secret>, AppError> {
    match fields.opt_str("provider_signing_secret")? {
        None => Ok(None),
        Some(s) if s.is_empty() || s.chars().count() > MAX_SIGNING_SECRET_CHARS => Err(AppError::validation(
            "provider_signing_secret",
            format!("provider_signing_secret must be 1 to {MAX_SIGNING_SECRET_CHARS} characters"),
        )),
        Some(s) => Ok(Some(Secret::new(s))),
    }
}

fn parse_default_scope(fields: &Fields) -> Result<Option<Value>, AppError> {
    match fields.raw("default_scope") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => {
            if v.to_string().len() > MAX_SCOPE_BYTES {
                return Err(AppError::validation(
                    "default_scope",
                    format!("default_scope must be at most {MAX_SCOPE_BYTES} bytes of JSON"),
                ));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fakes::{caller, context};

    pub(crate) const BASE: &str = "https://api.example.test";

    /// Creates an endpoint and returns (id, key).
    pub(crate) async fn endpoint(ctx: &Context, who: &Caller, body: Value) -> (String, String) {
        let created = create_endpoint(ctx, who, body, BASE).await.unwrap();
        let url = created["url"].as_str().unwrap();
        let key = url.rsplit('/').next().unwrap().to_owned();
        (created["id"].as_str().unwrap().to_owned(), key)
    }

    #[tokio::test]
    async fn create_returns_the_url_once_and_list_never() {
        let ctx = context();
        let who = caller();
        let created = create_endpoint(
            &ctx,
            &who,
            json!({"provider": "github", "default_depth": "standard"}),
            "https://api.example.test/",
        )
        .await
        .unwrap();
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
        let created = create_endpoint(
            &ctx,
            &who,
            json!({"provider": "github", "provider_signing_secret": "gh-webhook-secret-value"}),
            BASE,
        )
        .await
        .unwrap();
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
            (
                json!({"provider": "gitlab"}),
                "provider \"gitlab\" is not supported; must be one of generic, github, crowdstrike",
            ),
            (json!({"provider": "GitHub"}), "provider \"GitHub\" is not supported"),
            (
                json!({"provider": "github", "provider_signing_secret": ""}),
                "provider_signing_secret must be 1 to 256 characters",
            ),
            (
                json!({"provider": "github", "provider_signing_secret": "x".repeat(257)}),
                "provider_signing_secret must be 1 to 256 characters",
            ),
            (json!({"provider": "github", "provider_signing_secret": 5}), "provider_signing_secret must be a string"),
            (json!({"provider": "github", "default_scope": "all"}), "default_scope must be an object"),
            (
                json!({"provider": "github", "default_depth": "fast"}),
                "default_depth must be one of quick, standard, deep",
            ),
            (json!({"provider": "github", "default_depth": {"level": 1}}), "default_depth must be a string"),
            (json!({"provider": "github", "active": "yes"}), "active must be a boolean"),
            (json!({"provider": "github", "url": "x"}), "unknown field \"url\""),
            (json!("github"), "request body must be a JSON object"),
        ];
        for (input, want) in cases {
            match create_endpoint(&ctx, &who, input.clone(), BASE).await {
                Err(AppError::Validation(msg)) => assert!(msg.message.starts_with(want), "{input}: got {msg}"),
                other => panic!("{input}: expected validation error, got {other:?}"),
            }
        }
        assert!(ctx.endpoints.list(&who.account_id).await.unwrap().is_empty());
        // Nulls are absent.
        let ok = create_endpoint(&ctx, &who, json!({"provider": "generic", "provider_signing_secret": null, "default_scope": null, "default_depth": null}), BASE).await.unwrap();
        assert_eq!(ok["default_scope"], Value::Null);
    }
}
