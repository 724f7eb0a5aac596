//! Polling helpers: the only way tests wait for asynchronous outcomes (never a bare sleep).

use std::future::Future;
use std::time::{Duration, Instant};

/// A generous default for "eventually" (moto and the pollers are slow-ish on a loaded machine).
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// How often conditions are re-evaluated.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Polls `cond` until it returns true.
///
/// # Panics
/// After `timeout`, naming `what` was awaited.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for_some(timeout, what, || {
        let fut = cond();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls `probe` until it returns `Some`, and returns that value.
///
/// # Panics
/// After `timeout`, naming `what` was awaited.
pub async fn wait_for_some<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
