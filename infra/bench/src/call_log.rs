//! Counting AWS calls: an SDK interceptor that logs every request actually transmitted.
//!
//! Why an interceptor: it sits inside the SDK's orchestrator, so it sees exactly the requests the
//! adapters send (including SDK retries, which AWS bills too), named by the operation metadata the
//! SDK attaches, without touching a line of adapter code. It hooks `read_before_transmit`, which
//! runs once per *attempt*, i.e. once per billed request. The request body is kept for DynamoDB
//! calls so the cost model can tell which items (and so which index keys) a call touched, the
//! response body of DynamoDB reads so it knows the items a Query or GetItem returned, and the byte
//! sizes of every request and response so SQS is billed by its 64 KiB chunks (`read_after_deserialization`
//! pairs the response with its request through a marker in the operation's config bag).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One transmitted SDK request.
#[derive(Debug, Clone)]
pub struct Call {
    /// SDK service name, e.g. `DynamoDB`, `SQS`, `SecretsManager`.
    pub service: String,
    /// Operation name, e.g. `GetItem`.
    pub operation: String,
    /// The JSON request body (DynamoDB only), for item attribution.
    pub body: Option<serde_json::Value>,
    /// The JSON response body of DynamoDB reads (GetItem, Query, BatchGetItem, TransactGetItems).
    pub response: Option<serde_json::Value>,
    /// Bytes of the request body as sent.
    pub request_bytes: usize,
    /// Bytes of the response body as received (0 when none arrived).
    pub response_bytes: usize,
}

impl Call {
    /// A call as the cost model sees it (tests).
    #[cfg(test)]
    pub fn new(service: &str, operation: &str, body: Option<serde_json::Value>) -> Self {
        let request_bytes = body.as_ref().map_or(0, |b| b.to_string().len());
        Self {
            service: service.into(),
            operation: operation.into(),
            body,
            response: None,
            request_bytes,
            response_bytes: 0,
        }
    }

    /// `Service.Operation`, the row label used in the report.
    pub fn label(&self) -> String {
        format!("{}.{}", self.service, self.operation)
    }
}

/// The log every registered [`CallCounter`] appends to.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    log: Arc<Mutex<Log>>,
}

/// The calls since the last `take`; `base` counts those taken before, so a response arriving
/// after a `take` finds no entry instead of the wrong one.
#[derive(Debug, Default)]
struct Log {
    base: usize,
    calls: Vec<Call>,
}

impl CallCounter {
    /// The interceptor to attach to SDK clients.
    pub fn interceptor(&self) -> SharedInterceptor {
        SharedInterceptor::new(Recorder { log: self.log.clone() })
    }

    /// Everything recorded since the last `take`, emptying the log.
    pub fn take(&self) -> Vec<Call> {
        let mut log = self.log.lock().expect("call log lock");
        let calls = std::mem::take(&mut log.calls);
        log.base += calls.len();
        calls
    }
}

/// Counts calls per `Service.Operation`.
pub fn tally(calls: &[Call]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.label()).or_insert(0) += 1;
    }
    out
}

#[derive(Debug)]
struct Recorder {
    log: Arc<Mutex<Log>>,
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "puck-bench-call-counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_owned(), m.name().to_owned()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        let bytes = context.request().body().bytes();
        let request_bytes = bytes.map_or(0, <[u8]>::len);
        let body = if service == "DynamoDB" { bytes.and_then(|b| serde_json::from_slice(b).ok()) } else { None };
        let mut log = self.log.lock().expect("call log lock");
        cfg.interceptor_state().store_put(Logged(log.base + log.calls.len()));
        log.calls.push(Call { service, operation, body, response: None, request_bytes, response_bytes: 0 });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Logged(at)) = cfg.load::<Logged>().cloned() else { return Ok(()) };
        let bytes = context.response().body().bytes();
        let mut log = self.log.lock().expect("call log lock");
        // `take` may have emptied the log in between: then the call belongs to the phase before.
        let index = at.checked_sub(log.base);
        if let Some(call) = index.and_then(|i| log.calls.get_mut(i)) {
            call.response_bytes = bytes.map_or(0, <[u8]>::len);
            let read =
                matches!(call.operation.as_str(), "GetItem" | "Query" | "BatchGetItem" | "TransactGetItems" | "Scan");
            if call.service == "DynamoDB" && read {
                call.response = bytes.and_then(|b| serde_json::from_slice(b).ok());
            }
        }
        Ok(())
    }
}

/// Which log entry the current attempt is (set before transmit, read after deserialization).
#[derive(Debug, Clone)]
struct Logged(usize);

impl Storable for Logged {
    type Storer = StoreReplace<Self>;
}

/// The size DynamoDB bills for an item in its JSON wire form (`{"attr": {"S": "…"}, …}`):
/// attribute names plus values, numbers as ~1 byte per 2 digits + 1, lists and maps with 3 bytes
/// of overhead plus 1 per element (the published sizing rules).
pub fn item_size(item: &serde_json::Map<String, serde_json::Value>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(v: &serde_json::Value) -> usize {
    let Some(obj) = v.as_object() else { return 0 };
    let Some((ty, inner)) = obj.iter().next() else { return 0 };
    match (ty.as_str(), inner) {
        ("S", serde_json::Value::String(s)) => s.len(),
        ("N", serde_json::Value::String(n)) => n.trim_start_matches('-').replace('.', "").len().div_ceil(2) + 1,
        ("B", serde_json::Value::String(b)) => b.len() * 3 / 4,
        ("BOOL" | "NULL", _) => 1,
        ("L", serde_json::Value::Array(items)) => 3 + items.iter().map(|i| 1 + value_size(i)).sum::<usize>(),
        ("M", serde_json::Value::Object(map)) => {
            3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>()
        }
        ("SS" | "NS" | "BS", serde_json::Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map_or(0, str::len)).sum()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_size_follows_the_sizing_rules() {
        let item = json!({"pk": {"S": "ACCT#a"}, "n": {"N": "1234"}, "l": {"L": [{"S": "ab"}]}});
        // pk: 2 + 6; n: 1 + 3; l: 1 + 3 + (1 + 2)
        assert_eq!(item_size(item.as_object().unwrap()), 8 + 4 + 7);
    }
}
