//! The OAuth 2.0 bearer token of an attempt (docs/api.md, "OAuth 2.0 receivers").
//!
//! For a subscription with `auth`, a token comes first, from the container's
//! [`crate::oauth::cache::TokenCache`], and goes out as `Authorization: Bearer <token>` (the
//! delivery log shows the header as `***`). Without a token the attempt fails with the token
//! endpoint's error and the receiver is not contacted; the delivery is retried on its schedule
//! like any failed attempt. A 401 from the receiver drops the token, so the retry fetches anew.

use super::Dispatcher;
use crate::error::AppError;
use crate::model::Subscription;
use crate::oauth::token::{TokenError, TokenRequest};
use crate::ports::{OutboundRequest, SendOutcome};
use crate::secret::Secret;

impl Dispatcher {
    /// Sends one attempt's `request` to the receiver, with the bearer token added when the
    /// subscription has `auth`.
    pub(super) async fn send_attempt(
        &self,
        sub: &Subscription,
        request: &mut OutboundRequest,
    ) -> Result<SendOutcome, AppError> {
        let Some(auth) = &sub.auth else { return Ok(self.sender.send(request).await) };
        let started = self.ctx.clock.now();
        let key = auth.cache_key(&sub.id);
        let token = match self.bearer_token(sub, &key).await? {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(account_id = %sub.account_id, subscription_id = %sub.id, error = %e, "no oauth2 token: the attempt fails without a request to the receiver");
                let elapsed = self.ctx.clock.now().unix_ms().saturating_sub(started.unix_ms());
                let duration_ms = u64::try_from(elapsed).unwrap_or(0);
                return Ok(SendOutcome { error: Some(e.to_string()), duration_ms, ..SendOutcome::default() });
            }
        };
        request.headers.push(("authorization".into(), format!("Bearer {}", token.expose())));
        let outcome = self.sender.send(request).await;
        if let (Some(401), Some(tokens)) = (outcome.status, &self.ctx.tokens) {
            tokens.forget(&key, &token).await;
            tracing::info!(account_id = %sub.account_id, subscription_id = %sub.id, "receiver answered 401: oauth2 token dropped, the next attempt fetches a new one");
        }
        Ok(outcome)
    }

    /// The subscription's token, cached or fetched; the outer error is a stored secret that
    /// does not decrypt (a bug or corrupt state), the inner one the token endpoint's answer.
    async fn bearer_token(&self, sub: &Subscription, key: &str) -> Result<Result<Secret, TokenError>, AppError> {
        let (Some(auth), Some(tokens)) = (&sub.auth, &self.ctx.tokens) else { return Ok(Err(TokenError::NoClient)) };
        let client_secret = auth.client_secret(&sub.id, &self.ctx.keyring)?;
        let request = TokenRequest {
            token_url: &auth.token_url,
            client_id: &auth.client_id,
            client_secret: &client_secret,
            scope: auth.scope.as_deref(),
            audience: auth.audience.as_deref(),
        };
        Ok(tokens.token(key, &request, self.ctx.clock.now()).await)
    }
}

#[cfg(test)]
mod tests {
    use crate::fakes::{caller, context};
    use crate::model::DeliveryStatus;
    use crate::oauth::cache::TokenCache;
    use crate::oauth::token::{AccessToken, TokenError, TokenRequest, TokenSource};
    use crate::ports::{OutboundRequest, SendOutcome, WebhookSender};
    use crate::secret::Secret;
    use crate::services::{subscriptions, test_events};
    use async_trait::async_trait;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    /// Answers with the statuses given, in order (200 after), recording each request.
    #[derive(Default)]
    struct Receiver {
        statuses: Mutex<Vec<u16>>,
        seen: Mutex<Vec<OutboundRequest>>,
    }

