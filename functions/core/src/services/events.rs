//! Publishing: an event becomes one delivery per matching subscription (DESIGN §4 "Events", §6).
//!
//! Order of writes is what makes this safe: deliveries first, then the event record (the
//! idempotency marker), then the queue. A crash before the event record leaves deliveries that the
//! sweeper sends (a client retry may add duplicates, which at-least-once allows); a crash or SQS
//! failure after it leaves `pending` deliveries that the sweeper sends. Nothing is lost.

use super::input::{wrong_type, Fields};
use super::Context;
use crate::envelope::Envelope;
use crate::error::AppError;
use crate::filters::{subscription_matches, EventFacts};
use crate::ids::{AccountId, DeliveryId, EventId, SubscriptionId};
use crate::model::{Caller, Delivery, DeliveryStatus, StoredEvent, Subscription};
use crate::ports::DeliveryJob;
use crate::time::Timestamp;
use crate::validation::{is_operational, parse_tags, EventType, Severity};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const FIELDS: &[&str] = &["event_type", "data", "severity", "tags", "event_id"];

/// A validated event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: EventId,
    pub event_type: EventType,
    pub data: Value,
    pub severity: Option<Severity>,
    pub tags: BTreeMap<String, String>,
}

impl NewEvent {
    pub fn parse(body: Value) -> Result<Self, AppError> {
        let fields = Fields::new(body)?;
        fields.deny_unknown(FIELDS)?;
        let event_type = EventType::parse(fields.req_str("event_type")?).map_err(AppError::Validation)?;
        if is_operational(event_type.as_str()) {
            return Err(AppError::validation(format!(
                "event_type {} is an operational event type the service emits itself",
                crate::validation::quoted(event_type.as_str())
            )));
        }
        let data = match fields.raw("data") {
            None => return Err(AppError::validation("data is required")),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(wrong_type("data", "an object")),
        };
        let severity = fields.opt_str("severity")?.map(|s| Severity::parse("severity", s)).transpose().map_err(AppError::Validation)?;
        let tags = match fields.raw("tags") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => parse_tags("tags", v).map_err(AppError::Validation)?,
        };
        let event_id = match fields.opt_str("event_id")? {
            Some(raw) => EventId::parse(raw).map_err(|_| {
                AppError::validation("event_id must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'")
            })?,
            None => EventId::generate(),
        };
        Ok(Self { event_id, event_type, data, severity, tags })
    }
}

/// The result of a publish: how many deliveries the event has (also on an idempotent repeat).
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub event_id: EventId,
    pub deliveries: u32,
}

impl Published {
    pub fn view(&self) -> Value {
        json!({ "event_id": self.event_id, "deliveries": self.deliveries })
    }
}

pub async fn publish(ctx: &Context, caller: &Caller, body: Value) -> Result<Published, AppError> {
    let event = NewEvent::parse(body)?;
    publish_event(ctx, &caller.account_id, event).await
}

/// Builds a pending delivery of `envelope` to `sub`.
pub fn new_delivery(sub: &Subscription, envelope: &Envelope, payload: &str, now: Timestamp) -> Delivery {
    Delivery {
        id: DeliveryId::generate(now.unix_ms() as u64),
        account_id: sub.account_id.clone(),
        subscription_id: sub.id.clone(),
        event_id: envelope.event_id.clone(),
        event_type: envelope.event_type.clone(),
        status: DeliveryStatus::Pending,
        attempt_count: 0,
        next_attempt_at: Some(now),
        last_response_status: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        payload: payload.to_owned(),
        attempts: Vec::new(),
    }
}

/// Enqueues jobs for deliveries already written; a queue failure is logged, not returned, because
/// the deliveries are safe in the table and the sweeper will enqueue them.
pub async fn enqueue_written(ctx: &Context, deliveries: &[Delivery]) {
    if deliveries.is_empty() {
        return;
    }
    let jobs: Vec<DeliveryJob> =
        deliveries.iter().map(|d| DeliveryJob { account_id: d.account_id.clone(), delivery_id: d.id.clone() }).collect();
    if let Err(e) = ctx.queue.enqueue(&jobs).await {
        tracing::warn!(error = %e, count = jobs.len(), "enqueue failed; the sweeper will send these deliveries");
    }
}

/// Publishes an already validated event for an account (API publish and inbound triggers).
pub async fn publish_event(ctx: &Context, account: &AccountId, event: NewEvent) -> Result<Published, AppError> {
    publish_event_excluding(ctx, account, event, None).await
}

