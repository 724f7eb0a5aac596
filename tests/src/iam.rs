//! The IAM check: every AWS call a function makes on the local stack, against the policy AWS
//! will give that function's role.
//!
//! moto authorises every call, so without this a function missing a grant in template.yaml fails
//! only once deployed. [`start_recording`] registers an SDK interceptor with
//! [`puck_aws::add_sdk_interceptor`] (so it must run before the stack starts) that logs each
//! transmitted request as the IAM actions and resources it needs, under the function whose
//! invocation made it ([`puck_local::invocation`]). [`load_policies`] expands the template's
//! policies with the SAM translator (`infra/scripts/iam_policies.py`), and [`check`] matches the
//! two with IAM's wildcard rules. The e2e test
//! `iam::every_aws_call_is_granted_to_the_function_that_makes_it` drives the flow.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use puck_local::invocation::{current_function, COLD_START};
use puck_local::provision::{Physical, Provisioned};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// What an AWS call names, as the adapters sent it (physical names of this or another stack).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A DynamoDB table, or one of its indexes (Query and Scan with `IndexName`).
    Table { name: String, index: Option<String> },
    /// An SQS queue by URL.
    Queue { url: String },
    /// A Secrets Manager secret by name or ARN.
    Secret { id: String },
    /// An IAM role by ARN (`sts:AssumeRole` of an AWS destination's role: any account's), with
    /// the `ExternalId` the call carried.
    Role { arn: String, external_id: String },
    /// A request this module cannot read a resource from (a failure of the check).
    Unknown(String),
}

/// One IAM action a function's call needed, on one target.
#[derive(Debug, Clone)]
pub struct Access {
    /// Template logical id, or [`COLD_START`].
    pub function: Arc<str>,
    /// `service:Action`, e.g. `dynamodb:PutItem`.
    pub action: String,
    pub target: Target,
}

type Log = Arc<Mutex<Vec<Access>>>;

fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        puck_aws::add_sdk_interceptor(SharedInterceptor::new(Recorder { log: log.clone() }));
        log
    })
}

/// A window on the accesses logged since [`start_recording`].
#[derive(Debug)]
pub struct Recording {
    from: usize,
}

/// Starts logging every function's AWS calls (process-wide, for SDK clients built from now on:
/// call it before starting the stack).
pub fn start_recording() -> Recording {
    let from = log().lock().expect("iam log").len();
    Recording { from }
}

impl Recording {
    /// Every access logged since the recording started, by any stack of the process.
    pub fn accesses(&self) -> Vec<Access> {
        log().lock().expect("iam log")[self.from..].to_vec()
    }
}

#[derive(Debug)]
struct Recorder {
    log: Log,
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "puck-e2e-iam-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Setup and the tests' own calls run outside every invocation: not a function's.
        let Some(function) = current_function() else { return Ok(()) };
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_owned(), m.name().to_owned()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        let body = context.request().body().bytes().unwrap_or_default();
        let needed = needs(&service, &operation, body);
        let mut log = self.log.lock().expect("iam log");
        log.extend(needed.into_iter().map(|(action, target)| Access { function: function.clone(), action, target }));
        Ok(())
    }
}

/// The IAM actions and targets one request needs: DynamoDB transactions by their items' actions,
/// SQS batch calls by their single-message action (AWS authorises them so).
pub fn needs(service: &str, operation: &str, body: &[u8]) -> Vec<(String, Target)> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let service = service.to_ascii_lowercase().replace([' ', '-'], "");
    let unknown = || vec![(format!("{service}:{operation}"), Target::Unknown(String::from_utf8_lossy(body).into()))];
    let table = |v: &Value| v.as_str().map(|name| Target::Table { name: name.to_owned(), index: None });
    match service.as_str() {
        "dynamodb" => {
            let out: Vec<(String, Target)> = match operation {
                "TransactWriteItems" | "TransactGetItems" => {
                    let items = json["TransactItems"].as_array().cloned().unwrap_or_default();
                    items
                        .iter()
                        .filter_map(|item| {
                            let (kind, inner) = item.as_object()?.iter().next()?;
                            let action = match kind.as_str() {
                                "Put" => "PutItem",
                                "Update" => "UpdateItem",
                                "Delete" => "DeleteItem",
                                "ConditionCheck" => "ConditionCheckItem",
                                "Get" => "GetItem",
                                _ => return None,
                            };
                            Some((format!("dynamodb:{action}"), table(&inner["TableName"])?))
                        })
                        .collect()
                }
                "BatchWriteItem" | "BatchGetItem" => json["RequestItems"]
                    .as_object()
                    .map(|m| {
                        m.keys()
                            .map(|t| (format!("dynamodb:{operation}"), Target::Table { name: t.clone(), index: None }))
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => match json["TableName"].as_str() {
                    Some(name) => {
                        let index = json["IndexName"].as_str().map(str::to_owned);
                        vec![(format!("dynamodb:{operation}"), Target::Table { name: name.to_owned(), index })]
                    }
                    None => vec![],
                },
            };
            if out.is_empty() {
                unknown()
            } else {
                out
            }
        }
        "sqs" => {
            let action = operation.strip_suffix("Batch").unwrap_or(operation);
            let url = json["QueueUrl"].as_str().map(str::to_owned).or_else(|| form_value(body, "QueueUrl"));
            match url {
                Some(url) => vec![(format!("sqs:{action}"), Target::Queue { url })],
                None => unknown(),
            }
        }
        // AssumeRole without an ExternalId would break the customer's trust condition (and the
        // template's `sts:ExternalId` condition): the check cannot read it as a grant.
        "sts" => match (form_value(body, "RoleArn"), form_value(body, "ExternalId")) {
            (Some(arn), Some(external_id)) => vec![(format!("sts:{operation}"), Target::Role { arn, external_id })],
            _ => unknown(),
        },
        "secretsmanager" => match json["SecretId"].as_str() {
            Some(id) => vec![(format!("secretsmanager:{operation}"), Target::Secret { id: id.to_owned() })],
            None => unknown(),
        },
        _ => unknown(),
    }
}

/// `name`'s value in an `application/x-www-form-urlencoded` body (SQS's older query protocol).
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One statement of a function's role, as `iam_policies.py` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct Statement {
    pub effect: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// `inline`, or the managed policy's ARN.
    pub source: String,
}

