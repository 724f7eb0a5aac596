//! template.yaml, the code and events/ must describe the same service.
//!
//! These checks keep the single source of truth honest: a route added to the template without a
//! `puck_api::ROUTES` entry (or the reverse, or the local gateway routing it elsewhere), a binary
//! without a `src/bin` file, a function without a sample event, or an environment variable the
//! config does not know fails here rather than at deploy time.

use http::Method;
use puck_local::gateway::Gateway;
use puck_local::template::{Route, Template};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Template {
    Template::load(&root().join("template.yaml")).expect("template.yaml parses")
}

/// A concrete path for a path template: each `{param}` replaced by a plausible value.
fn concrete(path: &str) -> String {
    path.split('/').map(|seg| if seg.starts_with('{') { "x1" } else { seg }).collect::<Vec<_>>().join("/")
}

/// The one parity check between template.yaml, `puck_api::ROUTES` and the local gateway, in both
/// directions: every template route is a table entry with the same binary, method and path, every
/// table entry is a template route, and the gateway built from the template routes each table
/// path to that entry's binary (unmatched requests to the `$default` function, `not-found`).
#[test]
fn the_template_the_route_table_and_the_gateway_agree() {
    let routes = template().routes().unwrap();
    let in_template: BTreeSet<(String, String, String)> =
        routes.iter().map(|r| (r.binary.clone(), r.method.clone(), r.path.clone())).collect();
    let in_table: BTreeSet<(String, String, String)> =
        puck_api::ROUTES.iter().map(|r| (r.binary.to_owned(), r.method.to_owned(), r.path.to_owned())).collect();
    let only_template: Vec<_> = in_template.difference(&in_table).collect();
    let only_table: Vec<_> = in_table.difference(&in_template).collect();
    assert!(only_template.is_empty(), "template.yaml routes missing from puck_api::ROUTES: {only_template:?}");
    assert!(only_table.is_empty(), "puck_api::ROUTES entries missing from template.yaml: {only_table:?}");
    assert_eq!(in_template.len(), routes.len(), "a route declared twice in template.yaml");
    let defaults: Vec<&str> = routes.iter().filter(|r| r.is_default()).map(|r| r.binary.as_str()).collect();
    assert_eq!(defaults, [puck_api::NOT_FOUND.binary], "the $default route is served by not-found");

    let gateway = Gateway::new(&routes, Arc::new(puck_core::fakes::context())).expect("the gateway binds the template");
    for route in puck_api::ROUTES.iter().filter(|r| !r.is_default()) {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let path = concrete(route.path);
        assert_eq!(gateway.binary_for(&method, &path), Some(route.binary), "{method} {path}");
        // The same path with a method no route takes goes to `$default`, as in API Gateway.
        assert_eq!(gateway.binary_for(&Method::OPTIONS, &path), Some("not-found"), "OPTIONS {path}");
    }
    assert_eq!(gateway.binary_for(&Method::GET, "/v1/nope"), Some("not-found"));
}

#[test]
fn a_gateway_refuses_a_template_that_disagrees_with_the_table() {
    let routes = template().routes().unwrap();
    let ctx = Arc::new(puck_core::fakes::context());
    let mut moved = routes.clone();
    let get = moved.iter_mut().find(|r| r.binary == "subscriptions-get").unwrap();
    get.path = "/v1/webhooks/subscription/{id}".into();
    let err = Gateway::new(&moved, ctx.clone()).err().expect("a moved path is refused").to_string();
    assert!(err.contains("subscriptions-get") && err.contains("/v1/webhooks/subscription/{id}"), "{err}");
    let fewer: Vec<_> = routes.iter().filter(|r| r.binary != "deliveries-replay").cloned().collect();
    let err = Gateway::new(&fewer, ctx.clone()).err().expect("a missing route is refused").to_string();
    assert!(err.contains("deliveries-replay"), "{err}");
    let mut unknown = routes.clone();
    unknown[0].binary = "subscriptions-creat".into();
    let err = Gateway::new(&unknown, ctx).err().expect("an unknown binary is refused").to_string();
    assert!(err.contains("subscriptions-creat"), "{err}");
}

#[test]
fn every_route_is_declared_once() {
    let routes = template().routes().unwrap();
    let keys: BTreeSet<String> = routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(keys.len(), routes.len(), "duplicate route keys");
    // One function per route, except that a function may serve several routes (the console's page
    // and assets); a binary never belongs to two functions.
    let functions: BTreeSet<(&str, &str)> = routes.iter().map(|r| (r.binary.as_str(), r.function.as_str())).collect();
    let binaries: BTreeSet<&str> = routes.iter().map(|r| r.binary.as_str()).collect();
    assert_eq!(binaries.len(), functions.len(), "a binary bound to two functions");
}

#[test]
fn every_function_binary_has_a_bin_source_file() {
    let t = template();
    let functions = root().join("functions");
    for (logical_id, binary, _) in t.functions().unwrap() {
        let found = std::fs::read_dir(&functions)
            .unwrap()
            .filter_map(Result::ok)
            .any(|crate_dir| crate_dir.path().join("src/bin").join(format!("{binary}.rs")).is_file());
        assert!(found, "{logical_id}: no functions/*/src/bin/{binary}.rs");
    }
}

