//! A real HTTPS webhook receiver on loopback that records every request and answers by script.
//!
//! TLS is [`puck_local::test_tls`]: a certificate for `localhost` and `127.0.0.1` from a test CA
//! generated once per test binary ([`test_ca_pem_path`]); [`crate::TestStack`] passes that PEM as
//! `EXTRA_CA_CERT`, so the service's HTTPS sender trusts the receiver exactly as it would a
//! public one, with no verification switched off.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use puck_local::test_tls::{serve_tls, TestCa};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    /// Path and query, e.g. `/hook`.
    pub path: String,
    pub headers: HeaderMap,
    /// The raw body bytes, exactly as sent (what signatures are computed over).
    pub body: Bytes,
    pub received_at: Instant,
}

impl ReceivedRequest {
    /// A header as text (first value), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// When the body is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("receiver got a non-JSON body ({e}): {:?}", self.body))
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One answer: status, extra headers, body, and how long to wait before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering (longer than `DELIVERY_TIMEOUT_SECONDS` → a timeout).
    pub delay: Duration,
}

impl Reply {
    /// An answer with this status, no extra headers, a short body, no delay.
    pub fn status(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: format!("status {status}"), delay: Duration::ZERO }
    }

    /// `200 OK`.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// Adds a response header (e.g. `Retry-After`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the response body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// Answers only after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type ReplyFn = Box<dyn FnMut(&ReceivedRequest, usize) -> Reply + Send>;

/// What the receiver answers, request after request: first the queued replies in order, then
/// the fallback for every later request (optionally replaced by a failure at a seeded random
/// rate, or computed by a function).
pub struct Script {
    queue: VecDeque<Reply>,
    fallback: Reply,
    random: Option<(f64, Reply, StdRng)>,
    custom: Option<ReplyFn>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("queue", &self.queue)
            .field("fallback", &self.fallback)
            .field("random_rate", &self.random.as_ref().map(|(rate, _, _)| *rate))
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

impl Default for Script {
    /// Always `200 OK`.
    fn default() -> Self {
        Self::always(Reply::ok())
    }
}

impl Script {
    /// The same reply to every request.
    pub fn always(reply: Reply) -> Self {
        Self { queue: VecDeque::new(), fallback: reply, random: None, custom: None }
    }

    /// The same status to every request.
    pub fn status(status: u16) -> Self {
        Self::always(Reply::status(status))
    }

    /// `500` for the first `n` requests, then `200`.
    pub fn fail_times(n: usize) -> Self {
        Self::sequence(std::iter::repeat_n(Reply::status(500), n))
    }

    /// These replies in order, then `200` (change with [`Script::then`]).
    pub fn sequence(replies: impl IntoIterator<Item = Reply>) -> Self {
        Self { queue: replies.into_iter().collect(), ..Self::default() }
    }

    /// The reply once the queued ones are used up.
    pub fn then(mut self, reply: Reply) -> Self {
        self.fallback = reply;
        self
    }

    /// After the queued replies: `500` with probability `rate`, else the fallback, drawn from an
    /// RNG seeded with `seed` (the same seed gives the same sequence of answers).
    pub fn random_failures(rate: f64, seed: u64) -> Self {
        Self::default().with_random_failures(rate, Reply::status(500), seed)
    }

    /// Adds random failures (`failure` with probability `rate`) to this script's fallback.
    pub fn with_random_failures(mut self, rate: f64, failure: Reply, seed: u64) -> Self {
        self.random = Some((rate, failure, StdRng::seed_from_u64(seed)));
        self
    }

    /// Computes each reply from the request and its 0-based index among all requests received.
    pub fn from_fn(f: impl FnMut(&ReceivedRequest, usize) -> Reply + Send + 'static) -> Self {
        Self { custom: Some(Box::new(f)), ..Self::default() }
    }

    fn next(&mut self, request: &ReceivedRequest, index: usize) -> Reply {
        if let Some(f) = &mut self.custom {
            return f(request, index);
        }
        if let Some(reply) = self.queue.pop_front() {
            return reply;
        }
        if let Some((rate, failure, rng)) = &mut self.random {
            if rng.gen_bool(rate.clamp(0.0, 1.0)) {
                return failure.clone();
            }
        }
        self.fallback.clone()
    }
}

struct Shared {
    requests: Mutex<Vec<ReceivedRequest>>,
    script: Mutex<Script>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An HTTPS receiver on `127.0.0.1:<ephemeral port>`. Dropping it stops the server.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// A receiver answering `200 OK` to everything.
    pub async fn start() -> Self {
        Self::start_with(Script::default()).await
    }

    /// A receiver answering by `script`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start_with(script: Script) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared { requests: Mutex::new(Vec::new()), script: Mutex::new(script) });
        let conn_shared = shared.clone();
        let task = serve_tls(listener, move |tls| serve(tls, conn_shared.clone()));
        Self { addr, shared, task }
    }

    /// `https://127.0.0.1:<port>/hook`: subscribe this.
    pub fn url(&self) -> String {
        self.url_with_path("/hook")
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url_with_path(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Replaces the script from now on.
    pub fn set_script(&self, script: Script) {
        *lock(&self.shared.script) = script;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `n` requests arrived and returns all of them.
    ///
    /// # Panics
    /// After `timeout`, saying how many arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        let started = Instant::now();
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            if started.elapsed() > timeout {
                let summary: Vec<String> = requests
                    .iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, r.header("x-puck-event-type").unwrap_or("-")))
                    .collect();
                panic!(
                    "receiver {} got {} of {n} expected requests within {timeout:?}: {summary:?}",
                    self.url(),
                    requests.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn serve(tls: TlsStream<TcpStream>, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(answer(&shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
}

async fn answer(shared: &Shared, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let request = ReceivedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
        headers: parts.headers,
        body,
        received_at: Instant::now(),
    };
    let reply = {
        let mut requests = lock(&shared.requests);
        let index = requests.len();
        let reply = lock(&shared.script).next(&request, index);
        requests.push(request);
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = http::Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name), http::HeaderValue::try_from(value)) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// Path of the PEM file holding the test CA certificate (pass it as `EXTRA_CA_CERT`).
pub fn test_ca_pem_path() -> &'static Path {
    TestCa::get().pem_path()
}