/// Every function's expanded policy and the placeholders its ARNs use.
#[derive(Debug, Clone, Deserialize)]
pub struct Policies {
    pub region: String,
    pub account: String,
    pub functions: BTreeMap<String, Vec<Statement>>,
}

/// Runs `infra/scripts/iam_policies.py` on `template` with the project's `.venv` Python.
///
/// # Panics
/// When the script fails (is `aws-sam-translator` installed? run infra/scripts/bootstrap-python.sh).
pub fn load_policies(template: &Path) -> Policies {
    let root = crate::delivery::repo_root();
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("infra/scripts/iam_policies.py"))
        .arg(template)
        .output()
        .unwrap_or_else(|e| panic!("cannot run iam_policies.py ({e}); run infra/scripts/bootstrap-python.sh"));
    assert!(out.status.success(), "iam_policies.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("iam_policies.py prints JSON")
}

impl Policies {
    /// The placeholder ARN of what `target` names, if it is one of `provisioned`'s resources
    /// (`None`: another stack's, or not a resource at all).
    pub fn arn_of(&self, provisioned: &Provisioned, target: &Target) -> Option<String> {
        if let Target::Role { arn, .. } = target {
            // Customers' roles are no resource of the stack; the grant names them by pattern.
            return Some(arn.clone());
        }
        let (region, account) = (&self.region, &self.account);
        provisioned.resources.iter().find_map(|(logical, physical)| match (physical, target) {
            (Physical::Table { name, .. }, Target::Table { name: n, index }) if name == n => Some(match index {
                Some(i) => format!("arn:aws:dynamodb:{region}:{account}:table/{logical}/index/{i}"),
                None => format!("arn:aws:dynamodb:{region}:{account}:table/{logical}"),
            }),
            (Physical::Queue { url, .. }, Target::Queue { url: u }) if url == u => {
                Some(format!("arn:aws:sqs:{region}:{account}:{logical}"))
            }
            (Physical::Secret { name, arn }, Target::Secret { id }) if name == id || arn == id => {
                Some(format!("arn:aws:secretsmanager:{region}:{account}:secret:{logical}"))
            }
            _ => None,
        })
    }

    /// Whether `function`'s role allows `action` on `resource`: an Allow statement matches and no
    /// Deny does.
    pub fn allows(&self, function: &str, action: &str, resource: &str) -> bool {
        let statements = self.functions.get(function).map(Vec::as_slice).unwrap_or_default();
        let matching = |effect: &str| {
            statements.iter().filter(|s| s.effect == effect).any(|s| statement_matches(s, action, resource))
        };
        matching("Allow") && !matching("Deny")
    }
}

fn statement_matches(s: &Statement, action: &str, resource: &str) -> bool {
    s.actions.iter().any(|a| wildcard(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
        && s.resources.iter().any(|r| wildcard(r, resource))
}

/// IAM's pattern rule: `*` matches any run of characters, `?` any one.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // matches[j]: pattern[..i] matches text[..j]
    let mut matches = vec![false; t.len() + 1];
    matches[0] = true;
    for pc in p {
        let mut next = vec![false; t.len() + 1];
        if pc == '*' {
            let mut any = false;
            for j in 0..=t.len() {
                any |= matches[j];
                next[j] = any;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = matches[j - 1] && (pc == '?' || pc == t[j - 1]);
            }
        }
        matches = next;
    }
    matches[t.len()]
}

/// A needed access resolved to the placeholder ARN: `(function, action, resource)`.
pub type Need = (String, String, String);

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// `function: action on resource` the function's role does not allow.
    pub denied: Vec<String>,
    /// `function: action on resource` an inline statement grants that no call used.
    pub unused: Vec<String>,
    /// Functions with at least one access.
    pub reached: BTreeSet<String>,
}

