//! Payload filters: a subscription's condition on an event's `data` (docs/api.md, "Payload filters").
//!
//! The filter a caller writes as JSON is parsed once, when the subscription is written or read
//! from the store, into a [`PayloadFilter`]: every operator known, every operand of the right
//! type, at most [`MAX_DEPTH`] objects deep and [`MAX_BYTES`] of JSON. Publishing then only
//! evaluates the parsed form ([`PayloadFilter::matches`]), in memory, against each event's data;
//! it can neither fail nor meet an operator it does not know. Serialising gives back the filter's
//! JSON with its keys in one canonical order, so parse → serialise → parse is the identity.

use crate::error::ValidationError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Deepest nesting of filter objects (the filter itself is 1; operands are not counted).
pub const MAX_DEPTH: usize = 5;
/// Largest filter, in bytes of compact JSON.
pub const MAX_BYTES: usize = 4096;

/// A parsed `filters.payload`: holds for an event's `data` when every condition does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFilter(Node);

/// One filter object: each of its keys is a condition on the value the object applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node(BTreeMap<String, Cond>);

/// What one key of a filter object asks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    /// A field name with a literal: the field equals it.
    Equals(Value),
    /// A field name with an object: that filter holds for the field (missing when absent).
    Nested(Node),
    /// A comparison operator on the value itself.
    Op(Op),
    /// `$or`: at least one filter holds.
    Any(Vec<Node>),
    /// `$and`: every filter holds.
    All(Vec<Node>),
    /// `$not`: the filter does not hold.
    Not(Box<Node>),
}

/// A comparison operator with its operand, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(Value),
    Neq(Value),
    Gt(Bound),
    Gte(Bound),
    Lt(Bound),
    Lte(Bound),
    In(Vec<Value>),
    Nin(Vec<Value>),
    StartsWith(String),
    EndsWith(String),
    Contains(Value),
    Exist(bool),
}

/// The operand of an ordering operator: numbers compare as numbers, strings lexically.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bound {
    Number(Number),
    String(String),
}

/// The error of a filter at `path`, e.g. `filters.payload.host.$startsWith: must be a string`.
fn invalid(path: &str, problem: &str) -> ValidationError {
    ValidationError::new(path, format!("{path}: {problem}"))
}

impl PayloadFilter {
    /// Parses `value`, the filter at `path` (`filters.payload`); the error names the exact path
    /// of what is wrong.
    pub fn parse(path: &str, value: &Value) -> Result<Self, ValidationError> {
        if value.to_string().len() > MAX_BYTES {
            return Err(invalid(path, &format!("must be at most {MAX_BYTES} bytes of JSON")));
        }
        let obj = value.as_object().ok_or_else(|| invalid(path, "must be an object"))?;
        Node::parse(path, obj, 1).map(Self)
    }

    /// Whether the filter holds for an event's `data`.
    pub fn matches(&self, data: &Value) -> bool {
        self.0.holds(Some(data))
    }

    /// The filter as JSON, keys in canonical order.
    pub fn to_json(&self) -> Value {
        self.0.to_json()
    }
}

impl Node {
    fn parse(path: &str, obj: &Map<String, Value>, depth: usize) -> Result<Self, ValidationError> {
        if depth > MAX_DEPTH {
            return Err(invalid(path, &format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let mut conds = BTreeMap::new();
        for (key, value) in obj {
            let here = format!("{path}.{}", crate::ids::truncate_for_message(key));
            let cond = if key.starts_with('$') {
                Cond::parse_operator(&here, key, value, depth)?
            } else if key.is_empty() {
                return Err(invalid(path, "field names must not be empty"));
            } else {
                match value {
                    Value::Object(o) => Cond::Nested(Self::parse_non_empty(&here, o, depth + 1)?),
                    literal => Cond::Equals(literal.clone()),
                }
            };
            conds.insert(key.clone(), cond);
        }
        Ok(Self(conds))
    }

    /// A filter object below the top, which must ask something: `{}` would hold for anything,
    /// even a missing field.
    fn parse_non_empty(path: &str, obj: &Map<String, Value>, depth: usize) -> Result<Self, ValidationError> {
        if obj.is_empty() {
            return Err(invalid(path, "must not be an empty object (use {\"$eq\": {}} to match an empty object)"));
        }
        Self::parse(path, obj, depth)
    }

    /// `value` is what the object applies to; None when that field is missing.
    fn holds(&self, value: Option<&Value>) -> bool {
        self.0.iter().all(|(key, cond)| match cond {
            Cond::Equals(literal) => field(value, key).is_some_and(|v| json_eq(v, literal)),
            Cond::Nested(node) => node.holds(field(value, key)),
            Cond::Op(op) => op.holds(value),
            Cond::Any(nodes) => nodes.iter().any(|n| n.holds(value)),
            Cond::All(nodes) => nodes.iter().all(|n| n.holds(value)),
            Cond::Not(node) => !node.holds(value),
        })
    }

    fn to_json(&self) -> Value {
        let list = |nodes: &[Node]| Value::Array(nodes.iter().map(Node::to_json).collect());
        let obj = self.0.iter().map(|(key, cond)| {
            let value = match cond {
                Cond::Equals(literal) => literal.clone(),
                Cond::Nested(node) => node.to_json(),
                Cond::Op(op) => op.operand(),
                Cond::Any(nodes) | Cond::All(nodes) => list(nodes),
                Cond::Not(node) => node.to_json(),
            };
            (key.clone(), value)
        });
        Value::Object(obj.collect())
    }
}

/// The field `key` of `value`; None when `value` is missing or not an object, or lacks it.
fn field<'a>(value: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    value.and_then(Value::as_object).and_then(|o| o.get(key))
}

impl Cond {
    /// The condition of a `$` key at `path`.
    fn parse_operator(path: &str, key: &str, value: &Value, depth: usize) -> Result<Self, ValidationError> {
        match key {
            "$or" | "$and" => {
                let items = value
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| invalid(path, "must be a non-empty array of filter objects"))?;
                let mut nodes = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let here = format!("{path}[{i}]");
                    let obj = item.as_object().ok_or_else(|| invalid(&here, "must be a filter object"))?;
                    nodes.push(Node::parse_non_empty(&here, obj, depth + 1)?);
                }
                Ok(if key == "$or" { Self::Any(nodes) } else { Self::All(nodes) })
            }
            "$not" => {
                let obj = value.as_object().ok_or_else(|| invalid(path, "must be a filter object"))?;
                Ok(Self::Not(Box::new(Node::parse_non_empty(path, obj, depth + 1)?)))
            }
            _ => Op::parse(path, key, value).map(Self::Op),
        }
    }
}

