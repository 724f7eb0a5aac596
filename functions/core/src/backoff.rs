//! Retry schedule: exponential backoff with jitter, bounded by SQS's 12-hour visibility window.
//!
//! Attempt `n` (1-based) that failed waits `base · 2^(n-1)` capped at `max`, with a quarter of
//! jitter: the delay lies in `[¾ ceiling, ceiling]`. Delays grow monotonically in their bounds and
//! retries from many deliveries failing together spread out, while the total stays predictable.
//! With the defaults (30 s base, 12 h cap, 17 attempts) the schedule spans 2.4 to 3.2 days, the
//! "about three days" receivers expect from Stripe and Svix (the unit test below computes it).
//!
//! SQS lets a message's visibility reach at most 12 h after the receive that returned it; a
//! `ChangeMessageVisibility` past that fails and the message comes back after the queue's default
//! timeout. [`RetryPolicy::delay_within_window`] caps a delay at what is left of that window,
//! measured from when the batch was received (with [`RECEIVE_MARGIN_SECS`]), so the visibility the
//! dispatcher asks for is the one SQS applies and the logged next attempt is true.

use rand::Rng;

/// SQS refuses visibility timeouts above 12 hours.
pub const SQS_MAX_VISIBILITY_SECS: u32 = 43_200;
/// How much earlier than the handler's own start SQS may have received the batch. The event source
/// mapping invokes the function within the queue's visibility timeout (180 s) of its receive, or
/// the messages would already be visible again; 300 s covers that with room to spare.
pub const RECEIVE_MARGIN_SECS: u32 = 300;
/// Bounds on a receiver's `Retry-After` (we never wait less than 1 s nor more than the cap).
const MIN_RETRY_AFTER_SECS: u32 = 1;

/// The retry schedule, from config (`BACKOFF_BASE_SECONDS`, `BACKOFF_MAX_SECONDS`,
/// `MAX_DELIVERY_ATTEMPTS`; the latter equals the queue's `maxReceiveCount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt, in seconds (`BACKOFF_BASE_SECONDS`, default 30).
    pub base_secs: u32,
    /// Ceiling of any one delay, in seconds; at most [`SQS_MAX_VISIBILITY_SECS`] (default 12 h).
    pub max_secs: u32,
    /// Attempts before a delivery fails for good (`MAX_DELIVERY_ATTEMPTS`, default 17); must equal the
    /// queue's `maxReceiveCount`.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base_secs: 30, max_secs: SQS_MAX_VISIBILITY_SECS, max_attempts: 17 }
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
        let fixed = ceiling - ceiling / 4;
        let jitter = if ceiling == fixed { 0 } else { rand::thread_rng().gen_range(0..=ceiling - fixed) };
        (fixed + jitter).max(1)
    }

    /// [`Self::delay_secs`], capped at what is left of SQS's 12 h visibility window of a message
    /// received at `received_unix` (seconds), now being `now_unix`, less [`RECEIVE_MARGIN_SECS`].
    /// Never below 1 s: a receive older than the window gets the smallest delay, not a refusal.
    pub fn delay_within_window(
        &self,
        attempt: u32,
        retry_after: Option<u32>,
        received_unix: i64,
        now_unix: i64,
    ) -> u32 {
        self.delay_secs(attempt, retry_after).min(window_left_secs(received_unix, now_unix)).max(1)
    }

    /// Whether attempt `attempt` was the last one the queue will allow.
    pub fn is_last_attempt(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }

    /// The un-jittered delay after attempt `n` as SQS can apply it: at most the visibility window
    /// left right after a receive.
    fn applied_ceiling_secs(&self, attempt: u32) -> u64 {
        u64::from(self.ceiling_secs(attempt).min(window_left_secs(0, 0)))
    }

    /// The longest a delivery keeps being retried: the sum of the delays' upper bounds.
    pub fn total_span_secs(&self) -> u64 {
        (1..self.max_attempts).map(|n| self.applied_ceiling_secs(n)).sum()
    }

    /// The shortest: the sum of the delays' lower bounds (¾ of each ceiling).
    pub fn min_span_secs(&self) -> u64 {
        (1..self.max_attempts).map(|n| self.applied_ceiling_secs(n) - self.applied_ceiling_secs(n) / 4).sum()
    }
}

/// Seconds left of the 12 h visibility window of a message received at `received_unix`, less
/// [`RECEIVE_MARGIN_SECS`]; 0 when none is left.
pub fn window_left_secs(received_unix: i64, now_unix: i64) -> u32 {
    let elapsed = (now_unix - received_unix).max(0);
    let left = i64::from(SQS_MAX_VISIBILITY_SECS - RECEIVE_MARGIN_SECS) - elapsed;
    left.clamp(0, i64::from(SQS_MAX_VISIBILITY_SECS)) as u32
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
        // The defaults must be the deployed settings (template.yaml Globals and parameters).
        let template = include_str!("../../../template.yaml");
        assert!(
            template.contains("BACKOFF_BASE_SECONDS: \"30\"") && template.contains("BACKOFF_MAX_SECONDS: \"43200\"")
        );
        assert!(template.contains("MaxDeliveryAttempts:\n    Type: Number\n    Default: 17\n"));
        let p = RetryPolicy::default();
        let (min, max) = (p.min_span_secs(), p.total_span_secs());
        let days = |s: u64| s as f64 / 86_400.0;
        // Stripe and Svix retry for about three days; so do we, whatever the jitter draws.
        assert!(days(min) >= 2.3 && days(max) <= 3.3, "span {:.2}–{:.2} days", days(min), days(max));
        assert_eq!((min, max), (206_933, 275_910), "docs/delivery.md states these figures (2.4–3.2 days)");
    }

    #[test]
    fn delays_never_pass_the_visibility_window_of_the_receive() {
        let p = RetryPolicy::default();
        let received = 1_000_000;
        // A Retry-After of a day, asked right after the receive: the window less the margin.
        assert_eq!(p.delay_within_window(3, Some(86_400), received, received), 43_200 - RECEIVE_MARGIN_SECS);
        // Asked 20 s into the batch: 20 s less, so receive + delay stays inside the window.
        assert_eq!(p.delay_within_window(3, Some(86_400), received, received + 20), 43_200 - RECEIVE_MARGIN_SECS - 20);
        // Short delays are untouched; a receive older than the window still gets 1 s.
        assert_eq!(p.delay_within_window(3, Some(77), received, received + 20), 77);
        assert_eq!(p.delay_within_window(3, Some(86_400), received, received + 50_000), 1);
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
        fn jittered_delay_stays_within_three_quarters_and_full_ceiling(attempt in 1u32..40, base in 1u32..600) {
            let p = RetryPolicy { base_secs: base, max_secs: 43_200, max_attempts: 15 };
            let d = p.delay_secs(attempt, None);
            let c = p.ceiling_secs(attempt);
            prop_assert!(d >= (c - c / 4).max(1) && d <= c.max(1));
        }
    }
}
