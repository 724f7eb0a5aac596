use super::*;

fn outcome(status: Option<u16>, headers: &[(&str, &str)]) -> SendOutcome {
    SendOutcome {
        status,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..SendOutcome::default()
    }
}

fn at(count: u32) -> Receipt {
    Receipt { count, received_at: Timestamp(0) }
}

fn retry_in(v: Verdict) -> Option<u32> {
    v.retry_in_secs
}

#[test]
fn classification_follows_design_section_6() {
    let p = RetryPolicy { base_secs: 10, max_secs: 3600, max_attempts: 5 };
    let now = Timestamp(0);
    let done = |status| Verdict { status, retry_in_secs: None, handed_to_sweeper: false };
    assert_eq!(classify(&p, &outcome(Some(204), &[]), 1, at(1), now), done(DeliveryStatus::Succeeded));
    assert_eq!(classify(&p, &outcome(Some(410), &[]), 1, at(1), now), done(DeliveryStatus::FailedPermanent));
    let v = classify(&p, &outcome(Some(500), &[]), 1, at(1), now);
    assert_eq!(v.status, DeliveryStatus::Failed);
    assert!(matches!(v.retry_in_secs, Some(d) if (7..=10).contains(&d)) && !v.handed_to_sweeper);
    assert_eq!(retry_in(classify(&p, &outcome(Some(429), &[("Retry-After", "77")]), 2, at(2), now)), Some(77));
    // Retry-After on a plain 500 is not honoured.
    assert!(
        matches!(retry_in(classify(&p, &outcome(Some(500), &[("Retry-After", "77")]), 1, at(1), now)), Some(d) if d <= 10)
    );
    assert!(matches!(classify(&p, &outcome(Some(302), &[]), 1, at(1), now).status, DeliveryStatus::Failed));
    // The last attempt fails the delivery permanently, whatever the receive count says.
    assert_eq!(classify(&p, &outcome(None, &[]), 5, at(5), now), done(DeliveryStatus::FailedPermanent));
    assert_eq!(classify(&p, &outcome(None, &[]), 5, at(1), now), done(DeliveryStatus::FailedPermanent));
}

#[test]
fn receives_spent_without_attempts_do_not_use_up_the_attempts() {
    let p = RetryPolicy { base_secs: 10, max_secs: 3600, max_attempts: 5 };
    // Attempt 3 on the queue's 5th (last) receive: two receives were throttled, not attempts.
    let v = classify(&p, &outcome(Some(500), &[]), 3, at(5), Timestamp(0));
    assert_eq!(v.status, DeliveryStatus::Failed);
    assert!(v.retry_in_secs.is_some() && v.handed_to_sweeper, "{v:?}");
}

#[test]
fn a_long_retry_after_is_capped_at_the_window_of_the_receive() {
    let p = RetryPolicy::default();
    let received = Timestamp::from_unix_seconds(1_000_000);
    let now = received.plus_seconds(30);
    let v = classify(
        &p,
        &outcome(Some(429), &[("Retry-After", "86400")]),
        1,
        Receipt { count: 1, received_at: received },
        now,
    );
    let delay = v.retry_in_secs.unwrap();
    assert_eq!(delay, 43_200 - crate::backoff::RECEIVE_MARGIN_SECS - 30);
    // Now + delay stays inside receive + 12 h, as SQS demands.
    assert!(now.unix_seconds() + i64::from(delay) <= received.unix_seconds() + 43_200);
}
