//! The HTTP API on loopback, behaving like API Gateway HTTP API (payload format 2.0).
//!
//! Routes come from template.yaml (`HttpApi` events), which must equal `puck_api::ROUTES`, the one
//! route table; requests are matched with `puck_api::match_route`, the matcher the `not-found`
//! function uses too. Each request is turned into the same API Gateway v2 event JSON Lambda would
//! receive, parsed with `lambda_http::request::from_str` and handed to the route's handler. That
//! way the handlers run exactly the code path they run in AWS, including `lambda_http`'s own event
//! parsing.
//!
//! A request no route matches goes to the template's `$default` route, as in API Gateway; only a
//! template without one gets the JSON 404/405 straight from `puck_http`'s one error mapping.

use crate::template::Route;
use anyhow::{bail, Result};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use puck_api::RouteMatch;
use puck_core::services::Context;
use puck_http::ApiError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Largest request body accepted, like a Lambda-backed API Gateway route (6 MB payload).
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// The `apiId` the local API reports in `requestContext`.
const LOCAL_API_ID: &str = "local";

/// A template route bound to the table's handler for it.
#[derive(Clone)]
pub struct BoundRoute {
    pub route: Route,
    handler: puck_api::Handler,
}

/// The template routes bound to `puck_api::ROUTES`' handlers.
#[derive(Clone)]
pub struct Gateway {
    /// (method, path) → route, every template route but `$default` (a binary may serve several,
    /// like the console's page and its assets).
    routes: BTreeMap<(&'static str, &'static str), BoundRoute>,
    /// The `$default` route, invoked for any request no route matches.
    default: Option<BoundRoute>,
    ctx: Arc<Context>,
}

/// What routing decided for a request.
enum Routed<'a> {
    Found(&'a BoundRoute, BTreeMap<String, String>),
    Unrouted(ApiError),
}

impl Gateway {
    /// Binds every template route to its table entry. The template and the table must declare the
    /// same routes (binary, method and path), else the local API would differ from the deployed one.
    pub fn new(routes: &[Route], ctx: Arc<Context>) -> Result<Self> {
        let mut bound = BTreeMap::new();
        let mut default = None;
        for r in routes {
            let of_binary: Vec<&puck_api::Route> = puck_api::ROUTES.iter().filter(|e| e.binary == r.binary).collect();
            if of_binary.is_empty() {
                bail!("{}: binary {} has no entry in puck_api::ROUTES", r.function, r.binary);
            }
            let Some(entry) = of_binary.iter().find(|e| (e.method, e.path) == (r.method.as_str(), r.path.as_str()))
            else {
                let table: Vec<String> = of_binary.iter().map(|e| format!("{} {}", e.method, e.path)).collect();
                bail!(
                    "{}: template says {} {}, puck_api::ROUTES says {}",
                    r.binary,
                    r.method,
                    r.path,
                    table.join(", ")
                );
            };
            let route = BoundRoute { route: r.clone(), handler: entry.handler };
            let slot = if entry.is_default() {
                default.replace(route)
            } else {
                bound.insert((entry.method, entry.path), route)
            };
            if slot.is_some() {
                bail!("{}: declared more than once", r.binary);
            }
        }
        if let Some(missing) =
            puck_api::ROUTES.iter().find(|e| !bound.contains_key(&(e.method, e.path)) && !e.is_default())
        {
            bail!(
                "puck_api::ROUTES has {} {} ({}), template.yaml does not",
                missing.method,
                missing.path,
                missing.binary
            );
        }
        Ok(Self { routes: bound, default, ctx })
    }

