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
        ("https://[2002:7f00:1::1]/", Err("url host is a private")), // 6to4 of 127.0.0.1
        ("https://[2002:5db8:d822::1]/", Err("url host is a private")), // 6to4 of a public address
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", Err("url host is a private")), // Teredo
        ("https://[64:ff9b:1::a00:1]/", Err("url host is a private")), // local-use NAT64
        ("https://[64:ff9b::5db8:d822]/", Ok(())),                   // well-known NAT64 of a public address
        ("https://[2001:4860:4860::8888]/", Ok(())),
        ("https://[2001:1::1]/", Ok(())),
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
                assert_eq!(msg.field, "url", "{raw}");
                assert!(msg.message.starts_with(prefix), "{raw}: {msg}");
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
    assert!(EventPattern::parse(".*").is_err());
    assert!(EventPattern::parse("*.*").is_err());
    assert!(EventPattern::parse("finding.unknown").is_err());
    assert_eq!(ns.to_string(), "investigation.*");
}

#[test]
fn star_matches_every_platform_type_and_no_operational_one() {
    let all = EventPattern::parse("*").unwrap();
    assert_eq!(all.to_string(), "*");
    for t in catalog::CATALOG {
        assert_eq!(all.matches(t.name), !t.name.starts_with("webhook."), "{}", t.name);
    }
    assert!(!all.matches("unknown.type"));
    let ops = EventPattern::parse("webhook.*").unwrap();
    assert!(ops.matches("webhook.delivery.dead_lettered") && ops.matches("webhook.subscription.disabled"));
    assert!(!ops.matches("finding.discovered"));
    let deliveries = EventPattern::parse("webhook.delivery.*").unwrap();
    assert!(
        deliveries.matches("webhook.delivery.dead_lettered") && !deliveries.matches("webhook.subscription.disabled")
    );
    assert!(EventPattern::parse("webhook.delivery.dead_lettered").unwrap().matches("webhook.delivery.dead_lettered"));
}

#[test]
fn custom_headers_follow_design_section_4() {
    let ok = parse_custom_headers(&serde_json::json!({"Authorization": "Splunk abc-123", "X-Env": "prod"})).unwrap();
    assert_eq!(ok.get("Authorization").map(String::as_str), Some("Splunk abc-123"));
    let eleven: serde_json::Map<String, Value> = (0..11).map(|i| (format!("X-H{i}"), Value::from("v"))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (serde_json::json!(["a"]), "headers must be an object"),
        (Value::Object(eleven), "headers must have at most 10 entries"),
        (serde_json::json!({"Bad Name": "v"}), "headers: \"Bad Name\" is not a valid header name"),
        (serde_json::json!({"": "v"}), "headers: \"\" is not a valid header name"),
        (serde_json::json!({"X-A:": "v"}), "headers: \"X-A:\" is not a valid header name"),
        (serde_json::json!({"Host": "v"}), "headers.Host is reserved"),
        (serde_json::json!({"content-type": "v"}), "headers.content-type is reserved"),
        (serde_json::json!({"Transfer-Encoding": "v"}), "headers.Transfer-Encoding is reserved"),
        (serde_json::json!({"User-Agent": "v"}), "headers.User-Agent is reserved"),
        (serde_json::json!({"Webhook-Signature": "v"}), "headers.Webhook-Signature is reserved"),
        (serde_json::json!({"x-puck-anything": "v"}), "headers.x-puck-anything is reserved"),
        (serde_json::json!({"TE": "v"}), "headers.TE is reserved"),
        (serde_json::json!({"te": "v"}), "headers.te is reserved"),
        (serde_json::json!({"Upgrade": "v"}), "headers.Upgrade is reserved"),
        (serde_json::json!({"Keep-Alive": "v"}), "headers.Keep-Alive is reserved"),
        (serde_json::json!({"Proxy-Authorization": "v"}), "headers.Proxy-Authorization is reserved"),
        (serde_json::json!({"proxy-connection": "v"}), "headers.proxy-connection is reserved"),
        (serde_json::json!({"Proxy-Anything": "v"}), "headers.Proxy-Anything is reserved"),
        (serde_json::json!({"Expect": "v"}), "headers.Expect is reserved"),
        (serde_json::json!({"Trailer": "v"}), "headers.Trailer is reserved"),
        (serde_json::json!({"Forwarded": "v"}), "headers.Forwarded is reserved"),
        (serde_json::json!({"X-Forwarded-For": "v"}), "headers.X-Forwarded-For is reserved"),
        (serde_json::json!({"x-forwarded-host": "v"}), "headers.x-forwarded-host is reserved"),
        (serde_json::json!({"X-Forwarded-Proto": "v"}), "headers.X-Forwarded-Proto is reserved"),
        (serde_json::json!({"X-A": ""}), "headers.X-A must be 1 to 1024"),
        (serde_json::json!({"X-A": "a".repeat(1025)}), "headers.X-A must be 1 to 1024"),
        (serde_json::json!({"X-A": "line\r\nInjected: 1"}), "headers.X-A must be 1 to 1024"),
        (serde_json::json!({"X-A": "caf\u{e9}"}), "headers.X-A must be 1 to 1024"),
        (serde_json::json!({"X-A": 1}), "headers.X-A must be a string"),
        (serde_json::json!({"X-A": "1", "x-a": "2"}), "headers.x-a is given twice"),
    ];
    for (input, want) in cases {
        let msg = parse_custom_headers(&input).expect_err(&input.to_string());
        assert!(msg.message.starts_with(want), "{input}: {msg}");
    }
    assert!(parse_custom_headers(&serde_json::json!({"X-A": "a".repeat(1024)})).is_ok());
    // Near misses of the reserved names are ordinary headers.
    for name in ["Authorization", "Tea", "X-Forwarded", "Proxy", "X-Upgrade", "Expected", "Trailers"] {
        assert!(parse_custom_headers(&serde_json::json!({ name: "v" })).is_ok(), "{name}");
    }
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
    assert_eq!(e, ValidationError::new("filters.tags", "filters.tags.n must be a string"));
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
            format!("[64:ff9b:1::{addr}]"),
            format!("[2002:{:x}:{:x}::1]", n >> 16, n & 0xffff),
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
    fn namespace_patterns_match_exactly_their_namespace(i in 0usize..catalog::CATALOG.len(), j in 0usize..catalog::CATALOG.len()) {
        let (a, b) = (catalog::CATALOG[i].name, catalog::CATALOG[j].name);
        let ns = a.split('.').next().unwrap();
        let pattern = EventPattern::parse(&format!("{ns}.*")).unwrap();
        prop_assert_eq!(pattern.matches(b), b.starts_with(&format!("{ns}.")));
        prop_assert_eq!(EventPattern::parse(b).unwrap().matches(a), i == j);
    }

    #[test]
    fn private_v4_is_always_refused(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255) {
        let url = format!("https://10.{a}.{b}.{c}/");
        prop_assert!(TargetUrl::parse(&url).is_err());
        let url = format!("https://127.{a}.{b}.{c}/");
        prop_assert!(TargetUrl::parse(&url).is_err());
    }
}
