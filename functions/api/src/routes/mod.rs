//! Route handlers, grouped by resource. Each parses the request, calls a core service and maps
//! the result with `puck_http`.

pub mod console;
pub mod deliveries;
pub mod endpoints;
pub mod event_types;
pub mod events;
pub mod fallback;
pub mod investigations;
pub mod receivers;
pub mod reference;
pub mod subscriptions;

#[cfg(test)]
pub(crate) mod test_support {
    //! Handler tests are fed the same `events/*.json` files the local stack and docs use, compiled
    //! in with `include_str!` (as `lambda_http`'s own examples load theirs) and parsed with
    //! `lambda_http::request::from_str`, the parser Lambda itself runs.
    use lambda_http::{Body, Request, RequestExt, Response};
    use puck_core::fakes::Memory;
    use puck_core::ids::AccountId;
    use puck_core::model::Scope;
    use puck_core::secret::Secret;
    use puck_core::services::{auth, Context};
    use serde_json::Value;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// `events/<name>.json` of every API event the handler tests use.
    macro_rules! fixtures {
        ($($name:literal),* $(,)?) => {
            const FIXTURES: &[(&str, &str)] =
                &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/", $name, ".json")))),*];
        };
    }

    fixtures![
        "api-docs",
        "console",
        "console-asset",
        "deliveries-get",
        "deliveries-list",
        "deliveries-replay",
        "endpoints-create",
        "endpoints-delete",
        "endpoints-list",
        "events-publish",
        "events-publish-batch",
        "inbound-crowdstrike-detection",
        "inbound-github-code-scanning",
        "inbound-github-ping",
        "inbound-receive",
        "investigations-get",
        "not-found",
        "openapi-document",
        "subscriptions-create",
        "subscriptions-delete",
        "subscriptions-get",
        "subscriptions-list",
        "subscriptions-test",
        "subscriptions-update",
        "subscriptions-recover",
        "event-types-list",
    ];

    /// The sample event `events/<name>.json` as the request Lambda would hand the handler.
    pub fn fixture(name: &str) -> Request {
        let raw = FIXTURES.iter().find(|(n, _)| *n == name).map(|(_, raw)| *raw);
        let raw = raw.unwrap_or_else(|| panic!("events/{name}.json: add it to FIXTURES in routes/mod.rs"));
        lambda_http::request::from_str(raw).unwrap_or_else(|e| panic!("events/{name}.json: {e}"))
    }

    /// The bearer key every sample event carries.
    pub fn sample_key() -> String {
        let (_, raw) = FIXTURES.iter().find(|(n, _)| *n == "subscriptions-create").unwrap();
        let v: Value = serde_json::from_str(raw).unwrap();
        v["headers"]["authorization"].as_str().unwrap().trim_start_matches("Bearer ").to_owned()
    }

    #[test]
    fn every_route_has_a_fixture() {
        for route in crate::ROUTES {
            let req = fixture(route.binary);
            assert!(route.is_default() || req.method().as_str() == route.method, "{}", route.binary);
        }
    }

    /// A fake-backed context in which the samples' key is valid.
    pub async fn context_with_sample_key() -> (Context, AccountId) {
        let (ctx, account, _) = memory_with_sample_key().await;
        (ctx, account)
    }

    /// [`context_with_sample_key`] with the in-memory fakes it runs on, for checking what was written.
    pub async fn memory_with_sample_key() -> (Context, AccountId, Arc<Memory>) {
        let mem = Arc::new(Memory::default());
        let ctx = puck_core::fakes::context_with(mem.clone());
        let account = AccountId::generate(1);
        auth::issue_api_key(&ctx, &account, &Scope::ALL, Secret::new(sample_key())).await.unwrap();
        (ctx, account, mem)
    }

    /// `req` with its path parameter `name` set to `value` (as API Gateway binds `{name}`).
    pub fn with_path_param(req: Request, name: &str, value: &str) -> Request {
        req.with_path_parameters(HashMap::from([(name.to_owned(), vec![value.to_owned()])]))
    }

    pub fn status_and_json(resp: Response<Body>) -> (u16, Value) {
        let status = resp.status().as_u16();
        let body = match resp.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, body)
    }
}
