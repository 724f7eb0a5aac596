use super::*;

fn usage() -> Usage {
    let mut ledger = Ledger { rru: 4.0, table_wru: 3.0, sqs: 3.0, ..Ledger::default() };
    ledger.index_wru.insert("gsi1".into(), 2.0);
    let mut lambda = BTreeMap::new();
    lambda.insert("events-publish".into(), LambdaUse { invocations: 1.0, billed_ms: 10.0, memory_mb: 128.0 });
    lambda.insert("dispatcher".into(), LambdaUse { invocations: 1.0, billed_ms: 30.0, memory_mb: 256.0 });
    Usage {
        deliveries: 1.0,
        api_requests: 1.0,
        lambda,
        ledger,
        log_bytes: 1100.0,
        platform_log_bytes_per_invocation: 350.0,
        access_log_bytes: 200.0,
        log_retention_days: 30.4375,
        data_out_bytes: 2000.0,
        stored_bytes: 3000.0,
        retention_days: 30.4375,
        pitr: true,
    }
}

#[test]
fn every_line_is_priced_from_its_units() {
    let lines = bill(&usage(), Arch::X86_64);
    let usd = |item: &str| lines.iter().find(|l| l.item == item).unwrap().usd;
    assert!((usd("API Gateway HTTP API") - 1e-6).abs() < 1e-15);
    assert!((usd("Lambda requests") - 0.4e-6).abs() < 1e-15);
    // 0.01 s × 0.125 GB + 0.03 s × 0.25 GB = 0.00875 GB-s
    assert!((usd("Lambda duration") - 0.00875 * LAMBDA_X86_GB_S_USD).abs() < 1e-15);
    assert!((usd("DynamoDB writes, indexes") - 2.0 * 0.625e-6).abs() < 1e-15);
    assert!((usd("DynamoDB reads") - 0.5e-6).abs() < 1e-15);
    // 1100 B logged + 2 invocations × 350 B of platform lines + 200 B of access log: 2000 B × $0.50/GB
    assert!((usd("CloudWatch Logs ingestion") - 2000.0 / 1e9 * 0.5).abs() < 1e-15);
    // kept a full month: 2000 B × $0.03/GB-month
    assert!((usd("CloudWatch Logs storage") - 2000.0 / 1e9 * 0.03).abs() < 1e-15);
    // a full month of retention: 3000 B × $0.25/GB-month
    assert!((usd("DynamoDB storage") - 3000.0 / 1e9 * 0.25).abs() < 1e-15);
    assert!((usd("Data transfer out") - 2000.0 / 1e9 * 0.09).abs() < 1e-15);
}

#[test]
fn an_access_log_line_is_its_format_with_each_variable_as_long_as_api_gateway_writes_it() {
    let format = r#"{"requestId":"$context.requestId","routeKey":"$context.routeKey","status":"$context.status","len":"$context.responseLength","x":"$context.somethingElse"}"#;
    let line = r#"{"requestId":"KpB0ljVxIAMEb9Q=","routeKey":"POST /v1/events","status":"202","len":"61","x":"0123456789abcdef"}"#;
    assert_eq!(access_log_line_bytes(format, "POST /v1/events", 202, 61), line.len() + 1);
    assert_eq!(access_log_line_bytes("no variables", "", 200, 0), "no variables".len() + 1);
}

#[test]
fn platform_lines_are_billed_unless_the_system_log_level_is_warn() {
    assert_eq!(platform_log_bytes(Some("WARN")), 0.0);
    assert_eq!(platform_log_bytes(Some("INFO")), LAMBDA_PLATFORM_LOG_BYTES);
    assert_eq!(platform_log_bytes(None), LAMBDA_PLATFORM_LOG_BYTES);
}

#[test]
fn subscription_state_writes_bound_containers_not_deliveries() {
    // 20 deliveries wrote 3 WRU on the key, 1 of them the subscription's last delivery.
    let k = KeyLimit::new("t: ACCT#{acct}".into(), 3.0 / 20.0, 0.0).with_cached(0.0, 1.0, 20.0);
    assert!((k.wru_per_delivery - 0.1).abs() < 1e-12);
    assert!((k.at_limit - 10_000.0).abs() < 1e-6);
    // Once a minute per container: 500 WCU/s × 60 s / 1 WRU.
    assert!((k.containers_at_half_write(60.0) - 30_000.0).abs() < 1e-6);
}

#[test]
fn arm64_is_cheaper_only_in_duration() {
    let u = usage();
    let gap = per_million(&u, Arch::X86_64) - per_million(&u, Arch::Arm64);
    assert!((gap - 0.00875 * (LAMBDA_X86_GB_S_USD - LAMBDA_ARM_GB_S_USD) * 1e6).abs() < 1e-9);
}

#[test]
fn per_million_divides_by_deliveries() {
    let mut u = usage();
    let one = per_million(&u, Arch::Arm64);
    u.deliveries = 10.0;
    assert!((per_million(&u, Arch::Arm64) - one / 10.0).abs() < 1e-12);
}

#[test]
fn idle_pollers_make_about_650_thousand_receives_a_month() {
    let r = idle_receives_per_month();
    assert!((650_000.0..660_000.0).contains(&r), "{r}");
    let f = Fixed { esm_queues: 2.0, idle_receives_per_queue_month: r, secrets: 1.0, alarms: 1.0, ..Fixed::default() };
    let t = total(&fixed_lines(&f, Arch::X86_64));
    assert!((t - (2.0 * r * 0.4e-6 + 0.40 + 0.10)).abs() < 1e-9, "{t}");
}

