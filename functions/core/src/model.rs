//! The records the service keeps, and their public JSON views.
//!
//! Stored records carry what the API must never show (encrypted secrets, key hashes, the
//! envelope); each has a `view()` that builds the public JSON, so no handler can forget to strip a
//! field.

use crate::body_formats::Format;
use crate::destination::AwsDestination;
use crate::ids::{AccountId, ApiKeyId, AttemptId, DeliveryId, EventId, SubscriptionId};
use crate::signing_key::SignatureScheme;
use crate::time::Timestamp;
use crate::validation::{EventPattern, Filters, Severity, TargetUrl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

mod inbound;
pub use inbound::{Endpoint, Investigation, Provider};

/// What an API key may do. `webhooks:manage` covers every `/v1/webhooks/*` management route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// `webhooks:manage`: every `/v1/webhooks/*` management route.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    /// `events:publish`: publishing events.
    #[serde(rename = "events:publish")]
    EventsPublish,
    /// `investigations:read`: reading investigations.
    #[serde(rename = "investigations:read")]
    InvestigationsRead,
}

impl Scope {
    /// Every scope, in the order lists show them.
    pub const ALL: [Scope; 3] = [Scope::WebhooksManage, Scope::EventsPublish, Scope::InvestigationsRead];

    /// The wire name, e.g. `events:publish`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::WebhooksManage => "webhooks:manage",
            Scope::EventsPublish => "events:publish",
            Scope::InvestigationsRead => "investigations:read",
        }
    }

    /// Parses a wire name; None for an unknown scope.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// An API key as stored: only its keyed hash, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// `key_` id; shown in lists and used to revoke.
    pub key_id: ApiKeyId,
    /// The owning account; every request made with the key is scoped to it.
    pub account_id: AccountId,
    /// Hex HMAC of the key under the lookup subkey ([`crate::crypto::Keyring::lookup_hash`]).
    pub key_hash: String,
    /// `pck_live_abcd`: enough to recognise a key in a list, useless to an attacker.
    pub key_prefix: String,
    /// What the key may do; a route needing a scope not listed here answers 403.
    pub scopes: Vec<Scope>,
    /// Set by revoke; a revoked key authenticates nothing (401) but stays for audit.
    pub revoked: bool,
    /// When the key was created.
    pub created_at: Timestamp,
}

/// The authenticated caller of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The account every store call of the request is scoped to.
    pub account_id: AccountId,
    /// The key that authenticated, for logs and audit.
    pub key_id: ApiKeyId,
    /// The key's scopes, checked per route.
    pub scopes: Vec<Scope>,
}

