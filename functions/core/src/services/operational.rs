//! Operational events (docs/api.md, "Operational events") and auto-disable of subscriptions that only fail.
//!
//! The service tells an account about its own webhooks through the normal publish pipeline, so
//! a team can route `webhook.*` to PagerDuty or Slack like any other event. Two rules keep this
//! loop-free: an operational event is never delivered to the subscription it is about, and none
//! is emitted about the delivery of an operational event. Auto-disable adds no write per attempt:
//! the dispatcher already holds the subscription it sends for, and `failing_since` is written only
//! on a change of state (a run of failures confirmed by a container, [`runs`]; the first success
//! after it; disable). The count of failures in a row beside it is written by the failures up to
//! [`FAILING_AFTER_ATTEMPTS`] only, the one that reaches it announcing
//! `webhook.subscription.failing`; the success that clears a clock whose count reached it announces
//! `webhook.subscription.recovered`. A success while not failing writes nothing, and neither does a
//! lone failure followed by a success in the same container.

use super::events::{publish_event_excluding, NewEvent};
use super::Context;
use crate::error::AppError;
use crate::ids::{AccountId, EventId, SubscriptionId};
use crate::model::{Delivery, DeliveryStatus, Subscription, DISABLED_FAILING};
use crate::time::Timestamp;
use crate::validation::{
    is_operational, EventType, OPERATIONAL_DEAD_LETTERED, OPERATIONAL_DISABLED, OPERATIONAL_FAILING,
    OPERATIONAL_RECOVERED,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

mod runs;
pub use runs::{ConfirmedRun, FailingRuns, CONFIRM_AFTER_FAILURES};

/// Publishes an operational event to the account's subscriptions that ask for it, except the one
/// it is about. `event_id` is derived from what happened, so emitting twice (a retried worker)
/// publishes once.
async fn emit(
    ctx: &Context,
    account: &AccountId,
    event_type: &str,
    event_id: String,
    about: &SubscriptionId,
    data: Value,
) -> Result<(), AppError> {
    let event_type = EventType::parse(event_type).map_err(|e| AppError::internal("operational event type", e))?;
    let name = event_type.as_str();
    let event_id = EventId::parse(&event_id).map_err(|e| AppError::internal("operational event id", e))?;
    let event = NewEvent { event_id, event_type, data, severity: None, tags: BTreeMap::new(), id_given: true };
    let published = publish_event_excluding(ctx, account, event, Some(about)).await?;
    tracing::info!(account_id = %account, subscription_id = %about, event_type = name, deliveries = published.deliveries, "operational event emitted");
    Ok(())
}

/// `webhook.delivery.dead_lettered` about a delivery that is now `failed_permanent`; nothing when
/// the delivery itself carried an operational event (no loops). Idempotent per dead-lettering:
/// the event id is the delivery id and its attempt count.
pub async fn announce_dead_lettered(ctx: &Context, d: &Delivery) -> Result<(), AppError> {
    if d.status != DeliveryStatus::FailedPermanent || is_operational(&d.event_type) {
        return Ok(());
    }
    let data = json!({
        "delivery_id": d.id,
        "subscription_id": d.subscription_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "attempt_count": d.attempt_count,
        "last_response_status": d.last_response_status,
        "last_error": d.last_error,
    });
    let event_id = format!("{}.dead_lettered.{}", d.id, d.attempt_count);
    emit(ctx, &d.account_id, OPERATIONAL_DEAD_LETTERED, event_id, &d.subscription_id, data).await
}

/// How many attempts in a row a subscription fails before `webhook.subscription.failing`.
pub const FAILING_AFTER_ATTEMPTS: u32 = 4;

/// How an attempt ended, as the failing clock and its events need it.
#[derive(Debug, Clone, Copy)]
pub struct AttemptResult<'a> {
    /// A 2xx arrived.
    pub succeeded: bool,
    /// The response's status; None when none arrived.
    pub response_status: Option<u16>,
    /// Why it failed; None on success.
    pub error: Option<&'a str>,
}

/// Keeps a subscription's failing clock and its count after an attempt, announces a failing run
/// and its recovery, and disables the subscription once every attempt has failed for
/// `auto_disable_after_secs`. `sub` is the record the attempt was sent with; `runs` the
/// container's unwritten runs of failures.
pub async fn after_attempt(
    ctx: &Context,
    runs: &FailingRuns,
    sub: &Subscription,
    attempt: AttemptResult<'_>,
    now: Timestamp,
) -> Result<(), AppError> {
    let store = &ctx.subscriptions;
    match (attempt.succeeded, sub.failing_since) {
        (true, Some(since)) => {
            runs.succeeded(&sub.account_id, &sub.id);
            store.clear_failing(&sub.account_id, &sub.id).await?;
            if sub.consecutive_failures >= FAILING_AFTER_ATTEMPTS {
                announce_recovered(ctx, sub, since, now).await?;
            }
        }
        (true, None) => runs.succeeded(&sub.account_id, &sub.id),
        (false, None) => {
            let Some(run) = runs.failed(sub, now) else { return Ok(()) };
            if store.mark_failing(&sub.account_id, &sub.id, run.since).await? {
                // The clock counts the run's first failure; this one and those between count on.
                let counted = Subscription { failing_since: Some(run.since), consecutive_failures: 1, ..sub.clone() };
                failed_in_run(ctx, &counted, run.since, attempt, now).await?;
            }
        }
        (false, Some(since)) => failed_in_run(ctx, sub, since, attempt, now).await?,
    }
    Ok(())
}

