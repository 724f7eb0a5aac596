//! The master key, read from Secrets Manager once per container.
//!
//! IAM: secretsmanager:GetSecretValue on the master-key secret only.

use anyhow::Context as _;
use aws_sdk_secretsmanager::Client;

/// The shortest master key accepted (AES-256 and HMAC subkeys are derived from it).
pub const MIN_MASTER_KEY_BYTES: usize = 32;

/// Reads the master key (the secret string's bytes, or the binary secret) and refuses short keys.
pub async fn read_master_key(client: &Client, secret_id: &str) -> anyhow::Result<Vec<u8>> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(aws_sdk_secretsmanager::Error::from)
        .with_context(|| format!("Failed to read the master key secret {secret_id}"))?;
    let key = match (out.secret_string, out.secret_binary) {
        (Some(s), _) => s.into_bytes(),
        (None, Some(b)) => b.into_inner(),
        (None, None) => anyhow::bail!("master key secret {secret_id} has no value"),
    };
    check_master_key(&key).with_context(|| format!("master key secret {secret_id}"))?;
    Ok(key)
}

fn check_master_key(key: &[u8]) -> anyhow::Result<()> {
    if key.len() < MIN_MASTER_KEY_BYTES {
        anyhow::bail!("master key is {} bytes; at least {MIN_MASTER_KEY_BYTES} are required", key.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_master_keys_are_refused() {
        assert!(check_master_key(b"short").is_err());
        assert!(check_master_key(&[7u8; 32]).is_ok());
    }
}
