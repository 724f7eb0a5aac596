//! Creates the template's tables, queues and secrets against moto (or any AWS endpoint), and
//! resolves the intrinsics that refer to them.
//!
//! Resources are taken from template.yaml in dependency order (a queue's redrive target first),
//! under physical names `<prefix>-<LogicalId>` so many stacks can share one moto. Types the local
//! stack does not emulate (functions, the HTTP API, alarms) are skipped here; functions are run
//! in-process by the gateway and pollers instead.

use crate::moto::ServiceEndpoints;
use crate::template::{references, sub_variables, Template};
use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ProvisionedThroughput, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// The region the local stack pretends to be in (and passes to the SDK).
pub const LOCAL_REGION: &str = "us-east-1";
/// moto's default account id.
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";

const TABLE: &str = "AWS::DynamoDB::Table";
const QUEUE: &str = "AWS::SQS::Queue";
const SECRET: &str = "AWS::SecretsManager::Secret";

/// A provisioned resource, with what `Ref` and `Fn::GetAtt` yield for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Physical {
    Table { name: String, arn: String },
    Queue { name: String, url: String, arn: String },
    Secret { name: String, arn: String },
}

/// The SDK clients provisioning needs.
#[derive(Debug, Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    /// Clients against `endpoint` (moto) with static credentials (moto accepts any).
    pub async fn new(endpoint: &str, access_key_id: &str, secret_access_key: &str) -> Self {
        Self::for_endpoints(&ServiceEndpoints::all(endpoint), access_key_id, secret_access_key).await
    }

    /// Clients each against its service's endpoint (one moto per service).
    pub async fn for_endpoints(endpoints: &ServiceEndpoints, access_key_id: &str, secret_access_key: &str) -> Self {
        let credentials =
            aws_sdk_sqs::config::Credentials::new(access_key_id, secret_access_key, None, None, "puck-local");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(LOCAL_REGION))
            .credentials_provider(credentials)
            .load()
            .await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&config).endpoint_url(&endpoints.dynamodb).build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&config).endpoint_url(&endpoints.sqs).build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&config).endpoint_url(&endpoints.secrets_manager).build(),
            ),
        }
    }
}

/// Everything provisioned for one stack, and the resolver for intrinsics over it.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// Logical id → physical resource.
    pub resources: BTreeMap<String, Physical>,
    /// Parameter name → value (the template defaults).
    pub parameters: BTreeMap<String, String>,
    /// `AWS::StackName`: the resource prefix.
    pub stack_name: String,
}

