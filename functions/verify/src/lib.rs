//! Verify Puck webhook deliveries in your receiver.
//!
//! Every delivery carries an `X-Puck-Signature` header (and the identical alias
//! `X-Puck-Signature-256`) of the form
//!
//! ```text
//! X-Puck-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]
//! ```
//!
//! where each `<hex>` is `HMAC-SHA256(key = secret, message = "<t>.<raw body>")`, hex-encoded.
//! The key is the subscription secret **exactly as issued**, `whsec_` prefix included. While a
//! secret is being rotated (a 24 hour overlap) a second `v1=` signed with the previous secret
//! follows, so pass both secrets to [`verify`] until the overlap ends.
//!
//! [`verify`] accepts a delivery when any `v1` signature matches any of the given secrets and the
//! timestamp is within five minutes (either direction) of the receiver's clock. Signatures are
//! compared in constant time. Verification needs the **raw** request body bytes, before any JSON
//! parsing or re-serialisation.
//!
//! Subscriptions created with `"signature_scheme": "ed25519"` are signed with an Ed25519 key
//! pair instead: `t=<t>,v1a=<base64>`, verified with the subscription's public key (`whpk_…`) by
//! [`verify_ed25519`].
//!
//! Signatures only prove who sent a delivery, not that it is new: deliveries are at-least-once,
//! so also deduplicate on the `X-Puck-Event-Id` header.
//!
//! # Example
//!
//! ```
//! use puck_verify::{sign, verify, VerifyError};
//!
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let body = br#"{"event_id":"evt_1","event_type":"finding.created","api_version":"v1","data":{}}"#;
//! let now = 1_700_000_000;
//!
//! // What Puck sends (receivers can use `sign` to build fixtures for their own tests).
//! let header = sign(secret, now, body);
//! assert!(header.starts_with("t=1700000000,v1="));
//!
//! // In the receiver: header value, raw body, the current secret(s), the current time.
//! assert_eq!(verify(&header, body, &[secret], now + 10), Ok(()));
//!
//! // A tampered body, a wrong secret or a stale timestamp are rejected.
//! assert_eq!(verify(&header, b"{}", &[secret], now), Err(VerifyError::SignatureMismatch));
//! assert_eq!(verify(&header, body, &["whsec_other"], now), Err(VerifyError::SignatureMismatch));
//! assert_eq!(
//!     verify(&header, body, &[secret], now + 301),
//!     Err(VerifyError::TimestampOutOfTolerance)
//! );
//!
//! // During a rotation, accept both the new and the previous secret.
//! let previous = "whsec_previousSecretPreviousSecretXX";
//! assert_eq!(verify(&header, body, &[secret, previous], now), Ok(()));
//! ```
//!
//! In an HTTP handler, [`verify_now`] uses the system clock:
//!
//! ```no_run
//! # fn handle(headers: &std::collections::HashMap<String, String>, body: &[u8]) -> u16 {
//! let header = headers.get("x-puck-signature").map(String::as_str).unwrap_or("");
//! match puck_verify::verify_now(header, body, &["whsec_current", "whsec_previous"]) {
//!     Ok(()) => 204,  // dedupe on X-Puck-Event-Id, then process
//!     Err(_) => 400,
//! }
//! # }
//! ```
#![warn(missing_docs)]

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

/// Default timestamp tolerance used by [`verify`] and [`verify_now`]: 300 seconds (5 minutes),
/// in either direction.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Longest header value that is parsed at all, in bytes. Longer values are
/// [`VerifyError::MalformedHeader`].
pub const MAX_HEADER_LEN: usize = 4096;

/// Most `v1=` signatures accepted in one header. More are [`VerifyError::MalformedHeader`].
pub const MAX_SIGNATURES: usize = 8;

/// Length in bytes of an HMAC-SHA256 signature (64 hex digits).
const SIGNATURE_LEN: usize = 32;

/// Why a delivery was not accepted.
///
/// All variants mean "reject the request" (respond with a 4xx); they differ only to help
/// debugging. Do not reveal them to the caller in detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerifyError {
    /// The header has no `t=` element.
    MissingTimestamp,
    /// The header could not be parsed: too long, an element without `=`, a duplicate `t=`, a
    /// `t=` that is not a non-negative decimal integer, a `v1=` that is not 64 hex digits, or
    /// more than [`MAX_SIGNATURES`] signatures.
    MalformedHeader,
    /// The header has no signature of the scheme being verified: no `v1=` for [`verify`], no
    /// `v1a=` for [`verify_ed25519`] (signatures of other schemes are ignored).
    NoSignature,
    /// The timestamp is further from the current time than the tolerance allows.
    TimestampOutOfTolerance,
    /// No `v1` signature matches any of the secrets for this body and timestamp.
    SignatureMismatch,
    /// No secret to verify with: the list was empty or held only empty strings.
    NoSecrets,
    /// A public key given to [`verify_ed25519`] is not `whpk_` + base64 of a valid 32-byte
    /// Ed25519 key: a configuration error of the receiver, not a bad delivery.
    InvalidPublicKey,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingTimestamp => "signature header has no timestamp (t=)",
            Self::MalformedHeader => "signature header is malformed",
            Self::NoSignature => "signature header has no signature of the verified scheme (v1 or v1a)",
            Self::TimestampOutOfTolerance => "signature timestamp is outside the tolerance",
            Self::SignatureMismatch => "no signature matches the body and secrets",
            Self::NoSecrets => "no secret to verify with",
            Self::InvalidPublicKey => "a public key is not whpk_ followed by a base64 Ed25519 key",
        })
    }
}

