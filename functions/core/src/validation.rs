//! Parsed domain values: target URLs, event types and patterns, severities, filters.
//!
//! Each type can only be built by `parse`, so a `TargetUrl` is always HTTPS with a public host and
//! an `EventPattern` always names a known event type or namespace. Errors are messages that name
//! the field, ready for a 400.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every event type the platform emits. The last two are operational (DESIGN §4.1): the service
/// emits them itself about an account's webhooks; producers cannot publish them.
pub const EVENT_TYPES: [&str; 10] = [
    "investigation.queued",
    "investigation.started",
    "investigation.completed",
    "investigation.failed",
    "finding.discovered",
    "chain.confirmed",
    "agent.registered",
    "agent.disconnected",
    OPERATIONAL_DEAD_LETTERED,
    OPERATIONAL_DISABLED,
];

/// A delivery became `failed_permanent` (retries exhausted, or the receiver answered 410).
pub const OPERATIONAL_DEAD_LETTERED: &str = "webhook.delivery.dead_lettered";
/// The service paused a subscription whose every attempt failed for `AUTO_DISABLE_AFTER_SECONDS`.
pub const OPERATIONAL_DISABLED: &str = "webhook.subscription.disabled";

/// Whether an event type is one of the service's own operational `webhook.*` events. None is
/// ever emitted about the delivery of one of these (no loops), and a catch-all pattern must never
/// match them: they are matched only when named or by `webhook.*`.
pub fn is_operational(event_type: &str) -> bool {
    event_type.starts_with("webhook.")
}

/// A known event type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventType(&'static str);

impl EventType {
    pub fn parse(raw: &str) -> Result<Self, String> {
        EVENT_TYPES
            .iter()
            .find(|t| **t == raw)
            .map(|t| Self(t))
            .ok_or_else(|| format!("event_type {} is not a known event type", quoted(raw)))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl TryFrom<String> for EventType {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> String {
        t.0.to_owned()
    }
}

/// What a subscription listens to: one event type, or every type of a namespace (`finding.*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventPattern {
    Exact(EventType),
    Namespace(String),
}

impl EventPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(ns) = raw.strip_suffix(".*") {
            let known = EVENT_TYPES.iter().any(|t| t.split('.').next() == Some(ns));
            return if known {
                Ok(Self::Namespace(ns.to_owned()))
            } else {
                Err(format!("events: {} does not match any known event type", quoted(raw)))
            };
        }
        EventType::parse(raw)
            .map(Self::Exact)
            .map_err(|_| format!("events: {} is not a known event type or prefix.* wildcard", quoted(raw)))
    }

    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Self::Exact(t) => t.as_str() == event_type,
            Self::Namespace(ns) => {
                event_type.strip_prefix(ns.as_str()).is_some_and(|rest| rest.starts_with('.'))
            }
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(t) => f.write_str(t.as_str()),
            Self::Namespace(ns) => write!(f, "{ns}.*"),
        }
    }
}

impl TryFrom<String> for EventPattern {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
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
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(field: &str, raw: &str) -> Result<Self, String> {
        match raw {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            _ => Err(format!("{field} must be one of low, medium, high, critical")),
        }
    }
}

/// Subscription filters; every given filter must pass for a delivery to be created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Tags and event tags share these bounds so a filter can always be satisfied.
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_KEY_LEN: usize = 128;
pub const MAX_TAG_VALUE_LEN: usize = 256;

/// Parses a JSON object of string → string tags, naming `field` in errors.
pub fn parse_tags(field: &str, value: &serde_json::Value) -> Result<BTreeMap<String, String>, String> {
    let obj = value.as_object().ok_or_else(|| format!("{field} must be an object of string values"))?;
    if obj.len() > MAX_TAGS {
        return Err(format!("{field} must have at most {MAX_TAGS} entries"));
    }
    let mut tags = BTreeMap::new();
    for (k, v) in obj {
        let v = v.as_str().ok_or_else(|| format!("{field}.{} must be a string", printable(k)))?;
        if k.is_empty() || k.len() > MAX_TAG_KEY_LEN || k.chars().any(char::is_control) {
            return Err(format!("{field} keys must be 1 to {MAX_TAG_KEY_LEN} printable characters"));
        }
        if v.len() > MAX_TAG_VALUE_LEN || v.chars().any(char::is_control) {
            return Err(format!("{field}.{} must be at most {MAX_TAG_VALUE_LEN} printable characters", printable(k)));
        }
        tags.insert(k.clone(), v.to_owned());
    }
    Ok(tags)
}

