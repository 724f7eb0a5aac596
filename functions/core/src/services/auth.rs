//! API keys: minting, hashing and authenticating bearer credentials (docs/security.md, "Keys and tenants").
//!
//! A key is `pck_live_`/`pck_test_` + 40 random alphanumerics. Only its keyed hash is stored, and
//! it is also the lookup key, so authenticating is one GetItem and never compares secrets in
//! application code.

use super::Context;
use crate::error::AppError;
use crate::ids::{AccountId, ApiKeyId};
use crate::model::{ApiKeyRecord, Caller, Scope};
use crate::secret::Secret;
use rand::distributions::Alphanumeric;
use rand::Rng;

/// Prefix of production API keys; the random part follows.
pub const LIVE_PREFIX: &str = "pck_live_";
/// Prefix of test-mode API keys; the random part follows.
pub const TEST_PREFIX: &str = "pck_test_";
const RANDOM_LEN: usize = 40;
const MIN_RANDOM_LEN: usize = 32;
const MAX_KEY_LEN: usize = 128;

/// Whether `raw` has the shape of an API key (prefix + at least 32 of `[A-Za-z0-9]`).
pub fn is_well_formed_key(raw: &str) -> bool {
    let body = raw.strip_prefix(LIVE_PREFIX).or_else(|| raw.strip_prefix(TEST_PREFIX));
    matches!(body, Some(b) if b.len() >= MIN_RANDOM_LEN && raw.len() <= MAX_KEY_LEN && b.bytes().all(|c| c.is_ascii_alphanumeric()))
}

/// A fresh key from the OS-seeded CSPRNG.
pub fn mint_key(live: bool) -> Secret {
    let random: String = rand::rngs::OsRng.sample_iter(&Alphanumeric).take(RANDOM_LEN).map(char::from).collect();
    Secret::new(format!("{}{random}", if live { LIVE_PREFIX } else { TEST_PREFIX }))
}

/// Stores a key (given, e.g. `DEV_API_KEY`, or freshly minted) for `account` and returns it: the
/// only moment the plaintext exists outside the caller's hands.
pub async fn issue_api_key(
    ctx: &Context,
    account: &AccountId,
    scopes: &[Scope],
    key: Secret,
) -> Result<(Secret, ApiKeyRecord), AppError> {
    if !is_well_formed_key(key.expose()) {
        return Err(AppError::validation(
            "key",
            "API key must be pck_live_ or pck_test_ followed by at least 32 letters or digits",
        ));
    }
    let now = ctx.clock.now();
    let record = ApiKeyRecord {
        key_id: ApiKeyId::generate(now.unix_ms() as u64),
        account_id: account.clone(),
        key_hash: ctx.keyring.lookup_hash(key.expose()),
        key_prefix: key.expose().chars().take(LIVE_PREFIX.len() + 4).collect(),
        scopes: scopes.to_vec(),
        revoked: false,
        created_at: now,
    };
    ctx.api_keys.insert(&record).await?;
    Ok((key, record))
}

/// Resolves `Authorization: Bearer <key>` to a caller holding `needed`.
/// 401 for a missing, malformed, unknown or revoked key; 403 for a missing scope.
pub async fn authenticate(ctx: &Context, authorization: Option<&str>, needed: Scope) -> Result<Caller, AppError> {
    let header = authorization.ok_or_else(|| AppError::Unauthorized("missing Authorization header".into()))?;
    let (scheme, key) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AppError::Unauthorized("Authorization must be Bearer <API key>".into()));
    }
    let key = key.trim();
    if !is_well_formed_key(key) {
        return Err(AppError::Unauthorized("invalid API key".into()));
    }
    let record = ctx
        .api_keys
        .find_by_hash(&ctx.keyring.lookup_hash(key))
        .await?
        .filter(|r| !r.revoked)
        .ok_or_else(|| AppError::Unauthorized("invalid API key".into()))?;
    if !record.scopes.contains(&needed) {
        return Err(AppError::Forbidden(needed.as_str()));
    }
    Ok(Caller { account_id: record.account_id, key_id: record.key_id, scopes: record.scopes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::context;

    #[test]
    fn key_shape() {
        assert!(is_well_formed_key(mint_key(true).expose()));
        assert!(is_well_formed_key(mint_key(false).expose()));
        assert!(!is_well_formed_key("pck_test_short"));
        assert!(!is_well_formed_key(&format!("pck_prod_{}", "a".repeat(40))));
        assert!(!is_well_formed_key(&format!("pck_test_{}!", "a".repeat(40))));
    }

    #[tokio::test]
    async fn authenticate_distinguishes_401_and_403() {
        let ctx = context();
        let account = AccountId::generate(1);
        let (key, record) = issue_api_key(&ctx, &account, &[Scope::EventsPublish], mint_key(false)).await.unwrap();
        let bearer = format!("Bearer {}", key.expose());
        assert!(!record.key_hash.contains(key.expose()));

        let caller = authenticate(&ctx, Some(&bearer), Scope::EventsPublish).await.unwrap();
        assert_eq!(caller.account_id, account);
        assert_eq!(
            authenticate(&ctx, Some(&bearer), Scope::WebhooksManage).await,
            Err(AppError::Forbidden("webhooks:manage"))
        );
        for bad in [
            None,
            Some("Basic abc"),
            Some("Bearer nope"),
            Some("Bearer pck_test_0000000000000000000000000000000000000000"),
        ] {
            assert!(
                matches!(authenticate(&ctx, bad, Scope::EventsPublish).await, Err(AppError::Unauthorized(_))),
                "{bad:?}"
            );
        }
        ctx.api_keys.revoke(&account, &record.key_id).await.unwrap();
        assert!(matches!(
            authenticate(&ctx, Some(&bearer), Scope::EventsPublish).await,
            Err(AppError::Unauthorized(_))
        ));
    }
}
