//! The token endpoint, RFC 6749 §4.4: the [`TokenSource`] port and the protocol around it.
//!
//! The adapter only moves bytes (over the same guarded HTTPS client as deliveries, so the SSRF
//! guard applies to the token endpoint's resolved address too); what is sent and how the answer
//! reads is decided here: `grant_type=client_credentials` (plus `scope`, `audience`)
//! form-encoded, the client authenticated with HTTP Basic, a JSON answer with `access_token` and
//! `expires_in`. A failure is the attempt's error, worded for the delivery log
//! (`oauth2 token: HTTP 400 invalid_client`), never with the secret or a token in it.

use crate::secret::Secret;
use crate::validation::TargetUrl;
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use std::fmt;

/// Most bytes of a token response read: JWT access tokens run to a few KiB.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest access token accepted (it goes into every request's `Authorization` header).
pub const MAX_ACCESS_TOKEN_LEN: usize = 16 * 1024;

/// One client credentials grant to ask for.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    /// The token endpoint.
    pub token_url: &'a TargetUrl,
    /// HTTP Basic user name.
    pub client_id: &'a str,
    /// HTTP Basic password.
    pub client_secret: &'a Secret,
    /// Sent as `scope` when given.
    pub scope: Option<&'a str>,
    /// Sent as `audience` when given.
    pub audience: Option<&'a str>,
}

impl TokenRequest<'_> {
    /// The `application/x-www-form-urlencoded` body.
    pub fn form_body(&self) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = self.scope {
            form.append_pair("scope", scope);
        }
        if let Some(audience) = self.audience {
            form.append_pair("audience", audience);
        }
        form.finish()
    }

    /// The `Authorization` header value: `Basic base64(id:secret)`, each form-encoded first as
    /// RFC 6749 §2.3.1 says (a no-op for the usual letters, digits, `-`, `.`, `_`).
    pub fn basic_authorization(&self) -> Secret {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(self.client_id), encode(self.client_secret.expose()));
        Secret::new(format!("Basic {}", STANDARD.encode(pair)))
    }
}

/// A token the endpoint issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token; prints as `***`.
    pub token: Secret,
    /// `expires_in` in seconds; None when the endpoint did not say.
    pub expires_in: Option<u64>,
}

/// Why no token was had; the `Display` is the attempt's error in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The endpoint answered non-2xx; `error` is the OAuth `error` code when the body had one.
    Http {
        /// The HTTP status.
        status: u16,
        /// `invalid_client`, `invalid_scope`, …
        error: Option<String>,
    },
    /// No answer: refused by the SSRF guard, DNS, connection, TLS, timeout.
    Transport(String),
    /// A 2xx that is not a usable token response.
    Invalid(&'static str),
    /// This container has no token client (a context built without one).
    NoClient,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oauth2 token: ")?;
        match self {
            Self::Http { status, error: Some(e) } => write!(f, "HTTP {status} {e}"),
            Self::Http { status, error: None } => write!(f, "HTTP {status}"),
            Self::Transport(e) => f.write_str(e),
            Self::Invalid(why) => f.write_str(why),
            Self::NoClient => f.write_str("no token client in this container"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Gets tokens from a token endpoint. The adapter posts [`TokenRequest::form_body`] with
/// [`TokenRequest::basic_authorization`] over the delivery client (HTTPS only, the SSRF guard on
/// the resolved address, no redirects, a timeout, at most [`MAX_TOKEN_RESPONSE_BYTES`] read) and
/// reads the answer with [`read_token_response`]. Needs no IAM action, only egress.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// One token fetch; never cached here (see [`super::cache::TokenCache`]).
    async fn fetch(&self, request: &TokenRequest<'_>) -> Result<AccessToken, TokenError>;
}

/// Reads a token endpoint's answer: a 2xx JSON object with a string `access_token` (token type
/// `Bearer` when given) and an optional numeric `expires_in`; otherwise the error the attempt
/// shows, with the OAuth `error` code of a failed answer when it has one.
pub fn read_token_response(status: u16, body: &str) -> Result<AccessToken, TokenError> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    if !(200..300).contains(&status) {
        let error = json.as_ref().and_then(|j| j.get("error")).and_then(Value::as_str).map(error_code);
        return Err(TokenError::Http { status, error });
    }
    let json = json.filter(Value::is_object).ok_or(TokenError::Invalid("response is not a JSON object"))?;
    let token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Invalid("response has no access_token"))?;
    if token.len() > MAX_ACCESS_TOKEN_LEN || !token.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(TokenError::Invalid("access_token is not a usable header value"));
    }
    if let Some(kind) = json.get("token_type").and_then(Value::as_str) {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Invalid("token_type is not Bearer"));
        }
    }
    let expires_in = json.get("expires_in").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
    Ok(AccessToken { token: Secret::new(token), expires_in })
}

/// An OAuth `error` code as the log shows it: the characters RFC 6749 allows, at most 64.
fn error_code(raw: &str) -> String {
    raw.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(url: &'a TargetUrl, secret: &'a Secret) -> TokenRequest<'a> {
        TokenRequest { token_url: url, client_id: "puck client", client_secret: secret, scope: None, audience: None }
    }

    #[test]
    fn the_grant_is_form_encoded_and_the_client_authenticates_with_basic() {
        let url = TargetUrl::parse("https://auth.example.com/token").unwrap();
        let secret = Secret::new("p@ss:word");
        let plain = request(&url, &secret);
        assert_eq!(plain.form_body(), "grant_type=client_credentials");
        let full = TokenRequest { scope: Some("a b"), audience: Some("https://api.example/"), ..plain };
        assert_eq!(full.form_body(), "grant_type=client_credentials&scope=a+b&audience=https%3A%2F%2Fapi.example%2F");
        let basic = plain.basic_authorization();
        let decoded = STANDARD.decode(basic.expose().strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "puck+client:p%40ss%3Aword");
        assert_eq!(format!("{basic:?}"), "***");
    }

    #[test]
    fn a_token_response_is_read_and_failures_name_what_went_wrong() {
        let ok = read_token_response(200, r#"{"access_token":"tok-1","token_type":"bearer","expires_in":3600}"#);
        assert_eq!(ok, Ok(AccessToken { token: Secret::new("tok-1"), expires_in: Some(3600) }));
        let no_expiry = read_token_response(200, r#"{"access_token":"tok-1"}"#).unwrap();
        assert_eq!(no_expiry.expires_in, None);
        let as_text = read_token_response(200, r#"{"access_token":"tok-1","expires_in":"60"}"#).unwrap();
        assert_eq!(as_text.expires_in, Some(60));
        let cases = [
            (
                400,
                r#"{"error":"invalid_client","error_description":"bad secret"}"#,
                "oauth2 token: HTTP 400 invalid_client",
            ),
            (503, "<html>down</html>", "oauth2 token: HTTP 503"),
            (200, "not json", "oauth2 token: response is not a JSON object"),
            (200, r#"{"token":"x"}"#, "oauth2 token: response has no access_token"),
            (200, r#"{"access_token":"a b"}"#, "oauth2 token: access_token is not a usable header value"),
            (200, r#"{"access_token":"x","token_type":"mac"}"#, "oauth2 token: token_type is not Bearer"),
        ];
        for (status, body, want) in cases {
            assert_eq!(read_token_response(status, body).unwrap_err().to_string(), want, "{body}");
        }
        let hostile = read_token_response(401, &format!(r#"{{"error":"x\r\n{}"}}"#, "y".repeat(500))).unwrap_err();
        assert_eq!(hostile.to_string().len(), "oauth2 token: HTTP 401 ".len() + 64);
    }
}
