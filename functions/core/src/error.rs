//! The one error type every use case returns. `puck-http` maps it to a status and a JSON body in
//! one place; workers use [`AppError::is_retryable`] to decide between retrying and giving up.

use crate::ports::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// A field failed validation; the message names it (`url must use https`).
    #[error("{0}")]
    Validation(String),
    /// The body is not JSON (or not a JSON object).
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the key lacks the scope the route needs.
    #[error("API key lacks the {0} scope")]
    Forbidden(&'static str),
    /// Unknown id, or an id of another account: the two are indistinguishable by design.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// A dependency (DynamoDB, SQS, Secrets Manager) failed; safe to retry.
    #[error("service temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt state; details are logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Corrupt(m) => Self::Internal(m),
        }
    }
}
