//! The dead-letter use case: a message redriven to the DLQ is a delivery the dispatcher could not
//! process `maxReceiveCount` times (the dispatcher fails exhausted deliveries itself).
//!
//! Receives are not attempts: a message whose receives were used up by processing errors
//! (DynamoDB throttling, a crash) while its delivery still has attempts left is handed back to the
//! delivery queue as a fresh job, at most [`MAX_HAND_BACKS`] times per job (the count travels in
//! the job), so a delivery that can never be processed still ends. Otherwise the delivery becomes
//! `failed_permanent`, so it shows in the dead-letter listing and can be replayed, and the account
//! is told with `webhook.delivery.dead_lettered` (see [`operational`]).

use super::{operational, Context};
use crate::error::AppError;
use crate::model::{Delivery, DeliveryStatus};
use crate::ports::DeliveryJob;

/// Fresh jobs the dead-letter function sends for one delivery before it gives up on it: with the
/// template's 15 receives of 180 s, about three hours of processing errors.
pub const MAX_HAND_BACKS: u32 = 3;

/// What the dead-letter function did with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterOutcome {
    /// Attempts were left: a fresh job went back to the delivery queue.
    HandedBack,
    /// The delivery is now `failed_permanent` (or already was finished).
    Finished {
        /// True when this call moved it to `failed_permanent`.
        moved: bool,
    },
}

/// Whether the delivery still has attempts left under `max_attempts` (`MAX_DELIVERY_ATTEMPTS`).
fn has_attempts_left(d: &Delivery, max_attempts: u32) -> bool {
    d.attempt_count.saturating_sub(d.round_start) < max_attempts
}

/// Hands the job's delivery back to the queue while it has attempts left (and the job has been
/// handed back fewer than [`MAX_HAND_BACKS`] times and the delivery is within its retention);
/// otherwise marks it `failed_permanent` if it is still in flight.
pub async fn handle_dead_letter(
    ctx: &Context,
    job: &DeliveryJob,
    max_attempts: u32,
) -> Result<DeadLetterOutcome, AppError> {
    let found = ctx.deliveries.get_to_send(&job.account_id, &job.delivery_id).await?;
    if let Some(d) = found.as_ref().filter(|d| d.status.is_in_flight()) {
        let now = ctx.clock.now();
        let within_retention = now < d.expires_at;
        if has_attempts_left(d, max_attempts) && job.handed_back < MAX_HAND_BACKS && within_retention {
            let fresh = DeliveryJob { handed_back: job.handed_back + 1, ..job.clone() };
            ctx.queue.enqueue(&[fresh]).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
            tracing::warn!(account_id = %job.account_id, delivery_id = %job.delivery_id, attempts = d.attempt_count, handed_back = job.handed_back + 1, "receives used up by processing errors with attempts left; handed back to the delivery queue");
            return Ok(DeadLetterOutcome::HandedBack);
        }
    }
    let moved = mark_dead_lettered(ctx, job).await?;
    Ok(DeadLetterOutcome::Finished { moved })
}

/// Marks the job's delivery `failed_permanent` if it is still in flight; true if it moved.
async fn mark_dead_lettered(ctx: &Context, job: &DeliveryJob) -> Result<bool, AppError> {
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