#[test]
fn key_shapes_name_the_owner() {
    let ev = vec!["evt-1".to_owned()];
    assert_eq!(key_shape("ACCT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0", &ev), ("ACCT#{acct}".into(), Scope::Account));
    assert_eq!(key_shape("SUB#sub_01JABCDEFGHJKMNPQRSTVWXYZ0#7", &ev), ("SUB#{sub}#{n}".into(), Scope::Subscription));
    assert_eq!(key_shape("EVT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0#evt-1", &ev).1, Scope::Item);
    assert_eq!(key_shape("APIKEY#0123456789abcdef0123456789abcdef", &ev).0, "APIKEY#{hash}");
}

#[test]
fn partition_keys_take_the_hottest_value_of_each_shape_per_delivery() {
    use crate::ledger::Load;
    let mut keys = BTreeMap::new();
    keys.insert(
        ("t".to_owned(), "ACCT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0".to_owned()),
        Load { wru: 40.0, rru: 10.0, ..Load::default() },
    );
    keys.insert(("due".to_owned(), "DUE#3".to_owned()), Load { wru: 4.0, rru: 0.0, ..Load::default() });
    keys.insert(("due".to_owned(), "DUE#4".to_owned()), Load { wru: 6.0, rru: 0.0, ..Load::default() });
    let p = partition_keys(&keys, 10.0, &[], true);
    let due = p.iter().find(|(_, k)| k.key == "due: DUE#{n}").unwrap();
    // Sharded: the 10 WRU of all its shards over the shard count; the sample's hottest is 0.6.
    assert_eq!(due.1.wru_per_delivery, 1.0 / f64::from(puck_aws::dynamo::DUE_SHARDS));
    assert_eq!(due.1.sample_hottest, (0.6, 0.0));
    let acct = p.iter().find(|(_, k)| k.key.starts_with("t:")).unwrap();
    assert_eq!((acct.0, acct.1.wru_per_delivery, acct.1.at_limit), (Scope::Account, 4.0, 250.0));
}

#[test]
fn cached_configuration_reads_bound_containers_not_deliveries() {
    use crate::ledger::Load;
    let mut keys = BTreeMap::new();
    // 20 deliveries: 2 WRU of the account key, and 6 RRU of which 5 were cache misses.
    keys.insert(
        ("t".to_owned(), "ACCT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0".to_owned()),
        Load { wru: 2.0, rru: 6.0, cached_rru: 5.0, ..Load::default() },
    );
    let p = partition_keys(&keys, 20.0, &[], true);
    let k = &p[0].1;
    assert!((k.rru_per_delivery - 0.05).abs() < 1e-12, "{k:?}");
    assert_eq!(k.at_limit, 1000.0 / 0.1);
    // Half of 3,000 RCU/s, refreshed every 5 s at 5 RRU a refresh: 1,500 containers.
    assert!((k.containers_at_half(5.0) - 1500.0).abs() < 1e-9);
}

#[test]
fn a_sharded_key_takes_its_owners_units_over_the_shard_count() {
    use crate::ledger::Load;
    let acct = "ACCT#acct_01JABCDEFGHJKMNPQRSTVWXYZ0";
    let mut keys = BTreeMap::new();
    // 10 deliveries of one account over 3 of its log shards: 30 WRU, the hottest shard 16.
    for (shard, wru) in [(3, 16.0), (17, 8.0), (40, 6.0)] {
        keys.insert(("t".to_owned(), format!("{acct}#D{shard}")), Load { wru, rru: wru / 2.0, ..Load::default() });
    }
    // The subscription's index shards, and an unsharded key of the same account.
    keys.insert(
        ("by_sub".to_owned(), "SUB#sub_01JABCDEFGHJKMNPQRSTVWXYZ0#5".to_owned()),
        Load { wru: 20.0, rru: 0.0, ..Load::default() },
    );
    keys.insert(("t".to_owned(), acct.to_owned()), Load { wru: 0.0, rru: 10.0, ..Load::default() });
    let p = partition_keys(&keys, 10.0, &[], true);
    let find = |k: &str| p.iter().find(|(_, l)| l.key == k).unwrap_or_else(|| panic!("{k} in {p:?}")).clone();
    let (scope, log) = find("t: ACCT#{acct}#D{n}");
    let shards = puck_aws::dynamo::LOG_SHARDS;
    assert_eq!((scope, log.shards), (Scope::Account, shards));
    assert!((log.wru_per_delivery - 3.0 / f64::from(shards)).abs() < 1e-12, "{log:?}");
    assert!((log.rru_per_delivery - 1.5 / f64::from(shards)).abs() < 1e-12, "{log:?}");
    assert_eq!(log.sample_hottest, (1.6, 0.8));
    assert!((log.at_limit - 1000.0 * f64::from(shards) / 3.0).abs() < 1e-6);
    let (scope, sub) = find("by_sub: SUB#{sub}#{n}");
    assert_eq!((scope, sub.shards), (Scope::Subscription, puck_aws::dynamo::SUB_SHARDS));
    assert!((sub.wru_per_delivery - 2.0 / f64::from(sub.shards)).abs() < 1e-12);
    let (_, plain) = find("t: ACCT#{acct}");
    assert_eq!((plain.shards, plain.rru_per_delivery, plain.sample_hottest), (1, 1.0, (0.0, 1.0)));
    assert_eq!(shard_count("DUE#{n}"), puck_aws::dynamo::DUE_SHARDS);
}

#[test]
fn the_ceiling_is_the_tightest_key() {
    let keys =
        vec![KeyLimit::new("t: ACCT#{acct}".into(), 4.0, 1.0), KeyLimit::new("gsi1: SUB#{sub}".into(), 0.5, 6.0)];
    assert_eq!(keys[0].at_limit, 250.0);
    assert_eq!(keys[1].at_limit, 500.0);
    assert_eq!(ceiling(&keys), 250.0);
    assert_eq!(ceiling(&[]), f64::INFINITY);
}
