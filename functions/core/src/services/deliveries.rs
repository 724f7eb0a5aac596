//! The delivery log (list, get with attempts) and replay.

use super::events::enqueue_written;
use super::Context;
use crate::error::AppError;
use crate::ids::{DeliveryId, SubscriptionId};
use crate::model::{Caller, Delivery, DeliveryStatus};
use crate::page::{decode_cursor, encode_cursor};
use crate::ports::DeliveryFilter;
use serde_json::{json, Value};

pub fn parse_id(raw: &str) -> Result<DeliveryId, AppError> {
    DeliveryId::parse(raw).map_err(|_| AppError::NotFound("delivery"))
}

/// Query parameters of the log, as given.
#[derive(Debug, Default)]
pub struct ListQuery<'a> {
    pub status: Option<&'a str>,
    pub subscription_id: Option<&'a str>,
    pub limit: usize,
    pub cursor: Option<&'a str>,
}

pub async fn list(ctx: &Context, caller: &Caller, q: ListQuery<'_>) -> Result<Value, AppError> {
    let status = q
        .status
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                AppError::validation("status", "status must be one of pending, succeeded, failed, failed_permanent, abandoned")
            })
        })
        .transpose()?;
    let subscription_id = q
        .subscription_id
        .map(|s| SubscriptionId::parse(s).map_err(|_| AppError::validation("subscription_id", "subscription_id is not a valid subscription id")))
        .transpose()?;
    let before = decode_cursor(q.cursor, DeliveryId::parse)?;
    let filter = DeliveryFilter { status, subscription_id };
    let (items, last) = ctx.deliveries.list_page(&caller.account_id, &filter, q.limit, before.as_ref()).await?;
    Ok(json!({
        "deliveries": items.iter().map(Delivery::summary_view).collect::<Vec<_>>(),
        "next_cursor": last.map(|id| encode_cursor(id.as_str())),
    }))
}

pub async fn get(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<Value, AppError> {
    let id = parse_id(raw_id)?;
    let d = ctx.deliveries.get(&caller.account_id, &id).await?.ok_or(AppError::NotFound("delivery"))?;
    Ok(d.detail_view())
}

/// Puts a delivery back to `pending` (same event id, same payload) and enqueues it.
pub async fn replay(ctx: &Context, caller: &Caller, raw_id: &str) -> Result<Value, AppError> {
    let id = parse_id(raw_id)?;
    let d = ctx.deliveries.get(&caller.account_id, &id).await?.ok_or(AppError::NotFound("delivery"))?;
    let now = ctx.clock.now();
    let all = DeliveryStatus::ALL;
    if !ctx.deliveries.transition(&caller.account_id, &id, &all, DeliveryStatus::Pending, Some(now), now).await? {
        return Err(AppError::NotFound("delivery"));
    }
    enqueue_written(ctx, std::slice::from_ref(&d)).await;
    tracing::info!(account_id = %caller.account_id, delivery_id = %id, event_id = %d.event_id, "delivery replayed");
    Ok(json!({ "delivery_id": id, "status": DeliveryStatus::Pending }))
}
