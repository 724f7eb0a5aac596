//! Tracing setup shared by every function.
//!
//! In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) logs are one JSON object per line so CloudWatch
//! Logs Insights can query the structured fields (`delivery_id`, `account_id`, …); elsewhere they
//! are compact text for humans. The level comes from `RUST_LOG` (default `info`), except for the
//! Lambda runtime crates, held at `info` whatever `RUST_LOG` says: at `trace` they log every raw
//! invocation event, and an API Gateway event carries the caller's `Authorization` header.

use tracing_subscriber::filter::Directive;
use tracing_subscriber::EnvFilter;

/// Crates whose level `RUST_LOG` cannot raise above `info` (module paths under them included).
const PINNED: [&str; 2] = ["lambda_runtime", "lambda_http"];

/// The filter for a `RUST_LOG` value (None or invalid: `info`): its directives for the [`PINNED`]
/// crates or their modules are dropped, and those crates held at `info`.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let kept: Vec<&str> = rust_log
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !PINNED.iter().any(|c| d.starts_with(c)))
        .collect();
    let base = EnvFilter::try_new(kept.join(",")).unwrap_or_else(|_| EnvFilter::new("info"));
    let base = if kept.is_empty() { EnvFilter::new("info") } else { base };
    PINNED
        .iter()
        .fold(base, |f, c| f.add_directive(format!("{c}=info").parse::<Directive>().expect("a valid directive")))
}

/// Installs the global subscriber. Safe to call more than once (the local stack runs many
/// functions in one process): later calls are no-ops.
pub fn init() {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged_at(rust_log: &str) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter(Some(rust_log)))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "Bearer pck_secret", "raw JSON event");
            tracing::debug!(target: "lambda_http", "request event");
            tracing::info!(target: "lambda_runtime", "runtime started");
            tracing::trace!(target: "puck_aws::sender", "our own trace");
        });
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn rust_log_trace_never_reaches_the_runtime_raw_event_log() {
        for rust_log in ["trace", "lambda_runtime=trace,lambda_http=trace,trace", "lambda_runtime::layers=trace"] {
            let text = logged_at(rust_log);
            assert!(!text.contains("pck_secret") && !text.contains("request event"), "{rust_log}: {text}");
            assert!(text.contains("runtime started"), "{rust_log}: {text}");
        }
        assert!(logged_at("trace").contains("our own trace"));
    }
}
