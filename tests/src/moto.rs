//! One moto server per test binary, shared by every test.
//!
//! `#[tokio::test]` gives each test its own runtime, which is dropped when the test ends; a moto
//! child owned by one of those runtimes would die (or become unreapable) with it. So moto is
//! started on a dedicated thread with its own runtime that lives as long as the process. The
//! [`puck_local::Moto`] wrapper exits by itself when the test process goes away, so nothing is
//! left behind even though this `static` is never dropped.

use std::sync::OnceLock;
use std::time::Duration;

/// The endpoint of the shared moto, or why it could not be started (kept so that every test
/// reports the same cause instead of each retrying a 90 s startup).
static MOTO: OnceLock<Result<String, String>> = OnceLock::new();

/// `http://127.0.0.1:<port>` of the binary's moto, starting it on first call (blocking the
/// caller for the few seconds a cold start takes; every other caller waits for that start).
///
/// # Panics
/// When moto cannot be started (e.g. no `python3` to build the project virtualenv).
pub fn endpoint() -> String {
    let started = MOTO.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name("moto".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(format!("could not build the moto runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                match puck_local::Moto::start().await {
                    Ok(moto) => {
                        let _ = tx.send(Ok(moto.endpoint.clone()));
                        // Keep the child (and the runtime that reaps it) alive for the whole
                        // process.
                        std::future::pending::<()>().await;
                        drop(moto);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:#}")));
                    }
                }
            });
        });
        if let Err(e) = spawned {
            return Err(format!("could not spawn the moto thread: {e}"));
        }
        rx.recv_timeout(Duration::from_secs(300)).unwrap_or_else(|e| Err(format!("moto thread gave no answer: {e}")))
    });
    match started {
        Ok(endpoint) => endpoint.clone(),
        Err(e) => panic!("the shared moto server could not be started: {e}"),
    }
}
