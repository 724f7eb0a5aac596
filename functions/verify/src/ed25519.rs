//! Ed25519 (`v1a`) signatures, for subscriptions created with `"signature_scheme": "ed25519"`.
//!
//! Such a delivery carries
//!
//! ```text
//! X-Puck-Signature: t=<unix seconds>,v1a=<base64>[,v1a=<base64>]
//! ```
//!
//! where each `<base64>` is the 64-byte Ed25519 signature of `"<t>.<raw body>"`, standard base64.
//! The receiver holds only the subscription's public key (`whpk_…`, shown by the API), which
//! cannot sign: whoever reads the receiver's configuration still cannot forge a delivery. While
//! the key pair is being rotated (a 24 hour overlap) a second `v1a=` signed with the previous key
//! follows, so pass both public keys until the overlap ends.
//!
//! Nothing secret takes part in verifying a public-key signature, so unlike [`crate::verify`]
//! there is nothing to compare in constant time. Signatures are checked with
//! `verify_strict` (no small-order keys, no malleable signatures).
//!
//! ```
//! use puck_verify::{ed25519_public_key, sign_ed25519, verify_ed25519, VerifyError};
//!
//! let body = br#"{"event_id":"evt_1","event_type":"finding.created","api_version":"v1","data":{}}"#;
//! let now = 1_700_000_000;
//! // What Puck sends, built here from a private key only for the example.
//! let private = [7u8; 32];
//! let header = sign_ed25519(&private, now, body);
//! let public_key = ed25519_public_key(&private); // "whpk_…", as the API shows it
//!
//! assert_eq!(verify_ed25519(&header, body, &[&public_key], now + 10), Ok(()));
//! assert_eq!(verify_ed25519(&header, b"{}", &[&public_key], now), Err(VerifyError::SignatureMismatch));
//! assert_eq!(
//!     verify_ed25519(&header, body, &[&public_key], now + 301),
//!     Err(VerifyError::TimestampOutOfTolerance)
//! );
//! ```

use crate::{check_timestamp, parse, unix_now, VerifyError, DEFAULT_TOLERANCE_SECS};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The prefix of a public key as the API shows it.
const PUBLIC_KEY_PREFIX: &str = "whpk_";

fn public_key(text: &str) -> Result<VerifyingKey, VerifyError> {
    let encoded = text.trim().strip_prefix(PUBLIC_KEY_PREFIX).ok_or(VerifyError::InvalidPublicKey)?;
    let bytes: [u8; 32] =
        STANDARD.decode(encoded).ok().and_then(|b| b.try_into().ok()).ok_or(VerifyError::InvalidPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| VerifyError::InvalidPublicKey)
}

fn signature(value: &str) -> Result<Signature, VerifyError> {
    let bytes = STANDARD.decode(value).map_err(|_| VerifyError::MalformedHeader)?;
    Signature::from_slice(&bytes).map_err(|_| VerifyError::MalformedHeader)
}

/// Verify an Ed25519-signed delivery with the default 5-minute tolerance
/// ([`DEFAULT_TOLERANCE_SECS`]).
///
/// - `header`: the value of the `X-Puck-Signature` (or `X-Puck-Signature-256`) header.
/// - `body`: the raw request body bytes, exactly as received.
/// - `public_keys`: the subscription's public key(s) as shown (`whpk_…`); during a rotation
///   pass both the new and the previous key. Empty strings are ignored.
/// - `now_unix`: the current time in Unix seconds.
///
/// Returns `Ok(())` when the timestamp is within tolerance and any `v1a` signature verifies with
/// any of the keys.
///
/// # Errors
///
/// See [`VerifyError`]. [`VerifyError::NoSecrets`] (no key given) and
/// [`VerifyError::InvalidPublicKey`] are checked first, then the header is parsed, then the
/// timestamp is checked, then the signatures.
pub fn verify_ed25519(header: &str, body: &[u8], public_keys: &[&str], now_unix: i64) -> Result<(), VerifyError> {
    verify_ed25519_with_tolerance(header, body, public_keys, now_unix, DEFAULT_TOLERANCE_SECS)
}

