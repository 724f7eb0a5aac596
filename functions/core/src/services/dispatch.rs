//! The dispatcher's use case: one delivery job → at most one signed HTTPS attempt, recorded.
//!
//! Idempotent against duplicate messages: a delivery no longer in flight (already succeeded,
//! abandoned, dead) is not sent again. Backoff is the caller's job (SQS visibility); this returns
//! how long to wait, capped at what is left of the message's 12 h visibility window.
//!
//! Attempts are counted from the delivery's own `attempt_count`, not from SQS's receive count:
//! a receive whose attempt was never recorded (a throttled write, a crash) is not an attempt, and
//! a message that expired and was sent again by the sweeper (receive count back at 1) still stops
//! at the limit. The last failed attempt marks the delivery `failed_permanent` here; redrive to
//! the DLQ is left for messages the dispatcher could not process at all.

use super::fifo;
use super::pacing::{self, Pace};
use super::{operational, Context};
use crate::backoff::{parse_retry_after, RetryPolicy};
use crate::error::AppError;
use crate::ids::AttemptId;
use crate::model::{Attempt, Delivery, DeliveryStatus, Subscription};
use crate::ports::{AttemptUpdate, Claim, ClaimRequest, DeliveryJob, OutboundRequest, SendOutcome, WebhookSender};
use crate::rate::{MemoryRateBuckets, Pause, RateBuckets};
use crate::sending::Target;
use crate::signing::{delivery_headers, redacted, AttemptToSign};
use crate::signing_key::SigningKey;
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the worker should do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Delete the message: delivered, permanently failed, or nothing left to do.
    Done,
    /// Keep the message: make it visible again after `delay_secs` and report it failed.
    Retry {
        /// Seconds to hide the message (`ChangeMessageVisibility`), capped to SQS's 12 h window.
        delay_secs: u32,
    },
}

/// Builds and sends deliveries. One per container: it owns the decrypted-secret cache.
pub struct Dispatcher {
    /// Stores, queue and clock the dispatcher works with.
    pub ctx: Context,
    sender: Arc<dyn WebhookSender>,
    /// The retry schedule applied to failed attempts.
    pub policy: RetryPolicy,
    /// Ciphertext → signing key. Keyed by ciphertext so a rotation is a cache miss, never stale.
    secrets: Mutex<HashMap<String, SigningKey>>,
    last_delivery: Arc<LastDeliveryWrites>,
    background: Option<Background>,
    failing_runs: operational::FailingRuns,
    claim_lease_secs: i64,
    in_flight: in_flight::InFlight,
    rate_buckets: Arc<dyn RateBuckets>,
    pause: Option<Arc<dyn Pause>>,
}

const SECRET_CACHE_MAX: usize = 10_000;

/// How long a claim lasts unless set with [`Dispatcher::with_claim_lease`]: the template's
/// dispatcher timeout (30 s), after which a worker can no longer be sending.
pub const DEFAULT_CLAIM_LEASE_SECS: i64 = 30;

/// How far ahead of a delivery's next attempt time a message may claim it: clock differences
/// between containers, never a backoff step.
pub const CLAIM_DUE_SLACK_SECS: i64 = 2;

impl Dispatcher {
    /// A dispatcher with an empty secret cache; build one per container and reuse it.
    pub fn new(ctx: Context, sender: Arc<dyn WebhookSender>, policy: RetryPolicy) -> Self {
        Self {
            ctx,
            sender,
            policy,
            secrets: Mutex::new(HashMap::new()),
            last_delivery: Arc::default(),
            background: None,
            failing_runs: operational::FailingRuns::default(),
            claim_lease_secs: DEFAULT_CLAIM_LEASE_SECS,
            in_flight: in_flight::InFlight::default(),
            rate_buckets: Arc::new(MemoryRateBuckets::default()),
            pause: None,
        }
    }

    /// Lets FIFO deliveries wait a few seconds for their rate-limit slot in process; without it
    /// they wait by hiding their message.
    pub fn with_pause(mut self, pause: Arc<dyn Pause>) -> Self {
        self.pause = Some(pause);
        self
    }

