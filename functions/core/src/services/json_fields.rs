//! Strict reading of JSON request bodies: every field typed, unknown fields refused, and every
//! error a message that names the field.

use crate::error::AppError;
use serde_json::{Map, Value};

/// The field an error about the whole request body names.
pub const REQUEST_FIELD: &str = "request";

/// A JSON object being read field by field.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// The body must be a JSON object.
    pub fn new(body: Value) -> Result<Self, AppError> {
        match body {
            Value::Object(map) => Ok(Self { map }),
            _ => Err(AppError::validation(REQUEST_FIELD, "request body must be a JSON object")),
        }
    }

    /// Refuses any field not in `known`.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), AppError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(AppError::validation(k.as_str(), format!("unknown field {}", crate::validation::quoted(k)))),
            None => Ok(()),
        }
    }

    /// Whether the field is present, even as JSON null.
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Absent → None; present → Some(value), where the value may be JSON null.
    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// An optional string; null counts as absent.
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, AppError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    /// A required string; absent or null is a 400 `{name} is required`.
    pub fn req_str(&self, name: &str) -> Result<&str, AppError> {
        self.opt_str(name)?.ok_or_else(|| AppError::validation(name, format!("{name} is required")))
    }

    /// An optional boolean; JSON null is a wrong type here, not absent.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, AppError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(name, "a boolean")),
        }
    }

    /// An optional array of strings; null counts as absent.
    pub fn opt_str_array(&self, name: &str, max: usize) -> Result<Option<Vec<&str>>, AppError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => {
                if items.len() > max {
                    return Err(AppError::validation(name, format!("{name} must have at most {max} items")));
                }
                items
                    .iter()
                    .map(|v| v.as_str().ok_or_else(|| wrong_type(&format!("{name} items"), "strings")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            Some(_) => Err(wrong_type(name, "an array of strings")),
        }
    }
}

/// The 400 for a field of the wrong JSON type: `{name} must be {expected}`.
pub fn wrong_type(name: &str, expected: &str) -> AppError {
    AppError::validation(name, format!("{name} must be {expected}"))
}

/// A bounded, printable free-text field (names, queries).
pub fn text(name: &str, value: &str, max_chars: usize) -> Result<String, AppError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::validation(name, format!("{name} must not be empty")));
    }
    if trimmed.chars().count() > max_chars {
        return Err(AppError::validation(name, format!("{name} must be at most {max_chars} characters")));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(AppError::validation(name, format!("{name} must not contain control characters")));
    }
    Ok(trimmed.to_owned())
}