impl std::error::Error for VerifyError {}

/// A parsed `X-Puck-Signature` value.
struct Parsed<'a> {
    /// The timestamp exactly as it appears in the header (it is what was signed).
    timestamp_raw: &'a str,
    timestamp: i64,
    signatures: Vec<[u8; SIGNATURE_LEN]>,
    /// The `v1a=` (Ed25519) values as they appear, decoded only by [`verify_ed25519`].
    ed25519: Vec<&'a str>,
}

fn parse(header: &str) -> Result<Parsed<'_>, VerifyError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(VerifyError::MalformedHeader);
    }
    let mut timestamp: Option<(&str, i64)> = None;
    let mut signatures = Vec::new();
    let mut ed25519 = Vec::new();
    for element in header.split(',') {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        let (key, value) = element.split_once('=').ok_or(VerifyError::MalformedHeader)?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(VerifyError::MalformedHeader);
                }
                // Digits only: no sign, no leading `+`, no whitespace inside.
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VerifyError::MalformedHeader);
                }
                let t = value.parse::<i64>().map_err(|_| VerifyError::MalformedHeader)?;
                timestamp = Some((value, t));
            }
            "v1" => {
                if signatures.len() == MAX_SIGNATURES {
                    return Err(VerifyError::MalformedHeader);
                }
                let mut sig = [0u8; SIGNATURE_LEN];
                hex::decode_to_slice(value, &mut sig).map_err(|_| VerifyError::MalformedHeader)?;
                signatures.push(sig);
            }
            "v1a" => {
                if ed25519.len() == MAX_SIGNATURES {
                    return Err(VerifyError::MalformedHeader);
                }
                ed25519.push(value);
            }
            // Unknown schemes (`v0=`, future versions) are ignored.
            _ => {}
        }
    }
    let (timestamp_raw, timestamp) = timestamp.ok_or(VerifyError::MissingTimestamp)?;
    Ok(Parsed { timestamp_raw, timestamp, signatures, ed25519 })
}

/// The timestamp is within `tolerance_secs` (negative = 0) of `now_unix`, either direction.
fn check_timestamp(parsed: &Parsed<'_>, now_unix: i64, tolerance_secs: i64) -> Result<(), VerifyError> {
    let tolerance = tolerance_secs.max(0).unsigned_abs();
    if now_unix.abs_diff(parsed.timestamp) > tolerance {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    Ok(())
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Verify a delivery with the default 5-minute tolerance ([`DEFAULT_TOLERANCE_SECS`]).
///
/// - `header`: the value of the `X-Puck-Signature` (or `X-Puck-Signature-256`) header.
/// - `body`: the raw request body bytes, exactly as received.
/// - `secrets`: the subscription secret(s) as issued (`whsec_…`); during a rotation pass both the
///   new and the previous secret. Empty strings are ignored.
/// - `now_unix`: the current time in Unix seconds.
///
/// Returns `Ok(())` when the timestamp is within tolerance and any `v1` signature matches any
/// secret.
///
/// # Errors
///
/// See [`VerifyError`]. [`VerifyError::NoSecrets`] is checked first, then the header is parsed,
/// then the timestamp is checked, then the signatures.
pub fn verify(header: &str, body: &[u8], secrets: &[&str], now_unix: i64) -> Result<(), VerifyError> {
    verify_with_tolerance(header, body, secrets, now_unix, DEFAULT_TOLERANCE_SECS)
}

/// Like [`verify`] with a custom tolerance: the timestamp may differ from `now_unix` by at most
/// `tolerance_secs` seconds in either direction (the boundary itself is accepted). A negative
/// tolerance is treated as zero.
///
/// # Errors
///
/// See [`verify`].
pub fn verify_with_tolerance(
    header: &str,
    body: &[u8],
    secrets: &[&str],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if secrets.iter().all(|s| s.is_empty()) {
        return Err(VerifyError::NoSecrets);
    }
    let parsed = parse(header)?;
    if parsed.signatures.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    check_timestamp(&parsed, now_unix, tolerance_secs)?;

    // Compare every signature against every secret's MAC and fold the results without
    // branching on signature bytes, so timing does not reveal which (or how much) matched.
    let mut matched = Choice::from(0u8);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let expected = mac(secret, parsed.timestamp_raw, body);
        for sig in &parsed.signatures {
            matched |= expected.ct_eq(sig);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

/// Like [`verify`], with `now_unix` taken from the system clock.
///
/// # Errors
///
/// See [`verify`].
pub fn verify_now(header: &str, body: &[u8], secrets: &[&str]) -> Result<(), VerifyError> {
    verify(header, body, secrets, unix_now())
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Build the full `X-Puck-Signature` header value, `t=<timestamp>,v1=<hex>`, exactly as Puck
/// signs a delivery of `body` at `timestamp` (Unix seconds) with `secret` (`whsec_…`, used as
/// issued).
///
/// Useful for receivers' tests. To build a rotation-style header, append
/// `",v1=<hex>"` taken from a second call with the previous secret.
///
/// ```
/// let h = puck_verify::sign("whsec_test", 1_700_000_000, b"{}");
/// assert_eq!(puck_verify::verify(&h, b"{}", &["whsec_test"], 1_700_000_000), Ok(()));
/// ```
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    format!("t={t},v1={}", hex::encode(mac(secret, &t, body)))
}

mod ed25519;
pub use ed25519::{
    ed25519_public_key, sign_ed25519, verify_ed25519, verify_ed25519_now, verify_ed25519_with_tolerance,
};

#[cfg(test)]
mod tests;
