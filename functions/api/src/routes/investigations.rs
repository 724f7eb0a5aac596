//! `GET /v1/investigations/{id}` (scope `investigations:read`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::ids::InvestigationId;
use puck_core::model::Scope;
use puck_core::services::Context;
use puck_core::AppError;
use puck_http::{authenticate, json_response, path_param, respond};

pub async fn get(ctx: &Context, req: Request) -> Response<Body> {
    respond(async {
        let caller = authenticate(ctx, &req, Scope::InvestigationsRead).await?;
        let id = InvestigationId::parse(&path_param(&req, "id")).map_err(|_| AppError::NotFound("investigation"))?;
        let inv = ctx.investigations.get(&caller.account_id, &id).await?.ok_or(AppError::NotFound("investigation"))?;
        Ok(json_response(StatusCode::OK, &inv.view()))
    }.await)
}