    #[async_trait]
    impl WebhookSender for Receiver {
        async fn send(&self, request: &OutboundRequest) -> SendOutcome {
            self.seen.lock().unwrap().push(request.clone());
            let mut statuses = self.statuses.lock().unwrap();
            let status = if statuses.is_empty() { 200 } else { statuses.remove(0) };
            SendOutcome { status: Some(status), ..SendOutcome::default() }
        }
    }

    /// Issues `tok-1`, `tok-2`, … (an hour each), or refuses with 400 invalid_client.
    #[derive(Default)]
    struct Endpoint {
        grants: Mutex<Vec<String>>,
        refuse: Mutex<bool>,
    }

    #[async_trait]
    impl TokenSource for Endpoint {
        async fn fetch(&self, request: &TokenRequest<'_>) -> Result<AccessToken, TokenError> {
            let mut grants = self.grants.lock().unwrap();
            grants.push(format!("{} {}", request.client_id, request.client_secret.expose()));
            if *self.refuse.lock().unwrap() {
                return Err(TokenError::Http { status: 400, error: Some("invalid_client".into()) });
            }
            Ok(AccessToken { token: Secret::new(format!("tok-{}", grants.len())), expires_in: Some(3600) })
        }
    }

    #[tokio::test]
    async fn attempts_carry_the_cached_bearer_a_401_refetches_and_a_refused_grant_sends_nothing() {
        let (endpoint, receiver) = (Arc::new(Endpoint::default()), Arc::new(Receiver::default()));
        let mut ctx = context();
        ctx.tokens = Some(Arc::new(TokenCache::new(endpoint.clone())));
        ctx.sender = Some(receiver.clone());
        let who = caller();
        let auth = json!({"type": "oauth2_client_credentials", "token_url": "https://auth.example.com/t",
            "client_id": "puck", "client_secret": "cs-1"});
        let sub =
            subscriptions::create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"], "auth": auth}));
        let id = sub.await.unwrap()["id"].as_str().unwrap().to_owned();
        let send = || test_events::send_test_event(&ctx, &who, &id, None, true);

        let first = send().await.unwrap();
        let second = send().await.unwrap();
        assert_eq!((first["status"].clone(), second["status"].clone()), (json!("succeeded"), json!("succeeded")));
        assert_eq!(first["attempt"]["request_headers"]["authorization"], "***", "the bearer is redacted in the log");
        let bearers = |r: &Receiver| -> Vec<String> {
            let seen = r.seen.lock().unwrap();
            seen.iter().map(|q| q.headers.iter().find(|(k, _)| k == "authorization").unwrap().1.clone()).collect()
        };
        assert_eq!(bearers(&receiver), vec!["Bearer tok-1", "Bearer tok-1"], "one token for both attempts");
        assert_eq!(*endpoint.grants.lock().unwrap(), vec!["puck cs-1"]);

        receiver.statuses.lock().unwrap().push(401);
        assert_eq!(send().await.unwrap()["status"], json!(DeliveryStatus::FailedPermanent.as_str()));
        send().await.unwrap();
        assert_eq!(bearers(&receiver)[2..], ["Bearer tok-1", "Bearer tok-2"], "the 401 dropped tok-1");

        *endpoint.refuse.lock().unwrap() = true;
        subscriptions::update(
            &ctx,
            &who,
            &id,
            json!({"auth": {"type": "oauth2_client_credentials",
            "token_url": "https://auth.example.com/t", "client_id": "puck", "client_secret": "cs-2"}}),
        )
        .await
        .unwrap();
        let refused = send().await.unwrap();
        assert_eq!(refused["attempt"]["error"], "oauth2 token: HTTP 400 invalid_client");
        assert_eq!(refused["attempt"]["response_status"], json!(null));
        assert_eq!(receiver.seen.lock().unwrap().len(), 4, "the receiver got nothing");
        assert_eq!(endpoint.grants.lock().unwrap().last().unwrap(), "puck cs-2", "the new secret is used at once");
    }
}
