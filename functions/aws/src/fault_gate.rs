//! The hook through which test-only fault switches reach the adapters.
//!
//! Without the `fault-injection` feature this is an empty struct whose checks always pass, so no
//! fault code exists in deployed builds.

use puck_core::ports::{QueueError, StoreResult};
#[cfg(feature = "fault-injection")]
use {puck_core::ports::StoreError, std::sync::Arc};

#[derive(Debug, Clone, Default)]
pub(crate) struct FaultGate {
    #[cfg(feature = "fault-injection")]
    switches: Option<Arc<crate::faults::FaultSwitches>>,
}

impl FaultGate {
    #[cfg(feature = "fault-injection")]
    pub(crate) fn new(switches: Arc<crate::faults::FaultSwitches>) -> Self {
        Self { switches: Some(switches) }
    }

    /// The DynamoDB client's HTTP client, with injected throttling when fault switches are set.
    pub(crate) fn dynamo_http_client(
        &self,
        inner: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
    ) -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
        #[cfg(feature = "fault-injection")]
        if let (Some(switches), Some(inner)) = (&self.switches, &inner) {
            return Some(crate::faults::throttling_http_client(inner.clone(), switches.clone()));
        }
        inner
    }

    /// Err when DynamoDB faults are injected.
    pub(crate) fn dynamo(&self) -> StoreResult<()> {
        #[cfg(feature = "fault-injection")]
        if self.switches.as_ref().is_some_and(|s| s.dynamo_fails()) {
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        Ok(())
    }

    /// Err once per pending `fail_record_after_send` (the dispatcher "dies" before recording).
    pub(crate) fn record_attempt(&self) -> StoreResult<()> {
        #[cfg(feature = "fault-injection")]
        if self.switches.as_ref().is_some_and(|s| s.take_record_failure()) {
            return Err(StoreError::Unavailable("injected fault: dispatcher died before recording the attempt".into()));
        }
        Ok(())
    }

    /// Err when SQS send faults are injected.
    pub(crate) fn sqs_send(&self) -> Result<(), QueueError> {
        #[cfg(feature = "fault-injection")]
        if self.switches.as_ref().is_some_and(|s| s.sqs_send_fails()) {
            return Err(QueueError("injected fault".into()));
        }
        Ok(())
    }
}
