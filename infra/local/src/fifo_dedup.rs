//! SQS FIFO deduplication as SQS does it, which moto does not: a message sent with the
//! deduplication id of one accepted in the last 5 minutes is answered as accepted (the first
//! one's message id) and never delivered, *also when the first was already received and
//! deleted*. moto compares only with the messages still in the queue, so on moto a re-send after
//! the first was consumed is delivered twice, and code that reuses a deduplication id for a
//! second, wanted message (a replay within 5 minutes) works on moto and loses the message in AWS.
//!
//! The SQS limits proxy applies this to every queue whose URL ends in `.fifo`, per message group
//! (the template's FIFO queue deduplicates per group, `DeduplicationScope: messageGroup`).

use serde_json::{json, Value};
use std::collections::HashMap;

/// SQS's deduplication interval.
pub const WINDOW_SECS: f64 = 300.0;

/// (queue URL, message group, deduplication id) → when accepted (proxy clock) and the answer.
#[derive(Default)]
pub struct Dedup(HashMap<(String, String, String), (f64, Value)>);

/// What to do with a send: what to forward to moto (None: nothing) and the answers of the
/// entries (or the single message) that are duplicates.
pub struct Plan {
    pub forward: Option<Value>,
    pub duplicates: Vec<Value>,
}

fn key(queue: &str, entry: &Value) -> Option<(String, String, String)> {
    let group = entry.get("MessageGroupId")?.as_str()?;
    let id = entry.get("MessageDeduplicationId")?.as_str()?;
    Some((queue.to_owned(), group.to_owned(), id.to_owned()))
}

impl Dedup {
    fn seen(&self, k: &(String, String, String), now: f64) -> Option<&Value> {
        self.0.get(k).filter(|(at, _)| now - at < WINDOW_SECS).map(|(_, answer)| answer)
    }

    /// Splits a `SendMessage` or `SendMessageBatch` request to a FIFO queue.
    pub fn plan(&self, request: &Value, now: f64) -> Plan {
        let queue = request.get("QueueUrl").and_then(Value::as_str).unwrap_or_default();
        let Some(entries) = request.get("Entries").and_then(Value::as_array) else {
            return match key(queue, request).and_then(|k| self.seen(&k, now)) {
                Some(answer) => Plan { forward: None, duplicates: vec![answer.clone()] },
                None => Plan { forward: Some(request.clone()), duplicates: Vec::new() },
            };
        };
        let (mut keep, mut duplicates) = (Vec::new(), Vec::new());
        for entry in entries {
            match key(queue, entry).and_then(|k| self.seen(&k, now)) {
                Some(answer) => {
                    let mut a = answer.clone();
                    a["Id"] = entry.get("Id").cloned().unwrap_or(Value::Null);
                    duplicates.push(a);
                }
                None => keep.push(entry.clone()),
            }
        }
        let forward = (!keep.is_empty()).then(|| {
            let mut r = request.clone();
            r["Entries"] = Value::Array(keep);
            r
        });
        Plan { forward, duplicates }
    }

    /// Records the messages moto accepted for `request`, from its `answer`.
    pub fn record(&mut self, request: &Value, answer: &Value, now: f64) {
        let queue = request.get("QueueUrl").and_then(Value::as_str).unwrap_or_default();
        let Some(entries) = request.get("Entries").and_then(Value::as_array) else {
            if let (Some(k), Some(_)) = (key(queue, request), answer.get("MessageId")) {
                self.0.entry(k).or_insert((now, answer.clone()));
            }
            return;
        };
        for ok in answer.get("Successful").and_then(Value::as_array).into_iter().flatten() {
            let entry = entries.iter().find(|e| e.get("Id") == ok.get("Id"));
            if let Some(k) = entry.and_then(|e| key(queue, e)) {
                self.0.entry(k).or_insert((now, ok.clone()));
            }
        }
        if self.0.len() > 100_000 {
            self.0.retain(|_, (at, _)| now - *at < WINDOW_SECS);
        }
    }
}

/// The answer to a request: moto's (if anything was forwarded) merged with the duplicates'.
pub fn merge(request: &Value, moto: Option<Value>, duplicates: Vec<Value>) -> Value {
    if request.get("Entries").is_none() {
        return moto.unwrap_or_else(|| duplicates.into_iter().next().unwrap_or(Value::Null));
    }
    let mut out = moto.unwrap_or_else(|| json!({"Successful": [], "Failed": []}));
    let successful = out["Successful"].as_array().cloned().unwrap_or_default();
    out["Successful"] = Value::Array(successful.into_iter().chain(duplicates).collect());
    if out.get("Failed").is_none() {
        out["Failed"] = json!([]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resend_within_five_minutes_is_answered_and_dropped_also_in_a_batch() {
        let mut d = Dedup::default();
        let one =
            json!({"QueueUrl": "q.fifo", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "x"});
        assert!(d.plan(&one, 0.0).forward.is_some());
        d.record(&one, &json!({"MessageId": "m1", "MD5OfMessageBody": "h"}), 0.0);
        let again = d.plan(&one, 299.0);
        assert!(again.forward.is_none());
        assert_eq!(again.duplicates[0]["MessageId"], "m1");
        assert!(d.plan(&one, 301.0).forward.is_some(), "after the window it is a new message");
        let other_group = json!({"QueueUrl": "q.fifo", "MessageGroupId": "h", "MessageDeduplicationId": "x"});
        assert!(d.plan(&other_group, 1.0).forward.is_some(), "per message group");
        let batch = json!({"QueueUrl": "q.fifo", "Entries": [
            {"Id": "0", "MessageGroupId": "g", "MessageDeduplicationId": "x"},
            {"Id": "1", "MessageGroupId": "g", "MessageDeduplicationId": "y"}]});
        let plan = d.plan(&batch, 2.0);
        assert_eq!(plan.forward.as_ref().unwrap()["Entries"].as_array().unwrap().len(), 1);
        let merged = merge(&batch, Some(json!({"Successful": [{"Id": "1", "MessageId": "m2"}]})), plan.duplicates);
        let ids: Vec<&str> =
            merged["Successful"].as_array().unwrap().iter().map(|e| e["Id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1", "0"]);
    }
}
