//! A subscription's `auth` on create and PATCH: parsed, its client secret sealed, and refused
//! beside a custom `Authorization` header (both would set the same request header).
//!
//! PATCH replaces `auth` as a whole (the client secret included: it is never shown back, so an
//! edit must give it again); `"auth": null` removes it.

use super::json_fields::Fields;
use super::Context;
use crate::error::AppError;
use crate::model::Subscription;
use crate::oauth::{check_no_authorization_header, parse_auth, StoredAuth};
use serde_json::Value;

/// Applies the body's `auth` (when present) to `sub`, then checks it against `sub`'s custom
/// headers as they now are.
pub fn set_auth(ctx: &Context, sub: &mut Subscription, fields: &Fields) -> Result<(), AppError> {
    match fields.raw("auth") {
        None => {}
        Some(Value::Null) => sub.auth = None,
        Some(value) => {
            let creds = parse_auth(value, ctx.settings.allow_private_targets)?;
            sub.auth = Some(StoredAuth::seal(creds, &sub.id, &ctx.keyring));
        }
    }
    if sub.auth.is_some() {
        check_no_authorization_header(&sub.header_names)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::error::AppError;
    use crate::fakes::{caller, context};
    use crate::services::subscriptions::{create, get, list, parse_id, update};
    use serde_json::json;

    fn auth() -> serde_json::Value {
        json!({
            "type": "oauth2_client_credentials",
            "token_url": "https://auth.example.com/token",
            "client_id": "puck",
            "client_secret": "cs-0a1b2c3d",
            "scope": "hooks",
        })
    }

    #[tokio::test]
    async fn auth_is_stored_sealed_shown_masked_replaced_and_removed() {
        let (ctx, who) = (context(), caller());
        let created =
            create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"], "auth": auth()})).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let shown = json!({"type": "oauth2_client_credentials", "token_url": "https://auth.example.com/token",
            "client_id": "puck", "client_secret": "***", "scope": "hooks", "audience": null});
        assert_eq!(created["auth"], shown);
        assert_eq!(get(&ctx, &who, id).await.unwrap()["auth"], shown);
        assert!(!list(&ctx, &who, 50, None).await.unwrap().to_string().contains("cs-0a1b2c3d"));
        let stored = ctx.subscriptions.get(&who.account_id, &parse_id(id).unwrap()).await.unwrap().unwrap();
        let sealed = stored.auth.clone().unwrap();
        assert_eq!(sealed.client_secret(&stored.id, &ctx.keyring).unwrap().expose(), "cs-0a1b2c3d");

        let untouched = update(&ctx, &who, id, json!({"name": "n"})).await.unwrap();
        assert_eq!(untouched["auth"], shown);
        let mut other = auth();
        other["client_id"] = json!("other");
        let replaced = update(&ctx, &who, id, json!({"auth": other})).await.unwrap();
        assert_eq!(replaced["auth"]["client_id"], "other");
        let removed = update(&ctx, &who, id, json!({"auth": null})).await.unwrap();
        assert_eq!(removed["auth"], json!(null));
        let plain = create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"]})).await.unwrap();
        assert_eq!(plain["auth"], json!(null));
    }

    #[tokio::test]
    async fn auth_beside_an_authorization_header_is_a_400_whichever_comes_first() {
        let (ctx, who) = (context(), caller());
        let both = json!({"url": "https://example.com/h", "events": ["*"], "auth": auth(),
            "headers": {"authorization": "Bearer static"}});
        match create(&ctx, &who, both).await {
            Err(AppError::Validation(e)) => assert!(e.message.contains("headers.authorization"), "{e}"),
            other => panic!("{other:?}"),
        }
        let created =
            create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"], "auth": auth()})).await.unwrap();
        let id = created["id"].as_str().unwrap();
        let refused = update(&ctx, &who, id, json!({"headers": {"Authorization": "Bearer static"}})).await;
        assert!(matches!(refused, Err(AppError::Validation(_))), "{refused:?}");
        let swapped = update(&ctx, &who, id, json!({"auth": null, "headers": {"Authorization": "Bearer static"}}));
        assert_eq!(swapped.await.unwrap()["headers"], json!({"Authorization": "***"}));
        let bad = update(&ctx, &who, id, json!({"auth": {"type": "oauth2_client_credentials"}})).await;
        match bad {
            Err(AppError::Validation(e)) => assert_eq!(e.message, "auth.token_url: is required"),
            other => panic!("{other:?}"),
        }
    }
}
