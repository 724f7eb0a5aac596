//! The HTTP API on loopback, behaving like API Gateway HTTP API (payload format 2.0).
//!
//! Routes come from template.yaml (`HttpApi` events); each request is turned into the same API
//! Gateway v2 event JSON Lambda would receive, parsed with `lambda_http::request::from_str` and
//! handed to the route's handler from `puck_api::ROUTES`. That way the handlers run exactly the
//! code path they run in AWS, including `lambda_http`'s own event parsing.
//!
//! A request no route matches goes to the template's `$default` route, as in API Gateway; only a
//! template without one gets the gateway's own JSON 404/405.

use crate::template::Route;
use anyhow::{anyhow, Result};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use puck_core::services::Context;
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').collect()
}

/// A template route bound to its handler.
#[derive(Clone)]
pub struct BoundRoute {
    pub route: Route,
    segments: Vec<Segment>,
    handler: puck_api::Handler,
}

impl BoundRoute {
    fn matches(&self, parts: &[&str]) -> Option<BTreeMap<String, String>> {
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (seg, part) in self.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(lit) if lit == part => {}
                Segment::Param(name) if !part.is_empty() => {
                    params.insert(name.clone(), percent_decode(part));
                }
                _ => return None,
            }
        }
        Some(params)
    }

    /// Literal segments outrank parameters, left to right (API Gateway's "most specific" rule).
    fn specificity(&self) -> Vec<u8> {
        self.segments.iter().map(|s| u8::from(matches!(s, Segment::Literal(_)))).collect()
    }
}

/// The route table: template routes bound to `puck_api` handlers.
#[derive(Clone)]
pub struct Gateway {
    routes: Vec<BoundRoute>,
    /// The `$default` route, invoked for any request no route matches.
    default: Option<BoundRoute>,
    ctx: Arc<Context>,
}

/// What routing decided for a request.
enum Routed<'a> {
    Found(&'a BoundRoute, BTreeMap<String, String>),
    MethodNotAllowed(Vec<String>),
    NotFound,
}

impl Gateway {
    /// Binds every route to its handler; a route whose binary has no handler is an error.
    pub fn new(routes: &[Route], ctx: Arc<Context>) -> Result<Self> {
        let (default, routes): (Vec<_>, Vec<_>) = routes.iter().partition(|r| r.is_default());
        if default.len() > 1 {
            return Err(anyhow!("more than one $default route"));
        }
        let bind = |r: &Route| -> Result<BoundRoute> {
            let handler = puck_api::handler(&r.binary)
                .ok_or_else(|| anyhow!("{}: binary {} has no handler in puck_api::ROUTES", r.function, r.binary))?;
            let segments = segments(&r.path)
                .into_iter()
                .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.trim_end_matches('+').to_owned()),
                    None => Segment::Literal(s.to_owned()),
                })
                .collect();
            Ok(BoundRoute { route: r.clone(), segments, handler })
        };
        let routes = routes.into_iter().map(bind).collect::<Result<_>>()?;
        let default = default.into_iter().next().map(bind).transpose()?;
        Ok(Self { routes, default, ctx })
    }

    fn route(&self, method: &Method, path: &str) -> Routed<'_> {
        let parts = segments(path);
        let mut allowed = Vec::new();
        let mut best: Option<(&BoundRoute, BTreeMap<String, String>)> = None;
        for r in &self.routes {
            let Some(params) = r.matches(&parts) else { continue };
            if r.route.method != method.as_str() {
                allowed.push(r.route.method.clone());
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| r.specificity() > b.specificity()) {
                best = Some((r, params));
            }
        }
        // API Gateway sends anything unmatched, wrong methods included, to `$default`.
        match (best, &self.default) {
            (Some((r, params)), _) => Routed::Found(r, params),
            (None, Some(default)) => Routed::Found(default, BTreeMap::new()),
            (None, None) if !allowed.is_empty() => {
                allowed.sort();
                allowed.dedup();
                Routed::MethodNotAllowed(allowed)
            }
            (None, None) => Routed::NotFound,
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
                    if let Err(error) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
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
        // reach a log line (DESIGN §7), and so may a mistyped variant of it.
        let logged_path = match &routed {
            Routed::Found(route, _) => route.route.path.clone(),
            _ => "(no route)".to_owned(),
        };
        let response = match routed {
            Routed::NotFound => error(StatusCode::NOT_FOUND, "not_found", &format!("no route for {method} {path}")),
            Routed::MethodNotAllowed(allowed) => {
                let mut resp = error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    &format!("{method} is not allowed on {path} (allowed: {})", allowed.join(", ")),
                );
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    resp.headers_mut().insert(http::header::ALLOW, v);
                }
                resp
            }
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
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
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
        let invocation = tokio::spawn(async move { handler(&ctx, request).await });
        let abort = invocation.abort_handle();
        match tokio::time::timeout(timeout, invocation).await {
            Ok(Ok(resp)) => into_hyper(resp),
            outcome => {
                match outcome {
                    Ok(Err(e)) => tracing::error!(binary = binary.as_str(), error = %e, "handler panicked"),
                    _ => {
                        abort.abort();
                        tracing::error!(binary = binary.as_str(), timeout_secs = timeout.as_secs(), "handler timed out");
                    }
                }
                let mut resp = http::Response::new(Full::new(Bytes::from_static(b"{\"message\":\"Internal Server Error\"}")));
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
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
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

    fn route(method: &str, path: &str) -> BoundRoute {
        let r = Route { method: method.into(), path: path.into(), binary: "b".into(), function: "F".into(), timeout_secs: 3 };
        let segments = segments(path)
            .into_iter()
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(n) => Segment::Param(n.into()),
                None => Segment::Literal(s.into()),
            })
            .collect();
        BoundRoute { route: r, segments, handler: puck_api::ROUTES[0].1 }
    }

    #[test]
    fn params_match_one_non_empty_segment() {
        let r = route("GET", "/v1/things/{id}");
        assert_eq!(r.matches(&segments("/v1/things/abc")).unwrap()["id"], "abc");
        assert!(r.matches(&segments("/v1/things/")).is_none());
        assert!(r.matches(&segments("/v1/things/a/b")).is_none());
        assert_eq!(r.matches(&segments("/v1/things/a%20b")).unwrap()["id"], "a b");
    }

    #[test]
    fn literal_segments_are_more_specific() {
        assert!(route("DELETE", "/a/endpoints/{id}").specificity() > route("POST", "/a/{p}/{k}").specificity());
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
