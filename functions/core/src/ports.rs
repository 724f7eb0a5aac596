//! Ports: the small async traits the use cases need from the outside world.
//!
//! Adapters live in `puck-aws` (DynamoDB, SQS, the HTTPS sender); in-memory fakes for unit tests
//! live in [`crate::fakes`]. Each trait maps to the IAM actions its adapter needs, which is
//! what keeps each function's policy in template.yaml small.

pub use crate::error::{StoreError, StoreResult};
use crate::ids::{AccountId, ApiKeyId, AttemptId, DeliveryId, EndpointId, EventId, InvestigationId, SubscriptionId};
use crate::model::{
    ApiKeyRecord, Attempt, Delivery, DeliveryStatus, Endpoint, Investigation, StoredEvent, Subscription,
};
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// API keys and their hash lookup. Adapter needs `dynamodb:GetItem`, `dynamodb:PutItem` (the transactional insert
/// of record and hash entry) and `dynamodb:UpdateItem` (revoke).
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// The key whose SHA-256 hash is `key_hash`, revoked or not; the caller checks `revoked_at`.
    async fn find_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// Writes the key record and its hash lookup entry in one transaction.
    async fn insert(&self, record: &ApiKeyRecord) -> StoreResult<()>;
    /// Marks the key revoked; false if the account has no such key.
    async fn revoke(&self, account: &AccountId, key_id: &ApiKeyId) -> StoreResult<bool>;
    /// Whether the account exists: accounts have no record of their own, so an account is one
    /// that an API key was ever issued to (revoked or not). Adapter needs `dynamodb:Query`.
    async fn account_exists(&self, account: &AccountId) -> StoreResult<bool>;
}

/// Subscriptions per account. Adapter needs `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:Query`,
/// `dynamodb:UpdateItem` and `dynamodb:DeleteItem`.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Writes a new subscription; the id is fresh, so no existence check.
    async fn insert(&self, sub: &Subscription) -> StoreResult<()>;
    /// The subscription, or None if it is not in this account.
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
    /// The subscription as stored now, past any cache: what a read-modify-write (PATCH) starts
    /// from, so its version check compares against the latest write.
    async fn get_fresh(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        self.get(account, id).await
    }
    /// Writes the settings of `sub` (what PATCH changes, plus `disabled_reason`/`disabled_at`)
    /// only if the stored version is still `read_version`, and bumps the version. The attempt
    /// path's fields (`last_delivery_*`, `failing_since`, `consecutive_failures`) are left as
    /// stored, except that `restart_failing_clock` removes the clock and its count (re-enabling
    /// restarts the clock).
    async fn update_settings(
        &self,
        sub: &Subscription,
        read_version: u64,
        restart_failing_clock: bool,
    ) -> StoreResult<SettingsWrite>;
    /// Deletes the subscription; false if it was not there.
    async fn delete(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<bool>;
    /// Sets `last_delivery_status`/`last_delivery_at` if the subscription still exists and no
    /// later outcome is recorded (a held write that lands late does not undo a newer one).
    async fn record_last_delivery(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        status: DeliveryStatus,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Sets `failing_since` to `since`, and `consecutive_failures` to 1, unless it is already set
    /// (the first failure after a success); false if it was set or the subscription is gone.
    async fn mark_failing(&self, account: &AccountId, id: &SubscriptionId, since: Timestamp) -> StoreResult<bool>;
    /// Clears `failing_since` and `consecutive_failures` (the first success after a failure).
    async fn clear_failing(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<()>;
    /// Adds one to `consecutive_failures` while the subscription is still failing since
    /// `failing_since` and the count is below `limit`: the new count, or None when nothing was
    /// written (the run ended or restarted, the count already reached `limit`, or the
    /// subscription is gone). Of racing callers exactly one gets each count.
    async fn count_failure(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        limit: u32,
    ) -> StoreResult<Option<u32>>;
    /// Sets `active: false`, `disabled_reason: "failing"`, `disabled_at: at` and bumps the
    /// version (a PATCH that read before it then conflicts), only while the subscription is
    /// active and still failing since `failing_since`; true for the one caller that made the
    /// change.
    async fn disable_failing(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool>;
}

/// What [`SubscriptionStore::update_settings`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsWrite {
    /// Written; the stored version is now `read_version + 1`.
    Written,
    /// Not written: another write changed the subscription since it was read.
    Changed,
    /// Not written: the subscription no longer exists (never recreated).
    Gone,
}

/// Filters of the delivery log; every given one must hold. `since`/`until` bound `created_at`
/// to `[since, until)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries of this subscription.
    pub subscription_id: Option<SubscriptionId>,
    /// Only deliveries of this event type (exact match).
    pub event_type: Option<String>,
    /// Only deliveries of this event.
    pub event_id: Option<EventId>,
    /// Inclusive lower bound on `created_at`.
    pub since: Option<Timestamp>,
    /// Exclusive upper bound on `created_at`.
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
    /// The delivery's new status.
    pub status: DeliveryStatus,
    /// Attempts made so far, this one included.
    pub attempt_count: u32,
    /// When to retry; None when the status is terminal.
    pub next_attempt_at: Option<Timestamp>,
    /// HTTP status of the response; None when none arrived (timeout, connection error).
    pub last_response_status: Option<u16>,
    /// Why the attempt failed, for the log; None on success.
    pub last_error: Option<String>,
    /// Stamped as the delivery's `updated_at`.
    pub updated_at: Timestamp,
    /// The claim the attempt was made under ([`DeliveryStore::claim`]): applied only while the
    /// delivery still holds it, and released with the update. None for a write made without one.
    pub claim: Option<AttemptId>,
}

/// A worker's request to own a delivery for one attempt ([`DeliveryStore::claim`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    /// Who claims: the SQS message id of the job (or a name of its own for an attempt made
    /// outside the queue). The same holder may take over its own claim: that message came back
    /// because the worker holding it died.
    pub holder: String,
    /// Names the claim: the id of the attempt about to be made, which the attempt's record must
    /// still find ([`AttemptUpdate::claim`]).
    pub token: AttemptId,
    /// The worker's clock; a claim whose lease ended before it is free.
    pub now: Timestamp,
    /// The end of this claim's lease: no later than when the worker can no longer send (its
    /// function's timeout), so a crashed worker's claim frees itself.
    pub lease_until: Timestamp,
    /// Only a delivery whose next attempt is due by this time is claimed (`now` plus a little
    /// clock slack), unless the sweeper re-enqueued it: an early duplicate message is not an
    /// attempt ahead of the schedule.
    pub due_by: Timestamp,
}

