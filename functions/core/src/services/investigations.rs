//! Investigations queued by inbound receivers, as their account reads them
//! (`GET /v1/investigations/{id}`). They are created in [`super::receive`].

use super::Context;
use crate::error::AppError;
use crate::ids::InvestigationId;
use crate::model::Caller;
use serde_json::Value;

/// `GET /v1/investigations/{id}`: another account's investigation is 404, like an unknown one.
pub async fn get_investigation(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<Value, AppError> {
    let id = InvestigationId::parse(raw_id).map_err(|_| AppError::NotFound("investigation"))?;
    let inv = ctx.investigations.get(&caller.account_id, &id).await?.ok_or(AppError::NotFound("investigation"))?;
    Ok(inv.view())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{caller, context};
    use crate::model::Provider;
    use crate::services::endpoints::tests::endpoint;
    use crate::services::receive::tests::post;
    use crate::services::receive::Received;
    use serde_json::json;

    #[tokio::test]
    async fn investigations_are_invisible_to_other_accounts() {
        let ctx = context();
        let who = caller();
        let (_, key) = endpoint(&ctx, &who, json!({"provider": "generic"})).await;
        let Received::Queued { investigation_id, .. } =
            post(&ctx, Provider::Generic, &key, &[], br#"{"query":"q"}"#).await.unwrap()
        else {
            panic!()
        };
        assert!(get_investigation(&ctx, &who, investigation_id.as_str()).await.is_ok());
        assert_eq!(
            get_investigation(&ctx, &caller(), investigation_id.as_str()).await,
            Err(AppError::NotFound("investigation"))
        );
        assert_eq!(get_investigation(&ctx, &who, "inv_bad").await, Err(AppError::NotFound("investigation")));
    }
}
