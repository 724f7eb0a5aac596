//! The delivery log's pages: an account's log (or a subscription's, in the `by_sub_log` index) is
//! spread over shards, so a page is a merge of newest-first reads of every shard, each read only
//! as deep as the page needs.

use super::*;

/// The range-key window `[lo, hi]` (bare delivery ids) of a log query. Ids are time-ordered, so
/// `since`/`until` narrow the key range itself and nothing outside the window is read; `before`
/// (the cursor) is inclusive here and dropped from the results.
fn id_window(filter: &DeliveryFilter, before: Option<&DeliveryId>) -> (Option<String>, Option<String>) {
    let lo = filter.since.map(|t| time_floor(DeliveryId::PREFIX, t.unix_ms()));
    let until = filter.until.map(|t| time_floor(DeliveryId::PREFIX, t.unix_ms()));
    let hi = match (before.map(|b| b.as_str().to_owned()), until) {
        (Some(b), Some(u)) => Some(b.min(u)),
        (b, u) => b.or(u),
    };
    (lo, hi)
}

/// The log filters that are not part of the key: event type and id, and `created_at` in
/// `[since, until)` (stored as millisecond RFC 3339 text, which sorts as time).
fn log_filters(filter: &DeliveryFilter, mut q: Query, filters: &mut Vec<&'static str>) -> Query {
    if let Some(t) = &filter.event_type {
        filters.push("event_type = :et");
        q = q.value(":et", s(t.as_str()));
    }
    if let Some(e) = &filter.event_id {
        filters.push("event_id = :eid");
        q = q.value(":eid", s(e.as_str()));
    }
    if let Some(t) = filter.since {
        filters.push("created_at >= :since");
        q = q.value(":since", s(t.rfc3339()));
    }
    if let Some(t) = filter.until {
        filters.push("created_at < :until");
        q = q.value(":until", s(t.rfc3339()));
    }
    q
}

/// One shard's part in a merged read of the log, newest first.
pub(super) struct ShardRead {
    q: Query,
    /// Where the next read continues; `None` before the first.
    start: Option<Item>,
    done: bool,
}

impl ShardRead {
    pub(super) fn new(q: Query) -> Self {
        Self { q, start: None, done: false }
    }

    /// Whether the shard may still hold an item newer than `cutoff` (the `want`-th newest found;
    /// `None` while fewer were found): not yet read, or its last read stopped above it (every item
    /// not yet read sorts below where the read stopped).
    pub(super) fn may_hold_above(&self, cutoff: Option<&str>) -> bool {
        match (&self.start, cutoff) {
            _ if self.done => false,
            (None, _) | (_, None) => true,
            (Some(start), Some(cutoff)) => attr_str(start, "sk").is_none_or(|sk| sk > cutoff),
        }
    }

    pub(super) fn advance(&mut self, next: Option<Item>) {
        self.done = next.is_none();
        self.start = next;
    }
}

fn sk_of(item: &Item) -> &str {
    attr_str(item, "sk").unwrap_or_default()
}

/// Log items one page examines at most (DynamoDB's Query `Limit` counts the items evaluated before
/// the filter): a rare filter stops here with a short page and a cursor rather than reading the
/// whole log (docs/api.md, "Delivery-log filters"). Log items are under 1 KB and index entries smaller, so a
/// page reads under 1 MB.
pub const EXAMINED_PER_PAGE: usize = 1_000;
// The first round reads every shard at least twice over, so each shard's read stops below the
// cursor it started from and a page always moves on (test:
// a_rare_filter_pages_through_a_long_log_a_bounded_read_at_a_time).
const _: () = assert!(EXAMINED_PER_PAGE >= 2 * LOG_SHARDS as usize);

/// The read budget of a page of `limit`: [`EXAMINED_PER_PAGE`], or four items per one asked for
/// when a larger page is asked (recover pages of up to its per-call maximum).
fn examine_budget(limit: usize) -> usize {
    EXAMINED_PER_PAGE.max(4 * (limit + 1))
}

