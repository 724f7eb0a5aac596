//! Publishing: an event becomes one delivery per matching subscription (DESIGN §4 "Events", §6).
//!
//! Order of writes is what makes this safe: deliveries first, then the event record (the
//! idempotency marker), then the queue. A crash before the event record leaves deliveries that the
//! sweeper sends (a client retry may add duplicates, which at-least-once allows); a crash or SQS
//! failure after it leaves `pending` deliveries that the sweeper sends. Nothing is lost.

use super::input::{wrong_type, Fields};
use super::{Context, Settings};
use crate::envelope::Envelope;
use crate::error::{AppError, ValidationError};
use crate::filters::{subscription_matches, EventFacts};
use crate::format::render;
use crate::ids::{AccountId, DeliveryId, EventId, SubscriptionId};
use crate::model::{Caller, Delivery, DeliveryStatus, StoredEvent, Subscription};
use crate::ports::DeliveryJob;
use crate::time::Timestamp;
use crate::validation::{parse_tags, EventType, Severity};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const FIELDS: &[&str] = &["event_type", "data", "severity", "tags", "event_id"];

/// A validated event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The producer's `event_id`, or a generated UUIDv7 when the body has none.
    pub event_id: EventId,
    /// A catalog type; operational (`webhook.*`) types are refused.
    pub event_type: EventType,
    /// The `data` object, passed through to the envelope unchanged.
    pub data: Value,
    /// The body's `severity`; None when absent.
    pub severity: Option<Severity>,
    /// The body's `tags`; empty when absent or null.
    pub tags: BTreeMap<String, String>,
}

impl NewEvent {
    /// Validates a publish body; unknown fields and a wrong type are 400s naming the field.
    pub fn parse(body: Value) -> Result<Self, AppError> {
        let fields = Fields::new(body)?;
        fields.deny_unknown(FIELDS)?;
        let event_type = EventType::parse(fields.req_str("event_type")?).map_err(AppError::Validation)?;
        if event_type.info().is_operational() {
            return Err(AppError::validation(
                "event_type",
                format!(
                    "event_type {} is an operational event type the service emits itself",
                    crate::validation::quoted(event_type.as_str())
                ),
            ));
        }
        let data = match fields.raw("data") {
            None => return Err(AppError::validation("data", "data is required")),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(wrong_type("data", "an object")),
        };
        let severity = fields
            .opt_str("severity")?
            .map(|s| Severity::parse("severity", s))
            .transpose()
            .map_err(AppError::Validation)?;
        let tags = match fields.raw("tags") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => parse_tags("tags", v).map_err(AppError::Validation)?,
        };
        let event_id = match fields.opt_str("event_id")? {
            Some(raw) => EventId::parse(raw).map_err(|_| {
                AppError::validation(
                    "event_id",
                    "event_id must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'",
                )
            })?,
            None => EventId::generate(),
        };
        Ok(Self { event_id, event_type, data, severity, tags })
    }
}

/// The result of a publish: how many deliveries the event has (also on an idempotent repeat).
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The published (or already published) event's id.
    pub event_id: EventId,
    /// Deliveries the event has: those created now or, on a repeat, at the first publish.
    pub deliveries: u32,
}

impl Published {
    /// The public JSON: `{event_id, deliveries}`.
    pub fn view(&self) -> Value {
        json!({ "event_id": self.event_id, "deliveries": self.deliveries })
    }
}

/// `POST /v1/events`: validates and publishes; publishing an `event_id` again returns the first result.
pub async fn publish(ctx: &Context, caller: &Caller, body: Value) -> Result<Published, AppError> {
    let event = NewEvent::parse(body)?;
    publish_event(ctx, &caller.account_id, event).await
}

/// Builds a pending delivery of `envelope` to `sub`, kept for the default retention (tools and
/// tests; use cases call [`pending_delivery`] with their settings).
pub fn new_delivery(sub: &Subscription, envelope: &Envelope, severity: Option<Severity>, now: Timestamp) -> Delivery {
    pending_delivery(sub, envelope, severity, now, Settings::default().expires_at(now))
}

