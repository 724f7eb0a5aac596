//! The records the service keeps, and their public JSON views.
//!
//! Stored records carry what the API must never show (encrypted secrets, key hashes, the
//! envelope); each has a `view()` that builds the public JSON, so no handler can forget to strip a
//! field.

use crate::format::Format;
use crate::ids::{AccountId, ApiKeyId, AttemptId, DeliveryId, EndpointId, EventId, InvestigationId, SubscriptionId};
use crate::time::Timestamp;
use crate::validation::{EventPattern, Filters, Severity, TargetUrl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What an API key may do. `webhooks:manage` covers every `/v1/webhooks/*` management route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    #[serde(rename = "events:publish")]
    EventsPublish,
    #[serde(rename = "investigations:read")]
    InvestigationsRead,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::WebhooksManage, Scope::EventsPublish, Scope::InvestigationsRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::WebhooksManage => "webhooks:manage",
            Scope::EventsPublish => "events:publish",
            Scope::InvestigationsRead => "investigations:read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// An API key as stored: only its keyed hash, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub key_id: ApiKeyId,
    pub account_id: AccountId,
    /// Hex HMAC of the key under the lookup subkey ([`crate::crypto::Keyring::lookup_hash`]).
    pub key_hash: String,
    /// `pck_live_abcd`: enough to recognise a key in a list, useless to an attacker.
    pub key_prefix: String,
    pub scopes: Vec<Scope>,
    pub revoked: bool,
    pub created_at: Timestamp,
}

/// The authenticated caller of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub account_id: AccountId,
    pub key_id: ApiKeyId,
    pub scopes: Vec<Scope>,
}

/// An outbound subscription as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub account_id: AccountId,
    pub name: Option<String>,
    pub url: TargetUrl,
    pub events: Vec<EventPattern>,
    pub filters: Filters,
    pub active: bool,
    /// Names of the custom request headers (DESIGN §4), shown with the value `***`.
    #[serde(default)]
    pub header_names: Vec<String>,
    /// Their values, a JSON object AES-256-GCM-encrypted with [`Subscription::headers_context`].
    #[serde(default)]
    pub headers_enc: Option<String>,
    /// The body deliveries carry (DESIGN §5.1); records written before formats existed are raw.
    #[serde(default)]
    pub format: Format,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_delivery_status: Option<String>,
    pub last_delivery_at: Option<Timestamp>,
    /// The signing secret, AES-256-GCM under the master key with the subscription id as context.
    pub secret_enc: String,
    /// The secret before the last rotation, still signed with until `previous_secret_expires_at`.
    pub previous_secret_enc: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    /// Since when every attempt has failed (set by the first failure after a success, cleared by
    /// the first success after a failure), which is what auto-disable compares against. Absent
    /// rather than null when unset, so a store can test for it with one condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// `"failing"` when the service disabled the subscription (DESIGN §4.1); `None` otherwise.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub disabled_at: Option<Timestamp>,
}

/// The `disabled_reason` of a subscription the service paused because it kept failing.
pub const DISABLED_FAILING: &str = "failing";

impl Subscription {
    /// The associated data of `headers_enc`: ties the ciphertext to this subscription.
    pub fn headers_context(&self) -> String {
        format!("{}#headers", self.id)
    }

    /// The public shape: everything but secrets; custom header values are `***`.
    pub fn view(&self) -> Value {
        let headers: serde_json::Map<String, Value> =
            self.header_names.iter().map(|n| (n.clone(), Value::from(REDACTED))).collect();
        json!({
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "events": self.events,
            "filters": self.filters,
            "active": self.active,
            "format": self.format,
            "headers": headers,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_delivery_status": self.last_delivery_status,
            "last_delivery_at": self.last_delivery_at,
            "disabled_reason": self.disabled_reason,
            "disabled_at": self.disabled_at,
        })
    }
}

/// What a custom header value is shown as, in views and in the delivery log.
pub const REDACTED: &str = "***";

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Written, waiting for its first (or replayed) attempt.
    Pending,
    Succeeded,
    /// Last attempt failed; SQS will bring it back after the backoff delay.
    Failed,
    /// Retries exhausted (dead-lettered) or the receiver answered 410.
    FailedPermanent,
    /// Its subscription was deleted before it succeeded.
    Abandoned,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::FailedPermanent,
        DeliveryStatus::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::FailedPermanent => "failed_permanent",
            DeliveryStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The statuses still owed an attempt; the one spelling of the in-flight condition that
    /// use cases pass to [`crate::ports::DeliveryStore`] (which applies it atomically).
    pub const IN_FLIGHT: [DeliveryStatus; 2] = [DeliveryStatus::Pending, DeliveryStatus::Failed];

    /// Still owed an attempt: the dispatcher may send it and the sweeper watches it.
    pub fn is_in_flight(self) -> bool {
        Self::IN_FLIGHT.contains(&self)
    }
}

/// One HTTP attempt, as shown in the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt_id: AttemptId,
    pub number: u32,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    /// The target of this attempt (the subscription's URL may change between attempts).
    #[serde(default)]
    pub url: Option<String>,
    /// Request headers with signatures and custom header values redacted.
    pub request_headers: BTreeMap<String, String>,
    pub response_status: Option<u16>,
    pub response_headers: BTreeMap<String, String>,
    /// The first 4 KiB of the response body.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// How many attempts a delivery shows (the newest): every attempt is kept as its own record until
