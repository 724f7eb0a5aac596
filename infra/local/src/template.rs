//! template.yaml, read the way CloudFormation and SAM read it.
//!
//! The local stack keeps no second list of resources, routes or consumers: everything it runs is
//! derived from the template through this module. CloudFormation short tags (`!Ref`, `!GetAtt`,
//! `!Sub`, …) arrive from `serde_yaml` as tagged values and are normalised here into their long
//! forms (`{"Ref": …}`, `{"Fn::GetAtt": […]}`) so the rest of the crate handles one shape.

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The parsed template, intrinsics normalised to long form.
#[derive(Debug, Clone)]
pub struct Template {
    /// The whole document as JSON (long-form intrinsics).
    pub doc: Value,
}

/// An HTTP route bound to a function: `Method Path → Binary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method, e.g. `POST`.
    pub method: String,
    /// The path template with `{param}` segments, e.g. `/v1/webhooks/subscriptions/{id}`.
    pub path: String,
    /// `Metadata.BuildProperties.Binary` of the function.
    pub binary: String,
    /// The function's logical id, for logs.
    pub function: String,
    /// The function's `Timeout` (or the Globals one): an invocation running longer fails.
    pub timeout_secs: u64,
}

/// The route key (and [`Route::path`]) of an HTTP API's catch-all route.
pub const DEFAULT_ROUTE: &str = "$default";

impl Route {
    /// Whether this is the `$default` route, which serves every request no other route matches.
    pub fn is_default(&self) -> bool {
        self.path == DEFAULT_ROUTE
    }

    /// API Gateway's `routeKey`: `METHOD /path`, or `$default`.
    pub fn route_key(&self) -> String {
        if self.is_default() {
            DEFAULT_ROUTE.to_owned()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }
}

/// A function triggered by an SQS queue (an SQS event source mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsConsumer {
    pub function: String,
    pub binary: String,
    /// Logical id of the queue (from `!GetAtt <Queue>.Arn`).
    pub queue: String,
    /// At most 10 for standard queues; the poller asks for this many messages.
    pub batch_size: i32,
    /// Whether the mapping reports partial failures (otherwise any error fails the batch).
    pub report_batch_item_failures: bool,
    /// The function's `Timeout`: a batch running longer fails as a whole.
    pub timeout_secs: u64,
    /// `ScalingConfig.MaximumConcurrency` (a `!Ref` resolves to the parameter's default): the
    /// most batches the local stack runs at once for this source, as Lambda would.
    pub max_concurrency: usize,
}

/// A function triggered by a schedule (`Schedule` / `ScheduleV2` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub function: String,
    pub binary: String,
    /// The expression as written, e.g. `rate(1 minute)`.
    pub expression: String,
    /// The period in seconds, when the expression is a `rate(...)`.
    pub period_secs: Option<u64>,
}

/// Converts a `serde_yaml` value into JSON, turning short-form tags into long-form intrinsics.
pub fn yaml_to_json(value: serde_yaml::Value) -> Result<Value> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or_default())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => bail!("unsupported mapping key in template: {other:?}"),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = yaml_to_json(tagged.value)?;
            let (key, inner) = match name {
                "Ref" => ("Ref".to_owned(), inner),
                "Condition" => ("Condition".to_owned(), inner),
                // `!GetAtt A.B` is the string form of `Fn::GetAtt: [A, B]`.
                "GetAtt" => {
                    let inner = match inner {
                        Value::String(s) => {
                            let (res, attr) =
                                s.split_once('.').ok_or_else(|| anyhow!("!GetAtt {s}: expected Resource.Attribute"))?;
                            Value::Array(vec![Value::from(res), Value::from(attr)])
                        }
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), inner)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut out = Map::new();
            out.insert(key, inner);
            Value::Object(out)
        }
    })
}

/// Parses `rate(N unit)` into seconds; `None` for `cron(...)` and anything else.
pub fn parse_rate(expression: &str) -> Option<u64> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let mut parts = inner.split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    let unit = parts.next()?;
    let per = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(n * per)
}

