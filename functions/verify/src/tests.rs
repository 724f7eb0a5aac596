use super::*;
use proptest::prelude::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_c2VjcmV0LXByZXZpb3VzLWtleS0xMjM0NTY3OA==";
const BODY: &[u8] = br#"{"event_id":"evt_1"}"#;
const T: i64 = 1_700_000_000;

/// Independent computation with the `hmac` crate directly (not through `sign`/`mac`).
fn reference_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    m.update(&msg);
    hex::encode(m.finalize().into_bytes())
}

fn v1(secret: &str, t: i64, body: &[u8]) -> String {
    let h = sign(secret, t, body);
    h.split_once(",v1=").unwrap().1.to_owned()
}

#[test]
fn known_answer() {
    // Computed outside Rust: python3 -c 'import hmac,hashlib;
    //   print(hmac.new(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    //   b"1700000000.{\"event_id\":\"evt_1\"}", hashlib.sha256).hexdigest())'
    const EXPECTED: &str = "b0015c2c3e514f44846e6301dfc8bbf7d9456f4f8c361a17081cbb333da63ce6";
    assert_eq!(reference_hex(SECRET, T, BODY), EXPECTED);
    assert_eq!(sign(SECRET, T, BODY), format!("t={T},v1={EXPECTED}"));
    assert_eq!(verify(&format!("t={T},v1={EXPECTED}"), BODY, &[SECRET], T), Ok(()));
    // Uppercase hex decodes to the same bytes.
    let upper = format!("t={T},v1={}", EXPECTED.to_uppercase());
    assert_eq!(verify(&upper, BODY, &[SECRET], T), Ok(()));
}

#[test]
fn key_is_the_full_secret_string_including_prefix() {
    let without_prefix = SECRET.strip_prefix("whsec_").unwrap();
    let h = sign(SECRET, T, BODY);
    assert_eq!(verify(&h, BODY, &[without_prefix], T), Err(VerifyError::SignatureMismatch));
}

#[test]
fn rotation_either_secret_verifies() {
    let header = format!("t={T},v1={},v1={}", v1(SECRET, T, BODY), v1(OLD_SECRET, T, BODY));
    assert_eq!(verify(&header, BODY, &[SECRET], T), Ok(()));
    assert_eq!(verify(&header, BODY, &[OLD_SECRET], T), Ok(()));
    assert_eq!(verify(&header, BODY, &[OLD_SECRET, SECRET], T), Ok(()));
    assert_eq!(verify(&header, BODY, &["whsec_unrelated"], T), Err(VerifyError::SignatureMismatch));
    // Receiver holding both secrets, delivery signed only with the new one (after the overlap).
    assert_eq!(verify(&sign(SECRET, T, BODY), BODY, &[SECRET, OLD_SECRET], T), Ok(()));
}

#[test]
fn forged_signature_rejected() {
    let forged = format!("t={T},v1={}", "ab".repeat(32));
    assert_eq!(verify(&forged, BODY, &[SECRET], T), Err(VerifyError::SignatureMismatch));
    // One bit flipped.
    let mut good = hex::decode(v1(SECRET, T, BODY)).unwrap();
    good[31] ^= 1;
    let flipped = format!("t={T},v1={}", hex::encode(good));
    assert_eq!(verify(&flipped, BODY, &[SECRET], T), Err(VerifyError::SignatureMismatch));
    // Signed with another secret.
    assert_eq!(verify(&sign("whsec_attacker", T, BODY), BODY, &[SECRET], T), Err(VerifyError::SignatureMismatch));
}

#[test]
fn truncated_or_extended_signature_rejected() {
    let good = v1(SECRET, T, BODY);
    for bad in [&good[..62], &good[..63], &good[..32], &good[..2], ""] {
        let h = format!("t={T},v1={bad}");
        assert_eq!(verify(&h, BODY, &[SECRET], T), Err(VerifyError::MalformedHeader), "{h}");
    }
    let h = format!("t={T},v1={good}00");
    assert_eq!(verify(&h, BODY, &[SECRET], T), Err(VerifyError::MalformedHeader));
}

