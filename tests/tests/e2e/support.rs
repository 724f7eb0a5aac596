//! Shared helpers of the e2e tests: common request bodies and assertions.

use puck_e2e::{ApiResponse, TestStack};
use serde_json::{json, Value};

pub const SUBSCRIPTIONS: &str = "/v1/webhooks/subscriptions";
pub const ENDPOINTS: &str = "/v1/webhooks/incoming/endpoints";

/// A valid subscription body for a public HTTPS URL.
pub fn subscription_body() -> Value {
    json!({
        "url": "https://hooks.example.com/puck",
        "events": ["investigation.completed", "finding.discovered"],
        "filters": {"min_severity": "high"}
    })
}

/// Creates a subscription with `body` (201 asserted) and returns the response.
pub async fn create_subscription(stack: &TestStack, body: Value) -> Value {
    let (status, created, _) = stack.post(SUBSCRIPTIONS, body).await;
    assert_eq!(status, 201, "create subscription: {created}");
    created
}

/// The `id` field of a response.
pub fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

/// Asserts a JSON error response: status, `error.code`, and a message containing `needle`.
pub fn assert_error(resp: &ApiResponse, status: u16, code: &str, needle: &str) {
    let (got, body, headers) = resp;
    assert_eq!(*got, status, "expected {status} {code}, got {got}: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("no error.message in {body}"));
    assert!(message.contains(needle), "error message {message:?} should mention {needle:?}");
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "error content-type is {content_type:?}");
}

/// Creates an inbound endpoint (201 asserted) and returns `(response, receiver path, key)`;
/// the path is relative to the stack's base URL.
pub async fn create_endpoint(stack: &TestStack, body: Value) -> (Value, String, String) {
    let (status, created, _) = stack.post(ENDPOINTS, body).await;
    assert_eq!(status, 201, "create endpoint: {created}");
    let url = created["url"].as_str().unwrap_or_else(|| panic!("no url in {created}")).to_owned();
    let path = url.find("/v1/").map(|i| url[i..].to_owned()).unwrap_or_else(|| panic!("odd receiver url {url}"));
    let key = url.rsplit('/').next().unwrap().to_owned();
    (created, path, key)
}
