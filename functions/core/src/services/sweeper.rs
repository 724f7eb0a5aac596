//! The sweeper use case: nothing is lost between DynamoDB and SQS (docs/delivery.md). In-flight
//! deliveries whose next attempt is overdue by more than the grace period (a lost enqueue, a crash
//! between the table and the queue, a message that expired or was handed back by the dispatcher)
//! are sent to the queue again.
//!
//! After an outage the backlog can be large: a run works until its deadline (the Lambda's, less a
//! margin), not to a fixed count, and takes the overdue deliveries round-robin between accounts,
//! so one tenant's leftovers cannot make every other tenant wait. Each delivery's due time is
//! pushed forward before its enqueue (the next run does not send it again while its message is in
//! flight) and jobs go out in batches of ten as the run goes.

use super::Context;
use crate::error::AppError;
use crate::ids::{AccountId, DeliveryId};
use crate::ports::DeliveryJob;
use crate::time::Timestamp;
use std::collections::{HashMap, HashSet, VecDeque};

/// Jobs sent per SendMessageBatch.
const ENQUEUE_CHUNK: usize = 10;
/// Overdue deliveries asked for per query.
pub const SCAN_PAGE: usize = 1_000;
/// Further queries per round that leave out the accounts already found, so the accounts behind a
/// full page (one tenant's backlog) are found too.
const LOOK_PAST_QUERIES: usize = 3;
/// Accounts a query may leave out (the filter expression's size bounds it).
const MAX_SKIPPED_ACCOUNTS: usize = 40;

/// Re-enqueues overdue deliveries until none is left or the clock reaches `deadline`; returns how
/// many were enqueued.
pub async fn sweep(ctx: &Context, grace_secs: i64, deadline: Timestamp) -> Result<usize, AppError> {
    let mut sent = sweep_unsent(ctx, grace_secs, deadline).await?;
    loop {
        if ctx.clock.now() >= deadline {
            tracing::warn!(sent, "sweeper stopped at its deadline; the next run continues");
            break;
        }
        let due_before = ctx.clock.now().plus_seconds(-grace_secs);
        let round = fair_round(ctx, due_before).await?;
        if round.is_empty() {
            break;
        }
        let found = round.len();
        let pushed = requeue(ctx, round, grace_secs, deadline).await?;
        sent += pushed;
        if pushed == 0 {
            // Nothing found could be pushed (finished meanwhile): the next run looks again.
            break;
        }
        tracing::info!(count = pushed, found, "sweeper re-enqueued overdue deliveries");
    }
    Ok(sent)
}

/// Events published more than the grace period ago whose deliveries nothing has taken (a
/// publish that stopped between the table and the queue): their deliveries are marked swept
/// (which makes them overdue deliveries from then on) and enqueued, then the store's mark moves
/// past them. A delivery is written without a due-index entry of its own; one entry per event
/// is what keeps this promise (docs/storage.md).
async fn sweep_unsent(ctx: &Context, grace_secs: i64, deadline: Timestamp) -> Result<usize, AppError> {
    let mut sent = 0;
    let mut last_upto = None;
    loop {
        let before = ctx.clock.now().plus_seconds(-grace_secs);
        let found = ctx.deliveries.unsent(before, SCAN_PAGE).await?;
        let count = found.deliveries.len();
        let pushed = requeue(ctx, found.deliveries, grace_secs, deadline).await?;
        sent += pushed;
        if ctx.clock.now() >= deadline {
            // Some may not have been marked: the mark stays, the next run looks again.
            return Ok(sent);
        }
        if count > 0 {
            tracing::info!(
                count = pushed,
                found = count,
                "sweeper enqueued deliveries of publishes that stopped before the queue"
            );
        }
        if let Some(upto) = found.upto {
            ctx.deliveries.unsent_swept(upto).await?;
        }
        // Without progress (the mark did not move) a further look would find the same.
        if !found.more || found.upto <= last_upto {
            return Ok(sent);
        }
        last_upto = found.upto;
    }
}

/// The overdue deliveries of one round, interleaved between accounts (each account's oldest
/// first). A full page may be one account's backlog: up to [`LOOK_PAST_QUERIES`] more queries
/// leave out the accounts already found.
async fn fair_round(ctx: &Context, due_before: Timestamp) -> Result<Vec<(AccountId, DeliveryId)>, AppError> {
    let mut found = ctx.deliveries.overdue(due_before, SCAN_PAGE, &[]).await?;
    let mut page_full = found.len() >= SCAN_PAGE;
    let mut skip: Vec<AccountId> = Vec::new();
    for _ in 0..LOOK_PAST_QUERIES {
        if !page_full {
            break;
        }
        for (account, _) in &found {
            if !skip.contains(account) && skip.len() < MAX_SKIPPED_ACCOUNTS {
                skip.push(account.clone());
            }
        }
        let more = ctx.deliveries.overdue(due_before, SCAN_PAGE, &skip).await?;
        page_full = more.len() >= SCAN_PAGE;
        found.extend(more);
    }
    Ok(round_robin(found))
}

/// One of each account in turn, keeping each account's order; accounts in order of first
/// appearance.
pub fn round_robin(items: Vec<(AccountId, DeliveryId)>) -> Vec<(AccountId, DeliveryId)> {
    let mut order: Vec<AccountId> = Vec::new();
    let mut queues: HashMap<AccountId, VecDeque<DeliveryId>> = HashMap::new();
    let mut seen: HashSet<DeliveryId> = HashSet::new();
    for (account, id) in items {
        if !seen.insert(id.clone()) {
            continue;
        }
        if !queues.contains_key(&account) {
            order.push(account.clone());
        }
        queues.entry(account).or_default().push_back(id);
    }
    let mut out = Vec::with_capacity(seen.len());
    while out.len() < seen.len() {
        for account in &order {
            if let Some(id) = queues.get_mut(account).and_then(VecDeque::pop_front) {
                out.push((account.clone(), id));
            }
        }
    }
    out
}

/// Pushes each delivery's due time forward and enqueues it, in order, until `deadline`; returns
/// how many were enqueued.
async fn requeue(
    ctx: &Context,
    round: Vec<(AccountId, DeliveryId)>,
    grace_secs: i64,
    deadline: Timestamp,
) -> Result<usize, AppError> {
    let mut pending = Vec::with_capacity(ENQUEUE_CHUNK);
    let mut sent = 0;
    for (account_id, delivery_id) in round {
        let now = ctx.clock.now();
        if now >= deadline {
            break;
        }
        // Marked swept, its message may claim it although its due time moved (see `claim`).
        let pushed = ctx.deliveries.mark_swept(&account_id, &delivery_id, now.plus_seconds(grace_secs), now).await?;
        if pushed {
            pending.push(DeliveryJob::new(account_id, delivery_id));
        }
        if pending.len() == ENQUEUE_CHUNK {
            sent += flush(ctx, &mut pending).await?;
        }
    }
    sent += flush(ctx, &mut pending).await?;
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
