//! A subscription's signing key through the API: the scheme chosen at creation, the key the
//! service makes (or, for `hmac-sha256`, the secret the caller sets), rotation with an overlap,
//! and the responses that show it.
//!
//! Whatever the scheme, the key is kept the same way (its text form AES-256-GCM-encrypted with
//! the subscription id as context, the outgoing one kept for the overlap window), so the
//! dispatcher signs with the previous key during a rotation whichever scheme it is. Only an
//! Ed25519 key has a public half: it is stored in the clear and shown on every read.

use super::json_fields::Fields;
use super::Context;
use crate::error::AppError;
use crate::ids::SubscriptionId;
use crate::model::Subscription;
use crate::secret::SigningSecret;
use crate::signing_key::{SignatureScheme, SigningKey};
use crate::time::Timestamp;
use serde_json::Value;

fn parse_secret(raw: &str) -> Result<SigningKey, AppError> {
    SigningSecret::parse(raw).map(SigningKey::Hmac).map_err(|e| AppError::validation("secret", e.to_string()))
}

/// `secret` on an Ed25519 subscription: there is no shared secret to set.
fn no_secret_for_ed25519() -> AppError {
    AppError::validation(
        "secret",
        "secret does not apply to signature_scheme ed25519: the service makes the key pair (rotate it with \"public_key\": null)",
    )
}

/// The scheme and first key of a new subscription: `signature_scheme` (default `hmac-sha256`);
/// for `hmac-sha256` the caller's `secret` or a generated one, for `ed25519` a fresh key pair.
pub(super) fn initial(fields: &Fields) -> Result<(SignatureScheme, SigningKey), AppError> {
    let scheme = fields
        .opt_str("signature_scheme")?
        .map(SignatureScheme::parse)
        .transpose()
        .map_err(|m| AppError::validation("signature_scheme", m))?
        .unwrap_or_default();
    if fields.has("public_key") {
        return Err(AppError::validation("public_key", "public_key is made by the service and cannot be given"));
    }
    let key = match (scheme, fields.opt_str("secret")?) {
        (SignatureScheme::HmacSha256, Some(raw)) => parse_secret(raw)?,
        (SignatureScheme::Ed25519, Some(_)) => return Err(no_secret_for_ed25519()),
        (scheme, None) => SigningKey::generate(scheme),
    };
    Ok((scheme, key))
}

/// `key` encrypted for storage on the subscription `id`.
pub(super) fn seal(ctx: &Context, id: &SubscriptionId, key: &SigningKey) -> String {
    ctx.keyring.encrypt(key.expose().expose(), id.as_str())
}

/// The `public_key` a subscription shows for `key`: `whpk_…`, or None for a shared secret.
pub(super) fn shown_public_key(key: &SigningKey) -> Option<String> {
    key.public_key().map(|k| k.to_string())
}

/// The key a PATCH sets, if it rotates: `"secret"` (a value, or null to generate) for
/// `hmac-sha256`, `"public_key": null` for `ed25519`. Any other combination, and any
/// `signature_scheme`, is a 400 naming the field.
fn requested_rotation(sub: &Subscription, fields: &Fields) -> Result<Option<SigningKey>, AppError> {
    if fields.has("signature_scheme") {
        return Err(AppError::validation("signature_scheme", "signature_scheme is set at creation only"));
    }
    match sub.signature_scheme {
        SignatureScheme::HmacSha256 => {
            if fields.has("public_key") {
                return Err(AppError::validation("public_key", "public_key applies only to signature_scheme ed25519"));
            }
            if !fields.has("secret") {
                return Ok(None);
            }
            Ok(Some(match fields.opt_str("secret")? {
                Some(raw) => parse_secret(raw)?,
                None => SigningKey::generate(SignatureScheme::HmacSha256),
            }))
        }
        SignatureScheme::Ed25519 => {
            if fields.has("secret") {
                return Err(no_secret_for_ed25519());
            }
            match fields.raw("public_key") {
                None => Ok(None),
                Some(Value::Null) => Ok(Some(SigningKey::generate(SignatureScheme::Ed25519))),
                Some(_) => {
                    Err(AppError::validation("public_key", "public_key can only be null, which rotates the key pair"))
                }
            }
        }
    }
}

/// Applies a PATCH's rotation, if it asks for one: the new key becomes current and the outgoing
/// one keeps signing (a second signature) until the overlap window ends. Returns the new key.
pub(super) fn rotate(
    ctx: &Context,
    sub: &mut Subscription,
    fields: &Fields,
    now: Timestamp,
) -> Result<Option<SigningKey>, AppError> {
    let Some(key) = requested_rotation(sub, fields)? else { return Ok(None) };
    sub.previous_secret_enc = Some(std::mem::replace(&mut sub.secret_enc, seal(ctx, &sub.id, &key)));
    sub.previous_secret_expires_at = Some(now.plus_seconds(ctx.settings.secret_overlap_secs));
    sub.public_key = shown_public_key(&key);
    Ok(Some(key))
}