/// Like [`verify_ed25519`] with a custom tolerance (the boundary itself is accepted; a negative
/// tolerance is treated as zero).
///
/// # Errors
///
/// See [`verify_ed25519`].
pub fn verify_ed25519_with_tolerance(
    header: &str,
    body: &[u8],
    public_keys: &[&str],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let keys = public_keys.iter().filter(|k| !k.is_empty()).map(|k| public_key(k)).collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    let parsed = parse(header)?;
    if parsed.ed25519.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let signatures = parsed.ed25519.iter().map(|v| signature(v)).collect::<Result<Vec<_>, _>>()?;
    check_timestamp(&parsed, now_unix, tolerance_secs)?;
    let message = [parsed.timestamp_raw.as_bytes(), b".", body].concat();
    let verified = keys.iter().any(|key| signatures.iter().any(|sig| key.verify_strict(&message, sig).is_ok()));
    if verified {
        Ok(())
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

/// Like [`verify_ed25519`], with `now_unix` taken from the system clock.
///
/// # Errors
///
/// See [`verify_ed25519`].
pub fn verify_ed25519_now(header: &str, body: &[u8], public_keys: &[&str]) -> Result<(), VerifyError> {
    verify_ed25519(header, body, public_keys, unix_now())
}

/// The `X-Puck-Signature` value `t=<timestamp>,v1a=<base64>` that the Ed25519 key with this
/// 32-byte private key (seed) makes for `body` at `timestamp`. For receivers' tests: in
/// production only Puck holds the private key.
pub fn sign_ed25519(private_key: &[u8; 32], timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let sig = SigningKey::from_bytes(private_key).sign(&[t.as_bytes(), b".", body].concat());
    format!("t={t},v1a={}", STANDARD.encode(sig.to_bytes()))
}

/// The public key (`whpk_…`) of a 32-byte private key, in the form the API shows; for tests
/// with [`sign_ed25519`].
pub fn ed25519_public_key(private_key: &[u8; 32]) -> String {
    let public = SigningKey::from_bytes(private_key).verifying_key();
    format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(public.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"event_id":"evt_1"}"#;
    const T: i64 = 1_700_000_000;
    const KEY: [u8; 32] = [1; 32];
    const OLD_KEY: [u8; 32] = [2; 32];

    fn v1a(private: &[u8; 32]) -> String {
        sign_ed25519(private, T, BODY).split_once(",v1a=").unwrap().1.to_owned()
    }

    #[test]
    fn known_answer() {
        // Computed outside Rust, with Python's `cryptography`:
        //   k = Ed25519PrivateKey.from_private_bytes(bytes([1] * 32))
        //   base64(k.public_key() raw bytes); base64(k.sign(b'1700000000.{"event_id":"evt_1"}'))
        const PUBLIC: &str = "whpk_iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=";
        const SIG: &str = "qCgwZTY7OP2Qxc0CCwRJbNC8O87Q2d7pnfQ3So+4WI/nXJd6tJNlop/VOQWwnIztsH+JYv9TuIzxbCNXgJ20Bg==";
        assert_eq!(ed25519_public_key(&KEY), PUBLIC);
        assert_eq!(sign_ed25519(&KEY, T, BODY), format!("t={T},v1a={SIG}"));
        assert_eq!(verify_ed25519(&format!("t={T},v1a={SIG}"), BODY, &[PUBLIC], T), Ok(()));
    }

    #[test]
    fn the_current_or_the_previous_key_verifies_during_a_rotation() {
        let header = format!("t={T},v1a={},v1a={}", v1a(&KEY), v1a(&OLD_KEY));
        let (new, old) = (ed25519_public_key(&KEY), ed25519_public_key(&OLD_KEY));
        assert_eq!(verify_ed25519(&header, BODY, &[&new], T), Ok(()));
        assert_eq!(verify_ed25519(&header, BODY, &[&old], T), Ok(()));
        assert_eq!(verify_ed25519(&header, BODY, &[&old, &new], T), Ok(()));
        let other = ed25519_public_key(&[3; 32]);
        assert_eq!(verify_ed25519(&header, BODY, &[&other], T), Err(VerifyError::SignatureMismatch));
        assert_eq!(verify_ed25519(&sign_ed25519(&KEY, T, BODY), BODY, &[&new, &old], T), Ok(()));
    }

    #[test]
    fn a_changed_body_timestamp_or_signature_is_refused() {
        let key = ed25519_public_key(&KEY);
        let header = sign_ed25519(&KEY, T, BODY);
        assert_eq!(verify_ed25519(&header, b"{}", &[&key], T), Err(VerifyError::SignatureMismatch));
        let moved = header.replace(&format!("t={T}"), &format!("t={}", T + 1));
        assert_eq!(verify_ed25519(&moved, BODY, &[&key], T), Err(VerifyError::SignatureMismatch));
        let mut sig = STANDARD.decode(v1a(&KEY)).unwrap();
        sig[10] ^= 1;
        let flipped = format!("t={T},v1a={}", STANDARD.encode(sig));
        assert_eq!(verify_ed25519(&flipped, BODY, &[&key], T), Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn the_timestamp_tolerance_is_the_same_as_for_v1() {
        let key = ed25519_public_key(&KEY);
        let header = sign_ed25519(&KEY, T, BODY);
        assert_eq!(verify_ed25519(&header, BODY, &[&key], T + 300), Ok(()));
        assert_eq!(verify_ed25519(&header, BODY, &[&key], T - 300), Ok(()));
        assert_eq!(verify_ed25519(&header, BODY, &[&key], T + 301), Err(VerifyError::TimestampOutOfTolerance));
        assert_eq!(verify_ed25519(&header, BODY, &[&key], T - 301), Err(VerifyError::TimestampOutOfTolerance));
        assert_eq!(verify_ed25519_with_tolerance(&header, BODY, &[&key], T + 5, 5), Ok(()));
        assert_eq!(
            verify_ed25519_with_tolerance(&header, BODY, &[&key], T + 1, -1),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert!(verify_ed25519_now(&header, BODY, &[&key]).is_err(), "2023 is not now");
        let now = unix_now();
        assert_eq!(verify_ed25519_now(&sign_ed25519(&KEY, now, BODY), BODY, &[&key]), Ok(()));
    }

    #[test]
    fn keys_and_headers_of_the_wrong_shape_are_told_apart() {
        let key = ed25519_public_key(&KEY);
        let header = sign_ed25519(&KEY, T, BODY);
        assert_eq!(verify_ed25519(&header, BODY, &[], T), Err(VerifyError::NoSecrets));
        assert_eq!(verify_ed25519(&header, BODY, &[""], T), Err(VerifyError::NoSecrets));
        for bad in ["whsec_AAAA", "whpk_AAAA", "whpk_!!", &key[5..]] {
            assert_eq!(verify_ed25519(&header, BODY, &[bad], T), Err(VerifyError::InvalidPublicKey), "{bad}");
        }
        let hmac_only = crate::sign("whsec_x", T, BODY);
        assert_eq!(verify_ed25519(&hmac_only, BODY, &[&key], T), Err(VerifyError::NoSignature));
        assert_eq!(crate::verify(&header, BODY, &["whsec_x"], T), Err(VerifyError::NoSignature), "v1 ignores v1a");
        assert_eq!(verify_ed25519(&format!("v1a={}", v1a(&KEY)), BODY, &[&key], T), Err(VerifyError::MissingTimestamp));
        assert_eq!(verify_ed25519(&format!("t={T},v1a=abc"), BODY, &[&key], T), Err(VerifyError::MalformedHeader));
        let short = STANDARD.encode([0u8; 63]);
        assert_eq!(verify_ed25519(&format!("t={T},v1a={short}"), BODY, &[&key], T), Err(VerifyError::MalformedHeader));
        let many = format!("t={T}{}", format!(",v1a={}", v1a(&KEY)).repeat(9));
        assert_eq!(verify_ed25519(&many, BODY, &[&key], T), Err(VerifyError::MalformedHeader));
    }
}
