//! API keys: minting, format checks and storage, shared by the local stack's dev key and
//! `puck-admin create-key`, so there is exactly one way a key comes into existence.
//!
//! Minting, the format check and hashing live in `puck_core::services::auth`; this module adds
//! what the CLI needs around them (scope lists, new account ids).

use anyhow::{anyhow, bail, Result};
use puck_core::ids::AccountId;
use puck_core::model::{ApiKeyRecord, Scope};
use puck_core::secret::Secret;
use puck_core::services::{auth, Context};
use puck_core::time::Timestamp;

/// Stores `key` (already minted or supplied, e.g. `DEV_API_KEY`) for `account`: only its hash.
pub async fn store_api_key(ctx: &Context, account: &AccountId, key: &str, scopes: &[Scope]) -> Result<ApiKeyRecord> {
    if scopes.is_empty() {
        bail!("an API key needs at least one scope");
    }
    let (_, record) = auth::issue_api_key(ctx, account, scopes, Secret::new(key))
        .await
        .map_err(|e| anyhow!("Failed to store the API key: {e}"))?;
    tracing::info!(account_id = %account, key_id = %record.key_id, key_prefix = record.key_prefix.as_str(), "API key stored");
    Ok(record)
}

/// Mints a key and stores its hash. The returned key is the only copy: show it once.
pub async fn issue_api_key(
    ctx: &Context,
    account: &AccountId,
    scopes: &[Scope],
    live: bool,
) -> Result<(String, ApiKeyRecord)> {
    let key = auth::mint_key(live);
    let record = store_api_key(ctx, account, key.expose(), scopes).await?;
    Ok((key.expose().to_owned(), record))
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
    fn scopes_parse_from_lists_or_all() {
        assert_eq!(parse_scopes("all").unwrap(), Scope::ALL.to_vec());
        assert_eq!(
            parse_scopes("events:publish, webhooks:manage").unwrap(),
            vec![Scope::EventsPublish, Scope::WebhooksManage]
        );
        assert!(parse_scopes("root").is_err());
        assert!(parse_scopes("").is_err());
    }
}