impl Provisioned {
    /// Resolves `Ref`, `Fn::GetAtt`, `Fn::Sub` and `Fn::Join` over parameters, pseudo parameters
    /// and provisioned resources; other values are returned as they are.
    pub fn resolve(&self, value: &Value) -> Result<Value> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().map(|(k, v)| (k.as_str(), v)).unwrap_or(("", &Value::Null));
                match key {
                    "Ref" => {
                        let name = arg.as_str().ok_or_else(|| anyhow!("Ref needs a name"))?;
                        Ok(Value::String(self.reference(name)?))
                    }
                    "Fn::GetAtt" => {
                        let res = arg.get(0).and_then(Value::as_str).ok_or_else(|| anyhow!("bad Fn::GetAtt"))?;
                        let attr = arg.get(1).and_then(Value::as_str).ok_or_else(|| anyhow!("bad Fn::GetAtt"))?;
                        Ok(Value::String(self.attribute(res, attr)?))
                    }
                    "Fn::Sub" => self.substitute(arg).map(Value::String),
                    "Fn::Join" => {
                        let sep = arg.get(0).and_then(Value::as_str).ok_or_else(|| anyhow!("bad Fn::Join"))?;
                        let items = arg.get(1).ok_or_else(|| anyhow!("bad Fn::Join"))?;
                        let items = self.resolve(items)?;
                        let parts = items
                            .as_array()
                            .ok_or_else(|| anyhow!("Fn::Join needs a list"))?
                            .iter()
                            .map(scalar_string)
                            .collect::<Result<Vec<_>>>()?;
                        Ok(Value::String(parts.join(sep)))
                    }
                    k if k.starts_with("Fn::") => bail!("intrinsic {k} is not supported by the local stack"),
                    _ => self.resolve_map(map),
                }
            }
            Value::Object(map) => self.resolve_map(map),
            Value::Array(items) => Ok(Value::Array(items.iter().map(|v| self.resolve(v)).collect::<Result<_>>()?)),
            other => Ok(other.clone()),
        }
    }

    /// Resolves a value that must end up a string (env vars, attributes).
    pub fn resolve_string(&self, value: &Value) -> Result<String> {
        scalar_string(&self.resolve(value)?)
    }

    fn resolve_map(&self, map: &Map<String, Value>) -> Result<Value> {
        let mut out = Map::new();
        for (k, v) in map {
            out.insert(k.clone(), self.resolve(v)?);
        }
        Ok(Value::Object(out))
    }

    fn reference(&self, name: &str) -> Result<String> {
        match name {
            "AWS::Region" => return Ok(LOCAL_REGION.to_owned()),
            "AWS::AccountId" => return Ok(LOCAL_ACCOUNT_ID.to_owned()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".to_owned()),
            "AWS::Partition" => return Ok("aws".to_owned()),
            "AWS::StackName" => return Ok(self.stack_name.clone()),
            _ => {}
        }
        if let Some(v) = self.parameters.get(name) {
            return Ok(v.clone());
        }
        match self.resources.get(name) {
            Some(Physical::Table { name, .. }) => Ok(name.clone()),
            Some(Physical::Queue { url, .. }) => Ok(url.clone()),
            Some(Physical::Secret { arn, .. }) => Ok(arn.clone()),
            None => bail!("Ref {name}: not a parameter or a resource the local stack provisions"),
        }
    }

    fn attribute(&self, res: &str, attr: &str) -> Result<String> {
        let physical = self.resources.get(res).ok_or_else(|| anyhow!("Fn::GetAtt {res}.{attr}: unknown resource"))?;
        Ok(match (physical, attr) {
            (Physical::Table { arn, .. }, "Arn") => arn.clone(),
            (Physical::Queue { arn, .. }, "Arn") => arn.clone(),
            (Physical::Queue { name, .. }, "QueueName") => name.clone(),
            (Physical::Queue { url, .. }, "QueueUrl") => url.clone(),
            (Physical::Secret { arn, .. }, "Id") => arn.clone(),
            _ => bail!("Fn::GetAtt {res}.{attr} is not supported by the local stack"),
        })
    }

    fn substitute(&self, arg: &Value) -> Result<String> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(a) => (
                a.first().and_then(Value::as_str).ok_or_else(|| anyhow!("bad Fn::Sub"))?,
                a.get(1).and_then(Value::as_object),
            ),
            _ => bail!("bad Fn::Sub"),
        };
        let mut out = text.to_owned();
        for var in sub_variables(text) {
            let value = if let Some(v) = vars.and_then(|m| m.get(&var)) {
                self.resolve_string(v)?
            } else if let Some((res, attr)) = var.split_once('.').filter(|_| !var.starts_with("AWS::")) {
                self.attribute(res, attr)?
            } else {
                self.reference(&var)?
            };
            out = out.replace(&format!("${{{var}}}"), &value);
        }
        Ok(out.replace("${!", "${"))
    }

    /// The queue provisioned for a logical id.
    pub fn queue(&self, logical_id: &str) -> Result<(&str, &str)> {
        match self.resources.get(logical_id) {
            Some(Physical::Queue { url, arn, .. }) => Ok((url, arn)),
            _ => bail!("{logical_id} is not a provisioned queue"),
        }
    }
}

/// A scalar as the string CloudFormation would pass (numbers and booleans stringified).
fn scalar_string(value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("expected a scalar, got {other}"),
    }
}

/// Provisions every table, queue and secret of the template, in dependency order.
pub async fn provision(template: &Template, clients: &Clients, prefix: &str) -> Result<Provisioned> {
    let mut state = Provisioned {
        resources: BTreeMap::new(),
        parameters: template.parameter_defaults(),
        stack_name: prefix.to_owned(),
    };
    let mut pending: Vec<(&str, &Value)> = template
        .resources()
        .iter()
        .filter(|(_, r)| matches!(r.get("Type").and_then(Value::as_str), Some(TABLE | QUEUE | SECRET)))
        .map(|(id, r)| (id.as_str(), r))
        .collect();
    let provisionable: Vec<String> = pending.iter().map(|(id, _)| (*id).to_owned()).collect();

    while !pending.is_empty() {
        let ready = pending.iter().position(|(_, r)| {
            references(r).iter().all(|dep| !provisionable.contains(dep) || state.resources.contains_key(dep))
        });
        let Some(index) = ready else {
            let ids: Vec<&str> = pending.iter().map(|(id, _)| *id).collect();
            bail!("circular references between {ids:?}");
        };
        let (logical_id, resource) = pending.remove(index);
        let props = state.resolve(resource.get("Properties").unwrap_or(&Value::Null))?;
        let name = format!("{prefix}-{logical_id}");
        let physical = match resource.get("Type").and_then(Value::as_str) {
            Some(TABLE) => create_table(clients, &name, &props).await,
            Some(QUEUE) => create_queue(clients, &name, &props).await,
            Some(SECRET) => create_secret(clients, &name, &props).await,
            _ => continue,
        }
        .with_context(|| format!("Failed to provision {logical_id}"))?;
        tracing::info!(logical_id, physical = ?physical, "provisioned");
        state.resources.insert(logical_id.to_owned(), physical);
    }
    Ok(state)
}

