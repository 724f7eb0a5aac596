//! SQS limits that moto does not enforce, enforced by a small proxy in front of it (docs/local-stack.md).
//!
//! SQS lets a message's visibility reach at most 12 h after the receive that returned it: a
//! `ChangeMessageVisibility` asking for more fails with `InvalidParameterValue`, and the message
//! comes back after the queue's own visibility timeout. And a message is deleted (not
//! dead-lettered) `MessageRetentionPeriod` after its first enqueue, also after redrive into the
//! DLQ. moto does neither, so code that breaks both rules passes every test on moto alone.
//!
//! Every SQS call of the local stack (the functions' client via `AWS_ENDPOINT_URL_SQS`, and the
//! pollers that play the event source mapping) goes through this proxy. It forwards AWS JSON
//! protocol requests to moto unchanged and, on the way, records each receive by receipt handle,
//! refuses a visibility change past the 12 h window exactly as SQS does, and on receive deletes
//! messages older than their queue's retention instead of returning them. What it saw is kept for
//! tests: [`SqsLimits::receives`], [`SqsLimits::refusals`], [`SqsLimits::expired`].
//!
//! [`SqsLimits::advance`] moves the proxy's clock forward (retention and window checks only; moto
//! still hides and shows messages on the real clock), so a test can expire a message in seconds.

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// SQS's limit on visibility after a receive, in seconds.
pub const VISIBILITY_WINDOW_SECS: f64 = 43_200.0;
/// SQS's default retention when a queue sets none.
const DEFAULT_RETENTION_SECS: f64 = 4.0 * 86_400.0;

/// One receive of a message, as the proxy saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveRecord {
    pub queue_url: String,
    pub message_id: String,
    pub body: String,
    /// Unix seconds (proxy clock) of the receive.
    pub received_at: f64,
    /// Unix seconds (proxy clock) the message becomes visible again after the last accepted
    /// `ChangeMessageVisibility` on this receive; None until one is accepted.
    pub visible_at: Option<f64>,
}

/// A `ChangeMessageVisibility` refused because it passed the 12 h window of its receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub message_id: String,
    pub requested_secs: u64,
    /// Seconds of the window that were left when it was asked.
    pub left_secs: f64,
}

#[derive(Default)]
struct State {
    /// Receipt handle → its receive.
    receives: HashMap<String, ReceiveRecord>,
    /// Receipt handles in receive order (for [`SqsLimits::receives`]).
    order: Vec<String>,
    /// Message id → first enqueue (Unix seconds, proxy clock), from send responses.
    first_enqueued: HashMap<String, f64>,
    /// Queue URL → MessageRetentionPeriod, cached from GetQueueAttributes.
    retention: HashMap<String, f64>,
    refusals: Vec<Refusal>,
    expired: Vec<String>,
    offset_secs: f64,
    /// FIFO deduplication over 5 minutes, deleted messages included ([`crate::fifo_dedup`]).
    dedup: crate::fifo_dedup::Dedup,
}

/// The running proxy; stops when dropped.
pub struct SqsLimits {
    endpoint: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for SqsLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsLimits").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl Drop for SqsLimits {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SqsLimits {
    /// Starts the proxy on an ephemeral loopback port, forwarding to `upstream` (moto).
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.context("Failed to bind the SQS limits proxy")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let proxy = Arc::new(Proxy {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            state: state.clone(),
        });
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                while connections.try_join_next().is_some() {}
                let proxy = proxy.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let proxy = proxy.clone();
                        async move { Ok::<_, Infallible>(proxy.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { endpoint, state, task })
    }

    /// `http://127.0.0.1:<port>`: what `AWS_ENDPOINT_URL_SQS` points at.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every receive so far, oldest first.
    pub fn receives(&self) -> Vec<ReceiveRecord> {
        let s = lock(&self.state);
        s.order.iter().filter_map(|h| s.receives.get(h).cloned()).collect()
    }

    /// Every refused visibility change so far.
    pub fn refusals(&self) -> Vec<Refusal> {
        lock(&self.state).refusals.clone()
    }

    /// Ids of the messages deleted for passing their queue's retention.
    pub fn expired(&self) -> Vec<String> {
        lock(&self.state).expired.clone()
    }

    /// Moves the proxy's clock forward by `secs` (retention and window checks only).
    pub fn advance(&self, secs: f64) {
        lock(&self.state).offset_secs += secs;
    }