    /// Lets held last-delivery writes run on tasks of their own when their second ends
    /// ([`last_delivery`]); without it (and [`Self::with_pause`]), the next attempt writes them.
    pub fn with_background(mut self, background: Background) -> Self {
        self.background = Some(background);
        self
    }

    /// Sets the token buckets of rate-limited subscriptions: a store shared by every dispatcher
    /// (the default, in this process's memory, holds a limit within one container only).
    pub fn with_rate_buckets(mut self, buckets: Arc<dyn RateBuckets>) -> Self {
        self.rate_buckets = buckets;
        self
    }

    /// Sets how long a claim lasts: at least as long as the dispatcher function may run (its
    /// timeout), so a claim never ends while its worker can still send, and less than the
    /// delivery queue's visibility timeout.
    pub fn with_claim_lease(mut self, secs: i64) -> Self {
        self.claim_lease_secs = secs.max(1);
        self
    }

    /// Writes the subscription's last delivery now, later or not at all, as
    /// [`LastDeliveryWrites::decide`] says.
    async fn record_last_delivery(
        &self,
        sub: &Subscription,
        status: DeliveryStatus,
        now: Timestamp,
    ) -> Result<(), AppError> {
        match self.last_delivery.decide(sub, status, now) {
            Decision::Nothing => Ok(()),
            Decision::Write => {
                let written = self.ctx.subscriptions.record_last_delivery(&sub.account_id, &sub.id, status, now).await;
                if written.is_err() {
                    self.last_delivery.release(&sub.account_id, &sub.id);
                }
                Ok(written?)
            }
            Decision::Defer { after_ms } => {
                if let (Some(spawn), Some(pause)) = (&self.background, &self.pause) {
                    let (writes, store, key) = (
                        self.last_delivery.clone(),
                        self.ctx.subscriptions.clone(),
                        (sub.account_id.clone(), sub.id.clone()),
                    );
                    spawn(last_delivery::write_later(writes, store, pause.clone(), key, after_ms));
                }
                Ok(())
            }
        }
    }

    fn decrypt(&self, ciphertext: &str, sub: &Subscription) -> Result<SigningKey, AppError> {
        if let Some(s) = self.secrets.lock().expect("secret cache lock").get(ciphertext) {
            return Ok(s.clone());
        }
        let plain = self
            .ctx
            .keyring
            .decrypt(ciphertext, sub.id.as_str())
            .map_err(|e| AppError::internal("stored secret", e))?;
        let secret = SigningKey::parse(&plain).map_err(|e| AppError::internal("stored secret", e))?;
        let mut cache = self.secrets.lock().expect("secret cache lock");
        if cache.len() >= SECRET_CACHE_MAX {
            cache.clear();
        }
        cache.insert(ciphertext.to_owned(), secret.clone());
        Ok(secret)
    }

    /// Current key (secret or Ed25519 private key), plus the previous one while its overlap
    /// window lasts.
    fn signing_secrets(&self, sub: &Subscription, now: Timestamp) -> Result<Vec<SigningKey>, AppError> {
        let mut secrets = vec![self.decrypt(&sub.secret_enc, sub)?];
        if let (Some(prev), Some(until)) = (&sub.previous_secret_enc, sub.previous_secret_expires_at) {
            if now < until {
                secrets.push(self.decrypt(prev, sub)?);
            }
        }
        Ok(secrets)
    }

    /// The subscription's custom headers, decrypted for this attempt only.
    fn custom_headers(&self, sub: &Subscription) -> Result<Vec<(String, String)>, AppError> {
        let Some(enc) = &sub.headers_enc else { return Ok(Vec::new()) };
        let plain = self
            .ctx
            .keyring
            .decrypt(enc, &sub.headers_context())
            .map_err(|e| AppError::internal("stored headers", e))?;
        let map: BTreeMap<String, String> =
            serde_json::from_str(&plain).map_err(|e| AppError::internal("stored headers", e))?;
        Ok(map.into_iter().collect())
    }

