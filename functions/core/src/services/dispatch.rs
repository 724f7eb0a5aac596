//! The dispatcher's use case: one delivery job → at most one signed HTTPS attempt, recorded.
//!
//! Idempotent against duplicate messages: a delivery no longer in flight (already succeeded,
//! abandoned, dead) is not sent again. Backoff is the caller's job (SQS visibility); this returns
//! how long to wait.

use super::{operational, Context};
use crate::backoff::{parse_retry_after, RetryPolicy};
use crate::error::AppError;
use crate::ids::AttemptId;
use crate::model::{Attempt, Delivery, DeliveryStatus, Subscription};
use crate::ports::{AttemptUpdate, DeliveryJob, OutboundRequest, SendOutcome, WebhookSender};
use crate::secret::SigningSecret;
use crate::signing::{delivery_headers, redacted, AttemptToSign};
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What the worker should do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Delete the message: delivered, permanently failed, or nothing left to do.
    Done,
    /// Keep the message: make it visible again after `delay_secs` and report it failed.
    Retry { delay_secs: u32 },
}

/// Builds and sends deliveries. One per container: it owns the decrypted-secret cache.
pub struct Dispatcher {
    pub ctx: Context,
    sender: Arc<dyn WebhookSender>,
    pub policy: RetryPolicy,
    /// Ciphertext → secret. Keyed by ciphertext so a rotation is a cache miss, never stale.
    secrets: Mutex<HashMap<String, SigningSecret>>,
}

const SECRET_CACHE_MAX: usize = 10_000;

impl Dispatcher {
    pub fn new(ctx: Context, sender: Arc<dyn WebhookSender>, policy: RetryPolicy) -> Self {
        Self { ctx, sender, policy, secrets: Mutex::new(HashMap::new()) }
    }

    fn decrypt(&self, ciphertext: &str, sub: &Subscription) -> Result<SigningSecret, AppError> {
        if let Some(s) = self.secrets.lock().expect("secret cache lock").get(ciphertext) {
            return Ok(s.clone());
        }
        let plain = self.ctx.keyring.decrypt(ciphertext, sub.id.as_str()).map_err(|e| AppError::Internal(e.to_string()))?;
        let secret = SigningSecret::parse(&plain).map_err(|e| AppError::Internal(format!("stored secret: {e}")))?;
        let mut cache = self.secrets.lock().expect("secret cache lock");
        if cache.len() >= SECRET_CACHE_MAX {
            cache.clear();
        }
        cache.insert(ciphertext.to_owned(), secret.clone());
        Ok(secret)
    }

    /// Current secret, plus the previous one while its overlap window lasts.
    fn signing_secrets(&self, sub: &Subscription, now: Timestamp) -> Result<Vec<SigningSecret>, AppError> {
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
        let plain = self.ctx.keyring.decrypt(enc, &sub.headers_context()).map_err(|e| AppError::Internal(e.to_string()))?;
        let map: BTreeMap<String, String> = serde_json::from_str(&plain).map_err(|e| AppError::Internal(format!("stored headers: {e}")))?;
        Ok(map.into_iter().collect())
    }

