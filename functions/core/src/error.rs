//! The one error type every use case returns. `puck-http` maps it to a status and a JSON body in
//! one place (`Unavailable` is the 503 a client may retry). Workers need no retry decision: they
//! keep the SQS message of any job that failed, whatever the kind, so SQS retries it and, after
//! `maxReceiveCount` receives, redrives it to the DLQ, where the delivery becomes
//! `failed_permanent`; dropping a message on a "permanent" error would leave its delivery pending.
//!
//! Bad input is a [`ValidationError`]: the field it is about and a message that names it, so the
//! HTTP answer can say what to fix and logs can count failures per field.
//!
//! A leaf of the crate: it imports no other module, so the ports, the model and validation can all
//! use it without an import circle.

use std::sync::Arc;

/// A field failed validation. The message is what the caller reads and names the field
/// (`url must use https`); `field` is the same name, as data (`url`, `filters.tags`, a header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// The field as data: `url`, `filters.tags`, a header name; clients and metrics key on it.
    pub field: String,
    /// The sentence returned to the caller; it names the field.
    pub message: String,
}

impl ValidationError {
    /// A validation failure of `field`; the HTTP answer is a 400 `validation_error`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A storage failure. `Unavailable` is transient (throttling, network, 5xx); `Corrupt` means a
/// record could not be read back and needs a human.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Transient: throttling, network or a 5xx; the caller may retry (surfaces as HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// A stored record did not decode; retrying will not help (surfaces as HTTP 500).
    #[error("{0}")]
    Corrupt(String),
}

/// What every store port returns.
pub type StoreResult<T> = Result<T, StoreError>;

/// Every use-case failure; `puck-http` maps each variant to one HTTP status (noted per variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// A field failed validation; the message names it.
    #[error("{0}")]
    Validation(ValidationError),
    /// The body is not JSON (or not a JSON object).
    #[error("{0}")]
    MalformedJson(String),
    /// No, unknown or revoked API key (or a bad inbound signature): HTTP 401 `unauthorized`.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the key lacks the scope the route needs.
    #[error("API key lacks the {0} scope")]
    Forbidden(&'static str),
    /// Unknown id, or an id of another account: the two are indistinguishable by design.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the object's current state: HTTP 409 `conflict`. Either it
    /// changed since the request read it (another write won the race: read it again and retry),
    /// or it is in a state the action does not apply to (a delivery still in flight replayed).
    #[error("{0}")]
    Conflict(String),
    /// The body exceeds the route's limit, in bytes: HTTP 413 `payload_too_large`.
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// A dependency (DynamoDB, SQS, Secrets Manager) failed; safe to retry.
    #[error("service temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt state; details are logged, never returned.
    #[error(transparent)]
    Internal(InternalError),
    /// Over an account's rate (publish, test events): HTTP 429 `rate_limited` with `Retry-After`.
    /// Nothing of the refused request was done.
    #[error("{message}")]
    RateLimited {
        /// What limit, in a sentence.
        message: String,
        /// Seconds until the window that refused it ends (the `Retry-After` header).
        retry_after_secs: u32,
    },
    /// Over an account's count limit (subscriptions): HTTP 400 `limit_exceeded`.
    #[error("{0}")]
    LimitExceeded(String),
}

/// A bug or corrupt state: what was being done, and the error underneath when there is one, kept
/// as the source so the log shows the whole chain ([`error_chain`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("internal error: {context}")]
pub struct InternalError {
    /// What failed, in words (`stored secret of sub_…`); logged, never returned to a caller.
    pub context: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for InternalError {
    /// Two internal errors are the same failure when they say the same; sources are for the log.
    fn eq(&self, other: &Self) -> bool {
        self.context == other.context
    }
}

impl Eq for InternalError {}

/// An error and every source under it, `outer: inner: innermost`: what a log line of it holds.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text
}

impl AppError {
    /// An internal error while doing `context`, caused by `source`.
    pub fn internal(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(InternalError { context: context.into(), source: Some(Arc::new(source)) })
    }

    /// An internal error with nothing underneath: a state the code should never reach.
    pub fn bug(context: impl Into<String>) -> Self {
        Self::Internal(InternalError { context: context.into(), source: None })
    }

    /// A [`ValidationError`] about `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(ValidationError::new(field, message))
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        Self::Validation(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            corrupt @ StoreError::Corrupt(_) => Self::internal("a stored record could not be read", corrupt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_source_for_the_log_chain() {
        let corrupt = AppError::from(StoreError::Corrupt("delivery dlv_1: missing status".into()));
        assert_eq!(
            error_chain(&corrupt),
            "internal error: a stored record could not be read: delivery dlv_1: missing status"
        );
        let bug = AppError::bug("no outbound sender in this context");
        assert_eq!(error_chain(&bug), "internal error: no outbound sender in this context");
    }

    #[test]
    fn internal_errors_compare_by_what_failed() {
        let a = AppError::internal("stored secret", StoreError::Corrupt("x".into()));
        let b = AppError::internal("stored secret", StoreError::Corrupt("y".into()));
        assert_eq!(a, b);
        assert_ne!(a, AppError::bug("stored headers"));
    }
}
