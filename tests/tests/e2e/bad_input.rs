//! Bad input, table-driven for every route (docs/api.md): malformed JSON, wrong types,
//! missing and unknown fields, empty strings, oversized bodies and arrays, malformed ids,
//! unicode and control characters, and the URL edge cases an SSRF filter must not miss. Each
//! case gets its documented 4xx and a JSON error whose message names the problem, and the whole
//! table leaves the DynamoDB table exactly as it found it.

use crate::faults::table_state;
use crate::support::{create_endpoint, create_subscription, id_of, subscription_body, ENDPOINTS, SUBSCRIPTIONS};
use puck_e2e::{TestStack, TestStackOptions};
use reqwest::Method;
use serde_json::{json, Value};

/// One request and what must come back.
struct Case {
    method: Method,
    path: String,
    body: Body,
    status: u16,
    code: &'static str,
    /// A substring of `error.message` naming the problem ("" when the status says it all).
    needle: String,
}

enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

fn case(
    method: Method,
    path: impl Into<String>,
    body: Body,
    status: u16,
    code: &'static str,
    needle: impl Into<String>,
) -> Case {
    Case { method, path: path.into(), body, status, code, needle: needle.into() }
}

fn bad(method: Method, path: &str, body: Value, needle: &str) -> Case {
    case(method, path, Body::Json(body), 400, "validation_error", needle)
}