/// [`publish_event`], never delivering to `exclude` (an operational event's own subscription).
pub async fn publish_event_excluding(
    ctx: &Context,
    account: &AccountId,
    event: NewEvent,
    exclude: Option<&SubscriptionId>,
) -> Result<Published, AppError> {
    if let Some(existing) = ctx.deliveries.find_event(account, &event.event_id).await? {
        return Ok(Published { event_id: existing.event_id, deliveries: existing.delivery_count });
    }
    let now = ctx.clock.now();
    let facts = EventFacts { event_type: event.event_type.as_str(), severity: event.severity, tags: &event.tags };
    let subs = ctx.subscriptions.list_all(account).await?;
    let envelope = Envelope::new(event.event_id.clone(), event.event_type.as_str(), now, event.data);
    let payload = envelope.to_json();
    let deliveries: Vec<Delivery> = subs
        .iter()
        .filter(|s| exclude != Some(&s.id) && subscription_matches(s, &facts))
        .map(|s| new_delivery(s, &envelope, &payload, now))
        .collect();

    if let Err(e) = ctx.deliveries.insert_deliveries(&deliveries).await {
        undo_deliveries(ctx, account, &deliveries).await;
        return Err(e.into());
    }
    let record = StoredEvent {
        account_id: account.clone(),
        event_id: event.event_id.clone(),
        event_type: event.event_type.as_str().to_owned(),
        severity: event.severity,
        tags: event.tags,
        emitted_at: now,
        delivery_count: deliveries.len() as u32,
    };
    match ctx.deliveries.insert_event_if_absent(&record).await {
        Ok(true) => {}
        Ok(false) => {
            // A concurrent publish of the same event_id won: its deliveries stand, ours go.
            undo_deliveries(ctx, account, &deliveries).await;
            let existing = ctx.deliveries.find_event(account, &event.event_id).await?.ok_or(AppError::Unavailable("event record vanished".into()))?;
            return Ok(Published { event_id: existing.event_id, deliveries: existing.delivery_count });
        }
        Err(e) => {
            undo_deliveries(ctx, account, &deliveries).await;
            return Err(e.into());
        }
    }
    enqueue_written(ctx, &deliveries).await;
    tracing::info!(account_id = %account, event_id = %record.event_id, event_type = %record.event_type, deliveries = deliveries.len(), "event published");
    Ok(Published { event_id: record.event_id, deliveries: record.delivery_count })
}

/// Best effort: a delivery left behind by a failed undo is still a correct (duplicate) delivery.
async fn undo_deliveries(ctx: &Context, account: &AccountId, deliveries: &[Delivery]) {
    if deliveries.is_empty() {
        return;
    }
    let ids: Vec<DeliveryId> = deliveries.iter().map(|d| d.id.clone()).collect();
    if let Err(e) = ctx.deliveries.remove_deliveries(account, &ids).await {
        tracing::warn!(account_id = %account, error = %e, count = ids.len(), "could not remove deliveries of a failed publish; they will be delivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::subscriptions;
    use crate::testing::{caller, context};

    #[tokio::test]
    async fn publish_fans_out_by_filters_and_is_idempotent() {
        let mem = std::sync::Arc::new(crate::testing::Memory::default());
        let ctx = crate::testing::context_with(mem.clone());
        let who = caller();
        for body in [
            json!({"url": "https://a.example/h", "events": ["finding.discovered"]}),
            json!({"url": "https://b.example/h", "events": ["finding.*"], "filters": {"min_severity": "critical"}}),
            json!({"url": "https://c.example/h", "events": ["finding.*"], "filters": {"tags": {"team": "red"}}}),
            json!({"url": "https://d.example/h", "events": ["finding.discovered"], "active": false}),
            json!({"url": "https://e.example/h", "events": ["agent.registered"]}),
        ] {
            subscriptions::create(&ctx, &who, body).await.unwrap();
        }
        let event = json!({"event_type": "finding.discovered", "data": {"x": 1}, "severity": "high", "tags": {"team": "red"}, "event_id": "evt-1"});
        let first = publish(&ctx, &who, event.clone()).await.unwrap();
        assert_eq!(first.deliveries, 2); // a and c
        let again = publish(&ctx, &who, event).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(mem.queue.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn publish_validation() {
        let ctx = context();
        let who = caller();
        let cases = [
            (json!({"data": {}}), "event_type is required"),
            (json!({"event_type": "nope", "data": {}}), "event_type \"nope\" is not a known event type"),
            (json!({"event_type": "chain.confirmed"}), "data is required"),
            (json!({"event_type": "chain.confirmed", "data": 3}), "data must be an object"),
            (json!({"event_type": "chain.confirmed", "data": {}, "severity": "bad"}), "severity must be one of"),
            (json!({"event_type": "chain.confirmed", "data": {}, "tags": {"k": 1}}), "tags.k must be a string"),
            (json!({"event_type": "chain.confirmed", "data": {}, "event_id": "a b"}), "event_id must be"),
            (json!({"event_type": "chain.confirmed", "data": {}, "extra": 1}), "unknown field"),
            (json!({"event_type": "webhook.delivery.dead_lettered", "data": {}}), "event_type \"webhook.delivery.dead_lettered\" is an operational event type"),
        ];
        for (input, want) in cases {
            match publish(&ctx, &who, input.clone()).await {
                Err(AppError::Validation(m)) => assert!(m.starts_with(want), "{input}: {m}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }
}
