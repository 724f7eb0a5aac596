//! [`TokenSource`] on the delivery client: OAuth 2.0 token fetches leave by the same path as
//! deliveries (HTTPS only, the SSRF guard on the resolved address, no proxy, no redirects, the
//! delivery timeout), so a `token_url` can reach nothing a subscription URL could not.
//!
//! What is sent and how the answer reads is core's ([`puck_core::oauth::token`]); this only
//! moves the bytes. IAM: none, only egress.

use super::{HttpSender, USER_AGENT};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use puck_core::oauth::token::{
    read_token_response, AccessToken, TokenError, TokenRequest, TokenSource, MAX_TOKEN_RESPONSE_BYTES,
};

/// The grant as hyper takes it, to the parsed `token_url`; None when a value cannot be sent
/// (validated at write time).
fn grant(request: &TokenRequest<'_>) -> Option<http::Request<Full<Bytes>>> {
    http::Request::post(request.token_url.as_str())
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, USER_AGENT)
        .header(http::header::AUTHORIZATION, request.basic_authorization().expose())
        .body(Full::new(Bytes::from(request.form_body())))
        .ok()
}

#[async_trait]
impl TokenSource for HttpSender {
    async fn fetch(&self, request: &TokenRequest<'_>) -> Result<AccessToken, TokenError> {
        let outcome = self.post(grant(request), MAX_TOKEN_RESPONSE_BYTES).await;
        match outcome.status {
            Some(status) => read_token_response(status, &outcome.body),
            None => Err(TokenError::Transport(outcome.error.unwrap_or_else(|| "no response".into()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender::connect::BLOCKED;
    use crate::SenderOptions;
    use puck_core::secret::Secret;
    use puck_core::validation::TargetUrl;
    use std::time::Duration;

    fn sender(allow_private_targets: bool) -> HttpSender {
        HttpSender::new(SenderOptions { timeout: Duration::from_secs(2), allow_private_targets, extra_ca_pem: None })
            .unwrap()
    }

    async fn fetch(sender: &HttpSender, url: &str) -> Result<AccessToken, TokenError> {
        // Stored URLs were checked when written; the guard at fetch time is what is tested here.
        let url = TargetUrl::parse_with(url, true).unwrap();
        let secret = Secret::new("s");
        let request =
            TokenRequest { token_url: &url, client_id: "c", client_secret: &secret, scope: None, audience: None };
        sender.fetch(&request).await
    }

    #[tokio::test]
    async fn the_token_endpoint_is_behind_the_same_ssrf_guard_as_receivers() {
        let guarded = sender(false);
        let blocked = fetch(&guarded, "https://localhost:1/token").await.unwrap_err();
        assert_eq!(blocked, TokenError::Transport(BLOCKED.into()));
        assert_eq!(blocked.to_string(), format!("oauth2 token: {BLOCKED}"));
        let literal = fetch(&guarded, "https://169.254.169.254/latest/token").await.unwrap_err();
        assert_eq!(literal, TokenError::Transport("blocked: private address".into()));
    }

    #[tokio::test]
    async fn an_unreachable_token_endpoint_is_the_attempts_error() {
        let refused = fetch(&sender(true), "https://127.0.0.1:1/token").await.unwrap_err();
        assert_eq!(refused.to_string(), "oauth2 token: connection refused");
    }

    #[test]
    fn the_grant_is_a_form_post_with_basic_client_authentication() {
        let url = TargetUrl::parse("https://auth.example.com/token").unwrap();
        let secret = Secret::new("s");
        let request =
            TokenRequest { token_url: &url, client_id: "c", client_secret: &secret, scope: Some("x"), audience: None };
        let built = grant(&request).unwrap();
        assert_eq!(built.headers()["content-type"], "application/x-www-form-urlencoded");
        assert_eq!(built.headers()["authorization"], "Basic Yzpz");
        assert_eq!(built.uri(), "https://auth.example.com/token");
    }
}