    fn route(&self, method: &Method, path: &str) -> Routed<'_> {
        let unrouted = match puck_api::match_route(method.as_str(), path) {
            RouteMatch::Found { route, params } => {
                let params = params.into_iter().map(|(k, v)| (k.to_owned(), percent_decode(v))).collect();
                // `new` bound every table route.
                return Routed::Found(&self.routes[&(route.method, route.path)], params);
            }
            RouteMatch::MethodNotAllowed(allowed) => {
                ApiError::MethodNotAllowed { method: method.to_string(), path: path.to_owned(), allowed }
            }
            RouteMatch::NotFound => ApiError::NoRoute { method: method.to_string(), path: path.to_owned() },
        };
        // API Gateway sends anything unmatched, wrong methods included, to `$default`.
        match &self.default {
            Some(default) => Routed::Found(default, BTreeMap::new()),
            None => Routed::Unrouted(unrouted),
        }
    }

    /// The binary of the function that serves `method path` (`$default`'s for an unmatched
    /// request), or `None` when the gateway itself answers 404/405.
    pub fn binary_for(&self, method: &Method, path: &str) -> Option<&str> {
        match self.route(method, path) {
            Routed::Found(route, _) => Some(route.route.binary.as_str()),
            Routed::Unrouted(_) => None,
        }
    }

    /// Serves requests from `listener` until the returned task is aborted (which also drops every
    /// open connection).
    pub fn serve(self, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        let gateway = Arc::new(self);
        tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Reap finished connections so the set does not grow without bound.
                while connections.try_join_next().is_some() {}
                let gateway = gateway.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let gateway = gateway.clone();
                        async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
                    });
                    if let Err(error) =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
                    {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                });
            }
        })
    }

    /// Handles one request end to end.
    pub async fn handle(&self, req: http::Request<Incoming>, peer: SocketAddr) -> http::Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let started = std::time::Instant::now();
        let routed = self.route(&method, &path);
        // A request is logged by its route's template (`$default` when unmatched), never by its
        // raw path: the inbound receiver's path carries its URL key, a credential that must never
        // reach a log line (docs/security.md), and so may a mistyped variant of it.
        let logged_path = match &routed {
            Routed::Found(route, _) => route.route.path.clone(),
            _ => "(no route)".to_owned(),
        };
        let response = match routed {
            Routed::Unrouted(error) => into_hyper(puck_http::error_response(error)),
            Routed::Found(route, params) => self.invoke(route, params, req, peer).await,
        };
        tracing::info!(
            method = %method,
            path = logged_path.as_str(),
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }

    async fn invoke(
        &self,
        route: &BoundRoute,
        params: BTreeMap<String, String>,
        req: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> http::Response<Full<Bytes>> {
        let too_large = || error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body exceeds 6 MB");
        let declared =
            req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > DRAIN_LIMIT_BYTES) {
            return too_large();
        }
        let (parts, body) = req.into_parts();
        let body = match read_body(body).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return too_large(),
            Err(e) => {
                return error(StatusCode::BAD_REQUEST, "bad_request", &format!("could not read the request body: {e}"))
            }
        };
        let event = api_gateway_event(&route.route, &params, &parts, &body, peer);
        let request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "lambda_http rejected the generated event");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error");
            }
        };
        let handler = route.handler;
        let ctx = self.ctx.clone();
        let binary = route.route.binary.clone();
        // A panicking or timed-out handler fails its invocation, not the server; API Gateway
        // answers 500 then too.
        let timeout = std::time::Duration::from_secs(route.route.timeout_secs);
        let function = route.route.function.clone();
        let invocation =
            tokio::spawn(async move { crate::invocation::as_function(&function, handler(&ctx, request)).await });
        let abort = invocation.abort_handle();
        match tokio::time::timeout(timeout, invocation).await {
            Ok(Ok(resp)) => into_hyper(resp),
            outcome => {
                match outcome {
                    Ok(Err(e)) => tracing::error!(binary = binary.as_str(), error = %e, "handler panicked"),
                    _ => {
                        abort.abort();
                        tracing::error!(
                            binary = binary.as_str(),
                            timeout_secs = timeout.as_secs(),
                            "handler timed out"
                        );
                    }
                }
                let mut resp =
                    http::Response::new(Full::new(Bytes::from_static(b"{\"message\":\"Internal Server Error\"}")));
                *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                resp
            }
        }
    }
}

/// Reads the body; `None` when it is over [`MAX_BODY_BYTES`]. An oversized body is still drained
/// (up to [`DRAIN_LIMIT_BYTES`]) so the client gets the 413 rather than a broken pipe.
async fn read_body(mut body: Incoming) -> Result<Option<Vec<u8>>, hyper::Error> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    let mut over = false;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        seen += data.len();
        if seen > MAX_BODY_BYTES {
            over = true;
            buf = Vec::new();
        }
        if seen > DRAIN_LIMIT_BYTES {
            break;
        }
        if !over {
            buf.extend_from_slice(&data);
        }
    }
    Ok((!over).then_some(buf))
}

/// The JSON error shape of the API (`{"error": {"code", "message"}}`).
pub fn error(status: StatusCode, code: &str, message: &str) -> http::Response<Full<Bytes>> {
    let body = json!({"error": {"code": code, "message": message}}).to_string();
    let mut resp = http::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn into_hyper(resp: lambda_http::Response<lambda_http::Body>) -> http::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    http::Response::from_parts(parts, Full::new(bytes))
}

fn percent_decode(raw: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", raw.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| raw.to_owned())
}