fn key_schema(value: &Value) -> Result<Vec<KeySchemaElement>> {
    value
        .as_array()
        .ok_or_else(|| anyhow!("KeySchema must be a list"))?
        .iter()
        .map(|k| {
            Ok(KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                .key_type(KeyType::from(k["KeyType"].as_str().unwrap_or_default()))
                .build()?)
        })
        .collect()
}

fn throughput(value: Option<&Value>) -> Result<Option<ProvisionedThroughput>> {
    let Some(v) = value else { return Ok(None) };
    let units = |k: &str| v.get(k).and_then(|x| x.as_i64().or_else(|| x.as_str()?.parse().ok())).unwrap_or(1);
    Ok(Some(
        ProvisionedThroughput::builder()
            .read_capacity_units(units("ReadCapacityUnits"))
            .write_capacity_units(units("WriteCapacityUnits"))
            .build()?,
    ))
}

async fn create_table(clients: &Clients, name: &str, props: &Value) -> Result<Physical> {
    let attributes = props["AttributeDefinitions"]
        .as_array()
        .ok_or_else(|| anyhow!("AttributeDefinitions must be a list"))?
        .iter()
        .map(|a| {
            Ok(AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().unwrap_or_default())
                .attribute_type(ScalarAttributeType::from(a["AttributeType"].as_str().unwrap_or_default()))
                .build()?)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut indexes = Vec::new();
    for gsi in props.get("GlobalSecondaryIndexes").and_then(Value::as_array).into_iter().flatten() {
        let projection = &gsi["Projection"];
        let non_key: Option<Vec<String>> = projection
            .get("NonKeyAttributes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(gsi["IndexName"].as_str().unwrap_or_default())
                .set_key_schema(Some(key_schema(&gsi["KeySchema"])?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            projection.get("ProjectionType").and_then(Value::as_str).unwrap_or("ALL"),
                        ))
                        .set_non_key_attributes(non_key)
                        .build(),
                )
                .set_provisioned_throughput(throughput(gsi.get("ProvisionedThroughput"))?)
                .build()?,
        );
    }
    let billing = props.get("BillingMode").and_then(Value::as_str).unwrap_or("PROVISIONED");
    let out = clients
        .dynamodb
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&props["KeySchema"])?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .billing_mode(BillingMode::from(billing))
        .set_provisioned_throughput(throughput(props.get("ProvisionedThroughput"))?)
        .send()
        .await
        .context("CreateTable")?;
    let arn = out
        .table_description()
        .and_then(|d| d.table_arn())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:table/{name}"));
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        let enabled =
            matches!(ttl.get("Enabled"), Some(Value::Bool(true))) || ttl.get("Enabled") == Some(&Value::from("true"));
        if enabled {
            clients
                .dynamodb
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(ttl["AttributeName"].as_str().unwrap_or_default())
                        .enabled(true)
                        .build()?,
                )
                .send()
                .await
                .context("UpdateTimeToLive")?;
        }
    }
    Ok(Physical::Table { name: name.to_owned(), arn })
}

/// CloudFormation `AWS::SQS::Queue` properties that are SQS queue attributes of the same name.
const QUEUE_ATTRIBUTES: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedrivePolicy",
    "RedriveAllowPolicy",
];

