//! API keys: `pk=APIKEY#<key_hash>`, `sk=APIKEY` is the record authentication reads (one GetItem
//! per request); `pk=ACCT#<account>`, `sk=KEY#<key_id>` holds the hash so a key can be revoked
//! by its public id. Both are written in one transaction. Accounts have no record of their own:
//! an account exists once a key was issued to it, which is one `KEY#` item under its partition.
//!
//! IAM: dynamodb:GetItem, TransactWriteItems (PutItem), UpdateItem; Query (account_exists).

use super::item::{from_item, to_item};
use super::{account_pk, attr_str, corrupt, is_condition_failed, key, s, unavailable, Query, Table};
use crate::fault_gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use puck_core::ids::{AccountId, ApiKeyId};
use puck_core::model::ApiKeyRecord;
use puck_core::ports::{ApiKeyStore, StoreError, StoreResult};

/// [`ApiKeyStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoApiKeyStore {
    table: Table,
}

impl DynamoApiKeyStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { table: Table::new(client, table_name, 0) }
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.table = self.table.with_faults(faults);
        self
    }
}

fn hash_pk(key_hash: &str) -> String {
    format!("APIKEY#{key_hash}")
}

fn built<T, E>(r: Result<T, E>) -> StoreResult<T> {
    r.map_err(|_| StoreError::Corrupt("api key transaction could not be built".into()))
}

#[async_trait]
impl ApiKeyStore for DynamoApiKeyStore {
    async fn find_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let item = self.table.get_item("GetItem api key", hash_pk(key_hash), "APIKEY".to_owned()).await?;
        item.as_ref().map(|i| from_item(i).map_err(|e| corrupt("api key", e))).transpose()
    }

    async fn insert(&self, record: &ApiKeyRecord) -> StoreResult<()> {
        self.table.faults.dynamo()?;
        let mut main = to_item(record).map_err(|e| corrupt("api key", e))?;
        main.extend(key(hash_pk(&record.key_hash), "APIKEY".to_owned()));
        let mut by_id = key(account_pk(&record.account_id), format!("KEY#{}", record.key_id));
        by_id.insert("key_hash".into(), s(record.key_hash.clone()));
        let put = |item| {
            built(
                Put::builder()
                    .table_name(&self.table.name)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )
            .map(|p| TransactWriteItem::builder().put(p).build())
        };
        self.table
            .client
            .transact_write_items()
            .transact_items(put(main)?)
            .transact_items(put(by_id)?)
            .send()
            .await
            .map_err(|e| unavailable("TransactWriteItems api key", &e))?;
        Ok(())
    }

    async fn revoke(&self, account: &AccountId, key_id: &ApiKeyId) -> StoreResult<bool> {
        let Some(by_id) =
            self.table.get_item("GetItem api key id", account_pk(account), format!("KEY#{key_id}")).await?
        else {
            return Ok(false);
        };
        let Some(key_hash) = attr_str(&by_id, "key_hash") else {
            return Err(corrupt("api key", "id item without key_hash"));
        };
        let res = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(hash_pk(key_hash), "APIKEY".to_owned())))
            .update_expression("SET revoked = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("UpdateItem api key", &e)),
        }
    }

    async fn account_exists(&self, account: &AccountId) -> StoreResult<bool> {
        let q = Query {
            key_condition: "pk = :pk AND begins_with(sk, :p)".into(),
            projection: Some("pk".into()),
            forward: true,
            ..Query::default()
        }
        .value(":pk", s(account_pk(account)))
        .value(":p", s("KEY#"));
        let (items, _) = self.table.query_page("Query account keys", &q, 1, None).await?;
        Ok(!items.is_empty())
    }
}
