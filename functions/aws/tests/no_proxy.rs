//! The sender never goes through a proxy named in the environment: with a proxy, the SSRF guard
//! would check only the proxy's address and the proxy would reach whatever the URL names. A test
//! binary of its own, because it sets process-wide environment variables.

use puck_aws::{HttpSender, SenderOptions};
use puck_core::ports::{OutboundRequest, WebhookSender};
use puck_core::sending::Target;
use puck_core::validation::TargetUrl;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn proxy_variables_are_ignored() {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let contacted = Arc::new(AtomicUsize::new(0));
    let seen = contacted.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = proxy.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    for name in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"] {
        std::env::set_var(name, &proxy_url);
    }
    for allow_private_targets in [false, true] {
        let sender = HttpSender::new(SenderOptions {
            timeout: Duration::from_secs(2),
            allow_private_targets,
            extra_ca_pem: None,
        })
        .unwrap();
        let out = sender
            .send(&OutboundRequest {
                target: Target::Https(TargetUrl::parse_with("https://127.0.0.1:1/hook", true).unwrap()),
                headers: vec![],
                body: "{}".into(),
            })
            .await;
        let want = if allow_private_targets { "connection refused" } else { "blocked: private address" };
        assert_eq!(out.error.as_deref(), Some(want));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(contacted.load(Ordering::SeqCst), 0, "the proxy was contacted");
}
