//! The embedded DynamoDB keeps DynamoDB's promise that each call is atomic while many arrive at
//! once. Unpatched, moto answers a TransactWriteItems racing other writes with a 500 (it
//! deep-copies the table mid-insert) and a cancelled transaction restores that copy, wiping the
//! other writes: CI saw it as a 503 on endpoint create under the OpenAPI fuzz.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TransactWriteItem,
};
use puck_local::Moto;

const WRITERS: usize = 4;
const PUTS_PER_WRITER: usize = 150;
const TRANSACTORS: usize = 2;
const TRANSACTIONS_PER_TRANSACTOR: usize = 100;
/// Each transactor reuses these keys, so most of its transactions are cancelled by their
/// condition: the path where moto restores its copy of the table.
const TRANSACTION_KEYS: usize = 25;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transactions_and_puts_neither_fail_nor_lose_writes() {
    let moto = Moto::start().await.expect("moto starts");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        // A 500 must surface here, not be retried away.
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let db = aws_sdk_dynamodb::Client::new(&config);
    db.create_table()
        .table_name("atomic")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .key_schema(KeySchemaElement::builder().attribute_name("sk").key_type(KeyType::Range).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("sk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .send()
        .await
        .expect("table created");

    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..PUTS_PER_WRITER {
                let put = db
                    .put_item()
                    .table_name("atomic")
                    .item("pk", s(format!("put#{writer}#{i}")))
                    .item("sk", s("-"))
                    .send()
                    .await;
                if let Err(e) = put {
                    failures.push(format!("PutItem: {e:?}"));
                }
            }
            failures
        }));
    }
    for transactor in 0..TRANSACTORS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..TRANSACTIONS_PER_TRANSACTOR {
                let key = i % TRANSACTION_KEYS;
                let put = |sk: &str| {
                    let put = Put::builder()
                        .table_name("atomic")
                        .item("pk", s(format!("tx#{transactor}#{key}")))
                        .item("sk", s(sk))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .unwrap();
                    TransactWriteItem::builder().put(put).build()
                };
                let res = db.transact_write_items().transact_items(put("a")).transact_items(put("b")).send().await;
                match res {
                    Ok(_) => {}
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => {}
                    Err(e) => failures.push(format!("TransactWriteItems: {e:?}")),
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.expect("task runs"));
    }
    assert!(failures.is_empty(), "{} calls failed, first: {}", failures.len(), failures[0]);

    let mut count = 0;
    let mut start = None;
    loop {
        let page = db
            .scan()
            .table_name("atomic")
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        count += page.count() as usize;
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    assert_eq!(
        count,
        WRITERS * PUTS_PER_WRITER + TRANSACTORS * TRANSACTION_KEYS * 2,
        "every put and every committed transaction is in the table"
    );
    moto.stop().await.expect("moto stops");
}
