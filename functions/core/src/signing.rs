//! Signing deliveries (docs/receiving.md): the headers of every attempt.
//!
//! Two schemes over the same bytes, so receivers can use either our verification crate or any
//! Standard Webhooks library:
//! - `X-Puck-Signature` (and alias `X-Puck-Signature-256`): `t=<unix>,v1=<hex>` with
//!   HMAC-SHA256(key = `whsec_…` string, message = `"<t>.<body>"`);
//! - `webhook-signature`: `v1,<base64>` with HMAC-SHA256(key = base64-decoded secret,
//!   message = `"<webhook-id>.<t>.<body>"`).
//!
//! A subscription with `signature_scheme: ed25519` carries `v1a` entries instead (Standard
//! Webhooks' asymmetric scheme): `v1a=<base64>` in `X-Puck-Signature` and `v1a,<base64>` in
//! `webhook-signature`, Ed25519 signatures over the same messages ([`crate::signing_key`]).
//!
//! During a rotation's overlap window each scheme carries one signature per key, newest first.

use crate::ids::{AttemptId, EventId};
use crate::signing_key::SigningKey;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;

type HmacSha256 = Hmac<Sha256>;

/// `User-Agent` of every outbound attempt: `puck-webhooks/<crate version>`.
pub const USER_AGENT: &str = concat!("puck-webhooks/", env!("CARGO_PKG_VERSION"));

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `t=<t>,v1=<hex>[,v1=<hex>]`, or `t=<t>,v1a=<base64>[,v1a=<base64>]` for Ed25519 keys.
pub fn puck_signature(secrets: &[&SigningKey], timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mut header = format!("t={t}");
    for key in secrets {
        let message: [&[u8]; 3] = [t.as_bytes(), b".", body];
        match key {
            SigningKey::Hmac(s) => {
                header.push_str(",v1=");
                header.push_str(&hex::encode(hmac(s.expose().as_bytes(), &message)));
            }
            SigningKey::Ed25519(k) => {
                header.push_str(",v1a=");
                header.push_str(&k.sign_base64(&message));
            }
        }
    }
    header
}

