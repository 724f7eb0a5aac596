//! Test-only fault switches (feature `fault-injection`, never enabled in deployed builds).
//!
//! The end-to-end tests flip these to prove that a DynamoDB or SQS outage, or a dispatcher that
//! dies between its POST and its write, loses nothing: the adapters built by
//! [`crate::build_context_with_faults`] consult them before every call. Nothing reads them from
//! the environment: the only way to set one is to hold the `Arc` passed to that function, which
//! no Lambda `main` calls (they call [`crate::build_context`]). See RELIABILITY.md for how the
//! feature is kept out of `sam build`.
//!
//! DynamoDB throttling is injected one level lower, as DynamoDB's own HTTP answer under the SDK
//! (see [`FaultSwitches::throttle_dynamo_per_mille`]), so the SDK's retries and error codes are
//! the real ones; so is a lost answer ([`FaultSwitches::lose_dynamo_answers`]): the request
//! reaches DynamoDB and is applied, and the SDK sees a reset connection and tries again.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Switches shared (via `Arc`) between a test and the adapters it built.
#[derive(Debug, Default)]
pub struct FaultSwitches {
    /// Every DynamoDB adapter call fails with `StoreError::Unavailable("injected fault")`.
    pub fail_dynamo: AtomicBool,
    /// `DeliveryQueue::enqueue` fails with `QueueError("injected fault")`.
    pub fail_sqs_send: AtomicBool,
    /// The next N `DeliveryStore::record_attempt` calls fail (before touching DynamoDB) as if the
    /// dispatcher died after its POST but before recording it: the attempt is not recorded and
    /// the message is not deleted, so SQS brings it back after its visibility timeout.
    pub fail_record_after_send: AtomicU32,
    /// Fails exactly one DynamoDB adapter call: the Nth from now (1 = the next one), then 0
    /// again. Stepping N through 1, 2, 3… fails a request at each of its writes in turn, which
    /// is how the tests prove that no failure point leaves half-written state.
    pub fail_dynamo_call_in: AtomicU32,
    /// Share of DynamoDB requests, in thousandths, that DynamoDB answers as throttled
    /// (`ProvisionedThroughputExceededException` or `ThrottlingException`, alternately) without
    /// touching the table. Injected at the HTTP layer under the SDK, so the SDK sees DynamoDB's
    /// real 400 response and retries it with its own throttling backoff, as it would in AWS.
    pub throttle_dynamo_per_mille: AtomicU32,
    /// DynamoDB requests answered as throttled so far.
    pub dynamo_throttled: AtomicU64,
    /// DynamoDB requests whose answer is lost: DynamoDB (moto) applies them, then the connection
    /// fails before the answer arrives, as the SDK sees a reset in AWS, and the SDK tries again.
    pub lose_dynamo_answers: std::sync::Mutex<Option<LostAnswers>>,
}

/// Which DynamoDB answers [`FaultSwitches::lose_dynamo_answers`] loses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostAnswers {
    /// The operation, as in the `X-Amz-Target` header (`PutItem`, `TransactWriteItems`).
    pub operation: String,
    /// Only requests whose JSON body contains this text (e.g. a key prefix such as `EVT#`).
    pub body_contains: String,
    /// How many more answers to lose.
    pub remaining: u32,
}

impl FaultSwitches {
    pub(crate) fn dynamo_fails(&self) -> bool {
        if self.fail_dynamo.load(Ordering::SeqCst) {
            return true;
        }
        // Count down a pending `fail_dynamo_call_in`; the call that takes it from 1 to 0 fails.
        matches!(self.fail_dynamo_call_in.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)), Ok(1))
    }

    pub(crate) fn sqs_send_fails(&self) -> bool {
        self.fail_sqs_send.load(Ordering::SeqCst)
    }

    /// Whether the answer of this request is to be lost (counting it down).
    pub(crate) fn loses_answer_of(&self, request: &HttpRequest) -> bool {
        let mut lost = self.lose_dynamo_answers.lock().expect("lost-answers lock");
        let Some(l) = lost.as_mut().filter(|l| l.remaining > 0) else { return false };
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let body = request.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
        if !target.ends_with(&format!(".{}", l.operation)) || !body.contains(&l.body_contains) {
            return false;
        }
        l.remaining -= 1;
        true
    }

    /// Consumes one pending `fail_record_after_send`; true if there was one.
    pub(crate) fn take_record_failure(&self) -> bool {
        self.fail_record_after_send.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

/// The DynamoDB client's HTTP client with [`FaultSwitches::throttle_dynamo_per_mille`] applied.
pub(crate) fn throttling_http_client(inner: SharedHttpClient, switches: Arc<FaultSwitches>) -> SharedHttpClient {
    SharedHttpClient::new(ThrottlingClient { inner, switches })
}

#[derive(Debug)]
struct ThrottlingClient {
    inner: SharedHttpClient,
    switches: Arc<FaultSwitches>,
}

impl HttpClient for ThrottlingClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(ThrottlingConnector {
            inner: self.inner.http_connector(settings, components),
            switches: self.switches.clone(),
        })
    }
}

#[derive(Debug)]
struct ThrottlingConnector {
    inner: SharedHttpConnector,
    switches: Arc<FaultSwitches>,
}

impl HttpConnector for ThrottlingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if self.switches.loses_answer_of(&request) {
            let applied = self.inner.call(request);
            return HttpConnectorFuture::new(async move {
                let _answer = applied.await;
                Err(ConnectorError::io("injected fault: connection reset before the answer arrived".into()))
            });
        }
        let share = self.switches.throttle_dynamo_per_mille.load(Ordering::Relaxed);
        if share == 0 || rand::random::<u32>() % 1000 >= share {
            return self.inner.call(request);
        }
        let n = self.switches.dynamo_throttled.fetch_add(1, Ordering::Relaxed);
        HttpConnectorFuture::ready(Ok(throttled_response(n.is_multiple_of(2))))
    }
}

/// DynamoDB's answer to a throttled request: HTTP 400, AWS JSON 1.0, the error code in `__type`.
fn throttled_response(provisioned: bool) -> HttpResponse {
    let (code, message) = if provisioned {
        (
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        )
    } else {
        ("ThrottlingException", "Throughput exceeds the current capacity for one or more global secondary indexes.")
    };
    let body = serde_json::json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message});
    let mut resp = HttpResponse::new(400.try_into().expect("400 is a status code"), SdkBody::from(body.to_string()));
    resp.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    resp.headers_mut().insert("x-amzn-requestid", "THROTTLEDBYPUCKFAULTINJECTION");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_failures_are_counted_down_to_zero() {
        let f = FaultSwitches::default();
        assert!(!f.take_record_failure());
        f.fail_record_after_send.store(2, Ordering::SeqCst);
        assert!(f.take_record_failure());
        assert!(f.take_record_failure());
        assert!(!f.take_record_failure());
        assert_eq!(f.fail_record_after_send.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn only_the_nth_dynamo_call_fails() {
        let f = FaultSwitches::default();
        f.fail_dynamo_call_in.store(3, Ordering::SeqCst);
        let seen: Vec<bool> = (0..5).map(|_| f.dynamo_fails()).collect();
        assert_eq!(seen, [false, false, true, false, false]);
        f.fail_dynamo.store(true, Ordering::SeqCst);
        assert!(f.dynamo_fails());
    }
}
