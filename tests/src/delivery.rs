//! Helpers for delivery tests: the delivery log over the API, the delivery queue's depth over the
//! SDK, and an independent check of Standard Webhooks signatures with the public Python
//! `standardwebhooks` package (installed into the project `.venv` by
//! `infra/scripts/bootstrap-python.sh`).

use crate::stack::TestStack;
use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine;
use http::HeaderMap;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// `GET /v1/webhooks/deliveries/{id}` with the dev key; panics unless 200.
pub async fn get_delivery(stack: &TestStack, id: &str) -> Value {
    let (status, body, _) = stack.get(&format!("/v1/webhooks/deliveries/{id}")).await;
    assert_eq!(status, 200, "GET delivery {id}: {body}");
    body
}

/// Polls the delivery until its `status` is `status`, and returns it.
///
/// # Panics
/// After `timeout`, with the last state seen.
pub async fn wait_for_delivery_status(stack: &TestStack, id: &str, status: &str, timeout: Duration) -> Value {
    let started = std::time::Instant::now();
    loop {
        let d = get_delivery(stack, id).await;
        if d["status"] == status {
            return d;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for delivery {id} to become {status}; last seen: {d}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every delivery of the log matching `query` (e.g. `status=succeeded`), following cursors.
pub async fn list_all_deliveries(stack: &TestStack, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/webhooks/deliveries?limit=100&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page, _) = stack.get(&path).await;
        assert_eq!(status, 200, "GET {path}: {page}");
        out.extend(page["deliveries"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Sends `job` to the stack's delivery queue as the publisher does: a duplicate SQS message, as
/// SQS's at-least-once delivery or the sweeper may produce.
pub async fn send_job(stack: &TestStack, job: &puck_core::ports::DeliveryJob) {
    stack
        .stack
        .clients
        .sqs
        .send_message()
        .queue_url(&stack.stack.delivery_queue_url)
        .message_body(serde_json::to_string(job).expect("a job serialises"))
        .send()
        .await
        .expect("SendMessage");
}

/// Messages in a queue: `(visible, in flight, delayed)` (SQS's approximate counts; exact in moto).
pub async fn queue_depth(stack: &TestStack, queue_url: &str) -> (u64, u64, u64) {
    let out = stack
        .stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetQueueAttributes {queue_url}: {e:?}"));
    let attrs = out.attributes.unwrap_or_default();
    let get = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    )
}

/// Waits until the delivery queue holds no message at all (every job consumed and deleted).
pub async fn wait_for_empty_delivery_queue(stack: &TestStack, timeout: Duration) {
    let url = stack.stack.delivery_queue_url.clone();
    crate::wait::wait_until(timeout, "the delivery queue to be empty", || {
        let url = url.clone();
        async move { queue_depth(stack, &url).await == (0, 0, 0) }
    })
    .await;
}

/// The repository root (the workspace holding `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

const VERIFY_PY: &str = r#"
import base64, json, sys
from standardwebhooks.webhooks import Webhook
req = json.load(sys.stdin)
body = base64.b64decode(req["body"])
try:
    print(json.dumps({"ok": True, "payload": Webhook(req["secret"]).verify(body, req["headers"])}))
except Exception as e:
    print(json.dumps({"ok": False, "error": type(e).__name__ + ": " + str(e)}))
"#;

/// Runs `script` with the project `.venv`'s Python, `input` as JSON on stdin (never the command
/// line), and returns its output.
///
/// # Panics
/// When the virtualenv's Python cannot be run (run `infra/scripts/bootstrap-python.sh`).
pub async fn venv_python(script: &str, input: &Value) -> std::process::Output {
    let python = repo_root().join(".venv/bin/python");
    let mut child = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); run infra/scripts/bootstrap-python.sh", python.display()));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.to_string().as_bytes()).await.expect("write to python");
    drop(stdin);
    child.wait_with_output().await.expect("python output")
}

/// Verifies a delivery with the public Python `standardwebhooks` library (`Webhook(secret)
/// .verify(body, headers)`), run from the project `.venv`: `Ok(parsed body)` or `Err(reason)`.
/// Body, headers and secret go through stdin, never the command line.
///
/// # Panics
/// When the virtualenv's Python cannot be run (run `infra/scripts/bootstrap-python.sh`).
pub async fn standard_webhooks_verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), Value::String(v.to_str().ok()?.to_owned()))))
        .collect();
    let input = json!({
        "secret": secret,
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(body),
    });
    let out = venv_python(VERIFY_PY, &input).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!("standardwebhooks check failed to run: {stdout} {}", String::from_utf8_lossy(&out.stderr))
    });
    if answer["ok"] == true {
        Ok(answer["payload"].clone())
    } else {
        Err(answer["error"].as_str().unwrap_or("unknown").to_owned())
    }
}
