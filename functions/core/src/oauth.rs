//! OAuth 2.0 client credentials for HTTPS receivers: a subscription's `auth`.
//!
//! Receivers behind an API gateway often accept only a bearer token from their own authorization
//! server. With `auth` set, the dispatcher gets a token from `token_url` before an attempt
//! ([`token`], RFC 6749 §4.4), keeps it per subscription in the warm container until shortly
//! before it expires ([`cache`]), and sends `Authorization: Bearer <token>`.
//!
//! This module parses the API's `auth` object into a typed value (400s name the field:
//! `auth.token_url: must use https`) and keeps it as stored: `client_secret` sealed like the
//! signing secret, shown back only as `"***"`.

pub mod cache;
pub mod token;

use crate::crypto::Keyring;
use crate::error::{AppError, ValidationError};
use crate::ids::SubscriptionId;
use crate::model::REDACTED;
use crate::secret::Secret;
use crate::validation::{quoted, TargetUrl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The one `auth.type` there is.
pub const CLIENT_CREDENTIALS: &str = "oauth2_client_credentials";
/// Fields an `auth` object may have.
const AUTH_FIELDS: [&str; 6] = ["type", "token_url", "client_id", "client_secret", "scope", "audience"];
/// Longest `client_id`, `scope` or `audience`, in bytes.
pub const MAX_AUTH_TEXT_LEN: usize = 1024;

/// `auth` as the API takes it, parsed: the secret still in clear, never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// HTTPS, with the same checks as a subscription URL (the SSRF guard again when fetched).
    pub token_url: TargetUrl,
    /// Sent as the user name of HTTP Basic client authentication.
    pub client_id: String,
    /// Sent as the password of HTTP Basic client authentication; stored encrypted.
    pub client_secret: Secret,
    /// The `scope` parameter of the grant; None: not sent.
    pub scope: Option<String>,
    /// The `audience` parameter of the grant (Auth0, Okta and others use it); None: not sent.
    pub audience: Option<String>,
}

/// A subscription's `auth` as stored: everything readable but the client secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAuth {
    /// Where tokens are fetched.
    pub token_url: TargetUrl,
    /// The client id, shown in views.
    pub client_id: String,
    /// The client secret, AES-256-GCM with [`StoredAuth::secret_context`] as associated data.
    /// Every write of `auth` seals it with a fresh nonce, so it also names the configuration.
    pub client_secret_enc: String,
    /// The `scope` parameter; None when not sent.
    #[serde(default)]
    pub scope: Option<String>,
    /// The `audience` parameter; None when not sent.
    #[serde(default)]
    pub audience: Option<String>,
}

impl StoredAuth {
    /// Seals `creds` for the subscription `id`.
    pub fn seal(creds: ClientCredentials, id: &SubscriptionId, keyring: &Keyring) -> Self {
        Self {
            client_secret_enc: keyring.encrypt(creds.client_secret.expose(), &Self::secret_context(id)),
            token_url: creds.token_url,
            client_id: creds.client_id,
            scope: creds.scope,
            audience: creds.audience,
        }
    }

    /// The associated data of `client_secret_enc`: ties the ciphertext to its subscription.
    pub fn secret_context(id: &SubscriptionId) -> String {
        format!("{id}#oauth")
    }

    /// The client secret, decrypted for one token fetch.
    pub fn client_secret(&self, id: &SubscriptionId, keyring: &Keyring) -> Result<Secret, AppError> {
        keyring
            .decrypt(&self.client_secret_enc, &Self::secret_context(id))
            .map(Secret::new)
            .map_err(|e| AppError::internal("stored oauth client secret", e))
    }

    /// What a token of subscription `id` is cached under: the subscription and its whole `auth`,
    /// so a changed configuration or a new secret is never served a token fetched for the old one.
    pub fn cache_key(&self, id: &SubscriptionId) -> String {
        let parts = [
            id.as_str(),
            self.token_url.as_str(),
            &self.client_id,
            self.scope.as_deref().unwrap_or(""),
            self.audience.as_deref().unwrap_or(""),
            &self.client_secret_enc,
        ];
        parts.join("\n")
    }