#[test]
fn stale_and_future_timestamps_rejected() {
    let h = sign(SECRET, T, BODY);
    assert_eq!(verify(&h, BODY, &[SECRET], T + 301), Err(VerifyError::TimestampOutOfTolerance));
    assert_eq!(verify(&h, BODY, &[SECRET], T - 301), Err(VerifyError::TimestampOutOfTolerance));
    assert_eq!(verify(&h, BODY, &[SECRET], T + 86_400), Err(VerifyError::TimestampOutOfTolerance));
    assert_eq!(verify(&h, BODY, &[SECRET], i64::MIN), Err(VerifyError::TimestampOutOfTolerance));
    assert_eq!(verify(&h, BODY, &[SECRET], i64::MAX), Err(VerifyError::TimestampOutOfTolerance));
}

#[test]
fn boundary_accepted() {
    let h = sign(SECRET, T, BODY);
    assert_eq!(verify(&h, BODY, &[SECRET], T + 300), Ok(()));
    assert_eq!(verify(&h, BODY, &[SECRET], T - 300), Ok(()));
    assert_eq!(verify(&h, BODY, &[SECRET], T), Ok(()));
}

#[test]
fn custom_tolerance() {
    let h = sign(SECRET, T, BODY);
    assert_eq!(verify_with_tolerance(&h, BODY, &[SECRET], T + 10, 10), Ok(()));
    assert_eq!(verify_with_tolerance(&h, BODY, &[SECRET], T + 11, 10), Err(VerifyError::TimestampOutOfTolerance));
    assert_eq!(verify_with_tolerance(&h, BODY, &[SECRET], T, 0), Ok(()));
    // Negative tolerance behaves like zero.
    assert_eq!(verify_with_tolerance(&h, BODY, &[SECRET], T, -5), Ok(()));
    assert_eq!(verify_with_tolerance(&h, BODY, &[SECRET], T + 1, -5), Err(VerifyError::TimestampOutOfTolerance));
    assert_eq!(verify_with_tolerance(&h, BODY, &[SECRET], T, i64::MAX), Ok(()));
}

