//! The test receiver: an HTTPS server on loopback with a certificate from a throw-away CA, so
//! deliveries take the real TLS path (the dispatcher trusts the CA through `EXTRA_CA_CERT`).
//!
//! It records when each delivery arrives (by `X-Puck-Event-Id`), which is the end point of the
//! publish → receiver latency, and can be switched to answer 500 to exercise the retry path.

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
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
    /// Generates a CA and a leaf for `127.0.0.1`/`localhost`, writes the CA PEM under `dir`, and
    /// serves HTTPS (HTTP/1.1) on a free loopback port.
    pub async fn start(dir: &std::path::Path) -> Result<Self> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "puck-bench CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;

        std::fs::create_dir_all(dir)?;
        let ca_path = dir.join("receiver-ca.pem");
        std::fs::write(&ca_path, ca.pem()).context("Failed to write the receiver CA")?;

        let certs = vec![leaf.der().clone(), ca.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
            .map_err(|e| anyhow::anyhow!("receiver key: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}/hook", listener.local_addr()?);
        let state = Arc::new(ReceiverState::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            let event_id = req
                                .headers()
                                .get("x-puck-event-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let _ = req.into_body().collect().await;
                            let at = Instant::now();
                            state.arrivals.lock().expect("arrivals lock").push((event_id, at));
                            state.count.fetch_add(1, Ordering::SeqCst);
                            let status = if state.fail.load(Ordering::SeqCst) { 500 } else { 200 };
                            let resp = hyper::Response::builder().status(status).body(Full::new(Bytes::from_static(b"ok")));
                            Ok::<_, http::Error>(resp.expect("static response"))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self { url, ca_path, state, task })
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
