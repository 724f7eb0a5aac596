//! Wall-clock instants in milliseconds, serialised as RFC 3339 (`2026-05-03T14:22:01.123Z`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time; use cases take it from a [`crate::ports::Clock`] instead.
    pub fn now() -> Self {
        Self((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// An instant from Unix seconds (e.g. a signed timestamp or a DynamoDB TTL).
    pub fn from_unix_seconds(secs: i64) -> Self {
        Self(secs * 1000)
    }

    /// Milliseconds since the epoch.
    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down (also for instants before 1970).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `ms` later (earlier if negative), saturating instead of overflowing.
    pub fn plus_ms(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// `secs` later (earlier if negative), saturating instead of overflowing.
    pub fn plus_seconds(self, secs: i64) -> Self {
        self.plus_ms(secs.saturating_mul(1000))
    }

    /// Always millisecond precision (`…:01.120Z`), so stored values sort as text too.
    pub fn rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&format).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
    }

    /// Parses any RFC 3339 instant, truncated to milliseconds; None if it is not one.
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(raw, &Rfc3339).ok()?;
        Some(Self((t.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse_rfc3339(&raw).ok_or_else(|| serde::de::Error::custom("invalid RFC 3339 time"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = Timestamp(1_777_818_121_120);
        let s = t.rfc3339();
        assert_eq!(s, "2026-05-03T14:22:01.120Z");
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("2026-05-03T14:22:01Z"), Some(Timestamp(1_777_818_121_000)));
    }
}
