//! Which subscriptions get a delivery for an event (docs/api.md).
//!
//! A subscription matches when it is active, one of its patterns matches the event type, and
//! every given filter passes: `min_severity` (events without a severity always pass), `tags`
//! (every pair present in the event's tags; an event without tags fails a non-empty filter) and
//! `payload` (a condition on the event's `data`, see [`payload`]).

pub mod payload;

use crate::model::Subscription;
use crate::validation::{EventPattern, Filters, Severity};
use serde_json::Value;
use std::collections::BTreeMap;

/// The parts of an event that subscription filters look at.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    /// Dotted event type, matched against the subscription's patterns.
    pub event_type: &'a str,
    /// None when the event carries no severity: it then passes any `min_severity`.
    pub severity: Option<Severity>,
    /// The event's tags; empty when it has none, which fails any non-empty `tags` filter.
    pub tags: &'a BTreeMap<String, String>,
    /// The event's `data`, which a payload filter looks into.
    pub data: &'a Value,
}

/// Whether `event` passes `min_severity`, `tags` and `payload` (patterns and `active` are checked
/// elsewhere).
pub fn filters_pass(filters: &Filters, event: &EventFacts<'_>) -> bool {
    let severity_ok = match (filters.min_severity, event.severity) {
        (Some(min), Some(sev)) => sev >= min,
        _ => true,
    };
    let tags_ok = filters.tags.iter().all(|(k, v)| event.tags.get(k) == Some(v));
    severity_ok && tags_ok && filters.payload.as_ref().is_none_or(|p| p.matches(event.data))
}

/// Whether any of `patterns` matches `event_type`.
pub fn listens_to(patterns: &[EventPattern], event_type: &str) -> bool {
    patterns.iter().any(|p| p.matches(event_type))
}

/// Whether `sub` should get a delivery of `event`.
pub fn subscription_matches(sub: &Subscription, event: &EventFacts<'_>) -> bool {
    sub.active && listens_to(&sub.events, event.event_type) && filters_pass(&sub.filters, event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::subscription_for;
    use proptest::prelude::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn table_of_filter_rules() {
        let none = tags(&[]);
        let prod = tags(&[("account", "prod"), ("layer", "cloud")]);
        let high = Filters { min_severity: Some(Severity::High), ..Filters::default() };
        let tagged = Filters { tags: tags(&[("account", "prod")]), ..Filters::default() };
        let both = Filters {
            min_severity: Some(Severity::Medium),
            tags: tags(&[("account", "prod"), ("layer", "cloud")]),
            payload: None,
        };
        let cases = [
            (&high, Some(Severity::Critical), &none, true),
            (&high, Some(Severity::High), &none, true),
            (&high, Some(Severity::Medium), &none, false),
            (&high, None, &none, true), // no severity always passes
            (&tagged, None, &prod, true),
            (&tagged, None, &none, false), // no tags fails a non-empty tags filter
            (&both, Some(Severity::Low), &prod, false),
            (&both, Some(Severity::High), &prod, true),
            (&both, Some(Severity::High), &tags(&[("account", "prod")]), false), // partial match
            (&both, Some(Severity::High), &tags(&[("account", "prod"), ("layer", "edge")]), false),
        ];
        for (i, (filters, severity, event_tags, want)) in cases.into_iter().enumerate() {
            let facts = EventFacts { event_type: "finding.discovered", severity, tags: event_tags, data: &Value::Null };
            assert_eq!(filters_pass(filters, &facts), want, "case {i}");
        }
    }

    #[test]
    fn inactive_and_unsubscribed_do_not_match() {
        let empty = BTreeMap::new();
        let facts = EventFacts { event_type: "finding.discovered", severity: None, tags: &empty, data: &Value::Null };
        let mut sub = subscription_for(&["finding.*"]);
        assert!(subscription_matches(&sub, &facts));
        sub.active = false;
        assert!(!subscription_matches(&sub, &facts));
        let other = subscription_for(&["agent.registered"]);
        assert!(!subscription_matches(&other, &facts));
    }

    fn severity() -> impl Strategy<Value = Severity> {
        prop_oneof![Just(Severity::Low), Just(Severity::Medium), Just(Severity::High), Just(Severity::Critical)]
    }

    proptest! {
        #[test]
        fn min_severity_passes_exactly_at_or_above_the_threshold(threshold in severity(), event in proptest::option::of(severity())) {
            let filters = Filters { min_severity: Some(threshold), ..Filters::default() };
            let empty = BTreeMap::new();
            let facts = EventFacts { event_type: "finding.discovered", severity: event, tags: &empty, data: &Value::Null };
            // No severity always passes (docs/api.md).
            prop_assert_eq!(filters_pass(&filters, &facts), event.is_none_or(|s| s >= threshold));
        }

        #[test]
        fn a_missing_or_different_tag_always_fails(
            wanted in proptest::collection::btree_map("[a-z]{1,4}", "[a-z]{1,4}", 1..4),
            drop_index in 0usize..4,
            change in any::<bool>(),
        ) {
            let mut event_tags = wanted.clone();
            let key = wanted.keys().nth(drop_index % wanted.len()).unwrap().clone();
            if change {
                event_tags.insert(key, "DIFFERENT".into());
            } else {
                event_tags.remove(&key);
            }
            let filters = Filters { tags: wanted, ..Filters::default() };
            let facts = EventFacts { event_type: "chain.confirmed", severity: Some(Severity::Critical), tags: &event_tags, data: &Value::Null };
            prop_assert!(!filters_pass(&filters, &facts));
        }

        #[test]
        fn superset_tags_always_pass(extra in proptest::collection::btree_map("[a-z]{1,5}", "[a-z]{1,5}", 0..5)) {
            let wanted = tags(&[("team", "red")]);
            let mut event_tags = extra.clone();
            event_tags.insert("team".into(), "red".into());
            let filters = Filters { tags: wanted, ..Filters::default() };
            let facts = EventFacts { event_type: "chain.confirmed", severity: None, tags: &event_tags, data: &Value::Null };
            prop_assert!(filters_pass(&filters, &facts));
        }
    }
}
