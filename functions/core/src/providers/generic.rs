//! Generic senders: any system that can POST a JSON object with a `query` string. The event may
//! name `agent_ids`, a `scope` and a `depth`; the endpoint's defaults apply otherwise.
//!
//! Unlike provider payloads, these fields are ours, so a wrong type is a 400 naming the field
//! rather than a detail left out.

use super::payload::clip;
use super::{dedupe, ignored, parse_json, DedupeKey, Depth, Headers, Recognition, Trigger, MAX_QUERY_CHARS};
use crate::error::AppError;
use serde_json::{Map, Value};

/// Most `agent_ids` a generic event may name.
pub const MAX_AGENT_IDS: usize = 100;
const MAX_AGENT_ID_CHARS: usize = 128;

pub(super) fn recognize(headers: &Headers, body: &[u8]) -> Result<Recognition, AppError> {
    let payload = parse_json(body, "")?;
    let Some(obj) = payload.as_object() else {
        return ignored("no query");
    };
    let query = match obj.get("query") {
        Some(Value::String(q)) if !q.trim().is_empty() => {
            crate::services::json_fields::text("query", q, MAX_QUERY_CHARS)?
        }
        _ => return ignored("no query"),
    };
    let agent_ids = generic_agent_ids(obj)?;
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(AppError::validation("scope", "scope must be an object")),
    };
    let depth = match obj.get("depth") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(Depth::parse("depth", d)?),
        Some(_) => return Err(AppError::validation("depth", "depth must be one of quick, standard, deep")),
    };
    let summary = clip(query.lines().next().unwrap_or(&query), 200);
    Ok(Recognition::Trigger(Box::new(Trigger {
        trigger: "generic".to_owned(),
        query,
        summary,
        agent_ids,
        scope,
        depth,
        severity: None,
        dedupe_key: headers
            .get("webhook-id")
            .or_else(|| headers.get("idempotency-key"))
            .and_then(dedupe)
            .map(DedupeKey::Delivery),
    })))
}

fn generic_agent_ids(obj: &Map<String, Value>) -> Result<Vec<String>, AppError> {
    let items = match obj.get("agent_ids") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(AppError::validation("agent_ids", "agent_ids must be an array of strings")),
    };
    if items.len() > MAX_AGENT_IDS {
        return Err(AppError::validation("agent_ids", format!("agent_ids must have at most {MAX_AGENT_IDS} items")));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = item
            .as_str()
            .map(str::trim)
            .ok_or_else(|| AppError::validation("agent_ids", "agent_ids items must be strings"))?;
        if id.is_empty() || id.chars().count() > MAX_AGENT_ID_CHARS || id.chars().any(char::is_control) {
            return Err(AppError::validation(
                "agent_ids",
                format!("agent_ids items must be 1 to {MAX_AGENT_ID_CHARS} printable characters"),
            ));
        }
        if !ids.iter().any(|x| x == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;
    use crate::providers::recognize;
    use crate::providers::tests::{h, trigger};
    use serde_json::json;

    #[test]
    fn generic_recognition_table() {
        let t = trigger(
            recognize(
                Provider::Generic,
                &h(&[("webhook-id", "msg_1")]),
                br#"{"query":"check the host that just alerted","agent_ids":["agt_1","agt_1","agt_2"],"scope":{"hosts":["a"]},"depth":"deep","extra":1}"#,
            )
            .unwrap(),
        );
        assert_eq!(t.trigger, "generic");
        assert_eq!(t.query, "check the host that just alerted");
        assert_eq!(t.summary, "check the host that just alerted");
        assert_eq!(t.agent_ids, vec!["agt_1", "agt_2"]);
        assert_eq!(t.scope, Some(json!({"hosts": ["a"]})));
        assert_eq!(t.depth, Some(Depth::Deep));
        assert_eq!(t.dedupe_key, Some(DedupeKey::Delivery("msg_1".into())));
        let t = trigger(recognize(Provider::Generic, &h(&[("Idempotency-Key", "k1")]), br#"{"query":"q"}"#).unwrap());
        assert_eq!(t.dedupe_key, Some(DedupeKey::Delivery("k1".into())));
        assert_eq!(t.depth, None);

        for body in [r#"{}"#, r#"{"query":""}"#, r#"{"query":"   "}"#, r#"{"query":5}"#, r#"[]"#, r#""q""#] {
            assert_eq!(
                recognize(Provider::Generic, &h(&[]), body.as_bytes()).unwrap(),
                Recognition::Ignored("no query".into()),
                "{body}"
            );
        }
        let errors = [
            (r#"{"query":"q","agent_ids":"a"}"#, "agent_ids must be an array of strings"),
            (r#"{"query":"q","agent_ids":[1]}"#, "agent_ids items must be strings"),
            (r#"{"query":"q","agent_ids":[""]}"#, "agent_ids items must be 1 to 128 printable characters"),
            (r#"{"query":"q","scope":[]}"#, "scope must be an object"),
            (r#"{"query":"q","depth":"fast"}"#, "depth must be one of quick, standard, deep"),
            (r#"{"query":"q","depth":3}"#, "depth must be one of quick, standard, deep"),
        ];
        for (body, want) in errors {
            assert_eq!(
                recognize(Provider::Generic, &h(&[]), body.as_bytes()),
                Err(AppError::validation(want.split(' ').next().unwrap(), want)),
                "{body}"
            );
        }
        let long = format!(r#"{{"query":"{}"}}"#, "x".repeat(MAX_QUERY_CHARS + 1));
        assert!(matches!(recognize(Provider::Generic, &h(&[]), long.as_bytes()), Err(AppError::Validation(_))));
        assert!(matches!(recognize(Provider::Generic, &h(&[]), b"query=hello"), Err(AppError::MalformedJson(_))));
    }
}
