//! Tokens kept per subscription in the warm container, so an OAuth delivery costs one token
//! fetch per token lifetime per container, not one per attempt (docs/api.md, "OAuth 2.0 receivers").
//!
//! A token is reused until 60 s before its `expires_in` (a token that lives 60 s or less is
//! used once), and dropped at once when a receiver answers 401 with it. Entries are keyed by
//! [`super::StoredAuth::cache_key`], so a changed `auth` or a new client secret never gets a
//! token fetched for the old one. Attempts that need a token of the same key at the same time
//! (one SQS batch) wait for one fetch and share its outcome, success or failure, rather than
//! each asking the endpoint.

use super::token::{AccessToken, TokenError, TokenRequest, TokenSource};
use crate::secret::Secret;
use crate::time::Timestamp;
use futures::lock::Mutex as AsyncMutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A token is not used in its last this many seconds.
pub const EXPIRY_MARGIN_SECS: u64 = 60;
/// The lifetime assumed when the endpoint gives no `expires_in` (RFC 6749 leaves it optional).
pub const DEFAULT_EXPIRES_IN_SECS: u64 = 300;
/// The longest a token is kept, whatever `expires_in` says.
const MAX_LIFETIME_SECS: u64 = 86_400;
/// Subscriptions with a slot at once; the map is emptied when full (a few refetches, no harm).
const MAX_SLOTS: usize = 10_000;

/// The last fetch of one key.
#[derive(Debug, Clone)]
struct Fetched {
    result: Result<Secret, TokenError>,
    /// Until when the token is reused; None: never (a failure, or a token about to expire).
    reuse_until: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct Slot {
    /// Bumped by every completed fetch: a waiter that sees it changed takes that fetch's outcome.
    fetches: AtomicU64,
    last: AsyncMutex<Option<Fetched>>,
}

/// The per-container token cache in front of a [`TokenSource`].
pub struct TokenCache {
    source: Arc<dyn TokenSource>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// An empty cache over `source`; build one per container and share it.
    pub fn new(source: Arc<dyn TokenSource>) -> Self {
        Self { source, slots: Mutex::new(HashMap::new()) }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().expect("token slots lock");
        if slots.len() >= MAX_SLOTS && !slots.contains_key(key) {
            slots.clear();
        }
        slots.entry(key.to_owned()).or_default().clone()
    }

    /// A token for `key` at `now`: the cached one while reusable, else one fetch (shared with
    /// whoever waits for the same key meanwhile).
    pub async fn token(&self, key: &str, request: &TokenRequest<'_>, now: Timestamp) -> Result<Secret, TokenError> {
        let slot = self.slot(key);
        let seen = slot.fetches.load(Ordering::SeqCst);
        let mut last = slot.last.lock().await;
        if let Some(fetched) = last.as_ref() {
            let reusable = fetched.reuse_until.is_some_and(|until| now < until);
            if reusable || slot.fetches.load(Ordering::SeqCst) != seen {
                return fetched.result.clone();
            }
        }
        let result = self.source.fetch(request).await;
        let fetched = match result {
            Ok(AccessToken { token, expires_in }) => {
                let lifetime = expires_in.unwrap_or(DEFAULT_EXPIRES_IN_SECS).min(MAX_LIFETIME_SECS);
                let reuse_until = lifetime
                    .checked_sub(EXPIRY_MARGIN_SECS)
                    .filter(|secs| *secs > 0)
                    .map(|secs| now.plus_seconds(secs as i64));
                Fetched { result: Ok(token), reuse_until }
            }
            Err(e) => Fetched { result: Err(e), reuse_until: None },
        };
        let result = fetched.result.clone();
        *last = Some(fetched);
        slot.fetches.fetch_add(1, Ordering::SeqCst);
        result
    }

