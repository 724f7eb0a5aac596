//! `POST /v1/webhooks/incoming/{provider}/{key}`: the receiver external systems call. No API key:
//! the URL key authenticates, and the provider signature is checked when the endpoint has a
//! signing secret. Order of checks: unknown provider (404), body size (413), then the service
//! (401 / 400 / 202).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use puck_core::providers::Headers;
use puck_core::services::receive::{parse_provider_segment, InboundRequest};
use puck_core::services::{self, Context};
use puck_http::{body_bytes, json_response, path_param, respond, INBOUND_BODY_LIMIT};

/// The request headers whose values are text; others cannot carry a signature we check.
fn headers_of(req: &Request) -> Headers {
    Headers::new(
        req.headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))),
    )
}

/// 202 `{"investigation_id"}` or 202 `{"ignored": true, "reason"}`; 401 bad key or signature;
/// 404 unknown provider; 413 over 1 MiB.
pub async fn receive(ctx: &Context, req: Request) -> Response<Body> {
    respond(
        async {
            let provider = parse_provider_segment(&path_param(&req, "provider"))?;
            let body = body_bytes(&req, INBOUND_BODY_LIMIT)?;
            let key = path_param(&req, "key");
            let headers = headers_of(&req);
            let received =
                services::receive::receive(ctx, InboundRequest { provider, key: &key, headers: &headers, body })
                    .await?;
            Ok(json_response(StatusCode::ACCEPTED, &received.view()))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{fixture, status_and_json};
    use lambda_http::RequestExt;
    use puck_core::fakes::caller;
    use puck_core::ids::EndpointId;
    use puck_core::model::{Endpoint, Provider};
    use puck_core::time::Timestamp;
    use serde_json::json;
    use std::collections::HashMap;

    /// The receiver key every `inbound-*` sample carries.
    fn fixture_key(name: &str) -> String {
        fixture(name).path_parameters().first("key").unwrap().to_owned()
    }

    /// Stores an endpoint of a fresh account whose key is the samples' key.
    async fn sample_endpoint(ctx: &Context, provider: Provider, secret: Option<&str>) -> Endpoint {
        let id = EndpointId::generate(1);
        let endpoint = Endpoint {
            signing_secret_enc: secret.map(|s| ctx.keyring.encrypt(s, id.as_str())),
            id,
            account_id: caller().account_id,
            provider,
            url_key_hash: ctx.keyring.lookup_hash(&fixture_key("inbound-receive")),
            url_key_prefix: "Qm7Vt2Kx".into(),
            active: true,
            default_scope: None,
            default_depth: Some("standard".into()),
            created_at: Timestamp(1_777_818_121_000),
        };
        ctx.endpoints.insert(&endpoint).await.unwrap();
        endpoint
    }

    /// The sample receiver event, pointed at `provider`/`key`.
    fn sample(provider: &str, key: &str) -> Request {
        let req = fixture("inbound-receive");
        let params = HashMap::from([
            ("provider".to_owned(), vec![provider.to_owned()]),
            ("key".to_owned(), vec![key.to_owned()]),
        ]);
        req.with_path_parameters(params)
    }

    #[tokio::test]
    async fn sample_event_with_an_unknown_key_gets_401() {
        let ctx = puck_core::fakes::context();
        let (status, body) = status_and_json((crate::INBOUND_RECEIVE.handler)(&ctx, fixture("inbound-receive")).await);
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["message"], "invalid receiver key");
    }

    #[tokio::test]
    async fn unknown_provider_is_404() {
        let ctx = puck_core::fakes::context();
        let (status, body) = status_and_json(receive(&ctx, sample("gitlab", "whatever")).await);
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }

    #[tokio::test]
    async fn sample_event_with_a_valid_key_queues_an_investigation() {
        let ctx = puck_core::fakes::context();
        let who = caller();
        let created = puck_core::services::endpoints::create_endpoint(
            &ctx,
            &who,
            json!({"provider": "generic"}),
            "https://x.test",
        )
        .await
        .unwrap();
        let key = created["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
        let (status, body) = status_and_json(receive(&ctx, sample("generic", &key)).await);
        assert_eq!(status, 202, "{body}");
        let id = body["investigation_id"].as_str().unwrap();
        assert!(id.starts_with("inv_"));
        let inv = puck_core::services::investigations::get_investigation(&ctx, &who, id).await.unwrap();
        assert_eq!(inv["query"], "Investigate suspicious login from 203.0.113.7");
        assert_eq!(inv["depth"], "quick");

        // The right key on the wrong provider path is 401, not 404.
        let (status, _) = status_and_json(receive(&ctx, sample("github", &key)).await);
        assert_eq!(status, 401);
    }

    #[tokio::test]
    async fn github_samples_verify_with_the_endpoints_create_secret() {
        let ctx = puck_core::fakes::context();
        // The secret of events/endpoints-create.json signed the github samples.
        let endpoint = sample_endpoint(&ctx, Provider::Github, Some("gh-webhook-secret-value")).await;
        let (status, body) = status_and_json(receive(&ctx, fixture("inbound-github-code-scanning")).await);
        assert_eq!(status, 202, "{body}");
        let id = body["investigation_id"].as_str().unwrap().to_owned();
        let who = puck_core::model::Caller { account_id: endpoint.account_id.clone(), ..caller() };
        let inv = puck_core::services::investigations::get_investigation(&ctx, &who, &id).await.unwrap();
        assert_eq!(inv["trigger"], "github:code_scanning_alert");
        assert_eq!(
            inv["summary"],
            "GitHub code scanning alert #42 in acme/api: Database query built from user-controlled sources (high)"
        );

        // GitHub's "Redeliver" sends the same X-GitHub-Delivery: same investigation.
        let (status, again) = status_and_json(receive(&ctx, fixture("inbound-github-code-scanning")).await);
        assert_eq!((status, again["investigation_id"].as_str()), (202, Some(id.as_str())));

        let (status, ping) = status_and_json(receive(&ctx, fixture("inbound-github-ping")).await);
        assert_eq!((status, ping), (202, json!({"ignored": true, "reason": "ping"})));
    }

    #[tokio::test]
    async fn github_sample_with_another_secret_is_401() {
        let ctx = puck_core::fakes::context();
        sample_endpoint(&ctx, Provider::Github, Some("a different secret")).await;
        let (status, body) = status_and_json(receive(&ctx, fixture("inbound-github-code-scanning")).await);
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["message"], "signature verification failed");
    }

    #[tokio::test]
    async fn crowdstrike_sample_queues_an_investigation() {
        let ctx = puck_core::fakes::context();
        sample_endpoint(&ctx, Provider::Crowdstrike, None).await;
        let (status, body) = status_and_json(receive(&ctx, fixture("inbound-crowdstrike-detection")).await);
        assert_eq!(status, 202, "{body}");
        assert!(body["investigation_id"].as_str().unwrap().starts_with("inv_"));
    }

    #[tokio::test]
    async fn body_over_one_mib_is_413() {
        let ctx = puck_core::fakes::context();
        sample_endpoint(&ctx, Provider::Generic, None).await;
        let req = fixture("inbound-receive").map(|_| Body::Text(" ".repeat(INBOUND_BODY_LIMIT + 1)));
        let (status, body) = status_and_json(receive(&ctx, req).await);
        assert_eq!(status, 413, "{body}");
    }
}
