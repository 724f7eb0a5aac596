//! Parsed domain values: target URLs, event types and patterns, severities, filters.
//!
//! Each type can only be built by `parse`, so a `TargetUrl` is always HTTPS with a public host and
//! an `EventPattern` always names a known event type or namespace. Errors are
//! [`ValidationError`]s that name the field, ready for a 400.

use crate::catalog;
pub use crate::error::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A delivery became `failed_permanent` (retries exhausted, or the receiver answered 410).
pub const OPERATIONAL_DEAD_LETTERED: &str = "webhook.delivery.dead_lettered";
/// The service paused a subscription whose every attempt failed for `AUTO_DISABLE_AFTER_SECONDS`.
pub const OPERATIONAL_DISABLED: &str = "webhook.subscription.disabled";
/// A subscription whose last attempt had succeeded (or that had none) failed several in a row.
pub const OPERATIONAL_FAILING: &str = "webhook.subscription.failing";
/// The first successful attempt of a subscription after its `failing` event.
pub const OPERATIONAL_RECOVERED: &str = "webhook.subscription.recovered";

/// Whether an event type is one of the service's own operational `webhook.*` events (the
/// catalog's [`crate::catalog::OPERATIONAL_GROUP`]). None is ever emitted about the delivery of
/// one of these (no loops), and `"*"` never matches them.
pub fn is_operational(event_type: &str) -> bool {
    crate::catalog::find(event_type).is_some_and(|t| t.is_operational())
}

/// A known event type: one of the [`crate::catalog`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventType(&'static str);

impl EventType {
    /// Accepts only a type of the catalog; anything else is a 400 on `event_type`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        catalog::find(raw).map(|t| Self(t.name)).ok_or_else(|| {
            ValidationError::new("event_type", format!("event_type {} is not a known event type", quoted(raw)))
        })
    }

    /// The dotted type, e.g. `investigation.created`.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// The catalog entry of this type.
    pub fn info(&self) -> &'static catalog::EventTypeInfo {
        catalog::find(self.0).expect("an EventType is always in the catalog")
    }
}

impl TryFrom<String> for EventType {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, ValidationError> {
        Self::parse(&raw)
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> String {
        t.0.to_owned()
    }
}

/// What a subscription listens to: one event type, every type under a prefix (`finding.*`,
/// `webhook.*`), or `"*"`: every platform type (not the operational `webhook.*` types, docs/api.md, "Operational events").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventPattern {
    /// Exactly this event type.
    Exact(EventType),
    /// The prefix before `.*`, e.g. `finding` or `webhook.delivery`.
    Prefix(String),
    /// `"*"`: every platform type, never the operational `webhook.*` types.
    All,
}

impl EventPattern {
    /// Parses `*`, `prefix.*` (the prefix must cover a catalog type) or an exact type; errors name `events`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw == "*" {
            return Ok(Self::All);
        }
        if let Some(prefix) = raw.strip_suffix(".*") {
            let pattern = Self::Prefix(prefix.to_owned());
            let known =
                !prefix.is_empty() && !prefix.contains('*') && catalog::CATALOG.iter().any(|t| pattern.matches(t.name));
            return if known {
                Ok(pattern)
            } else {
                Err(ValidationError::new(
                    "events",
                    format!("events: {} does not match any known event type", quoted(raw)),
                ))
            };
        }
        EventType::parse(raw).map(Self::Exact).map_err(|_| {
            ValidationError::new(
                "events",
                format!("events: {} is not a known event type, prefix.* wildcard or \"*\"", quoted(raw)),
            )
        })
    }

    /// Whether `event_type` is matched; `All` matches only catalog types, never operational ones.
    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Self::Exact(t) => t.as_str() == event_type,
            Self::Prefix(prefix) => event_type.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('.')),
            Self::All => catalog::find(event_type).is_some_and(|t| !t.is_operational()),
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(t) => f.write_str(t.as_str()),
            Self::Prefix(prefix) => write!(f, "{prefix}.*"),
            Self::All => f.write_str("*"),
        }
    }
}

impl TryFrom<String> for EventPattern {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, ValidationError> {
        Self::parse(&raw)
    }
}

impl From<EventPattern> for String {
    fn from(p: EventPattern) -> String {
        p.to_string()
    }
}

/// Event severity, ordered low < medium < high < critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `low`: informational.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `critical`: the highest; every `min_severity` lets it through.
    Critical,
}

impl Severity {
    /// Parses a wire name (`low` … `critical`); the error names `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            _ => Err(ValidationError::new(field, format!("{field} must be one of low, medium, high, critical"))),
        }
    }
}

