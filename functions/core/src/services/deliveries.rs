//! The delivery log (list with filters, get with attempts), replay and recover.
//!
//! Recover is replay in bulk: it pages through one subscription's log with the log's own filters
//! and replays each delivery through [`replay_all`], the code path of a single replay, so a
//! recovered delivery keeps its id, event id and payload exactly as a replayed one does.

use super::events::enqueue_written;
use super::json_fields::Fields;
use super::subscriptions;
use super::Context;
use crate::error::AppError;
use crate::ids::{DeliveryId, EventId, SubscriptionId};
use crate::model::{Caller, Delivery, DeliveryStatus};
use crate::page::{decode_cursor, encode_cursor};
use crate::ports::DeliveryFilter;
use crate::time::Timestamp;
use crate::validation::EventType;
use serde_json::{json, Value};

/// Parses a `dlv_` path id; a malformed id is a 404, like an unknown one.
pub fn parse_id(raw: &str) -> Result<DeliveryId, AppError> {
    DeliveryId::parse(raw).map_err(|_| AppError::NotFound("delivery"))
}

/// A parsed query of the log: every parameter typed, so the use case never sees a raw string.
#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    /// The filters, combined.
    pub filter: DeliveryFilter,
    /// Page size, from [`crate::page::parse_limit`].
    pub limit: usize,
    /// Continue after this delivery (from `cursor`); None for the first page.
    pub before: Option<DeliveryId>,
}

impl LogQuery {
    /// Reads the log's query parameters (`status`, `subscription_id`, `event_type`, `event_id`,
    /// `since`, `until`, `limit`, `cursor`) through `param`; a bad one is a 400 naming it.
    pub fn parse(param: impl Fn(&str) -> Option<String>) -> Result<Self, AppError> {
        let status = param("status")
            .map(|s| {
                DeliveryStatus::parse(&s).ok_or_else(|| {
                    AppError::validation(
                        "status",
                        "status must be one of pending, succeeded, failed, failed_permanent, abandoned",
                    )
                })
            })
            .transpose()?;
        let subscription_id = param("subscription_id")
            .map(|s| {
                SubscriptionId::parse(&s).map_err(|_| {
                    AppError::validation("subscription_id", "subscription_id is not a valid subscription id")
                })
            })
            .transpose()?;
        let event_type = param("event_type").map(|t| EventType::parse(&t).map_err(AppError::Validation)).transpose()?;
        let event_id = param("event_id")
            .map(|e| {
                EventId::parse(&e).map_err(|_| AppError::validation("event_id", "event_id is not a valid event id"))
            })
            .transpose()?;
        let (since, until) = parse_window(param("since").as_deref(), param("until").as_deref())?;
        let limit = crate::page::parse_limit(param("limit").as_deref())?;
        let before = decode_cursor(param("cursor").as_deref(), DeliveryId::parse)?;
        let filter = DeliveryFilter {
            status,
            subscription_id,
            event_type: event_type.map(|t| t.as_str().to_owned()),
            event_id,
            since,
            until,
        };
        Ok(Self { filter, limit, before })
    }
}

/// An RFC 3339 time named by its parameter.
fn parse_time(field: &str, raw: &str) -> Result<Timestamp, AppError> {
    Timestamp::parse_rfc3339(raw).ok_or_else(|| {
        AppError::validation(field, format!("{field} must be an RFC 3339 time such as 2026-05-03T14:22:01Z"))
    })
}

/// `[since, until)`: `since` must come first.
fn parse_window(since: Option<&str>, until: Option<&str>) -> Result<(Option<Timestamp>, Option<Timestamp>), AppError> {
    let since = since.map(|raw| parse_time("since", raw)).transpose()?;
    let until = until.map(|raw| parse_time("until", raw)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(AppError::validation("since", "since must be before until"));
        }
    }
    Ok((since, until))
}

/// `GET /v1/webhooks/deliveries`: one page of the caller's delivery log, newest first, as summaries.
/// A page may hold fewer than `limit` (even none) with a `next_cursor` when the store's read
/// budget ran out first; a `subscription_id` not in the caller's account is a 404.
pub async fn list(ctx: &Context, caller: &Caller, q: &LogQuery) -> Result<Value, AppError> {
    // A subscription the caller does not have is a 404, as on its own path: another tenant's id
    // reveals nothing, and an unknown one is not a filter that reads the log to find nothing.
    // A deleted subscription's deliveries stay listed without the filter (docs/api.md, "Delivery-log filters").
    if let Some(id) = &q.filter.subscription_id {
        ctx.subscriptions.get(&caller.account_id, id).await?.ok_or(AppError::NotFound("subscription"))?;
    }
    let (items, last) = ctx.deliveries.list_page(&caller.account_id, &q.filter, q.limit, q.before.as_ref()).await?;
    Ok(json!({
        "deliveries": items.iter().map(Delivery::summary_view).collect::<Vec<_>>(),
        "next_cursor": last.map(|id| encode_cursor(id.as_str())),
    }))
}