    /// Handles one job. `message_id` names the SQS message (the claim's holder, so the same
    /// message coming back after its worker died takes over that worker's claim; a job that
    /// carries the name of the message it continues claims under that: [`pacing::holder`]);
    /// `receive_count` is SQS's ApproximateReceiveCount (the queue redrives the message after
    /// `max_attempts` receives); `received_at` is when the batch was received (the handler's
    /// start), from which SQS's 12 h visibility window runs.
    pub async fn dispatch(
        &self,
        job: &DeliveryJob,
        message_id: &str,
        receive_count: u32,
        received_at: Timestamp,
    ) -> Result<JobOutcome, AppError> {
        let now = self.ctx.clock.now();
        let attempt_id = AttemptId::generate(now.unix_ms() as u64);
        // A job that does not name its subscription (the sweeper's, or one sent before jobs did)
        // reads its delivery for it: such jobs are rare, and the cap must hold for them too.
        let sub_id = match &job.subscription_id {
            Some(id) => id.clone(),
            None => match self.ctx.deliveries.get_to_send(&job.account_id, &job.delivery_id).await? {
                Some(d) => d.subscription_id,
                None => {
                    let sent = AtomicBool::new(false);
                    return self.dispatch_claimed(job, message_id, receive_count, received_at, attempt_id, &sent).await;
                }
            },
        };
        let (limits, cap) = (self.ctx.limits.as_ref(), self.ctx.settings.limits.max_in_flight);
        let lease_until = now.plus_seconds(self.claim_lease_secs);
        let gate = self.in_flight.enter(limits, cap, &job.account_id, &sub_id, attempt_id.as_str(), now, lease_until);
        match gate.await? {
            in_flight::Gate::Wait { delay_secs } => {
                self.wait(&job.clone().for_subscription(sub_id), receive_count, delay_secs).await
            }
            in_flight::Gate::Go(entered) => {
                let sent = AtomicBool::new(false);
                let outcome =
                    self.dispatch_claimed(job, message_id, receive_count, received_at, attempt_id, &sent).await;
                self.in_flight.leave(limits, entered, sent.load(Ordering::Relaxed), self.ctx.clock.now()).await;
                outcome
            }
        }
    }

    /// [`Dispatcher::dispatch`] past the in-flight cap: claim, send (setting `sent`), record.
    async fn dispatch_claimed(
        &self,
        job: &DeliveryJob,
        message_id: &str,
        receive_count: u32,
        received_at: Timestamp,
        attempt_id: AttemptId,
        sent: &AtomicBool,
    ) -> Result<JobOutcome, AppError> {
        let ctx = &self.ctx;
        let now = ctx.clock.now();
        let holder = pacing::holder(job, message_id);
        let Some(delivery) = self.claim(job, holder, &attempt_id, now).await? else {
            return Ok(JobOutcome::Done);
        };
        if delivery.fifo && job.fifo_group.is_none() {
            fifo::move_into_line(ctx, job, &delivery, holder).await?;
            return Ok(JobOutcome::Done);
        }
        if delivery.attempt_count.saturating_sub(delivery.round_start) >= self.policy.max_attempts {
            self.dead_letter_exhausted(&delivery, now).await?;
            return Ok(JobOutcome::Done);
        }
        let Some(sub) = ctx.subscriptions.get(&delivery.account_id, &delivery.subscription_id).await? else {
            ctx.deliveries
                .transition(
                    &delivery.account_id,
                    &delivery.id,
                    &DeliveryStatus::IN_FLIGHT,
                    DeliveryStatus::Abandoned,
                    None,
                    now,
                )
                .await?;
            tracing::info!(delivery_id = %delivery.id, subscription_id = %delivery.subscription_id, "subscription deleted; delivery abandoned");
            return Ok(JobOutcome::Done);
        };
        match pacing::pace(ctx, &*self.rate_buckets, self.pause.as_deref(), job, &delivery, &sub, holder).await? {
            Pace::Go => {}
            Pace::Waiting { .. } => return Ok(JobOutcome::Done),
            Pace::Hold { delay_secs } => return Ok(JobOutcome::Retry { delay_secs }),
        }
        let now = ctx.clock.now();
        let secrets = self.signing_secrets(&sub, now)?;
        let custom = self.custom_headers(&sub)?;
        let mut request = build_request(&delivery, &sub, &attempt_id, &secrets, &custom, now)?;
        sent.store(true, Ordering::Relaxed);
        let outcome = self.send_attempt(&sub, &mut request).await?;
        let receipt = Receipt { count: receive_count.max(1), received_at };
        self.record(&delivery, &sub, attempt_id, now, &request, outcome, receipt).await
    }

