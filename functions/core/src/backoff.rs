//! Retry schedule: exponential backoff with jitter, capped at SQS's 12-hour visibility limit.
//!
//! Attempt `n` (1-based) that failed waits `base · 2^(n-1)` capped at `max`, with "equal jitter":
//! half the delay is fixed and half is random. Delays therefore grow monotonically in their bounds
//! and retries from many deliveries failing together spread out. With the defaults (30 s base,
//! 12 h cap, 15 attempts) the schedule spans about 3 days.

use rand::Rng;

/// SQS refuses visibility timeouts above 12 hours.
pub const SQS_MAX_VISIBILITY_SECS: u32 = 43_200;
/// Bounds on a receiver's `Retry-After` (we never wait less than 1 s nor more than the cap).
const MIN_RETRY_AFTER_SECS: u32 = 1;

/// The retry schedule, from config (`BACKOFF_BASE_SECONDS`, `BACKOFF_MAX_SECONDS`,
/// `MAX_DELIVERY_ATTEMPTS`; the latter equals the queue's `maxReceiveCount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_secs: u32,
    pub max_secs: u32,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base_secs: 30, max_secs: SQS_MAX_VISIBILITY_SECS, max_attempts: 15 }
    }
}

impl RetryPolicy {
    /// The largest delay: the configured maximum, within SQS's limit and at least 1 s.
    fn cap_secs(&self) -> u32 {
        self.max_secs.clamp(1, SQS_MAX_VISIBILITY_SECS)
    }

    /// The un-jittered delay after failed attempt `attempt` (1-based).
    pub fn ceiling_secs(&self, attempt: u32) -> u32 {
        let cap = self.cap_secs();
        let exp = attempt.saturating_sub(1).min(31);
        let delay = u64::from(self.base_secs.max(1)) << exp;
        delay.min(u64::from(cap)) as u32
    }

    /// The delay to wait after failed attempt `attempt`, with equal jitter, or the receiver's
    /// `Retry-After` when given, clamped to `[1 s, cap]`.
    pub fn delay_secs(&self, attempt: u32, retry_after: Option<u32>) -> u32 {
        let ceiling = self.ceiling_secs(attempt);
        if let Some(wanted) = retry_after {
            return wanted.clamp(MIN_RETRY_AFTER_SECS, self.cap_secs());
        }
        let half = ceiling / 2;
        let jitter = if ceiling - half == 0 { 0 } else { rand::thread_rng().gen_range(0..=ceiling - half) };
        (half + jitter).max(1)
    }

    /// Whether attempt `attempt` was the last one the queue will allow.
    pub fn is_last_attempt(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }

    /// The total of the un-jittered delays: how long a delivery keeps being retried.
    pub fn total_span_secs(&self) -> u64 {
        (1..self.max_attempts).map(|n| u64::from(self.ceiling_secs(n))).sum()
    }
}

/// Parses a `Retry-After` header: delay-seconds, or an HTTP date relative to `now_unix`.
pub fn parse_retry_after(raw: &str, now_unix: i64) -> Option<u32> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(secs.min(u64::from(u32::MAX)) as u32);
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(raw, &format).ok()?.assume_utc().unix_timestamp();
    Some((at - now_unix).clamp(0, i64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_schedule_spans_about_three_days() {
        let span = RetryPolicy::default().total_span_secs();
        assert!((2 * 86_400..4 * 86_400).contains(&span), "span {span}s");
    }

    #[test]
    fn ceilings_grow_then_cap_at_twelve_hours() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling_secs(1), 30);
        assert_eq!(p.ceiling_secs(2), 60);
        assert_eq!(p.ceiling_secs(3), 120);
        assert_eq!(p.ceiling_secs(40), 43_200);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = RetryPolicy { base_secs: 30, max_secs: 3600, max_attempts: 5 };
        assert_eq!(p.delay_secs(1, Some(120)), 120);
        assert_eq!(p.delay_secs(1, Some(0)), 1);
        assert_eq!(p.delay_secs(1, Some(1_000_000)), 3600);
    }

    #[test]
    fn parses_retry_after_forms() {
        assert_eq!(parse_retry_after("120", 0), Some(120));
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 30), Some(30));
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    proptest! {
        #[test]
        fn jittered_delay_stays_within_half_and_full_ceiling(attempt in 1u32..40, base in 1u32..600) {
            let p = RetryPolicy { base_secs: base, max_secs: 43_200, max_attempts: 15 };
            let d = p.delay_secs(attempt, None);
            let c = p.ceiling_secs(attempt);
            prop_assert!(d >= (c / 2).max(1) && d <= c.max(1));
        }
    }
}
