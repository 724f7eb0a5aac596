//! Counting AWS calls: an SDK interceptor that logs every request actually transmitted.
//!
//! Why an interceptor: it sits inside the SDK's orchestrator, so it sees exactly the requests the
//! adapters send (including SDK retries, which AWS bills too), named by the operation metadata the
//! SDK attaches, without touching a line of adapter code. It hooks `read_before_transmit`, which
//! runs once per *attempt*, i.e. once per billed request. The request body is kept for DynamoDB
//! calls so the cost model can tell which items a call touched.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
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
}

impl Call {
    /// `Service.Operation`, the row label used in the report.
    pub fn label(&self) -> String {
        format!("{}.{}", self.service, self.operation)
    }
}

/// The log every registered [`CallCounter`] appends to.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    log: Arc<Mutex<Vec<Call>>>,
}

impl CallCounter {
    /// The interceptor to attach to SDK clients.
    pub fn interceptor(&self) -> SharedInterceptor {
        SharedInterceptor::new(Recorder { log: self.log.clone() })
    }

    /// Everything recorded since the last `take`, emptying the log.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.log.lock().expect("call log lock"))
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
    log: Arc<Mutex<Vec<Call>>>,
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
        let body = if service == "DynamoDB" {
            context.request().body().bytes().and_then(|b| serde_json::from_slice(b).ok())
        } else {
            None
        };
        self.log.lock().expect("call log lock").push(Call { service, operation, body });
        Ok(())
    }
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
