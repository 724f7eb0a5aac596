//! `POST /v1/events` (scope `events:publish`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::model::Scope;
use puck_core::services::{events, Context};
use puck_http::{authenticate, json_body, json_response, respond, EVENT_BODY_LIMIT};

pub async fn publish(ctx: &Context, req: Request) -> Response<Body> {
    respond(async {
        let caller = authenticate(ctx, &req, Scope::EventsPublish).await?;
        let body = json_body(&req, EVENT_BODY_LIMIT)?;
        Ok(json_response(StatusCode::ACCEPTED, &events::publish(ctx, &caller, body).await?.view()))
    }.await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{context_with_sample_key, fixture, status_and_json};

    #[tokio::test]
    async fn sample_event_publishes() {
        let (ctx, _) = context_with_sample_key().await;
        let (status, body) = status_and_json(publish(&ctx, fixture("events-publish")).await);
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["deliveries"], 0);
    }
}