/// A failure of a subscription failing since `since` (as `sub` was read): counted up to
/// [`FAILING_AFTER_ATTEMPTS`] (announced there), and the subscription disabled once due.
async fn failed_in_run(
    ctx: &Context,
    sub: &Subscription,
    since: Timestamp,
    attempt: AttemptResult<'_>,
    now: Timestamp,
) -> Result<(), AppError> {
    let store = &ctx.subscriptions;
    if sub.consecutive_failures < FAILING_AFTER_ATTEMPTS {
        let counted = store.count_failure(&sub.account_id, &sub.id, since, FAILING_AFTER_ATTEMPTS).await?;
        if counted == Some(FAILING_AFTER_ATTEMPTS) {
            announce_failing(ctx, sub, since, attempt).await?;
        }
    }
    let due = since.plus_seconds(ctx.settings.auto_disable_after_secs);
    if sub.active && now >= due && store.disable_failing(&sub.account_id, &sub.id, since, now).await? {
        tracing::warn!(account_id = %sub.account_id, subscription_id = %sub.id, failing_since = %since, "subscription disabled: every attempt failed");
        let data = json!({
            "subscription_id": sub.id,
            "url": sub.target_address(),
            "reason": DISABLED_FAILING,
            "failing_since": since,
        });
        let event_id = format!("{}.disabled.{}", sub.id, since.unix_ms());
        emit(ctx, &sub.account_id, OPERATIONAL_DISABLED, event_id, &sub.id, data).await?;
    }
    Ok(())
}

/// `webhook.subscription.failing`, once per failing run (the event id is the run's start).
async fn announce_failing(
    ctx: &Context,
    sub: &Subscription,
    since: Timestamp,
    attempt: AttemptResult<'_>,
) -> Result<(), AppError> {
    tracing::warn!(account_id = %sub.account_id, subscription_id = %sub.id, failing_since = %since, consecutive_failures = FAILING_AFTER_ATTEMPTS, "subscription failing");
    let data = json!({
        "subscription_id": sub.id,
        "url": sub.url,
        "failing_since": since,
        "consecutive_failures": FAILING_AFTER_ATTEMPTS,
        "last_response_status": attempt.response_status,
        "last_error": attempt.error,
    });
    let event_id = format!("{}.failing.{}", sub.id, since.unix_ms());
    emit(ctx, &sub.account_id, OPERATIONAL_FAILING, event_id, &sub.id, data).await
}

/// `webhook.subscription.recovered`, once per announced failing run.
async fn announce_recovered(
    ctx: &Context,
    sub: &Subscription,
    since: Timestamp,
    now: Timestamp,
) -> Result<(), AppError> {
    tracing::info!(account_id = %sub.account_id, subscription_id = %sub.id, failing_since = %since, "subscription recovered");
    let data = json!({"subscription_id": sub.id, "url": sub.url, "failing_since": since, "recovered_at": now});
    let event_id = format!("{}.recovered.{}", sub.id, since.unix_ms());
    emit(ctx, &sub.account_id, OPERATIONAL_RECOVERED, event_id, &sub.id, data).await
}

