//! The dead-letter use case: a message redriven to the DLQ is a delivery the dispatcher could not
//! process `maxReceiveCount` times (the dispatcher fails exhausted deliveries itself); it becomes
//! `failed_permanent` so it shows in the dead-letter listing and can be replayed.

use super::Context;
use crate::error::AppError;
use crate::model::DeliveryStatus;
use crate::ports::DeliveryJob;

/// Marks the job's delivery `failed_permanent` if it is still in flight; true if it moved.
pub async fn mark_dead_lettered(ctx: &Context, job: &DeliveryJob) -> Result<bool, AppError> {
    let now = ctx.clock.now();
    let moved = ctx
        .deliveries
        .transition(&job.account_id, &job.delivery_id, &[DeliveryStatus::Pending, DeliveryStatus::Failed], DeliveryStatus::FailedPermanent, None, now)
        .await?;
    if moved {
        if let Some(d) = ctx.deliveries.get(&job.account_id, &job.delivery_id).await? {
            ctx.subscriptions.record_last_delivery(&d.account_id, &d.subscription_id, DeliveryStatus::FailedPermanent, now).await?;
        }
        tracing::warn!(account_id = %job.account_id, delivery_id = %job.delivery_id, reason = "redriven", "delivery dead-lettered");
    }
    Ok(moved)
}
