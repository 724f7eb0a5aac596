//! Publishing: an event becomes one delivery per matching subscription (docs/api.md, docs/delivery.md).
//!
//! Order of writes is what makes this safe: deliveries first, then the event records (the
//! idempotency markers, holding the payload once and the ids of the deliveries, and the durable
//! point: after them the publish is never undone), then the queue. A crash before the records
//! leaves deliveries no record stands for: never sent (the producer was not answered 202 and
//! publishes again), they are abandoned if anything claims them; a crash or SQS failure after
//! them leaves `pending` deliveries that the sweeper sends (it checks each recent record). A record write that is tried again after AWS stored it
//! (its answer lost) finds its own `publish_token` and counts as written, so it never takes back
//! its own deliveries. A batch's records are written all or none, so a failed batch publishes
//! nothing and its retry publishes every event once, with or without `event_id`s.

use super::json_fields::{wrong_type, Fields, REQUEST_FIELD};
use super::Context;
use crate::body_formats::render;
use crate::envelope::Envelope;
use crate::error::{AppError, ValidationError};
use crate::filters::{subscription_matches, EventFacts};
use crate::ids::{AccountId, DeliveryId, EventId, SubscriptionId};
use crate::model::{Caller, Delivery, DeliveryStatus, StoredEvent, Subscription};
use crate::ports::{DeliveryJob, RecordWrite};
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
    /// Whether `event_id` came from the producer (or is derived from what happened), so a
    /// retry names the same event; false when it was generated here.
    pub id_given: bool,
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
        let id_given = fields.opt_str("event_id")?.is_some();
        let event_id = match fields.opt_str("event_id")? {
            Some(raw) => EventId::parse(raw).map_err(|_| {
                AppError::validation(
                    "event_id",
                    "event_id must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'",
                )
            })?,
            None => EventId::generate(),
        };
        Ok(Self { event_id, event_type, data, severity, tags, id_given })
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
    super::limits::check_publish(ctx, &caller.account_id, 1).await?;
    publish_event(ctx, &caller.account_id, event).await
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
        fifo: sub.fifo,
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
    let jobs: Vec<DeliveryJob> = deliveries.iter().map(DeliveryJob::for_delivery).collect();
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
    results.pop().ok_or(AppError::bug("publish returned no result"))
}

/// The most events one `POST /v1/events/batch` takes (docs/api.md).
pub const MAX_BATCH_EVENTS: usize = 100;
/// The most bytes one event of a batch may take, as compact JSON: the single-publish body limit.
pub const MAX_EVENT_BYTES: usize = 128 * 1024;

