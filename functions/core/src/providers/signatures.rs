//! Provider signature checks over the raw body (docs/inbound.md): GitHub's
//! `X-Hub-Signature-256`, CrowdStrike's `X-CS-Primary-Signature`, and for generic senders either
//! Standard Webhooks or `X-Signature-256`.
//!
//! Pure functions of bytes, header pairs, the secret and the current time, so each rule is pinned
//! by table-driven tests, including GitHub's published test vector and the Standard Webhooks one.
//!
//! A verified request also yields its replay key ([`Verified`]), taken only from what the
//! signature covers: a captured request sent again with fresh unsigned headers (a new
//! `X-GitHub-Delivery`, a new `Idempotency-Key`) keeps the key of the first, so it finds the first
//! investigation instead of opening another (docs/inbound.md, replays).

use super::Headers;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far a signed timestamp (Standard Webhooks, CrowdStrike) may be from our clock.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// A request whose signature checked out, with the key that every replay of it shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    replay_key: String,
}

impl Verified {
    fn mac(mac: &[u8]) -> Self {
        Self { replay_key: format!("sig:{}", hex::encode(Sha256::digest(mac))) }
    }

    /// `sig:<hex SHA-256 of the verified MAC>` for the schemes that sign the body (GitHub,
    /// CrowdStrike, generic `X-Signature-256`): the MAC is a function of the signed bytes, so the
    /// same signed request always gives the same key, however its signature header is spelled
    /// (hex case, padding). For Standard Webhooks, the signed `webhook-id`: a sender's retry is
    /// signed afresh (new timestamp) under the same id.
    pub fn replay_key(&self) -> &str {
        &self.replay_key
    }
}

