//! The dead-letter use case: a message redriven to the DLQ is a delivery the dispatcher could not
//! process `maxReceiveCount` times (the dispatcher fails exhausted deliveries itself); it becomes
//! `failed_permanent` so it shows in the dead-letter listing and can be replayed, and the account
//! is told with `webhook.delivery.dead_lettered` (see [`operational`]).

use super::{operational, Context};
use crate::error::AppError;
use crate::model::DeliveryStatus;
use crate::ports::DeliveryJob;

/// Marks the job's delivery `failed_permanent` if it is still in flight; true if it moved.
pub async fn mark_dead_lettered(ctx: &Context, job: &DeliveryJob) -> Result<bool, AppError> {
    let now = ctx.clock.now();
    let moved = ctx
        .deliveries
        .transition(
            &job.account_id,
            &job.delivery_id,
            &DeliveryStatus::IN_FLIGHT,
            DeliveryStatus::FailedPermanent,
            None,
            now,
        )
        .await?;
    let Some(d) = ctx.deliveries.get_to_send(&job.account_id, &job.delivery_id).await? else { return Ok(moved) };
    if moved {
        ctx.subscriptions
            .record_last_delivery(&d.account_id, &d.subscription_id, DeliveryStatus::FailedPermanent, now)
            .await?;
        tracing::warn!(account_id = %job.account_id, delivery_id = %job.delivery_id, reason = "redriven", "delivery dead-lettered");
    }
    // Also when a retried message finds it already dead: the announcement is idempotent, so a
    // failure after the transition is made good by the retry.
    operational::announce_dead_lettered(ctx, &d).await?;
    Ok(moved)
}