    /// The public shape: the client secret as `"***"`.
    pub fn view(&self) -> Value {
        json!({
            "type": CLIENT_CREDENTIALS,
            "token_url": self.token_url,
            "client_id": self.client_id,
            "client_secret": REDACTED,
            "scope": self.scope,
            "audience": self.audience,
        })
    }
}

fn invalid(field: &str, message: impl std::fmt::Display) -> ValidationError {
    ValidationError::new(format!("auth.{field}"), format!("auth.{field}: {message}"))
}

/// Parses the `auth` object; `allow_private` is the local stack's switch, as for `url`.
pub fn parse_auth(value: &Value, allow_private: bool) -> Result<ClientCredentials, ValidationError> {
    let obj = value.as_object().ok_or_else(|| ValidationError::new("auth", "auth must be an object or null"))?;
    if let Some(k) = obj.keys().find(|k| !AUTH_FIELDS.contains(&k.as_str())) {
        return Err(ValidationError::new(
            "auth",
            format!("unknown field auth.{}", crate::ids::truncate_for_message(k)),
        ));
    }
    match obj.get("type") {
        Some(Value::String(t)) if t == CLIENT_CREDENTIALS => {}
        None | Some(Value::Null) => return Err(invalid("type", format!("is required (\"{CLIENT_CREDENTIALS}\")"))),
        Some(Value::String(t)) => {
            return Err(invalid("type", format!("{} is not a known type (only \"{CLIENT_CREDENTIALS}\")", quoted(t))))
        }
        Some(_) => return Err(invalid("type", "must be a string")),
    }
    let token_url = required(obj, "token_url")?;
    let token_url = TargetUrl::parse_with(token_url, allow_private).map_err(|e| {
        // TargetUrl's messages start with the name of the subscription's field, `url`.
        invalid("token_url", e.message.strip_prefix("url ").unwrap_or(&e.message))
    })?;
    Ok(ClientCredentials {
        token_url,
        client_id: printable("client_id", required(obj, "client_id")?)?,
        client_secret: Secret::new(printable("client_secret", required(obj, "client_secret")?)?),
        scope: optional(obj, "scope")?.map(|s| printable("scope", s)).transpose()?,
        audience: optional(obj, "audience")?.map(|s| printable("audience", s)).transpose()?,
    })
}

fn optional<'a>(obj: &'a serde_json::Map<String, Value>, field: &str) -> Result<Option<&'a str>, ValidationError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn required<'a>(obj: &'a serde_json::Map<String, Value>, field: &str) -> Result<&'a str, ValidationError> {
    optional(obj, field)?.ok_or_else(|| invalid(field, "is required"))
}

/// 1 to [`MAX_AUTH_TEXT_LEN`] printable ASCII characters: what RFC 6749 allows in these values,
/// and what can go into a form and a header as is.
fn printable(field: &str, value: &str) -> Result<String, ValidationError> {
    if value.is_empty() || value.len() > MAX_AUTH_TEXT_LEN || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(invalid(field, format!("must be 1 to {MAX_AUTH_TEXT_LEN} printable ASCII characters")));
    }
    Ok(value.to_owned())
}

