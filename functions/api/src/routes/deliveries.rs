//! `/v1/webhooks/deliveries` routes (scope `webhooks:manage`): the log and replay.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::model::Scope;
use puck_core::page::parse_limit;
use puck_core::services::deliveries::{self, ListQuery};
use puck_core::services::Context;
use puck_http::{authenticate, json_response, path_param, query_param, respond};

pub async fn list(ctx: &Context, req: Request) -> Response<Body> {
    respond(async {
        let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
        let param = |name| query_param(&req, name);
        let (status, subscription_id, cursor) = (param("status"), param("subscription_id"), param("cursor"));
        let (event_type, event_id, since, until) = (param("event_type"), param("event_id"), param("since"), param("until"));
        let query = ListQuery {
            status: status.as_deref(),
            subscription_id: subscription_id.as_deref(),
            event_type: event_type.as_deref(),
            event_id: event_id.as_deref(),
            since: since.as_deref(),
            until: until.as_deref(),
            limit: parse_limit(query_param(&req, "limit").as_deref())?,
            cursor: cursor.as_deref(),
        };
        Ok(json_response(StatusCode::OK, &deliveries::list(ctx, &caller, query).await?))
    }.await)
}

pub async fn get(ctx: &Context, req: Request) -> Response<Body> {
    respond(async {
        let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
        Ok(json_response(StatusCode::OK, &deliveries::get(ctx, &caller, &path_param(&req, "id")).await?))
    }.await)
}

pub async fn replay(ctx: &Context, req: Request) -> Response<Body> {
    respond(async {
        let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
        Ok(json_response(StatusCode::ACCEPTED, &deliveries::replay(ctx, &caller, &path_param(&req, "id")).await?))
    }.await)
}
