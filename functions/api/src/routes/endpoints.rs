//! `/v1/webhooks/incoming/endpoints` routes (scope `webhooks:manage`): create, list and delete
//! inbound receiver endpoints. The receiver URL (with its key) is in the create response only.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::model::Scope;
use puck_core::services::{endpoints, Context};
use puck_http::{
    authenticate, empty_response, json_body, json_response, path_param, public_base_url, respond, MANAGE_BODY_LIMIT,
};

/// `POST /v1/webhooks/incoming/endpoints` → 201 with `url`, shown only here.
pub async fn create(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            let body = json_body(&req, MANAGE_BODY_LIMIT)?;
            let base = ctx.settings.public_base_url.clone().unwrap_or_else(|| public_base_url(&req));
            Ok(json_response(StatusCode::CREATED, &endpoints::create_endpoint(ctx, &caller, body, &base).await?))
        }
        .await,
    )
}

/// `GET /v1/webhooks/incoming/endpoints` → 200 `{"endpoints": [...]}`.
pub async fn list(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            Ok(json_response(StatusCode::OK, &endpoints::list_endpoints(ctx, &caller).await?))
        }
        .await,
    )
}

/// `DELETE /v1/webhooks/incoming/endpoints/{id}` → 204; 404 for unknown or foreign ids.
pub async fn delete(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            endpoints::delete_endpoint(ctx, &caller, &path_param(&req, "id")).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{context_with_sample_key, fixture, status_and_json};

    #[tokio::test]
    async fn sample_events_without_a_known_key_get_401() {
        let ctx = puck_core::fakes::context();
        for route in [crate::ENDPOINTS_CREATE, crate::ENDPOINTS_LIST, crate::ENDPOINTS_DELETE] {
            let (status, body) = status_and_json((route.handler)(&ctx, fixture(route.binary)).await);
            assert_eq!(status, 401, "{}", route.binary);
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }

    #[tokio::test]
    async fn create_list_delete_from_sample_events() {
        let (ctx, _) = context_with_sample_key().await;
        let (status, created) = status_and_json(create(&ctx, fixture("endpoints-create")).await);
        assert_eq!(status, 201, "{created}");
        let url = created["url"].as_str().unwrap();
        assert!(
            url.starts_with("https://abc123def4.execute-api.us-east-1.amazonaws.com/v1/webhooks/incoming/github/"),
            "{url}"
        );
        assert_eq!(created["provider"], "github");
        assert_eq!(created["signature_verification"], true);
        assert_eq!(created["default_depth"], "standard");
        assert!(!created.to_string().contains("gh-webhook-secret-value"));

        let (status, listed) = status_and_json(list(&ctx, fixture("endpoints-list")).await);
        assert_eq!(status, 200);
        assert_eq!(listed["endpoints"].as_array().unwrap().len(), 1);
        let key = url.rsplit('/').next().unwrap();
        assert!(!listed.to_string().contains(key));

        // The sample's id belongs to no endpoint.
        let (status, body) = status_and_json(delete(&ctx, fixture("endpoints-delete")).await);
        assert_eq!(status, 404, "{body}");
    }
}
