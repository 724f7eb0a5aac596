//! lambda_http glue shared by every route function: auth, JSON in and out, and the one mapping
//! from [`AppError`] to an HTTP status and a JSON error body.
//!
//! Client errors pass through with a code and a message naming the problem; dependency failures
//! are 503 (retryable); anything else is a 500 whose details are logged, never returned. A request
//! no route takes ([`ApiError::NoRoute`], [`ApiError::MethodNotAllowed`]) goes through the same
//! mapping, so the `$default` function and the local gateway answer it exactly as a handler would.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use puck_core::model::{Caller, Scope};
use puck_core::services::{auth, Context};
use puck_core::AppError;
use serde_json::{json, Value};

/// Body limit of management routes (subscriptions, endpoints, replay, test).
pub const MANAGE_BODY_LIMIT: usize = 64 * 1024;
/// Body limit of `POST /v1/events`: the size of one event, which core enforces for every way in.
pub const EVENT_BODY_LIMIT: usize = puck_core::services::events::MAX_EVENT_BYTES;
/// `POST /v1/events/batch`: up to 100 events in at most 1 MiB (each event still ≤ 128 KiB).
pub const BATCH_BODY_LIMIT: usize = 1024 * 1024;
/// Body limit of inbound receivers (provider payloads can be large).
pub const INBOUND_BODY_LIMIT: usize = 1024 * 1024;

/// The stable error code of each error kind.
pub fn error_code(err: &AppError) -> (StatusCode, &'static str) {
    match err {
        AppError::Validation(_) => (StatusCode::BAD_REQUEST, "validation_error"),
        AppError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
        AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
        AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
        AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        AppError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        AppError::LimitExceeded(_) => (StatusCode::BAD_REQUEST, "limit_exceeded"),
    }
}

/// Every error the API answers with: a use case's [`AppError`], or the router's own when no route
/// takes the request (what API Gateway's `$default` route and the local gateway answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    App(AppError),
    /// No route has this path: 404.
    NoRoute {
        method: String,
        path: String,
    },
    /// Routes have this path, none with this method: 405 with `Allow` (`allowed` sorted, unique).
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: Vec<&'static str>,
    },
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<&AppError> for ApiError {
    fn from(e: &AppError) -> Self {
        Self::App(e.clone())
    }
}

/// The message a caller sees for a use case's error; internals are logged instead.
fn public_message(err: &AppError) -> String {
    match err {
        AppError::Internal(detail) => {
            tracing::error!(error = %puck_core::error::error_chain(detail), "internal error");
            "internal error".to_owned()
        }
        AppError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "dependency unavailable");
            "service temporarily unavailable; retry later".to_owned()
        }
        AppError::Validation(e) => {
            tracing::info!(field = %e.field, "request refused: validation error");
            e.message.clone()
        }
        other => other.to_string(),
    }
}

/// The one mapping from an error to the API's response: `{"error": {"code", "message"}}` with the
/// matching status, `Retry-After` on 503 and `Allow` on 405. The raw path of an unrouted request is
/// echoed to the caller but never logged here: an inbound receiver's path carries its URL key.
pub fn error_response(err: impl Into<ApiError>) -> Response<Body> {
    let err = err.into();
    let (status, code, message) = match &err {
        ApiError::App(app) => {
            let (status, code) = error_code(app);
            (status, code, public_message(app))
        }
        ApiError::NoRoute { method, path } => {
            (StatusCode::NOT_FOUND, "not_found", format!("no route for {method} {path}"))
        }
        ApiError::MethodNotAllowed { method, path, allowed } => (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path} (allowed: {})", allowed.join(", ")),
        ),
    };
    let mut resp = json_response(status, &json!({ "error": { "code": code, "message": message } }));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
    }
    if let ApiError::App(AppError::RateLimited { retry_after_secs, .. }) = &err {
        resp.headers_mut().insert("retry-after", HeaderValue::from(*retry_after_secs));
    }
    if let ApiError::MethodNotAllowed { allowed, .. } = &err {
        if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
            resp.headers_mut().insert("allow", v);
        }
    }
    resp
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = status;
    resp
}

/// Turns a handler's result into the response.
pub fn respond(result: Result<Response<Body>, AppError>) -> Response<Body> {
    result.unwrap_or_else(error_response)
}

