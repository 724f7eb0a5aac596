//! Route handlers, grouped by resource. Each parses the request, calls a core service and maps
//! the result with `puck_http`.

pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod fallback;
pub mod investigations;
pub mod receivers;
pub mod subscriptions;

#[cfg(test)]
pub(crate) mod test_support {
    //! Handler tests are fed the same `events/*.json` files the local stack and docs use.
    use lambda_http::{Body, Request, Response};
    use puck_core::ids::AccountId;
    use puck_core::model::Scope;
    use puck_core::secret::Secret;
    use puck_core::services::{auth, Context};
    use serde_json::Value;

    pub fn fixture(binary: &str) -> Request {
        let path = format!("{}/../../events/{binary}.json", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        lambda_http::request::from_str(&raw).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The bearer key every sample event carries.
    pub fn sample_key() -> String {
        let raw = std::fs::read_to_string(format!("{}/../../events/subscriptions-create.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let v: Value = serde_json::from_str(&raw).unwrap();
        v["headers"]["authorization"].as_str().unwrap().trim_start_matches("Bearer ").to_owned()
    }

    /// A fake-backed context in which the samples' key is valid.
    pub async fn context_with_sample_key() -> (Context, AccountId) {
        let ctx = puck_core::testing::context();
        let account = AccountId::generate(1);
        auth::issue_api_key(&ctx, &account, &Scope::ALL, Secret::new(sample_key())).await.unwrap();
        (ctx, account)
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