    /// Handles one job. `receive_count` is SQS's ApproximateReceiveCount: the attempt number
    /// within this message's life, which drives backoff and the last-attempt decision.
    pub async fn dispatch(&self, job: &DeliveryJob, receive_count: u32) -> Result<JobOutcome, AppError> {
        let ctx = &self.ctx;
        let Some(delivery) = ctx.deliveries.get_to_send(&job.account_id, &job.delivery_id).await? else {
            tracing::warn!(account_id = %job.account_id, delivery_id = %job.delivery_id, "job for an unknown delivery; dropped");
            return Ok(JobOutcome::Done);
        };
        if !delivery.status.is_in_flight() {
            // A job retried after a 410 whose announcement failed: announcing is idempotent.
            operational::announce_dead_lettered(ctx, &delivery).await?;
            tracing::info!(delivery_id = %delivery.id, status = delivery.status.as_str(), "delivery no longer in flight; not sent again");
            return Ok(JobOutcome::Done);
        }
        let now = ctx.clock.now();
        let Some(sub) = ctx.subscriptions.get(&delivery.account_id, &delivery.subscription_id).await? else {
            ctx.deliveries
                .transition(&delivery.account_id, &delivery.id, &DeliveryStatus::IN_FLIGHT, DeliveryStatus::Abandoned, None, now)
                .await?;
            tracing::info!(delivery_id = %delivery.id, subscription_id = %delivery.subscription_id, "subscription deleted; delivery abandoned");
            return Ok(JobOutcome::Done);
        };
        let secrets = self.signing_secrets(&sub, now)?;
        let custom = self.custom_headers(&sub)?;
        let attempt_id = AttemptId::generate(now.unix_ms() as u64);
        let request = build_request(&delivery, &sub, &attempt_id, &secrets, &custom, now);
        let outcome = self.sender.send(&request).await;
        self.record(&delivery, &sub, attempt_id, now, &request, outcome, receive_count.max(1)).await
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
        receive_count: u32,
    ) -> Result<JobOutcome, AppError> {
        let ctx = &self.ctx;
        let now = ctx.clock.now();
        let number = delivery.attempt_count + 1;
        let (status, job) = classify(&self.policy, &outcome, receive_count, now);
        let next_attempt_at = match job {
            JobOutcome::Retry { delay_secs } => Some(now.plus_seconds(i64::from(delay_secs))),
            JobOutcome::Done => None,
        };
        let attempt = Attempt {
            attempt_id,
            number,
            started_at,
            duration_ms: outcome.duration_ms,
            url: Some(request.url.clone()),
            request_headers: redacted(&request.headers, &sub.header_names),
            response_status: outcome.status,
            response_headers: outcome.headers.iter().cloned().collect::<BTreeMap<_, _>>(),
            response_body: outcome.status.map(|_| outcome.body.clone()),
            error: outcome.error.clone(),
        };
        let update = AttemptUpdate {
            only_if: &DeliveryStatus::IN_FLIGHT,
            expires_at: delivery.expires_at,
            status,
            attempt_count: number,
            next_attempt_at,
            last_response_status: outcome.status,
            last_error: outcome.error.clone().or_else(|| outcome.status.filter(|s| !(200..300).contains(s)).map(|s| format!("HTTP {s}"))),
            updated_at: now,
        };
        let recorded = ctx.deliveries.record_attempt(&delivery.account_id, &delivery.id, &attempt, &update).await?;
        tracing::info!(
            account_id = %delivery.account_id,
            delivery_id = %delivery.id,
            subscription_id = %delivery.subscription_id,
            attempt = number,
            response_status = ?outcome.status,
            error = ?outcome.error,
            status = status.as_str(),
            "delivery attempt"
        );
        if !recorded {
            // Abandoned or finished elsewhere while we were sending: nothing more to do.
            return Ok(JobOutcome::Done);
        }
        if last_delivery_is_stale(sub, status, now) {
            ctx.subscriptions.record_last_delivery(&delivery.account_id, &delivery.subscription_id, status, now).await?;
        }
        // Best effort: the attempt is recorded; the next attempt corrects a missed clock update.
        if let Err(e) = operational::after_attempt(ctx, sub, status == DeliveryStatus::Succeeded, now).await {
            tracing::warn!(account_id = %delivery.account_id, subscription_id = %sub.id, error = %e, "could not update the subscription's failing clock");
        }
        if status == DeliveryStatus::FailedPermanent {
            // An error retries the job, which finds the delivery dead and announces it again.
            let dead = Delivery { status, attempt_count: number, last_response_status: update.last_response_status, last_error: update.last_error.clone(), ..delivery.clone() };
            operational::announce_dead_lettered(ctx, &dead).await?;
        }
        Ok(job)
    }
}

/// How old a subscription's `last_delivery_at` may get before an attempt with the same outcome
/// writes it again. Between, a steady stream of deliveries costs no subscription write at all.
pub const LAST_DELIVERY_REFRESH_SECS: i64 = 60;

/// Whether an attempt ending in `status` must update the subscription's `last_delivery_*`: when
/// the status differs from the recorded one, or the recorded time is over
/// [`LAST_DELIVERY_REFRESH_SECS`] old (so `last_delivery_at` is at most that stale).
pub fn last_delivery_is_stale(sub: &Subscription, status: DeliveryStatus, now: Timestamp) -> bool {
    sub.last_delivery_status.as_deref() != Some(status.as_str())
        || sub.last_delivery_at.is_none_or(|at| now.unix_ms() - at.unix_ms() >= LAST_DELIVERY_REFRESH_SECS * 1000)
}