impl Op {
    fn parse(path: &str, key: &str, value: &Value) -> Result<Self, ValidationError> {
        let bound = || match value {
            Value::Number(n) => Ok(Bound::Number(n.clone())),
            Value::String(s) => Ok(Bound::String(s.clone())),
            _ => Err(invalid(path, "must be a number or a string")),
        };
        let string = || value.as_str().map(str::to_owned).ok_or_else(|| invalid(path, "must be a string"));
        let list = || value.as_array().cloned().ok_or_else(|| invalid(path, "must be an array"));
        Ok(match key {
            "$eq" => Self::Eq(value.clone()),
            "$neq" => Self::Neq(value.clone()),
            "$gt" => Self::Gt(bound()?),
            "$gte" => Self::Gte(bound()?),
            "$lt" => Self::Lt(bound()?),
            "$lte" => Self::Lte(bound()?),
            "$in" => Self::In(list()?),
            "$nin" => Self::Nin(list()?),
            "$startsWith" => Self::StartsWith(string()?),
            "$endsWith" => Self::EndsWith(string()?),
            "$contains" => Self::Contains(value.clone()),
            "$exist" => Self::Exist(value.as_bool().ok_or_else(|| invalid(path, "must be a boolean"))?),
            _ => return Err(invalid(path, "unknown operator")),
        })
    }

    /// Whether the operator holds for `value` (None: the field is missing, which only `$neq`,
    /// `$nin` and `$exist: false` accept).
    fn holds(&self, value: Option<&Value>) -> bool {
        let ordered =
            |bound: &Bound, want: fn(Ordering) -> bool| value.and_then(|v| compare(v, bound)).is_some_and(want);
        match self {
            Self::Eq(literal) => value.is_some_and(|v| json_eq(v, literal)),
            Self::Neq(literal) => !value.is_some_and(|v| json_eq(v, literal)),
            Self::Gt(b) => ordered(b, Ordering::is_gt),
            Self::Gte(b) => ordered(b, Ordering::is_ge),
            Self::Lt(b) => ordered(b, Ordering::is_lt),
            Self::Lte(b) => ordered(b, Ordering::is_le),
            Self::In(list) => value.is_some_and(|v| list.iter().any(|l| json_eq(v, l))),
            Self::Nin(list) => !value.is_some_and(|v| list.iter().any(|l| json_eq(v, l))),
            Self::StartsWith(s) => value.and_then(Value::as_str).is_some_and(|v| v.starts_with(s.as_str())),
            Self::EndsWith(s) => value.and_then(Value::as_str).is_some_and(|v| v.ends_with(s.as_str())),
            Self::Contains(needle) => match value {
                Some(Value::String(v)) => needle.as_str().is_some_and(|n| v.contains(n)),
                Some(Value::Array(items)) => items.iter().any(|i| json_eq(i, needle)),
                _ => false,
            },
            Self::Exist(want) => value.is_some() == *want,
        }
    }

    fn operand(&self) -> Value {
        match self {
            Self::Eq(v) | Self::Neq(v) | Self::Contains(v) => v.clone(),
            Self::Gt(b) | Self::Gte(b) | Self::Lt(b) | Self::Lte(b) => match b {
                Bound::Number(n) => Value::Number(n.clone()),
                Bound::String(s) => Value::String(s.clone()),
            },
            Self::In(list) | Self::Nin(list) => Value::Array(list.clone()),
            Self::StartsWith(s) | Self::EndsWith(s) => Value::String(s.clone()),
            Self::Exist(b) => Value::Bool(*b),
        }
    }
}

/// How `value` orders against `bound`; None when their types differ (the condition is false).
fn compare(value: &Value, bound: &Bound) -> Option<Ordering> {
    match (value, bound) {
        (Value::Number(v), Bound::Number(b)) => compare_numbers(v, b),
        (Value::String(v), Bound::String(b)) => Some(v.as_str().cmp(b.as_str())),
        _ => None,
    }
}

/// Numbers compare by value, whatever their JSON spelling (`1`, `1.0`, `1e0`).
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// JSON equality with numbers compared by value; arrays and objects compare whole.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(xs), Value::Array(ys)) => xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_eq(x, y)),
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len() && xs.iter().all(|(k, x)| ys.get(k).is_some_and(|y| json_eq(x, y)))
        }
        _ => a == b,
    }
}

impl Serialize for PayloadFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PayloadFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::parse("filters.payload", &value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
