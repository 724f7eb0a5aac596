//! The event-type catalog through the API: every type with a JSON Schema (2020-12) of `data` and
//! an example that a real validator (Python `jsonschema`) accepts, and `"*"` delivering every
//! platform type but no operational `webhook.*` type.

use crate::support::{assert_error, create_subscription, SUBSCRIPTIONS};
use puck_e2e::delivery::{list_all_deliveries, venv_python};
use puck_e2e::{wait_until, Receiver, TestStack, EVENTUALLY};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const EVENT_TYPES: &str = "/v1/webhooks/event-types";

/// Checks each schema is a valid 2020-12 schema and each example validates against it; prints
/// one error line per failure.
const VALIDATE_PY: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
errors = []
for t in json.load(sys.stdin)["event_types"]:
    try:
        Draft202012Validator.check_schema(t["schema"])
        for e in Draft202012Validator(t["schema"]).iter_errors(t["example"]):
            errors.append(t["name"] + ": " + e.message)
        if Draft202012Validator(t["schema"]).is_valid("not an object"):
            errors.append(t["name"] + ": schema accepts a string")
    except Exception as e:
        errors.append(t["name"] + ": " + type(e).__name__ + ": " + str(e))
print(json.dumps(errors))
"#;

async fn schema_errors(catalog: &Value) -> Vec<String> {
    let out = venv_python(VALIDATE_PY, catalog).await;
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("jsonschema check failed to run: {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_every_type_and_each_example_validates_against_its_schema() {
    let stack = TestStack::start_default().await;
    let (status, catalog, _) = stack.get(EVENT_TYPES).await;
    assert_eq!(status, 200, "{catalog}");
    let names: BTreeSet<&str> =
        catalog["event_types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for name in [
        "investigation.queued",
        "finding.discovered",
        "agent.disconnected",
        "webhook.delivery.dead_lettered",
        "webhook.subscription.disabled",
        "webhook.subscription.failing",
        "webhook.subscription.recovered",
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    for t in catalog["event_types"].as_array().unwrap() {
        for field in ["group", "description", "has_severity", "schema", "example"] {
            assert!(!t[field].is_null(), "{}: no {field}", t["name"]);
        }
    }
    assert_eq!(catalog["groups"], json!(["investigation.*", "finding.*", "chain.*", "agent.*", "webhook.*"]));
    let errors = schema_errors(&catalog).await;
    assert!(errors.is_empty(), "{errors:?}");
    // The validator is real: a broken example is caught.
    let mut broken = catalog.clone();
    broken["event_types"][0]["example"] = json!({"status": 5});
    assert!(!schema_errors(&broken).await.is_empty());

    // Every group is a valid subscription pattern, and the scope is required.
    let receiver = Receiver::start().await;
    let groups: Vec<Value> = catalog["groups"].as_array().unwrap().clone();
    create_subscription(&stack, json!({"url": receiver.url(), "events": groups})).await;
    let outsider = stack.new_account(&[puck_core::model::Scope::EventsPublish]).await;
    assert_eq!(stack.with_key(&outsider.api_key).get(EVENT_TYPES).await.0, 403);
    assert_eq!(stack.anonymous().get(EVENT_TYPES).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_receives_every_platform_type_and_no_operational_type() {
    let stack = TestStack::start_default().await;
    let (_, catalog, _) = stack.get(EVENT_TYPES).await;
    let star = Receiver::start().await;
    let ops = Receiver::start().await;
    create_subscription(&stack, json!({"url": star.url(), "events": ["*"]})).await;
    let created = create_subscription(&stack, json!({"url": ops.url(), "events": ["webhook.*"]})).await;
    assert_eq!(created["events"], json!(["webhook.*"]));
    let platform: BTreeSet<String> = catalog["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["group"] != "webhook.*")
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(platform.len(), 8);
    for t in &platform {
        let (status, body, _) = stack.post("/v1/events", json!({"event_type": t, "data": {}})).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["deliveries"], 1, "{t}: only \"*\" listens");
    }
    // Operational types are the service's own: producers cannot publish them.
    let resp = stack.post("/v1/events", json!({"event_type": "webhook.subscription.disabled", "data": {}})).await;
    assert_error(&resp, 400, "validation_error", "event_type");

    wait_until(EVENTUALLY, "every platform type to reach \"*\"", || async {
        star.requests()
            .iter()
            .map(|r| r.header("x-puck-event-type").unwrap_or_default().to_owned())
            .collect::<BTreeSet<_>>()
            == platform
    })
    .await;
    assert!(ops.requests().is_empty());
    assert_eq!(list_all_deliveries(&stack, "").await.len(), platform.len());

    for bad in [json!(["**"]), json!(["*.*"]), json!([".*"]), json!(["webhook.nope.*"])] {
        let resp = stack.post(SUBSCRIPTIONS, json!({"url": "https://hooks.example.com/x", "events": bad})).await;
        assert_error(&resp, 400, "validation_error", "events");
    }
}