/// `POST /v1/events/batch`: every event is validated before anything is published; results in
/// request order.
pub async fn publish_batch(ctx: &Context, caller: &Caller, body: Value) -> Result<Vec<Published>, AppError> {
    let events = parse_batch(body)?;
    super::limits::check_publish(ctx, &caller.account_id, events.len()).await?;
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

/// Places a field error inside the batch, by the field it names: `data` with `data is required`
/// becomes `events[2].data` with `events[2].data: is required`; a message not led by its field
/// (`unknown field "x"`) is placed whole (`events[2]: unknown field "x"`), and an error about the
/// request body itself (field `request`) is about the event (`events[2]: must be a JSON object`).
fn in_batch(index: usize, err: AppError) -> AppError {
    let AppError::Validation(ValidationError { field, message }) = err else { return err };
    let place = format!("events[{index}]");
    if field == REQUEST_FIELD {
        return AppError::validation(
            place.clone(),
            format!("{place}: {}", message.trim_start_matches("request body ")),
        );
    }
    let led_by_field =
        message.strip_prefix(field.as_str()).filter(|rest| rest.is_empty() || rest.starts_with([' ', ':', '.']));
    let Some(rest) = led_by_field else {
        return AppError::validation(format!("{place}.{field}"), format!("{place}: {message}"));
    };
    // `tags.k must be a string` names a place under its field `tags`: keep it before the colon.
    let (under_field, problem) = match rest.strip_prefix('.').and_then(|path| path.split_once(' ')) {
        Some((sub, problem)) => (&rest[..=sub.len()], problem),
        None => ("", rest.trim_start_matches(':').trim_start()),
    };
    AppError::validation(format!("{place}.{field}"), format!("{place}.{field}{under_field}: {problem}"))
}

/// One event's part of a publish: its record and deliveries, or the answer it already has.
enum Pending {
    Known(Published),
    New { record: StoredEvent, deliveries: Vec<Delivery> },
}

impl Pending {
    /// The deliveries this publish writes for the event (none for a known one).
    fn deliveries(&self) -> &[Delivery] {
        match self {
            Pending::New { deliveries, .. } => deliveries,
            Pending::Known(_) => &[],
        }
    }

    /// The answer for the event once its record is written.
    fn into_published(self) -> Published {
        match self {
            Pending::Known(k) => k,
            Pending::New { record, .. } => record.published(),
        }
    }
}

/// Every delivery the plan writes for its new events.
fn planned_deliveries(plan: &[Pending]) -> Vec<Delivery> {
    plan.iter().flat_map(Pending::deliveries).cloned().collect()
}

impl StoredEvent {
    /// The publish answer this record gives: its id and how many deliveries it made.
    fn published(&self) -> Published {
        Published { event_id: self.event_id.clone(), deliveries: self.delivery_count }
    }
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
    // A retry can recognise what a failed try stored only by producer-given ids: without them a
    // batch's records are written all or none, else each alone (half the write units).
    let mode = if events.iter().all(|e| e.id_given) { RecordWrite::EachAlone } else { RecordWrite::AllOrNone };
    let plan = plan_events(ctx, account, events, exclude).await?;
    let all: Vec<Delivery> = planned_deliveries(&plan);
    if let Err(e) = ctx.deliveries.insert_deliveries(&all).await {
        // No record names them yet, so nothing was published: take back what was written.
        undo_deliveries(ctx, account, &all).await;
        return Err(e.into());
    }
    let (results, written) = record_events(ctx, account, plan, mode).await;
    // Whatever the records' outcome, what may be published is sent: deliveries are never undone
    // once their record may exist (a retry of the publish answers from that record).
    enqueue_written(ctx, &written).await;
    results
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
    let publish_token = hex::encode(rand::random::<[u8; 16]>());
    let mut ids: Vec<EventId> = events.iter().map(|e| e.event_id.clone()).collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.dedup();
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
            Pending::New { record, .. } if record.event_id == event.event_id => Some(record.published()),
            _ => None,
        });
        if let Some(known) = earlier {
            plan.push(Pending::Known(known));
            continue;
        }
        if let Some(at) = known.iter().position(|k| k.event_id == event.event_id) {
            plan.push(Pending::Known(known.swap_remove(at).published()));
            continue;
        }
        let subs = match &subs {
            Some(s) => s,
            None => subs.insert(ctx.subscriptions.list_all(account).await?),
        };
        let mut step = plan_event(ctx, account, subs, event, now, exclude);
        if let Pending::New { record, .. } = &mut step {
            record.publish_token = Some(publish_token.clone());
        }
        plan.push(step);
    }
    Ok(plan)
}

