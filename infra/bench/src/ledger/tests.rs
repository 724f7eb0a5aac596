use super::*;
use serde_json::json;

fn schema(projection: Projection) -> Schema {
    Schema {
        pk: "pk".into(),
        sk: Some("sk".into()),
        indexes: vec![Index { name: "gsi1".into(), pk: "gsi1pk".into(), sk: Some("gsi1sk".into()), projection }],
    }
}

fn item(sk: &str, gsi: Option<&str>, pad: usize) -> Value {
    let mut i = json!({"pk": {"S": "ACCT#a"}, "sk": {"S": sk}, "body": {"S": "x".repeat(pad)}});
    if let Some(g) = gsi {
        i["gsi1pk"] = json!({"S": g});
        i["gsi1sk"] = json!({"S": "1"});
    }
    i
}

fn obj(v: &Value) -> Item {
    v.as_object().unwrap().clone()
}

#[test]
fn schema_comes_from_the_template() {
    let doc = json!({"Resources": {"T": {"Type": "AWS::DynamoDB::Table", "Properties": {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{"IndexName": "g", "KeySchema": [{"AttributeName": "gp", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]}}]}}}});
    let s = Schema::from_template(&doc).unwrap();
    assert_eq!(s.pk, "pk");
    assert_eq!(s.sk.as_deref(), Some("sk"));
    assert_eq!(
        s.indexes,
        vec![Index {
            name: "g".into(),
            pk: "gp".into(),
            sk: None,
            projection: Projection::Include(vec!["status".into()])
        }]
    );
}

#[test]
fn a_put_into_an_index_is_written_twice() {
    let s = schema(Projection::All);
    let put = Call::new("DynamoDB", "PutItem", Some(json!({"Item": item("DLV#1", Some("SUB#s"), 1500)})));
    let l = Replay::new(&s, "t", &[], &[]).run(&[put]);
    assert_eq!(l.table_wru, 2.0, "1.5 KB item = 2 WRU");
    assert_eq!(l.index_wru["gsi1"], 2.0, "projected ALL: the same 2 WRU again");
    assert_eq!(l.keys[&("gsi1".to_owned(), "SUB#s".to_owned())].wru, 2.0);
    assert_eq!(l.keys[&("t".to_owned(), "ACCT#a".to_owned())].wru, 2.0);
}

#[test]
fn keys_only_index_writes_the_small_entry_and_skips_unchanged_projections() {
    let s = schema(Projection::KeysOnly);
    let before = obj(&item("DLV#1", Some("SUB#s"), 3000));
    let mut after = before.clone();
    after.insert("body".into(), json!({"S": "y".repeat(3000)}));
    let upd = Call::new("DynamoDB", "UpdateItem", Some(json!({"Key": {"pk": {"S": "ACCT#a"}, "sk": {"S": "DLV#1"}}})));
    let l = Replay::new(&s, "t", &[before], &[after]).run(&[upd]);
    assert_eq!(l.table_wru, 3.0);
    assert_eq!(l.index_wru.get("gsi1"), None, "keys unchanged: no index write");
}

#[test]
fn an_update_bills_the_larger_image_and_a_moved_index_key_is_delete_plus_put() {
    let s = schema(Projection::All);
    let before = obj(&item("DLV#1", Some("SUB#s#pending"), 2500));
    let mut after = obj(&item("DLV#1", Some("SUB#s#done"), 10));
    after.remove("body");
    let upd = Call::new("DynamoDB", "UpdateItem", Some(json!({"Key": {"pk": {"S": "ACCT#a"}, "sk": {"S": "DLV#1"}}})));
    let l = Replay::new(&s, "t", &[before], &[after]).run(&[upd]);
    assert_eq!(l.table_wru, 3.0, "the larger of before (2.5 KB) and after");
    assert_eq!(l.index_wru["gsi1"], 4.0, "delete of the 2.5 KB entry (3) + put of the small one (1)");
    assert_eq!(l.keys[&("gsi1".to_owned(), "SUB#s#done".to_owned())].wru, 1.0);
}

