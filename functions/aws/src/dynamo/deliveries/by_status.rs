//! A subscription's log filtered by status, and its in-flight deliveries. The `by_sub` index
//! holds a delivery's keys and the attributes that never change (event type and id, creation
//! time), not `status`: so a delivery's status changes never write the index (docs/storage.md). Filtering by status reads the log's items themselves, within a stated
//! bound per page ([`BASE_READS_PER_PAGE`]), whatever the account's other traffic: the index
//! holds only this subscription's deliveries.

use super::*;

/// Log items (read by key) one page of a subscription's log filtered by status reads at most: a
/// rare status stops here with a short page and a cursor. Each of the at most
/// [`ROUNDS_PER_PAGE`] rounds also examines at most [`EXAMINED_PER_PAGE`] index entries.
pub const BASE_READS_PER_PAGE: usize = EXAMINED_PER_PAGE;
/// Index reads one status-filtered page of a subscription's log makes at most.
pub const ROUNDS_PER_PAGE: usize = 10;
/// Index entries asked for per round at the least (a small page still reads in useful steps).
const MIN_ROUND: usize = 100;

impl DynamoDeliveryStore {
    /// A page of `filter.subscription_id`'s log with only `status`: index pages without the status
    /// filter, their items read by key and filtered here, until the page is full, the log ends or
    /// the read bound is reached (then a short page and the cursor where reading stopped).
    pub(super) async fn sub_page_by_status(
        &self,
        account: &AccountId,
        filter: &DeliveryFilter,
        status: DeliveryStatus,
        limit: usize,
        before: Option<&DeliveryId>,
    ) -> StoreResult<(Vec<Delivery>, Option<DeliveryId>)> {
        let unfiltered = DeliveryFilter { status: None, ..filter.clone() };
        let mut found: Vec<Delivery> = Vec::new();
        let mut cursor = before.cloned();
        let mut read = 0;
        for _ in 0..ROUNDS_PER_PAGE {
            let ask = (limit + 1).max(MIN_ROUND).min(BASE_READS_PER_PAGE - read);
            if ask == 0 {
                break;
            }
            let (items, next) = self.merged_page(account, &unfiltered, ask, cursor.as_ref()).await?;
            read += items.len();
            found.extend(items.into_iter().filter(|d| d.status == status));
            if found.len() > limit {
                found.truncate(limit);
                let next = found.last().map(|d| d.id.clone());
                return Ok((found, next));
            }
            cursor = next;
            if cursor.is_none() {
                return Ok((found, None));
            }
        }
        tracing::debug!(account_id = %account, read, found = found.len(), "subscription log page cut at its read bound");
        Ok((found, cursor))
    }

    /// The subscription's in-flight deliveries: its index entries (keys only), then their items by
    /// key, keeping those in flight. Used when a subscription is deleted, so it reads the whole
    /// subscription log once; what it misses the dispatcher abandons when it comes up.
    pub(super) async fn sub_in_flight(
        &self,
        account: &AccountId,
        subscription: &SubscriptionId,
    ) -> StoreResult<Vec<DeliveryId>> {
        let q = Query {
            index: Some(BY_SUB_INDEX),
            key_condition: "gsi1pk = :g".into(),
            filter: Some("begins_with(pk, :acct)".into()),
            projection: Some("pk, sk".into()),
            forward: true,
            ..Query::default()
        }
        .value(":acct", s(log_pk_prefix(account)));
        let queries = (0..SUB_SHARDS).map(|shard| {
            let q = q.clone().value(":g", s(sub_shard_pk(subscription, shard)));
            async move { self.table.query("Query subscription deliveries", &q, None).await }
        });
        let mut keys = Vec::new();
        for result in futures::future::join_all(queries).await {
            keys.extend(result?);
        }
        let mut ids = Vec::new();
        for item in self.table.batch_get("BatchGetItem subscription deliveries", &keys).await? {
            let d = decode(&item)?;
            if d.status.is_in_flight() {
                ids.push(d.id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}
