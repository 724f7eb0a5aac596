//! The partition model when a share of deliveries fails once (docs/benchmarks.md): every key's
//! units per delivery of the successful path, plus that share of one failed attempt's (measured:
//! its log item, attempt item, retry entry, and the subscription's last delivery on its state
//! key), plus the failing clock's writes on the subscription's state key.
//!
//! The clock's writes are modelled from the dispatcher's rules, since a sample of one failed
//! attempt cannot show them: a container writes the clock only for a run of
//! [`CONFIRM_AFTER_FAILURES`] failures of the subscription in a row (mark, then a count), counts
//! the run on up to [`FAILING_AFTER_ATTEMPTS`] and clears it at the success after; each of those
//! is one write of the state item, billed at what the failed attempt's write of it measured. A
//! lone failure writes no clock, and its last delivery and the success after it are written by
//! each container at most once per [`LAST_DELIVERY_COALESCE_MS`]: that bounds the containers, not
//! the deliveries/s, and is reported as such.

use super::CostFigures;
use crate::cost::{self, KeyLimit, Scope};
use puck_core::services::dispatch::LAST_DELIVERY_COALESCE_MS;
use puck_core::services::operational::{CONFIRM_AFTER_FAILURES, FAILING_AFTER_ATTEMPTS};
use std::collections::BTreeMap;

/// The shape of a subscription's state key (`functions/aws/src/dynamo/subscriptions/state.rs`).
pub const STATE_KEY: &str = "SUBSTATE#{acct}#{sub}";

/// The unsharded key of an account's own items (its subscription items among them).
const ACCOUNT_KEY: &str = "ACCT#{acct}";

/// Writes of the failing clock per delivery when a share `failing` of deliveries fails once,
/// independently. Attempts per delivery are `1 + failing`, a share `q = failing / (1 + failing)`
/// of them failed. In one container's sequence of attempts, the attempts that are the `k`-th
/// failure of a run following a success are a share `q^k (1 - q)`: those at `k = c`
/// ([`CONFIRM_AFTER_FAILURES`]) mark the clock and lead to one clear at the success after; those
/// at `c ≤ k ≤` [`FAILING_AFTER_ATTEMPTS`] count one failure each.
pub fn clock_writes_per_delivery(failing: f64) -> f64 {
    let attempts = 1.0 + failing;
    let q = failing / attempts;
    let c = CONFIRM_AFTER_FAILURES as i32;
    let counts: f64 = (c..=FAILING_AFTER_ATTEMPTS as i32).map(|k| q.powi(k)).sum();
    attempts * (1.0 - q) * (2.0 * q.powi(c) + counts)
}

