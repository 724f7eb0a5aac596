//! `webhook.subscription.failing` and `webhook.subscription.recovered`: when they are announced,
//! to whom, and what the failing clock writes on the way.

use super::*;
use crate::fakes::{caller, context_with, Memory};
use crate::ids::SubscriptionId;
use crate::model::Caller;
use crate::ports::{SettingsWrite, StoreResult, SubscriptionStore};
use crate::services::subscriptions;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const OK: AttemptResult<'static> = AttemptResult { succeeded: true, response_status: Some(200), error: None };
const FAILED: AttemptResult<'static> =
    AttemptResult { succeeded: false, response_status: Some(503), error: Some("HTTP 503") };

/// Memory, counting the writes of the attempt path's bookkeeping.
struct CountingWrites {
    inner: Arc<Memory>,
    writes: AtomicUsize,
}

impl CountingWrites {
    fn wrote(&self) -> &Memory {
        self.writes.fetch_add(1, Ordering::SeqCst);
        &self.inner
    }
}

#[async_trait::async_trait]
impl SubscriptionStore for CountingWrites {
    async fn insert(&self, sub: &Subscription) -> StoreResult<()> {
        SubscriptionStore::insert(&*self.inner, sub).await
    }
    async fn get(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        SubscriptionStore::get(&*self.inner, account, id).await
    }
    async fn list_page(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&SubscriptionId>,
    ) -> StoreResult<(Vec<Subscription>, Option<SubscriptionId>)> {
        self.inner.list_page(account, limit, after).await
    }
    async fn list_all(&self, account: &AccountId) -> StoreResult<Vec<Subscription>> {
        self.inner.list_all(account).await
    }
    async fn update_settings(&self, sub: &Subscription, version: u64, restart: bool) -> StoreResult<SettingsWrite> {
        self.inner.update_settings(sub, version, restart).await
    }
    async fn delete(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<bool> {
        SubscriptionStore::delete(&*self.inner, account, id).await
    }
    async fn record_last_delivery(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        status: DeliveryStatus,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.wrote().record_last_delivery(account, id, status, at).await
    }
    async fn mark_failing(&self, account: &AccountId, id: &SubscriptionId, since: Timestamp) -> StoreResult<bool> {
        self.wrote().mark_failing(account, id, since).await
    }
    async fn clear_failing(&self, account: &AccountId, id: &SubscriptionId) -> StoreResult<()> {
        self.wrote().clear_failing(account, id).await
    }
    async fn count_failure(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        since: Timestamp,
        limit: u32,
    ) -> StoreResult<Option<u32>> {
        self.wrote().count_failure(account, id, since, limit).await
    }
    async fn disable_failing(
        &self,
        account: &AccountId,
        id: &SubscriptionId,
        since: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool> {
        self.wrote().disable_failing(account, id, since, at).await
    }
}

struct Fixture {
    mem: Arc<Memory>,
    store: Arc<CountingWrites>,
    ctx: Context,
    who: Caller,
    /// The dispatcher's unwritten runs (one container).
    runs: FailingRuns,
}

impl Fixture {
    fn new() -> Self {
        let mem = Arc::new(Memory::default());
        let store = Arc::new(CountingWrites { inner: mem.clone(), writes: AtomicUsize::new(0) });
        let mut ctx = context_with(mem.clone());
        ctx.subscriptions = store.clone();
        ctx.settings.auto_disable_after_secs = 3600;
        Self { mem, store, ctx, who: caller(), runs: FailingRuns::default() }
    }

    async fn sub(&self, events: &[&str]) -> Subscription {
        let body = json!({"url": "https://example.com/h", "events": events});
        let created = subscriptions::create(&self.ctx, &self.who, body).await.unwrap();
        self.load(created["id"].as_str().unwrap()).await
    }

    async fn load(&self, id: &str) -> Subscription {
        subscriptions::load(&self.ctx, &self.who, id).await.unwrap()
    }

    /// One attempt of `sub` as the dispatcher makes it: with the record as stored now.
    async fn attempt(&self, sub: &Subscription, result: AttemptResult<'_>, at: Timestamp) {
        after_attempt(&self.ctx, &self.runs, &self.load(sub.id.as_str()).await, result, at).await.unwrap();
    }

    fn writes(&self) -> usize {
        self.store.writes.load(Ordering::SeqCst)
    }

    /// The operational events `sub` was sent, as (type, data), ordered by type then data (ids
    /// made in one millisecond do not order).
    fn heard(&self, sub: &Subscription) -> Vec<(String, Value)> {
        let deliveries = self.mem.deliveries.lock().unwrap();
        let mut heard: Vec<(String, Value)> = deliveries
            .values()
            .filter(|d| d.subscription_id == sub.id)
            .map(|d| (d.event_type.clone(), serde_json::from_str::<Value>(&d.payload).unwrap()["data"].clone()))
            .collect();
        heard.sort_by_key(|(t, data)| (t.clone(), data.to_string()));
        heard
    }
}

#[tokio::test]
async fn four_failures_in_a_row_announce_failing_once_and_a_success_then_recovered_once() {
    let fx = Fixture::new();
    let s = fx.sub(&["chain.confirmed", "webhook.*"]).await;
    let ops = fx.sub(&["webhook.*"]).await;
    let all = fx.sub(&["*"]).await;
    let named = fx.sub(&["webhook.subscription.recovered"]).await;
    let t0 = Timestamp(1_800_000_000_000);

    for i in 0..3 {
        fx.attempt(&s, FAILED, t0.plus_seconds(i)).await;
    }
    assert!(fx.heard(&ops).is_empty(), "three failures are not yet a failing run");
    assert_eq!(fx.load(s.id.as_str()).await.consecutive_failures, 3);
    fx.attempt(&s, FAILED, t0.plus_seconds(3)).await;
    let failing = json!({
        "subscription_id": s.id, "url": s.url, "failing_since": t0, "consecutive_failures": 4,
        "last_response_status": 503, "last_error": "HTTP 503",
    });
    assert_eq!(fx.heard(&ops), [(OPERATIONAL_FAILING.to_owned(), failing.clone())]);

    // Further failures of the run: no write, no event.
    let writes = fx.writes();
    for i in 4..10 {
        fx.attempt(&s, FAILED, t0.plus_seconds(i)).await;
    }
    assert_eq!(fx.writes(), writes, "the count stops at the threshold");
    assert_eq!(fx.heard(&ops).len(), 1);

    let back = t0.plus_seconds(60);
    fx.attempt(&s, OK, back).await;
    fx.attempt(&s, OK, back.plus_seconds(1)).await;
    let recovered = json!({"subscription_id": s.id, "url": s.url, "failing_since": t0, "recovered_at": back});
    assert_eq!(
        fx.heard(&ops),
        [(OPERATIONAL_FAILING.to_owned(), failing), (OPERATIONAL_RECOVERED.to_owned(), recovered.clone())]
    );
    assert_eq!(fx.heard(&named), [(OPERATIONAL_RECOVERED.to_owned(), recovered)], "matched when named");
    assert!(fx.heard(&all).is_empty(), "\"*\" never matches an operational event");
    assert!(fx.heard(&s).is_empty(), "never sent to the subscription it is about, though it listens to webhook.*");
    let stored = fx.load(s.id.as_str()).await;
    assert_eq!((stored.failing_since, stored.consecutive_failures), (None, 0));

    // A new failing run is announced again, with its own start.
    let t1 = back.plus_seconds(60);
    for i in 0..4 {
        fx.attempt(&s, FAILED, t1.plus_seconds(i)).await;
    }
    let heard = fx.heard(&ops);
    assert_eq!(heard.len(), 3);
    assert_eq!((heard[1].0.as_str(), &heard[1].1["failing_since"]), (OPERATIONAL_FAILING, &json!(t1)));
}

#[tokio::test]
async fn a_success_while_not_failing_writes_nothing_and_a_short_run_recovers_silently() {
    let fx = Fixture::new();
    let s = fx.sub(&["chain.confirmed"]).await;
    let ops = fx.sub(&["webhook.*"]).await;
    let t0 = Timestamp(1_800_000_000_000);
    let writes = fx.writes();
    for i in 0..5 {
        fx.attempt(&s, OK, t0.plus_seconds(i)).await;
    }
    assert_eq!(fx.writes(), writes, "the happy path writes no subscription bookkeeping");

    for i in 0..3 {
        fx.attempt(&s, FAILED, t0.plus_seconds(10 + i)).await;
    }
    assert_eq!(fx.writes(), writes + 3, "each failure below the threshold writes once");
    fx.attempt(&s, OK, t0.plus_seconds(20)).await;
    assert_eq!(fx.writes(), writes + 4, "the clock is cleared once");
    assert!(fx.heard(&ops).is_empty(), "three failures then a success: neither failing nor recovered");
}

#[tokio::test]
async fn racing_attempts_read_the_same_record_and_still_announce_once() {
    let fx = Fixture::new();
    let s = fx.sub(&["chain.confirmed"]).await;
    let ops = fx.sub(&["webhook.*"]).await;
    let t0 = Timestamp(1_800_000_000_000);
    for i in 0..3 {
        fx.attempt(&s, FAILED, t0.plus_seconds(i)).await;
    }
    // Ten attempts of one SQS batch read the record before any of them writes.
    let stale = fx.load(s.id.as_str()).await;
    for i in 0..10 {
        after_attempt(&fx.ctx, &fx.runs, &stale, FAILED, t0.plus_seconds(5 + i)).await.unwrap();
    }
    assert_eq!(fx.heard(&ops).len(), 1, "one failing event");
    let failing_record = fx.load(s.id.as_str()).await;
    for i in 0..3 {
        after_attempt(&fx.ctx, &fx.runs, &failing_record, OK, t0.plus_seconds(30 + i)).await.unwrap();
    }
    let heard = fx.heard(&ops);
    assert_eq!(heard.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), [OPERATIONAL_FAILING, OPERATIONAL_RECOVERED]);
}

#[tokio::test]
async fn failing_and_recovered_deliveries_that_fail_in_turn_announce_nothing_about_themselves() {
    // Two subscriptions that hear each other's operational events, both failing: each failing run
    // is announced once to the other, whatever the other's attempts of those announcements do.
    let fx = Fixture::new();
    let a = fx.sub(&["chain.confirmed", "webhook.*"]).await;
    let b = fx.sub(&["chain.confirmed", "webhook.*"]).await;
    let t0 = Timestamp(1_800_000_000_000);
    for i in 0..8 {
        fx.attempt(&a, FAILED, t0.plus_seconds(i)).await;
        fx.attempt(&b, FAILED, t0.plus_seconds(i)).await;
    }
    assert_eq!(fx.heard(&a).len(), 1);
    assert_eq!(fx.heard(&b).len(), 1);
    assert_eq!(fx.heard(&a)[0].1["subscription_id"], json!(b.id));
    assert_eq!(fx.mem.deliveries.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn scattered_failures_of_a_busy_subscription_write_no_failing_clock() {
    // One delivery in ten fails once, each followed by successes: no run of two in a row.
    let fx = Fixture::new();
    let s = fx.sub(&["chain.confirmed"]).await;
    let t0 = Timestamp(1_800_000_000_000);
    let writes = fx.writes();
    for i in 0..1000 {
        let result = if i % 10 == 3 { FAILED } else { OK };
        fx.attempt(&s, result, Timestamp(t0.unix_ms() + i * 3)).await;
    }
    assert_eq!(fx.writes(), writes, "lone failures start no clock and so need none cleared");
    assert_eq!(fx.load(s.id.as_str()).await.failing_since, None);
    // Two in a row do start it, at the first, and the next success clears it: three writes.
    fx.attempt(&s, FAILED, t0.plus_seconds(10)).await;
    fx.attempt(&s, FAILED, t0.plus_seconds(11)).await;
    assert_eq!(fx.load(s.id.as_str()).await.failing_since, Some(t0.plus_seconds(10)));
    fx.attempt(&s, OK, t0.plus_seconds(12)).await;
    assert_eq!(fx.writes(), writes + 3, "mark, count, clear");
}