async fn create_queue(clients: &Clients, name: &str, props: &Value) -> Result<Physical> {
    let mut attributes = HashMap::new();
    if let Some(map) = props.as_object() {
        for (key, value) in map {
            if !QUEUE_ATTRIBUTES.contains(&key.as_str()) {
                tracing::debug!(queue = name, property = key.as_str(), "queue property not emulated");
                continue;
            }
            let text = match value {
                // JSON-valued attributes; numbers stay numbers (maxReceiveCount).
                Value::Object(obj) => {
                    let normalised: Map<String, Value> = obj
                        .iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or_else(|_| v.clone()),
                                other => other.clone(),
                            };
                            (k.clone(), v)
                        })
                        .collect();
                    Value::Object(normalised).to_string()
                }
                other => scalar_string(other)?,
            };
            attributes.insert(QueueAttributeName::from(key.as_str()), text);
        }
    }
    let queue_name = if props.get("FifoQueue").is_some_and(|v| v == true || v == "true") {
        format!("{name}.fifo")
    } else {
        name.to_owned()
    };
    let url = clients
        .sqs
        .create_queue()
        .queue_name(&queue_name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .context("CreateQueue")?
        .queue_url
        .ok_or_else(|| anyhow!("CreateQueue returned no URL"))?;
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("GetQueueAttributes")?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow!("queue {queue_name} has no QueueArn"))?;
    Ok(Physical::Queue { name: queue_name, url, arn })
}

async fn create_secret(clients: &Clients, name: &str, props: &Value) -> Result<Physical> {
    let value = if let Some(s) = props.get("SecretString").and_then(Value::as_str) {
        s.to_owned()
    } else {
        let generate = props.get("GenerateSecretString").cloned().unwrap_or(Value::Null);
        let length = generate.get("PasswordLength").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        // Alphanumeric satisfies ExcludePunctuation and is a valid password of any other policy.
        Alphanumeric.sample_string(&mut rand::rngs::OsRng, length.unwrap_or(32) as usize)
    };
    let out = clients
        .secrets
        .create_secret()
        .name(name)
        .secret_string(value)
        .set_description(props.get("Description").and_then(Value::as_str).map(str::to_owned))
        .send()
        .await
        .context("CreateSecret")?;
    let arn = out.arn.ok_or_else(|| anyhow!("CreateSecret returned no ARN"))?;
    Ok(Physical::Secret { name: name.to_owned(), arn })
}

/// `Globals.Function.Environment.Variables` with every intrinsic resolved.
pub fn function_environment(template: &Template, provisioned: &Provisioned) -> Result<BTreeMap<String, String>> {
    template
        .global_env()
        .iter()
        .map(|(k, v)| Ok((k.clone(), provisioned.resolve_string(v).with_context(|| format!("Globals env {k}"))?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state() -> Provisioned {
        let mut resources = BTreeMap::new();
        resources.insert("T".into(), Physical::Table { name: "p-T".into(), arn: "arn:t".into() });
        resources
            .insert("Q".into(), Physical::Queue { name: "p-Q".into(), url: "http://q".into(), arn: "arn:q".into() });
        resources.insert("S".into(), Physical::Secret { name: "p-S".into(), arn: "arn:s".into() });
        Provisioned { resources, parameters: [("N".into(), "15".into())].into(), stack_name: "p".into() }
    }

    #[test]
    fn resolves_refs_getatts_and_subs() {
        let s = state();
        assert_eq!(s.resolve_string(&json!({"Ref": "T"})).unwrap(), "p-T");
        assert_eq!(s.resolve_string(&json!({"Ref": "Q"})).unwrap(), "http://q");
        assert_eq!(s.resolve_string(&json!({"Ref": "S"})).unwrap(), "arn:s");
        assert_eq!(s.resolve_string(&json!({"Ref": "N"})).unwrap(), "15");
        assert_eq!(s.resolve_string(&json!({"Fn::GetAtt": ["Q", "Arn"]})).unwrap(), "arn:q");
        assert_eq!(
            s.resolve_string(&json!({"Fn::Sub": "${T.Arn}/index/*@${AWS::Region}"})).unwrap(),
            "arn:t/index/*@us-east-1"
        );
        assert_eq!(
            s.resolve(&json!({"deadLetterTargetArn": {"Fn::GetAtt": ["Q", "Arn"]}, "maxReceiveCount": {"Ref": "N"}}))
                .unwrap(),
            json!({"deadLetterTargetArn": "arn:q", "maxReceiveCount": "15"})
        );
    }

    #[test]
    fn unsupported_intrinsics_are_errors_naming_them() {
        let err = state().resolve(&json!({"Fn::If": ["C", "a", "b"]})).unwrap_err();
        assert!(err.to_string().contains("Fn::If"));
        assert!(state().resolve(&json!({"Ref": "Nope"})).is_err());
    }
}