/// An outbound subscription as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// `sub_` id, also the AES-GCM context of the signing secret.
    pub id: SubscriptionId,
    /// The owning account (partition of the record).
    pub account_id: AccountId,
    /// Free label from the caller; None when not given.
    pub name: Option<String>,
    /// HTTPS target, validated at write time ([`TargetUrl::parse`]); re-checked on the resolved
    /// address when sent. None exactly when `destination` is set.
    #[serde(default)]
    pub url: Option<TargetUrl>,
    /// Event type patterns: exact types, `prefix.*` or `"*"`; at least one.
    pub events: Vec<EventPattern>,
    /// `min_severity` and `tags`; empty filters let every matching event through.
    pub filters: Filters,
    /// False when paused by the caller or auto-disabled (see `disabled_reason`); no deliveries then.
    pub active: bool,
    /// Names of the custom request headers (docs/api.md), shown with the value `***`.
    #[serde(default)]
    pub header_names: Vec<String>,
    /// Their values, a JSON object AES-256-GCM-encrypted with [`Subscription::headers_context`].
    #[serde(default)]
    pub headers_enc: Option<String>,
    /// The body deliveries carry (docs/receiving.md, "Formats"); records written before formats existed are raw.
    #[serde(default)]
    pub format: Format,
    /// OAuth 2.0 client credentials for the receiver ([`crate::oauth`]); None: no token sent.
    /// Stored as null when removed, so a settings write clears it.
    #[serde(default)]
    pub auth: Option<crate::oauth::StoredAuth>,
    /// When the subscription was created.
    pub created_at: Timestamp,
    /// Bumped by every change the caller makes.
    pub updated_at: Timestamp,
    /// Status of the newest finished attempt (`succeeded`, `failed`, …); None before the first.
    pub last_delivery_status: Option<String>,
    /// When that attempt finished; None before the first.
    pub last_delivery_at: Option<Timestamp>,
    /// The signing secret, AES-256-GCM under the master key with the subscription id as context.
    pub secret_enc: String,
    /// The secret before the last rotation, still signed with until `previous_secret_expires_at`.
    pub previous_secret_enc: Option<String>,
    /// When the previous secret stops being signed with; None when there is none.
    pub previous_secret_expires_at: Option<Timestamp>,
    /// Since when every attempt has failed (set by the first failure after a success, cleared by
    /// the first success after a failure), which is what auto-disable compares against. Absent
    /// rather than null when unset, so a store can test for it with one condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// Failed attempts in a row since `failing_since`, counted up to the threshold of the
    /// `webhook.subscription.failing` event and no further (docs/api.md, "Operational events"); 0 when
    /// not failing. Like the clock, written only by failures that change it.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// `"failing"` when the service disabled the subscription (docs/api.md, "Operational events"); `None` otherwise.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// When the service disabled it; None unless `disabled_reason` is set.
    #[serde(default)]
    pub disabled_at: Option<Timestamp>,
    /// Bumped by every write of the settings (a PATCH, an auto-disable), never by the attempt
    /// path's bookkeeping: a PATCH writes only if it is still the version it read, so two
    /// PATCHes (or a PATCH and an auto-disable) cannot undo each other. 0 on records written
    /// before versions existed.
    #[serde(default)]
    pub version: u64,
    /// How deliveries are signed, fixed at creation; records written before schemes existed are
    /// `hmac-sha256`. For `ed25519`, `secret_enc` holds the private key (`whsk_…`).
    #[serde(default)]
    pub signature_scheme: SignatureScheme,
    /// The current Ed25519 public key (`whpk_…`), public by design; None for `hmac-sha256`.
    #[serde(default)]
    pub public_key: Option<String>,
    /// At most this many attempts start per second (docs/flow-control.md); None: no limit.
    #[serde(default)]
    pub rate_limit_per_second: Option<crate::rate::RateLimit>,
    /// Deliveries created while set are attempted one at a time in publish order (docs/flow-control.md).
    #[serde(default)]
    pub fifo: bool,
    /// The AWS queue or event bus deliveries go to instead of `url` (docs/receiving.md, "AWS
    /// destinations"); None for an HTTPS receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<AwsDestination>,
}

/// The `disabled_reason` of a subscription the service paused because it kept failing.
pub const DISABLED_FAILING: &str = "failing";

impl Subscription {
    /// Where its deliveries go, as the delivery log and operational events show it: the HTTPS
    /// URL, or the queue URL or bus ARN of its AWS destination.
    pub fn target_address(&self) -> &str {
        match (&self.destination, &self.url) {
            (Some(d), _) => d.address(),
            (None, Some(url)) => url.as_str(),
            (None, None) => "",
        }
    }

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
            "destination": self.destination.as_ref().map(AwsDestination::view),
            "events": self.events,
            "filters": self.filters,
            "active": self.active,
            "format": self.format,
            "headers": headers,
            "auth": self.auth.as_ref().map(crate::oauth::StoredAuth::view),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_delivery_status": self.last_delivery_status,
            "last_delivery_at": self.last_delivery_at,
            "disabled_reason": self.disabled_reason,
            "disabled_at": self.disabled_at,
            "signature_scheme": self.signature_scheme,
            "public_key": self.public_key,
            "rate_limit_per_second": self.rate_limit_per_second,
            "fifo": self.fifo,
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
    /// A 2xx arrived; terminal.
    Succeeded,
    /// Last attempt failed; SQS will bring it back after the backoff delay.
    Failed,
    /// Retries exhausted (dead-lettered) or the receiver answered 410.
    FailedPermanent,
    /// Its subscription was deleted before it succeeded.
    Abandoned,
}

