//! Ports: the small async traits the use cases need from the outside world.
//!
//! Adapters live in `puck-aws` (DynamoDB, SQS, the HTTPS sender); in-memory fakes for unit tests
//! live in [`crate::testing`]. Each trait maps to the IAM actions its adapter needs, which is
//! what keeps each function's policy in template.yaml small.

use crate::ids::{AccountId, ApiKeyId, DeliveryId, EndpointId, EventId, InvestigationId, SubscriptionId};
use crate::model::{
    ApiKeyRecord, Attempt, Delivery, DeliveryStatus, Endpoint, Investigation, StoredEvent, Subscription,
};
use crate::time::Timestamp;
use async_trait::async_trait;

/// A storage failure. `Unavailable` is transient (throttling, network, 5xx); `Corrupt` means a
/// record could not be read back and needs a human.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn find_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn insert(&self, record: &ApiKeyRecord) -> StoreResult<()>;
    /// Marks the key revoked; false if the account has no such key.
    async fn revoke(&self, account: &AccountId, key_id: &ApiKeyId) -> StoreResult<bool>;
}

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    async fn insert(&self, sub: &Subscription) -> StoreResult<()>;
    async fn get(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>>;
    /// Oldest first, at most `limit`, strictly after `after`; the second value is the last id
    /// returned when more may follow.
    async fn list_page(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&SubscriptionId>,
    ) -> StoreResult<(Vec<Subscription>, Option<SubscriptionId>)>;
    /// Every subscription of the account (fan-out at publish time).
    async fn list_all(&self, account: &AccountId) -> StoreResult<Vec<Subscription>>;
    /// Replaces an existing subscription; false if it no longer exists (never recreates it).
    async fn replace(&self, sub: &Subscription) -> StoreResult<bool>;
    async fn delete(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<bool>;
    /// Sets `last_delivery_status`/`last_delivery_at` if the subscription still exists.
    async fn record_last_delivery(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        status: DeliveryStatus,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Sets `failing_since` to `since` unless it is already set (the first failure after a
    /// success); false if it was set or the subscription is gone.
    async fn mark_failing(&self, account: &AccountId, id: &SubscriptionId, since: Timestamp) -> StoreResult<bool>;
    /// Clears `failing_since` (the first success after a failure).
    async fn clear_failing(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<()>;
    /// Sets `active: false`, `disabled_reason: "failing"`, `disabled_at: at`, only while the
    /// subscription is active and still failing since `failing_since`; true for the one caller
    /// that made the change.
    async fn disable_failing(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool>;
}

/// Filters of the delivery log; every given one must hold. `since`/`until` bound `created_at`
/// to `[since, until)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub subscription_id: Option<SubscriptionId>,
    pub event_type: Option<String>,
    pub event_id: Option<EventId>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl DeliveryFilter {
    /// Whether `d` passes every filter (the in-memory store, and a check adapters can share).
    pub fn matches(&self, d: &Delivery) -> bool {
        self.status.is_none_or(|s| d.status == s)
            && self.subscription_id.as_ref().is_none_or(|s| &d.subscription_id == s)
            && self.event_type.as_ref().is_none_or(|t| &d.event_type == t)
            && self.event_id.as_ref().is_none_or(|e| &d.event_id == e)
            && self.since.is_none_or(|t| d.created_at >= t)
            && self.until.is_none_or(|t| d.created_at < t)
    }
}

/// What an attempt changed on its delivery, and the rules the store applies with it (decided by
/// the use case, so every store behaves alike).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptUpdate {
    /// Apply only while the delivery's status is one of these ([`DeliveryStatus::IN_FLIGHT`]).
    pub only_if: &'static [DeliveryStatus],
    /// TTL of the attempt record: the delivery's own `expires_at`, so they leave together.
    pub expires_at: Timestamp,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_response_status: Option<u16>,
    pub last_error: Option<String>,
    pub updated_at: Timestamp,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    async fn find_event(&self, account: &AccountId, event_id: &EventId) -> StoreResult<Option<StoredEvent>>;
    /// The records of those of `event_ids` already published (any order): a batch's
    /// idempotency check in one read where the store can batch it.
    async fn find_events(&self, account: &AccountId, event_ids: &[EventId]) -> StoreResult<Vec<StoredEvent>> {
        let mut found = Vec::new();
        for id in event_ids {
            found.extend(self.find_event(account, id).await?);
        }
        Ok(found)
    }
    /// Writes the event record unless one with the same id exists; true if written.
    async fn insert_event_if_absent(&self, event: &StoredEvent) -> StoreResult<bool>;
    /// Writes new deliveries (batched). Called before the event record, so a crash in between
    /// leaves deliveries the sweeper will send rather than an event with none.
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> StoreResult<()>;
    /// Removes deliveries written by a publish that lost a race on the same `event_id`.
    async fn remove_deliveries(&self, account: &AccountId, ids: &[DeliveryId]) -> StoreResult<()>;
    /// The delivery with its payload and its newest [`crate::model::MAX_LOGGED_ATTEMPTS`]
    /// attempts (oldest first).
    async fn get(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Option<Delivery>>;
    /// The delivery with its payload, attempts left empty: what the dispatcher needs to send.
    async fn get_to_send(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        self.get(account, id).await.map(|d| d.map(|d| Delivery { attempts: Vec::new(), ..d }))
    }
    /// Newest first, at most `limit`, strictly before `before`; summaries: `payload` and
    /// `attempts` may be left empty.
    async fn list_page(
        &self,
        account: &AccountId,
        filter: &DeliveryFilter,
        limit: usize,
        before: Option<&DeliveryId>,
    ) -> StoreResult<(Vec<Delivery>, Option<DeliveryId>)>;
    /// Logs an attempt as its own record (an attempt with the same number replaces it) and
    /// applies `update`, only while the delivery's status is in `update.only_if`; false if it was
    /// not (succeeded elsewhere, abandoned, gone), and then the attempt is not logged.
    async fn record_attempt(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        attempt: &Attempt,
        update: &AttemptUpdate,
    ) -> StoreResult<bool>;
    /// Moves a delivery to `to` if its status is one of `from`; false otherwise.
    async fn transition(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        from: &[DeliveryStatus],
        to: DeliveryStatus,
        next_attempt_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Ids of the subscription's in-flight deliveries (to abandon them on delete).
    async fn in_flight_for_subscription(
        &self,
        account: &AccountId,
        subscription: &SubscriptionId,
    ) -> StoreResult<Vec<DeliveryId>>;
    /// In-flight deliveries whose `next_attempt_at` is before `due_before`, oldest first.
    async fn overdue(&self, due_before: Timestamp, limit: usize) -> StoreResult<Vec<(AccountId, DeliveryId)>>;
}

#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Writes the endpoint and its key lookup entry together.
    async fn insert(&self, endpoint: &Endpoint) -> StoreResult<()>;
    async fn list(&self, account: &AccountId) -> StoreResult<Vec<Endpoint>>;
    async fn find_by_key_hash(&self, url_key_hash: &str) -> StoreResult<Option<Endpoint>>;
    /// Deletes the endpoint and its key lookup entry together; false if not found.
    async fn delete(&self, account: &AccountId, id: &EndpointId) -> StoreResult<bool>;
}

#[async_trait]
pub trait InvestigationStore: Send + Sync {
    /// Writes the investigation. With a `dedupe_key` (provider delivery id), writes a claim on it
    /// in the same transaction; if the claim exists, writes nothing and returns the id of the
    /// investigation that claimed it first.
    async fn insert(
        &self,
        investigation: &Investigation,
        dedupe_key: Option<&str>,
    ) -> StoreResult<Option<InvestigationId>>;
    async fn get(&self, account: &AccountId, id: &InvestigationId) -> StoreResult<Option<Investigation>>;
    /// Deletes an investigation that could not be announced (no dedupe claim lets a retry finish
    /// it), so a failed request leaves nothing behind.
    async fn remove(&self, account: &AccountId, id: &InvestigationId) -> StoreResult<()>;
}

/// A delivery job on the queue: just the address of the delivery record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryJob {
    pub account_id: AccountId,
    pub delivery_id: DeliveryId,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Enqueues jobs in batches of 10; an error if any job could not be sent.
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError>;
    /// Hides a received message for `delay_secs` (the backoff), via its receipt handle.
    async fn delay(&self, receipt_handle: &str, delay_secs: u32) -> Result<(), QueueError>;
}

/// An outbound webhook request, fully built and signed.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What happened when sending. `status` is set when a response arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SendOutcome {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    /// At most the first 4 KiB of the body (lossy UTF-8).
    pub body: String,
    pub duration_ms: u64,
    pub error: Option<String>,
}

impl SendOutcome {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs the request: HTTPS only, no redirects, the SSRF guard on the resolved address, a
    /// timeout, and a capped body read. Never panics; failures come back in `error`.
    async fn send(&self, request: &OutboundRequest) -> SendOutcome;
}

/// Time, injectable so tests can move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
