//! The web console (docs/console.md): `GET /console` answers the page, `GET /console/{asset}` its CSS and
//! ES modules. Every file is compiled into the binary (no CDN, no S3, works offline), and the page
//! talks to the public API from the browser exactly as any client does, so this route reads no data,
//! needs no API key and builds no AWS context.
//!
//! Every answer, errors included, carries the strict Content-Security-Policy and the other headers
//! of docs/console.md: with no inline script allowed and `connect-src 'self'`, a receiver's HTML that the
//! page ever rendered by mistake could neither run nor call out. Assets are revalidated on every
//! load (`no-cache` + a content `ETag`, answered 304 when unchanged): file names carry no hash, so a
//! deploy must never leave a browser on a stale mix of modules.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use puck_core::services::Context;
use puck_http::{header, json_response, path_param};
use serde_json::json;

/// The policy of docs/console.md: only this origin's scripts, styles and API; no framing, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A file of the console: its name under `/console/`, content type, bytes and content tag.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    etag: u64,
}

/// FNV-1a, computed at compile time: a content tag for `ETag`, not a security hash.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../console/", $name)),
            etag: fnv1a(include_str!(concat!("../../console/", $name)).as_bytes()),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page itself, served at `/console`.
const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Everything served at `/console/{asset}`.
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("signin.js", JS),
    asset!("subscriptions.js", JS),
    asset!("subscription-form.js", JS),
    asset!("destination-field.js", JS),
    asset!("subscription.js", JS),
    asset!("delivery.js", JS),
    asset!("dead-letters.js", JS),
    asset!("endpoints.js", JS),
    asset!("catalog.js", JS),
    asset!("oauth-form.js", JS),
    asset!("flow.js", JS),
];

/// The registry handler: the context is unused (the local stack passes its own).
pub async fn serve(_ctx: &Context, req: Request) -> Response<Body> {
    answer(&req)
}

/// The response for `GET /console` (no `asset` parameter) or `GET /console/{asset}`.
pub fn answer(req: &Request) -> Response<Body> {
    let name = path_param(req, "asset");
    let found = if name.is_empty() { Some(&INDEX) } else { ASSETS.iter().find(|a| a.name == name) };
    let mut resp = match found {
        Some(asset) => {
            let etag = format!("\"{:016x}\"", asset.etag);
            let fresh = header(req, "if-none-match").is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
            let mut resp = if fresh {
                let mut resp = Response::new(Body::Empty);
                *resp.status_mut() = StatusCode::NOT_MODIFIED;
                resp
            } else {
                let mut resp = Response::new(Body::Text(asset.body.to_owned()));
                resp.headers_mut().insert("content-type", HeaderValue::from_static(asset.content_type));
                resp
            };
            let headers = resp.headers_mut();
            headers.insert("cache-control", HeaderValue::from_static("no-cache"));
            if let Ok(v) = HeaderValue::from_str(&etag) {
                headers.insert("etag", v);
            }
            resp
        }
        None => {
            let message = format!("no console asset named {name}");
            let mut resp =
                json_response(StatusCode::NOT_FOUND, &json!({"error": {"code": "not_found", "message": message}}));
            resp.headers_mut().insert("cache-control", HeaderValue::from_static("no-store"));
            resp
        }
    };
    let headers = resp.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    tracing::debug!(asset = %name, status = resp.status().as_u16(), "console");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::fixture;

    fn request(asset: Option<&str>, if_none_match: Option<&str>) -> Request {
        use lambda_http::RequestExt;
        let mut builder = lambda_http::http::Request::builder().method("GET").uri("/console");
        if let Some(tag) = if_none_match {
            builder = builder.header("if-none-match", tag);
        }
        let req = builder.body(Body::Empty).unwrap();
        match asset {
            Some(a) => {
                req.with_path_parameters(std::collections::HashMap::from([("asset".to_owned(), vec![a.to_owned()])]))
            }
            None => req,
        }
    }

    fn text(resp: &Response<Body>) -> &str {
        match resp.body() {
            Body::Text(t) => t,
            _ => "",
        }
    }

    fn assert_security_headers(resp: &Response<Body>) {
        let h = resp.headers();
        assert_eq!(h["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }

    #[tokio::test]
    async fn the_sample_events_get_the_page_and_a_module_with_their_types_and_headers() {
        let ctx = puck_core::fakes::context();
        let page = serve(&ctx, fixture("console")).await;
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        assert!(text(&page).contains(r#"<script type="module" src="/console/app.js">"#));
        assert_security_headers(&page);
        let module = serve(&ctx, fixture("console-asset")).await;
        assert_eq!((module.status().as_u16(), module.headers()["content-type"].to_str().unwrap()), (200, JS));
        assert_security_headers(&module);
    }

    #[test]
    fn every_asset_is_served_with_its_type_and_unknown_ones_are_404_with_the_same_headers() {
        for asset in ASSETS {
            let resp = answer(&request(Some(asset.name), None));
            assert_eq!(resp.status(), 200, "{}", asset.name);
            assert_eq!(resp.headers()["content-type"], asset.content_type, "{}", asset.name);
            assert_eq!(resp.headers()["cache-control"], "no-cache");
            assert_security_headers(&resp);
        }
        for name in ["nope.js", "index.html.bak", "..%2Fapp.js"] {
            let resp = answer(&request(Some(name), None));
            assert_eq!(resp.status(), 404, "{name}");
            assert_eq!(resp.headers()["content-type"], "application/json");
            assert_security_headers(&resp);
        }
    }

    #[test]
    fn an_unchanged_asset_is_answered_304_by_its_etag() {
        let first = answer(&request(Some("app.js"), None));
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let again = answer(&request(Some("app.js"), Some(&format!("\"other\", {etag}"))));
        assert_eq!(again.status(), 304);
        assert_eq!(text(&again), "");
        assert_security_headers(&again);
        assert_eq!(answer(&request(Some("app.js"), Some("\"stale\""))).status(), 200);
        assert_ne!(answer(&request(Some("api.js"), None)).headers()["etag"], etag, "tags follow the content");
    }

    /// Every module the page imports is one this route serves (a missing one would 404 only in a
    /// browser), and nothing in the console writes HTML from a string.
    #[test]
    fn every_import_is_served_and_no_module_uses_inner_html_or_eval() {
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit("from ")
                    .next()
                    .unwrap()
                    .trim_matches(|c| c == '"' || c == '\'' || c == ';' || c == ' ');
                let target = target.trim_start_matches("./");
                assert!(
                    ASSETS.iter().any(|a| a.name == target),
                    "{} imports {target}, which is not served",
                    asset.name
                );
            }
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage",
            ] {
                assert!(!asset.body.contains(banned), "{} uses {banned}", asset.name);
            }
        }
    }
}