/// The raw body bytes, refusing more than `limit` with 413.
pub fn body_bytes(req: &Request, limit: usize) -> Result<&[u8], AppError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > limit {
        return Err(AppError::PayloadTooLarge(limit));
    }
    Ok(bytes)
}

/// Parses the body as JSON whatever the Content-Type (curl's `-d` sends form encoding by
/// default, and the seed examples rely on that working). Empty body → 400.
pub fn json_body(req: &Request, limit: usize) -> Result<Value, AppError> {
    let bytes = body_bytes(req, limit)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::MalformedJson("request body must be a JSON object".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| AppError::MalformedJson(format!("request body is not valid JSON: {e}")))
}

/// Like [`json_body`], for routes whose body is optional: an empty body is `None`.
pub fn optional_json_body(req: &Request, limit: usize) -> Result<Option<Value>, AppError> {
    if body_bytes(req, limit)?.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    json_body(req, limit).map(Some)
}

/// A path parameter bound by the route (`{id}`); API Gateway always supplies declared ones.
pub fn path_param(req: &Request, name: &str) -> String {
    req.path_parameters().first(name).unwrap_or_default().to_owned()
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters().first(name).map(str::to_owned)
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates the bearer key and checks `scope` (401/403 as docs/api.md).
pub async fn authenticate(ctx: &Context, req: &Request, scope: Scope) -> Result<Caller, AppError> {
    auth::authenticate(ctx, header(req, "authorization"), scope).await
}

/// The public base URL of this API (for receiver URLs): the request's own host and scheme.
pub fn public_base_url(req: &Request) -> String {
    let proto = header(req, "x-forwarded-proto").unwrap_or("https");
    let host = header(req, "host").map(str::to_owned).or_else(|| match req.request_context() {
        lambda_http::request::RequestContext::ApiGatewayV2(c) => c.domain_name,
        _ => None,
    });
    format!("{proto}://{}", host.unwrap_or_else(|| "localhost".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_maps_to_its_status_and_hides_internals() {
        let cases = [
            (AppError::validation("url", "url must use https"), 400, "validation_error"),
            (AppError::MalformedJson("bad".into()), 400, "invalid_json"),
            (AppError::Unauthorized("x".into()), 401, "unauthorized"),
            (AppError::Forbidden("events:publish"), 403, "forbidden"),
            (AppError::NotFound("subscription"), 404, "not_found"),
            (AppError::Conflict("delivery is pending".into()), 409, "conflict"),
            (AppError::Conflict("subscription changed".into()), 409, "conflict"),
            (AppError::PayloadTooLarge(10), 413, "payload_too_large"),
            (AppError::Unavailable("dynamodb timeout at 10.0.0.1".into()), 503, "service_unavailable"),
            (AppError::bug("secret key material"), 500, "internal_error"),
            (AppError::RateLimited { message: "slow down".into(), retry_after_secs: 3 }, 429, "rate_limited"),
            (AppError::LimitExceeded("too many".into()), 400, "limit_exceeded"),
        ];
        for (err, status, code) in cases {
            let resp = error_response(&err);
            assert_eq!(resp.status().as_u16(), status);
            let Body::Text(text) = resp.body() else { panic!("json body") };
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(v["error"]["code"], code);
            assert!(!text.contains("10.0.0.1") && !text.contains("key material"), "{text}");
        }
    }

    #[test]
    fn unrouted_requests_are_json_404_and_405_with_allow() {
        let resp = error_response(ApiError::NoRoute { method: "GET".into(), path: "/v1/nope".into() });
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers().get("allow").is_none());
        let Body::Text(text) = resp.body() else { panic!("json body") };
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v, json!({"error": {"code": "not_found", "message": "no route for GET /v1/nope"}}));

        let allowed = vec!["GET", "POST"];
        let resp = error_response(ApiError::MethodNotAllowed { method: "PUT".into(), path: "/v1/x".into(), allowed });
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()["allow"], "GET, POST");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let Body::Text(text) = resp.body() else { panic!("json body") };
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed");
        assert_eq!(v["error"]["message"], "PUT is not allowed on /v1/x (allowed: GET, POST)");
    }
}