/// The response of a create or a rotation: a shared secret is shown here, and only here; an
/// Ed25519 subscription's view already carries its (new) public key and never a private key.
pub(super) fn view_with_key(sub: &Subscription, key: &SigningKey) -> Value {
    let mut v = sub.view();
    if let SigningKey::Hmac(secret) = key {
        v["secret"] = Value::String(secret.expose().to_owned());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::subscriptions::{create, get, list, parse_id, update};
    use crate::error::AppError;
    use crate::fakes::{caller, context};
    use crate::signing_key::SigningKey;
    use serde_json::json;

    #[tokio::test]
    async fn an_ed25519_subscription_shows_its_public_key_everywhere_and_keeps_the_private_key_encrypted() {
        let (ctx, who) = (context(), caller());
        let body = json!({"url": "https://example.com/h", "events": ["*"], "signature_scheme": "ed25519"});
        let created = create(&ctx, &who, body).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let public_key = created["public_key"].as_str().unwrap().to_owned();
        assert!(public_key.starts_with("whpk_") && created.get("secret").is_none(), "{created}");
        assert_eq!(created["signature_scheme"], "ed25519");
        assert_eq!(get(&ctx, &who, id).await.unwrap()["public_key"], public_key.as_str());
        assert_eq!(list(&ctx, &who, 50, None).await.unwrap()["subscriptions"][0]["public_key"], public_key.as_str());

        let stored = ctx.subscriptions.get(&who.account_id, &parse_id(id).unwrap()).await.unwrap().unwrap();
        let plain = ctx.keyring.decrypt(&stored.secret_enc, id).unwrap();
        let SigningKey::Ed25519(key) = SigningKey::parse(&plain).unwrap() else { panic!("not an ed25519 key") };
        assert_eq!(key.public_key().to_string(), public_key, "the stored private key is the shown public key's");
        assert!(!stored.secret_enc.contains(&plain[5..]), "stored encrypted");
        for view in [created.clone(), get(&ctx, &who, id).await.unwrap(), list(&ctx, &who, 50, None).await.unwrap()] {
            assert!(!view.to_string().contains(&plain[5..]), "no private key in a response");
        }
    }

    #[tokio::test]
    async fn public_key_null_rotates_the_pair_and_keeps_the_previous_key_for_the_overlap() {
        let (ctx, who) = (context(), caller());
        let body = json!({"url": "https://example.com/h", "events": ["*"], "signature_scheme": "ed25519"});
        let created = create(&ctx, &who, body).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let before = ctx.subscriptions.get(&who.account_id, &parse_id(id).unwrap()).await.unwrap().unwrap();
        let rotated = update(&ctx, &who, id, json!({"public_key": null})).await.unwrap();
        assert!(rotated.get("secret").is_none());
        assert_ne!(rotated["public_key"], created["public_key"]);
        let after = ctx.subscriptions.get(&who.account_id, &parse_id(id).unwrap()).await.unwrap().unwrap();
        assert_eq!(after.previous_secret_enc.as_deref(), Some(before.secret_enc.as_str()));
        let overlap = ctx.settings.secret_overlap_secs;
        assert_eq!(after.previous_secret_expires_at, Some(after.updated_at.plus_seconds(overlap)));
        let renamed = update(&ctx, &who, id, json!({"name": "n"})).await.unwrap();
        assert_eq!(renamed["public_key"], rotated["public_key"], "other changes keep the key");
    }

    #[tokio::test]
    async fn key_fields_that_do_not_apply_are_400s_naming_the_field() {
        let (ctx, who) = (context(), caller());
        let base = json!({"url": "https://example.com/h", "events": ["*"]});
        let with = |extra: serde_json::Value| {
            let mut b = base.clone();
            b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            b
        };
        let create_cases = [
            (json!({"signature_scheme": "rsa"}), "signature_scheme", "signature_scheme \"rsa\" must be one of"),
            (json!({"signature_scheme": 1}), "signature_scheme", "signature_scheme must be a string"),
            (json!({"signature_scheme": "ed25519", "secret": "whsec_x"}), "secret", "secret does not apply"),
            (json!({"signature_scheme": "ed25519", "public_key": "whpk_x"}), "public_key", "public_key is made"),
            (json!({"public_key": null}), "public_key", "public_key is made"),
        ];
        for (extra, field, want) in create_cases {
            match create(&ctx, &who, with(extra.clone())).await {
                Err(AppError::Validation(e)) => {
                    assert!(e.field == field && e.message.starts_with(want), "{extra}: {e:?}")
                }
                other => panic!("{extra}: {other:?}"),
            }
        }
        let hmac = create(&ctx, &who, base.clone()).await.unwrap();
        let ed = create(&ctx, &who, with(json!({"signature_scheme": "ed25519"}))).await.unwrap();
        let (hmac, ed) = (hmac["id"].as_str().unwrap(), ed["id"].as_str().unwrap());
        let patch_cases = [
            (
                hmac,
                json!({"signature_scheme": "ed25519"}),
                "signature_scheme",
                "signature_scheme is set at creation only",
            ),
            (
                ed,
                json!({"signature_scheme": "ed25519"}),
                "signature_scheme",
                "signature_scheme is set at creation only",
            ),
            (hmac, json!({"public_key": null}), "public_key", "public_key applies only to signature_scheme ed25519"),
            (ed, json!({"secret": null}), "secret", "secret does not apply to signature_scheme ed25519"),
            (ed, json!({"public_key": "whpk_x"}), "public_key", "public_key can only be null"),
        ];
        for (id, patch, field, want) in patch_cases {
            match update(&ctx, &who, id, patch.clone()).await {
                Err(AppError::Validation(e)) => {
                    assert!(e.field == field && e.message.starts_with(want), "{patch}: {e:?}")
                }
                other => panic!("{patch}: {other:?}"),
            }
        }
        assert_eq!(get(&ctx, &who, hmac).await.unwrap()["signature_scheme"], "hmac-sha256");
        assert_eq!(get(&ctx, &who, hmac).await.unwrap()["public_key"], serde_json::Value::Null);
    }
}