/// What [`DeliveryStore::claim`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The delivery is this worker's until the lease ends: its summary and payload, attempts empty.
    Claimed(Delivery),
    /// No such delivery (expired, or removed by a publish that lost a race).
    Missing,
    /// Not in flight any more (succeeded, dead-lettered, abandoned): the summary, payload empty.
    Finished(Delivery),
    /// Another worker holds a claim until this time.
    Held {
        /// When that claim's lease ends.
        until: Timestamp,
    },
    /// In flight but not due until this time: a duplicate of a message already handled.
    NotDue {
        /// The delivery's next attempt time.
        at: Timestamp,
    },
}

/// How [`DeliveryStore::insert_events`] writes several records (docs/delivery.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordWrite {
    /// All or none, in one transaction (billed twice): a batch with generated event ids, whose
    /// retry could not recognise what a failed try stored.
    AllOrNone,
    /// Each on its own: every event id is the producer's, so a retry publishes what is missing.
    EachAlone,
}

/// Events, deliveries and their attempt log. Adapter needs `dynamodb:GetItem`, `dynamodb:PutItem`,
/// `dynamodb:UpdateItem`, `dynamodb:DeleteItem`, `dynamodb:Query` and `dynamodb:BatchWriteItem`
/// (plus `dynamodb:BatchGetItem` where `find_events` is batched).
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// The published event with this id, or None: the idempotency check of a publish.
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
    /// Writes the records of new events (the durable point of a publish), as `mode` says, each
    /// only if no record with its id exists. A record found holding the writer's own
    /// `publish_token` counts as written: an earlier try of this same write stored it and its
    /// answer was lost. Per event: None when written, or the record of the other publish that
    /// holds its id; with [`RecordWrite::AllOrNone`], when any is Some nothing was written. An
    /// error leaves the outcome unknown (with [`RecordWrite::EachAlone`], per record).
    /// DynamoDB: PutItem or TransactWriteItems, conditional, with
    /// `ReturnValuesOnConditionCheckFailure`.
    async fn insert_events(&self, events: &[StoredEvent], mode: RecordWrite) -> StoreResult<Vec<Option<StoredEvent>>>;
    /// Writes new deliveries (batched). Called before the event record, so a crash in between
    /// leaves deliveries the sweeper will send rather than an event with none.
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> StoreResult<()>;
    /// Removes deliveries written by a publish that lost a race on the same `event_id`.
    async fn remove_deliveries(&self, account: &AccountId, ids: &[DeliveryId]) -> StoreResult<()>;
    /// The delivery with its payload and its newest [`crate::model::MAX_LOGGED_ATTEMPTS`]
    /// attempts (oldest first).
    async fn get(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Option<Delivery>>;
    /// The delivery with its payload, attempts left empty.
    async fn get_to_send(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        self.get(account, id).await.map(|d| d.map(|d| Delivery { attempts: Vec::new(), ..d }))
    }
    /// Claims an in-flight, due (or swept) delivery that no other worker holds, in one
    /// conditional write, before its attempt is sent: so a duplicate message, the sweeper's copy
    /// and a replay never send one delivery in parallel. DynamoDB: UpdateItem returning the item
    /// (and, on a failed condition, the item as it was), plus the GetItem of its body.
    async fn claim(&self, account: &AccountId, id: &DeliveryId, request: &ClaimRequest) -> StoreResult<Claim>;
    /// Pushes an in-flight delivery's next attempt to `next_attempt_at` and marks it swept, so
    /// the next sweep skips it while the message sent now is on its way and that message may
    /// claim it although it is not due; false if it is no longer in flight.
    async fn mark_swept(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        next_attempt_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Newest first, at most `limit`, strictly before `before`; summaries: `payload` and
    /// `attempts` may be left empty. The second value, when set, is where the next page starts
    /// (exclusive): every delivery above it has been looked at. A store may bound the items it
    /// reads for one page, so a page may hold fewer than `limit` (even none) with more to come.
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
    /// Puts a delivery whose status is one of `from` back to `pending`, due at `now`, with a new
    /// attempt budget (`round_start` = `attempt_count`); false otherwise. DynamoDB: UpdateItem.
    async fn replay(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        from: &[DeliveryStatus],
        now: Timestamp,
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
    /// In-flight deliveries whose `next_attempt_at` is before `due_before`, about oldest first,
    /// at most `limit`, leaving out those of the accounts in `skip` (so the sweeper can look past
    /// one account's backlog to the others').
    async fn overdue(
        &self,
        due_before: Timestamp,
        limit: usize,
        skip: &[AccountId],
    ) -> StoreResult<Vec<(AccountId, DeliveryId)>>;
    /// Deliveries of events published from the store's sweep mark up to `before` that nothing
    /// has taken yet (no attempt, claim or sweep: their enqueue may have been lost), from at most
    /// about `limit` events. A store whose [`DeliveryStore::overdue`] already lists every
    /// in-flight delivery (the in-memory one) has none to add.
    async fn unsent(&self, _before: Timestamp, _limit: usize) -> StoreResult<Unsent> {
        Ok(Unsent::default())
    }
    /// Moves the sweep mark to `upto` once every delivery [`DeliveryStore::unsent`] returned
    /// was swept: the events before it are not looked at again.
    async fn unsent_swept(&self, _upto: Timestamp) -> StoreResult<()> {
        Ok(())
    }
}

/// What [`DeliveryStore::unsent`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unsent {
    /// The deliveries to sweep.
    pub deliveries: Vec<(AccountId, DeliveryId)>,
    /// Every event published before this was looked at (None: nothing to move the mark to).
    pub upto: Option<Timestamp>,
    /// More events wait between `upto` and the asked bound.
    pub more: bool,
}

/// Inbound endpoints and their URL key lookup. Adapter needs `dynamodb:GetItem`, `dynamodb:Query`,
/// `dynamodb:PutItem` and `dynamodb:DeleteItem` (the last two through `TransactWriteItems`).
#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Writes the endpoint and its key lookup entry together.
    async fn insert(&self, endpoint: &Endpoint) -> StoreResult<()>;
    /// Every endpoint of the account.
    async fn list(&self, account: &AccountId) -> StoreResult<Vec<Endpoint>>;
    /// The endpoint whose URL key hashes to `url_key_hash`: how a receive request finds its endpoint.
    async fn find_by_key_hash(&self, url_key_hash: &str) -> StoreResult<Option<Endpoint>>;
    /// Deletes the endpoint and its key lookup entry together; false if not found.
    async fn delete(&self, account: &AccountId, id: &EndpointId) -> StoreResult<bool>;
}