    /// Claims the job's delivery for the attempt `attempt_id` ([`crate::ports::DeliveryStore::claim`]): the
    /// delivery to send, or None when this message has nothing to do (logged why).
    async fn claim(
        &self,
        job: &DeliveryJob,
        message_id: &str,
        attempt_id: &AttemptId,
        now: Timestamp,
    ) -> Result<Option<Delivery>, AppError> {
        let ctx = &self.ctx;
        let request = self.claim_request(message_id, attempt_id, now);
        let (account_id, delivery_id) = (&job.account_id, &job.delivery_id);
        match ctx.deliveries.claim(account_id, delivery_id, &request).await? {
            Claim::Claimed(delivery) => return Ok(Some(delivery)),
            Claim::Missing => {
                tracing::warn!(%account_id, %delivery_id, "job for an unknown delivery; dropped");
            }
            Claim::Finished(delivery) => {
                // A job retried after a 410 whose announcement failed: announcing is idempotent.
                operational::announce_dead_lettered(ctx, &delivery).await?;
                tracing::info!(%account_id, %delivery_id, status = delivery.status.as_str(), "delivery no longer in flight; not sent again");
            }
            Claim::Held { until } => {
                // The holder's own message carries the delivery on (or comes back if it died).
                tracing::info!(%account_id, %delivery_id, held_until = %until.rfc3339(), "delivery claimed by another worker; this duplicate message is dropped");
            }
            Claim::NotDue { at } => {
                // The message of that next attempt is on its way (or the sweeper sends one).
                tracing::info!(%account_id, %delivery_id, next_attempt_at = %at.rfc3339(), "delivery not due; this duplicate message is dropped");
            }
        }
        Ok(None)
    }

    /// A claim by `holder` (an SQS message id, or the ping's own name) for one attempt made now.
    fn claim_request(&self, holder: &str, attempt_id: &AttemptId, now: Timestamp) -> ClaimRequest {
        ClaimRequest {
            holder: holder.to_owned(),
            token: attempt_id.clone(),
            now,
            lease_until: now.plus_seconds(self.claim_lease_secs),
            due_by: now.plus_seconds(CLAIM_DUE_SLACK_SECS),
        }
    }

