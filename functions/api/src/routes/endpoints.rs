//! (being written)
use lambda_http::{Body, Request, Response};
use puck_core::services::Context;
pub async fn create(_ctx: &Context, _req: Request) -> Response<Body> { Response::builder().status(501).body(Body::Empty).unwrap() }
pub async fn list(_ctx: &Context, _req: Request) -> Response<Body> { Response::builder().status(501).body(Body::Empty).unwrap() }
pub async fn delete(_ctx: &Context, _req: Request) -> Response<Body> { Response::builder().status(501).body(Body::Empty).unwrap() }