impl Template {
    /// Reads and parses the template file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("Failed to parse {}", path.display()))
    }

    /// Parses template text.
    pub fn parse(text: &str) -> Result<Self> {
        let yaml: serde_yaml::Value = serde_yaml::from_str(text).context("template is not valid YAML")?;
        let doc = yaml_to_json(yaml)?;
        if !doc.get("Resources").is_some_and(Value::is_object) {
            bail!("template has no Resources section");
        }
        Ok(Self { doc })
    }

    /// Any part of the template by JSON pointer (e.g. `/Outputs/ApiUrl/Value`), short tags in
    /// long form.
    pub fn doc_pointer(&self, pointer: &str) -> Option<&Value> {
        self.doc.pointer(pointer)
    }

    /// Logical id → resource (with `Type`, `Properties`, `Metadata`).
    pub fn resources(&self) -> &Map<String, Value> {
        // `parse` checked that Resources is an object.
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.doc["Resources"].as_object().unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// The `Type` of a resource.
    pub fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resources().get(logical_id)?.get("Type")?.as_str()
    }

    /// Logical ids of resources of the given type, in template order.
    pub fn resources_of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources()
            .iter()
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(id, r)| (id.as_str(), r))
    }

    /// Parameter name → default value as a string (what `!Ref Param` yields).
    pub fn parameter_defaults(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(params) = self.doc.get("Parameters").and_then(Value::as_object) {
            for (name, p) in params {
                if let Some(default) = p.get("Default") {
                    let s = match default {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out.insert(name.clone(), s);
                }
            }
        }
        out
    }

    /// A property's value as deployed with default parameters: a literal (string or number), or
    /// the default of the parameter a `!Ref` names. `None` for other intrinsics.
    pub fn value_with_defaults(&self, value: &Value) -> Option<String> {
        match value.get("Ref").and_then(Value::as_str) {
            Some(param) => self.parameter_defaults().remove(param),
            None => value.as_str().map(str::to_owned).or_else(|| value.as_f64().map(|n| n.to_string())),
        }
    }

    /// Carries environment overrides back to the parameters they come from: a `Globals`
    /// variable defined as `!Ref <Parameter>` (e.g. `MAX_DELIVERY_ATTEMPTS: !Ref
    /// MaxDeliveryAttempts`) that is overridden locally overrides that parameter's default as
    /// well, so every other use of the parameter (the delivery queue's `maxReceiveCount`) agrees
    /// with what the functions read, as a deploy with that parameter would. Returns the
    /// parameters changed.
    pub fn override_parameters_from_env(&mut self, env: &BTreeMap<String, String>) -> Vec<String> {
        let mut changed = Vec::new();
        for (var, value) in self.global_env() {
            let (Some(param), Some(new)) = (value.get("Ref").and_then(Value::as_str), env.get(&var)) else { continue };
            let slot = self.doc.get_mut("Parameters").and_then(|p| p.get_mut(param)).and_then(Value::as_object_mut);
            if let Some(slot) = slot {
                slot.insert("Default".into(), Value::String(new.clone()));
                changed.push(param.to_owned());
            }
        }
        changed
    }

    /// `Globals.Function.Environment.Variables`, unresolved.
    pub fn global_env(&self) -> Map<String, Value> {
        self.doc
            .pointer("/Globals/Function/Environment/Variables")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// Every `AWS::Serverless::Function` as (logical id, binary, resource).
    pub fn functions(&self) -> Result<Vec<(String, String, &Value)>> {
        self.resources_of_type("AWS::Serverless::Function")
            .map(|(id, r)| {
                let binary = r
                    .pointer("/Metadata/BuildProperties/Binary")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("{id}: missing Metadata.BuildProperties.Binary"))?;
                Ok((id.to_owned(), binary.to_owned(), r))
            })
            .collect()
    }

    /// A function's `Timeout`, else `Globals.Function.Timeout`, else Lambda's default of 3 s.
    pub fn timeout_secs(&self, resource: &Value) -> u64 {
        resource
            .pointer("/Properties/Timeout")
            .or_else(|| self.doc.pointer("/Globals/Function/Timeout"))
            .and_then(Value::as_u64)
            .unwrap_or(3)
    }

    fn events<'a>(resource: &'a Value) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        resource
            .pointer("/Properties/Events")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(_, ev)| Some((ev.get("Type")?.as_str()?, ev.get("Properties").unwrap_or(&Value::Null))))
    }

    /// Every HttpApi route, in template order.
    pub fn routes(&self) -> Result<Vec<Route>> {
        let mut out = Vec::new();
        for (function, binary, r) in self.functions()? {
            for (ty, props) in Self::events(r) {
                if ty != "HttpApi" {
                    continue;
                }
                // Neither Path nor Method: SAM binds the function to the API's `$default` route.
                let (method, path) = match (props.get("Method"), props.get("Path")) {
                    (None, None) => ("ANY", DEFAULT_ROUTE),
                    (method, path) => (
                        method
                            .and_then(Value::as_str)
                            .ok_or_else(|| anyhow!("{function}: HttpApi event without Method"))?,
                        path.and_then(Value::as_str)
                            .ok_or_else(|| anyhow!("{function}: HttpApi event without Path"))?,
                    ),
                };
                out.push(Route {
                    method: method.to_ascii_uppercase(),
                    path: path.to_owned(),
                    binary: binary.clone(),
                    function: function.clone(),
                    timeout_secs: self.timeout_secs(r),
                });
            }
        }
        Ok(out)
    }

    /// Every SQS-triggered function.
    pub fn sqs_consumers(&self) -> Result<Vec<SqsConsumer>> {
        let mut out = Vec::new();
        for (function, binary, r) in self.functions()? {
            for (ty, props) in Self::events(r) {
                if ty != "SQS" {
                    continue;
                }
                let queue = props
                    .pointer("/Queue/Fn::GetAtt/0")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("{function}: SQS event Queue must be !GetAtt <Queue>.Arn"))?;
                let batch_size = props.get("BatchSize").and_then(Value::as_i64).unwrap_or(10);
                let report = props
                    .get("FunctionResponseTypes")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|t| t == "ReportBatchItemFailures"));
                out.push(SqsConsumer {
                    function: function.clone(),
                    binary: binary.clone(),
                    queue: queue.to_owned(),
                    batch_size: batch_size.clamp(1, 10) as i32,
                    report_batch_item_failures: report,
                    timeout_secs: self.timeout_secs(r),
                    max_concurrency: self
                        .number_or_param(props.pointer("/ScalingConfig/MaximumConcurrency"))
                        .unwrap_or(1000),
                });
            }
        }
        Ok(out)
    }

    /// A literal number, or a `!Ref` to a parameter with a numeric default.
    fn number_or_param(&self, v: Option<&Value>) -> Option<usize> {
        let v = v?;
        if let Some(param) = v.get("Ref").and_then(Value::as_str) {
            return self.parameter_defaults().get(param)?.parse().ok();
        }
        v.as_u64().map(|n| n as usize).or_else(|| v.as_str()?.parse().ok())
    }

    /// Every schedule-triggered function.
    pub fn schedules(&self) -> Result<Vec<Scheduled>> {
        let mut out = Vec::new();
        for (function, binary, r) in self.functions()? {
            for (ty, props) in Self::events(r) {
                if ty != "Schedule" && ty != "ScheduleV2" {
                    continue;
                }
                let key = if ty == "Schedule" { "Schedule" } else { "ScheduleExpression" };
                let expression = props
                    .get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("{function}: {ty} event without {key}"))?;
                out.push(Scheduled {
                    function: function.clone(),
                    binary: binary.clone(),
                    expression: expression.to_owned(),
                    period_secs: parse_rate(expression),
                });
            }
        }
        Ok(out)
    }
}

