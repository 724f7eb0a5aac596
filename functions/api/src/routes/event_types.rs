//! `GET /v1/webhooks/event-types` (scope `webhooks:manage`): the event-type catalog, so clients
//! and the console pick types, wildcards and groups from the same list validation uses.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::catalog;
use puck_core::model::Scope;
use puck_core::services::Context;
use puck_http::{authenticate, json_response, respond};

pub async fn list(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            authenticate(ctx, &req, Scope::WebhooksManage).await?;
            Ok(json_response(StatusCode::OK, &catalog::view()))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{context_with_sample_key, fixture, status_and_json};

    #[tokio::test]
    async fn sample_event_lists_every_type_with_schema_and_example() {
        let ctx = puck_core::fakes::context();
        let (status, body) = status_and_json(list(&ctx, fixture("event-types-list")).await);
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));

        let (ctx, _) = context_with_sample_key().await;
        let (status, body) = status_and_json(list(&ctx, fixture("event-types-list")).await);
        assert_eq!(status, 200, "{body}");
        let types = body["event_types"].as_array().unwrap();
        assert_eq!(types.len(), catalog::CATALOG.len());
        let finding = types.iter().find(|t| t["name"] == "finding.discovered").unwrap();
        assert_eq!((finding["group"].as_str(), finding["has_severity"].as_bool()), (Some("finding.*"), Some(true)));
        assert_eq!(finding["schema"]["type"], "object");
        assert!(finding["example"]["title"].is_string());
        assert!(body["groups"].as_array().unwrap().iter().any(|g| g == "webhook.*"));
    }
}
