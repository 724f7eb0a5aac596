//! AWS destinations: a subscription that delivers to the customer's SQS queue or EventBridge bus
//! (given as `destination` instead of `url`) rather than to an HTTPS receiver.
//!
//! Every part is parsed once, at create or update: the region, account and name of the queue
//! URL, the bus ARN and the role ARN are typed values here, so the dispatcher never handles a
//! malformed ARN and a caller learns of a typo as a 400 naming the field, not as a failed
//! delivery days later. The stored record keeps the JSON the caller gave (the same shape the API
//! shows) and is parsed again on read, so a record can only hold a valid destination.

use crate::error::AppError;
use crate::validation::quoted;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Where an AWS-destination subscription delivers, and the role the service assumes to do it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct AwsDestination {
    /// The queue or bus.
    pub target: AwsTarget,
    /// The customer's role, assumed with STS (`ExternalId` = the Puck account id) for each send.
    pub role: RoleArn,
}

/// The two kinds of AWS destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsTarget {
    /// An SQS queue: one message per delivery.
    Sqs(QueueUrl),
    /// An EventBridge event bus: one `PutEvents` entry per delivery.
    EventBridge(EventBusArn),
}

/// `https://sqs.<region>.amazonaws.com/<account>/<name>`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl {
    url: String,
    /// AWS region of the queue, e.g. `eu-west-1`: the region the send is signed for.
    pub region: String,
    /// The 12-digit AWS account that owns the queue.
    pub account: String,
    /// The queue name; a name ending in `.fifo` is a FIFO queue.
    pub name: String,
}

/// `arn:aws:events:<region>:<account>:event-bus/<name>`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBusArn {
    arn: String,
    /// AWS region of the bus: the region the `PutEvents` call is signed for.
    pub region: String,
    /// The 12-digit AWS account that owns the bus.
    pub account: String,
    /// The bus name (`default` for the account's default bus).
    pub name: String,
}

/// `arn:aws:iam::<account>:role/<path/><name>`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    /// The 12-digit AWS account that owns the role.
    pub account: String,
    /// The role name (its last path segment).
    pub name: String,
}

const TYPES: &str = "sqs or eventbridge";

impl QueueUrl {
    /// Parses a queue URL as AWS gives it (`GetQueueUrl`, the console); `field` names it in the
    /// error.
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let bad = || {
            AppError::validation(field, format!("{field} must be https://sqs.<region>.amazonaws.com/<account>/<name>"))
        };
        let rest = raw.strip_prefix("https://sqs.").ok_or_else(bad)?;
        let (host_rest, path) = rest.split_once('/').ok_or_else(bad)?;
        let region = host_rest.strip_suffix(".amazonaws.com").filter(|r| is_region(r)).ok_or_else(bad)?;
        let (account, name) = path.split_once('/').ok_or_else(bad)?;
        if !is_account(account) || !is_queue_name(name) {
            return Err(bad());
        }
        Ok(Self { url: raw.to_owned(), region: region.to_owned(), account: account.to_owned(), name: name.to_owned() })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// A FIFO queue (its name ends in `.fifo`): sends need a message group and deduplication id.
    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }
}

impl EventBusArn {
    /// Parses an event bus ARN; `field` names it in the error.
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let bad = || {
            AppError::validation(field, format!("{field} must be arn:aws:events:<region>:<account>:event-bus/<name>"))
        };
        let rest = raw.strip_prefix("arn:aws:events:").ok_or_else(bad)?;
        let mut parts = rest.splitn(3, ':');
        let (region, account, resource) =
            (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
        let name = resource.strip_prefix("event-bus/").ok_or_else(bad)?;
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
        if !is_region(region) || !is_account(account) || !name_ok {
            return Err(bad());
        }
        Ok(Self { arn: raw.to_owned(), region: region.to_owned(), account: account.to_owned(), name: name.to_owned() })
    }

    /// The ARN as given (`PutEvents` accepts it as `EventBusName`).
    pub fn as_str(&self) -> &str {
        &self.arn
    }
}

