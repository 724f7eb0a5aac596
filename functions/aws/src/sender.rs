//! The outbound HTTPS sender: one pooled hyper client per container.
//!
//! Why each setting: HTTPS only and no redirects (a receiver must not bounce a signed payload
//! elsewhere; a 3xx is just a failed attempt); a whole-request timeout so a slow receiver cannot
//! hold the dispatcher; a capped body read so a huge response cannot exhaust memory; the SSRF
//! guard on the *resolved* address and no proxy ever ([`connect`]); response heads cut to size
//! before they are parsed, so a receiver that answers 200 with megabytes of headers still counts
//! as a success ([`head`]). IP-literal hosts are checked by `send` before anything else.
//!
//! Failures are described in the delivery log without the URL: chat webhook URLs carry their token
//! in the path, and the log is shown to anyone who can read deliveries.

mod connect;
mod head;
mod token;

use async_trait::async_trait;
use bytes::Bytes;
use connect::{ConnectError, GuardedConnector, BLOCKED};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use puck_core::ports::{OutboundRequest, SendOutcome, WebhookSender};
use puck_core::validation::is_forbidden_ip;
use std::error::Error as StdError;
use std::net::IpAddr;
use std::time::Duration;
use tokio::time::Instant;

pub use connect::allowed_addrs;
pub use head::OMITTED_HEADER;

/// The most response body kept per attempt: core's rule of what an attempt stores.
pub use puck_core::ports::MAX_RESPONSE_BODY_BYTES as MAX_RESPONSE_BODY;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const USER_AGENT: &str = concat!("puck-webhooks/", env!("CARGO_PKG_VERSION"));

/// How the sender is built (from [`crate::Config`] via [`crate::build_sender`]).
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// Whole-request timeout (`DELIVERY_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// Dev-only `ALLOW_PRIVATE_TARGETS`: disables the SSRF guard.
    pub allow_private_targets: bool,
    /// Dev-only extra trusted CA (`EXTRA_CA_CERT`), PEM bytes.
    pub extra_ca_pem: Option<Vec<u8>>,
}

/// [`WebhookSender`] on hyper + rustls.
#[derive(Clone)]
pub struct HttpSender {
    client: Client<GuardedConnector, Full<Bytes>>,
    timeout: Duration,
    allow_private_targets: bool,
}

impl std::fmt::Debug for HttpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSender").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Why the sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderBuildError {
    #[error("EXTRA_CA_CERT is not a valid PEM certificate: {0}")]
    InvalidCa(String),
}

impl HttpSender {
    pub fn new(options: SenderOptions) -> Result<Self, SenderBuildError> {
        let tls = connect::tls_config(options.extra_ca_pem.as_deref()).map_err(SenderBuildError::InvalidCa)?;
        let connector = GuardedConnector::new(tls, options.allow_private_targets, CONNECT_TIMEOUT.min(options.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8)
            .build(connector);
        Ok(Self { client, timeout: options.timeout, allow_private_targets: options.allow_private_targets })
    }

    /// The request as hyper takes it (our `User-Agent` unless the request has one); None when the
    /// URL or a header cannot be sent.
    fn hyper_request(request: &OutboundRequest) -> Option<http::Request<Full<Bytes>>> {
        let mut builder = http::Request::post(request.url.as_str());
        if !request.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("user-agent")) {
            builder = builder.header(http::header::USER_AGENT, USER_AGENT);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(Full::new(Bytes::from(request.body.clone()))).ok()
    }
}

/// Refuses non-HTTPS URLs and IP-literal hosts in forbidden ranges (the resolver never sees
/// those).
pub fn check_target(raw_url: &str, allow_private: bool) -> Result<(), String> {
    let url = url::Url::parse(raw_url).map_err(|_| "invalid url".to_owned())?;
    if url.scheme() != "https" {
        return Err("blocked: url must use https".into());
    }
    let ip = match url.host() {
        None => return Err("invalid url: no host".into()),
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
    };
    if !allow_private && is_forbidden_ip(ip) {
        return Err("blocked: private address".into());
    }
    Ok(())
}

/// Appends `chunk` to `buf` up to `cap` bytes; true once the cap is reached.
pub fn push_capped(buf: &mut Vec<u8>, chunk: &[u8], cap: usize) -> bool {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    buf.len() >= cap
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn send(&self, request: &OutboundRequest) -> SendOutcome {
        self.post(&request.url, Self::hyper_request(request), MAX_RESPONSE_BODY).await
    }
}

impl HttpSender {
    /// The one way out (deliveries and OAuth token fetches alike): `url` checked, then
    /// `request` (None: it could not be built) sent through the guarded connector within the
    /// timeout, and the first `body_cap` bytes of the answer read.
    async fn post(&self, url: &str, request: Option<http::Request<Full<Bytes>>>, body_cap: usize) -> SendOutcome {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut outcome = SendOutcome::default();
        if let Err(reason) = check_target(url, self.allow_private_targets) {
            outcome.error = Some(reason);
            return outcome;
        }
        let Some(hyper_request) = request else {
            outcome.error = Some("invalid request (bad url or header)".into());
            return outcome;
        };
        match tokio::time::timeout_at(deadline, self.client.request(hyper_request)).await {
            Err(_) => outcome.error = Some(self.timed_out()),
            Ok(Err(e)) => outcome.error = Some(describe(&e)),
            Ok(Ok(response)) => {
                outcome.status = Some(response.status().as_u16());
                for (name, value) in response.headers() {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    if name.as_str() == OMITTED_HEADER {
                        outcome.headers_omitted = value.parse().unwrap_or(0);
                    } else {
                        outcome.headers.push((name.as_str().to_owned(), value));
                    }
                }
                let (body, error) = self.read_body(response.into_body(), deadline, body_cap).await;
                outcome.body = body;
                outcome.error = error;
            }
        }
        outcome.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome
    }