/// Subscription filters; every given filter must pass for a delivery to be created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    /// Deliver only events of at least this severity; events without a severity always pass. None: no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Every pair must be present in the event's tags; empty: no tag filter.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// A condition on the event's `data`; None: no payload filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<crate::filters::payload::PayloadFilter>,
}

/// Tags and event tags share these bounds so a filter can always be satisfied.
pub const MAX_TAGS: usize = 50;
/// Longest tag key, in bytes (tags and filters alike).
pub const MAX_TAG_KEY_LEN: usize = 128;
/// Longest tag value, in bytes (tags and filters alike).
pub const MAX_TAG_VALUE_LEN: usize = 256;

/// Parses a JSON object of string → string tags, naming `field` in errors.
pub fn parse_tags(field: &str, value: &serde_json::Value) -> Result<BTreeMap<String, String>, ValidationError> {
    let obj = value
        .as_object()
        .ok_or_else(|| ValidationError::new(field, format!("{field} must be an object of string values")))?;
    if obj.len() > MAX_TAGS {
        return Err(ValidationError::new(field, format!("{field} must have at most {MAX_TAGS} entries")));
    }
    let mut tags = BTreeMap::new();
    for (k, v) in obj {
        let v = v
            .as_str()
            .ok_or_else(|| ValidationError::new(field, format!("{field}.{} must be a string", printable(k))))?;
        if k.is_empty() || k.len() > MAX_TAG_KEY_LEN || k.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                format!("{field} keys must be 1 to {MAX_TAG_KEY_LEN} printable characters"),
            ));
        }
        if v.len() > MAX_TAG_VALUE_LEN || v.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                format!("{field}.{} must be at most {MAX_TAG_VALUE_LEN} printable characters", printable(k)),
            ));
        }
        tags.insert(k.clone(), v.to_owned());
    }
    Ok(tags)
}

/// Custom request headers per subscription (docs/api.md): at most this many.
pub const MAX_CUSTOM_HEADERS: usize = 10;
/// Longest custom header name, in bytes.
pub const MAX_HEADER_NAME_LEN: usize = 256;
/// Longest custom header value, in bytes.
pub const MAX_HEADER_VALUE_LEN: usize = 1024;
/// Names the service sets itself, or that steer the connection, a proxy or the request's framing
/// rather than reach the receiver's application (`TE`, `Upgrade`, `Expect`, `Forwarded`, …).
const RESERVED_HEADERS: [&str; 13] = [
    "host",
    "content-type",
    "content-length",
    "connection",
    "transfer-encoding",
    "user-agent",
    "te",
    "upgrade",
    "keep-alive",
    "expect",
    "trailer",
    "forwarded",
    "proxy-connection",
];
/// Whole families of reserved names: ours (`webhook-*`, `X-Puck-*`), proxy hop headers
/// (`Proxy-*`) and forwarding claims (`X-Forwarded-*`).
const RESERVED_HEADER_PREFIXES: [&str; 4] = ["webhook-", "x-puck-", "proxy-", "x-forwarded-"];

/// Whether a custom header may not use `name` (compared case-insensitively).
pub fn is_reserved_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_HEADERS.contains(&lower.as_str()) || RESERVED_HEADER_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// An RFC 9110 `token`: what a header field name must be.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A bad `headers` entry; the message names the header.
fn headers_error(message: impl Into<String>) -> ValidationError {
    ValidationError::new("headers", message)
}

/// One custom header name: an RFC 9110 token, not reserved.
pub fn parse_custom_header_name(name: &str) -> Result<(), ValidationError> {
    if name.len() > MAX_HEADER_NAME_LEN || !is_token(name) {
        return Err(headers_error(format!(
            "headers: {} is not a valid header name (an RFC 9110 token of at most {MAX_HEADER_NAME_LEN} characters)",
            quoted(name)
        )));
    }
    if is_reserved_header(name) {
        return Err(headers_error(format!("headers.{} is reserved and cannot be set", printable(name))));
    }
    Ok(())
}

/// One custom header value: 1 to 1,024 printable ASCII characters (what HTTP sends as is).
pub fn parse_custom_header_value(name: &str, value: &Value) -> Result<String, ValidationError> {
    let v = value.as_str().ok_or_else(|| headers_error(format!("headers.{} must be a string", printable(name))))?;
    if v.is_empty() || v.len() > MAX_HEADER_VALUE_LEN || !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(headers_error(format!(
            "headers.{} must be 1 to {MAX_HEADER_VALUE_LEN} printable ASCII characters",
            printable(name)
        )));
    }
    Ok(v.to_owned())
}

