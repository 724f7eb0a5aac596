//! `GET /v1/investigations/{id}` (scope `investigations:read`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::model::Scope;
use puck_core::services::{investigations, Context};
use puck_http::{authenticate, json_response, path_param, respond};

pub async fn get(ctx: &Context, req: Request) -> Response<Body> {
    respond(async {
        let caller = authenticate(ctx, &req, Scope::InvestigationsRead).await?;
        Ok(json_response(StatusCode::OK, &investigations::get_investigation(ctx, &caller, &path_param(&req, "id")).await?))
    }.await)
}