/// `v1,<base64>[ v1,<base64>]`, or `v1a,<base64>[ v1a,<base64>]` for Ed25519 keys.
pub fn standard_signature(secrets: &[&SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let message: [&[u8]; 5] = [msg_id.as_bytes(), b".", t.as_bytes(), b".", body];
    secrets
        .iter()
        .map(|key| match key {
            SigningKey::Hmac(s) => format!("v1,{}", STANDARD.encode(hmac(s.standard_key(), &message))),
            SigningKey::Ed25519(k) => format!("v1a,{}", k.sign_base64(&message)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything needed to sign one attempt.
#[derive(Debug)]
pub struct AttemptToSign<'a> {
    /// Sent as `x-puck-event-id` and `webhook-id` (the Standard Webhooks message id); same on every attempt.
    pub event_id: &'a EventId,
    /// Dotted event type, sent as `x-puck-event-type` so receivers can route before parsing.
    pub event_type: &'a str,
    /// `att_` id of this attempt, sent as `x-puck-delivery-id`; unique per attempt.
    pub attempt_id: &'a AttemptId,
    /// Signing time in Unix seconds; receivers reject it outside their tolerance.
    pub timestamp: i64,
    /// The exact body bytes that are signed and sent.
    pub body: &'a str,
    /// Current key (secret or Ed25519 private key) first, then the previous one while its
    /// overlap window lasts.
    pub secrets: &'a [&'a SigningKey],
}

/// The full header set of one attempt.
pub fn delivery_headers(a: &AttemptToSign<'_>) -> Vec<(String, String)> {
    let body = a.body.as_bytes();
    let puck = puck_signature(a.secrets, a.timestamp, body);
    vec![
        ("content-type".into(), "application/json".into()),
        ("user-agent".into(), USER_AGENT.into()),
        ("x-puck-event-id".into(), a.event_id.to_string()),
        ("x-puck-event-type".into(), a.event_type.to_owned()),
        ("x-puck-delivery-id".into(), a.attempt_id.to_string()),
        ("x-puck-signature".into(), puck.clone()),
        ("x-puck-signature-256".into(), puck),
        ("webhook-id".into(), a.event_id.to_string()),
        ("webhook-timestamp".into(), a.timestamp.to_string()),
        ("webhook-signature".into(), standard_signature(a.secrets, a.event_id.as_str(), a.timestamp, body)),
    ]
}

/// Headers for the delivery log: signatures replaced by `[redacted]` (they are valid for 5
/// minutes and reveal nothing, but there is no reason to keep them), and the values of the
/// subscription's custom headers (`custom`, which may be credentials) and of `Authorization`
/// (a custom header or the OAuth bearer token) by `***`.
pub fn redacted(headers: &[(String, String)], custom: &[String]) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let value = if k.eq_ignore_ascii_case("authorization") || custom.iter().any(|c| c.eq_ignore_ascii_case(k)) {
                crate::model::REDACTED.to_owned()
            } else if k.contains("signature") {
                "[redacted]".to_owned()
            } else {
                v.clone()
            };
            (k.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SigningSecret;
    use crate::signing_key::Ed25519Key;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    fn whsec() -> SigningSecret {
        // base64 of 32 bytes 0x00..0x1f
        SigningSecret::parse("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
    }

    fn secret() -> SigningKey {
        SigningKey::Hmac(whsec())
    }

    fn ed25519_verifies(key: &Ed25519Key, message: &[u8], sig_base64: &str) -> bool {
        let sig = Signature::from_slice(&STANDARD.decode(sig_base64).unwrap()).unwrap();
        VerifyingKey::from_bytes(key.public_key().as_bytes()).unwrap().verify(message, &sig).is_ok()
    }

    #[test]
    fn puck_signature_is_hmac_of_timestamp_dot_body_with_full_secret() {
        let (s, w) = (secret(), whsec());
        let header = puck_signature(&[&s], 1_700_000_000, b"{}");
        let expected = hex::encode(hmac(w.expose().as_bytes(), &[b"1700000000.{}"]));
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
    }

    #[test]
    fn rotation_adds_a_second_signature_for_each_scheme() {
        let (new, old) = (secret(), SigningKey::Hmac(SigningSecret::generate()));
        let puck = puck_signature(&[&new, &old], 1, b"x");
        assert_eq!(puck.matches(",v1=").count(), 2);
        let std = standard_signature(&[&new, &old], "evt", 1, b"x");
        assert_eq!(std.split(' ').count(), 2);
    }

    #[test]
    fn standard_signature_matches_the_spec_construction() {
        let s = secret();
        let sig = standard_signature(&[&s], "msg_1", 1_700_000_000, b"{}");
        let expected = STANDARD.encode(hmac(whsec().standard_key(), &[b"msg_1.1700000000.{}"]));
        assert_eq!(sig, format!("v1,{expected}"));
    }

    #[test]
    fn ed25519_keys_sign_v1a_entries_over_the_same_messages_as_v1() {
        let (new, old) = (Ed25519Key::generate(), Ed25519Key::generate());
        let keys = [SigningKey::Ed25519(new.clone()), SigningKey::Ed25519(old.clone())];
        let refs: Vec<&SigningKey> = keys.iter().collect();
        let puck = puck_signature(&refs, 1_700_000_000, b"{}");
        let entries: Vec<&str> = puck.strip_prefix("t=1700000000,v1a=").unwrap().split(",v1a=").collect();
        assert_eq!(entries.len(), 2, "{puck}");
        assert!(ed25519_verifies(&new, b"1700000000.{}", entries[0]), "newest first");
        assert!(ed25519_verifies(&old, b"1700000000.{}", entries[1]));
        assert!(!ed25519_verifies(&old, b"1700000000.{}", entries[0]));
        let std = standard_signature(&refs, "msg_1", 1_700_000_000, b"{}");
        let entries: Vec<&str> = std.split(' ').map(|e| e.strip_prefix("v1a,").unwrap()).collect();
        assert!(ed25519_verifies(&new, b"msg_1.1700000000.{}", entries[0]));
        assert!(ed25519_verifies(&old, b"msg_1.1700000000.{}", entries[1]));
    }

    #[test]
    fn redaction_hides_every_signature_header() {
        let s = secret();
        let event_id = EventId::generate();
        let attempt_id = AttemptId::generate(0);
        let headers = delivery_headers(&AttemptToSign {
            event_id: &event_id,
            event_type: "chain.confirmed",
            attempt_id: &attempt_id,
            timestamp: 5,
            body: "{}",
            secrets: &[&s],
        });
        let mut headers = headers;
        headers.push(("Authorization".to_owned(), "Splunk tok".to_owned()));
        let r = redacted(&headers, &["authorization".to_owned()]);
        assert_eq!(r["Authorization"], "***");
        assert_eq!(r["x-puck-signature"], "[redacted]");
        assert_eq!(r["x-puck-signature-256"], "[redacted]");
        assert_eq!(r["webhook-signature"], "[redacted]");
        assert_eq!(r["x-puck-event-id"], event_id.to_string());
        assert_eq!(r["webhook-id"], event_id.to_string());
        let bearer = redacted(&[("authorization".to_owned(), "Bearer eyJ.tok".to_owned())], &[]);
        assert_eq!(bearer["authorization"], "***", "an OAuth bearer token is redacted too");
    }
}
