//! [`RawReceiver`]: an HTTPS receiver that speaks HTTP/1.1 by hand over TLS, so it can misbehave
//! in ways a well-formed server cannot: stall in the middle of its response body, close the
//! connection without answering, or stream a response far larger than anyone should read.
//!
//! Each accepted connection reads one request and then acts out the next [`Misbehave`] of its
//! script (the last one repeats). It uses the same test CA ([`puck_local::test_tls`]) as [`crate::Receiver`], so the
//! service's sender trusts it with no verification switched off.

use puck_local::test_tls::serve_tls;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// What to do once a request has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehave {
    /// A normal, complete answer with this status and a short body.
    Answer(u16),
    /// Status line, headers announcing `Content-Length: 100000` and a few bytes of body, then
    /// silence for `stall` with the connection held open.
    HangMidBody { status: u16, stall: Duration },
    /// Close the connection (TCP reset, no TLS close_notify) without writing a byte.
    Reset,
    /// A complete status line and headers, then `bytes` of body streamed as fast as the peer
    /// reads (never held in memory); stops when the peer goes away.
    HugeBody { status: u16, bytes: u64 },
}

/// One request as read off the wire.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `POST /hook HTTP/1.1`.
    pub request_line: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub received_at: Instant,
}

impl RawRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

struct Shared {
    script: Mutex<VecDeque<Misbehave>>,
    requests: Mutex<Vec<RawRequest>>,
    /// Body bytes written by `HugeBody` answers, all connections together.
    body_bytes_written: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A misbehaving HTTPS receiver on `127.0.0.1:<ephemeral port>`; dropping it stops it.
pub struct RawReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RawReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawReceiver").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawReceiver {
    /// Starts a receiver acting out `script` connection by connection (the last entry repeats).
    ///
    /// # Panics
    /// When `script` is empty or no loopback port can be bound.
    pub async fn start(script: impl IntoIterator<Item = Misbehave>) -> Self {
        let script: VecDeque<Misbehave> = script.into_iter().collect();
        assert!(!script.is_empty(), "a RawReceiver needs at least one behaviour");
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            requests: Mutex::new(Vec::new()),
            body_bytes_written: AtomicU64::new(0),
        });
        let conn_shared = shared.clone();
        let task = serve_tls(listener, move |tls| serve(tls, conn_shared.clone()));
        Self { addr, shared, task }
    }

    /// `https://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("https://{}/hook", self.addr)
    }

    /// Every request read so far, in arrival order.
    pub fn requests(&self) -> Vec<RawRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Body bytes the `HugeBody` answers managed to write before the peer stopped reading.
    pub fn body_bytes_written(&self) -> u64 {
        self.shared.body_bytes_written.load(Ordering::SeqCst)
    }
}

/// One connection: read a request, then act out the next behaviour of the script.
async fn serve(mut tls: Tls, shared: Arc<Shared>) {
    let Some(request) = read_request(&mut tls).await else { return };
    lock(&shared.requests).push(request);
    let behaviour = {
        let mut script = lock(&shared.script);
        if script.len() > 1 {
            script.pop_front().unwrap_or(Misbehave::Reset)
        } else {
            script.front().cloned().unwrap_or(Misbehave::Reset)
        }
    };
    act(tls, behaviour, &shared).await;
}

type Tls = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

async fn act(mut tls: Tls, behaviour: Misbehave, shared: &Shared) {
    match behaviour {
        Misbehave::Answer(status) => {
            let body = format!("status {status}");
            let head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = tls.write_all(head.as_bytes()).await;
            let _ = tls.write_all(body.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
        Misbehave::HangMidBody { status, stall } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\npartial body"
            );
            let _ = tls.write_all(head.as_bytes()).await;
            let _ = tls.flush().await;
            tokio::time::sleep(stall).await;
        }
        Misbehave::Reset => {
            let (tcp, _) = tls.into_inner();
            // SO_LINGER 0: close() sends RST instead of FIN (and never blocks).
            let _ = tcp.set_zero_linger();
            drop(tcp);
        }
        Misbehave::HugeBody { status, bytes } => {
            let head = format!("HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {bytes}\r\n\r\n");
            if tls.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
                if tls.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                shared.body_bytes_written.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
            let _ = tls.shutdown().await;
        }
    }
}

/// Reads one HTTP/1.1 request (headers, then `Content-Length` bytes of body).
async fn read_request(tls: &mut Tls) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = tls.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = tls.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(RawRequest { request_line, headers, body, received_at: Instant::now() })
}