    /// A claimed delivery whose attempts are used up (its message expired and the sweeper sent
    /// it again): dead-lettered and announced, idempotently.
    async fn dead_letter_exhausted(&self, delivery: &Delivery, now: Timestamp) -> Result<(), AppError> {
        let ctx = &self.ctx;
        let moved = ctx
            .deliveries
            .transition(
                &delivery.account_id,
                &delivery.id,
                &DeliveryStatus::IN_FLIGHT,
                DeliveryStatus::FailedPermanent,
                None,
                now,
            )
            .await?;
        if moved {
            ctx.subscriptions
                .record_last_delivery(
                    &delivery.account_id,
                    &delivery.subscription_id,
                    DeliveryStatus::FailedPermanent,
                    now,
                )
                .await?;
            tracing::warn!(account_id = %delivery.account_id, delivery_id = %delivery.id, attempts = delivery.attempt_count, reason = "attempts exhausted", "delivery dead-lettered");
        }
        // Idempotent, so a retried job that finds it already dead announces it once.
        operational::announce_dead_lettered(
            ctx,
            &Delivery { status: DeliveryStatus::FailedPermanent, ..delivery.clone() },
        )
        .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        delivery: &Delivery,
        sub: &Subscription,
        attempt_id: AttemptId,
        started_at: Timestamp,
        request: &OutboundRequest,
        outcome: SendOutcome,
        receipt: Receipt,
    ) -> Result<JobOutcome, AppError> {
        let ctx = &self.ctx;
        let now = ctx.clock.now();
        let number = delivery.attempt_count + 1;
        let verdict = classify(&self.policy, &outcome, number.saturating_sub(delivery.round_start), receipt, now);
        let status = verdict.status;
        let next_attempt_at = verdict.retry_in_secs.map(|secs| now.plus_seconds(i64::from(secs)));
        let job = match verdict.retry_in_secs {
            Some(delay_secs) if !verdict.handed_to_sweeper => JobOutcome::Retry { delay_secs },
            _ => JobOutcome::Done,
        };
        let attempt = attempt_log(attempt_id.clone(), number, started_at, request, &outcome, sub);
        let update = AttemptUpdate {
            only_if: &DeliveryStatus::IN_FLIGHT,
            expires_at: delivery.expires_at,
            status,
            attempt_count: number,
            next_attempt_at,
            last_response_status: outcome.status,
            last_error: last_error(&outcome),
            updated_at: now,
            claim: Some(attempt_id),
        };
        let recorded = ctx.deliveries.record_attempt(&delivery.account_id, &delivery.id, &attempt, &update).await?;
        log_attempt(delivery, number, &outcome, status, next_attempt_at);
        if verdict.handed_to_sweeper {
            tracing::info!(delivery_id = %delivery.id, receive_count = receipt.count, "message out of receives with attempts left; the sweeper sends a fresh one when due");
        }
        if status == DeliveryStatus::FailedPermanent && outcome.status != Some(410) {
            tracing::warn!(account_id = %delivery.account_id, delivery_id = %delivery.id, attempts = number, reason = "attempts exhausted", "delivery dead-lettered");
        }
        if !recorded {
            // Abandoned while we were sending, or our claim lapsed and another worker took it:
            // nothing more to do here.
            tracing::warn!(account_id = %delivery.account_id, delivery_id = %delivery.id, attempt = number, "attempt not recorded: the delivery left flight or its claim lapsed");
            return Ok(JobOutcome::Done);
        }
        self.after_recorded(delivery, sub, &update, now).await?;
        Ok(job)
    }

    /// One attempt made now, outside the queue (`/test?wait=true`, a ping): signed and sent like
    /// any attempt and recorded in the log, but never retried, so it ends `succeeded` or
    /// `failed_permanent`. Answers the status and the attempt as logged.
    pub async fn attempt_once(
        &self,
        delivery: &Delivery,
        sub: &Subscription,
    ) -> Result<(DeliveryStatus, Attempt), AppError> {
        let ctx = &self.ctx;
        let started_at = ctx.clock.now();
        let secrets = self.signing_secrets(sub, started_at)?;
        let custom = self.custom_headers(sub)?;
        let attempt_id = AttemptId::generate(started_at.unix_ms() as u64);
        let claim = self.claim_request(&format!("ping:{attempt_id}"), &attempt_id, started_at);
        if !matches!(ctx.deliveries.claim(&delivery.account_id, &delivery.id, &claim).await?, Claim::Claimed(_)) {
            return Err(AppError::bug("a new test delivery could not be claimed"));
        }
        let mut request = build_request(delivery, sub, &attempt_id, &secrets, &custom, started_at)?;
        let outcome = self.send_attempt(sub, &mut request).await?;
        let ok = outcome.status.is_some_and(|s| (200..300).contains(&s));
        let status = if ok { DeliveryStatus::Succeeded } else { DeliveryStatus::FailedPermanent };
        let number = delivery.attempt_count + 1;
        let attempt = attempt_log(attempt_id.clone(), number, started_at, &request, &outcome, sub);
        let update = AttemptUpdate {
            only_if: &DeliveryStatus::IN_FLIGHT,
            expires_at: delivery.expires_at,
            status,
            attempt_count: number,
            next_attempt_at: None,
            last_response_status: outcome.status,
            last_error: last_error(&outcome),
            updated_at: ctx.clock.now(),
            claim: Some(attempt_id),
        };
        if ctx.deliveries.record_attempt(&delivery.account_id, &delivery.id, &attempt, &update).await? {
            self.record_last_delivery(sub, status, update.updated_at).await?;
        }
        tracing::info!(account_id = %delivery.account_id, delivery_id = %delivery.id, response_status = ?outcome.status, error = ?outcome.error, status = status.as_str(), "test attempt");
        Ok((status, attempt))
    }