/// Builds a pending delivery of `envelope` to `sub` that the retention TTL removes at `expires_at`,
/// its payload rendered once in the subscription's format (so every retry and replay sends and
/// signs the same bytes).
pub fn pending_delivery(
    sub: &Subscription,
    envelope: &Envelope,
    severity: Option<Severity>,
    now: Timestamp,
    expires_at: Timestamp,
) -> Delivery {
    Delivery {
        id: DeliveryId::generate(now.unix_ms() as u64),
        account_id: sub.account_id.clone(),
        subscription_id: sub.id.clone(),
        event_id: envelope.event_id.clone(),
        event_type: envelope.event_type.clone(),
        status: DeliveryStatus::Pending,
        attempt_count: 0,
        round_start: 0,
        next_attempt_at: Some(now),
        last_response_status: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        expires_at,
        payload: render(sub.format, envelope, severity),
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
        deliveries.iter().map(|d| DeliveryJob::new(d.account_id.clone(), d.id.clone())).collect();
    if let Err(e) = ctx.queue.enqueue(&jobs).await {
        tracing::warn!(error = %e, count = jobs.len(), "enqueue failed; the sweeper will send these deliveries");
    }
}

/// Publishes an already validated event for an account (API publish and inbound triggers).
pub async fn publish_event(ctx: &Context, account: &AccountId, event: NewEvent) -> Result<Published, AppError> {
    publish_event_excluding(ctx, account, event, None).await
}

/// [`publish_event`], never delivering to `exclude` (the subscription an operational event is
/// about).
pub async fn publish_event_excluding(
    ctx: &Context,
    account: &AccountId,
    event: NewEvent,
    exclude: Option<&SubscriptionId>,
) -> Result<Published, AppError> {
    let mut results = publish_events_excluding(ctx, account, vec![event], exclude).await?;
    results.pop().ok_or(AppError::Internal("publish returned no result".into()))
}

/// The most events one `POST /v1/events/batch` takes (DESIGN §4).
pub const MAX_BATCH_EVENTS: usize = 100;
/// The most bytes one event of a batch may take, as compact JSON: the single-publish body limit.
pub const MAX_EVENT_BYTES: usize = 128 * 1024;

/// `POST /v1/events/batch`: every event is validated before anything is published; results in
/// request order.
pub async fn publish_batch(ctx: &Context, caller: &Caller, body: Value) -> Result<Vec<Published>, AppError> {
    let events = parse_batch(body)?;
    publish_events(ctx, &caller.account_id, events).await
}

/// `{"events": [event, …]}` with 1 to [`MAX_BATCH_EVENTS`] events, each at most
/// [`MAX_EVENT_BYTES`]; an error names the event and its field (`events[3].event_type: …`).
pub fn parse_batch(body: Value) -> Result<Vec<NewEvent>, AppError> {
    let fields = Fields::new(body)?;
    fields.deny_unknown(&["events"])?;
    let list = match fields.raw("events") {
        None | Some(Value::Null) => return Err(AppError::validation("events", "events is required")),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(wrong_type("events", "an array")),
    };
    if list.is_empty() || list.len() > MAX_BATCH_EVENTS {
        return Err(AppError::validation(
            "events",
            format!("events must hold 1 to {MAX_BATCH_EVENTS} events, not {}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, raw)| {
            let size = serde_json::to_vec(raw).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > MAX_EVENT_BYTES {
                return Err(AppError::validation(
                    format!("events[{i}]"),
                    format!("events[{i}]: event is {size} bytes, over the {MAX_EVENT_BYTES} limit"),
                ));
            }
            NewEvent::parse(raw.clone()).map_err(|e| in_batch(i, e))
        })
        .collect()
}

/// Prefixes a field error with the event's place: `data is required` → `events[2].data: is
/// required`; a message not led by a field (`unknown field …`) → `events[2]: unknown field …`.
fn in_batch(index: usize, err: AppError) -> AppError {
    let AppError::Validation(ValidationError { field, message }) = err else { return err };
    let (head, rest) = message.split_once(' ').unwrap_or((message.as_str(), ""));
    let names_field = FIELDS.iter().any(|f| head == *f || head.strip_prefix(f).is_some_and(|t| t.starts_with('.')));
    let place = format!("events[{index}]");
    if names_field && !rest.is_empty() {
        AppError::validation(format!("{place}.{field}"), format!("{place}.{head}: {rest}"))
    } else if message == "request body must be a JSON object" {
        AppError::validation(place.clone(), format!("{place}: must be a JSON object"))
    } else {
        AppError::validation(format!("{place}.{field}"), format!("{place}: {message}"))
    }
}

/// One event's part of a publish: its record and deliveries, or the answer it already has.
enum Pending {
    Known(Published),
    New { record: StoredEvent, deliveries: Vec<Delivery> },
}

/// Publishes validated events: known `event_id`s (earlier, or earlier in the same list) answer
/// their first result; the subscriptions are read once; all deliveries (and their bodies) are
/// written in one batched call before any event record, then the records, then one enqueue.
pub async fn publish_events(
    ctx: &Context,
    account: &AccountId,
    events: Vec<NewEvent>,
) -> Result<Vec<Published>, AppError> {
    publish_events_excluding(ctx, account, events, None).await
}

/// [`publish_events`] to every matching subscription but `exclude`.
async fn publish_events_excluding(
    ctx: &Context,
    account: &AccountId,
    events: Vec<NewEvent>,
    exclude: Option<&SubscriptionId>,
) -> Result<Vec<Published>, AppError> {
    let plan = plan_events(ctx, account, events, exclude).await?;
    let all: Vec<Delivery> = plan
        .iter()
        .flat_map(|p| match p {
            Pending::New { deliveries, .. } => deliveries.as_slice(),
            Pending::Known(_) => &[],
        })
        .cloned()
        .collect();
    if let Err(e) = ctx.deliveries.insert_deliveries(&all).await {
        undo_deliveries(ctx, account, &all).await;
        return Err(e.into());
    }
    let (results, written, failure) = record_events(ctx, account, plan).await;
    // What was recorded is published (a retry answers it idempotently): send it either way.
    enqueue_written(ctx, &written).await;
    match failure {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

/// Each event's part: the answer of a known `event_id` (published earlier, or earlier in the same
/// list), or its record and deliveries; the subscriptions are read once, and only if needed.
async fn plan_events(
    ctx: &Context,
    account: &AccountId,
    events: Vec<NewEvent>,
    exclude: Option<&SubscriptionId>,
) -> Result<Vec<Pending>, AppError> {
    let now = ctx.clock.now();
    let ids: Vec<EventId> = events.iter().map(|e| e.event_id.clone()).collect();
    let mut known = if ids.len() == 1 {
        ctx.deliveries.find_event(account, &ids[0]).await?.into_iter().collect()
    } else {
        ctx.deliveries.find_events(account, &ids).await?
    };
    let mut subs: Option<Vec<Subscription>> = None;
    let mut plan: Vec<Pending> = Vec::with_capacity(events.len());
    for event in events {
        let earlier = plan.iter().find_map(|p| match p {
            Pending::Known(k) if k.event_id == event.event_id => Some(k.clone()),
            Pending::New { record, .. } if record.event_id == event.event_id => {
                Some(Published { event_id: record.event_id.clone(), deliveries: record.delivery_count })
            }
            _ => None,
        });
        if let Some(known) = earlier {
            plan.push(Pending::Known(known));
            continue;
        }
        if let Some(at) = known.iter().position(|k| k.event_id == event.event_id) {
            let existing = known.swap_remove(at);
            plan.push(Pending::Known(Published { event_id: existing.event_id, deliveries: existing.delivery_count }));
            continue;
        }
        let subs = match &subs {
            Some(s) => s,
            None => subs.insert(ctx.subscriptions.list_all(account).await?),
        };
        plan.push(plan_event(ctx, account, subs, event, now, exclude));
    }
    Ok(plan)
}

/// Writes each new event's record (its deliveries are already written): the results in order,
/// the deliveries now published, and the first failure (after which the rest are undone).
async fn record_events(
    ctx: &Context,
    account: &AccountId,
    plan: Vec<Pending>,
) -> (Vec<Published>, Vec<Delivery>, Option<AppError>) {
    let mut results = Vec::with_capacity(plan.len());
    let mut written: Vec<Delivery> = Vec::new();
    let mut failure = None;
    for step in plan {
        let (record, deliveries) = match step {
            Pending::Known(k) => {
                results.push(k);
                continue;
            }
            Pending::New { record, deliveries } => (record, deliveries),
        };
        if failure.is_some() {
            undo_deliveries(ctx, account, &deliveries).await;
            continue;
        }
        match ctx.deliveries.insert_event_if_absent(&record).await {
            Ok(true) => {
                tracing::info!(account_id = %account, event_id = %record.event_id, event_type = %record.event_type, deliveries = deliveries.len(), "event published");
                results.push(Published { event_id: record.event_id, deliveries: record.delivery_count });
                written.extend(deliveries);
            }
            Ok(false) => {
                // A concurrent publish of the same event_id won: its deliveries stand, ours go.
                undo_deliveries(ctx, account, &deliveries).await;
                match ctx.deliveries.find_event(account, &record.event_id).await {
                    Ok(Some(existing)) => {
                        results.push(Published { event_id: existing.event_id, deliveries: existing.delivery_count })
                    }
                    Ok(None) => failure = Some(AppError::Unavailable("event record vanished".into())),
                    Err(e) => failure = Some(e.into()),
                }
            }
            Err(e) => {
                undo_deliveries(ctx, account, &deliveries).await;
                failure = Some(e.into());
            }
        }
    }
    (results, written, failure)
}

/// The record and deliveries of one new event.
fn plan_event(
    ctx: &Context,
    account: &AccountId,
    subs: &[Subscription],
    event: NewEvent,
    now: Timestamp,
    exclude: Option<&SubscriptionId>,
) -> Pending {
    let facts = EventFacts { event_type: event.event_type.as_str(), severity: event.severity, tags: &event.tags };
    let expires_at = ctx.settings.expires_at(now);
    let matching: Vec<&Subscription> =
        subs.iter().filter(|s| exclude != Some(&s.id) && subscription_matches(s, &facts)).collect();
    let envelope = Envelope::new(event.event_id.clone(), event.event_type.as_str(), now, event.data);
    let deliveries: Vec<Delivery> =
        matching.into_iter().map(|s| pending_delivery(s, &envelope, event.severity, now, expires_at)).collect();
    let record = StoredEvent {
        account_id: account.clone(),
        event_id: event.event_id,
        event_type: event.event_type.as_str().to_owned(),
        severity: event.severity,
        tags: event.tags,
        emitted_at: now,
        delivery_count: deliveries.len() as u32,
        expires_at,
    };
    Pending::New { record, deliveries }
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
    async fn batch_publishes_in_order_once_per_event_id() {
        let mem = std::sync::Arc::new(crate::testing::Memory::default());
        let ctx = crate::testing::context_with(mem.clone());
        let who = caller();
        subscriptions::create(&ctx, &who, json!({"url": "https://a.example/h", "events": ["finding.*"]}))
            .await
            .unwrap();
        subscriptions::create(&ctx, &who, json!({"url": "https://b.example/h", "events": ["chain.confirmed"]}))
            .await
            .unwrap();
        publish(&ctx, &who, json!({"event_type": "chain.confirmed", "data": {}, "event_id": "old"})).await.unwrap();
        assert_eq!(mem.queue.lock().unwrap().len(), 1);
        let body = json!({"events": [
            {"event_type": "finding.discovered", "data": {"n": 1}, "event_id": "b1"},
            {"event_type": "agent.registered", "data": {}},
            {"event_type": "chain.confirmed", "data": {}, "event_id": "old"},
            {"event_type": "finding.discovered", "data": {"n": 2}, "event_id": "b1"},
        ]});
        let results = publish_batch(&ctx, &who, body.clone()).await.unwrap();
        let got: Vec<(String, u32)> = results.iter().map(|r| (r.event_id.to_string(), r.deliveries)).collect();
        assert_eq!(got[0], ("b1".to_owned(), 1));
        assert_eq!(got[1].1, 0);
        assert_eq!(got[2], ("old".to_owned(), 1));
        assert_eq!(got[3], ("b1".to_owned(), 1));
        assert_eq!(mem.queue.lock().unwrap().len(), 2, "only b1's one delivery is new");
        // A retried batch publishes nothing more.
        let again = publish_batch(&ctx, &who, body).await.unwrap();
        assert_eq!(again[0], results[0]);
        assert_eq!(mem.queue.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn batch_validation_names_the_event_and_publishes_nothing() {
        let mem = std::sync::Arc::new(crate::testing::Memory::default());
        let ctx = crate::testing::context_with(mem.clone());
        let who = caller();
        subscriptions::create(&ctx, &who, json!({"url": "https://a.example/h", "events": ["finding.*"]}))
            .await
            .unwrap();
        let ok = json!({"event_type": "finding.discovered", "data": {}});
        let big = json!({"event_type": "finding.discovered", "data": {"x": "y".repeat(MAX_EVENT_BYTES)}});
        let cases = [
            (json!({}), "events is required"),
            (json!({"events": {}}), "events must be an array"),
            (json!({"events": []}), "events must hold 1 to 100 events, not 0"),
            (json!({"events": vec![ok.clone(); 101]}), "events must hold 1 to 100 events, not 101"),
            (json!({"events": [ok.clone()], "x": 1}), "unknown field"),
            (
                json!({"events": [ok.clone(), ok.clone(), ok.clone(), {"event_type": "nope", "data": {}}]}),
                "events[3].event_type: \"nope\" is not a known event type",
            ),
            (json!({"events": [ok.clone(), {"event_type": "chain.confirmed"}]}), "events[1].data: is required"),
            (
                json!({"events": [{"event_type": "chain.confirmed", "data": {}, "tags": {"k": 1}}]}),
                "events[0].tags.k: must be a string",
            ),
            (
                json!({"events": [{"event_type": "chain.confirmed", "data": {}, "extra": 1}]}),
                "events[0]: unknown field",
            ),
            (json!({"events": [ok.clone(), 7]}), "events[1]: must be a JSON object"),
            (json!({"events": [ok.clone(), big]}), "events[1]: event is "),
        ];
        for (input, want) in cases {
            match publish_batch(&ctx, &who, input.clone()).await {
                Err(AppError::Validation(m)) => assert!(m.message.starts_with(want), "{want} / {m}"),
                other => panic!("{want}: {other:?}"),
            }
        }
        assert!(mem.queue.lock().unwrap().is_empty(), "nothing published");
        assert!(mem.deliveries.lock().unwrap().is_empty(), "nothing written");
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
            (
                json!({"event_type": "webhook.delivery.dead_lettered", "data": {}}),
                "event_type \"webhook.delivery.dead_lettered\" is an operational event type",
            ),
        ];
        for (input, want) in cases {
            match publish(&ctx, &who, input.clone()).await {
                Err(AppError::Validation(m)) => assert!(m.message.starts_with(want), "{input}: {m}"),
                other => panic!("{input}: {other:?}"),
            }
        }
    }
}
