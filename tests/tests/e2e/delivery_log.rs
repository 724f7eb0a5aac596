//! The delivery log API (list newest first with filters and paging, get, replay, errors and
//! isolation) and bad input on `POST /v1/events`.

use crate::support::{assert_error, create_subscription, id_of};
use puck_aws::dynamo::{BASE_READS_PER_PAGE, EXAMINED_PER_PAGE};
use puck_core::envelope::Envelope;
use puck_core::ids::{EventId, SubscriptionId};
use puck_core::model::{Delivery, DeliveryStatus, Scope};
use puck_core::services::events::pending_delivery;
use puck_core::time::Timestamp;
use puck_e2e::delivery::{list_all_deliveries, wait_for_delivery_status};
use puck_e2e::{wait_until, Receiver, Reply, Script, TestStack, EVENTUALLY};
use reqwest::Method;
use serde_json::{json, Value};

const DELIVERIES: &str = "/v1/webhooks/deliveries";

fn ids(list: &[Value]) -> Vec<String> {
    list.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
}

/// Follows `next_cursor` with `limit` per page; returns the pages' ids.
async fn pages(stack: &TestStack, query: &str, limit: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{DELIVERIES}?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page, _) = stack.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let items = page["deliveries"].as_array().unwrap();
        assert!(items.len() <= limit);
        out.push(ids(items));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
        assert!(out.len() < 50, "paging does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_lists_newest_first_filters_pages_and_hides_other_accounts() {
    let stack = TestStack::start_default().await;
    let ok = Receiver::start().await;
    let gone = Receiver::start_with(Script::always(Reply::status(410))).await;
    let sub_ok = id_of(&create_subscription(&stack, json!({"url": ok.url(), "events": ["finding.*"]})).await);
    let sub_gone = id_of(
        &create_subscription(&stack, json!({"url": gone.url(), "events": ["finding.*", "chain.confirmed"]})).await,
    );
    // 3 finding events → 6 deliveries, then 1 chain event → 1 more to sub_gone: 7 in all.
    for i in 0..3 {
        let (status, _, _) =
            stack.post("/v1/events", json!({"event_type": "finding.discovered", "data": {"i": i}})).await;
        assert_eq!(status, 202);
    }
    let (status, _, _) = stack.post("/v1/events", json!({"event_type": "chain.confirmed", "data": {}})).await;
    assert_eq!(status, 202);
    wait_until(EVENTUALLY, "all 7 deliveries to finish", || async {
        let all = list_all_deliveries(&stack, "").await;
        all.len() == 7 && all.iter().all(|d| d["status"] == "succeeded" || d["status"] == "failed_permanent")
    })
    .await;

    // Newest first: ids (time-ordered) and created_at descending.
    let all = list_all_deliveries(&stack, "").await;
    let all_ids = ids(&all);
    let mut sorted = all_ids.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(all_ids, sorted, "newest first");
    let created: Vec<&str> = all.iter().map(|d| d["created_at"].as_str().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    assert_eq!(all[0]["event_type"], "chain.confirmed", "the last published is first");
    for d in &all {
        assert!(d.get("attempts").is_none(), "the list has summaries, not attempts: {d}");
        for field in
            ["id", "subscription_id", "event_id", "event_type", "status", "attempt_count", "created_at", "updated_at"]
        {
            assert!(d.get(field).is_some_and(|v| !v.is_null()), "{field} missing in {d}");
        }
    }

    // Filters.
    let succeeded = list_all_deliveries(&stack, "status=succeeded").await;
    assert_eq!(succeeded.len(), 3);
    assert!(succeeded.iter().all(|d| d["subscription_id"] == sub_ok.as_str()));
    let dead = list_all_deliveries(&stack, "status=failed_permanent").await;
    assert_eq!(dead.len(), 4);
    assert!(dead.iter().all(|d| d["subscription_id"] == sub_gone.as_str()));
    let of_ok = list_all_deliveries(&stack, &format!("subscription_id={sub_ok}")).await;
    assert_eq!(ids(&of_ok), ids(&succeeded));
    let both = list_all_deliveries(&stack, &format!("subscription_id={sub_gone}&status=failed_permanent")).await;
    assert_eq!(ids(&both), ids(&dead));
    assert!(list_all_deliveries(&stack, &format!("subscription_id={sub_ok}&status=failed_permanent")).await.is_empty());
    assert!(list_all_deliveries(&stack, "status=pending").await.is_empty());

    // Paging: every page within the limit, no gaps, no duplicates, same order as one big page.
    for (query, expected) in [
        (String::new(), all_ids.clone()),
        ("&status=failed_permanent".to_owned(), ids(&dead)),
        (format!("&subscription_id={sub_gone}"), ids(&dead)),
        (format!("&subscription_id={sub_ok}&status=succeeded"), ids(&succeeded)),
    ] {
        for limit in [1, 2, 3] {
            let got = pages(&stack, &query, limit).await;
            assert_eq!(got.concat(), expected, "limit {limit}{query}: {got:?}");
        }
    }

    // Get and its errors.
    let (status, one, _) = stack.get(&format!("{DELIVERIES}/{}", all_ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(one["attempts"].as_array().unwrap().len(), 1, "{one}");
    assert_error(
        &stack.get(&format!("{DELIVERIES}/dlv_01hzy0000000000000000000aa")).await,
        404,
        "not_found",
        "delivery not found",
    );
    assert_error(&stack.get(&format!("{DELIVERIES}/nonsense")).await, 404, "not_found", "delivery not found");
    assert_error(
        &stack.post(&format!("{DELIVERIES}/dlv_01hzy0000000000000000000aa/replay"), Value::Null).await,
        404,
        "not_found",
        "delivery not found",
    );
    assert_error(
        &stack.post(&format!("{DELIVERIES}/nonsense/replay"), Value::Null).await,
        404,
        "not_found",
        "delivery not found",
    );

    // Bad query parameters.
    for (query, needle) in [
        ("status=done", "status"),
        ("status=", "status"),
        ("subscription_id=nope", "subscription_id"),
        ("subscription_id=dlv_01hzy0000000000000000000aa", "subscription_id"),
        ("cursor=!!!", "cursor"),
        ("cursor=bm9wZQ", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
    ] {
        assert_error(&stack.get(&format!("{DELIVERIES}?{query}")).await, 400, "validation_error", needle);
    }

    // Another account sees none of it: 404 on get and replay, empty lists, even by our ids.
    let other = stack.new_account(&Scope::ALL).await;
    let api = stack.with_key(&other.api_key);
    for id in [&all_ids[0], &ids(&dead)[0]] {
        assert_error(&api.get(&format!("{DELIVERIES}/{id}")).await, 404, "not_found", "delivery not found");
        assert_error(
            &api.post(&format!("{DELIVERIES}/{id}/replay"), Value::Null).await,
            404,
            "not_found",
            "delivery not found",
        );
    }
    let (status, theirs, _) = api.get(DELIVERIES).await;
    assert_eq!((status, theirs["deliveries"].as_array().map(Vec::len)), (200, Some(0)), "{theirs}");
    assert_error(
        &api.get(&format!("{DELIVERIES}?subscription_id={sub_ok}")).await,
        404,
        "not_found",
        "subscription not found",
    );
    // Their failed replay changed nothing of ours.
    let d = wait_for_delivery_status(&stack, &ids(&dead)[0], "failed_permanent", EVENTUALLY).await;
    assert_eq!(d["attempt_count"], 1);
}

/// Asserts that `pages` are the ids of `want` (newest first), each once, strictly descending.
fn assert_pages_cover(pages: &[Vec<String>], want: &[String], what: &str) {
    let flat: Vec<String> = pages.concat();
    assert!(flat.windows(2).all(|w| w[0] > w[1]), "{what}: strictly newest first, none repeated: {pages:?}");
    assert_eq!(flat, want, "{what}: every delivery once");
    assert!(pages.len() >= 3, "{what}: several pages: {pages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_across_log_shards_are_newest_first_with_none_missed_or_repeated() {
    let stack = TestStack::start_default().await;
    let ok = Receiver::start().await;
    let sub = id_of(&create_subscription(&stack, json!({"url": ok.url(), "events": ["finding.*"]})).await);
    let other = id_of(&create_subscription(&stack, json!({"url": ok.url(), "events": ["chain.confirmed"]})).await);
    let events: Vec<Value> = (0..24)
        .map(|i| {
            let event_type = if i % 4 == 3 { "chain.confirmed" } else { "finding.discovered" };
            json!({"event_type": event_type, "data": {"i": i}})
        })
        .collect();
    let (status, body, _) = stack.post("/v1/events/batch", json!({ "events": events })).await;
    assert_eq!(status, 202, "{body}");
    wait_until(EVENTUALLY, "all 24 deliveries to succeed", || async {
        let all = list_all_deliveries(&stack, "").await;
        all.len() == 24 && all.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    // The summaries really are spread over several partitions of the account and of the index.
    let items = puck_e2e::dynamo::scan_all(&stack.stack).await;
    let delivery_items: Vec<&Value> =
        items.iter().filter(|i| i["sk"].as_str().is_some_and(|s| s.starts_with("DLV#"))).collect();
    let distinct = |attr: &str| {
        delivery_items.iter().filter_map(|i| i[attr].as_str()).collect::<std::collections::HashSet<_>>().len()
    };
    assert_eq!(delivery_items.len(), 24);
    assert!(
        distinct("pk") >= 4 && distinct("gsi1pk") >= 4,
        "{} log and {} index partitions",
        distinct("pk"),
        distinct("gsi1pk")
    );

    let mut all = ids(&list_all_deliveries(&stack, "").await);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(all, sorted, "the merged log is newest first");
    assert_pages_cover(&pages(&stack, "", 5).await, &all, "the account's log");
    assert_pages_cover(&pages(&stack, "&status=succeeded&since=2000-01-01T00:00:00Z", 7).await, &all, "with filters");
    let of_sub = ids(&list_all_deliveries(&stack, &format!("subscription_id={sub}")).await);
    assert_eq!(of_sub.len(), 18);
    assert_pages_cover(&pages(&stack, &format!("&subscription_id={sub}"), 4).await, &of_sub, "a subscription's log");
    all.retain(|id| !of_sub.contains(id));
    let of_other = ids(&list_all_deliveries(&stack, &format!("subscription_id={other}")).await);
    assert_eq!(of_other, all, "the other subscription holds the rest");
    let by_type = pages(&stack, &format!("&subscription_id={other}&event_type=chain.confirmed"), 2).await;
    assert_pages_cover(&by_type, &of_other, "a subscription's log by event type");
}

/// Writes `n` finished deliveries of one event type to `sub` straight into the store (no
/// sends: they are `succeeded`, so the sweeper leaves them alone), created `age_secs` ago.
async fn seed_deliveries(stack: &TestStack, sub: &str, event_type: &str, n: usize, age_secs: i64) -> Vec<String> {
    let ctx = stack.ctx();
    let sub = ctx.subscriptions.get(stack.account_id(), &SubscriptionId::parse(sub).unwrap()).await.unwrap().unwrap();
    let at = ctx.clock.now().plus_seconds(-age_secs);
    let deliveries: Vec<Delivery> = (0..n)
        .map(|_| {
            let envelope = Envelope::new(EventId::generate(), event_type, at, json!({}));
            let d = pending_delivery(&sub, &envelope, None, at, ctx.settings.expires_at(at));
            Delivery { status: DeliveryStatus::Succeeded, attempt_count: 1, next_attempt_at: None, ..d }
        })
        .collect();
    let writes = deliveries.chunks(100).map(|chunk| ctx.deliveries.insert_deliveries(chunk));
    for written in futures::future::join_all(writes).await {
        written.unwrap();
    }
    deliveries.iter().map(|d| d.id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_filter_pages_through_a_long_log_a_bounded_read_at_a_time() {
    let stack = TestStack::start_default().await;
    let ok = Receiver::start().await;
    let quiet = id_of(&create_subscription(&stack, json!({"url": ok.url(), "events": ["chain.confirmed"]})).await);
    let busy = id_of(&create_subscription(&stack, json!({"url": ok.url(), "events": ["finding.*"]})).await);
    // One old delivery the filters look for, under 2,400 newer ones of another subscription.
    let old = seed_deliveries(&stack, &quiet, "chain.confirmed", 1, 3_600).await;
    let newer = 2_400;
    seed_deliveries(&stack, &busy, "finding.discovered", newer, 60).await;
    // A page examines at most EXAMINED_PER_PAGE log items, so reaching the old item takes at
    // least this many requests; a read of the whole log answers it in one.
    let at_least = (newer + 1).div_ceil(EXAMINED_PER_PAGE);
    assert!(at_least >= 3);

    // The account's log (its 64 shards), filtered by event type: the first pages come back
    // short (empty) with a cursor, and paging on reaches the old item exactly once.
    let (status, first, _) = stack.get(&format!("{DELIVERIES}?event_type=chain.confirmed&limit=10")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["deliveries"], json!([]), "the first page stops at its read budget: {first}");
    assert!(first["next_cursor"].is_string(), "and says where to go on: {first}");
    let got = pages(&stack, "&event_type=chain.confirmed", 10).await;
    assert_eq!(got.concat(), old, "paging reaches the old delivery: {got:?}");
    assert!(got.len() >= at_least, "{} pages for {} items: some page read more than its budget", got.len(), newer + 1);
    assert!(got.len() <= 2 * at_least + 2, "each page moves on by most of its budget: {} pages", got.len());
    let by_status = pages(&stack, "&status=failed_permanent", 100).await;
    assert!(by_status.concat().is_empty() && by_status.len() >= at_least, "{by_status:?}");

    // A subscription's log (its 16 index shards), with a filter nothing of it matches.
    let got = pages(&stack, &format!("&subscription_id={busy}&event_type=chain.confirmed"), 5).await;
    assert!(got.concat().is_empty() && got.len() >= newer.div_ceil(EXAMINED_PER_PAGE), "{got:?}");
    let got = pages(&stack, &format!("&subscription_id={quiet}"), 5).await;
    assert_eq!((got.concat(), got.len()), (old.clone(), 1), "a quiet subscription's own log is one page");
    // By status: the subscription index does not hold `status` (a status change writes no index),
    // so a page reads the log's items by key, at most BASE_READS_PER_PAGE of them: the busy
    // subscription's 2,400 take several short pages, the quiet one's log is one page whatever
    // the other's traffic.
    let got = pages(&stack, &format!("&subscription_id={busy}&status=failed_permanent"), 5).await;
    assert!(got.concat().is_empty() && got.len() >= newer.div_ceil(BASE_READS_PER_PAGE), "{got:?}");
    let got = pages(&stack, &format!("&subscription_id={busy}&status=succeeded"), 100).await;
    let mut all = got.concat();
    assert_eq!(all.len(), newer, "every one of the busy subscription's deliveries");
    all.dedup();
    assert_eq!((all.len(), got.len()), (newer, newer / 100), "once each, in full pages");
    for status in ["succeeded", "failed_permanent"] {
        let got = pages(&stack, &format!("&subscription_id={quiet}&status={status}"), 5).await;
        let want = if status == "succeeded" { old.clone() } else { Vec::new() };
        assert_eq!((got.concat(), got.len()), (want, 1), "the quiet subscription's log by {status} is one page");
    }

    // A subscription id the caller does not have is a 404, not a read of someone's log.
    let other = stack.new_account(&Scope::ALL).await;
    let api = stack.with_key(&other.api_key);
    for sub in [&busy, &quiet] {
        let path = format!("{DELIVERIES}?subscription_id={sub}&event_type=chain.confirmed");
        assert_error(&api.get(&path).await, 404, "not_found", "subscription not found");
    }
    let unknown = SubscriptionId::generate(Timestamp::now().unix_ms() as u64);
    let path = format!("{DELIVERIES}?subscription_id={unknown}");
    assert_error(&stack.get(&path).await, 404, "not_found", "subscription not found");
    // A deleted subscription's deliveries stay in the log: listed without the filter.
    let (status, _, _) = stack.delete(&format!("/v1/webhooks/subscriptions/{quiet}")).await;
    assert_eq!(status, 204);
    assert_error(&stack.get(&format!("{DELIVERIES}?subscription_id={quiet}")).await, 404, "not_found", "subscription");
    let got = pages(&stack, &format!("&event_id={}", first_event_id(&stack, &old[0]).await), 10).await;
    assert_eq!(got.concat(), old, "by event id: {got:?}");
}

async fn first_event_id(stack: &TestStack, delivery: &str) -> String {
    let (status, d, _) = stack.get(&format!("{DELIVERIES}/{delivery}")).await;
    assert_eq!(status, 200, "{d}");
    d["event_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_publish_gets_precise_errors() {
    let stack = TestStack::start_default().await;
    let receiver = Receiver::start().await;
    create_subscription(&stack, json!({"url": receiver.url(), "events": ["chain.confirmed"]})).await;
    let api = stack.api();
    let publish = "/v1/events";
    let ct = [("content-type", "application/json")];

    assert_error(&api.raw(Method::POST, publish, &ct, "{\"event_type\":").await, 400, "invalid_json", "JSON");
    assert_error(
        &api.raw(Method::POST, publish, &ct, "").await,
        400,
        "invalid_json",
        "request body must be a JSON object",
    );
    for (body, needle) in [
        (json!([1, 2]), "JSON object"),
        (json!("finding.discovered"), "JSON object"),
        (json!({"data": {}}), "event_type is required"),
        (json!({"event_type": 7, "data": {}}), "event_type must be a string"),
        (
            json!({"event_type": "finding.exploded", "data": {}}),
            "event_type \"finding.exploded\" is not a known event type",
        ),
        (json!({"event_type": "finding.*", "data": {}}), "not a known event type"),
        (json!({"event_type": "chain.confirmed"}), "data is required"),
        (json!({"event_type": "chain.confirmed", "data": [1]}), "data must be an object"),
        (json!({"event_type": "chain.confirmed", "data": "x"}), "data must be an object"),
        (json!({"event_type": "chain.confirmed", "data": null}), "data must be an object"),
        (json!({"event_type": "chain.confirmed", "data": {}, "severity": "urgent"}), "severity"),
        (json!({"event_type": "chain.confirmed", "data": {}, "severity": 3}), "severity must be a string"),
        (json!({"event_type": "chain.confirmed", "data": {}, "tags": ["a"]}), "tags"),
        (json!({"event_type": "chain.confirmed", "data": {}, "tags": {"k": 1}}), "tags.k must be a string"),
        (json!({"event_type": "chain.confirmed", "data": {}, "event_id": 5}), "event_id must be a string"),
        (json!({"event_type": "chain.confirmed", "data": {}, "event_id": "has space"}), "event_id must be"),
        (json!({"event_type": "chain.confirmed", "data": {}, "event_id": ""}), "event_id must be"),
        (json!({"event_type": "chain.confirmed", "data": {}, "event_id": "x".repeat(129)}), "event_id must be"),
        (json!({"event_type": "chain.confirmed", "data": {}, "surprise": 1}), "unknown field"),
    ] {
        assert_error(&api.post(publish, body.clone()).await, 400, "validation_error", needle);
    }

    // Size: just under 128 KiB is accepted, just over is 413.
    let envelope_overhead = r#"{"event_type":"chain.confirmed","data":{"p":""}}"#.len();
    let fits = json!({"event_type": "chain.confirmed", "data": {"p": "x".repeat(128 * 1024 - envelope_overhead)}});
    assert_eq!(fits.to_string().len(), 128 * 1024);
    let (status, body, _) = api.post(publish, fits).await;
    assert_eq!((status, &body["deliveries"]), (202, &json!(1)), "{body}");
    let too_big = json!({"event_type": "chain.confirmed", "data": {"p": "x".repeat(128 * 1024)}});
    assert_error(&api.post(publish, too_big).await, 413, "payload_too_large", "request body exceeds 131072 bytes");

    // Auth: none → 401, a key without events:publish → 403.
    assert_error(
        &stack.anonymous().post(publish, json!({"event_type": "chain.confirmed", "data": {}})).await,
        401,
        "unauthorized",
        "missing Authorization header",
    );
    let manage_only = stack.issue_key(stack.account_id(), &[Scope::WebhooksManage, Scope::InvestigationsRead]).await;
    assert_error(
        &stack.with_key(&manage_only).post(publish, json!({"event_type": "chain.confirmed", "data": {}})).await,
        403,
        "forbidden",
        "",
    );
    // Only the accepted event was published, and it arrives whole.
    let request = receiver.wait_for(1, EVENTUALLY).await.remove(0);
    assert_eq!(request.json()["data"]["p"].as_str().map(str::len), Some(128 * 1024 - envelope_overhead));
    assert_eq!(list_all_deliveries(&stack, "").await.len(), 1);
}
