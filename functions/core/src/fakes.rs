//! In-memory fakes of every port, for unit tests of `core` and of crates built on it
//! (feature `test-support`). Never used by an end-to-end test: those run against moto.

use crate::crypto::Keyring;
use crate::ids::{AccountId, ApiKeyId, AttemptId, DeliveryId, EndpointId, EventId, InvestigationId, SubscriptionId};
use crate::model::{
    ApiKeyRecord, Attempt, Caller, Delivery, DeliveryStatus, Endpoint, Investigation, Scope, StoredEvent, Subscription,
};
use crate::ports::*;
use crate::services::{Context, Settings};
use crate::time::Timestamp;
use crate::validation::{EventPattern, Filters, TargetUrl};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// All state of the fake stores, behind one lock.
#[derive(Default)]
pub struct Memory {
    /// API keys, in insertion order.
    pub keys: Mutex<Vec<ApiKeyRecord>>,
    /// Subscriptions keyed by (account, id).
    pub subs: Mutex<BTreeMap<(String, String), Subscription>>,
    /// Published events keyed by (account, event id).
    pub events: Mutex<BTreeMap<(String, String), StoredEvent>>,
    /// Deliveries keyed by (account, id).
    pub deliveries: Mutex<BTreeMap<(String, String), Delivery>>,
    /// Endpoints keyed by (account, id).
    pub endpoints: Mutex<BTreeMap<(String, String), Endpoint>>,
    /// Investigations keyed by (account, id).
    pub investigations: Mutex<BTreeMap<(String, String), Investigation>>,
    /// Investigation dedupe claims: dedupe key → investigation that claimed it.
    pub claims: Mutex<BTreeMap<String, InvestigationId>>,
    /// Every job enqueued, in order; tests drain it to run the dispatcher.
    pub queue: Mutex<Vec<DeliveryJob>>,
    /// Applied once to the stored subscription just after the next `get_fresh` read it: another
    /// container's write landing between a read-modify-write's read and its write.
    #[allow(clippy::type_complexity)]
    pub write_after_fresh_read: Mutex<Option<Box<dyn FnOnce(&mut Subscription) + Send>>>,
    /// Claims on deliveries and the sweeper's marks, by (account, delivery id): what the
    /// DynamoDB store keeps in the delivery item's `claim_*` and `swept` attributes.
    pub leases: Mutex<BTreeMap<(String, String), Lease>>,
    /// Jobs enqueued with a delay (also in `queue`), with their delay in seconds.
    pub delayed: Mutex<Vec<(DeliveryJob, u32)>>,
}

/// A delivery's claim and sweep mark in the in-memory store.
#[derive(Debug, Clone, Default)]
pub struct Lease {
    /// The claim's holder, its token and the end of its lease.
    pub holder: Option<(String, AttemptId, Timestamp)>,
    /// Re-enqueued by the sweeper since its last recorded attempt.
    pub swept: bool,
}

fn key(a: &AccountId, id: &str) -> (String, String) {
    (a.to_string(), id.to_owned())
}

#[async_trait]
impl ApiKeyStore for Memory {
    async fn find_by_hash(&self, h: &str) -> StoreResult<Option<ApiKeyRecord>> {
        Ok(self.keys.lock().unwrap().iter().find(|k| k.key_hash == h).cloned())
    }
    async fn insert(&self, r: &ApiKeyRecord) -> StoreResult<()> {
        self.keys.lock().unwrap().push(r.clone());
        Ok(())
    }
    async fn revoke(&self, a: &AccountId, id: &ApiKeyId) -> StoreResult<bool> {
        let mut keys = self.keys.lock().unwrap();
        let found = keys.iter_mut().find(|k| &k.account_id == a && &k.key_id == id);
        Ok(found.map(|k| k.revoked = true).is_some())
    }
    async fn account_exists(&self, a: &AccountId) -> StoreResult<bool> {
        Ok(self.keys.lock().unwrap().iter().any(|k| &k.account_id == a))
    }
}

