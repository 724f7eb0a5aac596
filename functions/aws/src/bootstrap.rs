//! The one cold start every function's `main` goes through, so the Lambda mains cannot drift:
//! telemetry, a current-thread runtime (a Lambda handles one invocation at a time, so worker
//! threads would only cost start-up time and memory), the typed config read once, and the state
//! built from it once per container (clients, the master key) and kept for every invocation.
//!
//! [`start`] is the bare piece for a function that reads no config (the `not-found` route);
//! [`run`] adds config and state and hands the state to the caller's serving loop (`lambda_http`'s
//! for routes); [`run_events`] is [`run`] with `lambda_runtime`'s loop, for queue and schedule
//! consumers.

use crate::Config;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::future::Future;

/// What a function's `main` returns (`lambda_runtime::Error`, which `lambda_http` re-exports).
pub type Error = lambda_runtime::Error;

/// Installs telemetry, then drives `serve` (the runtime loop) on a current-thread runtime.
pub fn start(serve: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
    crate::telemetry::init();
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(serve)
}

/// [`start`] with the config read from the environment and `build` run on it once; the state it
/// builds lives for the container's life and is handed to `serve`, the runtime loop.
pub fn run<S, B, BF, L, LF>(build: B, serve: L) -> Result<(), Error>
where
    S: 'static,
    B: FnOnce(&'static Config) -> BF,
    BF: Future<Output = anyhow::Result<S>>,
    L: FnOnce(&'static S) -> LF,
    LF: Future<Output = Result<(), Error>>,
{
    start(async move {
        let config: &'static Config = Box::leak(Box::new(Config::from_env()?));
        let state: &'static S = Box::leak(Box::new(build(config).await?));
        serve(state).await
    })
}

/// [`run`] serving `lambda_runtime` events: `handle` gets the state and each event (its payload,
/// and its context for the invocation's deadline).
pub fn run_events<S, A, R, E, B, BF, H, HF>(build: B, handle: H) -> Result<(), Error>
where
    S: 'static,
    B: FnOnce(&'static Config) -> BF,
    BF: Future<Output = anyhow::Result<S>>,
    A: DeserializeOwned,
    R: Serialize,
    E: Into<Diagnostic> + Debug,
    H: Fn(&'static S, LambdaEvent<A>) -> HF,
    HF: Future<Output = Result<R, E>>,
{
    run(build, move |state| {
        lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<A>| handle(state, event)))
    })
}
