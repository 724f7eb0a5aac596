//! Which function the current task is running, so an SDK interceptor can tell whose AWS call it
//! sees.
//!
//! In AWS every function has its own container, clients and IAM role; locally all of them share
//! one [`puck_core::services::Context`]. The gateway, the queue pollers and the schedules run each
//! invocation inside [`as_function`], naming the template's logical id, and the stack builds its
//! context inside [`as_function`]`(`[`COLD_START`]`, …)`, the calls every function makes when its
//! container starts (the master key). The IAM check (e2e test
//! `iam::every_aws_call_is_granted_to_the_function_that_makes_it`) reads [`current_function`]
//! from its recording interceptor.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static FUNCTION: Arc<str>;
}

/// The pseudo-function of the calls made while building the shared context: in AWS, every
/// function that builds one makes them at its cold start.
pub const COLD_START: &str = "<cold start>";

/// Runs `fut` as an invocation of `function` (a template logical id, or [`COLD_START`]).
pub async fn as_function<F: Future>(function: &str, fut: F) -> F::Output {
    FUNCTION.scope(Arc::from(function), fut).await
}

/// The function whose invocation the current task is running, if any (setup and the tests' own
/// calls run outside every invocation).
pub fn current_function() -> Option<Arc<str>> {
    FUNCTION.try_with(Arc::clone).ok()
}
