//! Inbound providers, as pure functions: signature checks and event recognition (DESIGN §4
//! "Inbound endpoints … and receiver").
//!
//! Everything here works on bytes, header pairs and JSON values, with no storage and no clock, so
//! each provider's rules can be pinned by table-driven tests (including GitHub's published test
//! vector and the Standard Webhooks one). The use case in [`crate::services::inbound`] looks the
//! endpoint up, calls [`verify_signature`] when the endpoint has a signing secret, then
//! [`recognize`], and turns a [`Trigger`] into an investigation.
//!
//! Recognised events (anything else is answered 202 `{"ignored": true, "reason"}`):
//!
//! | provider | recognised | trigger |
//! |---|---|---|
//! | github | `code_scanning_alert` with action `created`, `reopened`, `reopened_by_user`, `appeared_in_branch` | `github:code_scanning_alert` |
//! | github | `secret_scanning_alert` with action `created`, `reopened`, `publicly_leaked` | `github:secret_scanning_alert` |
//! | github | `dependabot_alert` with action `created`, `reopened`, `auto_reopened` | `github:dependabot_alert` |
//! | github | `workflow_run` with action `completed` and conclusion `failure` | `github:workflow_run` |
//! | github | `security_advisory` with action `published` | `github:security_advisory` |
//! | crowdstrike | `metadata.eventType` = `DetectionSummaryEvent`, `EppDetectionSummaryEvent`, `IdpDetectionSummaryEvent` (with an `event` object) | `crowdstrike:<eventType>` |
//! | crowdstrike | `metadata.eventType` = `IncidentSummaryEvent` (with an `event` object) | `crowdstrike:IncidentSummaryEvent` |
//! | crowdstrike | Falcon Fusion "Call webhook" body with a non-empty `data.detections` array | `crowdstrike:fusion_detection` |
//! | generic | a JSON object whose `query` is a non-empty string | `generic` |

use crate::error::AppError;
use crate::validation::Severity;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far a signed timestamp (Standard Webhooks, CrowdStrike) may be from our clock.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;
/// Longest accepted generic `query` (characters).
pub const MAX_QUERY_CHARS: usize = 4000;
/// Most `agent_ids` a generic event may name.
pub const MAX_AGENT_IDS: usize = 100;
const MAX_AGENT_ID_CHARS: usize = 128;
/// Dedupe keys longer than this are replaced by their SHA-256 (they become a DynamoDB key).
const MAX_DEDUPE_KEY_LEN: usize = 200;

/// Investigation depth: how much effort the investigation spends. Endpoints may set a default;
/// a generic event may override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Depth {
    /// A fast triage pass.
    Quick,
    /// The default balance of speed and coverage.
    Standard,
    /// Exhaustive; slowest.
    Deep,
}

impl Depth {
    pub const ALL: [Depth; 3] = [Depth::Quick, Depth::Standard, Depth::Deep];

    pub fn as_str(self) -> &'static str {
        match self {
            Depth::Quick => "quick",
            Depth::Standard => "standard",
            Depth::Deep => "deep",
        }
    }

    /// Parses `quick` | `standard` | `deep`; the error names `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == raw)
            .ok_or_else(|| AppError::validation(format!("{field} must be one of quick, standard, deep")))
    }
}

/// Request headers with case-insensitive lookup. Built by the route from the Lambda event so the
/// provider logic never sees HTTP-library types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Keeps every pair; names are compared case-insensitively.
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The first value of `name`, trimmed; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Why a signature was refused. Only logged: the HTTP answer is always the same 401, so a caller
/// cannot tell which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header {0} is missing")]
    MissingHeader(&'static str),
    #[error("signature header {0} is malformed")]
    Malformed(&'static str),
    #[error("signed timestamp is outside the tolerance")]
    StaleTimestamp,
    #[error("signature does not match")]
    Mismatch,
}

fn mac_matches(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else {
        return false;
    };
    for p in parts {
        mac.update(p);
    }
    // Constant-time comparison.
    mac.verify_slice(expected).is_ok()
}

/// Checks a `sha256=<hex>` header value (GitHub's `X-Hub-Signature-256`, generic
/// `X-Signature-256`).
fn verify_hex_sha256(header: &'static str, value: &str, secret: &str, body: &[u8]) -> Result<(), SignatureError> {
    let hex_part = value.strip_prefix("sha256=").ok_or(SignatureError::Malformed(header))?;
    let expected = hex::decode(hex_part.trim()).map_err(|_| SignatureError::Malformed(header))?;
    if mac_matches(secret.as_bytes(), &[body], &expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Parses a Unix timestamp in seconds (or milliseconds, when it is that large) or RFC 3339 and
/// checks it is within the tolerance of `now_secs`. `None` when the value is in neither form.
fn timestamp_within_tolerance(raw: &str, now_secs: i64) -> Option<bool> {
    let secs = match raw.parse::<i64>() {
        Ok(n) if n > 100_000_000_000 => n / 1000,
        Ok(n) => n,
        Err(_) => crate::time::Timestamp::parse_rfc3339(raw)?.unix_seconds(),
    };
    Some((now_secs - secs).abs() <= TIMESTAMP_TOLERANCE_SECS)
}

/// The Standard Webhooks key: base64-decoded after `whsec_`, otherwise the raw secret bytes.
fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn verify_standard_webhooks(headers: &Headers, secret: &str, body: &[u8], now_secs: i64) -> Result<(), SignatureError> {
    let signatures = headers.get("webhook-signature").ok_or(SignatureError::MissingHeader("webhook-signature"))?;
    let id = headers.get("webhook-id").ok_or(SignatureError::MissingHeader("webhook-id"))?;
    let ts = headers.get("webhook-timestamp").ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
    let ts_secs: i64 = ts.parse().map_err(|_| SignatureError::Malformed("webhook-timestamp"))?;
    if (now_secs - ts_secs).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::StaleTimestamp);
    }
    let key = standard_webhooks_key(secret);
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
    // Several space-separated `v1,<base64>` entries (key rotation); any one may match.
    let mut saw_v1 = false;
    for entry in signatures.split_whitespace() {
        let Some(b64) = entry.strip_prefix("v1,") else { continue };
        saw_v1 = true;
        if let Ok(sig) = STANDARD.decode(b64) {
            if mac_matches(&key, &parts, &sig) {
                return Ok(());
            }
        }
    }
    if saw_v1 {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Malformed("webhook-signature"))
    }
}

