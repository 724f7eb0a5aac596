//! Test-only fault switches (feature `fault-injection`, never enabled in deployed builds).
//!
//! The end-to-end tests flip these to prove that a DynamoDB or SQS outage loses nothing: the
//! adapters built by [`crate::build_context_with_faults`] consult them before every call.

use std::sync::atomic::{AtomicBool, Ordering};

/// Switches shared (via `Arc`) between a test and the adapters it built.
#[derive(Debug, Default)]
pub struct FaultSwitches {
    /// Every DynamoDB adapter call fails with `StoreError::Unavailable("injected fault")`.
    pub fail_dynamo: AtomicBool,
    /// `DeliveryQueue::enqueue` fails with `QueueError("injected fault")`.
    pub fail_sqs_send: AtomicBool,
}

impl FaultSwitches {
    pub(crate) fn dynamo_fails(&self) -> bool {
        self.fail_dynamo.load(Ordering::SeqCst)
    }

    pub(crate) fn sqs_send_fails(&self) -> bool {
        self.fail_sqs_send.load(Ordering::SeqCst)
    }
}
