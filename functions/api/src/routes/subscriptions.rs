//! `/v1/webhooks/subscriptions` routes (scope `webhooks:manage`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::model::Scope;
use puck_core::page::parse_limit;
use puck_core::services::{deliveries, subscriptions, test_events, Context};
use puck_core::AppError;
use puck_http::{
    authenticate, empty_response, json_body, json_response, optional_json_body, path_param, query_param, respond,
    MANAGE_BODY_LIMIT,
};

pub async fn create(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            let body = json_body(&req, MANAGE_BODY_LIMIT)?;
            Ok(json_response(StatusCode::CREATED, &subscriptions::create(ctx, &caller, body).await?))
        }
        .await,
    )
}

pub async fn list(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            let limit = parse_limit(query_param(&req, "limit").as_deref())?;
            let cursor = query_param(&req, "cursor");
            Ok(json_response(StatusCode::OK, &subscriptions::list(ctx, &caller, limit, cursor.as_deref()).await?))
        }
        .await,
    )
}

pub async fn get(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            Ok(json_response(StatusCode::OK, &subscriptions::get(ctx, &caller, &path_param(&req, "id")).await?))
        }
        .await,
    )
}

pub async fn update(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            let body = json_body(&req, MANAGE_BODY_LIMIT)?;
            Ok(json_response(
                StatusCode::OK,
                &subscriptions::update(ctx, &caller, &path_param(&req, "id"), body).await?,
            ))
        }
        .await,
    )
}

pub async fn delete(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            subscriptions::delete(ctx, &caller, &path_param(&req, "id")).await?;
            Ok(empty_response(StatusCode::NO_CONTENT))
        }
        .await,
    )
}

pub async fn send_test(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            let wait = match query_param(&req, "wait").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(AppError::validation("wait", "wait must be true or false")),
            };
            let body = optional_json_body(&req, MANAGE_BODY_LIMIT)?;
            let answer = test_events::send_test_event(ctx, &caller, &path_param(&req, "id"), body, wait).await?;
            Ok(json_response(if wait { StatusCode::OK } else { StatusCode::ACCEPTED }, &answer))
        }
        .await,
    )
}

pub async fn recover(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            let body = json_body(&req, MANAGE_BODY_LIMIT)?;
            Ok(json_response(
                StatusCode::ACCEPTED,
                &deliveries::recover(ctx, &caller, &path_param(&req, "id"), body).await?,
            ))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{fixture, status_and_json};

    #[tokio::test]
    async fn sample_events_without_a_known_key_get_401() {
        let ctx = puck_core::fakes::context();
        use crate::{
            SUBSCRIPTIONS_CREATE, SUBSCRIPTIONS_DELETE, SUBSCRIPTIONS_GET, SUBSCRIPTIONS_LIST, SUBSCRIPTIONS_RECOVER,
            SUBSCRIPTIONS_TEST, SUBSCRIPTIONS_UPDATE,
        };
        for route in [
            SUBSCRIPTIONS_CREATE,
            SUBSCRIPTIONS_LIST,
            SUBSCRIPTIONS_GET,
            SUBSCRIPTIONS_UPDATE,
            SUBSCRIPTIONS_DELETE,
            SUBSCRIPTIONS_TEST,
            SUBSCRIPTIONS_RECOVER,
        ] {
            let (status, body) = status_and_json((route.handler)(&ctx, fixture(route.binary)).await);
            assert_eq!(status, 401, "{}", route.binary);
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }

    #[tokio::test]
    async fn create_from_sample_event_with_a_valid_key_returns_201_and_secret() {
        let (ctx, _) = crate::routes::test_support::context_with_sample_key().await;
        let (status, body) = status_and_json(create(&ctx, fixture("subscriptions-create")).await);
        assert_eq!(status, 201, "{body}");
        assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));
        let (status, body) = status_and_json(get(&ctx, fixture("subscriptions-get")).await);
        assert_eq!(status, 404, "{body}");
        let (status, body) = status_and_json(recover(&ctx, fixture("subscriptions-recover")).await);
        assert_eq!(status, 404, "another account's or an unknown subscription: {body}");
    }
}