/// The logical ids a value refers to through `Ref`, `Fn::GetAtt` and `Fn::Sub` (used to order
/// provisioning: a queue's redrive target is created before the queue).
pub fn references(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_refs(value, &mut out);
    out
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("Ref") {
                out.insert(target.clone());
            }
            if let Some(Value::String(res)) = map.get("Fn::GetAtt").and_then(|v| v.get(0)) {
                out.insert(res.clone());
            }
            if let Some(sub) = map.get("Fn::Sub") {
                let text = match sub {
                    Value::String(s) => Some(s.as_str()),
                    Value::Array(a) => a.first().and_then(Value::as_str),
                    _ => None,
                };
                for var in text.map(sub_variables).unwrap_or_default() {
                    let res = var.split('.').next().unwrap_or(&var).to_owned();
                    out.insert(res);
                }
            }
            for v in map.values() {
                collect_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The `${Name}` / `${Res.Attr}` variables of an `Fn::Sub` string (not `${!Literal}`).
pub fn sub_variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let var = &after[..end];
        if !var.starts_with('!') {
            out.push(var.to_owned());
        }
        rest = &after[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
Parameters:
  N: {Type: Number, Default: 3}
Globals:
  Function:
    Environment:
      Variables:
        A: !Ref N
        B: !Sub "${Q.Arn}/x"
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt D.Arn, maxReceiveCount: !Ref N}
  D: {Type: AWS::SQS::Queue}
  F:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: f-bin}}
    Properties:
      Events:
        H: {Type: HttpApi, Properties: {Path: "/a/{id}", Method: get}}
        S: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures]}}
        T: {Type: Schedule, Properties: {Schedule: rate(2 minutes)}}
  G:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: g-bin}}
    Properties:
      Events:
        H: {Type: HttpApi, Properties: {ApiId: !Ref Api}}