/// Verifies the provider's signature over the raw body with the endpoint's signing secret.
///
/// - github: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
/// - crowdstrike: `X-CS-Primary-Signature: <base64 HMAC-SHA256(secret, body ‖ X-CS-Delivery-Timestamp)>`;
///   the timestamp header is required, and refused when it parses (Unix seconds/milliseconds or
///   RFC 3339) and is more than 5 minutes off.
/// - generic: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) when
///   `webhook-signature` is present, else `X-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
///
/// Every comparison is constant-time (`Mac::verify_slice`).
pub fn verify_signature(
    provider: crate::model::Provider,
    secret: &str,
    headers: &Headers,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    use crate::model::Provider;
    match provider {
        Provider::Github => {
            let value = headers.get("x-hub-signature-256").ok_or(SignatureError::MissingHeader("X-Hub-Signature-256"))?;
            verify_hex_sha256("X-Hub-Signature-256", value, secret, body)
        }
        Provider::Crowdstrike => {
            let value =
                headers.get("x-cs-primary-signature").ok_or(SignatureError::MissingHeader("X-CS-Primary-Signature"))?;
            let ts = headers.get("x-cs-delivery-timestamp").ok_or(SignatureError::MissingHeader("X-CS-Delivery-Timestamp"))?;
            if timestamp_within_tolerance(ts, now_secs) == Some(false) {
                return Err(SignatureError::StaleTimestamp);
            }
            let expected = STANDARD.decode(value).map_err(|_| SignatureError::Malformed("X-CS-Primary-Signature"))?;
            if mac_matches(secret.as_bytes(), &[body, ts.as_bytes()], &expected) {
                Ok(())
            } else {
                Err(SignatureError::Mismatch)
            }
        }
        Provider::Generic => {
            if headers.get("webhook-signature").is_some() {
                verify_standard_webhooks(headers, secret, body, now_secs)
            } else {
                let value = headers.get("x-signature-256").ok_or(SignatureError::MissingHeader("X-Signature-256"))?;
                verify_hex_sha256("X-Signature-256", value, secret, body)
            }
        }
    }
}

/// A recognised event: what the investigation is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// `github:code_scanning_alert`, `crowdstrike:EppDetectionSummaryEvent`, `generic`.
    pub trigger: String,
    /// What to investigate (the generic body's `query`, or built from the provider payload).
    pub query: String,
    /// One line for lists and notifications.
    pub summary: String,
    pub agent_ids: Vec<String>,
    /// The event's own scope (generic only); the endpoint's default applies otherwise.
    pub scope: Option<Value>,
    /// The event's own depth (generic only); the endpoint's default applies otherwise.
    pub depth: Option<Depth>,
    /// The provider's severity mapped onto ours, when it has one.
    pub severity: Option<Severity>,
    /// Identifies a redelivery of the same event (GitHub `X-GitHub-Delivery`, the CrowdStrike
    /// detection/incident id, generic `webhook-id` or `Idempotency-Key`).
    pub dedupe_key: Option<String>,
}

/// What [`recognize`] made of a verified request.
#[derive(Debug, Clone, PartialEq)]
pub enum Recognition {
    Trigger(Box<Trigger>),
    /// Valid but not acted on; the reason is returned to the sender.
    Ignored(String),
}

fn ignored(reason: impl Into<String>) -> Result<Recognition, AppError> {
    Ok(Recognition::Ignored(reason.into()))
}

fn parse_json(body: &[u8], hint: &str) -> Result<Value, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::MalformedJson(format!("request body is not valid JSON{hint}: {e}")))
}

/// Keeps a dedupe key usable as a storage key: printable, bounded.
fn dedupe(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if raw.len() <= MAX_DEDUPE_KEY_LEN && raw.chars().all(|c| c.is_ascii_graphic()) {
        Some(raw.to_owned())
    } else {
        Some(format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes()))))
    }
}