/// The API Gateway HTTP API (payload 2.0) event for a request, as Lambda would receive it.
pub fn api_gateway_event(
    route: &Route,
    params: &BTreeMap<String, String>,
    parts: &http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
) -> Value {
    let route_key = route.route_key();
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");

    // Header names lowercased, repeats comma-joined; cookies move to `cookies` as API Gateway does.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()));
            continue;
        }
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.insert("x-forwarded-for".into(), peer.ip().to_string());
    headers.entry("x-forwarded-port".into()).or_insert_with(|| parts.uri.port_u16().unwrap_or(80).to_string());
    let domain = headers.get("host").cloned().unwrap_or_else(|| "127.0.0.1".into());
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }

    let now = time::OffsetDateTime::now_utc();
    let request_id = format!("{:032x}", rand::random::<u128>());
    let time_str = now
        .format(time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"))
        .unwrap_or_default();

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!(route_key));
    event.insert("rawPath".into(), json!(raw_path));
    event.insert("rawQueryString".into(), json!(raw_query));
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), json!(headers));
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), json!(query));
    }
    if !params.is_empty() {
        event.insert("pathParameters".into(), json!(params));
    }
    event.insert(
        "requestContext".into(),
        json!({
            "accountId": crate::provision::LOCAL_ACCOUNT_ID,
            "apiId": LOCAL_API_ID,
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or(""),
            "http": {
                "method": parts.method.as_str(),
                "path": raw_path,
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": time_str,
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        }),
    );
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => {
                event.insert("body".into(), json!(text));
                event.insert("isBase64Encoded".into(), json!(false));
            }
            Err(_) => {
                event.insert("body".into(), json!(base64::engine::general_purpose::STANDARD.encode(body)));
                event.insert("isBase64Encoded".into(), json!(true));
            }
        }
    } else {
        event.insert("isBase64Encoded".into(), json!(false));
    }
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a response says, byte for byte: status, headers and body.
    async fn wire(resp: http::Response<Full<Bytes>>) -> (StatusCode, Vec<(String, String)>, Bytes) {
        let (parts, body) = resp.into_parts();
        let headers = parts.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned())).collect();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, headers, body)
    }

    #[tokio::test]
    async fn without_a_default_route_the_gateway_answers_unmatched_requests_as_the_not_found_function_does() {
        let template = crate::template::Template::load(&crate::moto::repo_root().join("template.yaml")).unwrap();
        let routes: Vec<Route> = template.routes().unwrap().into_iter().filter(|r| !r.is_default()).collect();
        let gateway = Gateway::new(&routes, Arc::new(puck_core::fakes::context())).unwrap();
        for (method, path, status) in [
            (Method::GET, "/v1/nope", 404),
            (Method::PUT, "/v1/webhooks/subscriptions", 405),
            (Method::GET, "/v1/webhooks/incoming/github/somekey", 405),
        ] {
            let Routed::Unrouted(error) = gateway.route(&method, path) else { panic!("{method} {path} was routed") };
            let from_gateway = wire(into_hyper(puck_http::error_response(error))).await;
            let req = lambda_http::http::Request::builder()
                .method(method.as_str())
                .uri(path)
                .body(lambda_http::Body::Empty)
                .unwrap();
            let from_function = wire(into_hyper(puck_api::routes::fallback::answer(&req))).await;
            assert_eq!(from_gateway.0.as_u16(), status, "{method} {path}");
            assert_eq!(from_gateway, from_function, "{method} {path}");
        }
    }

    #[test]
    fn path_params_are_percent_decoded_but_plus_stays_plus() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("a+b%2Fc"), "a+b/c");
    }

    #[test]
    fn event_has_the_api_gateway_v2_shape_and_parses() {
        let r = Route {
            method: "POST".into(),
            path: "/v1/x/{id}".into(),
            binary: "b".into(),
            function: "F".into(),
            timeout_secs: 3,
        };
        let req = http::Request::builder()
            .method("POST")
            .uri("/v1/x/sub_1?limit=5&a=1&a=2")
            .header("Host", "127.0.0.1:3000")
            .header("X-Multi", "one")
            .header("X-Multi", "two")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let params = [("id".to_owned(), "sub_1".to_owned())].into();
        let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let event = api_gateway_event(&r, &params, &parts, b"{\"a\":1}", peer);
        assert_eq!(event["routeKey"], "POST /v1/x/{id}");
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert_eq!(event["queryStringParameters"]["a"], "1,2");
        assert_eq!(event["pathParameters"]["id"], "sub_1");
        assert_eq!(event["requestContext"]["stage"], "$default");
        let binary = api_gateway_event(&r, &params, &parts, &[0xff, 0xfe], peer);
        assert_eq!(binary["isBase64Encoded"], true);
        let parsed = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(parsed.uri().path(), "/v1/x/sub_1");
        assert_eq!(parsed.uri().scheme_str(), Some("http"));
    }

    #[test]
    fn a_default_route_event_has_the_default_route_key_and_the_request_method() {
        let r = Route {
            method: "ANY".into(),
            path: crate::template::DEFAULT_ROUTE.into(),
            binary: "not-found".into(),
            function: "F".into(),
            timeout_secs: 3,
        };
        let (parts, ()) = http::Request::builder().method("PUT").uri("/v1/nope").body(()).unwrap().into_parts();
        let event = api_gateway_event(&r, &BTreeMap::new(), &parts, b"", "127.0.0.1:5555".parse().unwrap());
        assert_eq!(event["routeKey"], "$default");
        assert_eq!(event["requestContext"]["routeKey"], "$default");
        assert_eq!(event["requestContext"]["http"]["method"], "PUT");
        let parsed = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!((parsed.method().as_str(), parsed.uri().path()), ("PUT", "/v1/nope"));
    }
}
