//! Prefixed, time-sortable identifiers (`sub_…`, `dlv_…`, `ep_…`, `inv_…`, `att_…`, `key_…`).
//!
//! Each id is a ULID (48-bit millisecond time + 80 random bits) in lowercase Crockford base32
//! behind a type prefix. Sorting ids sorts by creation time, which is what lets the delivery log
//! list newest-first straight from a DynamoDB range key. Parsing checks prefix, length and
//! alphabet, so a value of one of these types is always well formed.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const ULID_LEN: usize = 26;

/// Encodes a ULID for the given millisecond time with fresh randomness.
pub fn ulid_at(unix_ms: u64) -> String {
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value: u128 = u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (72 - 8 * i);
    }
    let mut out = [0u8; ULID_LEN];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (ULID_LEN - 1 - i);
        *slot = CROCKFORD[((value >> shift) & 0x1F) as usize];
    }
    String::from_utf8(out.to_vec()).expect("crockford alphabet is ascii")
}

/// Time-ordered ids make time windows key ranges: every id of `prefix` stamped at or after
/// `unix_ms` sorts at or after this string, and every id stamped before it sorts before it. It is
/// the prefix plus the ULID's 10 time characters, so it is never itself an id.
pub fn time_floor(prefix: &str, unix_ms: i64) -> String {
    let ms = unix_ms.clamp(0, 0xFFFF_FFFF_FFFF) as u64;
    let mut out = String::with_capacity(prefix.len() + 10);
    out.push_str(prefix);
    for i in 0..10 {
        out.push(char::from(CROCKFORD[((ms >> (5 * (9 - i))) & 0x1F) as usize]));
    }
    out
}

fn is_ulid(body: &str) -> bool {
    body.len() == ULID_LEN
        && body.bytes().all(|b| CROCKFORD.contains(&b))
        // The first character carries only 3 bits of a 128-bit value.
        && body.as_bytes()[0] <= b'7'
}

/// Why an id string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a valid {1} id")]
pub struct InvalidId(pub String, pub &'static str);

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The type prefix before the 26-character Crockford base32 ULID.
            pub const PREFIX: &'static str = $prefix;

            /// A new id stamped with the given time.
            pub fn generate(unix_ms: u64) -> Self {
                Self(format!("{}{}", $prefix, ulid_at(unix_ms)))
            }

            /// Accepts exactly the prefix followed by a ULID; anything else is an [`InvalidId`].
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                match raw.strip_prefix($prefix) {
                    Some(body) if is_ulid(body) => Ok(Self(raw.to_owned())),
                    _ => Err(InvalidId(truncate_for_message(raw), stringify!($name))),
                }
            }

            /// The id with its prefix, as stored and returned.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(raw: String) -> Result<Self, InvalidId> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An outbound subscription.
    SubscriptionId, "sub_");
prefixed_id!(
    /// One delivery of one event to one subscription; stable across its retries and replays.
    DeliveryId, "dlv_");
prefixed_id!(
    /// One HTTP attempt of a delivery; sent as `X-Puck-Delivery-Id`.
    AttemptId, "att_");
prefixed_id!(
    /// An inbound receiver endpoint.
    EndpointId, "ep_");
prefixed_id!(
    /// An investigation triggered by an inbound event.
    InvestigationId, "inv_");
prefixed_id!(
    /// An API key's public identifier (the key itself is never stored).
    ApiKeyId, "key_");
prefixed_id!(
    /// A tenant.
    AccountId, "acct_");

/// Keeps user input in error messages short and printable.
pub fn truncate_for_message(raw: &str) -> String {
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).take(64).collect();
    if raw.chars().count() > 64 {
        format!("{cleaned}…")
    } else {
        cleaned
    }
}

/// A producer-chosen or generated event id. Receivers deduplicate on it, so it is kept exactly
/// as given: 1 to 128 characters from `[A-Za-z0-9._:-]`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    /// Longest accepted event id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// A UUIDv7, time-ordered like the other ids.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Accepts 1 to [`Self::MAX_LEN`] characters of `[A-Za-z0-9._:-]`, kept exactly as given.
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidId(truncate_for_message(raw), "event"))
        }
    }

    /// The id exactly as the producer gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = InvalidId;
    fn try_from(raw: String) -> Result<Self, InvalidId> {
        Self::parse(&raw)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn time_floor_splits_ids_exactly_at_its_time(a in 0i64..(1i64 << 48), b in 0i64..(1i64 << 48)) {
            let id = DeliveryId::generate(a as u64);
            let floor = time_floor(DeliveryId::PREFIX, b);
            prop_assert_eq!(id.as_str() >= floor.as_str(), a >= b);
            prop_assert!(DeliveryId::parse(&floor).is_err());
        }
    }

    #[test]
    fn generated_ids_parse_back_and_sort_by_time() {
        let early = DeliveryId::generate(1_700_000_000_000);
        let late = DeliveryId::generate(1_700_000_000_001);
        assert_eq!(DeliveryId::parse(early.as_str()).unwrap(), early);
        assert!(early < late);
        assert!(early.as_str().starts_with("dlv_"));
        assert_eq!(early.as_str().len(), 4 + 26);
    }

    #[test]
    fn parse_rejects_wrong_prefix_length_and_alphabet() {
        let good = SubscriptionId::generate(1).to_string();
        assert!(DeliveryId::parse(&good).is_err());
        assert!(SubscriptionId::parse("sub_").is_err());
        assert!(SubscriptionId::parse(&good[..good.len() - 1]).is_err());
        assert!(SubscriptionId::parse(&good.replace(&good[4..5], "U")).is_err());
        assert!(SubscriptionId::parse("sub_0000000000000000000000000i").is_err());
    }

    #[test]
    fn event_id_accepts_uuids_and_rejects_spaces_and_long_values() {
        assert!(EventId::parse(EventId::generate().as_str()).is_ok());
        assert!(EventId::parse("evt-2026.05:01_x").is_ok());
        assert!(EventId::parse("has space").is_err());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse(&"a".repeat(129)).is_err());
    }

    proptest! {
        #[test]
        fn any_generated_id_round_trips(ms in 0u64..(1u64 << 48)) {
            let id = InvestigationId::generate(ms);
            prop_assert_eq!(InvestigationId::parse(id.as_str()).unwrap(), id);
        }

        #[test]
        fn parse_never_panics(raw in ".{0,40}") {
            let _ = EndpointId::parse(&raw);
            let _ = EventId::parse(&raw);
        }
    }
}