/// The event ids of the failed-attempt scenario (`evt-fail-…`) among key values, so their keys
/// are taken for per-event ones.
fn failed_event_ids(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = values
        .filter_map(|v| v.find("evt-fail-").map(|i| v[i..].split('#').next().unwrap_or_default().to_owned()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A key shape's scope, units per delivery (write, read), shard count and sample's hottest value.
type Shape = (Scope, f64, f64, u32, (f64, f64));

impl CostFigures {
    /// The failed attempt (1 KiB) as units per delivery on each key shape, and one write of the
    /// subscription's state item in units (at least 1 WRU).
    fn failed_keys(&self) -> Option<(Vec<(Scope, KeyLimit)>, f64)> {
        let failed = self.failed.get(&1024)?;
        let ids = failed_event_ids(failed.ledger.keys.keys().map(|(_, v)| v.clone()));
        let keys = cost::partition_keys(&failed.ledger.keys, 1.0, &ids, true);
        let state_write =
            keys.iter().find(|(_, k)| k.key.ends_with(&format!(": {STATE_KEY}"))).map_or(0.0, |(_, k)| k.state_wru);
        Some((keys, state_write.max(1.0)))
    }

    /// Each key shape with a share `failing` of deliveries failing once (see the module header).
    /// A state write measured on an account-scoped key (a layout that keeps the state with the
    /// account's items) counts for the failed attempt and as much again for the success after it.
    pub fn partition_when_failing(&self, failing: f64) -> Vec<(Scope, KeyLimit)> {
        let mut shapes: BTreeMap<String, Shape> = self
            .partition
            .iter()
            .map(|(s, k)| (k.key.clone(), (*s, k.wru_per_delivery, k.rru_per_delivery, k.shards, k.sample_hottest)))
            .collect();
        let Some((failed, state_write)) = self.failed_keys() else { return self.partition.clone() };
        for (scope, k) in failed.iter().filter(|(s, _)| *s != Scope::Item) {
            let state = if *scope == Scope::Account { 2.0 * k.state_wru } else { 0.0 };
            let e = shapes.entry(k.key.clone()).or_insert((*scope, 0.0, 0.0, k.shards, (0.0, 0.0)));
            e.1 += failing * (k.wru_per_delivery + state);
            e.2 += failing * k.rru_per_delivery;
        }
        let table = self.partition.iter().map(|(_, k)| k.key.split(": ").next().unwrap_or_default()).next();
        let state_key = format!("{}: {STATE_KEY}", table.unwrap_or("table"));
        let e = shapes.entry(state_key).or_insert((Scope::Subscription, 0.0, 0.0, 1, (0.0, 0.0)));
        e.1 += clock_writes_per_delivery(failing) * state_write;
        shapes
            .into_iter()
            .map(|(key, (scope, w, r, shards, hottest))| (scope, KeyLimit::sharded(key, w, r, shards, hottest)))
            .collect()
    }

    fn ceiling_when_failing(&self, failing: f64, scopes: &[Scope]) -> f64 {
        let keys: Vec<KeyLimit> = self
            .partition_when_failing(failing)
            .into_iter()
            .filter(|(s, _)| scopes.contains(s))
            .map(|(_, k)| k)
            .collect();
        cost::ceiling(&keys) * 0.5
    }

    /// Sustained deliveries/s of one account with a share `failing` failing once, every key under
    /// half its limit (None without a measured failed attempt).
    pub fn account_ceiling_when_failing(&self, failing: f64) -> Option<f64> {
        self.failed.get(&1024)?;
        Some(self.ceiling_when_failing(failing, &[Scope::Account]))
    }

    /// The same for one subscription (its own keys and the account's).
    pub fn subscription_ceiling_when_failing(&self, failing: f64) -> Option<f64> {
        self.failed.get(&1024)?;
        Some(self.ceiling_when_failing(failing, &[Scope::Account, Scope::Subscription]))
    }

    /// The paragraph of the partition section on failures.
    pub(super) fn failing_md(&self) -> Option<String> {
        let (failed, state_write) = self.failed_keys()?;
        let (acc, sub) = (self.account_ceiling_when_failing(0.1)?, self.subscription_ceiling_when_failing(0.1)?);
        let on_account: f64 =
            failed.iter().filter(|(_, k)| k.key.ends_with(&format!(": {ACCOUNT_KEY}"))).map(|(_, k)| k.state_wru).sum();
        let clock = clock_writes_per_delivery(0.1) * state_write;
        let state = self.partition_when_failing(0.1);
        let state_load = state.iter().find(|(_, k)| k.key.ends_with(&format!(": {STATE_KEY}"))).map(|(_, k)| k);
        let per_delivery = state_load.map_or(0.0, |k| k.wru_per_delivery);
        let at_goal = per_delivery * 3_000.0;
        let per_sec = 1000.0 / LAST_DELIVERY_COALESCE_MS as f64;
        let containers = (cost::PARTITION_WCU_S / 2.0 - at_goal).max(0.0) / (per_sec * state_write);
        let verdict = |v: f64, goal: f64| if v >= goal { "met" } else { "**not met**" };
        Some(format!(
            "**When 10% of deliveries fail once** (each key: the successful path's units plus 10% of one failed \
             attempt's, measured; state writes on the account's key `{ACCOUNT_KEY}`: {on_account:.1} WRU per failed \
             attempt): one account reaches **{}** deliveries/s with every key under half its limit (goal ≥ 10,000: {}), \
             one subscription **{}** (goal ≥ 3,000: {}). A subscription's state is on its own key `{STATE_KEY}`: there \
             a failing clock is written only for {CONFIRM_AFTER_FAILURES} failures in a row in one container, \
             modelled as {:.4} writes per delivery of {state_write:.1} WRU each ({clock:.4} WRU), so the key takes \
             {per_delivery:.4} WRU per delivery (the clock, and 10% of the failed attempt's other units on it); at 3,000 \
             deliveries/s that is {at_goal:.0} WCU/s, leaving room under half the limit for {containers:.0} \
             containers each writing the subscription's last delivery once per {} ms (outcomes alternating).\n",
            super::rate(acc),
            verdict(acc, 10_000.0),
            super::rate(sub),
            verdict(sub, 3_000.0),
            clock_writes_per_delivery(0.1),
            LAST_DELIVERY_COALESCE_MS,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scattered_failures_write_the_clock_rarely() {
        // 10% of deliveries failing once: q = 1/11 of attempts; 1.1 × 10/11 × (2q² + q² + q³ + q⁴).
        let q: f64 = 1.0 / 11.0;
        let want = 1.1 * (10.0 / 11.0) * (3.0 * q * q + q.powi(3) + q.powi(4));
        assert!((clock_writes_per_delivery(0.1) - want).abs() < 1e-12);
        assert!(clock_writes_per_delivery(0.1) < 0.03, "far below two writes per failure (0.2)");
        assert_eq!(clock_writes_per_delivery(0.0), 0.0);
    }

    /// The figures with an account key of 0.02 WRU per delivery (25,000/s at half its limit) and
    /// a failed attempt that wrote 1 WRU of subscription state on `pk`.
    fn failing_on(pk: &str) -> CostFigures {
        let mut c = super::super::tests::figures();
        c.partition = vec![(Scope::Account, KeyLimit::new("t: ACCT#{acct}".into(), 0.02, 0.0))];
        let load = crate::ledger::Load { wru: 1.0, state_wru: 1.0, ..Default::default() };
        let failed = c.failed.get_mut(&1024).unwrap();
        failed.ledger.keys.insert(("t".into(), pk.into()), load);
        c
    }

    #[test]
    fn state_on_the_account_key_bounds_the_account_and_on_its_own_key_only_its_subscription() {
        // As before: each failure and the success after it write the account's key (2 × 10% × 1 WRU).
        let old = failing_on("ACCT#acct_0123456789abcdef");
        let acc = old.account_ceiling_when_failing(0.1).unwrap();
        assert!((acc - 500.0 / 0.22).abs() < 1e-6, "{acc}");
        // On the subscription's own key: the account keeps its 25,000/s; the subscription's key
        // takes the clock's writes only (the last delivery bounds containers, not deliveries).
        let new = failing_on("SUBSTATE#acct_0123456789abcdef#sub_0123456789abcdef");
        assert!((new.account_ceiling_when_failing(0.1).unwrap() - 25_000.0).abs() < 1e-6);
        let sub = new.subscription_ceiling_when_failing(0.1).unwrap();
        assert!((sub - 500.0 / clock_writes_per_delivery(0.1)).abs() < 1e-6, "{sub}");
        let md = new.failing_md().unwrap();
        assert!(
            md.contains("one account reaches **25000** deliveries/s") && md.contains("(goal ≥ 3,000: met)"),
            "{md}"
        );
    }

    #[test]
    fn failed_event_ids_are_found_in_key_values() {
        let ids = failed_event_ids(["EVT#acct_1#evt-fail-1024-00ab".to_owned(), "ACCT#acct_1".to_owned()].into_iter());
        assert_eq!(ids, ["evt-fail-1024-00ab"]);
    }
}