/// `auth` may not be combined with a custom `Authorization` header: both would set the same
/// request header.
pub fn check_no_authorization_header(header_names: &[String]) -> Result<(), ValidationError> {
    match header_names.iter().find(|n| n.eq_ignore_ascii_case("authorization")) {
        Some(name) => Err(ValidationError::new(
            "auth",
            format!("auth cannot be combined with a custom {name} header (headers.{name}): the token is sent there"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(extra: Value) -> Value {
        let mut v = json!({
            "type": "oauth2_client_credentials",
            "token_url": "https://auth.example.com/oauth/token",
            "client_id": "puck-client",
            "client_secret": "s3cr3t-value",
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn a_full_auth_object_parses_and_the_secret_never_prints() {
        let creds =
            parse_auth(&auth(json!({"scope": "webhooks:write", "audience": "https://api.example"})), false).unwrap();
        assert_eq!(creds.token_url.as_str(), "https://auth.example.com/oauth/token");
        assert_eq!(
            (creds.scope.as_deref(), creds.audience.as_deref()),
            (Some("webhooks:write"), Some("https://api.example"))
        );
        assert!(!format!("{creds:?}").contains("s3cr3t"));
    }

    #[test]
    fn bad_auth_is_a_400_naming_the_field() {
        let cases = [
            (json!("bearer x"), "auth must be an object"),
            (auth(json!({"type": "basic"})), "auth.type: \"basic\" is not a known type"),
            (auth(json!({"type": null})), "auth.type: is required"),
            (auth(json!({"token_url": "http://auth.example.com/t"})), "auth.token_url: must use https"),
            (auth(json!({"token_url": "https://10.0.0.1/t"})), "auth.token_url: host is a private"),
            (auth(json!({"token_url": "https://localhost/t"})), "auth.token_url: host is a local name"),
            (auth(json!({"token_url": null})), "auth.token_url: is required"),
            (auth(json!({"client_id": null})), "auth.client_id: is required"),
            (auth(json!({"client_id": ""})), "auth.client_id: must be 1 to 1024"),
            (auth(json!({"client_secret": null})), "auth.client_secret: is required"),
            (auth(json!({"client_secret": 5})), "auth.client_secret: must be a string"),
            (auth(json!({"client_secret": "a\nb"})), "auth.client_secret: must be 1 to 1024"),
            (auth(json!({"scope": ["a"]})), "auth.scope: must be a string"),
            (auth(json!({"audience": "x".repeat(1025)})), "auth.audience: must be 1 to 1024"),
            (auth(json!({"grant_type": "password"})), "unknown field auth.grant_type"),
        ];
        for (input, want) in cases {
            let err = parse_auth(&input, false).unwrap_err();
            assert!(err.message.starts_with(want), "{input}: got {}", err.message);
            assert!(err.field.starts_with("auth"), "{input}: field {}", err.field);
        }
    }

    #[test]
    fn stored_auth_seals_the_secret_shows_stars_and_keys_the_cache_by_configuration() {
        let keyring = Keyring::from_master_key(b"unit-test master key, 32 bytes+!");
        let id = SubscriptionId::generate(1);
        let stored = StoredAuth::seal(parse_auth(&auth(json!({})), false).unwrap(), &id, &keyring);
        assert!(!serde_json::to_string(&stored).unwrap().contains("s3cr3t"));
        assert_eq!(stored.client_secret(&id, &keyring).unwrap().expose(), "s3cr3t-value");
        assert!(stored.client_secret(&SubscriptionId::generate(2), &keyring).is_err(), "bound to its subscription");
        assert_eq!(stored.view()["client_secret"], "***");
        assert_eq!(stored.view()["type"], CLIENT_CREDENTIALS);
        let resealed = StoredAuth::seal(parse_auth(&auth(json!({})), false).unwrap(), &id, &keyring);
        assert_ne!(stored.cache_key(&id), resealed.cache_key(&id), "a new write of auth is a new cache key");
        let rescoped = StoredAuth { scope: Some("other".into()), ..stored.clone() };
        assert_ne!(stored.cache_key(&id), rescoped.cache_key(&id));
    }

    #[test]
    fn an_authorization_custom_header_conflicts_with_auth() {
        assert!(check_no_authorization_header(&["X-Team".into()]).is_ok());
        let err = check_no_authorization_header(&["authorization".into()]).unwrap_err();
        assert!(err.message.contains("headers.authorization"), "{}", err.message);
    }
}