/// `events/<binary>.json`; when a function serves several routes, each route ending in a `{param}`
/// has its own `events/<binary>-<param>.json` (the console: `console.json`, `console-asset.json`).
fn sample_event_name(route: &Route, routes: &[Route]) -> String {
    let shared = routes.iter().filter(|r| r.binary == route.binary).count() > 1;
    match route.path.rsplit('/').next().and_then(|s| s.strip_prefix('{')).and_then(|s| s.strip_suffix('}')) {
        Some(param) if shared => format!("{}-{param}.json", route.binary),
        _ => format!("{}.json", route.binary),
    }
}

#[test]
fn every_route_has_a_sample_event_with_its_route_key() {
    let routes = template().routes().unwrap();
    for route in &routes {
        let path = root().join("events").join(sample_event_name(route, &routes));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: lambda_http rejects it: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let expected = route.route_key();
        assert_eq!(json["routeKey"], expected.as_str(), "{}", path.display());
        assert_eq!(json["requestContext"]["routeKey"], expected.as_str(), "{}", path.display());
        if route.is_default() {
            // Any method and path: the event's request must be one no other route serves.
            let (method, raw) =
                (json["requestContext"]["http"]["method"].as_str().unwrap(), json["rawPath"].as_str().unwrap());
            assert!(matches!(puck_api::match_route(method, raw), puck_api::RouteMatch::NotFound), "{}", path.display());
            continue;
        }
        assert_eq!(json["requestContext"]["http"]["method"], route.method.as_str(), "{}", path.display());
        // The raw path must be matched by the template path with the event's path parameters.
        let mut filled = route.path.clone();
        if let Some(params) = json["pathParameters"].as_object() {
            for (k, v) in params {
                filled = filled.replace(&format!("{{{k}}}"), v.as_str().unwrap());
            }
        }
        assert_eq!(json["rawPath"], filled.as_str(), "{}", path.display());
    }
}

#[test]
fn every_worker_has_a_sample_event_that_parses() {
    let t = template();
    for consumer in t.sqs_consumers().unwrap() {
        let path = root().join("events").join(format!("{}.json", consumer.binary));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&text).unwrap();
        assert!(!event.records.is_empty(), "{}", path.display());
        for record in &event.records {
            assert!(record.attributes.contains_key("ApproximateReceiveCount"), "{}", path.display());
            let body = record.body.as_deref().unwrap();
            if consumer.binary == "ingest" {
                // A producer's message: it parses as the ingest function reads it.
                let message = puck_core::services::ingest::IngestMessage::parse(body)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
                assert!(!message.events.is_empty());
                continue;
            }
            let job: puck_core::ports::DeliveryJob = serde_json::from_str(body).unwrap();
            assert!(job.delivery_id.as_str().starts_with("dlv_"));
        }
    }
    for schedule in t.schedules().unwrap() {
        let path = root().join("events").join(format!("{}.json", schedule.binary));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event", "{}", path.display());
    }
}

#[test]
fn every_global_env_var_is_known_to_the_config() {
    let t = template();
    let env = t.global_env();
    // Resolved values do not matter here, only that each name is read and the defaults parse:
    // substitute a plausible value per intrinsic.
    let resolved: std::collections::BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => match other.get("Ref").and_then(|r| r.as_str()) {
                    Some(name) => {
                        t.parameter_defaults().get(name).cloned().unwrap_or_else(|| format!("http://local/{name}"))
                    }
                    None => "x".to_owned(),
                },
            };
            (k.clone(), value)
        })
        .collect();
    puck_aws::Config::from_lookup(|name| resolved.get(name).cloned()).expect("Globals env is a valid Config");

    // Every name in Globals must be one the config reads.
    let read = std::cell::RefCell::new(BTreeSet::new());
    let _ = puck_aws::Config::from_lookup(|name| {
        read.borrow_mut().insert(name.to_owned());
        resolved.get(name).cloned()
    });
    let read = read.into_inner();
    for name in env.keys().filter(|n| *n != "RUST_LOG") {
        assert!(read.contains(name), "Globals sets {name}, which puck_aws::Config never reads");
    }
    // And dev-only switches must never be set in the template.
    for name in ["ALLOW_PRIVATE_TARGETS", "EXTRA_CA_CERT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"] {
        assert!(!env.contains_key(name), "{name} must not be set in template.yaml");
    }
    // PUBLIC_BASE_URL only as the deploy parameter (a custom domain), empty by default.
    assert_eq!(env.get("PUBLIC_BASE_URL"), Some(&serde_json::json!({"Ref": "PublicBaseUrl"})));
}

#[test]
fn max_delivery_attempts_is_one_setting() {
    let t = template();
    let queue = &t.resources()["DeliveryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"];
    assert_eq!(queue, &serde_json::json!({"Ref": "MaxDeliveryAttempts"}));
    assert_eq!(t.global_env()["MAX_DELIVERY_ATTEMPTS"], serde_json::json!({"Ref": "MaxDeliveryAttempts"}));
}
