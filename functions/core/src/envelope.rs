//! The delivery body (docs/receiving.md): `{event_id, event_type, emitted_at, api_version, data}`.
//!
//! The envelope is serialised once, at publish time, and stored with each delivery; every attempt
//! and replay signs and sends those same bytes.

use crate::ids::EventId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `api_version` stamped on every envelope; bump only with a breaking change of the body.
pub const API_VERSION: &str = "v1";

/// The JSON body of a raw-format delivery; fields serialise in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The producer's event id, the receiver's deduplication key (same on every attempt and replay).
    pub event_id: EventId,
    /// Dotted event type from the catalog.
    pub event_type: String,
    /// When the event was published (RFC 3339, UTC), not when this attempt was sent.
    pub emitted_at: Timestamp,
    /// Always [`API_VERSION`] for envelopes built here.
    pub api_version: String,
    /// The producer's `data` object, passed through unchanged.
    pub data: Value,
}

impl Envelope {
    /// An envelope with `api_version` set to [`API_VERSION`].
    pub fn new(event_id: EventId, event_type: &str, emitted_at: Timestamp, data: Value) -> Self {
        Self { event_id, event_type: event_type.to_owned(), emitted_at, api_version: API_VERSION.to_owned(), data }
    }

    /// Compact JSON in field order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope of JSON values always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn serialises_in_documented_shape_and_order() {
        let e = Envelope::new(
            EventId::parse("018f2e3a-1c47-7a12-b321-aabbccddeeff").unwrap(),
            "investigation.completed",
            Timestamp::parse_rfc3339("2026-05-03T14:22:01Z").unwrap(),
            serde_json::json!({"investigation_id": "inv_1"}),
        );
        assert_eq!(
            e.to_json(),
            r#"{"event_id":"018f2e3a-1c47-7a12-b321-aabbccddeeff","event_type":"investigation.completed","emitted_at":"2026-05-03T14:22:01.000Z","api_version":"v1","data":{"investigation_id":"inv_1"}}"#
        );
    }

    proptest! {
        #[test]
        fn round_trips(ms in 0i64..4_102_444_800_000, s in "\\PC{0,40}", n in any::<i64>()) {
            let e = Envelope::new(EventId::generate(), "finding.discovered", Timestamp(ms), serde_json::json!({"s": s, "n": n}));
            let back: Envelope = serde_json::from_str(&e.to_json()).unwrap();
            prop_assert_eq!(back, e);
        }
    }
}
