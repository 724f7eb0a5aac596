//! `POST /v1/events` and `POST /v1/events/batch` (scope `events:publish`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::model::Scope;
use puck_core::services::{events, Context};
use puck_http::{authenticate, json_body, json_response, respond, BATCH_BODY_LIMIT, EVENT_BODY_LIMIT};
use serde_json::json;

pub async fn publish(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::EventsPublish).await?;
            let body = json_body(&req, EVENT_BODY_LIMIT)?;
            Ok(json_response(StatusCode::ACCEPTED, &events::publish(ctx, &caller, body).await?.view()))
        }
        .await,
    )
}

/// 202 `{"results": [{"event_id", "deliveries"}, …]}` in request order; 413 over 1 MiB.
pub async fn publish_batch(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::EventsPublish).await?;
            let body = json_body(&req, BATCH_BODY_LIMIT)?;
            let results = events::publish_batch(ctx, &caller, body).await?;
            let views: Vec<_> = results.iter().map(events::Published::view).collect();
            Ok(json_response(StatusCode::ACCEPTED, &json!({ "results": views })))
        }
        .await,
    )
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

    #[tokio::test]
    async fn sample_batch_publishes_in_order_and_bad_input_is_400_naming_the_event() {
        let (ctx, _) = context_with_sample_key().await;
        let (status, body) = status_and_json(publish_batch(&ctx, fixture("events-publish-batch")).await);
        assert_eq!(status, 202, "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["event_id"], "evt_batch_0001");
        assert_eq!(results[1]["event_id"], "evt_batch_0002");
        let bad = fixture("events-publish-batch").map(|_| {
            Body::Text(
                r#"{"events": [{"event_type": "chain.confirmed", "data": {}}, {"event_type": "x", "data": {}}]}"#
                    .into(),
            )
        });
        let (status, body) = status_and_json(publish_batch(&ctx, bad).await);
        assert_eq!(status, 400, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("events[1].event_type: "), "{body}");
        let huge = fixture("events-publish-batch").map(|_| Body::Text(" ".repeat(BATCH_BODY_LIMIT + 1)));
        assert_eq!(publish_batch(&ctx, huge).await.status(), 413);
    }
}
