//! The sweeper use case: nothing is lost between DynamoDB and SQS (DESIGN §6). In-flight
//! deliveries whose next attempt is overdue by more than the grace period (a lost enqueue, a crash
//! between the table and the queue, a message that expired or was handed back by the dispatcher)
//! are sent to the queue again.
//!
//! Under a backlog a run must make progress, not time out having sent nothing: each delivery's
//! due time is pushed forward and it is enqueued in batches of ten as the run goes, and the run
//! stops at its deadline (the Lambda's, less a margin), leaving the rest to the next run.

use super::Context;
use crate::error::AppError;
use crate::ports::DeliveryJob;
use crate::time::Timestamp;

/// Jobs sent per SendMessageBatch.
const ENQUEUE_CHUNK: usize = 10;

/// Re-enqueues up to `batch` overdue deliveries, stopping once the clock reaches `deadline`;
/// returns how many were enqueued. Pushes each due time forward by `grace_secs` before its enqueue
/// so the next run does not send it again while its message is in flight.
pub async fn sweep(ctx: &Context, grace_secs: i64, batch: usize, deadline: Timestamp) -> Result<usize, AppError> {
    let now = ctx.clock.now();
    let overdue = ctx.deliveries.overdue(now.plus_seconds(-grace_secs), batch).await?;
    let found = overdue.len();
    let mut pending = Vec::with_capacity(ENQUEUE_CHUNK);
    let mut sent = 0;
    for (account_id, delivery_id) in overdue {
        if ctx.clock.now() >= deadline {
            tracing::warn!(sent, found, "sweeper stopped at its deadline; the next run continues");
            break;
        }
        // Marked swept, its message may claim it although its due time moved (see `claim`).
        let pushed = ctx.deliveries.mark_swept(&account_id, &delivery_id, now.plus_seconds(grace_secs), now).await?;
        if pushed {
            pending.push(DeliveryJob { account_id, delivery_id });
        }
        if pending.len() == ENQUEUE_CHUNK {
            sent += flush(ctx, &mut pending).await?;
        }
    }
    sent += flush(ctx, &mut pending).await?;
    if sent > 0 {
        tracing::info!(count = sent, found, "sweeper re-enqueued overdue deliveries");
    }
    Ok(sent)
}

/// Enqueues and clears `jobs`; returns how many were sent.
async fn flush(ctx: &Context, jobs: &mut Vec<DeliveryJob>) -> Result<usize, AppError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    ctx.queue.enqueue(jobs).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
    let n = jobs.len();
    jobs.clear();
    Ok(n)
}
