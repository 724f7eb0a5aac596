//! The OpenAPI document against the running service: it validates as OpenAPI 3.1, every real
//! response of every route conforms to it (an undocumented field or status fails), and
//! schemathesis fuzzes every operation from it without a server error or a non-conforming answer.

use crate::support::{create_endpoint, create_subscription, id_of, ENDPOINTS, SUBSCRIPTIONS};
use puck_e2e::{wait_for_some, ApiResponse, Receiver, TestStack, EVENTUALLY};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn venv_bin(tool: &str) -> PathBuf {
    repo_root().join(".venv/bin").join(tool)
}

/// Fetches the served document (no API key) into a file for the Python tools.
async fn document_file(stack: &TestStack, dir: &Path) -> PathBuf {
    let (status, doc, headers) = stack.anonymous().get("/v1/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(headers["content-type"], "application/json");
    let path = dir.join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    path
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = repo_root().join("target/openapi").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Real responses, each recorded with the operation that produced it.
#[derive(Default)]
struct Recorded(Vec<Value>);

impl Recorded {
    fn keep(&mut self, operation: &str, resp: &ApiResponse) -> Value {
        self.0.push(json!({ "operation": operation, "status": resp.0, "body": resp.1 }));
        resp.1.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_validates_and_every_route_answers_as_it_documents() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    let dir = scratch_dir("conformance");
    let doc_path = document_file(&stack, &dir).await;
    let mut r = Recorded::default();
    let api = stack.api();

    let created = r.keep("subscriptions-create", &api.post(SUBSCRIPTIONS, json!({"url": receiver.url(), "events": ["finding.*", "investigation.queued"], "name": "SIEM", "filters": {"min_severity": "low", "tags": {"team": "red"}}})).await);
    let sub = id_of(&created);
    let sub_path = format!("{SUBSCRIPTIONS}/{sub}");
    let queue = "https://sqs.eu-west-1.amazonaws.com/111122223333/puck-alerts";
    let aws = json!({"type": "sqs", "queue_url": queue, "role_arn": "arn:aws:iam::111122223333:role/puck"});
    let body = json!({"destination": aws, "events": ["investigation.completed"]});
    let with_destination = r.keep("subscriptions-create", &api.post(SUBSCRIPTIONS, body).await);
    r.keep("subscriptions-get", &api.get(&format!("{SUBSCRIPTIONS}/{}", id_of(&with_destination))).await);
    r.keep(
        "subscriptions-create",
        &api.post(SUBSCRIPTIONS, json!({"url": "http://plain.example/h", "events": ["finding.*"]})).await,
    );
    r.keep(
        "subscriptions-create",
        &api.raw(Method::POST, SUBSCRIPTIONS, &[("content-type", "application/json")], "{not json").await,
    );
    r.keep("subscriptions-create", &api.raw(Method::POST, SUBSCRIPTIONS, &[], vec![b' '; 70 * 1024]).await);
    r.keep("subscriptions-list", &api.get(&format!("{SUBSCRIPTIONS}?limit=1")).await);
    r.keep("subscriptions-list", &api.get(&format!("{SUBSCRIPTIONS}?limit=0")).await);
    r.keep("subscriptions-list", &stack.anonymous().get(SUBSCRIPTIONS).await);
    r.keep("subscriptions-get", &api.get(&sub_path).await);
    r.keep("subscriptions-get", &api.get(&format!("{SUBSCRIPTIONS}/sub_nope")).await);
    r.keep("subscriptions-update", &api.patch(&sub_path, json!({"secret": null})).await);
    r.keep("subscriptions-update", &api.patch(&sub_path, json!({"active": "yes"})).await);
    let ed25519 = r.keep(
        "subscriptions-create",
        &api.post(SUBSCRIPTIONS, json!({"url": receiver.url(), "events": ["chain.*"], "signature_scheme": "ed25519"}))
            .await,
    );
    let ed25519_path = format!("{SUBSCRIPTIONS}/{}", id_of(&ed25519));
    r.keep("subscriptions-update", &api.patch(&ed25519_path, json!({"public_key": null})).await);
    r.keep("subscriptions-update", &api.patch(&ed25519_path, json!({"signature_scheme": "hmac-sha256"})).await);
    r.keep("subscriptions-get", &api.get(&ed25519_path).await);
    let auth = json!({"type": "oauth2_client_credentials", "token_url": receiver.url_with_path("/token"),
        "client_id": "c", "client_secret": "s", "scope": "hooks"});
    r.keep("subscriptions-update", &api.patch(&sub_path, json!({"auth": auth})).await);
    r.keep("subscriptions-get", &api.get(&sub_path).await);
    r.keep("subscriptions-update", &api.patch(&sub_path, json!({"auth": {"type": "basic"}})).await);
    r.keep("subscriptions-update", &api.patch(&sub_path, json!({"auth": null})).await);
    r.keep("event-types-list", &api.get("/v1/webhooks/event-types").await);
    r.keep("subscriptions-test", &api.post(&format!("{sub_path}/test"), json!({"event_type": "nope"})).await);
    let queued = r.keep("subscriptions-test", &api.post(&format!("{sub_path}/test"), Value::Null).await);
    r.keep("subscriptions-test", &api.post(&format!("{sub_path}/test?wait=true"), Value::Null).await);

    let publisher =
        stack.with_key(&stack.issue_key(stack.account_id(), &[puck_core::model::Scope::EventsPublish]).await);
    r.keep("events-publish", &publisher.post("/v1/events", json!({"event_type": "finding.discovered", "severity": "high", "tags": {"team": "red"}, "data": {"title": "t"}})).await);
    r.keep("events-publish", &publisher.post("/v1/events", json!({"event_type": "nope", "data": {}})).await);
    r.keep("deliveries-list", &publisher.get("/v1/webhooks/deliveries").await);
    r.keep("events-publish-batch", &publisher.post("/v1/events/batch", json!({"events": [{"event_type": "agent.registered", "data": {"agent_id": "a1"}}, {"event_type": "chain.confirmed", "data": {}}]})).await);
    r.keep("events-publish-batch", &publisher.post("/v1/events/batch", json!({"events": []})).await);

    let delivery_path = format!("/v1/webhooks/deliveries/{}", queued["delivery_id"].as_str().unwrap());
    wait_for_some(EVENTUALLY, "the test delivery to succeed", || async {
        let (_, d, _) = api.get(&delivery_path).await;
        (d["status"] == "succeeded").then_some(())
    })
    .await;
    r.keep(
        "deliveries-list",
        &api.get(&format!("/v1/webhooks/deliveries?subscription_id={sub}&status=succeeded")).await,
    );
    r.keep("deliveries-list", &api.get("/v1/webhooks/deliveries?status=lost").await);
    r.keep("deliveries-list", &api.get("/v1/webhooks/deliveries?subscription_id=sub_01hzy0000000000000000000aa").await);
    r.keep("deliveries-get", &api.get(&delivery_path).await);
    r.keep("deliveries-get", &api.get("/v1/webhooks/deliveries/dlv_nope").await);
    r.keep("deliveries-replay", &api.post(&format!("{delivery_path}/replay"), Value::Null).await);
    // Pending again now (unless already sent once more): a second replay is then a 409.
    r.keep("deliveries-replay", &api.post(&format!("{delivery_path}/replay"), Value::Null).await);
    r.keep(
        "subscriptions-recover",
        &api.post(&format!("{sub_path}/recover"), json!({"since": created["created_at"]})).await,
    );
    r.keep("subscriptions-recover", &api.post(&format!("{sub_path}/recover"), json!({"since": "yesterday"})).await);
    r.keep(
        "deliveries-list",
        &api.get(&format!(
            "/v1/webhooks/deliveries?event_type=investigation.queued&since={}",
            created["created_at"].as_str().unwrap()
        ))
        .await,
    );

    let (endpoint, receiver_path, _) =
        create_endpoint(&stack, json!({"provider": "generic", "default_depth": "quick"})).await;
    r.0.push(json!({"operation": "endpoints-create", "status": 201, "body": endpoint}));
    r.keep("endpoints-create", &api.post(ENDPOINTS, json!({"provider": "gitlab"})).await);
    r.keep("endpoints-list", &api.get(ENDPOINTS).await);
    let received =
        r.keep("inbound-receive", &stack.anonymous().post(&receiver_path, json!({"query": "check host web-1"})).await);
    r.keep("inbound-receive", &stack.anonymous().post(&receiver_path, json!({"hello": "world"})).await);
    r.keep(
        "inbound-receive",
        &stack.anonymous().post("/v1/webhooks/incoming/generic/wrongkey", json!({"query": "q"})).await,
    );
    r.keep("inbound-receive", &stack.anonymous().post("/v1/webhooks/incoming/gitlab/k", json!({})).await);
    r.keep(
        "investigations-get",
        &api.get(&format!("/v1/investigations/{}", received["investigation_id"].as_str().unwrap())).await,
    );
    r.keep("investigations-get", &publisher.get("/v1/investigations/inv_nope").await);
    r.keep("endpoints-delete", &api.delete(&format!("{ENDPOINTS}/{}", id_of(&endpoint))).await);
    r.keep("endpoints-delete", &api.delete(&format!("{ENDPOINTS}/{}", id_of(&endpoint))).await);
    r.keep("subscriptions-delete", &api.delete(&sub_path).await);
    r.keep("subscriptions-delete", &api.delete(&sub_path).await);
    let (status, _, headers) = stack.anonymous().get("/docs").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    r.0.push(json!({"operation": "api-docs", "status": 200, "body": null}));
    for (operation, path) in [("console", "/console"), ("console-asset", "/console/app.js")] {
        let (status, _, _) = stack.anonymous().get(path).await;
        assert_eq!(status, 200, "{path}");
        r.0.push(json!({"operation": operation, "status": 200, "body": null}));
    }
    r.keep("console-asset", &stack.anonymous().get("/console/nope.js").await);
    r.0.push(json!({"operation": "openapi-document", "status": 200, "body": {}}));

    let documented: Vec<String> = {
        let doc: Value = serde_json::from_slice(&std::fs::read(&doc_path).unwrap()).unwrap();
        doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|i| i.as_object().unwrap().values().map(|o| o["operationId"].as_str().unwrap().to_owned()))
            .collect()
    };
    for op in &documented {
        assert!(r.0.iter().any(|x| x["operation"] == op.as_str()), "the conformance run calls no {op}: add it");
    }

    let responses = dir.join("responses.jsonl");
    std::fs::write(&responses, r.0.iter().map(|v| format!("{v}\n")).collect::<String>()).unwrap();
    let out = Command::new(venv_bin("python"))
        .arg(repo_root().join("infra/scripts/openapi_check.py"))
        .arg(&doc_path)
        .arg(&responses)
        .output()
        .expect("run openapi_check.py");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "responses do not conform to the document:\n{report}");
    assert!(report.contains(&format!("{} responses checked, 0 failures", r.0.len())), "{report}");
}

/// schemathesis, from the served document, against every operation: no 5xx, every status code
/// and body as documented, every response's content type and headers as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_on_any_operation() {
    let stack = TestStack::start_default().await;
    let dir = scratch_dir("schemathesis");
    let doc_path = document_file(&stack, &dir).await;
    let _ = create_subscription(&stack, json!({"url": "https://hooks.example.com/h", "events": ["finding.*"]})).await;
    let max_examples = std::env::var("SCHEMATHESIS_MAX_EXAMPLES").unwrap_or_else(|_| "25".into());
    let out = Command::new(venv_bin("schemathesis"))
        .arg("run")
        .arg(&doc_path)
        .args(["--url", stack.base_url()])
        .args(["--header", &format!("Authorization: Bearer {}", stack.api_key())])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"])
        .args(["--max-examples", &max_examples, "--seed", "20261202", "--workers", "2", "--request-timeout", "20"])
        .args(["--phases", "examples,coverage,fuzzing", "--suppress-health-check", "all", "--no-color"])
        .args(["--report", "junit", "--report-dir"])
        .arg(dir.join("report"))
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(&dir)
        .output()
        .expect("run schemathesis from the project virtualenv");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.join("output.txt"), &report).unwrap();
    assert!(
        out.status.success(),
        "schemathesis found failures (full output in {}):\n{report}",
        dir.join("output.txt").display()
    );
}