impl RoleArn {
    /// Parses an IAM role ARN (a path before the name is allowed); `field` names it in the error.
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let bad = || AppError::validation(field, format!("{field} must be arn:aws:iam::<account>:role/<name>"));
        let rest = raw.strip_prefix("arn:aws:iam::").ok_or_else(bad)?;
        let (account, resource) = rest.split_once(':').ok_or_else(bad)?;
        let path = resource.strip_prefix("role/").ok_or_else(bad)?;
        let name = path.rsplit('/').next().unwrap_or_default();
        let chars_ok = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
        if !is_account(account) || name.is_empty() || name.len() > 64 || path.len() > 576 || !chars_ok(path) {
            return Err(bad());
        }
        Ok(Self { arn: raw.to_owned(), account: account.to_owned(), name: name.to_owned() })
    }

    /// The ARN as given (`AssumeRole`'s `RoleArn`).
    pub fn as_str(&self) -> &str {
        &self.arn
    }
}

impl AwsDestination {
    /// Parses the `destination` field of a create or update: exactly the fields of its `type`,
    /// each parsed; every error names the field (`destination.queue_url`).
    pub fn parse(value: &Value) -> Result<Self, AppError> {
        let obj =
            value.as_object().ok_or_else(|| AppError::validation("destination", "destination must be an object"))?;
        let kind = match obj.get("type") {
            Some(Value::String(s)) => s.as_str(),
            None | Some(Value::Null) => {
                return Err(AppError::validation("destination.type", format!("destination.type is required ({TYPES})")))
            }
            Some(_) => return Err(AppError::validation("destination.type", "destination.type must be a string")),
        };
        let (known, target) = match kind {
            "sqs" => {
                let url = required(obj, "queue_url")?;
                (["type", "queue_url", "role_arn"], AwsTarget::Sqs(QueueUrl::parse("destination.queue_url", url)?))
            }
            "eventbridge" => {
                let arn = required(obj, "event_bus_arn")?;
                let bus = EventBusArn::parse("destination.event_bus_arn", arn)?;
                (["type", "event_bus_arn", "role_arn"], AwsTarget::EventBridge(bus))
            }
            other => {
                return Err(AppError::validation(
                    "destination.type",
                    format!("destination.type {} is not one of {TYPES}", quoted(other)),
                ))
            }
        };
        if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            let field = format!("destination.{}", crate::ids::truncate_for_message(k));
            return Err(AppError::validation(field.clone(), format!("unknown field {field} for type {kind}")));
        }
        let role = RoleArn::parse("destination.role_arn", required(obj, "role_arn")?)?;
        Ok(Self { target, role })
    }

    /// The public JSON shape, the same the caller gave (nothing in it is secret).
    pub fn view(&self) -> Value {
        match &self.target {
            AwsTarget::Sqs(q) => json!({"type": "sqs", "queue_url": q.as_str(), "role_arn": self.role.as_str()}),
            AwsTarget::EventBridge(b) => {
                json!({"type": "eventbridge", "event_bus_arn": b.as_str(), "role_arn": self.role.as_str()})
            }
        }
    }

    /// What an attempt's `url` shows: the queue URL or the bus ARN.
    pub fn address(&self) -> &str {
        match &self.target {
            AwsTarget::Sqs(q) => q.as_str(),
            AwsTarget::EventBridge(b) => b.as_str(),
        }
    }
}

fn required<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, AppError> {
    let field = format!("destination.{name}");
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(AppError::validation(field.clone(), format!("{field} is required"))),
        Some(_) => Err(AppError::validation(field.clone(), format!("{field} must be a string"))),
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`: lowercase words joined by `-`, ending in a number.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((last, words)) = parts.split_last() else { return false };
    words.len() >= 2
        && words.iter().all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
        && !last.is_empty()
        && last.len() <= 2
        && last.chars().all(|c| c.is_ascii_digit())
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

/// 1–80 characters of `[A-Za-z0-9_-]`, optionally followed by `.fifo`.
fn is_queue_name(s: &str) -> bool {
    let base = s.strip_suffix(".fifo").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 80
        && !base.is_empty()
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl TryFrom<Value> for AwsDestination {
    type Error = String;
    fn try_from(value: Value) -> Result<Self, String> {
        Self::parse(&value).map_err(|e| format!("stored destination: {e}"))
    }
}

impl From<AwsDestination> for Value {
    fn from(d: AwsDestination) -> Value {
        d.view()
    }
}

#[cfg(test)]
mod tests;
