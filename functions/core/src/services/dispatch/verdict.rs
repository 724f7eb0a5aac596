//! What one attempt's outcome means for its delivery: succeeded, retried after a delay, or failed
//! for good (the rules of docs/delivery.md, "Delivery semantics").

use super::*;

/// The message a job came in: SQS's receive count and when the batch was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// SQS `ApproximateReceiveCount` of the message (1 on first receive).
    pub count: u32,
    /// When the batch was received, the start of SQS's 12 h visibility window.
    pub received_at: Timestamp,
}

/// What one attempt's outcome means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The delivery's status after the attempt.
    pub status: DeliveryStatus,
    /// Seconds until the next attempt; None when there is none.
    pub retry_in_secs: Option<u32>,
    /// The message is on its queue's last receive (reporting it failed would redrive it to the DLQ)
    /// while the delivery still has attempts: delete it and let the sweeper send a fresh one when
    /// due. Happens only when receives were spent without an attempt (throttling, crashes).
    pub handed_to_sweeper: bool,
}

/// docs/delivery.md: 2xx succeeds; 410 stops at once; anything else retries with backoff until attempt
/// `attempt` (1-based, from the delivery's `attempt_count`) reaches the limit, which fails the
/// delivery permanently. The delay honours `Retry-After` on 429/503 and never passes the 12 h
/// visibility window of the receive.
pub fn classify(
    policy: &RetryPolicy,
    outcome: &SendOutcome,
    attempt: u32,
    receipt: Receipt,
    now: Timestamp,
) -> Verdict {
    let done = |status| Verdict { status, retry_in_secs: None, handed_to_sweeper: false };
    match outcome.status {
        Some(s) if (200..300).contains(&s) => done(DeliveryStatus::Succeeded),
        Some(410) => done(DeliveryStatus::FailedPermanent),
        _ if policy.is_last_attempt(attempt) => done(DeliveryStatus::FailedPermanent),
        status => {
            let retry_after = match status {
                Some(429 | 503) => outcome.header("retry-after").and_then(|v| parse_retry_after(v, now.unix_seconds())),
                _ => None,
            };
            let delay = policy.delay_within_window(
                attempt,
                retry_after,
                receipt.received_at.unix_seconds(),
                now.unix_seconds(),
            );
            Verdict {
                status: DeliveryStatus::Failed,
                retry_in_secs: Some(delay),
                handed_to_sweeper: receipt.count >= policy.max_attempts,
            }
        }
    }
}

/// One line per attempt: at `info` when it failed (what an operator looks for), at `debug` when it
/// succeeded, since the delivery log holds every attempt anyway and CloudWatch bills each line
/// (a successful delivery's line was a third of its log bytes, docs/benchmarks.md).
pub(super) fn log_attempt(
    delivery: &Delivery,
    number: u32,
    outcome: &SendOutcome,
    status: DeliveryStatus,
    next_attempt_at: Option<Timestamp>,
) {
    macro_rules! attempt_line {
        ($level:expr) => {
            tracing::event!(
                $level,
                account_id = %delivery.account_id,
                delivery_id = %delivery.id,
                subscription_id = %delivery.subscription_id,
                attempt = number,
                response_status = ?outcome.status,
                error = ?outcome.error,
                status = status.as_str(),
                next_attempt_at = next_attempt_at.map(Timestamp::rfc3339).as_deref(),
                "delivery attempt"
            )
        };
    }
    if status == DeliveryStatus::Succeeded {
        attempt_line!(tracing::Level::DEBUG);
    } else {
        attempt_line!(tracing::Level::INFO);
    }
}