#[cfg(test)]
mod failing_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{caller, context_with, Memory};
    use crate::services::{events, subscriptions};
    use std::sync::Arc;

    async fn sub(ctx: &Context, who: &crate::model::Caller, events: &[&str]) -> Subscription {
        let created =
            subscriptions::create(ctx, who, json!({"url": "https://example.com/h", "events": events})).await.unwrap();
        subscriptions::load(ctx, who, created["id"].as_str().unwrap()).await.unwrap()
    }

    const OK: AttemptResult<'static> = AttemptResult { succeeded: true, response_status: Some(200), error: None };
    const FAILED: AttemptResult<'static> =
        AttemptResult { succeeded: false, response_status: Some(503), error: Some("HTTP 503") };

    fn deliveries_of(mem: &Memory, sub: &SubscriptionId) -> Vec<Delivery> {
        mem.deliveries.lock().unwrap().values().filter(|d| &d.subscription_id == sub).cloned().collect()
    }

    #[tokio::test]
    async fn dead_lettered_goes_to_listeners_never_to_its_own_subscription_nor_about_itself() {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let who = caller();
        let failing = sub(&ctx, &who, &["chain.confirmed", "webhook.*"]).await;
        let ops = sub(&ctx, &who, &["webhook.delivery.dead_lettered"]).await;
        let other = sub(&ctx, &who, &["chain.confirmed"]).await;
        events::publish(&ctx, &who, json!({"event_type": "chain.confirmed", "data": {}, "event_id": "e1"}))
            .await
            .unwrap();
        let mut dead = deliveries_of(&mem, &failing.id).pop().unwrap();
        dead.status = DeliveryStatus::FailedPermanent;
        dead.attempt_count = 3;
        announce_dead_lettered(&ctx, &dead).await.unwrap();
        announce_dead_lettered(&ctx, &dead).await.unwrap(); // a retried worker: once only

        let to_ops = deliveries_of(&mem, &ops.id);
        assert_eq!(to_ops.len(), 1);
        assert_eq!(to_ops[0].event_type, OPERATIONAL_DEAD_LETTERED);
        let envelope: Value = serde_json::from_str(&to_ops[0].payload).unwrap();
        assert_eq!(envelope["data"]["delivery_id"], dead.id.as_str());
        assert_eq!(envelope["data"]["attempt_count"], 3);
        assert_eq!(deliveries_of(&mem, &failing.id).len(), 1, "never to the subscription it is about");
        assert_eq!(deliveries_of(&mem, &other.id).len(), 1, "chain.confirmed only");

        // The operational delivery dead-letters in turn: nothing is emitted about it.
        let mut op = to_ops[0].clone();
        op.status = DeliveryStatus::FailedPermanent;
        announce_dead_lettered(&ctx, &op).await.unwrap();
        assert_eq!(mem.deliveries.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn failing_clock_is_written_only_on_changes_and_disables_once_due() {
        let mem = Arc::new(Memory::default());
        let mut ctx = context_with(mem.clone());
        ctx.settings.auto_disable_after_secs = 60;
        let who = caller();
        let s = sub(&ctx, &who, &["chain.confirmed"]).await;
        let ops = sub(&ctx, &who, &["webhook.subscription.disabled"]).await;
        let load = || async { subscriptions::load(&ctx, &who, s.id.as_str()).await.unwrap() };
        let t0 = Timestamp(1_800_000_000_000);
        let runs = FailingRuns::default();

        after_attempt(&ctx, &runs, &load().await, FAILED, t0).await.unwrap();
        assert_eq!(load().await.failing_since, None, "a lone failure starts no clock");
        after_attempt(&ctx, &runs, &load().await, FAILED, t0.plus_seconds(30)).await.unwrap();
        assert_eq!(load().await.failing_since, Some(t0), "the second in a row starts it at the first");
        after_attempt(&ctx, &runs, &load().await, FAILED, t0.plus_seconds(35)).await.unwrap();
        assert_eq!(load().await.failing_since, Some(t0), "later failures keep the clock");
        after_attempt(&ctx, &runs, &load().await, OK, t0.plus_seconds(40)).await.unwrap();
        assert_eq!(load().await.failing_since, None, "one success resets it");

        let t1 = t0.plus_seconds(50);
        after_attempt(&ctx, &runs, &load().await, FAILED, t1).await.unwrap();
        after_attempt(&ctx, &runs, &load().await, FAILED, t1.plus_seconds(59)).await.unwrap();
        assert!(load().await.active);
        let stale = load().await;
        after_attempt(&ctx, &runs, &stale, FAILED, t1.plus_seconds(60)).await.unwrap();
        after_attempt(&ctx, &runs, &stale, FAILED, t1.plus_seconds(61)).await.unwrap(); // a racing attempt
        let now = load().await;
        assert!(!now.active);
        assert_eq!(now.disabled_reason.as_deref(), Some("failing"));
        assert_eq!(now.view()["disabled_at"], json!(t1.plus_seconds(60)));
        let sent = deliveries_of(&mem, &ops.id);
        assert_eq!(sent.len(), 1, "one event");
        let envelope: Value = serde_json::from_str(&sent[0].payload).unwrap();
        assert_eq!(
            envelope["data"],
            json!({"subscription_id": s.id, "url": s.url, "reason": "failing", "failing_since": t1})
        );

        // PATCH {"active": true} re-enables and clears the reason and the clock.
        let patched = subscriptions::update(&ctx, &who, s.id.as_str(), json!({"active": true})).await.unwrap();
        assert_eq!(
            (patched["active"].clone(), patched["disabled_reason"].clone(), patched["disabled_at"].clone()),
            (json!(true), Value::Null, Value::Null)
        );
        assert_eq!(load().await.failing_since, None);
    }
}
