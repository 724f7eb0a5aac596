//! `GET /v1/investigations/{id}` (scope `investigations:read`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::model::Scope;
use puck_core::services::{investigations, Context};
use puck_http::{authenticate, json_response, path_param, respond};

pub async fn get(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::InvestigationsRead).await?;
            Ok(json_response(
                StatusCode::OK,
                &investigations::get_investigation(ctx, &caller, &path_param(&req, "id")).await?,
            ))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{context_with_sample_key, fixture, status_and_json};
    use lambda_http::http::HeaderValue;
    use lambda_http::RequestExt;
    use puck_core::ids::{AccountId, EndpointId, InvestigationId};
    use puck_core::model::{Investigation, Provider};
    use puck_core::secret::Secret;
    use puck_core::services::auth;
    use puck_core::time::Timestamp;

    /// An investigation of `account` with the id the sample event asks for.
    fn sample_investigation(account: &AccountId) -> Investigation {
        let id = fixture("investigations-get").path_parameters().first("id").unwrap().to_owned();
        Investigation {
            id: InvestigationId::parse(&id).unwrap(),
            account_id: account.clone(),
            status: "queued".into(),
            provider: Provider::Github,
            endpoint_id: EndpointId::generate(1),
            trigger: "github:code_scanning_alert".into(),
            query: "Investigate alert #42".into(),
            summary: "GitHub code scanning alert #42".into(),
            agent_ids: vec![],
            scope: None,
            depth: Some("standard".into()),
            created_at: Timestamp(1_777_818_121_000),
        }
    }

    #[tokio::test]
    async fn the_sample_event_reads_its_accounts_investigation() {
        let (ctx, account) = context_with_sample_key().await;
        let (status, body) = status_and_json(get(&ctx, fixture("investigations-get")).await);
        assert_eq!((status, body["error"]["message"].as_str()), (404, Some("investigation not found")), "{body}");

        let investigation = sample_investigation(&account);
        ctx.investigations.insert(&investigation, None).await.unwrap();
        let (status, body) = status_and_json(get(&ctx, fixture("investigations-get")).await);
        assert_eq!((status, body), (200, investigation.view()));
    }

    #[tokio::test]
    async fn another_accounts_investigation_is_404_like_an_unknown_one() {
        let (ctx, _) = context_with_sample_key().await;
        ctx.investigations.insert(&sample_investigation(&AccountId::generate(2)), None).await.unwrap();
        let (status, body) = status_and_json(get(&ctx, fixture("investigations-get")).await);
        assert_eq!((status, body["error"]["message"].as_str()), (404, Some("investigation not found")), "{body}");
    }

    #[tokio::test]
    async fn a_key_without_the_scope_is_403_and_no_key_is_401() {
        let (ctx, account) = context_with_sample_key().await;
        ctx.investigations.insert(&sample_investigation(&account), None).await.unwrap();
        let manage_only = "pck_test_Mn4Qw8Er2Ty6Ui0Op3As7Df1Gh5Jk9Lz2Xc6Vb0N";
        auth::issue_api_key(&ctx, &account, &[Scope::WebhooksManage], Secret::new(manage_only)).await.unwrap();
        let mut req = fixture("investigations-get");
        req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {manage_only}")).unwrap());
        let (status, body) = status_and_json(get(&ctx, req).await);
        assert_eq!(
            (status, body["error"]["message"].as_str()),
            (403, Some("API key lacks the investigations:read scope")),
            "{body}"
        );

        let (status, body) = status_and_json(get(&puck_core::fakes::context(), fixture("investigations-get")).await);
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{body}");
    }
}
