//! Failing runs a container has seen but not yet written (docs/api.md, "Operational events"
//! and "Auto-disable of dead endpoints").
//!
//! Why: when a share of a busy subscription's deliveries fails now and then, a lone failure
//! followed by a success is the common case. Writing the failing clock for it (set at the failure,
//! cleared at the success after) would cost two writes of the subscription's state per failed
//! delivery, whatever the coalescing of the last delivery. So a container starts the stored clock
//! only when it sees [`CONFIRM_AFTER_FAILURES`] failures of the subscription in a row; the clock
//! then starts at the first of them, as before. A success in the container, or one recorded as the
//! subscription's last delivery after the run began (another container's), ends the run unwritten.

use crate::ids::{AccountId, SubscriptionId};
use crate::model::{DeliveryStatus, Subscription};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

/// Failures in a row one container sees before it starts the subscription's failing clock.
pub const CONFIRM_AFTER_FAILURES: u32 = 2;

/// Runs past it start over (memory bound per container).
const RUNS_MAX: usize = 10_000;

/// A run of failures that reached [`CONFIRM_AFTER_FAILURES`]: the clock starts at `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmedRun {
    /// When the run's first failure ended.
    pub since: Timestamp,
    /// Failures in the run so far.
    pub failures: u32,
}

/// Per container: each subscription's unwritten run of failures, `(first failure, count)`.
#[derive(Default)]
pub struct FailingRuns(Mutex<HashMap<(AccountId, SubscriptionId), (Timestamp, u32)>>);

impl FailingRuns {
    /// A failed attempt of `sub` (as read, its clock unset) at `now`: the run it confirms, if any
    /// (the run is then forgotten here; the stored clock carries it on).
    pub fn failed(&self, sub: &Subscription, now: Timestamp) -> Option<ConfirmedRun> {
        let mut runs = self.0.lock().expect("failing runs lock");
        let key = (sub.account_id.clone(), sub.id.clone());
        let succeeded_since = |since: Timestamp| {
            sub.last_delivery_status.as_deref() == Some(DeliveryStatus::Succeeded.as_str())
                && sub.last_delivery_at.is_some_and(|at| at > since)
        };
        let (since, failures) = match runs.get(&key) {
            Some(&(since, n)) if !succeeded_since(since) => (since, n + 1),
            _ => (now, 1),
        };
        if failures >= CONFIRM_AFTER_FAILURES {
            runs.remove(&key);
            return Some(ConfirmedRun { since, failures });
        }
        if runs.len() >= RUNS_MAX {
            runs.clear();
        }
        runs.insert(key, (since, failures));
        None
    }

    /// A successful attempt of the subscription: its unwritten run ends.
    pub fn succeeded(&self, account: &AccountId, id: &SubscriptionId) {
        self.0.lock().expect("failing runs lock").remove(&(account.clone(), id.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_failure_is_not_a_run_and_two_in_a_row_start_it_at_the_first() {
        let mut sub = crate::fakes::subscription_for(&["finding.*"]);
        sub.last_delivery_status = None;
        let runs = FailingRuns::default();
        let t0 = Timestamp(1_800_000_000_000);
        assert_eq!(runs.failed(&sub, t0), None);
        runs.succeeded(&sub.account_id, &sub.id);
        assert_eq!(runs.failed(&sub, t0.plus_seconds(1)), None, "a success ended the first run");
        let confirmed = runs.failed(&sub, t0.plus_seconds(2));
        assert_eq!(confirmed, Some(ConfirmedRun { since: t0.plus_seconds(1), failures: 2 }));
        assert_eq!(runs.failed(&sub, t0.plus_seconds(3)), None, "handed to the stored clock");
    }

    #[test]
    fn a_success_recorded_by_another_container_after_the_first_failure_ends_the_run() {
        let mut sub = crate::fakes::subscription_for(&["finding.*"]);
        let runs = FailingRuns::default();
        let t0 = Timestamp(1_800_000_000_000);
        sub.last_delivery_status = Some("succeeded".into());
        sub.last_delivery_at = Some(t0.plus_seconds(-1));
        assert_eq!(runs.failed(&sub, t0), None);
        sub.last_delivery_at = Some(t0.plus_seconds(5));
        assert_eq!(runs.failed(&sub, t0.plus_seconds(10)), None, "a new run from here");
        let confirmed = runs.failed(&sub, t0.plus_seconds(11));
        assert_eq!(confirmed, Some(ConfirmedRun { since: t0.plus_seconds(10), failures: 2 }));
    }
}
