//! Lenient readers over untyped provider JSON, shared by the per-provider recognisers.
//!
//! Provider payloads are large and evolve, so they are read leniently: a missing or odd-typed
//! field just leaves a detail out of the summary. Also the severity vocabulary and the clipping
//! that keeps summaries and queries bounded.

use crate::validation::Severity;
use serde_json::Value;

/// Longest summary line (characters) of a provider event.
pub(super) const SUMMARY_CHARS: usize = 300;

pub(super) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// A string or a number, as text (ids and numbers are both common).
pub(super) fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    match at(v, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn first_str<'a>(v: &'a Value, paths: &[&[&str]]) -> Option<&'a str> {
    paths.iter().find_map(|p| str_at(v, p))
}

pub(super) fn first_text(v: &Value, paths: &[&[&str]]) -> Option<String> {
    paths.iter().find_map(|p| text_at(v, p))
}

/// Maps a provider's severity word onto ours (`moderate` → medium; `error`/`warning`/`note` are
/// CodeQL rule levels). Informational and unknown words have no severity.
pub(super) fn severity_word(raw: &str) -> Option<Severity> {
    match raw.to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "high" | "error" => Some(Severity::High),
        "medium" | "moderate" | "warning" => Some(Severity::Medium),
        "low" | "note" => Some(Severity::Low),
        _ => None,
    }
}

fn severity_label(s: Option<Severity>) -> Option<&'static str> {
    s.map(|s| match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    })
}

/// `base (sev)` when a severity is known.
pub(super) fn with_severity(base: String, s: Option<Severity>) -> String {
    match severity_label(s) {
        Some(l) => format!("{base} ({l})"),
        None => base,
    }
}

pub(super) fn clip(s: &str, max_chars: usize) -> String {
    let cleaned: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if cleaned.chars().count() > max_chars {
        let mut out: String = cleaned.chars().take(max_chars).collect();
        out.push('…');
        out
    } else {
        cleaned
    }
}
