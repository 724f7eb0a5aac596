//! The outbound HTTPS sender: one pooled reqwest client per container.
//!
//! Why each setting: HTTPS only and no redirects (a receiver must not bounce a signed payload
//! elsewhere; a 3xx is just a failed attempt); a whole-request timeout so a slow receiver cannot
//! hold the dispatcher; a capped body read so a huge response cannot exhaust memory; and the SSRF
//! guard on the *resolved* address (DESIGN §6), done in a custom DNS resolver because a host name
//! that looked public at subscription time may resolve to 10.0.0.1 today. IP-literal hosts never
//! reach the resolver, so `send` checks those itself.

use async_trait::async_trait;
use puck_core::ports::{OutboundRequest, SendOutcome, WebhookSender};
use puck_core::validation::is_forbidden_ip;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most response body kept per attempt (DESIGN §4: first 4 KiB).
pub const MAX_RESPONSE_BODY: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const USER_AGENT: &str = concat!("puck-webhooks/", env!("CARGO_PKG_VERSION"));
const BLOCKED: &str = "blocked: resolves to a private address";

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

/// [`WebhookSender`] on reqwest + rustls.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    timeout: Duration,
    allow_private_targets: bool,
}

/// Why the sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderBuildError {
    #[error("EXTRA_CA_CERT is not a valid PEM certificate: {0}")]
    InvalidCa(reqwest::Error),
    #[error("HTTP client could not be built: {0}")]
    Client(reqwest::Error),
}

impl HttpSender {
    pub fn new(options: SenderOptions) -> Result<Self, SenderBuildError> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(options.timeout))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8)
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(GuardedResolver { allow_private: options.allow_private_targets }));
        if let Some(pem) = &options.extra_ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(SenderBuildError::InvalidCa)?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().map_err(SenderBuildError::Client)?;
        Ok(Self { client, timeout: options.timeout, allow_private_targets: options.allow_private_targets })
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
        let started = Instant::now();
        let mut outcome = SendOutcome::default();
        if let Err(reason) = check_target(&request.url, self.allow_private_targets) {
            outcome.error = Some(reason);
            return outcome;
        }
        let mut builder = self.client.post(&request.url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        match builder.send().await {
            Ok(mut response) => {
                outcome.status = Some(response.status().as_u16());
                outcome.headers = response
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect();
                let mut body = Vec::new();
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            if push_capped(&mut body, &chunk, MAX_RESPONSE_BODY) {
                                break;
                            }
                        }
                        Ok(None) => break,
                        // The status already decided the attempt; keep what was read, and say
                        // in the attempt log why the body stops short (a receiver that stalls
                        // mid-body is cut off by the whole-request timeout).
                        Err(e) => {
                            let reason = describe(&e, self.timeout);
                            tracing::debug!(error = %reason, "response body read failed");
                            outcome.error = Some(format!("response body incomplete: {reason}"));
                            break;
                        }
                    }
                }
                outcome.body = String::from_utf8_lossy(&body).into_owned();
            }
            Err(e) => outcome.error = Some(describe(&e, self.timeout)),
        }
        outcome.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome
    }
}

/// A reqwest failure as a short human string for the delivery log.
fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("timeout after {}s", timeout.as_secs());
    }
    if err.is_builder() {
        return "invalid request (bad url or header)".into();
    }
    let mut innermost = err.to_string();
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = source {
        if let Some(g) = e.downcast_ref::<GuardError>() {
            return g.to_string();
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return format!("tls error: {tls}");
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::TimedOut => return format!("timeout after {}s", timeout.as_secs()),
                _ => {}
            }
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return format!("tls error: {tls}");
        }
        innermost = e.to_string();
        source = e.source();
    }
    if innermost == BLOCKED {
        return innermost;
    }
    if err.is_connect() {
        format!("connection failed: {innermost}")
    } else {
        format!("request failed: {innermost}")
    }
}

/// Errors of the guarded resolver, recognised again in [`describe`].
#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error("{BLOCKED}")]
    Blocked,
    #[error("dns error: {0} could not be resolved")]
    Unresolved(String),
}

/// Resolves with the system resolver and drops forbidden addresses.
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

/// Keeps the addresses that may be contacted.
fn allowed_addrs(addrs: Vec<SocketAddr>, allow_private: bool) -> Vec<SocketAddr> {
    addrs.into_iter().filter(|a| allow_private || !is_forbidden_ip(a.ip())).collect()
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let lookup = tokio::net::lookup_host((host.as_str(), 0)).await.map(Iterator::collect::<Vec<_>>);
            let resolved: Vec<SocketAddr> = match lookup {
                Ok(addrs) => addrs,
                Err(_) => return Err(Box::new(GuardError::Unresolved(host)) as Box<dyn StdError + Send + Sync>),
            };
            if resolved.is_empty() {
                return Err(Box::new(GuardError::Unresolved(host)) as Box<dyn StdError + Send + Sync>);
            }
            let kept = allowed_addrs(resolved, allow_private);
            if kept.is_empty() {
                tracing::warn!(host = %host, "outbound request blocked: host resolves only to forbidden addresses");
                return Err(Box::new(GuardError::Blocked) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            .send(&OutboundRequest { url: "https://localhost:1/hook".into(), headers: vec![], body: "{}".into() })
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
            .send(&OutboundRequest { url: "https://127.0.0.1:1/hook".into(), headers: vec![], body: "{}".into() })
            .await;
        assert_eq!(out.error.as_deref(), Some("connection refused"));
    }
}
