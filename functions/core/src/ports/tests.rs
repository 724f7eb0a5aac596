use super::*;

fn outcome(headers: Vec<(String, String)>, omitted: u32) -> SendOutcome {
    SendOutcome { status: Some(200), headers, headers_omitted: omitted, ..SendOutcome::default() }
}

#[test]
fn stored_headers_cap_count_and_bytes_and_say_how_many_were_left_out() {
    let many: Vec<_> = (0..500).map(|i| (format!("x-h{i:03}"), "v".repeat(10))).collect();
    let (kept, omitted) = outcome(many, 7).stored_headers();
    assert_eq!(kept.len(), MAX_STORED_RESPONSE_HEADERS);
    assert_eq!(omitted, 7 + 500 - MAX_STORED_RESPONSE_HEADERS as u32);
    assert!(kept.contains_key("x-h000") && kept.contains_key("x-h049") && !kept.contains_key("x-h050"));

    let big: Vec<_> = (0..20).map(|i| (format!("x-big{i:02}"), "b".repeat(3000))).collect();
    let (kept, omitted) = outcome(big, 0).stored_headers();
    let bytes: usize = kept.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(bytes <= MAX_STORED_RESPONSE_HEADER_BYTES, "{bytes}");
    assert_eq!((kept.len(), omitted), (5, 15));

    // One huge header does not hide the small ones after it.
    let mixed = vec![("x-huge".into(), "h".repeat(100_000)), ("content-type".into(), "text/plain".into())];
    let (kept, omitted) = outcome(mixed, 0).stored_headers();
    assert_eq!((kept.get("content-type").map(String::as_str), omitted), (Some("text/plain"), 1));
}

#[test]
fn stored_headers_keep_everything_that_fits() {
    let (kept, omitted) =
        outcome(vec![("a".into(), "1".into()), ("b".into(), "2".into()), ("a".into(), "3".into())], 0).stored_headers();
    assert_eq!(kept, BTreeMap::from([("a".into(), "3".into()), ("b".into(), "2".into())]));
    assert_eq!(omitted, 0);
}