    /// Drops `token` of `key` (its receiver answered 401), unless a newer one replaced it already.
    pub async fn forget(&self, key: &str, token: &Secret) {
        let slot = self.slots.lock().expect("token slots lock").get(key).cloned();
        let Some(slot) = slot else { return };
        let mut last = slot.last.lock().await;
        if last.as_ref().is_some_and(|f| f.result.as_ref().is_ok_and(|t| t == token)) {
            *last = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::TargetUrl;
    use async_trait::async_trait;
    use std::sync::atomic::AtomicUsize;

    /// Issues `tok-1`, `tok-2`, … with `expires_in`, or fails with `fail` when set.
    struct Endpoint {
        calls: AtomicUsize,
        expires_in: Option<u64>,
        fail: Mutex<Option<TokenError>>,
    }

    #[async_trait]
    impl TokenSource for Endpoint {
        async fn fetch(&self, _request: &TokenRequest<'_>) -> Result<AccessToken, TokenError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(e) = self.fail.lock().unwrap().clone() {
                return Err(e);
            }
            Ok(AccessToken { token: Secret::new(format!("tok-{n}")), expires_in: self.expires_in })
        }
    }

    fn endpoint(expires_in: Option<u64>) -> Arc<Endpoint> {
        Arc::new(Endpoint { calls: AtomicUsize::new(0), expires_in, fail: Mutex::new(None) })
    }

    async fn get(cache: &TokenCache, key: &str, now: Timestamp) -> Result<String, TokenError> {
        let url = TargetUrl::parse("https://auth.example.com/token").unwrap();
        let secret = Secret::new("s");
        let request =
            TokenRequest { token_url: &url, client_id: "c", client_secret: &secret, scope: None, audience: None };
        cache.token(key, &request, now).await.map(|t| t.expose().to_owned())
    }

    #[tokio::test]
    async fn a_token_is_reused_until_sixty_seconds_before_it_expires() {
        let source = endpoint(Some(3600));
        let cache = TokenCache::new(source.clone());
        let t0 = Timestamp(1_700_000_000_000);
        assert_eq!(get(&cache, "a", t0).await.unwrap(), "tok-1");
        assert_eq!(get(&cache, "a", t0.plus_seconds(3539)).await.unwrap(), "tok-1");
        assert_eq!(get(&cache, "a", t0.plus_seconds(3540)).await.unwrap(), "tok-2", "refetched 60 s before expiry");
        assert_eq!(get(&cache, "b", t0).await.unwrap(), "tok-3", "another key has its own token");
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn short_lived_tokens_are_used_once_and_a_missing_expiry_is_five_minutes() {
        let short = endpoint(Some(60));
        let cache = TokenCache::new(short.clone());
        let t0 = Timestamp(1_700_000_000_000);
        get(&cache, "a", t0).await.unwrap();
        get(&cache, "a", t0).await.unwrap();
        assert_eq!(short.calls.load(Ordering::SeqCst), 2);
        let unsaid = endpoint(None);
        let cache = TokenCache::new(unsaid.clone());
        get(&cache, "a", t0).await.unwrap();
        assert_eq!(get(&cache, "a", t0.plus_seconds(239)).await.unwrap(), "tok-1");
        assert_eq!(get(&cache, "a", t0.plus_seconds(240)).await.unwrap(), "tok-2");
    }

    #[tokio::test]
    async fn a_401_drops_the_token_it_was_sent_with_only() {
        let source = endpoint(Some(3600));
        let cache = TokenCache::new(source.clone());
        let t0 = Timestamp(1_700_000_000_000);
        assert_eq!(get(&cache, "a", t0).await.unwrap(), "tok-1");
        cache.forget("a", &Secret::new("tok-1")).await;
        assert_eq!(get(&cache, "a", t0).await.unwrap(), "tok-2", "the next attempt fetches a new token");
        cache.forget("a", &Secret::new("tok-1")).await; // a late 401 of the old token
        assert_eq!(get(&cache, "a", t0).await.unwrap(), "tok-2", "the newer token stays");
        cache.forget("unknown", &Secret::new("tok-2")).await;
    }

    #[tokio::test]
    async fn failures_are_not_cached_and_concurrent_attempts_share_one_fetch() {
        let source = endpoint(Some(3600));
        *source.fail.lock().unwrap() = Some(TokenError::Http { status: 400, error: Some("invalid_client".into()) });
        let cache = TokenCache::new(source.clone());
        let t0 = Timestamp(1_700_000_000_000);
        let err = get(&cache, "a", t0).await.unwrap_err();
        assert_eq!(err.to_string(), "oauth2 token: HTTP 400 invalid_client");
        *source.fail.lock().unwrap() = None;
        assert_eq!(get(&cache, "a", t0).await.unwrap(), "tok-2", "the next attempt asks again");

        let cache = TokenCache::new(source.clone());
        let before = source.calls.load(Ordering::SeqCst);
        let batch: Vec<_> = (0..10).map(|_| get(&cache, "k", t0)).collect();
        let tokens = futures::future::join_all(batch).await;
        assert!(tokens.iter().all(|t| t.as_deref() == Ok("tok-3")), "{tokens:?}");
        assert_eq!(source.calls.load(Ordering::SeqCst) - before, 1, "one fetch for the batch");
    }
}
