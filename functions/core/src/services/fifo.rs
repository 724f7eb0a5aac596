//! FIFO subscriptions (README.md, "FIFO order"): the deliveries of a `fifo: true` subscription
//! wait in one line, the subscription's message group on the FIFO delivery queue, and SQS hands
//! the dispatcher a group's next message only once the one before it is deleted. A failed
//! delivery's message is hidden for its backoff, which keeps its group, and so the line, blocked
//! until it succeeds, is dead-lettered or abandoned.
//!
//! A FIFO delivery can still reach the standard queue: the sweeper re-sends lost or expired jobs
//! there, knowing only ids. Sending it from there would pass the line, so the dispatcher moves it
//! to the back of its line instead, and pushes its due time out so the sweeper does not send it
//! again while it waits there.

use super::Context;
use crate::error::AppError;
use crate::model::Delivery;
use crate::ports::DeliveryJob;

/// How long a FIFO delivery moved into its line is left alone by the sweeper: a line can be held
/// by a failing head for the whole retry schedule, and each sweep of a waiting delivery adds a
/// (harmless, but paid) copy to the line.
pub const RESWEEP_AFTER_SECS: i64 = 6 * 3600;

/// Moves a FIFO delivery that came on the standard queue (claimed under `holder`) to the back of
/// its subscription's line: a copy on the FIFO queue that claims under the same name, and the due
/// time pushed [`RESWEEP_AFTER_SECS`] out. The standard message is then done.
pub async fn move_into_line(
    ctx: &Context,
    job: &DeliveryJob,
    delivery: &Delivery,
    holder: &str,
) -> Result<(), AppError> {
    let now = ctx.clock.now();
    let copy = DeliveryJob {
        fifo_group: Some(delivery.subscription_id.clone()),
        claim_as: Some(holder.to_owned()),
        rate_slot: None,
        ..job.clone()
    };
    ctx.deliveries.mark_swept(&delivery.account_id, &delivery.id, now.plus_seconds(RESWEEP_AFTER_SECS), now).await?;
    ctx.queue.enqueue(std::slice::from_ref(&copy)).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
    tracing::info!(
        account_id = %delivery.account_id,
        delivery_id = %delivery.id,
        subscription_id = %delivery.subscription_id,
        "fifo delivery came on the standard queue; moved to the back of its line"
    );
    Ok(())
}