#[async_trait]
impl SubscriptionStore for Memory {
    async fn insert(&self, s: &Subscription) -> StoreResult<()> {
        self.subs.lock().unwrap().insert(key(&s.account_id, s.id.as_str()), s.clone());
        Ok(())
    }
    async fn get(&self, a: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        Ok(self.subs.lock().unwrap().get(&key(a, id.as_str())).cloned())
    }
    async fn list_page(
        &self,
        a: &AccountId,
        limit: usize,
        after: Option<&SubscriptionId>,
    ) -> StoreResult<(Vec<Subscription>, Option<SubscriptionId>)> {
        let all: Vec<Subscription> = self
            .subs
            .lock()
            .unwrap()
            .values()
            .filter(|s| &s.account_id == a && after.is_none_or(|x| &s.id > x))
            .cloned()
            .collect();
        let more = all.len() > limit;
        let page: Vec<Subscription> = all.into_iter().take(limit).collect();
        let last = if more { page.last().map(|s| s.id.clone()) } else { None };
        Ok((page, last))
    }
    async fn list_all(&self, a: &AccountId) -> StoreResult<Vec<Subscription>> {
        Ok(self.subs.lock().unwrap().values().filter(|s| &s.account_id == a).cloned().collect())
    }
    async fn get_fresh(&self, a: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        let mut subs = self.subs.lock().unwrap();
        let read = subs.get(&key(a, id.as_str())).cloned();
        if let (Some(write), Some(stored)) =
            (self.write_after_fresh_read.lock().unwrap().take(), subs.get_mut(&key(a, id.as_str())))
        {
            write(stored);
        }
        Ok(read)
    }
    async fn update_settings(
        &self,
        s: &Subscription,
        read_version: u64,
        restart_failing_clock: bool,
    ) -> StoreResult<SettingsWrite> {
        let mut subs = self.subs.lock().unwrap();
        let Some(slot) = subs.get_mut(&key(&s.account_id, s.id.as_str())) else { return Ok(SettingsWrite::Gone) };
        if slot.version != read_version {
            return Ok(SettingsWrite::Changed);
        }
        let kept = slot.clone();
        *slot = Subscription {
            version: read_version + 1,
            created_at: kept.created_at,
            last_delivery_status: kept.last_delivery_status,
            last_delivery_at: kept.last_delivery_at,
            failing_since: if restart_failing_clock { None } else { kept.failing_since },
            consecutive_failures: if restart_failing_clock { 0 } else { kept.consecutive_failures },
            ..s.clone()
        };
        Ok(SettingsWrite::Written)
    }
    async fn delete(&self, a: &AccountId, id: &SubscriptionId) -> StoreResult<bool> {
        Ok(self.subs.lock().unwrap().remove(&key(a, id.as_str())).is_some())
    }
    async fn record_last_delivery(
        &self,
        a: &AccountId,
        id: &SubscriptionId,
        status: DeliveryStatus,
        at: Timestamp,
    ) -> StoreResult<()> {
        let mut subs = self.subs.lock().unwrap();
        let newer = |s: &&mut Subscription| s.last_delivery_at.is_none_or(|recorded| recorded <= at);
        if let Some(s) = subs.get_mut(&key(a, id.as_str())).filter(newer) {
            s.last_delivery_status = Some(status.as_str().to_owned());
            s.last_delivery_at = Some(at);
        }
        Ok(())
    }
    async fn mark_failing(&self, a: &AccountId, id: &SubscriptionId, since: Timestamp) -> StoreResult<bool> {
        let mut subs = self.subs.lock().unwrap();
        let Some(s) = subs.get_mut(&key(a, id.as_str())).filter(|s| s.failing_since.is_none()) else {
            return Ok(false);
        };
        s.failing_since = Some(since);
        s.consecutive_failures = 1;
        Ok(true)
    }
    async fn clear_failing(&self, a: &AccountId, id: &SubscriptionId) -> StoreResult<()> {
        if let Some(s) = self.subs.lock().unwrap().get_mut(&key(a, id.as_str())) {
            s.failing_since = None;
            s.consecutive_failures = 0;
        }
        Ok(())
    }
    async fn count_failure(
        &self,
        a: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        limit: u32,
    ) -> StoreResult<Option<u32>> {
        let mut subs = self.subs.lock().unwrap();
        let counted = subs
            .get_mut(&key(a, id.as_str()))
            .filter(|s| s.failing_since == Some(failing_since) && s.consecutive_failures < limit)
            .map(|s| {
                s.consecutive_failures += 1;
                s.consecutive_failures
            });
        Ok(counted)
    }
    async fn disable_failing(
        &self,
        a: &AccountId,
        id: &SubscriptionId,
        failing_since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let mut subs = self.subs.lock().unwrap();
        let still = |s: &&mut Subscription| s.active && s.failing_since == Some(failing_since);
        let Some(s) = subs.get_mut(&key(a, id.as_str())).filter(still) else { return Ok(false) };
        s.active = false;
        s.disabled_reason = Some(crate::model::DISABLED_FAILING.to_owned());
        s.disabled_at = Some(at);
        s.updated_at = at;
        s.version += 1;
        Ok(true)
    }
}

