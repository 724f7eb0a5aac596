//! Tracing setup shared by every function.
//!
//! In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) logs are one JSON object per line so CloudWatch
//! Logs Insights can query the structured fields (`delivery_id`, `account_id`, …); elsewhere they
//! are compact text for humans. The level comes from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (the local stack runs many
/// functions in one process): later calls are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let result = if in_lambda {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .with_env_filter(filter)
            .try_init()
    } else {
        tracing_subscriber::fmt().compact().with_env_filter(filter).try_init()
    };
    // An error only means a subscriber is already installed.
    let _ = result;
}