/// `GET /v1/webhooks/deliveries/{id}`: one delivery with its payload and newest attempts; 404 if not the caller's.
pub async fn get(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<Value, AppError> {
    let id = parse_id(raw_id)?;
    let d = ctx.deliveries.get(&caller.account_id, &id).await?.ok_or(AppError::NotFound("delivery"))?;
    Ok(d.detail_view())
}

/// Puts a delivery back to `pending` (same event id, same payload) and enqueues it.
pub async fn replay(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<Value, AppError> {
    let id = parse_id(raw_id)?;
    let d = ctx.deliveries.get(&caller.account_id, &id).await?.ok_or(AppError::NotFound("delivery"))?;
    // Only a finished delivery is replayed: one in flight is still being sent (or waits for its
    // retry) and a second send beside it is what claims exist to prevent.
    if d.status.is_in_flight() || replay_all(ctx, std::slice::from_ref(&d), &DeliveryStatus::FINISHED).await? == 0 {
        return Err(in_flight(&d));
    }
    Ok(json!({ "delivery_id": id, "status": DeliveryStatus::Pending }))
}

/// The 409 of a replay that found the delivery in flight.
fn in_flight(d: &Delivery) -> AppError {
    AppError::Conflict(format!(
        "delivery {} is {}: only a succeeded, failed_permanent or abandoned delivery can be replayed",
        d.id,
        d.status.as_str()
    ))
}

/// Concurrent status updates of one recover call (each is one conditional write).
const REPLAY_CONCURRENCY: usize = 16;

/// The replay of each delivery still in one of the statuses `from`: back to `pending`, due now,
/// then enqueued in batches. Returns how many were replayed; a delivery whose status changed in
/// the meantime is skipped.
async fn replay_all(ctx: &Context, deliveries: &[Delivery], from: &[DeliveryStatus]) -> Result<usize, AppError> {
    let now = ctx.clock.now();
    let mut replayed = Vec::with_capacity(deliveries.len());
    let mut failure: Option<AppError> = None;
    for chunk in deliveries.chunks(REPLAY_CONCURRENCY) {
        let moves = chunk.iter().map(|d| ctx.deliveries.replay(&d.account_id, &d.id, from, now));
        for (d, moved) in chunk.iter().zip(futures::future::join_all(moves).await) {
            match moved {
                Ok(true) => replayed.push(d.clone()),
                Ok(false) => {}
                Err(e) => failure = Some(e.into()),
            }
        }
    }
    // Enqueue what was moved even if another update failed: those are pending now.
    enqueue_written(ctx, &replayed).await;
    for d in &replayed {
        tracing::info!(account_id = %d.account_id, delivery_id = %d.id, event_id = %d.event_id, "delivery replayed");
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(replayed.len()),
    }
}

const RECOVER_FIELDS: &[&str] = &["since", "until", "status", "cursor"];

/// A recover cursor names the subscription it pages through, so it cannot be used on another.
fn recover_cursor(sub: &SubscriptionId, last: &DeliveryId) -> String {
    encode_cursor(&format!("{sub}/{last}"))
}

fn parse_recover_cursor(sub: &SubscriptionId, raw: Option<&str>) -> Result<Option<DeliveryId>, AppError> {
    let parsed = decode_cursor(raw, |text| {
        let (s, d) = text.split_once('/').ok_or(())?;
        Ok::<_, ()>((SubscriptionId::parse(s).map_err(|_| ())?, DeliveryId::parse(d).map_err(|_| ())?))
    })?;
    match parsed {
        Some((of, _)) if &of != sub => Err(AppError::validation("cursor", "cursor belongs to another subscription")),
        Some((_, last)) => Ok(Some(last)),
        None => Ok(None),
    }
}

/// `POST /v1/webhooks/subscriptions/{id}/recover`: replays the subscription's deliveries created
/// in `[since, until)` with `status` (default `failed_permanent`), newest first, at most
/// `recover_max_per_call` per call; `next_cursor` continues.
pub async fn recover(ctx: &Context, caller: &Caller, raw_sub_id: &str, body: Value) -> Result<Value, AppError> {
    let sub = subscriptions::load(ctx, caller, raw_sub_id).await?;
    let fields = Fields::new(body)?;
    fields.deny_unknown(RECOVER_FIELDS)?;
    let since = fields.req_str("since")?;
    let (since, until) = parse_window(Some(since), fields.opt_str("until")?)?;
    let status = match fields.opt_str("status")? {
        None | Some("failed_permanent") => DeliveryStatus::FailedPermanent,
        Some("failed") => DeliveryStatus::Failed,
        Some(_) => return Err(AppError::validation("status", "status must be failed_permanent or failed")),
    };
    let now = ctx.clock.now();
    let retention = ctx.settings.retention_days;
    if since.is_some_and(|s| s < now.plus_seconds(-retention * 86_400)) {
        return Err(AppError::validation(
            "since",
            format!("since is older than the delivery log's retention of {retention} days"),
        ));
    }
    let before = parse_recover_cursor(&sub.id, fields.opt_str("cursor")?)?;
    let filter = DeliveryFilter {
        status: Some(status),
        subscription_id: Some(sub.id.clone()),
        since,
        until,
        ..DeliveryFilter::default()
    };
    let limit = ctx.settings.recover_max_per_call.max(1);
    let (found, last) = ctx.deliveries.list_page(&caller.account_id, &filter, limit, before.as_ref()).await?;
    let recovered = replay_all(ctx, &found, &[status]).await?;
    tracing::info!(account_id = %caller.account_id, subscription_id = %sub.id, recovered, more = last.is_some(), "deliveries recovered");
    Ok(json!({ "recovered": recovered, "next_cursor": last.map(|id| recover_cursor(&sub.id, &id)) }))
}