/// Investigations and their dedupe claims. Adapter needs `dynamodb:GetItem`, `dynamodb:PutItem` and
/// `dynamodb:DeleteItem` (`insert` with a claim goes through `TransactWriteItems`).
#[async_trait]
pub trait InvestigationStore: Send + Sync {
    /// Writes the investigation. With a `dedupe_key` (see `Trigger::claim_key`), writes a claim on it
    /// in the same transaction; if the claim exists, writes nothing and returns the id of the
    /// investigation that claimed it first.
    async fn insert(
        &self,
        investigation: &Investigation,
        dedupe_key: Option<&str>,
    ) -> StoreResult<Option<InvestigationId>>;
    /// The investigation, or None if it is not in this account.
    async fn get(&self, account: &AccountId, id: &InvestigationId) -> StoreResult<Option<Investigation>>;
    /// Deletes an investigation that could not be announced (no dedupe claim lets a retry finish
    /// it), so a failed request leaves nothing behind.
    async fn remove(&self, account: &AccountId, id: &InvestigationId) -> StoreResult<()>;
}

/// A delivery job on the queue: just the address of the delivery record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryJob {
    /// Account that owns the delivery (the partition of its record).
    pub account_id: AccountId,
    /// The delivery to send.
    pub delivery_id: DeliveryId,
    /// Times the dead-letter function handed this delivery back to the queue because its
    /// receives, not its attempts, were used up; absent (0) on every other job. Bounds that loop.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handed_back: u32,
    /// The delivery's subscription, when the producer knew it: the dispatcher applies the
    /// in-flight cap before it claims the delivery. Absent on sweeper jobs and older messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    /// The slot reserved under the subscription's rate limit by an earlier message of this
    /// delivery ([`crate::rate`]); absent on every other job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_slot: Option<crate::rate::RateSlot>,
    /// The message group on the FIFO delivery queue (the subscription id) when the delivery is in
    /// its subscription's line ([`crate::model::Delivery::fifo`]); absent on the standard queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo_group: Option<SubscriptionId>,
    /// The claim holder this job's attempt is made under, when not its own message: a FIFO copy of
    /// a delivery that a standard-queue message claimed and moved into the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_as: Option<String>,
}

