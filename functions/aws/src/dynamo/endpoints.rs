//! Inbound endpoints: `pk=ACCT#<account>`, `sk=EP#<id>`, plus a lookup item
//! `pk=EPKEY#<url_key_hash>`, `sk=EPKEY` holding a full copy of the endpoint, so the receiver
//! finds an endpoint by its URL key in one read. Endpoints are never modified after creation, so
//! the copy cannot drift; both items are written and deleted in one transaction.
//!
//! IAM: dynamodb:TransactWriteItems (with PutItem/DeleteItem on the table), GetItem, Query.

use super::item::{from_item, to_item, Item};
use super::{
    account_pk, corrupt, is_transaction_condition_failed, is_transaction_conflict, key, s, unavailable, Query, Table,
};
use crate::fault_gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use puck_core::ids::{AccountId, EndpointId};
use puck_core::model::Endpoint;
use puck_core::ports::{EndpointStore, StoreError, StoreResult};

const SK_PREFIX: &str = "EP#";

/// [`EndpointStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoEndpointStore {
    table: Table,
}

impl DynamoEndpointStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self { table: Table::new(client, table_name, 0) }
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.table = self.table.with_faults(faults);
        self
    }
}

fn ep_sk(id: &EndpointId) -> String {
    format!("{SK_PREFIX}{id}")
}

fn lookup_key(url_key_hash: &str) -> Item {
    key(format!("EPKEY#{url_key_hash}"), "EPKEY".to_owned())
}

/// The endpoint item and its lookup item.
pub(crate) fn endpoint_items(ep: &Endpoint) -> StoreResult<(Item, Item)> {
    let body = to_item(ep).map_err(|e| corrupt("endpoint", e))?;
    let mut main = body.clone();
    main.extend(key(account_pk(&ep.account_id), ep_sk(&ep.id)));
    let mut lookup = body;
    lookup.extend(lookup_key(&ep.url_key_hash));
    Ok((main, lookup))
}

fn decode(item: &Item) -> StoreResult<Endpoint> {
    from_item(item).map_err(|e| corrupt("endpoint", e))
}

fn built<T, E>(r: Result<T, E>) -> StoreResult<T> {
    r.map_err(|_| StoreError::Corrupt("endpoint transaction could not be built".into()))
}

#[async_trait]
impl EndpointStore for DynamoEndpointStore {
    async fn insert(&self, endpoint: &Endpoint) -> StoreResult<()> {
        self.table.faults.dynamo()?;
        let (main, lookup) = endpoint_items(endpoint)?;
        let put = |item: Item| -> StoreResult<TransactWriteItem> {
            let put = built(
                Put::builder()
                    .table_name(&self.table.name)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        self.table
            .client
            .transact_write_items()
            .transact_items(put(main)?)
            .transact_items(put(lookup)?)
            .send()
            .await
            .map_err(|e| unavailable("TransactWriteItems endpoint", &e))?;
        Ok(())
    }

    async fn list(&self, account: &AccountId) -> StoreResult<Vec<Endpoint>> {
        let q = Query { key_condition: "pk = :pk AND begins_with(sk, :p)".into(), forward: true, ..Query::default() }
            .value(":pk", s(account_pk(account)))
            .value(":p", s(SK_PREFIX));
        let items = self.table.query("Query endpoints", &q, None).await?;
        items.iter().map(decode).collect()
    }

    async fn find_by_key_hash(&self, url_key_hash: &str) -> StoreResult<Option<Endpoint>> {
        let item =
            self.table.get_item("GetItem endpoint key", format!("EPKEY#{url_key_hash}"), "EPKEY".to_owned()).await?;
        item.as_ref().map(decode).transpose()
    }

    async fn delete(&self, account: &AccountId, id: &EndpointId) -> StoreResult<bool> {
        // A concurrent delete (or create) of the same items cancels the transaction with a
        // `TransactionConflict`: read again and retry, as DynamoDB advises, a few times, backing
        // off so the other transaction can finish.
        for round in 0..5u32 {
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20u64 << round)).await;
            }
            let Some(item) = self.table.get_item("GetItem endpoint", account_pk(account), ep_sk(id)).await? else {
                return Ok(false);
            };
            let ep = decode(&item)?;
            let delete = |key: Item| -> StoreResult<TransactWriteItem> {
                let del = built(
                    Delete::builder()
                        .table_name(&self.table.name)
                        .set_key(Some(key))
                        .condition_expression("attribute_exists(pk)")
                        .build(),
                )?;
                Ok(TransactWriteItem::builder().delete(del).build())
            };
            let res = self
                .table
                .client
                .transact_write_items()
                .transact_items(delete(super::key(account_pk(account), ep_sk(id)))?)
                .transact_items(delete(lookup_key(&ep.url_key_hash))?)
                .send()
                .await;
            match res {
                Ok(_) => return Ok(true),
                // Deleted concurrently: the other delete reported true.
                Err(e) if is_transaction_condition_failed(&e, 0) || is_transaction_condition_failed(&e, 1) => {
                    return Ok(false)
                }
                Err(e) if is_transaction_conflict(&e) => continue,
                Err(e) => return Err(unavailable("TransactWriteItems endpoint delete", &e)),
            }
        }
        Err(StoreError::Unavailable("TransactWriteItems endpoint delete: transaction conflicts persisted".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use puck_core::model::Provider;
    use puck_core::time::Timestamp;

    #[test]
    fn both_items_decode_to_the_endpoint() {
        let ep = Endpoint {
            id: EndpointId::generate(1),
            account_id: AccountId::generate(1),
            provider: Provider::Generic,
            url_key_hash: "cd".repeat(32),
            url_key_prefix: "abcd".into(),
            signing_secret_enc: None,
            active: true,
            default_scope: None,
            default_depth: Some("deep".into()),
            created_at: Timestamp(7),
        };
        let (main, lookup) = endpoint_items(&ep).unwrap();
        assert_eq!(super::super::attr_str(&lookup, "pk"), Some(format!("EPKEY#{}", "cd".repeat(32)).as_str()));
        assert_eq!(super::super::attr_str(&main, "sk"), Some(format!("EP#{}", ep.id).as_str()));
        assert_eq!(decode(&main).unwrap(), ep);
        assert_eq!(decode(&lookup).unwrap(), ep);
    }
}
