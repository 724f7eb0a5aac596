//! (being written)
use lambda_http::{Body, Request, Response};
use puck_core::services::Context;
pub async fn get(_ctx: &Context, _req: Request) -> Response<Body> { Response::builder().status(501).body(Body::Empty).unwrap() }
