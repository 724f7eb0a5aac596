//! The outbound HTTPS sender: one pooled hyper client per container.
//!
//! Why each setting: HTTPS only and no redirects (a receiver must not bounce a signed payload
//! elsewhere; a 3xx is just a failed attempt); a whole-request timeout so a slow receiver cannot
//! hold the dispatcher; a capped body read so a huge response cannot exhaust memory; the SSRF
//! guard on the *resolved* address and no proxy ever ([`connect`], which checks an IP-literal
//! host as is); response heads cut to size before they are parsed, so a receiver that answers 200
//! with megabytes of headers still counts as a success ([`head`]). The URL comes parsed
//! ([`TargetUrl`]: HTTPS, a host, no credentials), so nothing here parses or checks it again.
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
use puck_core::sending::Target;
use puck_core::validation::TargetUrl;
use std::error::Error as StdError;
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
        Ok(Self { client, timeout: options.timeout })
    }

    /// The request to `url` as hyper takes it (our `User-Agent` unless the request has one); None
    /// when the URL or a header cannot be sent.
    fn hyper_request(url: &TargetUrl, request: &OutboundRequest) -> Option<http::Request<Full<Bytes>>> {
        let mut builder = http::Request::post(url.as_str());
        if !request.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("user-agent")) {
            builder = builder.header(http::header::USER_AGENT, USER_AGENT);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(Full::new(Bytes::from(request.body.clone()))).ok()
    }
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
        match &request.target {
            Target::Https(url) => self.post(Self::hyper_request(url, request), MAX_RESPONSE_BODY).await,
            // The dispatcher's sender routes these to the AWS-destination sender.
            Target::Aws(_) => SendOutcome { error: Some("not an HTTPS target".into()), ..SendOutcome::default() },
        }
    }
}

impl HttpSender {
    /// The one way out (deliveries and OAuth token fetches alike): `request` (None: it could not
    /// be built) sent through the guarded connector within the timeout, and the first `body_cap`
    /// bytes of the answer read.
    async fn post(&self, request: Option<http::Request<Full<Bytes>>>, body_cap: usize) -> SendOutcome {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut outcome = SendOutcome::default();
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

    fn sender(allow_private_targets: bool) -> HttpSender {
        HttpSender::new(SenderOptions { timeout: Duration::from_secs(2), allow_private_targets, extra_ca_pem: None })
            .unwrap()
    }

    /// A request to `url`, parsed as a stored one is read back (any host): the guard at send time
    /// is what is tested.
    fn to(url: &str) -> OutboundRequest {
        let target = Target::Https(TargetUrl::parse_with(url, true).unwrap());
        OutboundRequest { target, headers: vec![], body: "{}".into() }
    }

    #[tokio::test]
    async fn literal_hosts_in_forbidden_ranges_are_blocked_without_a_lookup() {
        let guarded = sender(false);
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.5:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:192.168.1.1]/",
            "https://2130706433/",
        ] {
            let out = guarded.send(&to(url)).await;
            assert_eq!((out.status, out.error.as_deref()), (None, Some("blocked: private address")), "{url}");
        }
    }

    #[tokio::test]
    async fn the_https_sender_sends_nothing_to_an_aws_target() {
        let raw = serde_json::json!({"type": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "role_arn": "arn:aws:iam::111122223333:role/r"});
        let route = puck_core::sending::AwsRoute {
            destination: puck_core::destination::AwsDestination::parse(&raw).unwrap(),
            external_id: "a".into(),
            message_group_id: "s".into(),
            deduplication_id: "e".into(),
            detail_type: "t".into(),
        };
        let request = OutboundRequest { target: Target::Aws(Box::new(route)), headers: vec![], body: "{}".into() };
        let out = sender(false).send(&request).await;
        assert_eq!((out.status, out.error.as_deref()), (None, Some("not an HTTPS target")));
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
        let out = sender(false).send(&to("https://localhost:1/hook")).await;
        assert_eq!(out.status, None);
        assert_eq!(out.error.as_deref(), Some(BLOCKED));
    }

    #[tokio::test]
    async fn refused_connection_is_reported() {
        let out = sender(true).send(&to("https://127.0.0.1:1/hook")).await;
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