/// Decides whether a verified request is an event we act on.
///
/// Errors are client errors (400): a body that is not JSON where JSON is needed, a GitHub request
/// without `X-GitHub-Event`, or a generic event whose optional fields have the wrong type.
pub fn recognize(provider: crate::model::Provider, headers: &Headers, body: &[u8]) -> Result<Recognition, AppError> {
    use crate::model::Provider;
    match provider {
        Provider::Github => recognize_github(headers, body),
        Provider::Crowdstrike => recognize_crowdstrike(headers, body),
        Provider::Generic => recognize_generic(headers, body),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers over untyped provider JSON. Provider payloads are large and evolve, so they are read
// leniently: a missing or odd-typed field just leaves a detail out of the summary.
// ---------------------------------------------------------------------------------------------

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// A string or a number, as text (ids and numbers are both common).
fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    match at(v, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_str<'a>(v: &'a Value, paths: &[&[&str]]) -> Option<&'a str> {
    paths.iter().find_map(|p| str_at(v, p))
}

fn first_text(v: &Value, paths: &[&[&str]]) -> Option<String> {
    paths.iter().find_map(|p| text_at(v, p))
}

/// Maps a provider's severity word onto ours (`moderate` → medium; `error`/`warning`/`note` are
/// CodeQL rule levels). Informational and unknown words have no severity.
fn severity_word(raw: &str) -> Option<Severity> {
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
fn with_severity(base: String, s: Option<Severity>) -> String {
    match severity_label(s) {
        Some(l) => format!("{base} ({l})"),
        None => base,
    }
}

fn clip(s: &str, max_chars: usize) -> String {
    let cleaned: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if cleaned.chars().count() > max_chars {
        let mut out: String = cleaned.chars().take(max_chars).collect();
        out.push('…');
        out
    } else {
        cleaned
    }
}

const SUMMARY_CHARS: usize = 300;

// ---------------------------------------------------------------------------------------------
// GitHub
// ---------------------------------------------------------------------------------------------

fn recognize_github(headers: &Headers, body: &[u8]) -> Result<Recognition, AppError> {
    let event = headers.get("x-github-event").ok_or_else(|| AppError::validation("X-GitHub-Event header is required"))?;
    if event == "ping" {
        return ignored("ping");
    }
    let acted_on = ["code_scanning_alert", "secret_scanning_alert", "dependabot_alert", "workflow_run", "security_advisory"];
    if !acted_on.contains(&event) {
        return ignored(format!("github event {} is not acted on", clip(event, 64)));
    }
    let payload = parse_json(body, " (configure the GitHub webhook with content type application/json)")?;
    let action = str_at(&payload, &["action"]).unwrap_or("");
    let repo = str_at(&payload, &["repository", "full_name"]).unwrap_or("an unknown repository");
    let not_acted = || ignored(format!("github event {event} with action {} is not acted on", clip(action, 64)));

    let (summary, detail, severity) = match event {
        "code_scanning_alert" => {
            if !["created", "reopened", "reopened_by_user", "appeared_in_branch"].contains(&action) {
                return not_acted();
            }
            let number = text_at(&payload, &["alert", "number"]).unwrap_or_else(|| "?".into());
            let rule = first_str(&payload, &[&["alert", "rule", "description"], &["alert", "rule", "name"], &["alert", "rule", "id"]])
                .unwrap_or("unnamed rule");
            let severity = first_str(&payload, &[&["alert", "rule", "security_severity_level"], &["alert", "rule", "severity"]])
                .and_then(severity_word);
            let mut detail = String::new();
            if let Some(tool) = str_at(&payload, &["alert", "tool", "name"]) {
                detail.push_str(&format!(" Tool: {tool}."));
            }
            if let Some(path) = str_at(&payload, &["alert", "most_recent_instance", "location", "path"]) {
                let line = text_at(&payload, &["alert", "most_recent_instance", "location", "start_line"]);
                detail.push_str(&format!(" Location: {path}{}.", line.map(|l| format!(":{l}")).unwrap_or_default()));
            }
            if let Some(r#ref) = str_at(&payload, &["ref"]) {
                detail.push_str(&format!(" Ref: {}.", r#ref));
            }
            (with_severity(format!("GitHub code scanning alert #{number} in {repo}: {rule}"), severity), detail, severity)
        }
        "secret_scanning_alert" => {
            if !["created", "reopened", "publicly_leaked"].contains(&action) {
                return not_acted();
            }
            let number = text_at(&payload, &["alert", "number"]).unwrap_or_else(|| "?".into());
            let kind = first_str(&payload, &[&["alert", "secret_type_display_name"], &["alert", "secret_type"]]).unwrap_or("secret");
            // A leaked credential is always urgent; a public leak is the worst case.
            let severity = Some(if action == "publicly_leaked" { Severity::Critical } else { Severity::High });
            let verb = if action == "publicly_leaked" { "publicly leaked" } else { "detected" };
            (with_severity(format!("GitHub secret scanning alert #{number} in {repo}: {kind} {verb}"), severity), String::new(), severity)
        }
        "dependabot_alert" => {
            if !["created", "reopened", "auto_reopened"].contains(&action) {
                return not_acted();
            }
            let number = text_at(&payload, &["alert", "number"]).unwrap_or_else(|| "?".into());
            let advisory = first_str(&payload, &[&["alert", "security_advisory", "summary"], &["alert", "security_advisory", "ghsa_id"]])
                .unwrap_or("vulnerable dependency");
            let package = first_str(&payload, &[&["alert", "dependency", "package", "name"], &["alert", "security_vulnerability", "package", "name"]]);
            let severity = first_str(&payload, &[&["alert", "security_advisory", "severity"], &["alert", "security_vulnerability", "severity"]])
                .and_then(severity_word);
            let mut detail = String::new();
            if let Some(manifest) = str_at(&payload, &["alert", "dependency", "manifest_path"]) {
                detail.push_str(&format!(" Manifest: {manifest}."));
            }
            if let Some(ghsa) = str_at(&payload, &["alert", "security_advisory", "ghsa_id"]) {
                detail.push_str(&format!(" Advisory: {ghsa}."));
            }
            let pkg = package.map(|p| format!(" ({p})")).unwrap_or_default();
            (
                with_severity(format!("GitHub Dependabot alert #{number} in {repo}: {advisory}{pkg}"), severity),
                detail,
                severity,
            )
        }
        "workflow_run" => {
            let conclusion = str_at(&payload, &["workflow_run", "conclusion"]).unwrap_or("");
            if action != "completed" || conclusion != "failure" {
                return ignored(format!(
                    "github workflow_run with action {} and conclusion {} is not acted on",
                    clip(action, 64),
                    if conclusion.is_empty() { "none".to_owned() } else { clip(conclusion, 64) }
                ));
            }
            let name = first_str(&payload, &[&["workflow_run", "name"], &["workflow", "name"]]).unwrap_or("workflow");
            let run = text_at(&payload, &["workflow_run", "run_number"]).map(|n| format!(" run #{n}")).unwrap_or_default();
            let branch = str_at(&payload, &["workflow_run", "head_branch"]).map(|b| format!(" on {b}")).unwrap_or_default();
            let mut detail = String::new();
            if let Some(sha) = str_at(&payload, &["workflow_run", "head_sha"]) {
                detail.push_str(&format!(" Commit: {sha}."));
            }
            (format!("GitHub workflow {name}{run} failed{branch} in {repo}"), detail, None)
        }
        // "security_advisory"
        _ => {
            if action != "published" {
                return not_acted();
            }
            let ghsa = str_at(&payload, &["security_advisory", "ghsa_id"]).unwrap_or("advisory");
            let title = str_at(&payload, &["security_advisory", "summary"]).unwrap_or("new security advisory");
            let severity = str_at(&payload, &["security_advisory", "severity"]).and_then(severity_word);
            (with_severity(format!("GitHub security advisory {ghsa}: {title}"), severity), String::new(), severity)
        }
    };
    let link = first_str(&payload, &[&["alert", "html_url"], &["workflow_run", "html_url"], &["security_advisory", "html_url"]])
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    let summary = clip(&summary, SUMMARY_CHARS);
    let query = clip(&format!("Investigate {summary}.{detail}{link}"), MAX_QUERY_CHARS);
    Ok(Recognition::Trigger(Box::new(Trigger {
        trigger: format!("github:{event}"),
        query,
        summary,
        agent_ids: Vec::new(),
        scope: None,
        depth: None,
        severity,
        dedupe_key: headers.get("x-github-delivery").and_then(dedupe),
    })))
}

// ---------------------------------------------------------------------------------------------
// CrowdStrike
// ---------------------------------------------------------------------------------------------

/// CrowdStrike severities: 1–5 on legacy detections (1 informational … 5 critical), 0–100 on
/// alerts (90+ critical, 70+ high, 50+ medium, 20+ low).
fn crowdstrike_severity(event: &Value) -> Option<Severity> {
    if let Some(word) = first_str(event, &[&["SeverityName"], &["severity_name"], &["severity"]]) {
        if let Some(s) = severity_word(word) {
            return Some(s);
        }
    }
    let n = first_text(event, &[&["Severity"], &["severity"]])?.parse::<f64>().ok()?;
    if n <= 5.0 {
        match n as i64 {
            5 => Some(Severity::Critical),
            4 => Some(Severity::High),
            3 => Some(Severity::Medium),
            2 => Some(Severity::Low),
            _ => None,
        }
    } else if n >= 90.0 {
        Some(Severity::Critical)
    } else if n >= 70.0 {
        Some(Severity::High)
    } else if n >= 50.0 {
        Some(Severity::Medium)
    } else if n >= 20.0 {
        Some(Severity::Low)
    } else {
        None
    }
}

const CS_DETECTIONS: [&str; 3] = ["DetectionSummaryEvent", "EppDetectionSummaryEvent", "IdpDetectionSummaryEvent"];

/// Summary and query details of one detection object (streaming `event` or a Fusion detection).
fn crowdstrike_detection(det: &Value) -> (String, String, Option<Severity>, Option<String>) {
    let id = first_text(det, &[&["CompositeId"], &["DetectId"], &["composite_id"], &["detection_id"], &["id"]]);
    let name = first_str(det, &[&["DetectName"], &["Name"], &["display_name"], &["name"], &["DisplayName"]]).unwrap_or("detection");
    let host = first_str(det, &[&["ComputerName"], &["Hostname"], &["hostname"], &["device", "hostname"], &["host"]]);
    let severity = crowdstrike_severity(det);
    let on_host = host.map(|h| format!(" on {h}")).unwrap_or_default();
    let summary = with_severity(format!("CrowdStrike detection {name}{on_host}"), severity);
    let mut detail = String::new();
    let fields: [(&str, &[&str]); 9] = [
        ("Description", &["DetectDescription", "Description", "description"]),
        ("Tactic", &["Tactic", "tactic"]),
        ("Technique", &["Technique", "technique"]),
        ("User", &["UserName", "user_name"]),
        ("File", &["FileName", "filename"]),
        ("Command line", &["CommandLine", "cmdline"]),
        ("Falcon sensor", &["SensorId", "AgentId", "agent_id"]),
        ("Detection", &["CompositeId", "DetectId", "composite_id", "detection_id"]),
        ("Link", &["FalconHostLink", "falcon_host_link", "link"]),
    ];
    for (label, keys) in fields {
        if let Some(v) = keys.iter().find_map(|k| str_at(det, &[k])) {
            detail.push_str(&format!(" {label}: {}.", clip(v, 500)));
        }
    }
    (summary, detail, severity, id)
}

fn recognize_crowdstrike(headers: &Headers, body: &[u8]) -> Result<Recognition, AppError> {
    let payload = parse_json(body, "")?;
    let event_type = str_at(&payload, &["metadata", "eventType"]);
    let event = at(&payload, &["event"]).filter(|e| e.is_object());

    let (trigger, summary, detail, severity, id) = match (event_type, event) {
        (Some(t), Some(ev)) if CS_DETECTIONS.contains(&t) => {
            let (summary, detail, severity, id) = crowdstrike_detection(ev);
            (format!("crowdstrike:{t}"), summary, detail, severity, id)
        }
        (Some("IncidentSummaryEvent"), Some(ev)) => {
            let id = first_text(ev, &[&["IncidentId"], &["IncidentID"]]);
            let score = first_text(ev, &[&["FineScore"]]).map(|s| format!(" (score {s})")).unwrap_or_default();
            let summary = format!("CrowdStrike incident {}{score}", id.as_deref().unwrap_or("(no id)"));
            let mut detail = String::new();
            if let Some(state) = str_at(ev, &["State"]) {
                detail.push_str(&format!(" State: {state}."));
            }
            if let Some(link) = str_at(ev, &["FalconHostLink"]) {
                detail.push_str(&format!(" Link: {link}."));
            }
            ("crowdstrike:IncidentSummaryEvent".to_owned(), summary, detail, None, id)
        }
        (Some(t), _) => return ignored(format!("crowdstrike event {} is not acted on", clip(t, 64))),
        (None, _) => {
            let detections = at(&payload, &["data", "detections"]).and_then(Value::as_array);
            let Some(first) = detections.and_then(|d| d.iter().find(|x| x.is_object())) else {
                return ignored("crowdstrike payload has no metadata.eventType and no data.detections");
            };
            let count = detections.map(|d| d.len()).unwrap_or(1);
            let (mut summary, detail, severity, id) = crowdstrike_detection(first);
            if count > 1 {
                summary.push_str(&format!(" and {} more", count - 1));
            }
            ("crowdstrike:fusion_detection".to_owned(), summary, detail, severity, id)
        }
    };
    let summary = clip(&summary, SUMMARY_CHARS);
    let query = clip(&format!("Investigate {summary}.{detail}"), MAX_QUERY_CHARS);
    // One investigation per detection/incident: repeated notifications of it are redeliveries.
    let dedupe_key = id
        .map(|id| format!("{}:{id}", trigger.trim_start_matches("crowdstrike:")))
        .or_else(|| headers.get("x-cs-delivery-id").map(str::to_owned))
        .and_then(|k| dedupe(&k));
    Ok(Recognition::Trigger(Box::new(Trigger {
        trigger,
        query,
        summary,
        agent_ids: Vec::new(),
        scope: None,
        depth: None,
        severity,
        dedupe_key,
    })))
}

// ---------------------------------------------------------------------------------------------
// Generic
// ---------------------------------------------------------------------------------------------

fn recognize_generic(headers: &Headers, body: &[u8]) -> Result<Recognition, AppError> {
    let payload = parse_json(body, "")?;
    let Some(obj) = payload.as_object() else {
        return ignored("no query");
    };
    let query = match obj.get("query") {
        Some(Value::String(q)) if !q.trim().is_empty() => crate::services::input::text("query", q, MAX_QUERY_CHARS)?,
        _ => return ignored("no query"),
    };
    let agent_ids = generic_agent_ids(obj)?;
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(AppError::validation("scope must be an object")),
    };
    let depth = match obj.get("depth") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(Depth::parse("depth", d)?),
        Some(_) => return Err(AppError::validation("depth must be one of quick, standard, deep")),
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
        dedupe_key: headers.get("webhook-id").or_else(|| headers.get("idempotency-key")).and_then(dedupe),
    })))
}

