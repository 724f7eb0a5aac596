//! `GET /v1/openapi.json` and `GET /docs` (no API key): the OpenAPI document and the same
//! document rendered as a reference page.
//!
//! The page is rendered here, on the server, as plain HTML with every value escaped, so it needs
//! no script, no CDN and no third-party request; its one stylesheet is inline and allowed by its
//! hash in a strict Content-Security-Policy.

use crate::openapi::document;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use puck_core::services::Context;
use puck_http::json_response;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::sync::OnceLock;

const STYLE: &str = include_str!("../../openapi/docs.css");

/// The registry handler of `openapi-document`: the context is unused.
pub async fn openapi(_ctx: &Context, req: Request) -> Response<Body> {
    openapi_answer(&req)
}

/// The registry handler of `api-docs`: the context is unused.
pub async fn docs(_ctx: &Context, req: Request) -> Response<Body> {
    docs_answer(&req)
}

/// `GET /v1/openapi.json`.
pub fn openapi_answer(_req: &Request) -> Response<Body> {
    let mut resp = json_response(StatusCode::OK, document());
    resp.headers_mut().insert("cache-control", HeaderValue::from_static("public, max-age=300"));
    resp.headers_mut().insert("access-control-allow-origin", HeaderValue::from_static("*"));
    resp
}

/// `GET /docs`.
pub fn docs_answer(_req: &Request) -> Response<Body> {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| render(document()));
    let mut resp = Response::new(Body::Text(page.clone()));
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert("cache-control", HeaderValue::from_static("public, max-age=300"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy()) {
        headers.insert("content-security-policy", csp);
    }
    resp
}

/// No script at all; the inline stylesheet by its hash; nothing may frame the page.
pub fn content_security_policy() -> String {
    let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!("default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Follows a local `$ref` once (`#/components/...`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    v.get("$ref").and_then(Value::as_str).and_then(|r| doc.pointer(r.trim_start_matches('#'))).unwrap_or(v)
}

/// The schema's name when it is a `$ref`, else its type, for a one-word summary.
fn schema_label(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
        _ => "any".into(),
    }
}

fn anchor(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

fn pretty(v: &Value) -> String {
    escape(&serde_json::to_string_pretty(v).unwrap_or_default())
}

/// The whole reference page.
pub fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — API reference</title><style>{STYLE}</style></head><body><header><h1>{title} <small>{version}</small></h1>\
         <p>{summary}</p><p class=\"desc\">{description}</p><p>Machine-readable: <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI {openapi}).</p></header><nav><ul>",
        title = escape(text(info, "title")),
        version = escape(text(info, "version")),
        summary = escape(text(info, "summary")),
        description = escape(text(info, "description")),
        openapi = escape(text(doc, "openapi")),
    );
    let operations = operations_by_tag(doc);
    for (tag, ops) in &operations {
        let _ = write!(html, "<li><a href=\"#tag-{}\">{}</a><ul>", anchor(tag), escape(tag));
        for (method, path, op) in ops {
            let _ = write!(
                html,
                "<li><a href=\"#{}\">{} {}</a></li>",
                anchor(text(op, "operationId")),
                escape(&method.to_uppercase()),
                escape(path)
            );
        }
        html.push_str("</ul></li>");
    }
    html.push_str("<li><a href=\"#schemas\">Schemas</a></li></ul></nav><main>");
    for (tag, ops) in &operations {
        let tag_description = doc["tags"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["name"] == tag.as_str()))
            .map(|t| text(t, "description"))
            .unwrap_or("");
        let _ = write!(
            html,
            "<section id=\"tag-{}\"><h2>{}</h2><p>{}</p>",
            anchor(tag),
            escape(tag),
            escape(tag_description)
        );
        for (method, path, op) in ops {
            render_operation(&mut html, doc, method, path, op);
        }
        html.push_str("</section>");
    }
    html.push_str("<section id=\"schemas\"><h2>Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = write!(
                html,
                "<details id=\"schema-{}\"><summary>{}</summary><pre>{}</pre></details>",
                anchor(name),
                escape(name),
                pretty(schema)
            );
        }
    }
    html.push_str("</section></main></body></html>");
    html
}

type TaggedOperations<'a> = Vec<(String, Vec<(&'a str, &'a str, &'a Value)>)>;

