//! Investigations: `pk=ACCT#<account>`, `sk=INV#<id>`. A provider delivery id (dedupe key) is
//! claimed by `sk=INBOUND#<endpoint>#<key>` in the same transaction, so a provider retrying the
//! same delivery gets the first investigation back instead of a second one.
//!
//! IAM: dynamodb:PutItem, TransactWriteItems, GetItem, DeleteItem.

use super::item::{from_item, to_item, Item};
use super::{account_pk, attr_str, corrupt, is_transaction_condition_failed, key, n, s, unavailable, Table};
use crate::fault_gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use puck_core::ids::{AccountId, EndpointId, InvestigationId};
use puck_core::model::Investigation;
use puck_core::ports::{InvestigationStore, StoreError, StoreResult};
use puck_core::time::Timestamp;

/// [`InvestigationStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoInvestigationStore {
    table: Table,
}

impl DynamoInvestigationStore {
    /// `retention_days` is the TTL of dedupe claims (investigations themselves do not expire).
    pub fn new(client: Client, table_name: impl Into<String>, retention_days: i64) -> Self {
        Self { table: Table::new(client, table_name, retention_days) }
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.table = self.table.with_faults(faults);
        self
    }
}

fn inv_sk(id: &InvestigationId) -> String {
    format!("INV#{id}")
}

fn claim_sk(endpoint: &EndpointId, dedupe_key: &str) -> String {
    format!("INBOUND#{endpoint}#{dedupe_key}")
}

fn investigation_item(inv: &Investigation) -> StoreResult<Item> {
    let mut item = to_item(inv).map_err(|e| corrupt("investigation", e))?;
    item.extend(key(account_pk(&inv.account_id), inv_sk(&inv.id)));
    Ok(item)
}

fn built<T, E>(r: Result<T, E>) -> StoreResult<T> {
    r.map_err(|_| StoreError::Corrupt("investigation transaction could not be built".into()))
}

#[async_trait]
impl InvestigationStore for DynamoInvestigationStore {
    async fn insert(
        &self,
        investigation: &Investigation,
        dedupe_key: Option<&str>,
    ) -> StoreResult<Option<InvestigationId>> {
        self.table.faults.dynamo()?;
        let item = investigation_item(investigation)?;
        let Some(dedupe_key) = dedupe_key else {
            self.table.put_item("PutItem investigation", item).await?;
            return Ok(None);
        };
        let pk = account_pk(&investigation.account_id);
        let sk = claim_sk(&investigation.endpoint_id, dedupe_key);
        let mut claim = key(pk.clone(), sk.clone());
        claim.insert("investigation_id".into(), s(investigation.id.as_str()));
        let expires = Timestamp::now().plus_seconds(self.table.retention_days * 86_400);
        claim.insert("expires_at".into(), n(expires.unix_seconds()));
        let claim_put = built(
            Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(claim))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let inv_put = built(Put::builder().table_name(&self.table.name).set_item(Some(item)).build())?;
        let res = self
            .table
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(claim_put).build())
            .transact_items(TransactWriteItem::builder().put(inv_put).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(None),
            Err(e) if is_transaction_condition_failed(&e, 0) => {
                let existing = self.table.get_item("GetItem inbound claim", pk, sk).await?;
                match existing.as_ref().and_then(|c| attr_str(c, "investigation_id")) {
                    Some(raw) => InvestigationId::parse(raw).map(Some).map_err(|e| corrupt("inbound claim", e)),
                    // Cancelled for another reason (a conflicting transaction): retryable.
                    None => Err(unavailable("TransactWriteItems investigation", &e)),
                }
            }
            Err(e) => Err(unavailable("TransactWriteItems investigation", &e)),
        }
    }

    async fn get(&self, account: &AccountId, id: &InvestigationId) -> StoreResult<Option<Investigation>> {
        let item = self.table.get_item("GetItem investigation", account_pk(account), inv_sk(id)).await?;
        item.as_ref().map(|i| from_item(i).map_err(|e| corrupt("investigation", e))).transpose()
    }

    async fn remove(&self, account: &AccountId, id: &InvestigationId) -> StoreResult<()> {
        self.table.faults.dynamo()?;
        self.table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .set_key(Some(key(account_pk(account), inv_sk(id))))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem investigation", &e))?;
        Ok(())
    }
}