impl DeliveryJob {
    /// A first job for the delivery.
    pub fn new(account_id: AccountId, delivery_id: DeliveryId) -> Self {
        Self {
            account_id,
            delivery_id,
            handed_back: 0,
            subscription_id: None,
            rate_slot: None,
            fifo_group: None,
            claim_as: None,
        }
    }

    /// The job naming the delivery's subscription too.
    pub fn for_subscription(mut self, subscription_id: SubscriptionId) -> Self {
        self.subscription_id = Some(subscription_id);
        self
    }

    /// A first job for `delivery`, naming its subscription (for the in-flight cap), in its
    /// subscription's FIFO line when the delivery is `fifo`.
    pub fn for_delivery(delivery: &Delivery) -> Self {
        let mut job = Self::new(delivery.account_id.clone(), delivery.id.clone())
            .for_subscription(delivery.subscription_id.clone());
        job.fifo_group = delivery.fifo.then(|| delivery.subscription_id.clone());
        job
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The queue refused or could not be reached; the message says why. Transient: the caller retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

/// The delivery queue. Adapter needs `sqs:SendMessage` (also covers `SendMessageBatch`) and
/// `sqs:ChangeMessageVisibility`.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Enqueues jobs in batches of 10; an error if any job could not be sent.
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError>;
    /// Hides a received message for `delay_secs` (the backoff), via its receipt handle.
    async fn delay(&self, receipt_handle: &str, delay_secs: u32) -> Result<(), QueueError>;
    /// Enqueues one job that becomes visible after `delay_secs` (SQS `DelaySeconds`, at most
    /// [`MAX_ENQUEUE_DELAY_SECS`]): a delivery waiting on its rate limit.
    async fn enqueue_delayed(&self, job: &DeliveryJob, delay_secs: u32) -> Result<(), QueueError>;
    /// [`Self::delay`] for a message received from the FIFO delivery queue.
    async fn delay_fifo(&self, receipt_handle: &str, delay_secs: u32) -> Result<(), QueueError> {
        self.delay(receipt_handle, delay_secs).await
    }
}

/// SQS's most `DelaySeconds` for one message (15 min).
pub const MAX_ENQUEUE_DELAY_SECS: u32 = 900;

/// An ingest-queue message that can never be published, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMessage {
    /// The message body exactly as received (possibly not JSON at all).
    pub body: String,
    /// The kind of failure: `malformed`, `unknown_account` or `invalid_event`.
    pub kind: &'static str,
    /// A sentence saying what is wrong, naming the field where there is one.
    pub reason: String,
    /// The id the queue gave the message, to find it in the logs.
    pub source_message_id: Option<String>,
    /// How many times the queue had delivered it (1 when rejected on the first receive).
    pub receive_count: u32,
}