/// Operations grouped under their first tag, in the document's tag order.
fn operations_by_tag(doc: &Value) -> TaggedOperations<'_> {
    let mut groups: TaggedOperations<'_> = doc["tags"]
        .as_array()
        .map(|ts| ts.iter().map(|t| (text(t, "name").to_owned(), Vec::new())).collect())
        .unwrap_or_default();
    let Some(paths) = doc["paths"].as_object() else { return groups };
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (method, op) in item {
            let tag = op["tags"][0].as_str().unwrap_or("Other").to_owned();
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, ops)) => ops.push((method, path, op)),
                None => groups.push((tag, vec![(method, path, op)])),
            }
        }
    }
    groups.retain(|(_, ops)| !ops.is_empty());
    groups
}

fn render_operation(html: &mut String, doc: &Value, method: &str, path: &str, op: &Value) {
    let scope = op
        .get("x-scope")
        .and_then(Value::as_str)
        .map_or_else(|| "none (no API key)".to_owned(), |s| format!("<code>{}</code>", escape(s)));
    let _ = write!(
        html,
        "<article id=\"{id}\"><h3><span class=\"method {m}\">{mu}</span> <code>{path}</code></h3><p class=\"summary\">{summary}</p><p class=\"desc\">{desc}</p><p><strong>Scope:</strong> {scope}</p>",
        id = anchor(text(op, "operationId")),
        m = escape(method),
        mu = escape(&method.to_uppercase()),
        path = escape(path),
        summary = escape(text(op, "summary")),
        desc = escape(text(op, "description")),
    );
    if let Some(params) = op["parameters"].as_array() {
        html.push_str("<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Required</th><th>Type</th><th>Description</th></tr></thead><tbody>");
        for p in params.iter().map(|p| resolve(doc, p)) {
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(text(p, "name")),
                escape(text(p, "in")),
                if p["required"] == true { "yes" } else { "no" },
                escape(&schema_label(&p["schema"])),
                escape(text(p, "description")),
            );
        }
        html.push_str("</tbody></table>");
    }
    if let Some(body) = op.get("requestBody") {
        let _ = write!(html, "<h4>Request body</h4><p class=\"desc\">{}</p>", escape(text(body, "description")));
        if let Some(content) = body["content"].as_object() {
            for (media, m) in content {
                let _ = write!(html, "<p><code>{}</code> — {}</p>", escape(media), schema_link(&m["schema"]));
                if let Some(example) = m.get("example") {
                    let _ = write!(html, "<pre>{}</pre>", pretty(example));
                }
            }
        }
    }
    html.push_str(
        "<h4>Responses</h4><table><thead><tr><th>Status</th><th>Description</th><th>Body</th></tr></thead><tbody>",
    );
    if let Some(responses) = op["responses"].as_object() {
        for (status, r) in responses {
            let r = resolve(doc, r);
            let body = r["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|m| schema_link(&m["schema"]))
                .unwrap_or_default();
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(status),
                escape(text(r, "description")),
                body
            );
        }
    }
    html.push_str("</tbody></table></article>");
}

/// A link to the schema's entry when it is a component, else its type.
fn schema_link(schema: &Value) -> String {
    let label = escape(&schema_label(schema));
    match schema.get("$ref") {
        Some(_) => format!("<a href=\"#schema-{}\">{label}</a>", anchor(&schema_label(schema))),
        None => label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::fixture;

    fn body_text(resp: &Response<Body>) -> String {
        match resp.body() {
            Body::Text(t) => t.clone(),
            other => panic!("text body expected, got {other:?}"),
        }
    }

    #[test]
    fn the_document_is_served_as_json_without_a_key() {
        let resp = openapi_answer(&fixture("openapi-document"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let doc: Value = serde_json::from_str(&body_text(&resp)).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/v1/webhooks/subscriptions"]["post"].is_object());
    }

    #[test]
    fn the_page_lists_every_operation_escapes_text_and_allows_no_script() {
        let resp = docs_answer(&fixture("api-docs"));
        assert_eq!(resp.status(), 200);
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(
            csp.starts_with("default-src 'none'")
                && !csp.contains("script-src")
                && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let page = body_text(&resp);
        for (binary, _, path) in crate::openapi::documented_routes() {
            assert!(page.contains(&format!("id=\"{}\"", anchor(&binary))), "{binary}");
            assert!(page.contains(&escape(path)), "{path}");
        }
        assert!(!page.contains("<script"), "no script on the page");
        assert_eq!(escape("<img src=x onerror=\"a\">&'"), "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn the_style_hash_in_the_policy_is_the_hash_of_the_inline_style() {
        let expected = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        assert!(content_security_policy().contains(&format!("'sha256-{expected}'")));
        assert!(render(document()).contains(&format!("<style>{STYLE}</style>")));
    }
}