/// Writes the new events' records, the durable point of the publish, all or none: the results in
/// order and the deliveries to send. An event another publish recorded first takes that
/// publish's answer and its own deliveries are taken back; the rest are written again. A write
/// that failed is read back (consistently) to learn whether it was stored; only when that read
/// fails too is the outcome unknown, and then every delivery is kept and sent and the error
/// answered (the producer's retry finds the records, or publishes what is missing).
async fn record_events(
    ctx: &Context,
    account: &AccountId,
    mut plan: Vec<Pending>,
    mode: RecordWrite,
) -> (Result<Vec<Published>, AppError>, Vec<Delivery>) {
    // Each round writes every remaining record, learns that none was written, or resolves at
    // least one as another publish's; the bound only guards against a store that keeps changing.
    for _ in 0..=plan.len() + 1 {
        let records: Vec<StoredEvent> = plan
            .iter()
            .filter_map(|p| match p {
                Pending::New { record, .. } => Some(record.clone()),
                Pending::Known(_) => None,
            })
            .collect();
        if records.is_empty() {
            return (Ok(plan.into_iter().map(Pending::into_published).collect()), Vec::new());
        }
        let found = match ctx.deliveries.insert_events(&records, mode).await {
            Ok(found) => found,
            Err(e) => match read_back(ctx, account, &records).await {
                Some(found) if found.iter().all(Option::is_none) => found,
                Some(found) if found.iter().all(|f| matches!(f, Some(None))) => {
                    // Nothing of this publish was stored: take it back whole.
                    let all: Vec<Delivery> = planned_deliveries(&plan);
                    undo_deliveries(ctx, account, &all).await;
                    return (Err(e.into()), Vec::new());
                }
                Some(_) => continue,
                None => return unknown_outcome(account, plan, e.into()),
            }
            .into_iter()
            .map(Option::flatten)
            .collect(),
        };
        if found.iter().all(Option::is_none) {
            let written: Vec<Delivery> = planned_deliveries(&plan);
            for r in &records {
                tracing::info!(account_id = %account, event_id = %r.event_id, event_type = %r.event_type, deliveries = r.delivery_count, "event published");
            }
            return (Ok(plan.into_iter().map(Pending::into_published).collect()), written);
        }
        for existing in found.into_iter().flatten() {
            // A concurrent publish of the same event_id recorded it first: its deliveries stand,
            // these were never published and go.
            let at = plan
                .iter()
                .position(|p| matches!(p, Pending::New { record, .. } if record.event_id == existing.event_id));
            if let Some(at) = at {
                undo_deliveries(ctx, account, plan[at].deliveries()).await;
                plan[at] = Pending::Known(existing.published());
            }
        }
    }
    unknown_outcome(account, plan, AppError::Unavailable("event records kept changing".into()))
}

/// What a consistent read finds of `records` after their write failed, per record: None when it
/// is stored with this publish's token, `Some(None)` when absent, `Some(Some(other))` when another
/// publish holds the id. None when the read fails too.
async fn read_back(
    ctx: &Context,
    account: &AccountId,
    records: &[StoredEvent],
) -> Option<Vec<Option<Option<StoredEvent>>>> {
    let ids: Vec<EventId> = records.iter().map(|r| r.event_id.clone()).collect();
    let found = ctx.deliveries.find_events(account, &ids).await.ok()?;
    Some(
        records
            .iter()
            .map(|r| match found.iter().find(|f| f.event_id == r.event_id) {
                Some(f) if f.publish_token.is_some() && f.publish_token == r.publish_token => None,
                Some(f) => Some(Some(f.clone())),
                None => Some(None),
            })
            .collect(),
    )
}

/// The records of this publish may or may not be stored: every delivery is kept and sent (a
/// duplicate at worst, never a loss) and `error` answered.
fn unknown_outcome(
    account: &AccountId,
    plan: Vec<Pending>,
    error: AppError,
) -> (Result<Vec<Published>, AppError>, Vec<Delivery>) {
    let kept: Vec<Delivery> = planned_deliveries(&plan);
    tracing::warn!(account_id = %account, error = %error, deliveries = kept.len(), "event records' write outcome unknown; their deliveries are kept and sent");
    (Err(error), kept)
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
    let facts = EventFacts {
        event_type: event.event_type.as_str(),
        severity: event.severity,
        tags: &event.tags,
        data: &event.data,
    };
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
        publish_token: None,
        deliveries: deliveries.iter().map(|d| d.id.clone()).collect(),
        bodies: StoredEvent::bodies_of(&deliveries),
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
mod tests;