/// The `headers` object of a subscription: name → value, names unique ignoring case.
pub fn parse_custom_headers(value: &Value) -> Result<BTreeMap<String, String>, ValidationError> {
    let obj =
        value.as_object().ok_or_else(|| headers_error("headers must be an object of header name to string value"))?;
    if obj.len() > MAX_CUSTOM_HEADERS {
        return Err(headers_error(format!("headers must have at most {MAX_CUSTOM_HEADERS} entries")));
    }
    let mut headers = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, v) in obj {
        parse_custom_header_name(name)?;
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(headers_error(format!(
                "headers.{} is given twice (header names ignore case)",
                printable(name)
            )));
        }
        headers.insert(name.clone(), parse_custom_header_value(name, v)?);
    }
    Ok(headers)
}

/// An HTTPS delivery target whose host is not an IP literal in a forbidden range.
///
/// Host names are checked again on the resolved address at send time (docs/delivery.md); this check only
/// refuses what is visibly wrong at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetUrl(String);

/// Longest accepted URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;

impl TargetUrl {
    /// Validates `raw` with private addresses refused: the API's check.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::parse_with(raw, false)
    }

    /// `allow_private` is the local stack's `ALLOW_PRIVATE_TARGETS` switch.
    pub fn parse_with(raw: &str, allow_private: bool) -> Result<Self, ValidationError> {
        if raw.len() > MAX_URL_LEN {
            return Err(invalid_url(format!("url must be at most {MAX_URL_LEN} characters")));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid_url("url must not contain whitespace or control characters"));
        }
        let url = url::Url::parse(raw).map_err(|e| invalid_url(format!("url is not a valid URL ({e})")))?;
        if url.scheme() != "https" {
            return Err(invalid_url("url must use https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid_url("url must not contain credentials"));
        }
        if url.fragment().is_some() {
            return Err(invalid_url("url must not contain a fragment"));
        }
        // Port 0 cannot be connected to: such a subscription would only retry for three days.
        if url.port() == Some(0) {
            return Err(invalid_url("url port must be between 1 and 65535"));
        }
        match url.host() {
            None => return Err(invalid_url("url must have a host")),
            Some(url::Host::Ipv4(ip)) if !allow_private && is_forbidden_ip(IpAddr::V4(ip)) => {
                return Err(invalid_url("url host is a private, loopback, link-local or metadata address"))
            }
            Some(url::Host::Ipv6(ip)) if !allow_private && is_forbidden_ip(IpAddr::V6(ip)) => {
                return Err(invalid_url("url host is a private, loopback, link-local or metadata address"))
            }
            Some(url::Host::Domain(d)) if !allow_private && is_local_name(d) => {
                return Err(invalid_url("url host is a local name"))
            }
            _ => {}
        }
        Ok(Self(url.to_string()))
    }

    /// The normalised URL as stored and sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid_url(message: impl Into<String>) -> ValidationError {
    ValidationError::new("url", message)
}

/// Names that only ever mean this machine or its network.
fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.ends_with(".local")
        || h.ends_with(".internal")
        || h == "metadata"
        || h == "metadata.google.internal"
}

impl TryFrom<String> for TargetUrl {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, ValidationError> {
        // Stored values were validated when written; the dev switch may have allowed private
        // hosts, so reading back does not re-apply the address check.
        Self::parse_with(&raw, true)
    }
}

impl From<TargetUrl> for String {
    fn from(u: TargetUrl) -> String {
        u.0
    }
}

/// Addresses a webhook must never reach: private, loopback, link-local (incl. the cloud metadata
/// service 169.254.169.254 and fd00:ec2::254), unspecified, shared, multicast, reserved, the
/// IPv4-mapped/compatible/NAT64 forms of those, and the tunnelling prefixes that can carry any IPv4
/// address (6to4 2002::/16, Teredo 2001::/32, local-use NAT64 64:ff9b:1::/48).
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let seg = ip.segments();
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) embed an IPv4 address.
    if seg[..6] == [0, 0, 0, 0, 0, 0] || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
        if ip.is_unspecified() || ip.is_loopback() || is_forbidden_v4(v4) {
            return true;
        }
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254)
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || seg[0] == 0x2002 // 6to4: relays reach whatever IPv4 address is embedded
        || (seg[0] == 0x2001 && seg[1] == 0) // Teredo: the same, through a tunnel
        || seg[..3] == [0x64, 0xff9b, 1] // local-use NAT64 (64:ff9b:1::/48): a private translator
}

/// Quotes user input for an error message, shortened and without control characters.
pub fn quoted(raw: &str) -> String {
    format!("\"{}\"", printable(raw))
}

fn printable(raw: &str) -> String {
    crate::ids::truncate_for_message(raw)
}

#[cfg(test)]
mod tests;