    /// The proxy's clock: Unix seconds plus [`SqsLimits::advance`].
    pub fn now(&self) -> f64 {
        unix_now() + lock(&self.state).offset_secs
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    state: Arc<Mutex<State>>,
}

/// A request as received, kept to forward it (and to issue follow-up calls with its headers).
struct Call {
    method: http::Method,
    path: String,
    headers: http::HeaderMap,
    body: Bytes,
}

/// A response to hand back.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Proxy {
    async fn handle(&self, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let call = Call {
            method: parts.method,
            path: parts.uri.path_and_query().map_or("/".to_owned(), ToString::to_string),
            headers: parts.headers,
            body,
        };
        let target = call.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let answer = match target.as_str() {
            "AmazonSQS.ChangeMessageVisibility" => self.change_visibility(&call).await,
            "AmazonSQS.ReceiveMessage" => self.receive(&call).await,
            "AmazonSQS.SendMessage" | "AmazonSQS.SendMessageBatch" => self.send(&call).await,
            "AmazonSQS.SetQueueAttributes" => {
                // A retention change must be re-read.
                if let Some(url) = json_body(&call.body).get("QueueUrl").and_then(Value::as_str) {
                    lock(&self.state).retention.remove(url);
                }
                self.forward(&call, None).await
            }
            _ => self.forward(&call, None).await,
        };
        let mut resp = http::Response::new(Full::new(answer.body));
        *resp.status_mut() = http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        for (name, value) in &answer.headers {
            if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
                resp.headers_mut().append(name, value.clone());
            }
        }
        resp
    }

    /// Sends `call` (with `body` instead of its own when given) to moto.
    async fn forward(&self, call: &Call, body: Option<Bytes>) -> Answer {
        let mut req = self.http.request(call.method.clone(), format!("{}{}", self.upstream, call.path));
        for (name, value) in &call.headers {
            if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
                req = req.header(name, value);
            }
        }
        match req.body(body.unwrap_or_else(|| call.body.clone())).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let body = resp.bytes().await.unwrap_or_default();
                Answer { status, headers, body }
            }
            Err(error) => {
                tracing::warn!(error = %error, "SQS limits proxy: moto unreachable");
                Answer { status: 502, headers: http::HeaderMap::new(), body: Bytes::from_static(b"{}") }
            }
        }
    }

    /// Another SQS action to moto with the caller's headers (region and credentials scope).
    async fn call(&self, like: &Call, action: &str, body: Value) -> Answer {
        let mut headers = like.headers.clone();
        headers
            .insert("x-amz-target", http::HeaderValue::from_str(&format!("AmazonSQS.{action}")).expect("ascii action"));
        let call =
            Call { method: http::Method::POST, path: like.path.clone(), headers, body: Bytes::from(body.to_string()) };
        self.forward(&call, None).await
    }

    async fn change_visibility(&self, call: &Call) -> Answer {
        let req = json_body(&call.body);
        let handle = req.get("ReceiptHandle").and_then(Value::as_str).unwrap_or_default().to_owned();
        let requested = req.get("VisibilityTimeout").and_then(Value::as_u64).unwrap_or(0);
        let now = unix_now() + lock(&self.state).offset_secs;
        let known = lock(&self.state).receives.get(&handle).cloned();
        if let Some(receive) = &known {
            let left = receive.received_at + VISIBILITY_WINDOW_SECS - now;
            if requested as f64 > left {
                lock(&self.state).refusals.push(Refusal {
                    message_id: receive.message_id.clone(),
                    requested_secs: requested,
                    left_secs: left,
                });
                tracing::warn!(
                    message_id = receive.message_id.as_str(),
                    requested,
                    left = left as i64,
                    "SQS limits proxy: visibility past the 12 h window of the receive refused"
                );
                return sqs_error(
                    "InvalidParameterValue",
                    &format!("Value {requested} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]."),
                );
            }
        }
        let answer = self.forward(call, None).await;
        if answer.status == 200 {
            if let Some(r) = lock(&self.state).receives.get_mut(&handle) {
                r.visible_at = Some(now + requested as f64);
            }
        }
        answer
    }

    /// A send to a FIFO queue passes the deduplication window first ([`crate::fifo_dedup`]).
    async fn send_fifo(&self, call: &Call, request: &Value) -> Answer {
        let now = unix_now() + lock(&self.state).offset_secs;
        let plan = lock(&self.state).dedup.plan(request, now);
        let moto = match &plan.forward {
            Some(body) => {
                let answer = self.forward(call, Some(Bytes::from(body.to_string()))).await;
                if answer.status != 200 {
                    return answer;
                }
                let out = json_body(&answer.body);
                lock(&self.state).dedup.record(body, &out, now);
                Some((answer, out))
            }
            None => None,
        };
        if plan.duplicates.is_empty() {
            if let Some((answer, _)) = moto {
                return answer;
            }
        }
        tracing::info!(
            dropped = plan.duplicates.len(),
            "SQS limits proxy: FIFO duplicates within 5 minutes not delivered"
        );
        let (headers, out) = match moto {
            Some((answer, out)) => (answer.headers, Some(out)),
            None => (http::HeaderMap::new(), None),
        };
        let merged = crate::fifo_dedup::merge(request, out, plan.duplicates);
        let mut headers = headers;
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-amz-json-1.0"));
        Answer { status: 200, headers, body: Bytes::from(merged.to_string()) }
    }

    async fn send(&self, call: &Call) -> Answer {
        let request = json_body(&call.body);
        let answer = if request.get("QueueUrl").and_then(Value::as_str).is_some_and(|q| q.ends_with(".fifo")) {
            self.send_fifo(call, &request).await
        } else {
            self.forward(call, None).await
        };
        if answer.status == 200 {
            let out = json_body(&answer.body);
            let now = unix_now() + lock(&self.state).offset_secs;
            let mut s = lock(&self.state);
            let ids = out.get("MessageId").into_iter().chain(
                out.get("Successful")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.get("MessageId")),
            );
            for id in ids.filter_map(Value::as_str) {
                s.first_enqueued.entry(id.to_owned()).or_insert(now);
            }
        }
        answer
    }

    async fn retention_of(&self, like: &Call, queue_url: &str) -> f64 {
        if let Some(secs) = lock(&self.state).retention.get(queue_url) {
            return *secs;
        }
        let answer = self
            .call(
                like,
                "GetQueueAttributes",
                json!({"QueueUrl": queue_url, "AttributeNames": ["MessageRetentionPeriod"]}),
            )
            .await;
        let secs = json_body(&answer.body)
            .pointer("/Attributes/MessageRetentionPeriod")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(DEFAULT_RETENTION_SECS);
        lock(&self.state).retention.insert(queue_url.to_owned(), secs);
        secs
    }

    async fn receive(&self, call: &Call) -> Answer {
        let mut answer = self.forward(call, None).await;
        if answer.status != 200 {
            return answer;
        }
        let queue_url = json_body(&call.body).get("QueueUrl").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut out = json_body(&answer.body);
        let Some(messages) = out.get_mut("Messages").and_then(Value::as_array_mut) else { return answer };
        if messages.is_empty() {
            return answer;
        }
        let retention = self.retention_of(call, &queue_url).await;
        let now = unix_now() + lock(&self.state).offset_secs;
        let mut kept = Vec::with_capacity(messages.len());
        for m in messages.drain(..) {
            let id = m.get("MessageId").and_then(Value::as_str).unwrap_or_default().to_owned();
            let handle = m.get("ReceiptHandle").and_then(Value::as_str).unwrap_or_default().to_owned();
            let sent_at = m
                .pointer("/Attributes/SentTimestamp")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<f64>().ok())
                .map(|ms| ms / 1000.0);
            let first = lock(&self.state).first_enqueued.get(&id).copied().or(sent_at).unwrap_or(now);
            if now - first >= retention {
                // Expired: SQS would have deleted it; so does the proxy, and nobody receives it.
                self.call(call, "DeleteMessage", json!({"QueueUrl": queue_url, "ReceiptHandle": handle})).await;
                tracing::info!(
                    message_id = id.as_str(),
                    queue = queue_url.as_str(),
                    "SQS limits proxy: message past its retention deleted"
                );
                lock(&self.state).expired.push(id);
                continue;
            }
            let body = m.get("Body").and_then(Value::as_str).unwrap_or_default().to_owned();
            let mut s = lock(&self.state);
            s.first_enqueued.entry(id.clone()).or_insert(first);
            s.order.push(handle.clone());
            s.receives.insert(
                handle,
                ReceiveRecord {
                    queue_url: queue_url.clone(),
                    message_id: id,
                    body,
                    received_at: now,
                    visible_at: None,
                },
            );
            drop(s);
            kept.push(m);
        }
        *messages = kept;
        answer.body = Bytes::from(out.to_string());
        answer
    }
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// An SQS JSON-protocol error, as SQS answers it (the SDK reads the code from `__type` and from
/// `x-amzn-query-error`).
fn sqs_error(code: &str, message: &str) -> Answer {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-amz-json-1.0"));
    if let Ok(v) = http::HeaderValue::from_str(&format!("{code};Sender")) {
        headers.insert("x-amzn-query-error", v);
    }
    let body = json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message});
    Answer { status: 400, headers, body: Bytes::from(body.to_string()) }
}
