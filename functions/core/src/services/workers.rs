//! The dead-letter and sweeper use cases. Dead-lettering announces
//! `webhook.delivery.dead_lettered` (see [`operational`]).

use super::{operational, Context};
use crate::error::AppError;
use crate::model::DeliveryStatus;
use crate::ports::DeliveryJob;

/// A message redriven to the DLQ ran out of attempts: the delivery fails permanently.
pub async fn mark_dead_lettered(ctx: &Context, job: &DeliveryJob) -> Result<bool, AppError> {
    let now = ctx.clock.now();
    let moved = ctx
        .deliveries
        .transition(&job.account_id, &job.delivery_id, &DeliveryStatus::IN_FLIGHT, DeliveryStatus::FailedPermanent, None, now)
        .await?;
    let Some(d) = ctx.deliveries.get_to_send(&job.account_id, &job.delivery_id).await? else { return Ok(moved) };
    if moved {
        ctx.subscriptions.record_last_delivery(&d.account_id, &d.subscription_id, DeliveryStatus::FailedPermanent, now).await?;
        tracing::warn!(account_id = %job.account_id, delivery_id = %job.delivery_id, "delivery dead-lettered");
    }
    // Also when a retried message finds it already dead: the announcement is idempotent, so a
    // failure after the transition is made good by the retry.
    operational::announce_dead_lettered(ctx, &d).await?;
    Ok(moved)
}

/// Re-enqueues in-flight deliveries whose next attempt is overdue by more than `grace_secs` (a
/// lost enqueue, a crash between the table and the queue). Pushes their due time forward first so
/// the next sweep does not enqueue them again while the message is in flight.
pub async fn sweep(ctx: &Context, grace_secs: i64, batch: usize) -> Result<usize, AppError> {
    let now = ctx.clock.now();
    let overdue = ctx.deliveries.overdue(now.plus_seconds(-grace_secs), batch).await?;
    let mut jobs = Vec::with_capacity(overdue.len());
    for (account_id, delivery_id) in overdue {
        let Some(d) = ctx.deliveries.get(&account_id, &delivery_id).await? else { continue };
        if !d.status.is_in_flight() {
            continue;
        }
        let pushed = ctx
            .deliveries
            .transition(&account_id, &delivery_id, &[d.status], d.status, Some(now.plus_seconds(grace_secs)), now)
            .await?;
        if pushed {
            jobs.push(DeliveryJob { account_id, delivery_id });
        }
    }
    if !jobs.is_empty() {
        ctx.queue.enqueue(&jobs).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
        tracing::info!(count = jobs.len(), "sweeper re-enqueued overdue deliveries");
    }
    Ok(jobs.len())
}
