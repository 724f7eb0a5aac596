use super::*;
use crate::cost_scenarios::Scenario;
use crate::ledger::Ledger;

fn measured(key: &str, payload: usize, wru: f64) -> Measured {
    let usage = Usage { deliveries: 1.0, ledger: Ledger { table_wru: wru, ..Ledger::default() }, ..Usage::default() };
    Measured {
        scenario: Scenario { key: key.into(), payload, fanout: 1, batch: None, ingest: false, events: 1 },
        usage,
        event_ids: vec![],
        floor: crate::floor::FloorUse::of(1.0, 1.0, 1.0, false, payload as f64),
    }
}

pub(super) fn figures() -> CostFigures {
    let mut failed = BTreeMap::new();
    failed.insert(
        1024,
        Usage { deliveries: 1.0, ledger: Ledger { table_wru: 2.0, ..Ledger::default() }, ..Usage::default() },
    );
    CostFigures {
        // 1 KiB: 4 WRU = $2.50/M (goal $3 met); 16 KiB: 10 WRU = $6.25 > 2 × $2.50 (not met).
        measured: vec![measured("1KiB_fanout1_single", 1024, 4.0), measured("16KiB_fanout1_single", 16384, 10.0)],
        skipped: vec![("1KiB_fanout1_batch100".into(), "n/a: route not built".into())],
        failed,
        fixed: Fixed::default(),
        partition: vec![
            (Scope::Account, KeyLimit::new("t: ACCT#{acct}".into(), 4.0, 1.0)),
            (Scope::Item, KeyLimit::new("t: EVT#{evt}".into(), 100.0, 0.0)),
        ],
        partition_scenario: "1KiB_fanout1_single".into(),
        config_cache_secs: 5.0,
        init_calls: BTreeMap::new(),
    }
}

#[test]
fn cost_section_states_goals_gaps_and_skipped_scenarios() {
    let md = cost_md(&figures());
    // Floor of 1 → 1 at 1 KiB with no data out: API 1.00 + Lambda 0.20 + SQS 0.48 + 1.1 WRU
    // 0.6875 + storage ≈ 0.25: $2.62; the bill of 2.50 is 0.95 of it.
    assert!(md.contains("| `1KiB_fanout1_single` | 1 | $2.5000 | **$2.5000** | $2.6"), "{md}");
    assert!(md.contains(" | 0.95 | $2.6250 | $2.6250 |"), "{md}");
    assert!(md.contains("≤ 2× 1 KiB = $5.0000 | **not met**"), "{md}");
    assert!(md.contains("`1KiB_fanout1_batch100` | | n/a: route not built"));
    assert!(md.contains("Cause, from the bill of `16KiB_fanout1_single`: DynamoDB writes, table $6.2500"), "{md}");
    // The per-event key does not bound sustained traffic; the account key does: 250/s, half 125.
    assert!(md.contains("one account **125** (goal ≥ 10,000: **not met**)"), "{md}");
}

#[test]
fn partition_section_shows_shards_and_the_samples_hottest_shard() {
    let mut c = figures();
    // 2.56 WRU per delivery over 64 shards: 0.04 on each, 25,000/s at the limit.
    c.partition = vec![(Scope::Account, KeyLimit::sharded("t: ACCT#{acct}#D{n}".into(), 0.04, 0.0, 64, (0.5, 0.25)))];
    let md = partition_md(&c);
    assert!(
        md.contains("| `t: ACCT#{acct}#D{n}` | Account | 64 | 0.040 | 0.000 | 0.50 / 0.25 | 25000 | 12500 |"),
        "{md}"
    );
    assert!(md.contains("one account **12500** (goal ≥ 10,000: met)"), "{md}");
    assert!(md.contains("divided by the shard count"), "{md}");
}

#[test]
fn json_has_the_keys_of_issue_15() {
    let v = json(&figures(), None, &[], "2026-12-02T05:00:00Z", "quick");
    assert_eq!(v["cost_usd_per_million"]["1KiB_fanout1_single"]["arm64"], json!(2.5));
    assert_eq!(v["cost_usd_per_million"]["1KiB_fanout1_batch100"], Value::Null);
    assert_eq!(v["cost_usd_per_million_10pct_failing_once"]["1KiB_fanout1_single"]["x86_64"], json!(2.625));
    assert_eq!(v["ceiling_deliveries_per_s"]["account"], json!(125.0));
    assert_eq!(v["ceiling_deliveries_per_s"]["subscription"], json!(125.0));
    let floor = v["floor_usd_per_million"]["1KiB_fanout1_single"]["arm64"].as_f64().unwrap();
    let ratio = v["cost_over_floor"]["1KiB_fanout1_single"]["arm64"].as_f64().unwrap();
    assert!((floor - 2.62).abs() < 0.01 && (ratio - 2.5 / floor).abs() < 1e-3, "{floor} {ratio}");
    assert_eq!(v["floor_usd_per_million"]["1KiB_fanout1_batch100"], Value::Null);
    assert_eq!(v["failed_attempt_usd_per_million"]["arm64"], json!(1.25));
    for k in ["fixed_usd_per_month", "cpu_ms_per_delivery", "local_latency_ms", "init_ms", "measured_at"] {
        assert!(v.get(k).is_some(), "{k}");
    }
}