/// The Query every shard runs (its `:part` set per shard) and the shards' partition values.
fn log_query(account: &AccountId, filter: &DeliveryFilter, before: Option<&DeliveryId>) -> (Query, Vec<String>) {
    let mut filters = Vec::new();
    let mut q = Query { forward: false, ..Query::default() };
    let (shards, partition, range_attr, range_prefix) = match &filter.subscription_id {
        // The subscription's partitions of the index; the account check keeps a foreign
        // subscription id from revealing another tenant's log (the service answers 404 before
        // that). The index holds keys and the filtered attributes only: the page's items are
        // then read by key.
        Some(_) => {
            q.index = Some(BY_SUB_INDEX);
            q = q.value(":acct", s(log_pk_prefix(account)));
            filters.push("begins_with(pk, :acct)");
            (SUB_SHARDS, "gsi1pk = :part", "gsi1sk", "")
        }
        None => (LOG_SHARDS, "pk = :part", "sk", DLV_PREFIX),
    };
    match id_window(filter, before) {
        (None, None) => {
            q.key_condition = format!("{partition} AND begins_with({range_attr}, :p)");
            q = q.value(":p", s(format!("{range_prefix}{}", DeliveryId::PREFIX)));
        }
        // BETWEEN is inclusive; `before` itself is dropped from the results.
        (lo, hi) => {
            q.key_condition = format!("{partition} AND {range_attr} BETWEEN :lo AND :hi");
            let lo = lo.unwrap_or_else(|| DeliveryId::PREFIX.to_owned());
            let hi = hi.unwrap_or_else(|| prefix_end(DeliveryId::PREFIX));
            q = q.value(":lo", s(format!("{range_prefix}{lo}"))).value(":hi", s(format!("{range_prefix}{hi}")));
        }
    }
    // The index does not hold `status` (a status change would write it again): a subscription's
    // log filtered by status is read through `by_status` below.
    if let (Some(status), None) = (filter.status, &filter.subscription_id) {
        filters.push("#st = :st");
        q = q.name("#st", "status").value(":st", s(status.as_str()));
    }
    q = log_filters(filter, q, &mut filters);
    if !filters.is_empty() {
        q.filter = Some(filters.join(" AND "));
    }
    let parts = (0..shards)
        .map(|shard| match &filter.subscription_id {
            Some(sub) => sub_shard_pk(sub, shard),
            None => log_shard_pk(account, shard),
        })
        .collect();
    (q, parts)
}

/// The items of a merged read (newest first) that a page may answer with, and where the next
/// page continues: every item above the boundary has been examined in every shard.
fn cut_page(mut page: Vec<Item>, reads: &[ShardRead], limit: usize) -> StoreResult<(Vec<Item>, Option<DeliveryId>)> {
    // A shard not read to its end stopped at its `start` (the last item it examined) and every
    // item it has not examined sorts below that; every shard was read at least once (the first
    // round reads all). So everything at or above the highest stop was examined everywhere.
    let seen = reads.iter().filter(|r| !r.done).filter_map(|r| r.start.as_ref().map(sk_of)).max();
    if let Some(seen) = seen {
        page.retain(|item| sk_of(item) >= seen);
    }
    let id_of =
        |sk: &str| DeliveryId::parse(sk.strip_prefix(DLV_PREFIX).unwrap_or(sk)).map_err(|e| corrupt("delivery key", e));
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|item| id_of(sk_of(item))).transpose()?
    } else {
        // A short page (possibly empty) when the read budget ran out before the page filled.
        seen.map(id_of).transpose()?
    };
    Ok((page, next))
}

impl DynamoDeliveryStore {
    pub(super) async fn list_log_page(
        &self,
        account: &AccountId,
        filter: &DeliveryFilter,
        limit: usize,
        before: Option<&DeliveryId>,
    ) -> StoreResult<(Vec<Delivery>, Option<DeliveryId>)> {
        match (&filter.subscription_id, filter.status) {
            (Some(_), Some(status)) => self.sub_page_by_status(account, filter, status, limit, before).await,
            _ => self.merged_page(account, filter, limit, before).await,
        }
    }