#[test]
fn transactions_cost_double_and_failed_conditions_still_bill() {
    let s = schema(Projection::All);
    let tx = Call::new(
        "DynamoDB",
        "TransactWriteItems",
        Some(json!({"TransactItems": [
            {"Put": {"Item": item("EP#1", None, 10)}},
            {"ConditionCheck": {"Key": {"pk": {"S": "ACCT#a"}, "sk": {"S": "EP#1"}}}}
        ]})),
    );
    let mut failed = Call::new("DynamoDB", "PutItem", Some(json!({"Item": item("EVT#1", None, 10)})));
    failed.response = Some(json!({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}));
    let l = Replay::new(&s, "t", &[], &[]).run(&[tx, failed]);
    assert_eq!(l.table_wru, 2.0 + 1.0);
    assert_eq!(l.rru, 2.0);
}

#[test]
fn reads_bill_four_kb_units_and_queries_sum_what_they_return() {
    let s = schema(Projection::KeysOnly);
    let big = obj(&item("DLV#1", Some("SUB#s"), 5000));
    let get = Call::new(
        "DynamoDB",
        "GetItem",
        Some(json!({"Key": {"pk": {"S": "ACCT#a"}, "sk": {"S": "DLV#1"}}, "ConsistentRead": true})),
    );
    let mut q = Call::new(
        "DynamoDB",
        "Query",
        Some(json!({
        "IndexName": "gsi1", "KeyConditionExpression": "#p = :p", "ExpressionAttributeNames": {"#p": "gsi1pk"},
        "ExpressionAttributeValues": {":p": {"S": "SUB#s"}}})),
    );
    q.response = Some(json!({"Items": [big.clone()]}));
    let l = Replay::new(&s, "t", &[big], &[]).run(&[get, q]);
    // 5 KB consistent = 2 RRU; the keys-only entry (tiny) eventually consistent = 0.5.
    assert_eq!(l.rru, 2.5);
    assert_eq!(l.keys[&("gsi1".to_owned(), "SUB#s".to_owned())].rru, 0.5);
}

#[test]
fn stored_bytes_count_new_items_and_their_index_entries() {
    let s = schema(Projection::KeysOnly);
    let old = obj(&item("SUB#1", None, 10));
    let new = obj(&item("DLV#1", Some("SUB#s"), 900));
    let b = stored_bytes(&s, std::slice::from_ref(&old), &[old.clone(), new.clone()]);
    let entry = item_size(&s.project(&s.indexes[0], &new).unwrap());
    assert_eq!(b as usize, item_size(&new) + 100 + entry + 100);
    assert_eq!(stored_bytes(&s, &[old], &[]), -(8 + 7 + 14 + 100));
}

#[test]
fn sqs_bills_64_kib_chunks() {
    let s = schema(Projection::All);
    let mut send = Call::new("SQS", "SendMessageBatch", None);
    send.request_bytes = 130 * 1024;
    let mut recv = Call::new("SQS", "ReceiveMessage", None);
    recv.response_bytes = 10;
    let l = Replay::new(&s, "t", &[], &[]).run(&[send, recv]);
    assert_eq!(l.sqs, 3.0 + 1.0);
}

#[test]
fn per_container_units_leave_the_per_delivery_bill_but_stay_on_their_keys() {
    let mut ledger = Ledger { table_wru: 10.0, rru: 6.0, ..Ledger::default() };
    let state = Load { wru: 3.0, rru: 2.0, cached_rru: 2.0, state_wru: 2.0 };
    ledger.keys.insert(("t".into(), "ACCT#a".into()), state);
    ledger.keys.insert(("t".into(), "EVT#a#e".into()), Load { wru: 1.0, ..Load::default() });
    let billed = ledger.billed_per_delivery();
    assert_eq!((billed.table_wru, billed.rru), (8.0, 4.0));
    assert_eq!(billed.per_container, (2.0, 2.0));
    assert_eq!(billed.keys[&("t".to_owned(), "ACCT#a".to_owned())], state, "the partition model keeps them");
}