"#;

    #[test]
    fn short_tags_become_long_form_intrinsics() {
        let t = Template::parse(SAMPLE).unwrap();
        let env = t.global_env();
        assert_eq!(env["A"], serde_json::json!({"Ref": "N"}));
        assert_eq!(env["B"], serde_json::json!({"Fn::Sub": "${Q.Arn}/x"}));
        let q = &t.resources()["Q"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"];
        assert_eq!(q, &serde_json::json!({"Fn::GetAtt": ["D", "Arn"]}));
    }

    #[test]
    fn events_are_read_per_kind() {
        let t = Template::parse(SAMPLE).unwrap();
        let routes = t.routes().unwrap();
        assert_eq!(routes[0].method, "GET");
        assert_eq!(routes[0].path, "/a/{id}");
        assert_eq!(routes[0].binary, "f-bin");
        assert_eq!(routes[0].timeout_secs, 3);
        assert_eq!(routes[0].route_key(), "GET /a/{id}");
        assert!(!routes[0].is_default());
        assert_eq!((routes[1].method.as_str(), routes[1].path.as_str()), ("ANY", "$default"));
        assert_eq!(routes[1].route_key(), "$default");
        let consumers = t.sqs_consumers().unwrap();
        assert_eq!(consumers[0].queue, "Q");
        assert_eq!(consumers[0].batch_size, 5);
        assert!(consumers[0].report_batch_item_failures);
        assert_eq!(t.schedules().unwrap()[0].period_secs, Some(120));
        assert_eq!(t.parameter_defaults()["N"], "3");
        assert_eq!(t.value_with_defaults(&serde_json::json!({"Ref": "N"})).as_deref(), Some("3"));
        assert_eq!(t.value_with_defaults(&serde_json::json!("x")).as_deref(), Some("x"));
        assert_eq!(t.value_with_defaults(&serde_json::json!({"Fn::Sub": "x"})), None);
    }

    #[test]
    fn an_env_override_of_a_parameter_backed_variable_overrides_the_parameter() {
        let mut t = Template::parse(SAMPLE).unwrap();
        let env = BTreeMap::from([("A".to_owned(), "7".to_owned()), ("B".to_owned(), "not a Ref".to_owned())]);
        assert_eq!(t.override_parameters_from_env(&env), vec!["N".to_owned()]);
        assert_eq!(t.parameter_defaults()["N"], "7");
        assert!(t.override_parameters_from_env(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn references_follow_ref_getatt_and_sub() {
        let t = Template::parse(SAMPLE).unwrap();
        let refs = references(&t.resources()["Q"]);
        assert!(refs.contains("D") && refs.contains("N"));
        assert_eq!(sub_variables("${A}-${B.Arn}-${!Lit}"), vec!["A", "B.Arn"]);
    }

    #[test]
    fn rate_expressions_parse() {
        assert_eq!(parse_rate("rate(1 minute)"), Some(60));
        assert_eq!(parse_rate("rate(5 minutes)"), Some(300));
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
    }
}