/// The request of one attempt: the stored payload, signed now, plus the subscription's custom
/// headers (validated at write time never to collide with ours).
pub fn build_request(
    delivery: &Delivery,
    sub: &Subscription,
    attempt_id: &AttemptId,
    secrets: &[SigningSecret],
    custom: &[(String, String)],
    now: Timestamp,
) -> OutboundRequest {
    let refs: Vec<&SigningSecret> = secrets.iter().collect();
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
    OutboundRequest { url: sub.url.as_str().to_owned(), headers, body: delivery.payload.clone() }
}

/// DESIGN §6: 2xx succeeds; 410 stops at once; anything else retries with backoff until the
/// queue's attempt limit, after which redrive dead-letters the message.
pub fn classify(policy: &RetryPolicy, outcome: &SendOutcome, receive_count: u32, now: Timestamp) -> (DeliveryStatus, JobOutcome) {
    match outcome.status {
        Some(s) if (200..300).contains(&s) => (DeliveryStatus::Succeeded, JobOutcome::Done),
        Some(410) => (DeliveryStatus::FailedPermanent, JobOutcome::Done),
        status => {
            if receive_count > policy.max_attempts {
                // The queue allows more receives than MAX_DELIVERY_ATTEMPTS (a misconfigured
                // maxReceiveCount): stop here rather than loop without backoff until redrive.
                return (DeliveryStatus::FailedPermanent, JobOutcome::Done);
            }
            if policy.is_last_attempt(receive_count) {
                // Visible again at once, so redrive moves it to the DLQ without waiting.
                return (DeliveryStatus::Failed, JobOutcome::Retry { delay_secs: 0 });
            }
            let retry_after = match status {
                Some(429 | 503) => outcome.header("retry-after").and_then(|v| parse_retry_after(v, now.unix_seconds())),
                _ => None,
            };
            (DeliveryStatus::Failed, JobOutcome::Retry { delay_secs: policy.delay_secs(receive_count, retry_after) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Option<u16>, headers: &[(&str, &str)]) -> SendOutcome {
        SendOutcome {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..SendOutcome::default()
        }
    }

    #[test]
    fn last_delivery_is_written_on_a_change_or_once_a_minute() {
        let mut sub = crate::testing::subscription_for(&["finding.*"]);
        let now = Timestamp(1_700_000_000_000);
        sub.last_delivery_status = None;
        sub.last_delivery_at = None;
        assert!(last_delivery_is_stale(&sub, DeliveryStatus::Succeeded, now));
        sub.last_delivery_status = Some("succeeded".into());
        sub.last_delivery_at = Some(now.plus_seconds(-59));
        assert!(!last_delivery_is_stale(&sub, DeliveryStatus::Succeeded, now));
        assert!(last_delivery_is_stale(&sub, DeliveryStatus::Failed, now));
        sub.last_delivery_at = Some(now.plus_seconds(-LAST_DELIVERY_REFRESH_SECS));
        assert!(last_delivery_is_stale(&sub, DeliveryStatus::Succeeded, now));
    }

    #[test]
    fn classification_follows_design_section_6() {
        let p = RetryPolicy { base_secs: 10, max_secs: 3600, max_attempts: 5 };
        let now = Timestamp(0);
        assert_eq!(classify(&p, &outcome(Some(204), &[]), 1, now), (DeliveryStatus::Succeeded, JobOutcome::Done));
        assert_eq!(classify(&p, &outcome(Some(410), &[]), 1, now), (DeliveryStatus::FailedPermanent, JobOutcome::Done));
        let (s, j) = classify(&p, &outcome(Some(500), &[]), 1, now);
        assert_eq!(s, DeliveryStatus::Failed);
        assert!(matches!(j, JobOutcome::Retry { delay_secs } if (5..=10).contains(&delay_secs)));
        assert_eq!(classify(&p, &outcome(Some(429), &[("Retry-After", "77")]), 2, now).1, JobOutcome::Retry { delay_secs: 77 });
        // Retry-After on a plain 500 is not honoured.
        assert!(matches!(classify(&p, &outcome(Some(500), &[("Retry-After", "77")]), 1, now).1, JobOutcome::Retry { delay_secs } if delay_secs <= 10));
        assert_eq!(classify(&p, &outcome(None, &[]), 5, now), (DeliveryStatus::Failed, JobOutcome::Retry { delay_secs: 0 }));
        assert!(matches!(classify(&p, &outcome(Some(302), &[]), 1, now).0, DeliveryStatus::Failed));
        // More receives than attempts allowed: the queue's redrive limit is higher; stop.
        assert_eq!(classify(&p, &outcome(Some(500), &[]), 6, now), (DeliveryStatus::FailedPermanent, JobOutcome::Done));
    }
}