#[test]
fn replayed_header_with_different_body_rejected() {
    let h = sign(SECRET, T, BODY);
    assert_eq!(verify(&h, br#"{"event_id":"evt_2"}"#, &[SECRET], T), Err(VerifyError::SignatureMismatch));
    assert_eq!(verify(&h, b"", &[SECRET], T), Err(VerifyError::SignatureMismatch));
    // Trailing newline appended by a proxy or re-serialisation also breaks it.
    let mut body = BODY.to_vec();
    body.push(b'\n');
    assert_eq!(verify(&h, &body, &[SECRET], T), Err(VerifyError::SignatureMismatch));
}

#[test]
fn timestamp_is_part_of_signed_message() {
    // Moving the signature to another timestamp (to dodge the tolerance) fails.
    let sig = v1(SECRET, T, BODY);
    let h = format!("t={},v1={sig}", T + 600);
    assert_eq!(verify(&h, BODY, &[SECRET], T + 600), Err(VerifyError::SignatureMismatch));
}

#[test]
fn whitespace_is_tolerated() {
    let sig = v1(SECRET, T, BODY);
    let old = v1(OLD_SECRET, T, BODY);
    for h in [
        format!("t={T}, v1={sig}"),
        format!("t={T},   v1={sig}"),
        format!("t={T},\tv1={sig}"),
        format!(" t={T} , v1={sig} "),
        format!("t = {T}, v1 = {sig}"),
        format!("t={T}, v1={old}, v1={sig}"),
        format!("t={T}, v1={sig},"),
    ] {
        assert_eq!(verify(&h, BODY, &[SECRET], T), Ok(()), "{h:?}");
    }
}

#[test]
fn element_order_and_unknown_schemes() {
    let sig = v1(SECRET, T, BODY);
    assert_eq!(verify(&format!("v1={sig},t={T}"), BODY, &[SECRET], T), Ok(()));
    assert_eq!(verify(&format!("t={T},v0=deadbeef,v1={sig},v2=zzz"), BODY, &[SECRET], T), Ok(()));
    // Only unknown schemes: no usable signature.
    assert_eq!(verify(&format!("t={T},v0={sig}"), BODY, &[SECRET], T), Err(VerifyError::NoSignature));
}

#[test]
fn timestamp_errors() {
    let sig = v1(SECRET, T, BODY);
    assert_eq!(verify(&format!("v1={sig}"), BODY, &[SECRET], T), Err(VerifyError::MissingTimestamp));
    assert_eq!(verify(&format!("t={T},t={T},v1={sig}"), BODY, &[SECRET], T), Err(VerifyError::MalformedHeader));
    for t in ["", "abc", "17e8", "-1700000000", "+1700000000", "1 700", "0x10", "99999999999999999999"] {
        assert_eq!(
            verify(&format!("t={t},v1={sig}"), BODY, &[SECRET], T),
            Err(VerifyError::MalformedHeader),
            "t={t:?}"
        );
    }
}

#[test]
fn structural_errors() {
    let sig = v1(SECRET, T, BODY);
    assert_eq!(verify("", BODY, &[SECRET], T), Err(VerifyError::MissingTimestamp));
    assert_eq!(verify(&format!("t={T}"), BODY, &[SECRET], T), Err(VerifyError::NoSignature));
    assert_eq!(verify(&format!("t={T},garbage,v1={sig}"), BODY, &[SECRET], T), Err(VerifyError::MalformedHeader));
    let non_hex = format!("t={T},v1={}", "zz".repeat(32));
    assert_eq!(verify(&non_hex, BODY, &[SECRET], T), Err(VerifyError::MalformedHeader));
    // A bare secret-less header still reports NoSecrets first.
    assert_eq!(verify("", BODY, &[], T), Err(VerifyError::NoSecrets));
}

#[test]
fn no_secrets() {
    let h = sign(SECRET, T, BODY);
    assert_eq!(verify(&h, BODY, &[], T), Err(VerifyError::NoSecrets));
    assert_eq!(verify(&h, BODY, &["", ""], T), Err(VerifyError::NoSecrets));
    // An empty key never verifies, even if the sender used one.
    let empty_signed = sign("", T, BODY);
    assert_eq!(verify(&empty_signed, BODY, &["", SECRET], T), Err(VerifyError::SignatureMismatch));
}

#[test]
fn limits() {
    let sig = v1(SECRET, T, BODY);
    let other = "00".repeat(32);
    // MAX_SIGNATURES is allowed (the real one last)...
    let mut h = format!("t={T}");
    for _ in 0..MAX_SIGNATURES - 1 {
        h.push_str(&format!(",v1={other}"));
    }
    h.push_str(&format!(",v1={sig}"));
    assert_eq!(verify(&h, BODY, &[SECRET], T), Ok(()));
    // ...one more is refused.
    h.push_str(&format!(",v1={sig}"));
    assert_eq!(verify(&h, BODY, &[SECRET], T), Err(VerifyError::MalformedHeader));
    // Overlong header refused before parsing.
    let long = format!("t={T},v1={sig},x={}", "a".repeat(MAX_HEADER_LEN));
    assert_eq!(verify(&long, BODY, &[SECRET], T), Err(VerifyError::MalformedHeader));
    // Exactly at the length cap is still parsed.
    let base = format!("t={T},v1={sig},x=");
    let exact = format!("{base}{}", "a".repeat(MAX_HEADER_LEN - base.len()));
    assert_eq!(exact.len(), MAX_HEADER_LEN);
    assert_eq!(verify(&exact, BODY, &[SECRET], T), Ok(()));
}

#[test]
fn verify_now_uses_the_clock() {
    let now = unix_now();
    assert!(now > T);
    assert_eq!(verify_now(&sign(SECRET, now, BODY), BODY, &[SECRET]), Ok(()));
    assert_eq!(
        verify_now(&sign(SECRET, now - 3_600, BODY), BODY, &[SECRET]),
        Err(VerifyError::TimestampOutOfTolerance)
    );
}

#[test]
fn error_is_std_error_with_display() {
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(VerifyError::SignatureMismatch);
    assert_eq!(e.to_string(), "no signature matches the body and secrets");
    for v in [
        VerifyError::MissingTimestamp,
        VerifyError::MalformedHeader,
        VerifyError::NoSignature,
        VerifyError::TimestampOutOfTolerance,
        VerifyError::SignatureMismatch,
        VerifyError::NoSecrets,
    ] {
        assert!(!v.to_string().is_empty());
    }
}

proptest! {
    #[test]
    fn sign_verify_round_trip(
        secret in ".{1,80}",
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        t in 0i64..=4_102_444_800,
        skew in -300i64..=300,
    ) {
        let h = sign(&secret, t, &body);
        prop_assert_eq!(verify(&h, &body, &[&secret], t + skew), Ok(()));
        prop_assert_eq!(h.clone(), format!("t={t},v1={}", reference_hex(&secret, t, &body)));
        // With an extra, wrong secret alongside it still verifies.
        prop_assert_eq!(verify(&h, &body, &["whsec_wrong", &secret], t), Ok(()));
    }

    #[test]
    fn different_body_never_verifies(
        secret in ".{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..256),
        other in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        prop_assume!(body != other);
        let h = sign(&secret, T, &body);
        prop_assert_eq!(verify(&h, &other, &[&secret], T), Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn verify_never_panics_on_arbitrary_headers(header in any::<String>(), now in any::<i64>(), tol in any::<i64>()) {
        let _ = verify_with_tolerance(&header, BODY, &[SECRET], now, tol);
    }

    #[test]
    fn verify_never_panics_on_header_like_input(
        header in "[tv01 =,a-f0-9\t-]{0,300}",
        now in any::<i64>(),
    ) {
        let _ = verify(&header, BODY, &[SECRET], now);
    }

    #[test]
    fn verify_never_panics_on_mutated_header(
        pos in 0usize..200,
        byte in any::<u8>(),
    ) {
        let mut h = sign(SECRET, T, BODY).into_bytes();
        let i = pos % h.len();
        h[i] = byte;
        if let Ok(h) = String::from_utf8(h) {
            let _ = verify(&h, BODY, &[SECRET], T);
        }
    }
}

// Attacks: every truncation, every changed signature digit, every timestamp outside
// the window and every other secret is rejected.
proptest! {
    #[test]
    fn every_truncation_of_a_valid_header_is_rejected(cut in 0usize..200) {
        let h = sign(SECRET, T, BODY);
        let cut = cut % h.len();
        prop_assert!(verify(&h[..cut], BODY, &[SECRET], T).is_err(), "{}", &h[..cut]);
    }

    #[test]
    fn any_changed_signature_digit_is_rejected(pos in 0usize..64, digit in 0u8..16) {
        let h = sign(SECRET, T, BODY);
        let start = h.find("v1=").unwrap() + 3;
        let mut bytes = h.clone().into_bytes();
        let new = b"0123456789abcdef"[usize::from(digit)];
        prop_assume!(bytes[start + pos] != new);
        bytes[start + pos] = new;
        let forged = String::from_utf8(bytes).unwrap();
        prop_assert_eq!(verify(&forged, BODY, &[SECRET], T), Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn a_replay_outside_the_window_is_rejected_whatever_the_delay(delay in 301i64..10_000_000) {
        let h = sign(SECRET, T, BODY);
        prop_assert_eq!(verify(&h, BODY, &[SECRET], T + delay), Err(VerifyError::TimestampOutOfTolerance));
        prop_assert_eq!(verify(&h, BODY, &[SECRET], T - delay), Err(VerifyError::TimestampOutOfTolerance));
    }

    #[test]
    fn another_secret_never_verifies(other in ".{1,60}") {
        prop_assume!(other != SECRET);
        let h = sign(SECRET, T, BODY);
        prop_assert_eq!(verify(&h, BODY, &[&other], T), Err(VerifyError::SignatureMismatch));
    }
}
