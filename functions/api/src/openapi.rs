//! The OpenAPI 3.1 document of the API, built from the one route table so it cannot drift.
//!
//! `openapi/openapi.yaml` holds everything a route table cannot know (summaries, parameters,
//! bodies, schemas, examples) under `operations.<binary>`; this module puts each operation at the
//! method and path the route table gives its binary, adds the security requirement of its scope
//! and the error responses every authenticated route can give, and drops `operations`. A route
//! without an operation, or an operation without a route, is an error the tests catch.

use serde_json::{json, Map, Value};
use std::sync::OnceLock;

const SOURCE: &str = include_str!("../openapi/openapi.yaml");

/// (operation id, method, path) of every route a client calls: all but the `$default` fallback.
/// The operation id is the binary, or `<binary>-<param>` for the `{param}` route of a binary that
/// serves several routes (the console's page and its assets), as the sample events are named.
pub fn documented_routes() -> Vec<(String, &'static str, &'static str)> {
    let routes: Vec<_> = crate::ROUTES.iter().filter(|r| !r.is_default()).collect();
    routes
        .iter()
        .map(|r| {
            let shared = routes.iter().filter(|o| o.binary == r.binary).count() > 1;
            let param = r.path.rsplit('/').next().and_then(|s| s.strip_prefix('{')?.strip_suffix('}'));
            let id = match (shared, param) {
                (true, Some(param)) => format!("{}-{param}", r.binary),
                _ => r.binary.to_owned(),
            };
            (id, r.method, r.path)
        })
        .collect()
}

/// The document, built once per container.
///
/// # Panics
/// If the embedded YAML does not parse or a route has no operation (a test checks both, so a
/// build that ships cannot panic here).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| build(&documented_routes()).unwrap_or_else(|e| panic!("openapi document: {e}")))
}

/// The document for `routes` (binary, method, path): paths generated, operations placed.
pub fn build(routes: &[(String, &str, &str)]) -> Result<Value, String> {
    let mut doc: Value = serde_yaml::from_str(SOURCE).map_err(|e| format!("openapi.yaml: {e}"))?;
    let root = doc.as_object_mut().ok_or("openapi.yaml is not a mapping")?;
    let Some(Value::Object(mut operations)) = root.remove("operations") else {
        return Err("openapi.yaml has no `operations` mapping".into());
    };
    let mut paths = Map::new();
    for (binary, method, path) in routes {
        let (binary, method, path) = (binary.as_str(), *method, *path);
        let operation =
            operations.remove(binary).ok_or_else(|| format!("route {binary} ({method} {path}) has no operation"))?;
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method.to_ascii_lowercase()] = place(binary, operation)?;
    }
    if let Some(orphan) = operations.keys().next() {
        return Err(format!("operation {orphan} names no route"));
    }
    root.insert("paths".into(), Value::Object(paths));
    Ok(doc)
}

/// An operation as published: `operationId`, `security` from its `scope`, and the shared
/// error responses.
fn place(binary: &str, mut operation: Value) -> Result<Value, String> {
    let op = operation.as_object_mut().ok_or_else(|| format!("operation {binary} is not a mapping"))?;
    op.insert("operationId".into(), json!(binary));
    let scope = op.remove("scope");
    let security = match &scope {
        Some(Value::String(scope)) => json!([{ "apiKey": [scope] }]),
        None => json!([]),
        Some(other) => return Err(format!("operation {binary}: scope must be a string, not {other}")),
    };
    op.insert("security".into(), security);
    if let Some(scope) = &scope {
        op.insert("x-scope".into(), scope.clone());
    }
    let responses = op
        .get_mut("responses")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("operation {binary} has no responses"))?;
    let error_ref = |name: &str| json!({ "$ref": format!("#/components/responses/{name}") });
    let uses_storage = !matches!(binary, "openapi-document" | "api-docs" | "console" | "console-asset");
    if uses_storage {
        for (status, name) in [("503", "Unavailable"), ("500", "Internal")] {
            responses.entry(status).or_insert_with(|| error_ref(name));
        }
    }
    if scope.is_some() {
        for (status, name) in [("401", "Unauthorized"), ("403", "Forbidden")] {
            responses.entry(status).or_insert_with(|| error_ref(name));
        }
    }
    Ok(operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_an_operation_at_its_method_and_path() {
        let routes = documented_routes();
        let doc = build(&routes).unwrap();
        for (binary, method, path) in &routes {
            let op = &doc["paths"][path][method.to_ascii_lowercase()];
            assert_eq!(op["operationId"], binary.as_str(), "{method} {path}");
        }
        let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, routes.len());
        assert!(doc.get("operations").is_none());
    }

    #[test]
    fn a_route_without_an_operation_and_an_operation_without_a_route_are_errors() {
        let mut routes = documented_routes();
        routes.push(("brand-new-route".into(), "GET", "/v1/new"));
        assert_eq!(build(&routes).unwrap_err(), "route brand-new-route (GET /v1/new) has no operation");
        let fewer: Vec<_> = documented_routes().into_iter().filter(|(b, _, _)| *b != "deliveries-get").collect();
        assert_eq!(build(&fewer).unwrap_err(), "operation deliveries-get names no route");
    }

    #[test]
    fn scoped_operations_require_the_bearer_key_and_list_401_and_403() {
        let doc = build(&documented_routes()).unwrap();
        let op = &doc["paths"]["/v1/events"]["post"];
        assert_eq!(op["security"], json!([{ "apiKey": ["events:publish"] }]));
        for status in ["401", "403", "503", "500"] {
            assert!(op["responses"].get(status).is_some(), "{status}");
        }
        let receiver = &doc["paths"]["/v1/webhooks/incoming/{provider}/{key}"]["post"];
        assert_eq!(receiver["security"], json!([]));
        assert!(receiver["responses"].get("403").is_none());
        assert_eq!(doc["paths"]["/v1/openapi.json"]["get"]["security"], json!([]));
    }

    #[test]
    fn every_path_parameter_is_declared_by_its_operation() {
        let doc = build(&documented_routes()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let wanted: Vec<&str> = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            for (method, op) in item.as_object().unwrap() {
                let declared: Vec<String> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| resolve(&doc, p))
                            .filter(|p| p["in"] == "path")
                            .map(|p| p["name"].as_str().unwrap().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(declared, wanted, "{method} {path}");
            }
        }
    }

    fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
            None => v,
        }
    }
}