/// the retention TTL, and a delivery is read with at most this many, however often it was
/// retried and replayed.
pub const MAX_LOGGED_ATTEMPTS: u32 = 20;

/// The newest [`MAX_LOGGED_ATTEMPTS`] of `attempts` (any order in), oldest first: what a store
/// returns as [`Delivery::attempts`].
pub fn newest_attempts(mut attempts: Vec<Attempt>) -> Vec<Attempt> {
    attempts.sort_by_key(|a| a.number);
    attempts.dedup_by_key(|a| a.number);
    let keep = attempts.len().saturating_sub(MAX_LOGGED_ATTEMPTS as usize);
    attempts.drain(..keep);
    attempts
}

/// One event owed to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub account_id: AccountId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    /// When the next attempt is due; the sweeper re-enqueues in-flight deliveries long past it.
    pub next_attempt_at: Option<Timestamp>,
    pub last_response_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the retention TTL removes the delivery and its attempts (whole seconds); set by the
    /// use case from `Settings::retention_days` and the injected clock.
    #[serde(default)]
    pub expires_at: Timestamp,
    /// The envelope exactly as it is signed and sent, fixed at publish time so every retry and
    /// replay sends the same bytes.
    pub payload: String,
    /// The newest [`MAX_LOGGED_ATTEMPTS`] attempts, oldest first (see [`newest_attempts`]).
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

impl Delivery {
    /// The log-line shape, without attempts.
    pub fn summary_view(&self) -> Value {
        json!({
            "id": self.id,
            "subscription_id": self.subscription_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempt_count": self.attempt_count,
            "next_attempt_at": self.next_attempt_at,
            "last_response_status": self.last_response_status,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }

    /// The detail shape: the summary, the exact body sent (`payload`) and the logged attempts,
    /// oldest first.
    pub fn detail_view(&self) -> Value {
        let mut attempts: Vec<&Attempt> = self.attempts.iter().collect();
        attempts.sort_by_key(|a| a.number);
        let mut v = self.summary_view();
        v["payload"] = Value::String(self.payload.clone());
        v["attempts"] = serde_json::to_value(attempts).unwrap_or(Value::Array(vec![]));
        v
    }
}

/// A published event, kept so that publishing the same `event_id` again is a no-op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub account_id: AccountId,
    pub event_id: EventId,
    pub event_type: String,
    pub severity: Option<Severity>,
    pub tags: BTreeMap<String, String>,
    pub emitted_at: Timestamp,
    pub delivery_count: u32,
    /// When the retention TTL removes the record (whole seconds): after that the same
    /// `event_id` publishes again.
    #[serde(default)]
    pub expires_at: Timestamp,
}

/// Inbound providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Generic,
    Github,
    Crowdstrike,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Generic, Provider::Github, Provider::Crowdstrike];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Generic => "generic",
            Provider::Github => "github",
            Provider::Crowdstrike => "crowdstrike",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// An inbound receiver endpoint as stored: the URL key only as a keyed hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub account_id: AccountId,
    pub provider: Provider,
    pub url_key_hash: String,
    pub url_key_prefix: String,
    /// Provider signing secret, AES-256-GCM with the endpoint id as context.
    pub signing_secret_enc: Option<String>,
    pub active: bool,
    pub default_scope: Option<Value>,
    pub default_depth: Option<String>,
    pub created_at: Timestamp,
}

impl Endpoint {
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "provider": self.provider,
            "url_key_prefix": self.url_key_prefix,
            "active": self.active,
            "signature_verification": self.signing_secret_enc.is_some(),
            "default_scope": self.default_scope,
            "default_depth": self.default_depth,
            "created_at": self.created_at,
        })
    }
}

/// An investigation triggered by an inbound event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    pub id: InvestigationId,
    pub account_id: AccountId,
    pub status: String,
    pub provider: Provider,
    pub endpoint_id: EndpointId,
    /// What triggered it, e.g. `github:code_scanning_alert` or `generic`.
    pub trigger: String,
    pub query: String,
    pub summary: String,
    pub agent_ids: Vec<String>,
    pub scope: Option<Value>,
    pub depth: Option<String>,
    pub created_at: Timestamp,
}

impl Investigation {
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "provider": self.provider,
            "endpoint_id": self.endpoint_id,
            "trigger": self.trigger,
            "query": self.query,
            "summary": self.summary,
            "agent_ids": self.agent_ids,
            "scope": self.scope,
            "depth": self.depth,
            "created_at": self.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_attempts_keeps_the_last_twenty_oldest_first() {
        let attempt = |number: u32| Attempt {
            attempt_id: crate::ids::AttemptId::generate(u64::from(number)),
            number,
            started_at: Timestamp(i64::from(number)),
            duration_ms: 1,
            url: Some("https://hooks.example.com/h".into()),
            request_headers: BTreeMap::new(),
            response_status: Some(500),
            response_headers: BTreeMap::new(),
            response_body: None,
            error: None,
        };
        let few = newest_attempts(vec![attempt(2), attempt(1)]);
        assert_eq!(few.iter().map(|a| a.number).collect::<Vec<_>>(), vec![1, 2]);
        let many = newest_attempts((1..=45).rev().map(attempt).chain([attempt(45)]).collect());
        assert_eq!(many.iter().map(|a| a.number).collect::<Vec<_>>(), (26..=45).collect::<Vec<_>>());
    }
}