/// An HTTPS delivery target whose host is not an IP literal in a forbidden range.
///
/// Host names are checked again on the resolved address at send time (DESIGN §6); this check only
/// refuses what is visibly wrong at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetUrl(String);

pub const MAX_URL_LEN: usize = 2048;

impl TargetUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::parse_with(raw, false)
    }

    /// `allow_private` is the local stack's `ALLOW_PRIVATE_TARGETS` switch.
    pub fn parse_with(raw: &str, allow_private: bool) -> Result<Self, String> {
        if raw.len() > MAX_URL_LEN {
            return Err(format!("url must be at most {MAX_URL_LEN} characters"));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("url must not contain whitespace or control characters".into());
        }
        let url = url::Url::parse(raw).map_err(|e| format!("url is not a valid URL ({e})"))?;
        if url.scheme() != "https" {
            return Err("url must use https".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url must not contain credentials".into());
        }
        if url.fragment().is_some() {
            return Err("url must not contain a fragment".into());
        }
        // Port 0 cannot be connected to: such a subscription would only retry for three days.
        if url.port() == Some(0) {
            return Err("url port must be between 1 and 65535".into());
        }
        match url.host() {
            None => return Err("url must have a host".into()),
            Some(url::Host::Ipv4(ip)) if !allow_private && is_forbidden_ip(IpAddr::V4(ip)) => {
                return Err("url host is a private, loopback, link-local or metadata address".into())
            }
            Some(url::Host::Ipv6(ip)) if !allow_private && is_forbidden_ip(IpAddr::V6(ip)) => {
                return Err("url host is a private, loopback, link-local or metadata address".into())
            }
            Some(url::Host::Domain(d)) if !allow_private && is_local_name(d) => {
                return Err("url host is a local name".into())
            }
            _ => {}
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
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
/// service 169.254.169.254 and fd00:ec2::254), unspecified, shared, multicast, reserved, and the
/// IPv4-mapped/compatible/NAT64 forms of those.
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
}

/// Quotes user input for an error message, shortened and without control characters.
pub fn quoted(raw: &str) -> String {
    format!("\"{}\"", printable(raw))
}

fn printable(raw: &str) -> String {
    crate::ids::truncate_for_message(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn url_rules() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("https://example.com/hook", Ok(())),
            ("https://example.com:8443/a?b=c", Ok(())),
            ("https://93.184.216.34/x", Ok(())),
            ("http://example.com/hook", Err("url must use https")),
            ("ftp://example.com", Err("url must use https")),
            ("not a url", Err("url must not contain whitespace")),
            ("example.com/x", Err("url is not a valid URL")),
            ("https://user:pw@example.com/", Err("url must not contain credentials")),
            ("https://10.0.0.1/", Err("url host is a private")),
            ("https://127.0.0.1/", Err("url host is a private")),
            ("https://169.254.169.254/latest/meta-data", Err("url host is a private")),
            ("https://192.168.1.1/", Err("url host is a private")),
            ("https://172.16.5.4/", Err("url host is a private")),
            ("https://100.64.0.1/", Err("url host is a private")),
            ("https://0.0.0.0/", Err("url host is a private")),
            ("https://[::1]/", Err("url host is a private")),
            ("https://[::ffff:127.0.0.1]/", Err("url host is a private")),
            ("https://[::ffff:10.1.2.3]/", Err("url host is a private")),
            ("https://[fd00:ec2::254]/", Err("url host is a private")),
            ("https://[fe80::1]/", Err("url host is a private")),
            ("https://2130706433/", Err("url host is a private")), // decimal 127.0.0.1
            ("https://0177.0.0.1/", Err("url host is a private")), // octal 127.0.0.1
            ("https://0x7f.1/", Err("url host is a private")),
            ("https://localhost/", Err("url host is a local name")),
            ("https://localhost./", Err("url host is a local name")),
            ("https://api.localhost/", Err("url host is a local name")),
            ("https://LOCALHOST/", Err("url host is a local name")),
            ("https://example.com/#frag", Err("url must not contain a fragment")),
            ("https://", Err("url is not a valid URL")),
            ("https://example.com:99999/", Err("url is not a valid URL")),
            ("https://example.com:0/", Err("url port must be between 1 and 65535")),
            ("https://example.com:65535/", Ok(())),
        ];
        for (raw, want) in cases {
            let got = TargetUrl::parse(raw);
            match want {
                Ok(()) => assert!(got.is_ok(), "{raw}: {got:?}"),
                Err(prefix) => {
                    let msg = got.expect_err(raw);
                    assert!(msg.starts_with(prefix), "{raw}: {msg}");
                }
            }
        }
    }

    #[test]
    fn allow_private_admits_loopback() {
        assert!(TargetUrl::parse_with("https://127.0.0.1:8443/hook", true).is_ok());
        assert!(TargetUrl::parse_with("http://127.0.0.1:8443/hook", true).is_err());
    }

    #[test]
    fn event_patterns() {
        let exact = EventPattern::parse("finding.discovered").unwrap();
        assert!(exact.matches("finding.discovered"));
        assert!(!exact.matches("finding.discovered2"));
        let ns = EventPattern::parse("investigation.*").unwrap();
        assert!(ns.matches("investigation.completed"));
        assert!(!ns.matches("investigationx.completed"));
        assert!(!ns.matches("finding.discovered"));
        assert!(EventPattern::parse("nope.*").is_err());
        assert!(EventPattern::parse("*").is_err());
        assert!(EventPattern::parse("finding.unknown").is_err());
        assert_eq!(ns.to_string(), "investigation.*");
    }

    #[test]
    fn severity_orders() {
        assert!(Severity::Low < Severity::Medium && Severity::High < Severity::Critical);
        assert!(Severity::parse("min_severity", "urgent").is_err());
    }

    #[test]
    fn tags_must_be_string_values() {
        let ok = parse_tags("tags", &serde_json::json!({"team": "red"})).unwrap();
        assert_eq!(ok.get("team").map(String::as_str), Some("red"));
        let e = parse_tags("filters.tags", &serde_json::json!({"n": 1})).unwrap_err();
        assert_eq!(e, "filters.tags.n must be a string");
        assert!(parse_tags("tags", &serde_json::json!(["a"])).is_err());
    }

    proptest! {
        #[test]
        fn url_parse_never_panics_and_accepts_only_https(raw in "\\PC{0,80}") {
            if let Ok(u) = TargetUrl::parse(&raw) {
                prop_assert!(u.as_str().starts_with("https://"));
            }
        }

        #[test]
        fn every_spelling_of_a_forbidden_v4_is_refused(
            addr in prop_oneof![
                (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(b, c, d)| Ipv4Addr::new(127, b, c, d)),
                (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(b, c, d)| Ipv4Addr::new(10, b, c, d)),
                (any::<u8>(), any::<u8>()).prop_map(|(c, d)| Ipv4Addr::new(169, 254, c, d)),
                (any::<u8>(), any::<u8>()).prop_map(|(c, d)| Ipv4Addr::new(192, 168, c, d)),
                (16u8..32, any::<u8>(), any::<u8>()).prop_map(|(b, c, d)| Ipv4Addr::new(172, b, c, d)),
            ],
            port in proptest::option::of(1u16..),
        ) {
            let n = u32::from(addr);
            let [a, b, c, d] = addr.octets();
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            for host in [
                addr.to_string(),
                format!("{addr}."),
                n.to_string(),
                format!("0x{n:x}"),
                format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
                format!("[::ffff:{addr}]"),
                format!("[::ffff:{:x}:{:x}]", n >> 16, n & 0xffff),
                format!("[64:ff9b::{addr}]"),
            ] {
                let url = format!("https://{host}{port}/hook");
                prop_assert!(TargetUrl::parse(&url).is_err(), "{} was accepted", url);
            }
        }

        #[test]
        fn public_v4_in_any_spelling_is_accepted(addr in any::<u32>().prop_map(Ipv4Addr::from)) {
            prop_assume!(!is_forbidden_ip(IpAddr::V4(addr)));
            let dotted = format!("https://{addr}/");
            let decimal = format!("https://{}/", u32::from(addr));
            prop_assert!(TargetUrl::parse(&dotted).is_ok(), "{}", dotted);
            prop_assert!(TargetUrl::parse(&decimal).is_ok(), "{}", decimal);
        }

        #[test]
        fn namespace_patterns_match_exactly_their_namespace(i in 0usize..EVENT_TYPES.len(), j in 0usize..EVENT_TYPES.len()) {
            let ns = EVENT_TYPES[i].split('.').next().unwrap();
            let pattern = EventPattern::parse(&format!("{ns}.*")).unwrap();
            prop_assert_eq!(pattern.matches(EVENT_TYPES[j]), EVENT_TYPES[j].starts_with(&format!("{ns}.")));
            prop_assert_eq!(EventPattern::parse(EVENT_TYPES[j]).unwrap().matches(EVENT_TYPES[i]), i == j);
        }

        #[test]
        fn private_v4_is_always_refused(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255) {
            let url = format!("https://10.{a}.{b}.{c}/");
            prop_assert!(TargetUrl::parse(&url).is_err());
            let url = format!("https://127.{a}.{b}.{c}/");
            prop_assert!(TargetUrl::parse(&url).is_err());
        }
    }
}
