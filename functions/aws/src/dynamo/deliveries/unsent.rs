//! The sweeper's look at recent publishes: nothing is lost between DynamoDB and SQS although a
//! fresh delivery has no due-index entry of its own (which would cost an index write when it is
//! put and another when it leaves flight, for every delivery).
//!
//! Instead each event record carries one entry (`due_pk=PUB#<n>`, `due_at=<publish, epoch ms>`)
//! for all of its deliveries. The sweeper reads the entries from its mark (the item
//! `SWEEP#publishes`, attribute `upto`) to `before` (the grace period ago), reads the records and
//! their deliveries by key, and returns those nothing has taken: still `pending` with no attempt,
//! no claim and no sweep. It marks them swept (which gives them an entry of their own) and sends
//! them, then moves the mark: each entry is looked at about once, never again (the entries stay
//! until the retention TTL removes the record). A run stopped before moving the mark is repeated.
//! The mark trails by a minute, so a record written up to a minute after its publish began (the
//! publish function's timeout is far shorter) is never behind it.

use super::*;
use puck_core::ports::Unsent;

/// The sweep mark's key.
const MARK_PK: &str = "SWEEP#publishes";
/// How far the mark trails the newest entry looked at: a publish's record written up to this
/// long after the publish began (its `emitted_at`, the entry's time) is still seen.
const MARK_LAG_SECS: i64 = 60;
/// How far back the first run looks when there is no mark yet (a new stack, or one upgraded
/// from the layout where every delivery had its own entry).
const FIRST_LOOK_BACK_SECS: i64 = 86_400;

impl DynamoDeliveryStore {
    pub(super) async fn unsent_published(&self, before: Timestamp, limit: usize) -> StoreResult<Unsent> {
        let mark = self.table.get_item("GetItem sweep mark", MARK_PK.to_owned(), ITEM_SK.to_owned()).await?;
        let from = mark
            .as_ref()
            .and_then(|m| m.get("upto"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(before.plus_seconds(-FIRST_LOOK_BACK_SECS), Timestamp);
        if from >= before {
            return Ok(Unsent::default());
        }
        // At least 100 a shard, so one millisecond's publishes never fill a shard's share.
        let per_shard = limit.div_ceil(DUE_SHARDS as usize).max(100);
        let queries = (0..DUE_SHARDS).map(|shard| {
            let q = Query {
                index: Some(DUE_INDEX),
                key_condition: "due_pk = :d AND due_at BETWEEN :from AND :to".into(),
                projection: Some("pk, sk, due_at".into()),
                forward: true,
                ..Query::default()
            }
            .value(":d", s(pub_shard_pk(shard)))
            .value(":from", n(from.unix_ms()))
            .value(":to", n(before.unix_ms() - 1));
            async move { self.table.query("Query published events", &q, Some(per_shard)).await }
        });
        // A shard that filled its share may hold more: everything below the lowest such stop was
        // read in every shard, and only that is answered now.
        let mut upto = before.unix_ms();
        let mut entries: Vec<(i64, Item)> = Vec::new();
        for result in futures::future::join_all(queries).await {
            let items = result?;
            // The query reads one item past its share when there is one: then the shard was read
            // up to that item's time, not to `before`.
            let full = items.len() > per_shard;
            let mut last = None;
            for item in items {
                let at = item.get("due_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
                let at = at.ok_or_else(|| corrupt("event", "due entry without due_at"))?;
                last = Some(at);
                entries.push((at, key(attr_str(&item, "pk").unwrap_or_default().to_owned(), ITEM_SK.to_owned())));
            }
            if let (true, Some(last)) = (full, last) {
                upto = upto.min(last);
            }
        }
        let more = upto < before.unix_ms();
        let keys: Vec<Item> = entries.into_iter().filter(|(at, _)| *at < upto).map(|(_, k)| k).collect();
        let deliveries = self.untaken(&keys).await?;
        // The mark trails by MARK_LAG_SECS: a record written that long after its publish began
        // is still looked at (the last minute's entries are read again by the next run).
        let mark_to = upto.min(before.plus_seconds(-MARK_LAG_SECS).unix_ms());
        Ok(Unsent { deliveries, upto: (mark_to > from.unix_ms()).then_some(Timestamp(mark_to)), more })
    }

    /// The deliveries of the event records at `keys` that nothing has taken yet.
    async fn untaken(&self, keys: &[Item]) -> StoreResult<Vec<(AccountId, DeliveryId)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut wanted: Vec<Item> = Vec::new();
        for record in self.table.batch_get("BatchGetItem published events", keys).await? {
            let event = decode_event(record)?;
            wanted.extend(event.deliveries.iter().map(|id| key(log_pk(&event.account_id, id), dlv_sk(id))));
        }
        let mut out = Vec::new();
        for item in self.table.batch_get("BatchGetItem published deliveries", &wanted).await? {
            let untouched = ["claim_holder", "swept", "due_pk"].iter().all(|a| !item.contains_key(*a));
            let d = decode(&item)?;
            if untouched && d.status == DeliveryStatus::Pending && d.attempt_count == 0 {
                out.push((d.account_id, d.id));
            }
        }
        Ok(out)
    }

    /// Moves the sweep mark forward to `upto` (never back).
    pub(super) async fn move_sweep_mark(&self, upto: Timestamp) -> StoreResult<()> {
        self.table.faults.dynamo()?;
        let mut item = key(MARK_PK.to_owned(), ITEM_SK.to_owned());
        item.insert("upto".into(), n(upto.unix_ms()));
        let res = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(upto) OR upto < :upto")
            .expression_attribute_values(":upto", n(upto.unix_ms()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable("PutItem sweep mark", &e)),
        }
    }
}
