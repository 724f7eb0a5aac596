use super::*;

#[test]
fn in_flight_item_has_due_fields_and_ttl() {
    let d = crate::dynamo::item::tests::delivery();
    let item = delivery_item(&d).unwrap();
    for kept_elsewhere in ["payload", "attempts", "id", "account_id"] {
        assert!(!item.contains_key(kept_elsewhere), "{kept_elsewhere}");
    }
    assert_eq!(attr_str(&item, "sk"), Some(format!("DLV#{}", d.id).as_str()));
    let shard = shard_hash(&d.id);
    assert_eq!(attr_str(&item, "pk"), Some(format!("ACCT#{}#D{}", d.account_id, shard % LOG_SHARDS).as_str()));
    assert_eq!(attr_str(&item, "gsi1pk"), Some(format!("SUB#{}#{}", d.subscription_id, shard % SUB_SHARDS).as_str()));
    assert_eq!(attr_str(&item, "gsi1sk"), Some(d.id.as_str()));
    assert!(attr_str(&item, "due_pk").is_some_and(|p| p.starts_with("DUE#")));
    assert_eq!(item.get("due_at"), Some(&AttributeValue::N("1700000030000".into())));
    assert_eq!(item.get("expires_at"), Some(&AttributeValue::N((1_700_000_000 + 30 * 86_400).to_string())));
    assert_eq!(decode(&item).unwrap(), Delivery { payload: String::new(), attempts: Vec::new(), ..d });
}

#[test]
fn body_round_trips_compressed_and_attempts_sort_by_number() {
    let payload = format!("{{\"data\":\"{}\"}}", "x".repeat(128 * 1024));
    let packed = compress(&payload).unwrap();
    assert!(packed.len() < payload.len() / 10, "{}", packed.len());
    assert_eq!(decompress(&packed).unwrap(), payload);
    assert!(decompress(b"not deflate at all").is_err() || decompress(b"not deflate at all").unwrap() != payload);
    let id = DeliveryId::parse("dlv_01hzy0000000000000000000aa").unwrap();
    assert!(att_sk(9) < att_sk(10) && att_sk(10) == "0000000010");
    let account = AccountId::parse("acct_01hzy0000000000000000000ab").unwrap();
    assert_eq!(att_pk(&account, &id), format!("ATT#{account}#{id}"));
}

#[test]
fn terminal_item_has_no_due_fields() {
    let mut d = crate::dynamo::item::tests::delivery();
    d.status = DeliveryStatus::Succeeded;
    let item = delivery_item(&d).unwrap();
    assert!(!item.contains_key("due_pk") && !item.contains_key("due_at"));
}

#[test]
fn due_shard_is_stable_and_in_range() {
    let id = DeliveryId::parse("dlv_01hzy0000000000000000000aa").unwrap();
    let shard = due_shard(&id);
    assert_eq!(shard, due_shard(&id));
    let n: u32 = shard.trim_start_matches("DUE#").parse().unwrap();
    assert!(n < DUE_SHARDS);
    let spread: std::collections::HashSet<String> =
        (0..2000).map(|i| due_shard(&DeliveryId::generate(1_700_000_000_000 + i))).collect();
    assert_eq!(spread.len(), DUE_SHARDS as usize);
}

#[test]
fn every_item_key_names_its_account() {
    let account = AccountId::parse("acct_01hzy0000000000000000000ab").unwrap();
    let id = DeliveryId::parse("dlv_01hzy0000000000000000000aa").unwrap();
    let event = EventId::parse("evt-1").unwrap();
    assert_eq!(body_pk(&account, &id), format!("BODY#{account}#{id}"));
    assert_eq!(evt_pk(&account, &event), format!("EVT#{account}#evt-1"));
    let pk = log_pk(&account, &id);
    assert!(pk.starts_with(&log_pk_prefix(&account)), "{pk}");
    assert_eq!(account_of_log_pk(&pk), Some(account.clone()));
    assert_eq!(account_of_log_pk(&format!("ACCT#{account}")), None, "an unsharded key is not a log key");
    assert_eq!(account_of_log_pk(&format!("ACCT#{account}#Dx")), None);
}

#[test]
fn shards_are_stable_in_range_and_nest() {
    let account = AccountId::parse("acct_01hzy0000000000000000000ab").unwrap();
    let sub = SubscriptionId::generate(1_700_000_000_000);
    let ids: Vec<DeliveryId> = (0..2000).map(|i| DeliveryId::generate(1_700_000_000_000 + i)).collect();
    let log: std::collections::HashSet<String> = ids.iter().map(|id| log_pk(&account, id)).collect();
    let by_sub: std::collections::HashSet<String> = ids.iter().map(|id| sub_pk(&sub, id)).collect();
    assert_eq!(log.len(), LOG_SHARDS as usize);
    assert_eq!(by_sub.len(), SUB_SHARDS as usize);
    assert_eq!(LOG_SHARDS % SUB_SHARDS, 0);
    for id in &ids {
        assert_eq!(log_pk(&account, id), log_pk(&account, id));
        let h = shard_hash(id);
        assert_eq!(log_pk(&account, id), log_shard_pk(&account, h % LOG_SHARDS));
        assert_eq!(sub_pk(&sub, id), sub_shard_pk(&sub, h % SUB_SHARDS));
    }
}

#[test]
fn the_attempt_that_ends_a_delivery_rides_in_its_item_and_decodes_with_it() {
    let d = crate::dynamo::item::tests::delivery();
    let attempt = d.attempts.last().expect("the sample has an attempt").clone();
    assert_eq!(inline_attempt(&attempt, false).unwrap(), None, "an attempt a retry follows keeps its own item");
    let (name, bytes) = inline_attempt(&attempt, true).unwrap().expect("a small attempt rides inline");
    assert_eq!(name, format!("att{}", attempt.number));
    let mut item = delivery_item(&d).unwrap();
    item.insert(name, AttributeValue::B(bytes.into()));
    assert_eq!(decode(&item).unwrap().attempts, vec![attempt.clone()]);

    let mut huge = attempt;
    let mut state: u64 = 7;
    let noise = (0..4096).map(|_| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        char::from(b'!' + (state >> 58) as u8)
    });
    huge.response_body = Some(noise.collect());
    assert_eq!(inline_attempt(&huge, true).unwrap(), None, "one that compresses past the limit gets its own item");
}