/// The cases every JSON-body route shares: not JSON, not an object, empty, too big.
fn body_shape_cases(method: Method, path: &str, limit: usize) -> Vec<Case> {
    vec![
        case(method.clone(), path, Body::Raw(br#"{"url": "#.to_vec()), 400, "invalid_json", "not valid JSON"),
        case(method.clone(), path, Body::Raw(b"{'single': 'quotes'}".to_vec()), 400, "invalid_json", "not valid JSON"),
        case(method.clone(), path, Body::Raw(b"\xff\xfe{}".to_vec()), 400, "invalid_json", "not valid JSON"),
        case(method.clone(), path, Body::Raw(b"   ".to_vec()), 400, "invalid_json", "JSON object"),
        case(method.clone(), path, Body::Json(json!([])), 400, "validation_error", "JSON object"),
        case(method.clone(), path, Body::Json(json!("text")), 400, "validation_error", "JSON object"),
        case(method.clone(), path, Body::Json(json!(null)), 400, "validation_error", "JSON object"),
        case(method.clone(), path, Body::Json(json!({"name": "x".repeat(limit)})), 413, "payload_too_large", ""),
    ]
}

/// Subscription URLs that must be refused at creation, with the words the error must use.
fn url_cases() -> Vec<(String, &'static str)> {
    let private = "private, loopback, link-local or metadata";
    let mut cases: Vec<(String, &'static str)> = vec![
        ("http://example.com/hook".into(), "https"),
        ("javascript:alert(1)".into(), "https"),
        ("ftp://example.com/".into(), "https"),
        ("https://user@example.com/".into(), "credentials"),
        ("https://user:pw@example.com/".into(), "credentials"),
        ("https://:pw@example.com/".into(), "credentials"),
        ("https://example.com/#frag".into(), "fragment"),
        ("https://".into(), "not a valid URL"),
        ("//example.com/hook".into(), "not a valid URL"),
        ("https://exa mple.com/".into(), "whitespace"),
        ("https://example.com/\u{7}".into(), "control"),
        ("https://example.com/\r\nX: 1".into(), "control"),
        (format!("https://example.com/{}", "a".repeat(2100)), "at most 2048"),
        // IPv4 literals in every spelling.
        ("https://127.0.0.1/".into(), private),
        ("https://127.0.0.1./".into(), private),
        ("https://2130706433/".into(), private),
        ("https://0x7f000001/".into(), private),
        ("https://0177.0.0.1/".into(), private),
        ("https://0177.1/".into(), private),
        ("https://127.1/".into(), private),
        ("https://0/".into(), private),
        ("https://0.0.0.0:443/".into(), private),
        ("https://10.1.2.3/".into(), private),
        ("https://172.31.255.255/".into(), private),
        ("https://192.168.0.1:8443/".into(), private),
        ("https://169.254.169.254/latest/meta-data/".into(), private),
        ("https://169.254.169.254./".into(), private),
        ("https://100.100.100.200/".into(), private),
        ("https://255.255.255.255/".into(), private),
        ("https://224.0.0.1/".into(), private),
        // IPv6 literals, mapped, compatible and NAT64 forms.
        ("https://[::1]/".into(), private),
        ("https://[::]/".into(), private),
        ("https://[0:0:0:0:0:0:0:1]:443/".into(), private),
        ("https://[::ffff:127.0.0.1]/".into(), private),
        ("https://[::ffff:7f00:1]/".into(), private),
        ("https://[::ffff:169.254.169.254]/".into(), private),
        ("https://[::ffff:10.0.0.1]/".into(), private),
        ("https://[::127.0.0.1]/".into(), private),
        ("https://[64:ff9b::a9fe:a9fe]/".into(), private),
        ("https://[fd00:ec2::254]/".into(), private),
        ("https://[fe80::1]/".into(), private),
        ("https://[fc00::1]/".into(), private),
        ("https://[ff02::1]/".into(), private),
        ("https://[fe80::1%25eth0]/".into(), "url"),
        // Names that only ever mean this machine or its network, in odd spellings.
        ("https://localhost/".into(), "local name"),
        ("https://LOCALHOST/".into(), "local name"),
        ("https://localhost./".into(), "local name"),
        ("https://api.localhost/".into(), "local name"),
        ("https://printer.local/".into(), "local name"),
        ("https://metadata.google.internal/".into(), "local name"),
        ("https://metadata.google.internal./".into(), "local name"),
        ("https://ｌｏｃａｌｈｏｓｔ/".into(), "local name"),
        // Odd ports.
        ("https://example.com:0/".into(), "port"),
        ("https://example.com:65536/".into(), "not a valid URL"),
        ("https://example.com:-1/".into(), "not a valid URL"),
        ("https://example.com:443a/".into(), "not a valid URL"),
    ];
    cases.push(("https://exa\u{0}mple.com/".into(), "control"));
    cases
}

fn create_cases() -> Vec<Case> {
    let p = SUBSCRIPTIONS;
    let ok = |patch: Value| {
        let mut body = json!({"url": "https://hooks.example.com/x", "events": ["finding.*"]});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let mut cases = body_shape_cases(Method::POST, p, 64 * 1024);
    cases.extend([
        bad(Method::POST, p, json!({"events": ["finding.*"]}), "url is required"),
        bad(Method::POST, p, json!({"url": "https://hooks.example.com/x"}), "events"),
        bad(Method::POST, p, ok(json!({"url": 5})), "url must be a string"),
        bad(Method::POST, p, ok(json!({"url": ""})), "url"),
        bad(Method::POST, p, ok(json!({"events": "finding.*"})), "events must be an array"),
        bad(Method::POST, p, ok(json!({"events": []})), "events"),
        bad(Method::POST, p, ok(json!({"events": [""]})), "events"),
        bad(Method::POST, p, ok(json!({"events": [1]})), "events"),
        bad(Method::POST, p, ok(json!({"events": ["finding.nope"]})), "finding.nope"),
        bad(Method::POST, p, ok(json!({"events": ["**"]})), "events"),
        bad(Method::POST, p, ok(json!({"events": ["finding.discovered\u{0}"]})), "events"),
        bad(Method::POST, p, ok(json!({"events": vec!["finding.*"; 500]})), "events"),
        bad(Method::POST, p, ok(json!({"filters": []})), "filters"),
        bad(Method::POST, p, ok(json!({"filters": {"min_severity": "urgent"}})), "min_severity"),
        bad(Method::POST, p, ok(json!({"filters": {"min_severity": 3}})), "min_severity"),
        bad(Method::POST, p, ok(json!({"filters": {"colour": "red"}})), "colour"),
        bad(Method::POST, p, ok(json!({"filters": {"tags": {"team": 1}}})), "filters.tags.team"),
        bad(Method::POST, p, ok(json!({"filters": {"tags": {"": "x"}}})), "filters.tags"),
        bad(Method::POST, p, ok(json!({"filters": {"tags": {"a\u{1}b": "x"}}})), "filters.tags"),
        bad(Method::POST, p, ok(json!({"filters": {"tags": (0..51).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}})), "at most 50"),
        bad(Method::POST, p, ok(json!({"active": "yes"})), "active must be a boolean"),
        bad(Method::POST, p, ok(json!({"name": 5})), "name"),
        bad(Method::POST, p, ok(json!({"name": ""})), "name"),
        bad(Method::POST, p, ok(json!({"name": "tab\u{0}null"})), "name"),
        bad(Method::POST, p, ok(json!({"name": "\u{1b}[31mred"})), "name"),
        bad(Method::POST, p, ok(json!({"name": "x".repeat(5000)})), "name"),
        bad(Method::POST, p, ok(json!({"secret": "whsec_abc"})), "secret"),
        bad(Method::POST, p, ok(json!({"id": "sub_01m8446za40ddwht5hre5h6jbd"})), "unknown field \"id\""),
        bad(Method::POST, p, ok(json!({"URL": "https://hooks.example.com/x"})), "unknown field \"URL\""),
    ]);
    for (url, needle) in url_cases() {
        cases.push(bad(Method::POST, p, ok(json!({"url": url})), needle));
    }
    cases
}

fn malformed_ids(prefix: &str) -> Vec<String> {
    vec![
        "nope".into(),
        format!("{prefix}_"),
        format!("{prefix}_{}", "0".repeat(200)),
        format!("{prefix}_01M8446ZA40DDWHT5HRE5H6JBD"),
        format!("{prefix}_01m8446za40ddwht5hre5h6jb%C3%A9"),
        "%00".into(),
        "..%2F..%2Fetc".into(),
        // Well-formed, but nobody's.
        format!("{prefix}_01m8446za40ddwht5hre5h6jbd"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_bad_input_with_its_documented_4xx_and_a_named_problem_and_keeps_no_state() {
    let stack = TestStack::start(TestStackOptions::default().deny_private_targets()).await;
    let sub = create_subscription(&stack, subscription_body()).await;
    let sub_path = format!("{SUBSCRIPTIONS}/{}", id_of(&sub));
    let (_, endpoint_path, key) = create_endpoint(&stack, json!({"provider": "generic"})).await;
    let before = table_state(&stack).await;

    let mut cases = create_cases();
    // PATCH: the same field rules, one field at a time.
    cases.extend(body_shape_cases(Method::PATCH, &sub_path, 64 * 1024));
    cases.extend([
        bad(Method::PATCH, &sub_path, json!({"url": "http://example.com/"}), "https"),
        bad(Method::PATCH, &sub_path, json!({"url": "https://[::ffff:a9fe:a9fe]/"}), "private"),
        bad(Method::PATCH, &sub_path, json!({"events": []}), "events"),
        bad(Method::PATCH, &sub_path, json!({"active": 1}), "active"),
        bad(Method::PATCH, &sub_path, json!({"secret": "not-a-secret"}), "secret"),
        bad(Method::PATCH, &sub_path, json!({"secret": 42}), "secret"),
        bad(Method::PATCH, &sub_path, json!({"secret": "whsec_"}), "secret"),
        bad(Method::PATCH, &sub_path, json!({"filters": {"min_severity": "HIGH"}}), "min_severity"),
        bad(Method::PATCH, &sub_path, json!({"created_at": "2020-01-01T00:00:00Z"}), "unknown field"),
    ]);
    // Lists: query parameters.
    for (query, needle) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=1e2", "limit"),
        ("cursor=not-a-cursor!", "cursor"),
        ("cursor=ZGx2X3g", "cursor"),
    ] {
        cases.push(case(Method::GET, format!("{SUBSCRIPTIONS}?{query}"), Body::None, 400, "validation_error", needle));
        cases.push(case(
            Method::GET,
            format!("/v1/webhooks/deliveries?{query}"),
            Body::None,
            400,
            "validation_error",
            needle,
        ));
    }
    for (query, needle) in [
        ("status=bogus", "status"),
        ("status=", "status"),
        ("subscription_id=nope", "subscription_id"),
        ("subscription_id=dlv_01m8446za40ddwht5hre5h6jbd", "subscription_id"),
    ] {
        cases.push(case(
            Method::GET,
            format!("/v1/webhooks/deliveries?{query}"),
            Body::None,
            400,
            "validation_error",
            needle,
        ));
    }
    // Malformed or unknown ids on every {id} route: 404, never a 500.
    for id in malformed_ids("sub") {
        let path = format!("{SUBSCRIPTIONS}/{id}");
        cases.push(case(Method::GET, path.clone(), Body::None, 404, "not_found", ""));
        cases.push(case(Method::PATCH, path.clone(), Body::Json(json!({"active": false})), 404, "not_found", ""));
        cases.push(case(Method::DELETE, path.clone(), Body::None, 404, "not_found", ""));
        cases.push(case(Method::POST, format!("{path}/test"), Body::None, 404, "not_found", ""));
    }
    for id in malformed_ids("dlv") {
        let path = format!("/v1/webhooks/deliveries/{id}");
        cases.push(case(Method::GET, path.clone(), Body::None, 404, "not_found", ""));
        cases.push(case(Method::POST, format!("{path}/replay"), Body::None, 404, "not_found", ""));
    }
    for id in malformed_ids("ep") {
        cases.push(case(Method::DELETE, format!("{ENDPOINTS}/{id}"), Body::None, 404, "not_found", ""));
    }
    for id in malformed_ids("inv") {
        cases.push(case(Method::GET, format!("/v1/investigations/{id}"), Body::None, 404, "not_found", ""));
    }
    // Events.
    let ev = "/v1/events";
    cases.extend(body_shape_cases(Method::POST, ev, 128 * 1024));
    let event = |patch: Value| {
        let mut body = json!({"event_type": "finding.discovered", "data": {}});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    cases.extend([
        bad(Method::POST, ev, json!({"data": {}}), "event_type is required"),
        bad(Method::POST, ev, json!({"event_type": "finding.discovered"}), "data is required"),
        bad(Method::POST, ev, event(json!({"event_type": 7})), "event_type must be a string"),
        bad(Method::POST, ev, event(json!({"event_type": ""})), "event_type"),
        bad(Method::POST, ev, event(json!({"event_type": "finding.*"})), "event_type"),
        bad(Method::POST, ev, event(json!({"event_type": "Finding.Discovered"})), "event_type"),
        bad(Method::POST, ev, event(json!({"data": [1, 2]})), "data must be an object"),
        bad(Method::POST, ev, event(json!({"data": null})), "data must be an object"),
        bad(Method::POST, ev, event(json!({"severity": "urgent"})), "severity"),
        bad(Method::POST, ev, event(json!({"severity": ["high"]})), "severity"),
        bad(Method::POST, ev, event(json!({"tags": "team=red"})), "tags"),
        bad(Method::POST, ev, event(json!({"tags": {"team": null}})), "tags.team"),
        bad(Method::POST, ev, event(json!({"tags": {"k": "v\u{0}"}})), "tags.k"),
        bad(Method::POST, ev, event(json!({"tags": {"k": "v".repeat(300)}})), "tags.k"),
        bad(Method::POST, ev, event(json!({"event_id": ""})), "event_id"),
        bad(Method::POST, ev, event(json!({"event_id": "a b"})), "event_id"),
        bad(Method::POST, ev, event(json!({"event_id": "é"})), "event_id"),
        bad(Method::POST, ev, event(json!({"event_id": "x\u{0}"})), "event_id"),
        bad(Method::POST, ev, event(json!({"event_id": "../../etc/passwd"})), "event_id"),
        bad(Method::POST, ev, event(json!({"event_id": "e".repeat(129)})), "event_id"),
        bad(Method::POST, ev, event(json!({"event_id": 12})), "event_id"),
        bad(Method::POST, ev, event(json!({"emitted_at": "now"})), "unknown field \"emitted_at\""),
    ]);
    // Inbound endpoints.
    cases.extend(body_shape_cases(Method::POST, ENDPOINTS, 64 * 1024));
    cases.extend([
        bad(Method::POST, ENDPOINTS, json!({}), "provider"),
        bad(Method::POST, ENDPOINTS, json!({"provider": "gitlab"}), "provider"),
        bad(Method::POST, ENDPOINTS, json!({"provider": "GitHub"}), "provider"),
        bad(Method::POST, ENDPOINTS, json!({"provider": ""}), "provider"),
        bad(Method::POST, ENDPOINTS, json!({"provider": 1}), "provider"),
        bad(
            Method::POST,
            ENDPOINTS,
            json!({"provider": "github", "provider_signing_secret": ""}),
            "provider_signing_secret",
        ),
        bad(
            Method::POST,
            ENDPOINTS,
            json!({"provider": "github", "provider_signing_secret": "s".repeat(257)}),
            "provider_signing_secret",
        ),
        bad(
            Method::POST,
            ENDPOINTS,
            json!({"provider": "github", "provider_signing_secret": 5}),
            "provider_signing_secret",
        ),
        bad(Method::POST, ENDPOINTS, json!({"provider": "generic", "default_depth": "bottomless"}), "default_depth"),
        bad(Method::POST, ENDPOINTS, json!({"provider": "generic", "default_scope": "everything"}), "default_scope"),
        bad(Method::POST, ENDPOINTS, json!({"provider": "generic", "active": "true"}), "active"),
        bad(Method::POST, ENDPOINTS, json!({"provider": "generic", "url": "https://x"}), "unknown field \"url\""),
    ]);
    // The inbound receiver: unknown provider 404, bad keys 401, bodies 400/413.
    let receive = endpoint_path.clone();
    cases.extend([
        case(
            Method::POST,
            format!("/v1/webhooks/incoming/gitlab/{key}"),
            Body::Json(json!({"query": "q"})),
            404,
            "not_found",
            "",
        ),
        case(
            Method::POST,
            format!("/v1/webhooks/incoming/github/{key}"),
            Body::Json(json!({"query": "q"})),
            401,
            "unauthorized",
            "",
        ),
        case(
            Method::POST,
            "/v1/webhooks/incoming/generic/short".to_owned(),
            Body::Json(json!({"query": "q"})),
            401,
            "unauthorized",
            "",
        ),
        case(
            Method::POST,
            format!("/v1/webhooks/incoming/generic/{}", "A".repeat(48)),
            Body::Json(json!({"query": "q"})),
            401,
            "unauthorized",
            "",
        ),
        case(
            Method::POST,
            format!("/v1/webhooks/incoming/generic/{}x", key),
            Body::Json(json!({"query": "q"})),
            401,
            "unauthorized",
            "",
        ),
        case(Method::POST, receive.clone(), Body::Raw(b"{\"query\": ".to_vec()), 400, "invalid_json", "not valid JSON"),
        case(Method::POST, receive.clone(), Body::Raw(vec![b' '; 1024 * 1024 + 1]), 413, "payload_too_large", ""),
    ]);

    let mut failures = Vec::new();
    for c in &cases {
        let client = if c.path.starts_with("/v1/webhooks/incoming/") && !c.path.starts_with(ENDPOINTS) {
            stack.anonymous()
        } else {
            stack.api().clone()
        };
        let (headers, body): (Vec<(&str, &str)>, Vec<u8>) = match &c.body {
            Body::None => (vec![], vec![]),
            Body::Json(v) => (vec![("content-type", "application/json")], v.to_string().into_bytes()),
            Body::Raw(b) => (vec![("content-type", "application/json")], b.clone()),
        };
        let body = if matches!(&c.body, Body::Json(Value::Null)) { b"null".to_vec() } else { body };
        let (status, resp, resp_headers) = client.raw(c.method.clone(), &c.path, &headers, body).await;
        let message = resp["error"]["message"].as_str().unwrap_or_default();
        let json_type = resp_headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .starts_with("application/json");
        if status != c.status || resp["error"]["code"] != c.code || !message.contains(c.needle.as_str()) || !json_type {
            let shown: String = format!("{} {}", c.method, c.path).chars().take(140).collect();
            failures
                .push(format!("{shown}\n    want {} {} ~{:?}\n    got  {status} {resp}", c.status, c.code, c.needle));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(table_state(&stack).await, before, "a refused request changed the table");
}