/// Why a signature was refused. Only logged: the HTTP answer is always the same 401, so a caller
/// cannot tell which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The named signature header is absent.
    #[error("signature header {0} is missing")]
    MissingHeader(&'static str),
    /// The named header is present but not in the provider's format.
    #[error("signature header {0} is malformed")]
    Malformed(&'static str),
    /// The signed timestamp is more than [`TIMESTAMP_TOLERANCE_SECS`] from our clock (a possible replay).
    #[error("signed timestamp is outside the tolerance")]
    StaleTimestamp,
    /// Well-formed, but no signature matches the body under the endpoint's secret.
    #[error("signature does not match")]
    Mismatch,
}

fn mac_matches(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else {
        return false;
    };
    for p in parts {
        mac.update(p);
    }
    // Constant-time comparison.
    mac.verify_slice(expected).is_ok()
}

/// Checks a `sha256=<hex>` header value (GitHub's `X-Hub-Signature-256`, generic
/// `X-Signature-256`).
fn verify_hex_sha256(header: &'static str, value: &str, secret: &str, body: &[u8]) -> Result<Verified, SignatureError> {
    let hex_part = value.strip_prefix("sha256=").ok_or(SignatureError::Malformed(header))?;
    let expected = hex::decode(hex_part.trim()).map_err(|_| SignatureError::Malformed(header))?;
    if mac_matches(secret.as_bytes(), &[body], &expected) {
        Ok(Verified::mac(&expected))
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// CrowdStrike: the MAC covers the body and `X-CS-Delivery-Timestamp`, which must parse and be
/// within the tolerance; one that does not parse is refused, since nothing then bounds a replay.
fn verify_crowdstrike(headers: &Headers, secret: &str, body: &[u8], now_secs: i64) -> Result<Verified, SignatureError> {
    let value = headers.get("x-cs-primary-signature").ok_or(SignatureError::MissingHeader("X-CS-Primary-Signature"))?;
    let ts = headers.get("x-cs-delivery-timestamp").ok_or(SignatureError::MissingHeader("X-CS-Delivery-Timestamp"))?;
    match timestamp_within_tolerance(ts, now_secs) {
        None => return Err(SignatureError::Malformed("X-CS-Delivery-Timestamp")),
        Some(false) => return Err(SignatureError::StaleTimestamp),
        Some(true) => {}
    }
    let expected = STANDARD.decode(value).map_err(|_| SignatureError::Malformed("X-CS-Primary-Signature"))?;
    if mac_matches(secret.as_bytes(), &[body, ts.as_bytes()], &expected) {
        Ok(Verified::mac(&expected))
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Parses a Unix timestamp in seconds (or milliseconds, when it is that large) or RFC 3339 and
/// checks it is within the tolerance of `now_secs`. `None` when the value is in neither form.
fn timestamp_within_tolerance(raw: &str, now_secs: i64) -> Option<bool> {
    let secs = match raw.parse::<i64>() {
        Ok(n) if n > 100_000_000_000 => n / 1000,
        Ok(n) => n,
        Err(_) => crate::time::Timestamp::parse_rfc3339(raw)?.unix_seconds(),
    };
    Some((now_secs - secs).abs() <= TIMESTAMP_TOLERANCE_SECS)
}

/// The Standard Webhooks key: base64-decoded after `whsec_`, otherwise the raw secret bytes.
fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn verify_standard_webhooks(
    headers: &Headers,
    secret: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<Verified, SignatureError> {
    let signatures = headers.get("webhook-signature").ok_or(SignatureError::MissingHeader("webhook-signature"))?;
    let id = headers.get("webhook-id").ok_or(SignatureError::MissingHeader("webhook-id"))?;
    let ts = headers.get("webhook-timestamp").ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
    let ts_secs: i64 = ts.parse().map_err(|_| SignatureError::Malformed("webhook-timestamp"))?;
    if (now_secs - ts_secs).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::StaleTimestamp);
    }
    let key = standard_webhooks_key(secret);
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
    // Several space-separated `v1,<base64>` entries (key rotation); any one may match.
    let mut saw_v1 = false;
    for entry in signatures.split_whitespace() {
        let Some(b64) = entry.strip_prefix("v1,") else { continue };
        saw_v1 = true;
        if let Ok(sig) = STANDARD.decode(b64) {
            if mac_matches(&key, &parts, &sig) {
                let replay_key = super::dedupe(id).unwrap_or_else(|| Verified::mac(&sig).replay_key);
                return Ok(Verified { replay_key });
            }
        }
    }
    if saw_v1 {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Malformed("webhook-signature"))
    }
}

/// Verifies the provider's signature over the raw body with the endpoint's signing secret.
///
/// - github: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
/// - crowdstrike: `X-CS-Primary-Signature: <base64 HMAC-SHA256(secret, body ‖ X-CS-Delivery-Timestamp)>`;
///   the timestamp header is required, must parse (Unix seconds/milliseconds or RFC 3339) and be
///   within 5 minutes.
/// - generic: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) when
///   `webhook-signature` is present, else `X-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
///
/// Every comparison is constant-time (`Mac::verify_slice`). The answer carries the request's
/// replay key ([`Verified::replay_key`]).
pub fn verify_signature(
    provider: crate::model::Provider,
    secret: &str,
    headers: &Headers,
    body: &[u8],
    now_secs: i64,
) -> Result<Verified, SignatureError> {
    use crate::model::Provider;
    match provider {
        Provider::Github => {
            let value =
                headers.get("x-hub-signature-256").ok_or(SignatureError::MissingHeader("X-Hub-Signature-256"))?;
            verify_hex_sha256("X-Hub-Signature-256", value, secret, body)
        }
        Provider::Crowdstrike => verify_crowdstrike(headers, secret, body, now_secs),
        Provider::Generic => {
            if headers.get("webhook-signature").is_some() {
                verify_standard_webhooks(headers, secret, body, now_secs)
            } else {
                let value = headers.get("x-signature-256").ok_or(SignatureError::MissingHeader("X-Signature-256"))?;
                verify_hex_sha256("X-Signature-256", value, secret, body)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;
    use crate::providers::tests::h;

    const NOW: i64 = 1_777_818_121;

    /// Whether the signature verifies, without its replay key.
    fn check(provider: Provider, secret: &str, headers: &Headers, body: &[u8], now: i64) -> Result<(), SignatureError> {
        verify_signature(provider, secret, headers, body, now).map(|_| ())
    }

    fn hmac_bytes(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn github_published_test_vector_verifies() {
        let headers =
            h(&[("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")]);
        assert_eq!(check(Provider::Github, "It's a Secret to Everybody", &headers, b"Hello, World!", NOW), Ok(()));
        assert_eq!(
            check(Provider::Github, "It's a Secret to Everybody", &headers, b"Hello, World?", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Provider::Github, "another secret", &headers, b"Hello, World!", NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn standard_webhooks_published_test_vector_verifies() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let headers = h(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", "v1,bogus v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ]);
        assert_eq!(check(Provider::Generic, secret, &headers, body, 1_614_265_330), Ok(()));
        assert_eq!(
            check(Provider::Generic, secret, &headers, body, 1_614_265_330 + 301),
            Err(SignatureError::StaleTimestamp)
        );
    }

    #[test]
    fn signature_cases_per_provider() {
        let secret = "s3cret";
        let body: &[u8] = br#"{"a":1}"#;
        let hex_sig = format!("sha256={}", hex::encode(hmac_bytes(secret.as_bytes(), &[body])));
        let forged_hex = format!("sha256={}", hex::encode(hmac_bytes(b"wrong", &[body])));
        let ts = NOW.to_string();
        let cs_sig = STANDARD.encode(hmac_bytes(secret.as_bytes(), &[body, ts.as_bytes()]));
        let stale_ts = (NOW - 600).to_string();
        let cs_stale_sig = STANDARD.encode(hmac_bytes(secret.as_bytes(), &[body, stale_ts.as_bytes()]));
        let sw_sig = format!(
            "v1,{}",
            STANDARD.encode(hmac_bytes(secret.as_bytes(), &[b"msg_1", b".", ts.as_bytes(), b".", body]))
        );

        use SignatureError::*;
        type Case<'a> = (&'a str, Provider, Vec<(&'a str, &'a str)>, Result<(), SignatureError>);
        let cases: Vec<Case> = vec![
            ("github valid", Provider::Github, vec![("x-hub-signature-256", &hex_sig)], Ok(())),
            ("github forged", Provider::Github, vec![("x-hub-signature-256", &forged_hex)], Err(Mismatch)),
            ("github missing", Provider::Github, vec![], Err(MissingHeader("X-Hub-Signature-256"))),
            (
                "github no prefix",
                Provider::Github,
                vec![("x-hub-signature-256", &hex_sig[7..])],
                Err(Malformed("X-Hub-Signature-256")),
            ),
            (
                "github not hex",
                Provider::Github,
                vec![("x-hub-signature-256", "sha256=zz")],
                Err(Malformed("X-Hub-Signature-256")),
            ),
            (
                "github sha1 only",
                Provider::Github,
                vec![("x-hub-signature", "sha1=00")],
                Err(MissingHeader("X-Hub-Signature-256")),
            ),
            (
                "cs valid",
                Provider::Crowdstrike,
                vec![("X-CS-Primary-Signature", &cs_sig), ("X-CS-Delivery-Timestamp", &ts)],
                Ok(()),
            ),
            (
                "cs forged",
                Provider::Crowdstrike,
                vec![("X-CS-Primary-Signature", "AAAA"), ("X-CS-Delivery-Timestamp", &ts)],
                Err(Mismatch),
            ),
            (
                "cs other ts",
                Provider::Crowdstrike,
                vec![("X-CS-Primary-Signature", &cs_sig), ("X-CS-Delivery-Timestamp", "1777818120")],
                Err(Mismatch),
            ),
            (
                "cs missing ts",
                Provider::Crowdstrike,
                vec![("X-CS-Primary-Signature", &cs_sig)],
                Err(MissingHeader("X-CS-Delivery-Timestamp")),
            ),
            (
                "cs missing sig",
                Provider::Crowdstrike,
                vec![("X-CS-Delivery-Timestamp", &ts)],
                Err(MissingHeader("X-CS-Primary-Signature")),
            ),
            (
                "cs stale",
                Provider::Crowdstrike,
                vec![("X-CS-Primary-Signature", &cs_stale_sig), ("X-CS-Delivery-Timestamp", &stale_ts)],
                Err(StaleTimestamp),
            ),
            (
                "cs not base64",
                Provider::Crowdstrike,
                vec![("X-CS-Primary-Signature", "!!"), ("X-CS-Delivery-Timestamp", &ts)],
                Err(Malformed("X-CS-Primary-Signature")),
            ),
            ("generic hex valid", Provider::Generic, vec![("X-Signature-256", &hex_sig)], Ok(())),
            ("generic hex forged", Provider::Generic, vec![("X-Signature-256", &forged_hex)], Err(Mismatch)),
            ("generic missing", Provider::Generic, vec![], Err(MissingHeader("X-Signature-256"))),
            (
                "generic sw valid",
                Provider::Generic,
                vec![("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", &sw_sig)],
                Ok(()),
            ),
            (
                "generic sw forged",
                Provider::Generic,
                vec![("webhook-id", "msg_2"), ("webhook-timestamp", &ts), ("webhook-signature", &sw_sig)],
                Err(Mismatch),
            ),
            (
                "generic sw missing id",
                Provider::Generic,
                vec![("webhook-timestamp", &ts), ("webhook-signature", &sw_sig)],
                Err(MissingHeader("webhook-id")),
            ),
            (
                "generic sw no v1",
                Provider::Generic,
                vec![("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", "v2,abc")],
                Err(Malformed("webhook-signature")),
            ),
            (
                "generic sw bad ts",
                Provider::Generic,
                vec![("webhook-id", "msg_1"), ("webhook-timestamp", "soon"), ("webhook-signature", &sw_sig)],
                Err(Malformed("webhook-timestamp")),
            ),
        ];
        for (name, provider, pairs, want) in cases {
            assert_eq!(check(provider, secret, &h(&pairs), body, NOW), want, "{name}");
        }
    }

    #[test]
    fn a_crowdstrike_timestamp_that_does_not_parse_is_refused() {
        let secret = "s3cret";
        let body: &[u8] = br#"{"a":1}"#;
        for ts in ["soon", "12:00", "2026-13-45T00:00:00Z", "1777818121.5", "0x69f7"] {
            let sig = STANDARD.encode(hmac_bytes(secret.as_bytes(), &[body, ts.as_bytes()]));
            let headers = h(&[("X-CS-Primary-Signature", &sig), ("X-CS-Delivery-Timestamp", ts)]);
            assert_eq!(
                check(Provider::Crowdstrike, secret, &headers, body, NOW),
                Err(SignatureError::Malformed("X-CS-Delivery-Timestamp")),
                "{ts}"
            );
        }
        // The forms that parse are still accepted: Unix seconds, milliseconds, RFC 3339.
        for ts in [NOW.to_string(), (NOW * 1000).to_string(), "2026-05-03T14:22:01Z".to_owned()] {
            let sig = STANDARD.encode(hmac_bytes(secret.as_bytes(), &[body, ts.as_bytes()]));
            let headers = h(&[("X-CS-Primary-Signature", &sig), ("X-CS-Delivery-Timestamp", &ts)]);
            assert_eq!(check(Provider::Crowdstrike, secret, &headers, body, NOW), Ok(()), "{ts}");
        }
    }

    #[test]
    fn the_replay_key_comes_only_from_what_the_signature_covers() {
        let secret = "s3cret";
        let body: &[u8] = br#"{"a":1}"#;
        let mac = hmac_bytes(secret.as_bytes(), &[body]);
        let key = |provider, pairs: &[(&str, &str)], body: &[u8]| {
            verify_signature(provider, secret, &h(pairs), body, NOW).unwrap().replay_key().to_owned()
        };
        let lower = format!("sha256={}", hex::encode(&mac));
        let upper = format!("sha256={}", hex::encode_upper(&mac));
        let github = key(Provider::Github, &[("x-hub-signature-256", &lower), ("x-github-delivery", "d-1")], body);
        assert_eq!(github, format!("sig:{}", hex::encode(Sha256::digest(&mac))));
        // A fresh delivery id, or the same MAC spelled otherwise, is the same signed request.
        assert_eq!(
            key(Provider::Github, &[("x-hub-signature-256", &upper), ("x-github-delivery", "d-2")], body),
            github
        );
        assert_eq!(key(Provider::Generic, &[("x-signature-256", &lower), ("idempotency-key", "k-9")], body), github);
        // Another body is another request.
        let other: &[u8] = br#"{"a":2}"#;
        let other_sig = format!("sha256={}", hex::encode(hmac_bytes(secret.as_bytes(), &[other])));
        assert_ne!(key(Provider::Github, &[("x-hub-signature-256", &other_sig)], other), github);

        // CrowdStrike signs the timestamp too: each signing is its own request.
        let ts = NOW.to_string();
        let later = (NOW + 1).to_string();
        let cs = |ts: &str| {
            let sig = STANDARD.encode(hmac_bytes(secret.as_bytes(), &[body, ts.as_bytes()]));
            key(Provider::Crowdstrike, &[("X-CS-Primary-Signature", &sig), ("X-CS-Delivery-Timestamp", ts)], body)
        };
        assert!(cs(&ts).starts_with("sig:"));
        assert_eq!(cs(&ts), cs(&ts));
        assert_ne!(cs(&ts), cs(&later));

        // Standard Webhooks signs the id: a retry signed afresh keeps it.
        let sw = |ts: &str| {
            let sig = STANDARD.encode(hmac_bytes(secret.as_bytes(), &[b"msg_1", b".", ts.as_bytes(), b".", body]));
            let sig = format!("v1,{sig}");
            key(
                Provider::Generic,
                &[("webhook-id", "msg_1"), ("webhook-timestamp", ts), ("webhook-signature", &sig)],
                body,
            )
        };
        assert_eq!(sw(&ts), "msg_1");
        assert_eq!(sw(&later), "msg_1");
    }
}
