use super::*;
use crate::fakes::{caller, context};
use crate::services::subscriptions;

#[tokio::test]
async fn publish_fans_out_by_filters_and_is_idempotent() {
    let mem = std::sync::Arc::new(crate::fakes::Memory::default());
    let ctx = crate::fakes::context_with(mem.clone());
    let who = caller();
    for body in [
        json!({"url": "https://a.example/h", "events": ["finding.discovered"]}),
        json!({"url": "https://b.example/h", "events": ["finding.*"], "filters": {"min_severity": "critical"}}),
        json!({"url": "https://c.example/h", "events": ["finding.*"], "filters": {"tags": {"team": "red"}}}),
        json!({"url": "https://d.example/h", "events": ["finding.discovered"], "active": false}),
        json!({"url": "https://e.example/h", "events": ["agent.registered"]}),
    ] {
        subscriptions::create(&ctx, &who, body).await.unwrap();
    }
    let event = json!({"event_type": "finding.discovered", "data": {"x": 1}, "severity": "high", "tags": {"team": "red"}, "event_id": "evt-1"});
    let first = publish(&ctx, &who, event.clone()).await.unwrap();
    assert_eq!(first.deliveries, 2); // a and c
    let again = publish(&ctx, &who, event).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(mem.queue.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_payload_filter_lets_through_only_events_whose_data_matches() {
    let mem = std::sync::Arc::new(crate::fakes::Memory::default());
    let ctx = crate::fakes::context_with(mem.clone());
    let who = caller();
    let filters = json!({"min_severity": "high", "payload": {"host": {"$endsWith": ".prod"}, "port": {"$in": [443]}}});
    subscriptions::create(
        &ctx,
        &who,
        json!({"url": "https://a.example/h", "events": ["finding.*"], "filters": filters}),
    )
    .await
    .unwrap();
    let event =
        |data: Value, severity: &str| json!({"event_type": "finding.discovered", "data": data, "severity": severity});
    let count = |e: Value| {
        let ctx = &ctx;
        let who = &who;
        async move { publish(ctx, who, e).await.unwrap().deliveries }
    };
    assert_eq!(count(event(json!({"host": "web.prod", "port": 443}), "high")).await, 1);
    assert_eq!(count(event(json!({"host": "web.prod", "port": 443}), "low")).await, 0, "every filter must pass");
    assert_eq!(count(event(json!({"host": "web.dev", "port": 443}), "high")).await, 0);
    assert_eq!(count(event(json!({"host": "web.prod"}), "high")).await, 0, "a missing field fails");
    let batch =
        json!({"events": [event(json!({"host": "a.prod", "port": 443}), "critical"), event(json!({}), "critical")]});
    let results = publish_batch(&ctx, &who, batch).await.unwrap();
    assert_eq!(results.iter().map(|r| r.deliveries).collect::<Vec<_>>(), [1, 0]);
}

#[tokio::test]
async fn batch_publishes_in_order_once_per_event_id() {
    let mem = std::sync::Arc::new(crate::fakes::Memory::default());
    let ctx = crate::fakes::context_with(mem.clone());
    let who = caller();
    subscriptions::create(&ctx, &who, json!({"url": "https://a.example/h", "events": ["finding.*"]})).await.unwrap();
    subscriptions::create(&ctx, &who, json!({"url": "https://b.example/h", "events": ["chain.confirmed"]}))
        .await
        .unwrap();
    publish(&ctx, &who, json!({"event_type": "chain.confirmed", "data": {}, "event_id": "old"})).await.unwrap();
    assert_eq!(mem.queue.lock().unwrap().len(), 1);
    let body = json!({"events": [
        {"event_type": "finding.discovered", "data": {"n": 1}, "event_id": "b1"},
        {"event_type": "agent.registered", "data": {}},
        {"event_type": "chain.confirmed", "data": {}, "event_id": "old"},
        {"event_type": "finding.discovered", "data": {"n": 2}, "event_id": "b1"},
    ]});
    let results = publish_batch(&ctx, &who, body.clone()).await.unwrap();
    let got: Vec<(String, u32)> = results.iter().map(|r| (r.event_id.to_string(), r.deliveries)).collect();
    assert_eq!(got[0], ("b1".to_owned(), 1));
    assert_eq!(got[1].1, 0);
    assert_eq!(got[2], ("old".to_owned(), 1));
    assert_eq!(got[3], ("b1".to_owned(), 1));
    assert_eq!(mem.queue.lock().unwrap().len(), 2, "only b1's one delivery is new");
    // A retried batch publishes nothing more.
    let again = publish_batch(&ctx, &who, body).await.unwrap();
    assert_eq!(again[0], results[0]);
    assert_eq!(mem.queue.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn batch_validation_names_the_event_and_publishes_nothing() {
    let mem = std::sync::Arc::new(crate::fakes::Memory::default());
    let ctx = crate::fakes::context_with(mem.clone());
    let who = caller();
    subscriptions::create(&ctx, &who, json!({"url": "https://a.example/h", "events": ["finding.*"]})).await.unwrap();
    let ok = json!({"event_type": "finding.discovered", "data": {}});
    let big = json!({"event_type": "finding.discovered", "data": {"x": "y".repeat(MAX_EVENT_BYTES)}});
    let cases = [
        (json!({}), "events is required"),
        (json!({"events": {}}), "events must be an array"),
        (json!({"events": []}), "events must hold 1 to 100 events, not 0"),
        (json!({"events": vec![ok.clone(); 101]}), "events must hold 1 to 100 events, not 101"),
        (json!({"events": [ok.clone()], "x": 1}), "unknown field"),
        (
            json!({"events": [ok.clone(), ok.clone(), ok.clone(), {"event_type": "nope", "data": {}}]}),
            "events[3].event_type: \"nope\" is not a known event type",
        ),
        (json!({"events": [ok.clone(), {"event_type": "chain.confirmed"}]}), "events[1].data: is required"),
        (
            json!({"events": [{"event_type": "chain.confirmed", "data": {}, "tags": {"k": 1}}]}),
            "events[0].tags.k: must be a string",
        ),
        (json!({"events": [{"event_type": "chain.confirmed", "data": {}, "extra": 1}]}), "events[0]: unknown field"),
        (json!({"events": [ok.clone(), 7]}), "events[1]: must be a JSON object"),
        (json!({"events": [ok.clone(), big]}), "events[1]: event is "),
    ];
    for (input, want) in cases {
        match publish_batch(&ctx, &who, input.clone()).await {
            Err(AppError::Validation(m)) => assert!(m.message.starts_with(want), "{want} / {m}"),
            other => panic!("{want}: {other:?}"),
        }
    }
    assert!(mem.queue.lock().unwrap().is_empty(), "nothing published");
    assert!(mem.deliveries.lock().unwrap().is_empty(), "nothing written");
}

#[tokio::test]
async fn publish_validation() {
    let ctx = context();
    let who = caller();
    let cases = [
        (json!({"data": {}}), "event_type is required"),
        (json!({"event_type": "nope", "data": {}}), "event_type \"nope\" is not a known event type"),
        (json!({"event_type": "chain.confirmed"}), "data is required"),
        (json!({"event_type": "chain.confirmed", "data": 3}), "data must be an object"),
        (json!({"event_type": "chain.confirmed", "data": {}, "severity": "bad"}), "severity must be one of"),
        (json!({"event_type": "chain.confirmed", "data": {}, "tags": {"k": 1}}), "tags.k must be a string"),
        (json!({"event_type": "chain.confirmed", "data": {}, "event_id": "a b"}), "event_id must be"),
        (json!({"event_type": "chain.confirmed", "data": {}, "extra": 1}), "unknown field"),
        (
            json!({"event_type": "webhook.delivery.dead_lettered", "data": {}}),
            "event_type \"webhook.delivery.dead_lettered\" is an operational event type",
        ),
    ];
    for (input, want) in cases {
        match publish(&ctx, &who, input.clone()).await {
            Err(AppError::Validation(m)) => assert!(m.message.starts_with(want), "{input}: {m}"),
            other => panic!("{input}: {other:?}"),
        }
    }
}