impl DeliveryStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::FailedPermanent,
        DeliveryStatus::Abandoned,
    ];

    /// The wire name, e.g. `failed_permanent`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::FailedPermanent => "failed_permanent",
            DeliveryStatus::Abandoned => "abandoned",
        }
    }

    /// Parses a wire name (the `status` filter); None for an unknown status.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The statuses still owed an attempt; the one spelling of the in-flight condition that
    /// use cases pass to [`crate::ports::DeliveryStore`] (which applies it atomically).
    pub const IN_FLIGHT: [DeliveryStatus; 2] = [DeliveryStatus::Pending, DeliveryStatus::Failed];
    /// The statuses a delivery ends in; only these can be replayed.
    pub const FINISHED: [DeliveryStatus; 3] =
        [DeliveryStatus::Succeeded, DeliveryStatus::FailedPermanent, DeliveryStatus::Abandoned];

    /// Still owed an attempt: the dispatcher may send it and the sweeper watches it.
    pub fn is_in_flight(self) -> bool {
        Self::IN_FLIGHT.contains(&self)
    }
}

/// One HTTP attempt, as shown in the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// `att_` id of the attempt record.
    pub attempt_id: AttemptId,
    /// 1-based; logging an attempt with the same number replaces the earlier record.
    pub number: u32,
    /// When the request was sent.
    pub started_at: Timestamp,
    /// Wall time until the response (or the failure), in milliseconds.
    pub duration_ms: u64,
    /// The target of this attempt (the subscription's URL may change between attempts).
    #[serde(default)]
    pub url: Option<String>,
    /// Request headers with signatures and custom header values redacted.
    pub request_headers: BTreeMap<String, String>,
    /// HTTP status of the response; None on timeout or connection failure.
    pub response_status: Option<u16>,
    /// Response headers as received, capped (see [`crate::ports::SendOutcome::stored_headers`]).
    pub response_headers: BTreeMap<String, String>,
    /// How many response headers were received but not stored (0 when all were).
    #[serde(default)]
    pub response_headers_omitted: u32,
    /// The first 4 KiB of the response body.
    pub response_body: Option<String>,
    /// Why the attempt failed (timeout, TLS, SSRF guard, non-2xx); None on success.
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
    /// `dlv_` id; ULIDs sort by creation, which the newest-first log relies on.
    pub id: DeliveryId,
    /// The owning account (partition of the record).
    pub account_id: AccountId,
    /// The subscription the delivery is owed to.
    pub subscription_id: SubscriptionId,
    /// The producer's event id, the same in the envelope.
    pub event_id: EventId,
    /// Dotted event type, copied from the event for filtering the log.
    pub event_type: String,
    /// Where it is in its life; only [`DeliveryStatus::IN_FLIGHT`] statuses are sent.
    pub status: DeliveryStatus,
    /// Attempts made so far (0 until the first).
    pub attempt_count: u32,
    /// `attempt_count` when the delivery was last replayed: the attempt limit and the backoff
    /// schedule count from here, so a replay gets a whole new schedule while the log keeps
    /// numbering attempts from 1.
    #[serde(default)]
    pub round_start: u32,
    /// Created while its subscription was `fifo`: its jobs go to the FIFO queue, in line behind
    /// the subscription's earlier deliveries. Absent (false) on every other delivery.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fifo: bool,
    /// When the next attempt is due; the sweeper re-enqueues in-flight deliveries long past it.
    pub next_attempt_at: Option<Timestamp>,
    /// HTTP status of the newest attempt; None before one or when no response arrived.
    pub last_response_status: Option<u16>,
    /// Why the newest attempt failed; None before one or after a success.
    pub last_error: Option<String>,
    /// When the delivery was written at publish; a replay keeps it.
    pub created_at: Timestamp,
    /// When status or counters last changed.
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
    /// The publishing account.
    pub account_id: AccountId,
    /// The producer's event id (the idempotency key within the account).
    pub event_id: EventId,
    /// Dotted event type.
    pub event_type: String,
    /// None when the event carries no severity.
    pub severity: Option<Severity>,
    /// The event's tags; empty when none were given.
    pub tags: BTreeMap<String, String>,
    /// When it was published.
    pub emitted_at: Timestamp,
    /// How many deliveries the publish created (0 when no subscription matched).
    pub delivery_count: u32,
    /// When the retention TTL removes the record (whole seconds): after that the same
    /// `event_id` publishes again.
    #[serde(default)]
    pub expires_at: Timestamp,
    /// Names the publish call that wrote the record, so a write of it that is tried again (its
    /// answer lost in transit) is known as this publish, never as another one of the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_token: Option<String>,
    /// The deliveries the publish made, so the sweeper can send any whose enqueue was lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliveryId>,
    /// The bodies its deliveries send, each once (one per format), in the order of the first
    /// delivery that sends it: the payload stored once per event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bodies: Vec<String>,
}