    /// A page of the account's log, or of a subscription's without a status filter.
    pub(super) async fn merged_page(
        &self,
        account: &AccountId,
        filter: &DeliveryFilter,
        limit: usize,
        before: Option<&DeliveryId>,
    ) -> StoreResult<(Vec<Delivery>, Option<DeliveryId>)> {
        // The account's log is spread over shards (the subscription's over its `by_sub_log` shards):
        // every shard is read in parallel, newest first, with the same key window and filters,
        // and the reads are merged by id (below: only as deep into each shard as the page needs,
        // and never more than the page's read budget in all).
        let (q, parts) = log_query(account, filter, before);
        let mut reads: Vec<ShardRead> =
            parts.into_iter().map(|part| ShardRead::new(q.clone().value(":part", s(part)))).collect();
        let skip = before.map(dlv_sk);
        let want = limit + 1;
        let budget = examine_budget(limit);
        let mut examined = 0;
        // A few items per shard first (twice the page over the shards), then more only from the
        // shards that may still hold one of the newest `want`: those whose read stopped above the
        // `want`-th newest found so far. Each further read of a shard asks twice as many, within
        // what is left of the budget.
        let mut chunk = (2 * want).div_ceil(reads.len()).max(2);
        let mut page: Vec<Item> = Vec::new();
        loop {
            let cutoff = (page.len() >= want).then(|| sk_of(&page[want - 1]).to_owned());
            let pending: Vec<usize> =
                (0..reads.len()).filter(|&i| reads[i].may_hold_above(cutoff.as_deref())).collect();
            let per = if pending.is_empty() { 0 } else { chunk.min((budget - examined) / pending.len()) };
            if per == 0 {
                break;
            }
            let calls = pending.iter().map(|&i| {
                let r = &reads[i];
                self.table.query_page("Query deliveries", &r.q, per, r.start.clone())
            });
            let results = futures::future::join_all(calls).await;
            examined += per * pending.len();
            for (i, result) in pending.into_iter().zip(results) {
                let (items, next) = result?;
                page.extend(items.into_iter().filter(|item| skip.is_none() || attr_str(item, "sk") != skip.as_deref()));
                reads[i].advance(next);
            }
            // `sk` is `DLV#<id>` in the table and in the index (which projects the table's keys).
            page.sort_by(|a, b| sk_of(b).cmp(sk_of(a)));
            chunk = (chunk * 2).min(want + 1);
        }
        let (mut page, next) = cut_page(page, &reads, limit)?;
        if next.is_some() && page.len() < limit {
            tracing::debug!(account_id = %account, examined, found = page.len(), "delivery log page cut at its read budget");
        }
        if q.index.is_some() {
            page = self.table.batch_get("BatchGetItem deliveries", &page).await?;
        }
        let out = page.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        Ok((out, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(shard: u32, id: &str) -> Item {
        key(format!("ACCT#a#D{shard}"), format!("DLV#{id}"))
    }

    /// A shard read with `stop` as where it stopped (`None`: read to the end).
    fn read(stop: Option<Item>) -> ShardRead {
        let mut r = ShardRead::new(Query::default());
        r.advance(stop);
        r
    }

    const IDS: [&str; 6] = [
        "dlv_01m96qv12fz8dkf0q6gcjq9c16",
        "dlv_01m96qv12fz8dkf0q6gcjq9c15",
        "dlv_01m96qv12fz8dkf0q6gcjq9c14",
        "dlv_01m96qv12fz8dkf0q6gcjq9c13",
        "dlv_01m96qv12fz8dkf0q6gcjq9c12",
        "dlv_01m96qv12fz8dkf0q6gcjq9c11",
    ];

    fn ids(page: &[Item]) -> Vec<&str> {
        page.iter().map(|i| sk_of(i).strip_prefix(DLV_PREFIX).unwrap()).collect()
    }

    #[test]
    fn a_shard_is_read_again_only_while_it_may_hold_one_of_the_newest() {
        let mut r = ShardRead::new(Query::default());
        assert!(r.may_hold_above(Some("DLV#dlv_5")), "never read");
        r.advance(Some(key("ACCT#a#D1".into(), "DLV#dlv_7".into())));
        assert!(r.may_hold_above(None), "fewer than a page found yet");
        assert!(r.may_hold_above(Some("DLV#dlv_5")), "stopped above the cutoff");
        assert!(!r.may_hold_above(Some("DLV#dlv_7")) && !r.may_hold_above(Some("DLV#dlv_8")), "stopped at or below it");
        r.advance(None);
        assert!(!r.may_hold_above(None), "read to the end");
    }

    #[test]
    fn a_page_cut_by_the_budget_keeps_only_what_every_shard_has_passed_and_continues_there() {
        // Shard 0 stopped at IDS[1] (it may hold IDS[2]-like items below), shard 1 at IDS[3],
        // shard 2 was read to its end. Found: IDS[0], IDS[2] (shard 1), IDS[4] (shard 2).
        let reads = [read(Some(at(0, IDS[1]))), read(Some(at(1, IDS[3]))), read(None)];
        let found = vec![at(0, IDS[0]), at(1, IDS[2]), at(2, IDS[4])];
        // Everything at or above IDS[1] was examined everywhere: IDS[2] and IDS[4] wait, since
        // shard 0 may still hold a newer one than them; the cursor is where shard 0 stopped.
        let (page, next) = cut_page(found.clone(), &reads, 10).unwrap();
        assert_eq!((ids(&page), next.as_ref().map(DeliveryId::as_str)), (vec![IDS[0]], Some(IDS[1])));
        // Nothing found above the boundary: an empty page that still moves on.
        let (page, next) = cut_page(found[1..].to_vec(), &reads, 10).unwrap();
        assert_eq!((page.len(), next.as_ref().map(DeliveryId::as_str)), (0, Some(IDS[1])));
    }

    #[test]
    fn a_full_page_continues_after_its_last_item_and_a_finished_read_ends() {
        let reads = [read(Some(at(0, IDS[5]))), read(None)];
        let found = vec![at(0, IDS[0]), at(1, IDS[1]), at(0, IDS[2]), at(1, IDS[3])];
        let (page, next) = cut_page(found.clone(), &reads, 3).unwrap();
        assert_eq!((ids(&page), next.as_ref().map(DeliveryId::as_str)), (IDS[..3].to_vec(), Some(IDS[2])));
        let done = [read(None), read(None)];
        let (page, next) = cut_page(found.clone(), &done, 4).unwrap();
        assert_eq!((page.len(), next), (4, None), "every shard read to its end: the log ends here");
        let (page, next) = cut_page(found, &done, 3).unwrap();
        assert_eq!((page.len(), next.as_ref().map(DeliveryId::as_str)), (3, Some(IDS[2])));
    }

    #[test]
    fn the_budget_lets_the_first_round_read_every_shard_twice() {
        for limit in [1, 50, 100, 1_000] {
            let budget = examine_budget(limit);
            assert!(budget >= 2 * LOG_SHARDS as usize && budget >= 4 * (limit + 1));
        }
        assert_eq!(examine_budget(100), EXAMINED_PER_PAGE);
    }
}
