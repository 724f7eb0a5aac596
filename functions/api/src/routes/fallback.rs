//! The HTTP API's `$default` route: API Gateway invokes it for every request no route matches.
//! It answers the API's JSON 404, or 405 with `Allow` when the path is a route's path with another
//! method, instead of API Gateway's own `{"message":"Not Found"}`. It touches no data.

use crate::{match_route, RouteMatch};
use lambda_http::{Body, Request, Response};
use puck_core::services::Context;
use puck_http::{error_response, ApiError};

/// The table's handler: the context is unused (the local stack passes its own).
pub async fn not_found(_ctx: &Context, req: Request) -> Response<Body> {
    answer(&req)
}

/// The response for an unmatched request, through the API's one error mapping. The raw path is
/// echoed to the caller but never logged: an inbound receiver's path carries its URL key.
pub fn answer(req: &Request) -> Response<Body> {
    let (method, path) = (req.method().as_str().to_owned(), req.uri().path().to_owned());
    let error = match match_route(&method, &path) {
        RouteMatch::MethodNotAllowed(allowed) => ApiError::MethodNotAllowed { method, path, allowed },
        // `Found` means API Gateway matched no route although the table has one (the template and
        // ROUTES disagree, which a parity test forbids): still no route served it.
        RouteMatch::NotFound | RouteMatch::Found { .. } => ApiError::NoRoute { method, path },
    };
    let resp = error_response(error);
    tracing::info!(method = req.method().as_str(), status = resp.status().as_u16(), "unmatched request");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::{fixture, status_and_json};

    fn request(method: &str, path: &str) -> Request {
        lambda_http::http::Request::builder().method(method).uri(path).body(Body::Empty).unwrap()
    }

    #[tokio::test]
    async fn unknown_paths_are_json_404() {
        let ctx = puck_core::fakes::context();
        let (status, body) = status_and_json(not_found(&ctx, fixture("not-found")).await);
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
        assert_eq!(body["error"]["message"], "no route for GET /v1/webhooks/nope");
        for path in ["/", "/v1", "/v2/webhooks/subscriptions", "/v1/webhooks/subscriptions/sub_x/extra"] {
            let resp = answer(&request("GET", path));
            assert!(resp.headers().get("allow").is_none());
            let (status, body) = status_and_json(resp);
            assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{path}");
        }
    }

    #[test]
    fn a_known_path_with_another_method_is_json_405_with_allow() {
        for (method, path, allow) in [
            ("PUT", "/v1/webhooks/subscriptions", "GET, POST"),
            ("POST", "/v1/webhooks/subscriptions/sub_x", "DELETE, GET, PATCH"),
            ("GET", "/v1/webhooks/subscriptions/sub_x/test", "POST"),
            ("GET", "/v1/webhooks/incoming/github/somekey", "POST"),
            ("DELETE", "/v1/investigations/inv_x", "GET"),
        ] {
            let resp = answer(&request(method, path));
            assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
            assert_eq!(resp.headers()["content-type"], "application/json");
            let (status, body) = status_and_json(resp);
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(body["error"]["code"], "method_not_allowed");
            assert_eq!(body["error"]["message"], format!("{method} is not allowed on {path} (allowed: {allow})"));
        }
    }

    #[test]
    fn path_params_match_exactly_one_non_empty_segment() {
        let status = |path: &str| answer(&request("PUT", path)).status().as_u16();
        assert_eq!(status("/v1/webhooks/deliveries/dlv_1"), 405);
        assert_eq!(status("/v1/webhooks/deliveries/dlv_1/replay"), 405);
        assert_eq!(status("/v1/webhooks/deliveries/"), 404);
        assert_eq!(status("/v1/webhooks/deliveries//replay"), 404);
        assert_eq!(status("/v1/webhooks/deliveries/dlv_1/replay/x"), 404);
    }
}