impl StoredEvent {
    /// The distinct payloads of `deliveries`, in order of first appearance (what
    /// [`StoredEvent::bodies`] holds for them).
    pub fn bodies_of(deliveries: &[Delivery]) -> Vec<String> {
        let mut bodies: Vec<String> = Vec::new();
        for d in deliveries {
            if !bodies.contains(&d.payload) {
                bodies.push(d.payload.clone());
            }
        }
        bodies
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
            response_headers_omitted: 0,
            response_body: None,
            error: None,
        };
        let few = newest_attempts(vec![attempt(2), attempt(1)]);
        assert_eq!(few.iter().map(|a| a.number).collect::<Vec<_>>(), vec![1, 2]);
        let many = newest_attempts((1..=45).rev().map(attempt).chain([attempt(45)]).collect());
        assert_eq!(many.iter().map(|a| a.number).collect::<Vec<_>>(), (26..=45).collect::<Vec<_>>());
    }

    /// Every stored attempt field is capped, so the detail of a delivery whose twenty logged
    /// attempts all hit every cap (text that JSON must escape included) stays well under
    /// Lambda's 6 MB response, and one attempt record well under DynamoDB's 400 KB item.
    #[test]
    fn detail_of_twenty_maximal_attempts_stays_well_under_the_response_limit() {
        use crate::ports::{SendOutcome, MAX_STORED_RESPONSE_HEADER_BYTES};
        let flood: Vec<_> = (0..1000).map(|i| (format!("x-flood-{i}"), "\"".repeat(4000))).collect();
        let outcome = SendOutcome { status: Some(200), headers: flood, ..SendOutcome::default() };
        let (response_headers, response_headers_omitted) = outcome.stored_headers();
        let attempt = |number: u32| Attempt {
            attempt_id: crate::ids::AttemptId::generate(u64::from(number)),
            number,
            started_at: Timestamp(i64::from(number)),
            duration_ms: 1,
            url: Some(format!("https://hooks.example.com/{}", "p".repeat(crate::validation::MAX_URL_LEN))),
            request_headers: (0..30).map(|i| (format!("{i}{}", "n".repeat(256)), "***".into())).collect(),
            response_status: Some(200),
            response_headers: response_headers.clone(),
            response_headers_omitted,
            response_body: Some("\u{1}".repeat(4096)),
            error: Some("e".repeat(1024)),
        };
        let one = serde_json::to_string(&attempt(1)).unwrap().len();
        assert!(one < 100 * 1024, "one attempt is {one} bytes");
        assert!(response_headers_omitted > 900 && MAX_STORED_RESPONSE_HEADER_BYTES < 20 * 1024);
        let delivery = Delivery {
            id: crate::ids::DeliveryId::generate(1),
            account_id: crate::ids::AccountId::generate(1),
            subscription_id: crate::ids::SubscriptionId::generate(1),
            event_id: crate::ids::EventId::parse("evt-1").unwrap(),
            event_type: "finding.discovered".into(),
            status: DeliveryStatus::Succeeded,
            attempt_count: 45,
            round_start: 0,
            fifo: false,
            next_attempt_at: None,
            last_response_status: Some(200),
            last_error: None,
            created_at: Timestamp(1),
            updated_at: Timestamp(1),
            expires_at: Timestamp(1),
            payload: "\"".repeat(crate::services::events::MAX_EVENT_BYTES + 16 * 1024),
            attempts: newest_attempts((1..=45).map(attempt).collect()),
        };
        let size = delivery.detail_view().to_string().len();
        assert!(size < 3 * 1024 * 1024, "detail is {size} bytes");
    }
}
