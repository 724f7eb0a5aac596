//! `/v1/webhooks/deliveries` routes (scope `webhooks:manage`): the log and replay.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::model::Scope;
use puck_core::services::deliveries::{self, LogQuery};
use puck_core::services::Context;
use puck_http::{authenticate, json_response, path_param, query_param, respond};

pub async fn list(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            let query = LogQuery::parse(|name| query_param(&req, name))?;
            Ok(json_response(StatusCode::OK, &deliveries::list(ctx, &caller, &query).await?))
        }
        .await,
    )
}

pub async fn get(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            Ok(json_response(StatusCode::OK, &deliveries::get(ctx, &caller, &path_param(&req, "id")).await?))
        }
        .await,
    )
}

pub async fn replay(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let caller = authenticate(ctx, &req, Scope::WebhooksManage).await?;
            Ok(json_response(StatusCode::ACCEPTED, &deliveries::replay(ctx, &caller, &path_param(&req, "id")).await?))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{fixture, memory_with_sample_key, status_and_json, with_path_param};
    use crate::{DELIVERIES_GET, DELIVERIES_LIST, DELIVERIES_REPLAY};
    use lambda_http::RequestExt;
    use puck_core::model::DeliveryStatus;
    use std::collections::HashMap;

    #[tokio::test]
    async fn sample_events_without_a_known_key_get_401() {
        let ctx = puck_core::fakes::context();
        for route in [DELIVERIES_LIST, DELIVERIES_GET, DELIVERIES_REPLAY] {
            let (status, body) = status_and_json((route.handler)(&ctx, fixture(route.binary)).await);
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (401, Some("unauthorized")),
                "{}: {body}",
                route.binary
            );
        }
    }

    /// Publishes the samples (the `subscriptions-create` subscription takes the `events-publish`
    /// event): the subscription id and the one delivery's id.
    async fn published(ctx: &Context) -> (String, String) {
        let (status, sub) =
            status_and_json(crate::routes::subscriptions::create(ctx, fixture("subscriptions-create")).await);
        assert_eq!(status, 201, "{sub}");
        let (status, published) = status_and_json(crate::routes::events::publish(ctx, fixture("events-publish")).await);
        assert_eq!((status, published["deliveries"].as_u64()), (202, Some(1)), "{published}");
        let sub_id = sub["id"].as_str().unwrap().to_owned();
        let query = HashMap::from([("subscription_id".to_owned(), sub_id.clone())]);
        let (status, listed) =
            status_and_json(list(ctx, fixture("deliveries-list").with_query_string_parameters(query)).await);
        assert_eq!(status, 200, "{listed}");
        (sub_id, listed["deliveries"][0]["id"].as_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn list_applies_the_sample_filters_and_the_log_shows_the_published_delivery() {
        let (ctx, _, _) = memory_with_sample_key().await;
        let (sub_id, delivery_id) = published(&ctx).await;
        // The sample asks for failed deliveries of a subscription this account does not have.
        let (status, body) = status_and_json(list(&ctx, fixture("deliveries-list")).await);
        assert_eq!((status, body["error"]["message"].as_str()), (404, Some("subscription not found")), "{body}");

        let query = HashMap::from([
            ("subscription_id".to_owned(), sub_id.clone()),
            ("status".to_owned(), "pending".to_owned()),
        ]);
        let (status, body) =
            status_and_json(list(&ctx, fixture("deliveries-list").with_query_string_parameters(query)).await);
        assert_eq!(status, 200, "{body}");
        let only = body["deliveries"].as_array().unwrap();
        assert_eq!(only.len(), 1, "{body}");
        assert_eq!(
            (only[0]["id"].as_str(), only[0]["subscription_id"].as_str()),
            (Some(delivery_id.as_str()), Some(sub_id.as_str()))
        );
        assert_eq!(
            (only[0]["event_type"].as_str(), only[0]["status"].as_str()),
            (Some("finding.discovered"), Some("pending"))
        );
    }

    #[tokio::test]
    async fn list_names_the_bad_query_parameter() {
        let (ctx, _, _) = memory_with_sample_key().await;
        for (name, value, needle) in [
            ("status", "lost", "status must be one of"),
            ("limit", "0", "limit"),
            ("subscription_id", "nope", "subscription_id"),
        ] {
            let query = HashMap::from([(name.to_owned(), value.to_owned())]);
            let (status, body) =
                status_and_json(list(&ctx, fixture("deliveries-list").with_query_string_parameters(query)).await);
            assert_eq!((status, body["error"]["code"].as_str()), (400, Some("validation_error")), "{name}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{name}: {body}");
        }
    }

    #[tokio::test]
    async fn get_shows_a_delivery_with_its_attempts_and_the_unknown_sample_id_is_404() {
        let (ctx, _, _) = memory_with_sample_key().await;
        let (_, delivery_id) = published(&ctx).await;
        let (status, body) = status_and_json(get(&ctx, fixture("deliveries-get")).await);
        assert_eq!((status, body["error"]["message"].as_str()), (404, Some("delivery not found")), "{body}");
        let (status, body) =
            status_and_json(get(&ctx, with_path_param(fixture("deliveries-get"), "id", &delivery_id)).await);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["id"].as_str(), body["attempts"].as_array().map(Vec::len)),
            (Some(delivery_id.as_str()), Some(0))
        );
    }

    #[tokio::test]
    async fn replay_puts_the_delivery_back_on_the_queue_and_the_unknown_sample_id_is_404() {
        let (ctx, _, mem) = memory_with_sample_key().await;
        let (_, delivery_id) = published(&ctx).await;
        mem.queue.lock().unwrap().clear();
        let (status, body) = status_and_json(replay(&ctx, fixture("deliveries-replay")).await);
        assert_eq!((status, body["error"]["message"].as_str()), (404, Some("delivery not found")), "{body}");
        assert!(mem.queue.lock().unwrap().is_empty());

        // Still pending: being sent, so not replayed.
        let replayed = || replay(&ctx, with_path_param(fixture("deliveries-replay"), "id", &delivery_id));
        let (status, body) = status_and_json(replayed().await);
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
        assert!(mem.queue.lock().unwrap().is_empty());
        // Dead-lettered, it replays.
        mem.deliveries.lock().unwrap().values_mut().for_each(|d| d.status = DeliveryStatus::FailedPermanent);
        let (status, body) = status_and_json(replayed().await);
        assert_eq!((status, body), (202, serde_json::json!({"delivery_id": delivery_id, "status": "pending"})));
        let queued: Vec<String> = mem.queue.lock().unwrap().iter().map(|j| j.delivery_id.to_string()).collect();
        assert_eq!(queued, [delivery_id]);
    }
}