#[async_trait]
impl DeliveryStore for Memory {
    async fn find_event(&self, a: &AccountId, id: &EventId) -> StoreResult<Option<StoredEvent>> {
        Ok(self.events.lock().unwrap().get(&key(a, id.as_str())).cloned())
    }
    async fn insert_events(&self, es: &[StoredEvent], mode: RecordWrite) -> StoreResult<Vec<Option<StoredEvent>>> {
        let mut events = self.events.lock().unwrap();
        let found: Vec<Option<StoredEvent>> = es
            .iter()
            .map(|e| {
                events
                    .get(&key(&e.account_id, e.event_id.as_str()))
                    .filter(|old| old.publish_token.is_none() || old.publish_token != e.publish_token)
                    .cloned()
            })
            .collect();
        let together = mode == RecordWrite::AllOrNone && found.iter().any(Option::is_some);
        for (e, other) in es.iter().zip(&found) {
            if other.is_none() && !together {
                events.insert(key(&e.account_id, e.event_id.as_str()), e.clone());
            }
        }
        Ok(found)
    }
    async fn insert_deliveries(&self, ds: &[Delivery]) -> StoreResult<()> {
        let mut all = self.deliveries.lock().unwrap();
        for d in ds {
            all.insert(key(&d.account_id, d.id.as_str()), d.clone());
        }
        Ok(())
    }
    async fn remove_deliveries(&self, a: &AccountId, ids: &[DeliveryId]) -> StoreResult<()> {
        let mut all = self.deliveries.lock().unwrap();
        for id in ids {
            all.remove(&key(a, id.as_str()));
        }
        Ok(())
    }
    async fn get(&self, a: &AccountId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        Ok(self.deliveries.lock().unwrap().get(&key(a, id.as_str())).cloned())
    }
    async fn claim(&self, a: &AccountId, id: &DeliveryId, r: &ClaimRequest) -> StoreResult<Claim> {
        let all = self.deliveries.lock().unwrap();
        let k = key(a, id.as_str());
        let Some(d) = all.get(&k) else { return Ok(Claim::Missing) };
        if !d.status.is_in_flight() {
            return Ok(Claim::Finished(d.clone()));
        }
        let mut leases = self.leases.lock().unwrap();
        let swept = leases.get(&k).is_some_and(|l| l.swept);
        let held = leases.get(&k).and_then(|l| l.holder.as_ref()).filter(|h| h.2 >= r.now && h.0 != r.holder);
        if let Some(&(_, _, until)) = held {
            return Ok(Claim::Held { until });
        }
        if let Some(at) = d.next_attempt_at.filter(|at| *at > r.due_by && !swept) {
            return Ok(Claim::NotDue { at });
        }
        leases.entry(k).or_default().holder = Some((r.holder.clone(), r.token.clone(), r.lease_until));
        Ok(Claim::Claimed(Delivery { attempts: Vec::new(), ..d.clone() }))
    }
    async fn mark_swept(&self, a: &AccountId, id: &DeliveryId, next: Timestamp, now: Timestamp) -> StoreResult<bool> {
        let mut all = self.deliveries.lock().unwrap();
        let k = key(a, id.as_str());
        let Some(d) = all.get_mut(&k).filter(|d| d.status.is_in_flight()) else { return Ok(false) };
        d.next_attempt_at = Some(next);
        d.updated_at = now;
        self.leases.lock().unwrap().entry(k).or_default().swept = true;
        Ok(true)
    }
    async fn list_page(
        &self,
        a: &AccountId,
        f: &DeliveryFilter,
        limit: usize,
        before: Option<&DeliveryId>,
    ) -> StoreResult<(Vec<Delivery>, Option<DeliveryId>)> {
        let all: Vec<Delivery> = self
            .deliveries
            .lock()
            .unwrap()
            .values()
            .rev()
            .filter(|d| &d.account_id == a)
            .filter(|d| before.is_none_or(|b| &d.id < b))
            .filter(|d| f.matches(d))
            .cloned()
            .collect();
        let more = all.len() > limit;
        let page: Vec<Delivery> = all.into_iter().take(limit).collect();
        let last = if more { page.last().map(|d| d.id.clone()) } else { None };
        Ok((page, last))
    }
    async fn record_attempt(
        &self,
        a: &AccountId,
        id: &DeliveryId,
        attempt: &Attempt,
        u: &AttemptUpdate,
    ) -> StoreResult<bool> {
        let mut all = self.deliveries.lock().unwrap();
        let k = key(a, id.as_str());
        let Some(d) = all.get_mut(&k).filter(|d| u.only_if.contains(&d.status)) else {
            return Ok(false);
        };
        let mut leases = self.leases.lock().unwrap();
        if let Some(token) = &u.claim {
            if leases.get(&k).and_then(|l| l.holder.as_ref()).is_none_or(|(_, held, _)| held != token) {
                return Ok(false);
            }
        }
        leases.remove(&k);
        d.status = u.status;
        d.attempt_count = u.attempt_count;
        d.next_attempt_at = u.next_attempt_at;
        d.last_response_status = u.last_response_status;
        d.last_error = u.last_error.clone();
        d.updated_at = u.updated_at;
        // As the DynamoDB store: a record per attempt number, read back as the newest ones.
        let mut attempts = std::mem::take(&mut d.attempts);
        attempts.retain(|a| a.number != attempt.number);
        attempts.push(attempt.clone());
        d.attempts = crate::model::newest_attempts(attempts);
        Ok(true)
    }
    async fn replay(
        &self,
        a: &AccountId,
        id: &DeliveryId,
        from: &[DeliveryStatus],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut all = self.deliveries.lock().unwrap();
        let Some(d) = all.get_mut(&key(a, id.as_str())).filter(|d| from.contains(&d.status)) else { return Ok(false) };
        self.leases.lock().unwrap().remove(&key(a, id.as_str()));
        d.status = DeliveryStatus::Pending;
        d.next_attempt_at = Some(now);
        d.round_start = d.attempt_count;
        d.updated_at = now;
        Ok(true)
    }
    async fn transition(
        &self,
        a: &AccountId,
        id: &DeliveryId,
        from: &[DeliveryStatus],
        to: DeliveryStatus,
        next: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut all = self.deliveries.lock().unwrap();
        let Some(d) = all.get_mut(&key(a, id.as_str())).filter(|d| from.contains(&d.status)) else { return Ok(false) };
        d.status = to;
        d.next_attempt_at = next;
        d.updated_at = now;
        Ok(true)
    }
    async fn in_flight_for_subscription(&self, a: &AccountId, s: &SubscriptionId) -> StoreResult<Vec<DeliveryId>> {
        Ok(self
            .deliveries
            .lock()
            .unwrap()
            .values()
            .filter(|d| &d.account_id == a && &d.subscription_id == s && d.status.is_in_flight())
            .map(|d| d.id.clone())
            .collect())
    }
    async fn overdue(
        &self,
        before: Timestamp,
        limit: usize,
        skip: &[AccountId],
    ) -> StoreResult<Vec<(AccountId, DeliveryId)>> {
        let mut due: Vec<(Timestamp, AccountId, DeliveryId)> = self
            .deliveries
            .lock()
            .unwrap()
            .values()
            .filter(|d| d.status.is_in_flight() && !skip.contains(&d.account_id))
            .filter_map(|d| d.next_attempt_at.filter(|t| *t < before).map(|t| (t, d.account_id.clone(), d.id.clone())))
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, a, id)| (a, id)).collect())
    }
}

