//! The sender's connector: resolve, refuse forbidden addresses, connect, TLS, head filter.
//!
//! The SSRF guard checks the *resolved* address, because a host name that looked public when the
//! subscription was written may resolve to 10.0.0.1 today; and it checks the address actually
//! connected to, because no proxy is ever used (`HTTPS_PROXY`, `ALL_PROXY` and the like are not
//! read, so the guard can never end up checking only a proxy).

use super::head::Filtered;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use puck_core::validation::is_forbidden_ip;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The guard's refusal, recognised again when describing a failure.
pub const BLOCKED: &str = "blocked: resolves to a private address";

/// Why a connection could not be made; each reads well in the delivery log.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{BLOCKED}")]
    Blocked,
    /// The URL's host is itself an IP address in a forbidden range (no lookup was made).
    #[error("blocked: private address")]
    PrivateHost,
    #[error("blocked: url must use https")]
    NotHttps,
    #[error("invalid url: no host")]
    NoHost,
    #[error("dns error: {0} could not be resolved")]
    Unresolved(String),
    #[error("connect timeout after {0}s")]
    Timeout(u64),
    #[error("connection refused")]
    Refused,
    #[error("connection reset")]
    Reset,
    #[error("connection failed: {0}")]
    Io(std::io::Error),
    #[error("tls error: {0}")]
    Tls(String),
}

impl ConnectError {
    fn from_io(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Self::Refused,
            std::io::ErrorKind::ConnectionReset => Self::Reset,
            _ => Self::Io(e),
        }
    }
}

/// One TLS connection with its response heads filtered.
pub type Conn = TokioIo<Filtered<TlsStream<TcpStream>>>;

/// A connection as the pool sees it.
impl Connection for Filtered<TlsStream<TcpStream>> {
    fn connected(&self) -> Connected {
        self.get_ref().get_ref().0.connected()
    }
}

/// Connects to `https://` URIs only, through the guard, within a connect timeout.
#[derive(Clone)]
pub struct GuardedConnector {
    tls: tokio_rustls::TlsConnector,
    allow_private: bool,
    timeout: Duration,
}

impl GuardedConnector {
    pub fn new(tls: Arc<rustls::ClientConfig>, allow_private: bool, timeout: Duration) -> Self {
        Self { tls: tokio_rustls::TlsConnector::from(tls), allow_private, timeout }
    }

    async fn connect(self, uri: http::Uri) -> Result<Conn, ConnectError> {
        if uri.scheme_str() != Some("https") {
            return Err(ConnectError::NotHttps);
        }
        let host = uri.host().ok_or(ConnectError::NoHost)?.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let attempt = async {
            let addrs = resolve(&host, port, self.allow_private).await?;
            let tcp = connect_first(&addrs).await?;
            let _ = tcp.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| ConnectError::Unresolved(host.clone()))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| match e.get_ref() {
                Some(inner) => ConnectError::Tls(inner.to_string()),
                None => ConnectError::from_io(e),
            })?;
            Ok(TokioIo::new(Filtered::new(tls)))
        };
        tokio::time::timeout(self.timeout, attempt).await.map_err(|_| ConnectError::Timeout(self.timeout.as_secs()))?
    }
}

impl tower_service::Service<http::Uri> for GuardedConnector {
    type Response = Conn;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// The addresses of `host` that may be contacted; an IP literal is checked as is (a stored URL
/// may name one the API refuses today: written under the local stack's switch, or before a range
/// was added).
pub(super) async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, ConnectError> {
    let resolved: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) if !allow_private && is_forbidden_ip(ip) => {
            tracing::warn!(host = %host, "outbound request blocked: host is a forbidden address");
            return Err(ConnectError::PrivateHost);
        }
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| ConnectError::Unresolved(host.to_owned()))?
            .collect(),
    };
    if resolved.is_empty() {
        return Err(ConnectError::Unresolved(host.to_owned()));
    }
    let kept = allowed_addrs(resolved, allow_private);
    if kept.is_empty() {
        tracing::warn!(host = %host, "outbound request blocked: host resolves only to forbidden addresses");
        return Err(ConnectError::Blocked);
    }
    Ok(kept)
}

/// Keeps the addresses that may be contacted.
pub fn allowed_addrs(addrs: Vec<SocketAddr>, allow_private: bool) -> Vec<SocketAddr> {
    addrs.into_iter().filter(|a| allow_private || !is_forbidden_ip(a.ip())).collect()
}

/// The first address that accepts, in resolver order; the last failure otherwise.
async fn connect_first(addrs: &[SocketAddr]) -> Result<TcpStream, ConnectError> {
    let mut last = ConnectError::Unresolved(String::new());
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = ConnectError::from_io(e),
        }
    }
    Err(last)
}

/// The client TLS configuration: webpki roots plus the dev-only extra CA, HTTP/1.1 only (the head
/// filter speaks HTTP/1).
pub fn tls_config(extra_ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = extra_ca_pem {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("no certificate found".into());
        }
        for cert in certs {
            roots.add(cert).map_err(|e| e.to_string())?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