    /// What follows a recorded attempt: the subscription's last delivery (when stale), its
    /// failing clock (auto-disable), and the dead-letter announcement of a final failure.
    async fn after_recorded(
        &self,
        delivery: &Delivery,
        sub: &Subscription,
        update: &AttemptUpdate,
        now: Timestamp,
    ) -> Result<(), AppError> {
        let ctx = &self.ctx;
        let status = update.status;
        self.record_last_delivery(sub, status, now).await?;
        // Best effort: the attempt is recorded; the next attempt corrects a missed clock update.
        let attempt = operational::AttemptResult {
            succeeded: status == DeliveryStatus::Succeeded,
            response_status: update.last_response_status,
            error: update.last_error.as_deref(),
        };
        if let Err(e) = operational::after_attempt(ctx, &self.failing_runs, sub, attempt, now).await {
            tracing::warn!(account_id = %delivery.account_id, subscription_id = %sub.id, error = %e, "could not update the subscription's failing clock");
        }
        if status == DeliveryStatus::FailedPermanent {
            // An error retries the job, which finds the delivery dead and announces it again.
            let dead = Delivery {
                status,
                attempt_count: update.attempt_count,
                last_response_status: update.last_response_status,
                last_error: update.last_error.clone(),
                ..delivery.clone()
            };
            operational::announce_dead_lettered(ctx, &dead).await?;
        }
        Ok(())
    }
}

/// The log entry of one attempt: the request as sent (signature and custom header values
/// redacted) and what came back.
fn attempt_log(
    attempt_id: AttemptId,
    number: u32,
    started_at: Timestamp,
    request: &OutboundRequest,
    outcome: &SendOutcome,
    sub: &Subscription,
) -> Attempt {
    let (response_headers, response_headers_omitted) = outcome.stored_headers();
    Attempt {
        attempt_id,
        number,
        started_at,
        duration_ms: outcome.duration_ms,
        url: Some(request.target.address().to_owned()),
        request_headers: redacted(&request.headers, &sub.header_names),
        response_status: outcome.status,
        response_headers,
        response_headers_omitted,
        response_body: outcome.status.map(|_| outcome.body.clone()),
        error: outcome.error.clone(),
    }
}

/// The delivery's `last_error` after an attempt: the transport error, or `HTTP <status>` for a
/// non-2xx answer.
fn last_error(outcome: &SendOutcome) -> Option<String> {
    outcome.error.clone().or_else(|| outcome.status.filter(|s| !(200..300).contains(s)).map(|s| format!("HTTP {s}")))
}

/// The request of one attempt: the stored payload, signed now, plus the subscription's custom
/// headers (validated at write time never to collide with ours), to the subscription's target,
/// parsed here once ([`Target::of`]). An error for a subscription with no target at all.
pub fn build_request(
    delivery: &Delivery,
    sub: &Subscription,
    attempt_id: &AttemptId,
    secrets: &[SigningKey],
    custom: &[(String, String)],
    now: Timestamp,
) -> Result<OutboundRequest, AppError> {
    let target = Target::of(delivery, sub)
        .ok_or_else(|| AppError::bug(format!("subscription {} has neither url nor destination", sub.id)))?;
    let refs: Vec<&SigningKey> = secrets.iter().collect();
    let headers = delivery_headers(&AttemptToSign {
        event_id: &delivery.event_id,
        event_type: &delivery.event_type,
        attempt_id,
        timestamp: now.unix_seconds(),
        body: &delivery.payload,
        secrets: &refs,
    });
    let mut headers = headers;
    headers.extend(custom.iter().cloned());
    Ok(OutboundRequest { target, headers, body: delivery.payload.clone() })
}

mod bearer;
mod last_delivery;
pub use last_delivery::{
    last_delivery_is_stale, Background, Decision, LastDeliveryWrites, LAST_DELIVERY_COALESCE_MS,
    LAST_DELIVERY_REFRESH_SECS,
};
mod verdict;
use verdict::log_attempt;
pub use verdict::{classify, Receipt, Verdict};
pub mod in_flight;
#[cfg(test)]
mod tests;
