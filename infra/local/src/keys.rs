//! API keys: minting, format checks and storage, shared by the local stack's dev key and
//! `puck-admin create-key`, so there is exactly one way a key comes into existence.
//!
//! A key is `pck_live_` or `pck_test_` followed by 40 characters from `[A-Za-z0-9]` drawn from the
//! OS RNG. Only its keyed hash (`Keyring::lookup_hash`) is stored; the key itself is returned once.

use anyhow::{bail, Context as _, Result};
use puck_core::ids::{AccountId, ApiKeyId};
use puck_core::model::{ApiKeyRecord, Scope};
use puck_core::services::Context;
use puck_core::time::Timestamp;
use rand::distributions::{Alphanumeric, DistString};

/// Random characters after the prefix in keys we mint (the format accepts 32 or more).
pub const KEY_RANDOM_LEN: usize = 40;
/// The shortest random part a valid key may have.
pub const KEY_MIN_RANDOM_LEN: usize = 32;
/// How many random characters the stored, displayable `key_prefix` keeps.
const DISPLAY_PREFIX_CHARS: usize = 4;

/// A fresh key from the OS RNG: `pck_live_…` when `live`, else `pck_test_…`.
pub fn mint_api_key(live: bool) -> String {
    let prefix = if live { "pck_live_" } else { "pck_test_" };
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rngs::OsRng, KEY_RANDOM_LEN))
}

/// The key's type prefix when it matches `pck_(live|test)_[A-Za-z0-9]{32,}`.
pub fn api_key_prefix(key: &str) -> Option<&'static str> {
    let (prefix, rest) = if let Some(rest) = key.strip_prefix("pck_live_") {
        ("pck_live_", rest)
    } else {
        ("pck_test_", key.strip_prefix("pck_test_")?)
    };
    (rest.len() >= KEY_MIN_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(prefix)
}

/// Stores `key` (already minted or supplied, e.g. `DEV_API_KEY`) for `account`: only its hash.
pub async fn store_api_key(ctx: &Context, account: &AccountId, key: &str, scopes: &[Scope]) -> Result<ApiKeyRecord> {
    let Some(prefix) = api_key_prefix(key) else {
        bail!("API keys must match pck_(live|test)_[A-Za-z0-9]{{{KEY_MIN_RANDOM_LEN},}}");
    };
    if scopes.is_empty() {
        bail!("an API key needs at least one scope");
    }
    let now = ctx.clock.now();
    let record = ApiKeyRecord {
        key_id: ApiKeyId::generate(now.unix_ms().max(0) as u64),
        account_id: account.clone(),
        key_hash: ctx.keyring.lookup_hash(key),
        key_prefix: key[..prefix.len() + DISPLAY_PREFIX_CHARS].to_owned(),
        scopes: scopes.to_vec(),
        revoked: false,
        created_at: now,
    };
    ctx.api_keys.insert(&record).await.context("Failed to store the API key")?;
    tracing::info!(account_id = %account, key_id = %record.key_id, key_prefix = record.key_prefix.as_str(), "API key stored");
    Ok(record)
}

/// Mints a key and stores its hash. The returned key is the only copy: show it once.
pub async fn issue_api_key(ctx: &Context, account: &AccountId, scopes: &[Scope], live: bool) -> Result<(String, ApiKeyRecord)> {
    let key = mint_api_key(live);
    let record = store_api_key(ctx, account, &key, scopes).await?;
    Ok((key, record))
}

/// A new account id (accounts have no record of their own: keys and objects carry the id).
pub fn new_account_id() -> AccountId {
    AccountId::generate(Timestamp::now().unix_ms().max(0) as u64)
}

/// Parses `webhooks:manage,events:publish` or `all`.
pub fn parse_scopes(raw: &str) -> Result<Vec<Scope>> {
    if raw.trim() == "all" {
        return Ok(Scope::ALL.to_vec());
    }
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match Scope::parse(part) {
            Some(s) if !out.contains(&s) => out.push(s),
            Some(_) => {}
            None => {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                bail!("unknown scope {part:?} (known: {}, or all)", known.join(", "));
            }
        }
    }
    if out.is_empty() {
        bail!("no scopes given");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_documented_format() {
        let test = mint_api_key(false);
        assert_eq!(api_key_prefix(&test), Some("pck_test_"));
        assert_eq!(test.len(), "pck_test_".len() + KEY_RANDOM_LEN);
        assert_eq!(api_key_prefix(&mint_api_key(true)), Some("pck_live_"));
        assert_ne!(mint_api_key(false), mint_api_key(false));
    }

    #[test]
    fn key_format_is_checked() {
        let thirty_two = "a".repeat(32);
        for (key, ok) in [
            (format!("pck_test_{thirty_two}"), true),
            (format!("pck_live_{thirty_two}Z9"), true),
            (format!("pck_test_{}", "a".repeat(31)), false),
            (format!("pck_prod_{thirty_two}"), false),
            (format!("pck_test_{thirty_two}-"), false),
            (String::new(), false),
        ] {
            assert_eq!(api_key_prefix(&key).is_some(), ok, "{key}");
        }
    }

    #[test]
    fn scopes_parse_from_lists_or_all() {
        assert_eq!(parse_scopes("all").unwrap(), Scope::ALL.to_vec());
        assert_eq!(parse_scopes("events:publish, webhooks:manage").unwrap(), vec![Scope::EventsPublish, Scope::WebhooksManage]);
        assert!(parse_scopes("root").is_err());
        assert!(parse_scopes("").is_err());
    }
}