fn generic_agent_ids(obj: &Map<String, Value>) -> Result<Vec<String>, AppError> {
    let items = match obj.get("agent_ids") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(AppError::validation("agent_ids must be an array of strings")),
    };
    if items.len() > MAX_AGENT_IDS {
        return Err(AppError::validation(format!("agent_ids must have at most {MAX_AGENT_IDS} items")));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = item.as_str().map(str::trim).ok_or_else(|| AppError::validation("agent_ids items must be strings"))?;
        if id.is_empty() || id.chars().count() > MAX_AGENT_ID_CHARS || id.chars().any(char::is_control) {
            return Err(AppError::validation(format!(
                "agent_ids items must be 1 to {MAX_AGENT_ID_CHARS} printable characters"
            )));
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
    use serde_json::json;

    const NOW: i64 = 1_777_818_121;

    fn hmac_bytes(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().to_vec()
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        Headers::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn github_published_test_vector_verifies() {
        let headers = h(&[("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")]);
        assert_eq!(verify_signature(Provider::Github, "It's a Secret to Everybody", &headers, b"Hello, World!", NOW), Ok(()));
        assert_eq!(
            verify_signature(Provider::Github, "It's a Secret to Everybody", &headers, b"Hello, World?", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Provider::Github, "another secret", &headers, b"Hello, World!", NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn standard_webhooks_published_test_vector_verifies() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let headers = h(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", "v1,bogus v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ]);
        assert_eq!(verify_signature(Provider::Generic, secret, &headers, body, 1_614_265_330), Ok(()));
        assert_eq!(
            verify_signature(Provider::Generic, secret, &headers, body, 1_614_265_330 + 301),
            Err(SignatureError::StaleTimestamp)
        );
    }

    #[test]
    fn signature_cases_per_provider() {
        let secret = "s3cret";
        let body: &[u8] = br#"{"a":1}"#;
        let hex_sig = format!("sha256={}", hex::encode(hmac_bytes(secret.as_bytes(), &[body])));
        let forged_hex = format!("sha256={}", hex::encode(hmac_bytes(b"wrong", &[body])));
        let ts = NOW.to_string();
        let cs_sig = STANDARD.encode(hmac_bytes(secret.as_bytes(), &[body, ts.as_bytes()]));
        let stale_ts = (NOW - 600).to_string();
        let cs_stale_sig = STANDARD.encode(hmac_bytes(secret.as_bytes(), &[body, stale_ts.as_bytes()]));
        let sw_sig = format!("v1,{}", STANDARD.encode(hmac_bytes(secret.as_bytes(), &[b"msg_1", b".", ts.as_bytes(), b".", body])));

        use SignatureError::*;
        type Case<'a> = (&'a str, Provider, Vec<(&'a str, &'a str)>, Result<(), SignatureError>);
        let cases: Vec<Case> = vec![
            ("github valid", Provider::Github, vec![("x-hub-signature-256", &hex_sig)], Ok(())),
            ("github forged", Provider::Github, vec![("x-hub-signature-256", &forged_hex)], Err(Mismatch)),
            ("github missing", Provider::Github, vec![], Err(MissingHeader("X-Hub-Signature-256"))),
            ("github no prefix", Provider::Github, vec![("x-hub-signature-256", &hex_sig[7..])], Err(Malformed("X-Hub-Signature-256"))),
            ("github not hex", Provider::Github, vec![("x-hub-signature-256", "sha256=zz")], Err(Malformed("X-Hub-Signature-256"))),
            ("github sha1 only", Provider::Github, vec![("x-hub-signature", "sha1=00")], Err(MissingHeader("X-Hub-Signature-256"))),
            ("cs valid", Provider::Crowdstrike, vec![("X-CS-Primary-Signature", &cs_sig), ("X-CS-Delivery-Timestamp", &ts)], Ok(())),
            ("cs forged", Provider::Crowdstrike, vec![("X-CS-Primary-Signature", "AAAA"), ("X-CS-Delivery-Timestamp", &ts)], Err(Mismatch)),
            ("cs other ts", Provider::Crowdstrike, vec![("X-CS-Primary-Signature", &cs_sig), ("X-CS-Delivery-Timestamp", "1777818120")], Err(Mismatch)),
            ("cs missing ts", Provider::Crowdstrike, vec![("X-CS-Primary-Signature", &cs_sig)], Err(MissingHeader("X-CS-Delivery-Timestamp"))),
            ("cs missing sig", Provider::Crowdstrike, vec![("X-CS-Delivery-Timestamp", &ts)], Err(MissingHeader("X-CS-Primary-Signature"))),
            ("cs stale", Provider::Crowdstrike, vec![("X-CS-Primary-Signature", &cs_stale_sig), ("X-CS-Delivery-Timestamp", &stale_ts)], Err(StaleTimestamp)),
            ("cs not base64", Provider::Crowdstrike, vec![("X-CS-Primary-Signature", "!!"), ("X-CS-Delivery-Timestamp", &ts)], Err(Malformed("X-CS-Primary-Signature"))),
            ("generic hex valid", Provider::Generic, vec![("X-Signature-256", &hex_sig)], Ok(())),
            ("generic hex forged", Provider::Generic, vec![("X-Signature-256", &forged_hex)], Err(Mismatch)),
            ("generic missing", Provider::Generic, vec![], Err(MissingHeader("X-Signature-256"))),
            ("generic sw valid", Provider::Generic, vec![("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", &sw_sig)], Ok(())),
            ("generic sw forged", Provider::Generic, vec![("webhook-id", "msg_2"), ("webhook-timestamp", &ts), ("webhook-signature", &sw_sig)], Err(Mismatch)),
            ("generic sw missing id", Provider::Generic, vec![("webhook-timestamp", &ts), ("webhook-signature", &sw_sig)], Err(MissingHeader("webhook-id"))),
            ("generic sw no v1", Provider::Generic, vec![("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", "v2,abc")], Err(Malformed("webhook-signature"))),
            ("generic sw bad ts", Provider::Generic, vec![("webhook-id", "msg_1"), ("webhook-timestamp", "soon"), ("webhook-signature", &sw_sig)], Err(Malformed("webhook-timestamp"))),
        ];
        for (name, provider, pairs, want) in cases {
            assert_eq!(verify_signature(provider, secret, &h(&pairs), body, NOW), want, "{name}");
        }
    }

    fn trigger(r: Recognition) -> Trigger {
        match r {
            Recognition::Trigger(t) => *t,
            Recognition::Ignored(reason) => panic!("ignored: {reason}"),
        }
    }

    #[test]
    fn github_recognition_table() {
        let repo = json!({"full_name": "acme/api"});
        let recognised = [
            (
                "code_scanning_alert",
                json!({"action": "created", "repository": repo, "alert": {"number": 42, "html_url": "https://github.com/acme/api/security/code-scanning/42",
                    "rule": {"id": "js/sql-injection", "description": "SQL injection", "security_severity_level": "high", "severity": "error"},
                    "tool": {"name": "CodeQL"}, "most_recent_instance": {"location": {"path": "src/db.js", "start_line": 10}}}}),
                "GitHub code scanning alert #42 in acme/api: SQL injection (high)",
                Some(Severity::High),
            ),
            (
                "code_scanning_alert",
                json!({"action": "appeared_in_branch", "repository": repo, "alert": {"number": 7, "rule": {"id": "r1", "severity": "warning"}}}),
                "GitHub code scanning alert #7 in acme/api: r1 (medium)",
                Some(Severity::Medium),
            ),
            (
                "secret_scanning_alert",
                json!({"action": "created", "repository": repo, "alert": {"number": 3, "secret_type_display_name": "AWS Access Key ID"}}),
                "GitHub secret scanning alert #3 in acme/api: AWS Access Key ID detected (high)",
                Some(Severity::High),
            ),
            (
                "dependabot_alert",
                json!({"action": "reopened", "repository": repo, "alert": {"number": 9, "dependency": {"package": {"name": "lodash"}},
                    "security_advisory": {"summary": "Prototype pollution", "severity": "critical", "ghsa_id": "GHSA-xxxx"}}}),
                "GitHub Dependabot alert #9 in acme/api: Prototype pollution (lodash) (critical)",
                Some(Severity::Critical),
            ),
            (
                "workflow_run",
                json!({"action": "completed", "repository": repo, "workflow_run": {"name": "CI", "run_number": 88, "head_branch": "main", "conclusion": "failure"}}),
                "GitHub workflow CI run #88 failed on main in acme/api",
                None,
            ),
            (
                "security_advisory",
                json!({"action": "published", "security_advisory": {"ghsa_id": "GHSA-abcd", "summary": "RCE in foo", "severity": "moderate"}}),
                "GitHub security advisory GHSA-abcd: RCE in foo (medium)",
                Some(Severity::Medium),
            ),
        ];
        for (event, payload, summary, severity) in recognised {
            let headers = h(&[("X-GitHub-Event", event), ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")]);
            let t = trigger(recognize(Provider::Github, &headers, payload.to_string().as_bytes()).unwrap());
            assert_eq!(t.summary, summary, "{event}");
            assert_eq!(t.severity, severity, "{event}");
            assert_eq!(t.trigger, format!("github:{event}"));
            assert!(t.query.starts_with("Investigate GitHub"), "{}", t.query);
            assert_eq!(t.dedupe_key.as_deref(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        }

        let ignored_cases = [
            ("ping", json!({"zen": "Keep it logically awesome."}), "ping"),
            ("push", json!({"ref": "refs/heads/main"}), "github event push is not acted on"),
            ("code_scanning_alert", json!({"action": "fixed", "alert": {}}), "github event code_scanning_alert with action fixed is not acted on"),
            ("secret_scanning_alert", json!({"action": "resolved"}), "github event secret_scanning_alert with action resolved is not acted on"),
            ("dependabot_alert", json!({"action": "dismissed"}), "github event dependabot_alert with action dismissed is not acted on"),
            ("workflow_run", json!({"action": "completed", "workflow_run": {"conclusion": "success"}}), "github workflow_run with action completed and conclusion success is not acted on"),
            ("workflow_run", json!({"action": "requested", "workflow_run": {"conclusion": null}}), "github workflow_run with action requested and conclusion none is not acted on"),
            ("security_advisory", json!({"action": "withdrawn"}), "github event security_advisory with action withdrawn is not acted on"),
        ];
        for (event, payload, reason) in ignored_cases {
            let got = recognize(Provider::Github, &h(&[("x-github-event", event)]), payload.to_string().as_bytes()).unwrap();
            assert_eq!(got, Recognition::Ignored(reason.to_owned()), "{event}");
        }

        // Ignored events do not need a JSON body (GitHub may send form-encoded ones).
        assert_eq!(recognize(Provider::Github, &h(&[("x-github-event", "ping")]), b"payload=%7B%7D").unwrap(), Recognition::Ignored("ping".into()));
        assert!(matches!(recognize(Provider::Github, &h(&[("x-github-event", "code_scanning_alert")]), b"payload=x"), Err(AppError::MalformedJson(_))));
        assert_eq!(recognize(Provider::Github, &h(&[]), b"{}"), Err(AppError::validation("X-GitHub-Event header is required")));
    }

    #[test]
    fn crowdstrike_recognition_table() {
        let cases = [
            (
                json!({"metadata": {"eventType": "DetectionSummaryEvent", "offset": 1},
                       "event": {"DetectId": "ldt:abc:123", "DetectName": "Suspicious Activity", "ComputerName": "web-01", "Severity": 4, "SeverityName": "High",
                                 "Tactic": "Execution", "Technique": "PowerShell", "FalconHostLink": "https://falcon.crowdstrike.com/activity/detections/detail/abc/123"}}),
                "crowdstrike:DetectionSummaryEvent",
                "CrowdStrike detection Suspicious Activity on web-01 (high)",
                Some(Severity::High),
                Some("DetectionSummaryEvent:ldt:abc:123"),
            ),
            (
                json!({"metadata": {"eventType": "EppDetectionSummaryEvent"},
                       "event": {"CompositeId": "cid:ind:aid:1", "Name": "CredentialTheft", "Hostname": "db-02", "Severity": 92}}),
                "crowdstrike:EppDetectionSummaryEvent",
                "CrowdStrike detection CredentialTheft on db-02 (critical)",
                Some(Severity::Critical),
                Some("EppDetectionSummaryEvent:cid:ind:aid:1"),
            ),
            (
                json!({"metadata": {"eventType": "IdpDetectionSummaryEvent"}, "event": {"CompositeId": "idp:1", "Name": "Pass-the-hash", "Severity": 55}}),
                "crowdstrike:IdpDetectionSummaryEvent",
                "CrowdStrike detection Pass-the-hash (medium)",
                Some(Severity::Medium),
                Some("IdpDetectionSummaryEvent:idp:1"),
            ),
            (
                json!({"metadata": {"eventType": "IncidentSummaryEvent"}, "event": {"IncidentId": "inc:1:2", "FineScore": 38, "State": "open"}}),
                "crowdstrike:IncidentSummaryEvent",
                "CrowdStrike incident inc:1:2 (score 38)",
                None,
                Some("IncidentSummaryEvent:inc:1:2"),
            ),
            (
                json!({"data": {"detections": [{"detection_id": "ldt:9", "name": "Ransomware", "severity": "Critical", "hostname": "fs-1"}, {"detection_id": "ldt:10"}]}}),
                "crowdstrike:fusion_detection",
                "CrowdStrike detection Ransomware on fs-1 (critical) and 1 more",
                Some(Severity::Critical),
                Some("fusion_detection:ldt:9"),
            ),
        ];
        for (payload, trig, summary, severity, dedupe_key) in cases {
            let t = trigger(recognize(Provider::Crowdstrike, &h(&[]), payload.to_string().as_bytes()).unwrap());
            assert_eq!(t.trigger, trig);
            assert_eq!(t.summary, summary);
            assert_eq!(t.severity, severity, "{trig}");
            assert_eq!(t.dedupe_key.as_deref(), dedupe_key, "{trig}");
        }
        let ignored_cases = [
            (json!({"metadata": {"eventType": "AuthActivityAuditEvent"}, "event": {}}), "crowdstrike event AuthActivityAuditEvent is not acted on"),
            (json!({"metadata": {"eventType": "DetectionSummaryEvent"}}), "crowdstrike event DetectionSummaryEvent is not acted on"),
            (json!({"data": {"detections": []}}), "crowdstrike payload has no metadata.eventType and no data.detections"),
            (json!([1, 2]), "crowdstrike payload has no metadata.eventType and no data.detections"),
        ];
        for (payload, reason) in ignored_cases {
            assert_eq!(recognize(Provider::Crowdstrike, &h(&[]), payload.to_string().as_bytes()).unwrap(), Recognition::Ignored(reason.into()));
        }
        assert!(matches!(recognize(Provider::Crowdstrike, &h(&[]), b"not json"), Err(AppError::MalformedJson(_))));
    }

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
        assert_eq!(t.dedupe_key.as_deref(), Some("msg_1"));
        let t = trigger(recognize(Provider::Generic, &h(&[("Idempotency-Key", "k1")]), br#"{"query":"q"}"#).unwrap());
        assert_eq!(t.dedupe_key.as_deref(), Some("k1"));
        assert_eq!(t.depth, None);

        for body in [r#"{}"#, r#"{"query":""}"#, r#"{"query":"   "}"#, r#"{"query":5}"#, r#"[]"#, r#""q""#] {
            assert_eq!(recognize(Provider::Generic, &h(&[]), body.as_bytes()).unwrap(), Recognition::Ignored("no query".into()), "{body}");
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
            assert_eq!(recognize(Provider::Generic, &h(&[]), body.as_bytes()), Err(AppError::validation(want)), "{body}");
        }
        let long = format!(r#"{{"query":"{}"}}"#, "x".repeat(MAX_QUERY_CHARS + 1));
        assert!(matches!(recognize(Provider::Generic, &h(&[]), long.as_bytes()), Err(AppError::Validation(_))));
        assert!(matches!(recognize(Provider::Generic, &h(&[]), b"query=hello"), Err(AppError::MalformedJson(_))));
    }

    #[test]
    fn long_or_odd_dedupe_keys_are_hashed() {
        assert_eq!(dedupe("abc").as_deref(), Some("abc"));
        assert!(dedupe(&"a".repeat(500)).unwrap().starts_with("sha256:"));
        assert!(dedupe("has space").unwrap().starts_with("sha256:"));
        assert_eq!(dedupe("  "), None);
    }

    #[test]
    fn depth_parses_the_three_levels() {
        for d in Depth::ALL {
            assert_eq!(Depth::parse("depth", d.as_str()), Ok(d));
        }
        assert_eq!(Depth::parse("default_depth", "Deep"), Err(AppError::validation("default_depth must be one of quick, standard, deep")));
    }
}