#[async_trait]
impl EndpointStore for Memory {
    async fn insert(&self, e: &Endpoint) -> StoreResult<()> {
        self.endpoints.lock().unwrap().insert(key(&e.account_id, e.id.as_str()), e.clone());
        Ok(())
    }
    async fn list(&self, a: &AccountId) -> StoreResult<Vec<Endpoint>> {
        Ok(self.endpoints.lock().unwrap().values().filter(|e| &e.account_id == a).cloned().collect())
    }
    async fn find_by_key_hash(&self, h: &str) -> StoreResult<Option<Endpoint>> {
        Ok(self.endpoints.lock().unwrap().values().find(|e| e.url_key_hash == h).cloned())
    }
    async fn delete(&self, a: &AccountId, id: &EndpointId) -> StoreResult<bool> {
        Ok(self.endpoints.lock().unwrap().remove(&key(a, id.as_str())).is_some())
    }
}

#[async_trait]
impl InvestigationStore for Memory {
    async fn insert(&self, inv: &Investigation, dedupe: Option<&str>) -> StoreResult<Option<InvestigationId>> {
        if let Some(d) = dedupe {
            let claim = format!("{}#{}#{d}", inv.account_id, inv.endpoint_id);
            let mut claims = self.claims.lock().unwrap();
            if let Some(existing) = claims.get(&claim) {
                return Ok(Some(existing.clone()));
            }
            claims.insert(claim, inv.id.clone());
        }
        self.investigations.lock().unwrap().insert(key(&inv.account_id, inv.id.as_str()), inv.clone());
        Ok(None)
    }
    async fn get(&self, a: &AccountId, id: &InvestigationId) -> StoreResult<Option<Investigation>> {
        Ok(self.investigations.lock().unwrap().get(&key(a, id.as_str())).cloned())
    }
    async fn remove(&self, a: &AccountId, id: &InvestigationId) -> StoreResult<()> {
        self.investigations.lock().unwrap().remove(&key(a, id.as_str()));
        Ok(())
    }
}

