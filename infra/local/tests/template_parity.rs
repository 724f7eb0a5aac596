//! template.yaml, the code and events/ must describe the same service.
//!
//! These checks keep the single source of truth honest: a route added to the template without a
//! handler (or the reverse), a binary without a `src/bin` file, a function without a sample event,
//! or an environment variable the config does not know fails here rather than at deploy time.

use puck_local::template::Template;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Template {
    Template::load(&root().join("template.yaml")).expect("template.yaml parses")
}

#[test]
fn every_template_route_has_a_handler_and_every_handler_a_route() {
    let t = template();
    let in_template: BTreeSet<String> = t.routes().unwrap().into_iter().map(|r| r.binary).collect();
    let in_code: BTreeSet<String> = puck_api::ROUTES.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(in_template, in_code, "template HttpApi binaries vs puck_api::ROUTES");
}

#[test]
fn the_route_table_is_the_template_routes_and_unmatched_requests_go_to_not_found() {
    let routes = template().routes().unwrap();
    let in_template: BTreeSet<(String, String, String)> = routes
        .iter()
        .filter(|r| !r.is_default())
        .map(|r| (r.binary.clone(), r.method.clone(), r.path.clone()))
        .collect();
    let in_code: BTreeSet<(String, String, String)> =
        puck_api::ROUTE_TABLE.iter().map(|(b, m, p)| ((*b).to_owned(), (*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(in_template, in_code, "template HttpApi routes vs puck_api::ROUTE_TABLE");
    let defaults: Vec<&str> = routes.iter().filter(|r| r.is_default()).map(|r| r.binary.as_str()).collect();
    assert_eq!(defaults, ["not-found"], "the $default route is served by not-found");
}

#[test]
fn every_route_is_declared_once() {
    let routes = template().routes().unwrap();
    let keys: BTreeSet<String> = routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(keys.len(), routes.len(), "duplicate route keys");
    let binaries: BTreeSet<&str> = routes.iter().map(|r| r.binary.as_str()).collect();
    assert_eq!(binaries.len(), routes.len(), "one function per route");
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

#[test]
fn every_route_has_a_sample_event_with_its_route_key() {
    for route in template().routes().unwrap() {
        let path = root().join("events").join(format!("{}.json", route.binary));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{}: lambda_http rejects it: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let expected = route.route_key();
        assert_eq!(json["routeKey"], expected.as_str(), "{}", path.display());
        assert_eq!(json["requestContext"]["routeKey"], expected.as_str(), "{}", path.display());
        if route.is_default() {
            // Any method and path: the event's request must be one no other route serves.
            let (method, raw) = (json["requestContext"]["http"]["method"].as_str().unwrap(), json["rawPath"].as_str().unwrap());
            assert_eq!(puck_api::match_route(method, raw), puck_api::RouteMatch::NotFound, "{}", path.display());
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
            let job: puck_core::ports::DeliveryJob = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
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
                    Some(name) => t.parameter_defaults().get(name).cloned().unwrap_or_else(|| format!("http://local/{name}")),
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
    // PUBLIC_BASE_URL only as the deploy parameter (a custom domain), empty by default (issue 10).
    assert_eq!(env.get("PUBLIC_BASE_URL"), Some(&serde_json::json!({"Ref": "PublicBaseUrl"})));
}

#[test]
fn max_delivery_attempts_is_one_setting() {
    let t = template();
    let queue = &t.resources()["DeliveryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"];
    assert_eq!(queue, &serde_json::json!({"Ref": "MaxDeliveryAttempts"}));
    assert_eq!(t.global_env()["MAX_DELIVERY_ATTEMPTS"], serde_json::json!({"Ref": "MaxDeliveryAttempts"}));
}
