//! Receivers of inbound webhooks, as pure functions: provider signature checks and event
//! recognition (docs/inbound.md), one module per concern:
//! [`signatures`] for every provider's signature scheme, [`github`], [`crowdstrike`] and
//! [`generic`] for what each provider's events mean, [`payload`] for reading their JSON.
//!
//! Everything here works on bytes, header pairs and JSON values, with no storage and no clock, so
//! each provider's rules can be pinned by table-driven tests. The use case in
//! [`crate::services::receive`] looks the endpoint up, calls [`verify_signature`] when the
//! endpoint has a signing secret, then [`recognize`], and turns a [`Trigger`] into an
//! investigation.
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

mod crowdstrike;
mod generic;
mod github;
mod payload;
pub mod signatures;

pub use generic::MAX_AGENT_IDS;
pub use signatures::{verify_signature, SignatureError, Verified, TIMESTAMP_TOLERANCE_SECS};

use crate::error::AppError;
use crate::model::Provider;
use crate::validation::Severity;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest accepted generic `query` (characters), and the bound of a provider event's query.
pub const MAX_QUERY_CHARS: usize = 4000;
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
    /// Every depth, in the order error messages list them.
    pub const ALL: [Depth; 3] = [Depth::Quick, Depth::Standard, Depth::Deep];

    /// The wire name: `quick`, `standard` or `deep`.
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
            .ok_or_else(|| AppError::validation(field, format!("{field} must be one of quick, standard, deep")))
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
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
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
    /// Agents to ask (generic only, from the body); empty for the service's default.
    pub agent_ids: Vec<String>,
    /// The event's own scope (generic only); the endpoint's default applies otherwise.
    pub scope: Option<Value>,
    /// The event's own depth (generic only); the endpoint's default applies otherwise.
    pub depth: Option<Depth>,
    /// The provider's severity mapped onto ours, when it has one.
    pub severity: Option<Severity>,
    /// Identifies a redelivery of the same event; [`Trigger::claim_key`] decides whether it is
    /// used.
    pub dedupe_key: Option<DedupeKey>,
}

/// What identifies a redelivery of an event, by where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupeKey {
    /// The event's own id, from the body (the CrowdStrike detection or incident id), which a body
    /// signature covers.
    Event(String),
    /// A delivery header no body signature covers (GitHub `X-GitHub-Delivery`, CrowdStrike
    /// `X-CS-Delivery-Id`, generic `webhook-id` or `Idempotency-Key`): anyone replaying a
    /// captured request can change it.
    Delivery(String),
}

impl DedupeKey {
    /// The key, ready to be a storage key.
    pub fn as_str(&self) -> &str {
        match self {
            DedupeKey::Event(k) | DedupeKey::Delivery(k) => k,
        }
    }
}

impl Trigger {
    /// The key the investigation is claimed under, so a redelivery finds it: the event's own id
    /// when the body has one; else, when the request was signed, the signature's replay key
    /// (never an unsigned header, which a replay could change); else the delivery header.
    pub fn claim_key<'a>(&'a self, signed: Option<&'a Verified>) -> Option<&'a str> {
        match (&self.dedupe_key, signed) {
            (Some(DedupeKey::Event(id)), _) => Some(id),
            (_, Some(verified)) => Some(verified.replay_key()),
            (Some(DedupeKey::Delivery(header)), None) => Some(header),
            (None, None) => None,
        }
    }
}

/// What [`recognize`] made of a verified request.
#[derive(Debug, Clone, PartialEq)]
pub enum Recognition {
    /// Act on it: start an investigation.
    Trigger(Box<Trigger>),
    /// Valid but not acted on; the reason is returned to the sender.
    Ignored(String),
}

fn ignored(reason: impl Into<String>) -> Result<Recognition, AppError> {
    Ok(Recognition::Ignored(reason.into()))
}

fn parse_json(body: &[u8], hint: &str) -> Result<Value, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::MalformedJson(format!("request body is not valid JSON{hint}: {e}")))
}

/// A provider event's trigger: the summary clipped to a line, the query `Investigate <summary>.`
/// followed by `detail`, and no agent ids, scope or depth of its own (the endpoint's apply).
fn provider_event(
    trigger: String,
    summary: &str,
    detail: &str,
    severity: Option<Severity>,
    dedupe_key: Option<DedupeKey>,
) -> Recognition {
    let summary = payload::clip(summary, payload::SUMMARY_CHARS);
    let query = payload::clip(&format!("Investigate {summary}.{detail}"), MAX_QUERY_CHARS);
    Recognition::Trigger(Box::new(Trigger {
        trigger,
        query,
        summary,
        agent_ids: Vec::new(),
        scope: None,
        depth: None,
        severity,
        dedupe_key,
    }))
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
pub fn recognize(provider: Provider, headers: &Headers, body: &[u8]) -> Result<Recognition, AppError> {
    match provider {
        Provider::Github => github::recognize(headers, body),
        Provider::Crowdstrike => crowdstrike::recognize(headers, body),
        Provider::Generic => generic::recognize(headers, body),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Headers from literal pairs.
    pub(crate) fn h(pairs: &[(&str, &str)]) -> Headers {
        Headers::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    /// The trigger of a recognised event; panics on an ignored one.
    pub(crate) fn trigger(r: Recognition) -> Trigger {
        match r {
            Recognition::Trigger(t) => *t,
            Recognition::Ignored(reason) => panic!("ignored: {reason}"),
        }
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
        assert_eq!(
            Depth::parse("default_depth", "Deep"),
            Err(AppError::validation("default_depth", "default_depth must be one of quick, standard, deep"))
        );
    }
}