/// Where rejected ingest messages are parked for an operator (the ingest DLQ). Adapter needs
/// `sqs:SendMessage` on that queue.
#[async_trait]
pub trait RejectedMessages: Send + Sync {
    /// Stores the message with its reason; an error leaves it to the caller to retry.
    async fn park(&self, message: &RejectedMessage) -> Result<(), QueueError>;
}

/// An outbound webhook request, fully built and signed.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRequest {
    /// Where it goes, parsed: the HTTPS URL, or the AWS queue or bus
    /// ([`crate::sending::TargetSender`] routes on it).
    pub target: crate::sending::Target,
    /// Headers to send, signature headers included, in order.
    pub headers: Vec<(String, String)>,
    /// The JSON body exactly as signed.
    pub body: String,
}

/// What happened when sending. `status` is set when a response arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SendOutcome {
    /// HTTP status of the response; None on timeout, connection or SSRF-guard failure.
    pub status: Option<u16>,
    /// Response headers as received (the sender may already have left some out, see
    /// `headers_omitted`).
    pub headers: Vec<(String, String)>,
    /// Response headers the sender read past without keeping them (a head over its own caps).
    pub headers_omitted: u32,
    /// At most the first 4 KiB of the body (lossy UTF-8).
    pub body: String,
    /// Wall time of the request, in milliseconds.
    pub duration_ms: u64,
    /// Why no usable response arrived (or the AWS error code an AWS destination answered);
    /// None when `status` is set.
    pub error: Option<String>,
}

/// At most this many bytes of a response body are kept per attempt (the excerpt in the log).
pub const MAX_RESPONSE_BODY_BYTES: usize = 4096;

/// At most this many response headers are stored per attempt; the rest are counted in
/// [`crate::model::Attempt::response_headers_omitted`].
pub const MAX_STORED_RESPONSE_HEADERS: usize = 50;
/// At most this many bytes of response header names and values are stored per attempt: one
/// attempt record stays far below DynamoDB's 400 KB item limit, and twenty of them far below
/// Lambda's 6 MB response.
pub const MAX_STORED_RESPONSE_HEADER_BYTES: usize = 16 * 1024;

impl SendOutcome {
    /// The response headers an attempt stores, in arrival order while they fit
    /// [`MAX_STORED_RESPONSE_HEADERS`] and [`MAX_STORED_RESPONSE_HEADER_BYTES`] (a repeated name
    /// keeps its last value), and how many were left out, the sender's own omissions included.
    pub fn stored_headers(&self) -> (BTreeMap<String, String>, u32) {
        let mut kept = BTreeMap::new();
        let mut bytes = 0usize;
        let mut omitted = self.headers_omitted;
        for (name, value) in &self.headers {
            let size = name.len() + value.len();
            let fits = kept.len() < MAX_STORED_RESPONSE_HEADERS || kept.contains_key(name);
            if fits && bytes + size <= MAX_STORED_RESPONSE_HEADER_BYTES {
                bytes += size;
                if let Some(old) = kept.insert(name.clone(), value.clone()) {
                    bytes -= name.len() + old.len();
                }
            } else {
                omitted = omitted.saturating_add(1);
            }
        }
        (kept, omitted)
    }

    /// The first response header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends one attempt to its target: the port the dispatcher sends through. The HTTPS adapter
/// needs no IAM action, only egress to the internet; [`crate::sending::TargetSender`] puts it and
/// the AWS-destination sender behind this one interface.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Sends the request. Over HTTPS: a POST, HTTPS only, no redirects, the SSRF guard on the
    /// resolved address, a timeout, and a capped body read. Never panics; failures come back in
    /// `error`.
    async fn send(&self, request: &OutboundRequest) -> SendOutcome;
}

/// Time, injectable so tests can move it.
pub trait Clock: Send + Sync {
    /// The current time.
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

#[cfg(test)]
mod tests;