/// Checks `needs` against `policies`. Needs of [`COLD_START`] (building the context: the master
/// key) count for every function reached with other needs, as each builds its own in AWS.
pub fn check(policies: &Policies, needs: &BTreeSet<Need>) -> Report {
    let mut report = Report::default();
    let cold: Vec<&Need> = needs.iter().filter(|n| n.0 == COLD_START).collect();
    report.reached = needs.iter().map(|n| n.0.clone()).filter(|f| f != COLD_START).collect();
    let mut all: BTreeSet<Need> = needs.iter().filter(|n| n.0 != COLD_START).cloned().collect();
    for function in &report.reached {
        all.extend(cold.iter().map(|(_, a, r)| (function.clone(), a.clone(), r.clone())));
    }
    for (function, action, resource) in &all {
        if !policies.functions.contains_key(function) {
            report.denied.push(format!("{function}: not a function of the template ({action} on {resource})"));
        } else if !policies.allows(function, action, resource) {
            report.denied.push(format!("{function}: {action} on {resource}"));
        }
    }
    for (function, statements) in &policies.functions {
        for s in statements.iter().filter(|s| s.effect == "Allow" && s.source == "inline") {
            for action in &s.actions {
                for resource in &s.resources {
                    let used = all.iter().any(|(f, a, r)| {
                        f == function
                            && wildcard(&action.to_ascii_lowercase(), &a.to_ascii_lowercase())
                            && wildcard(resource, r)
                    });
                    if !used {
                        report.unused.push(format!("{function}: {action} on {resource}"));
                    }
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_follow_iam() {
        assert!(wildcard("dynamodb:*", "dynamodb:PutItem"));
        assert!(wildcard("arn:*:table/T", "arn:aws:dynamodb:r:a:table/T"));
        assert!(!wildcard("arn:*:table/T", "arn:aws:dynamodb:r:a:table/T/index/x"));
        assert!(wildcard("sqs:?endMessage", "sqs:SendMessage"));
        assert!(!wildcard("sqs:SendMessage", "sqs:SendMessageBatch"));
        assert!(wildcard("*", ""));
    }

    #[test]
    fn transactions_need_their_items_actions_and_batches_their_own() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t"}}, {"Update": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "t"}}
        ]});
        let got: Vec<String> =
            needs("DynamoDB", "TransactWriteItems", body.to_string().as_bytes()).into_iter().map(|(a, _)| a).collect();
        assert_eq!(got, ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]);
        let batch = json!({"RequestItems": {"t": []}});
        assert_eq!(needs("DynamoDB", "BatchWriteItem", batch.to_string().as_bytes())[0].0, "dynamodb:BatchWriteItem");
        let q = json!({"TableName": "t", "IndexName": "by_sub"});
        assert_eq!(
            needs("DynamoDB", "Query", q.to_string().as_bytes())[0].1,
            Target::Table { name: "t".into(), index: Some("by_sub".into()) }
        );
        let sqs = json!({"QueueUrl": "http://q"});
        assert_eq!(needs("SQS", "SendMessageBatch", sqs.to_string().as_bytes())[0].0, "sqs:SendMessage");
        assert_eq!(form_value(b"Action=SendMessage&QueueUrl=http%3A%2F%2Fq", "QueueUrl").as_deref(), Some("http://q"));
        let assume = b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&ExternalId=acct_1";
        let role = Target::Role { arn: "arn:aws:iam::1:role/r".into(), external_id: "acct_1".into() };
        assert_eq!(needs("STS", "AssumeRole", assume)[0], ("sts:AssumeRole".into(), role));
        assert!(matches!(needs("STS", "AssumeRole", b"Action=AssumeRole&RoleArn=x")[0].1, Target::Unknown(_)));
    }

    #[test]
    fn a_call_without_a_grant_is_denied_and_a_grant_without_a_call_unused() {
        let st = |effect: &str, actions: &[&str], resources: &[&str]| Statement {
            effect: effect.into(),
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
            resources: resources.iter().map(|s| (*s).to_owned()).collect(),
            source: "inline".into(),
        };
        let policies = Policies {
            region: "r".into(),
            account: "a".into(),
            functions: [(
                "F".to_owned(),
                vec![
                    st("Allow", &["dynamodb:GetItem", "dynamodb:PutItem"], &["T"]),
                    st("Deny", &["dynamodb:PutItem"], &["T"]),
                ],
            )]
            .into(),
        };
        let need = |f: &str, a: &str| (f.to_owned(), a.to_owned(), "T".to_owned());
        let report = check(&policies, &[need("F", "dynamodb:GetItem"), need("F", "dynamodb:Query")].into());
        assert_eq!(report.denied, ["F: dynamodb:Query on T"]);
        assert_eq!(report.unused, ["F: dynamodb:PutItem on T"]);
        let report = check(&policies, &[need("F", "dynamodb:PutItem"), need(COLD_START, "dynamodb:Scan")].into());
        assert_eq!(
            report.denied,
            ["F: dynamodb:PutItem on T", "F: dynamodb:Scan on T"],
            "Deny wins; cold start counts"
        );
    }
}