#[async_trait]
impl DeliveryQueue for Memory {
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError> {
        self.queue.lock().unwrap().extend_from_slice(jobs);
        Ok(())
    }
    async fn delay(&self, _receipt: &str, _secs: u32) -> Result<(), QueueError> {
        Ok(())
    }
    async fn enqueue_delayed(&self, job: &DeliveryJob, delay_secs: u32) -> Result<(), QueueError> {
        self.queue.lock().unwrap().push(job.clone());
        self.delayed.lock().unwrap().push((job.clone(), delay_secs));
        Ok(())
    }
}

/// A context over one fresh [`Memory`].
pub fn context() -> Context {
    context_with(Arc::new(Memory::default()))
}

/// A context over `mem` (fixed test keyring, real clock, default settings): keep `mem` to inspect the stores.
pub fn context_with(mem: Arc<Memory>) -> Context {
    Context {
        keyring: Keyring::from_master_key(b"unit-test master key, 32 bytes+!"),
        api_keys: mem.clone(),
        subscriptions: mem.clone(),
        deliveries: mem.clone(),
        endpoints: mem.clone(),
        investigations: mem.clone(),
        queue: mem,
        clock: Arc::new(SystemClock),
        sender: None,
        tokens: None,
        settings: Settings::default(),
        limits: Arc::new(crate::limits::MemoryLimits::default()),
    }
}

/// A caller with every scope in a fresh account.
pub fn caller() -> Caller {
    Caller { account_id: AccountId::generate(1), key_id: ApiKeyId::generate(1), scopes: Scope::ALL.to_vec() }
}

/// A minimal active subscription listening to `patterns`.
pub fn subscription_for(patterns: &[&str]) -> Subscription {
    let now = Timestamp(1_700_000_000_000);
    Subscription {
        id: SubscriptionId::generate(1),
        account_id: AccountId::generate(1),
        name: None,
        url: Some(TargetUrl::parse("https://example.com/hook").unwrap()),
        events: patterns.iter().map(|p| EventPattern::parse(p).unwrap()).collect(),
        filters: Filters::default(),
        active: true,
        format: Default::default(),
        header_names: Vec::new(),
        headers_enc: None,
        auth: None,
        created_at: now,
        updated_at: now,
        last_delivery_status: None,
        last_delivery_at: None,
        secret_enc: String::new(),
        previous_secret_enc: None,
        previous_secret_expires_at: None,
        failing_since: None,
        consecutive_failures: 0,
        disabled_reason: None,
        disabled_at: None,
        version: 0,
        signature_scheme: Default::default(),
        public_key: None,
        rate_limit_per_second: None,
        fifo: false,
        destination: None,
    }
}

/// A sender that answers 204 to every request and counts them: for tests that ask how many
/// attempts were sent, not what they carried.
#[derive(Default)]
pub struct Counting(pub std::sync::atomic::AtomicUsize);

#[async_trait]
impl crate::ports::WebhookSender for Counting {
    async fn send(&self, _: &crate::ports::OutboundRequest) -> crate::ports::SendOutcome {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        crate::ports::SendOutcome { status: Some(204), ..crate::ports::SendOutcome::default() }
    }
}