    fn timed_out(&self) -> String {
        format!("timeout after {}s", self.timeout.as_secs())
    }

    /// The first `cap` bytes (lossy UTF-8), and why the read stopped short if it did. The status
    /// already decided the attempt; a receiver that stalls mid-body is cut off by the
    /// whole-request timeout.
    async fn read_body(
        &self,
        mut body: hyper::body::Incoming,
        deadline: Instant,
        cap: usize,
    ) -> (String, Option<String>) {
        let mut kept = Vec::new();
        let mut error = None;
        loop {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(chunk) = frame.data_ref() {
                        if push_capped(&mut kept, chunk, cap) {
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    let reason = describe(&e);
                    tracing::debug!(error = %reason, "response body read failed");
                    error = Some(format!("response body incomplete: {reason}"));
                    break;
                }
                Err(_) => {
                    error = Some(format!("response body incomplete: {}", self.timed_out()));
                    break;
                }
            }
        }
        (String::from_utf8_lossy(&kept).into_owned(), error)
    }
}

/// A client failure as a short human string for the delivery log, never with a URL in it.
fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut innermost = err.to_string();
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(c) = e.downcast_ref::<ConnectError>() {
            return strip_urls(&c.to_string());
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                return "connection closed before the response was complete".into();
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::UnexpectedEof => return "connection closed early".into(),
                _ => {}
            }
        }
        innermost = e.to_string();
        source = e.source();
    }
    if innermost == BLOCKED {
        return innermost;
    }
    strip_urls(&format!("request failed: {innermost}"))
}

/// `text` with every `scheme://…` token replaced by `<url>`: error texts of HTTP libraries name
/// the URL, and a chat webhook's URL is its credential.
pub fn strip_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ','))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        out.push_str("<url>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn literal_hosts_in_forbidden_ranges_are_blocked() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.5:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:192.168.1.1]/",
            "https://2130706433/",
        ] {
            assert_eq!(check_target(url, false), Err("blocked: private address".into()), "{url}");
            assert_eq!(check_target(url, true), Ok(()), "{url}");
        }
        assert_eq!(check_target("https://93.184.216.34/", false), Ok(()));
        assert_eq!(check_target("https://example.com/", false), Ok(()));
    }

    #[test]
    fn non_https_is_refused_even_when_private_is_allowed() {
        assert!(check_target("http://example.com/", true).unwrap_err().contains("https"));
        assert!(check_target("not a url", false).is_err());
    }

    #[test]
    fn body_cap_stops_at_the_limit() {
        let mut buf = Vec::new();
        assert!(!push_capped(&mut buf, &[1; 4000], MAX_RESPONSE_BODY));
        assert!(push_capped(&mut buf, &[2; 4000], MAX_RESPONSE_BODY));
        assert_eq!(buf.len(), MAX_RESPONSE_BODY);
        assert!(push_capped(&mut buf, &[3; 10], MAX_RESPONSE_BODY));
        assert_eq!(buf.len(), MAX_RESPONSE_BODY);
    }

    #[test]
    fn resolver_filter_drops_private_addresses() {
        let addrs: Vec<SocketAddr> =
            vec!["10.0.0.1:0".parse().unwrap(), "93.184.216.34:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        assert_eq!(allowed_addrs(addrs.clone(), false), vec!["93.184.216.34:0".parse::<SocketAddr>().unwrap()]);
        assert_eq!(allowed_addrs(addrs, true).len(), 3);
    }

    #[tokio::test]
    async fn localhost_name_is_blocked_by_the_resolver() {
        let sender = HttpSender::new(SenderOptions {
            timeout: Duration::from_secs(2),
            allow_private_targets: false,
            extra_ca_pem: None,
        })
        .unwrap();
        let out = sender
            .send(&OutboundRequest {
                url: "https://localhost:1/hook".into(),
                headers: vec![],
                body: "{}".into(),
                destination: None,
            })
            .await;
        assert_eq!(out.status, None);
        assert_eq!(out.error.as_deref(), Some(BLOCKED));
    }

    #[tokio::test]
    async fn refused_connection_is_reported() {
        let sender = HttpSender::new(SenderOptions {
            timeout: Duration::from_secs(2),
            allow_private_targets: true,
            extra_ca_pem: None,
        })
        .unwrap();
        let out = sender
            .send(&OutboundRequest {
                url: "https://127.0.0.1:1/hook".into(),
                headers: vec![],
                body: "{}".into(),
                destination: None,
            })
            .await;
        assert_eq!(out.error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn urls_never_reach_an_error_text() {
        let cases = [
            (
                "error sending request for url (https://hooks.slack.com/services/T0/B0/SECRET): connection closed",
                "error sending request for url (<url>): connection closed",
            ),
            ("https://x.example/a?token=1 failed, then http://y/z too", "<url> failed, then <url> too"),
            ("no url here", "no url here"),
        ];
        for (raw, want) in cases {
            assert_eq!(strip_urls(raw), want);
        }
    }
}
