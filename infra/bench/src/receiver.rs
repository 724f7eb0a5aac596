//! The test receiver: an HTTPS server on loopback with a certificate from the throw-away CA of
//! [`puck_local::test_tls`] (shared with the e2e receivers), so deliveries take the real TLS path
//! (the dispatcher trusts the CA through `EXTRA_CA_CERT`).
//!
//! It records when each delivery arrives (by `X-Puck-Event-Id`), which is the end point of the
//! publish → receiver latency, and can be switched to answer 500 to exercise the retry path.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use puck_local::test_tls::{serve_tls, TestCa};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

/// What the receiver saw and how it answers.
#[derive(Debug, Default)]
pub struct ReceiverState {
    /// `(event id, arrival)` of every request, in arrival order.
    pub arrivals: Mutex<Vec<(String, Instant)>>,
    /// Requests answered so far.
    pub count: AtomicU64,
    /// When set, every request is answered 500 (the retry path).
    pub fail: AtomicBool,
}

/// A running receiver.
#[derive(Debug)]
pub struct Receiver {
    /// `https://127.0.0.1:<port>/hook`.
    pub url: String,
    /// The CA to trust (`EXTRA_CA_CERT`).
    pub ca_path: PathBuf,
    /// Shared with the server task.
    pub state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Serves HTTPS (HTTP/1.1) on a free loopback port with the test CA's certificate.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}/hook", listener.local_addr()?);
        let state = Arc::new(ReceiverState::default());
        let shared = state.clone();
        let task = serve_tls(listener, move |tls| {
            let state = shared.clone();
            async move {
                let service = service_fn(move |req| answer(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            }
        });
        Ok(Self { url, ca_path: TestCa::get().pem_path().to_owned(), state, task })
    }

    /// Arrival time of the first delivery of `event_id`, if any.
    pub fn arrival_of(&self, event_id: &str) -> Option<Instant> {
        self.state.arrivals.lock().expect("arrivals lock").iter().find(|(id, _)| id == event_id).map(|(_, at)| *at)
    }

    /// Requests received so far.
    pub fn count(&self) -> u64 {
        self.state.count.load(Ordering::SeqCst)
    }
}

/// Records the arrival by `X-Puck-Event-Id` and answers 200, or 500 while `fail` is set.
async fn answer(
    state: Arc<ReceiverState>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, http::Error> {
    let event_id = req.headers().get("x-puck-event-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let _ = req.into_body().collect().await;
    let at = Instant::now();
    state.arrivals.lock().expect("arrivals lock").push((event_id, at));
    state.count.fetch_add(1, Ordering::SeqCst);
    let status = if state.fail.load(Ordering::SeqCst) { 500 } else { 200 };
    hyper::Response::builder().status(status).body(Full::new(Bytes::from_static(b"ok")))
}
