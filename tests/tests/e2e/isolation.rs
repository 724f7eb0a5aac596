//! Tenant isolation: another account's objects are 404, never 403, and never listed.

use crate::support::{
    assert_error, create_endpoint, create_subscription, id_of, subscription_body, ENDPOINTS, SUBSCRIPTIONS,
};
use puck_core::model::Scope;
use puck_e2e::TestStack;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_gets_404_for_every_subscription_route_and_never_lists_them() {
    let stack = TestStack::start_default().await;
    let a_ids: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..2 {
            ids.push(id_of(&create_subscription(&stack, subscription_body()).await));
        }
        ids
    };
    let b = stack.new_account(&Scope::ALL).await;
    let b_client = stack.with_key(&b.api_key);
    let (status, b_sub, _) = b_client.post(SUBSCRIPTIONS, subscription_body()).await;
    assert_eq!(status, 201, "{b_sub}");

    for id in &a_ids {
        let path = format!("{SUBSCRIPTIONS}/{id}");
        assert_error(&b_client.get(&path).await, 404, "not_found", "subscription not found");
        assert_error(
            &b_client.patch(&path, json!({"active": false})).await,
            404,
            "not_found",
            "subscription not found",
        );
        assert_error(&b_client.patch(&path, json!({"secret": null})).await, 404, "not_found", "subscription not found");
        assert_error(
            &b_client.post(&format!("{path}/test"), Value::Null).await,
            404,
            "not_found",
            "subscription not found",
        );
        assert_error(
            &b_client.post(&format!("{path}/recover"), json!({"since": "2026-01-01T00:00:00Z"})).await,
            404,
            "not_found",
            "subscription not found",
        );
        assert_error(&b_client.delete(&path).await, 404, "not_found", "subscription not found");
    }

    let (status, b_list, _) = b_client.get(&format!("{SUBSCRIPTIONS}?limit=100")).await;
    assert_eq!(status, 200);
    let b_ids: Vec<String> = b_list["subscriptions"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(b_ids, vec![id_of(&b_sub)], "B sees only its own subscription");

    // A's subscriptions are untouched by B's attempts, and A does not see B's.
    let (_, a_list, _) = stack.get(&format!("{SUBSCRIPTIONS}?limit=100")).await;
    let mut listed: Vec<String> = a_list["subscriptions"].as_array().unwrap().iter().map(id_of).collect();
    listed.sort();
    let mut expected = a_ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    for sub in a_list["subscriptions"].as_array().unwrap() {
        assert_eq!(sub["active"], true, "{sub}");
    }

    // Nor do B's deliveries reveal A's test deliveries.
    let (status, accepted, _) = stack.post(&format!("{SUBSCRIPTIONS}/{}/test", a_ids[0]), Value::Null).await;
    assert_eq!(status, 202, "{accepted}");
    let delivery_path = format!("/v1/webhooks/deliveries/{}", accepted["delivery_id"].as_str().unwrap());
    assert_error(&b_client.get(&delivery_path).await, 404, "not_found", "delivery not found");
    assert_error(
        &b_client.post(&format!("{delivery_path}/replay"), Value::Null).await,
        404,
        "not_found",
        "delivery not found",
    );
    let (_, b_deliveries, _) = b_client.get("/v1/webhooks/deliveries").await;
    assert_eq!(b_deliveries["deliveries"], json!([]), "{b_deliveries}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_cannot_see_or_delete_inbound_endpoints_or_read_investigations() {
    let stack = TestStack::start_default().await;
    let (endpoint, receive_path, _) = create_endpoint(&stack, json!({"provider": "generic"})).await;
    let (status, received, _) =
        stack.anonymous().post(&receive_path, json!({"query": "check the host that just alerted"})).await;
    assert_eq!(status, 202, "{received}");
    let investigation = received["investigation_id"].as_str().expect("investigation id").to_owned();

    let b = stack.new_account(&Scope::ALL).await;
    let b_client = stack.with_key(&b.api_key);
    let (status, b_list, _) = b_client.get(ENDPOINTS).await;
    assert_eq!((status, b_list), (200, json!({"endpoints": []})));
    assert_error(
        &b_client.delete(&format!("{ENDPOINTS}/{}", id_of(&endpoint))).await,
        404,
        "not_found",
        "endpoint not found",
    );
    assert_error(
        &b_client.get(&format!("/v1/investigations/{investigation}")).await,
        404,
        "not_found",
        "investigation not found",
    );

    // A still has both.
    let (status, a_inv, _) = stack.get(&format!("/v1/investigations/{investigation}")).await;
    assert_eq!(status, 200, "{a_inv}");
    let (_, a_list, _) = stack.get(ENDPOINTS).await;
    assert_eq!(a_list["endpoints"].as_array().unwrap().len(), 1);
}
