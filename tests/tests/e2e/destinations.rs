//! AWS destinations on the local stack: the customer's queue, bus and role are made in their own
//! account on the embedded AWS (`puck_e2e::customer`), as docs/receiving.md tells a customer to, and the
//! deliveries are read back from there.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_e2e::customer::{attributes, CustomerAccount, Queue};
use puck_e2e::delivery::{get_delivery, list_all_deliveries, standard_webhooks_verify, wait_for_delivery_status};
use puck_e2e::iam::{self, Target};
use puck_e2e::{wait_until, TestStack, TestStackOptions, EVENTUALLY};
use serde_json::{json, Value};
use std::time::Duration;

/// The service's own account on moto (its default), the principal of the customer's trust policy.
const SERVICE_ACCOUNT: &str = "123456789012";

async fn customer_in(account: &str) -> CustomerAccount {
    let endpoint = tokio::task::spawn_blocking(puck_e2e::moto::endpoint).await.expect("moto");
    CustomerAccount::open(&endpoint, account).await
}

/// A name unique to this run, so tests sharing moto never share a resource.
fn unique(base: &str) -> String {
    format!("{base}-{}", puck_local::unique_prefix("d").replace('_', "-"))
}

fn sqs(queue: &Queue, role: &str) -> Value {
    json!({"type": "sqs", "queue_url": queue.aws_url, "role_arn": role})
}

/// Publishes one event; its id.
async fn publish(stack: &TestStack, event_type: &str) -> String {
    let (status, accepted, _) =
        stack.post("/v1/events", json!({"event_type": event_type, "data": {"title": "t", "host": "h"}})).await;
    assert_eq!(status, 202, "{accepted}");
    accepted["event_id"].as_str().unwrap().to_owned()
}

/// The delivery of `event_id` to `sub`.
async fn delivery_of(stack: &TestStack, sub: &str, event_id: &str) -> String {
    let log = list_all_deliveries(stack, &format!("subscription_id={sub}")).await;
    let mine = log.iter().find(|d| d["event_id"] == event_id).unwrap_or_else(|| panic!("{log:?}"));
    mine["id"].as_str().unwrap().to_owned()
}

/// The `AssumeRole` calls of `role` the functions made since `recording` began, as their external ids.
fn assumed(recording: &iam::Recording, role: &str) -> Vec<String> {
    recording
        .accesses()
        .into_iter()
        .filter_map(|a| match a.target {
            Target::Role { arn, external_id } if arn == role => Some(external_id),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_destination_gets_one_signed_message_per_delivery_and_a_fifo_queue_its_group_and_dedup_ids() {
    let recording = iam::start_recording();
    let stack = TestStack::start(TestStackOptions::default()).await;
    let account = stack.account_id().to_string();
    let customer = customer_in("111122223333").await;
    let role = customer.create_role(&unique("puck"), SERVICE_ACCOUNT, &account).await;
    let standard = customer.create_queue(&unique("alerts")).await;
    let fifo = customer.create_queue(&format!("{}.fifo", unique("ordered"))).await;
    let sub = create_subscription(&stack, json!({"destination": sqs(&standard, &role), "events": ["finding.*"]})).await;
    assert_eq!((sub["url"].clone(), sub["destination"].clone()), (Value::Null, sqs(&standard, &role)));
    let secret = sub["secret"].as_str().unwrap().to_owned();
    let fifo_sub =
        create_subscription(&stack, json!({"destination": sqs(&fifo, &role), "events": ["finding.*"]})).await;

    let event_id = publish(&stack, "finding.discovered").await;
    let got = customer.receive(&standard, 1, EVENTUALLY).await;
    assert_eq!(got.len(), 1, "one message per delivery");
    let body = got[0].body().unwrap();
    let envelope: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (envelope["event_id"].as_str(), envelope["event_type"].as_str()),
        (Some(event_id.as_str()), Some("finding.discovered"))
    );
    let attrs = attributes(&got[0]);
    assert_eq!(attrs.get("X-Puck-Event-Id"), Some(&event_id));
    assert_eq!(attrs.get("X-Puck-Event-Type").map(String::as_str), Some("finding.discovered"));
    assert!(attrs.get("X-Puck-Delivery-Id").is_some_and(|v| v.starts_with("att_")), "{attrs:?}");
    assert_eq!(attrs.get("X-Puck-Signature"), attrs.get("X-Puck-Signature-256"));
    puck_verify::verify_now(&attrs["X-Puck-Signature"], body.as_bytes(), &[&secret])
        .expect("X-Puck-Signature verifies");
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, attrs[name].parse().unwrap());
    }
    standard_webhooks_verify(&secret, &headers, body.as_bytes())
        .await
        .expect("a Standard Webhooks library verifies the attributes");

    let in_fifo = customer.receive(&fifo, 1, EVENTUALLY).await;
    assert_eq!(in_fifo.len(), 1);
    let system = in_fifo[0].attributes().cloned().unwrap_or_default();
    let system: std::collections::HashMap<String, String> =
        system.into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
    assert_eq!(system.get("MessageGroupId"), Some(&id_of(&fifo_sub)), "{system:?}");
    assert_eq!(system.get("MessageDeduplicationId"), Some(&event_id));

    // The delivery log shows it like an HTTPS delivery: the queue URL and AWS's request id.
    let delivery = delivery_of(&stack, &id_of(&sub), &event_id).await;
    let logged = wait_for_delivery_status(&stack, &delivery, "succeeded", EVENTUALLY).await;
    let attempt = &logged["attempts"][0];
    assert_eq!(attempt["url"], standard.aws_url.as_str(), "{logged}");
    assert_eq!(attempt["response_status"], 200, "{logged}");
    assert!(attempt["response_body"].as_str().is_some_and(|id| !id.is_empty()), "the request id: {logged}");
    assert_eq!(attempt["error"], Value::Null);

    // Two deliveries through one role: one AssumeRole, with the Puck account id as ExternalId.
    let calls = assumed(&recording, &role);
    assert_eq!(calls, vec![account], "the credentials are cached per role");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eventbridge_destination_puts_one_entry_the_customers_rule_forwards() {
    let stack = TestStack::start(TestStackOptions::default()).await;
    let customer = customer_in("111122223333").await;
    let role = customer.create_role(&unique("puck"), SERVICE_ACCOUNT, &stack.account_id().to_string()).await;
    let inbox = customer.create_queue(&unique("bus-inbox")).await;
    let bus = customer.create_bus_to_queue(&unique("soc"), &inbox).await;
    let destination = json!({"type": "eventbridge", "event_bus_arn": bus, "role_arn": role});
    let sub = create_subscription(&stack, json!({"destination": destination, "events": ["finding.*"]})).await;
    assert_eq!(sub["destination"], destination);

    let event_id = publish(&stack, "finding.discovered").await;
    let got = customer.receive(&inbox, 1, EVENTUALLY).await;
    assert_eq!(got.len(), 1, "one PutEvents entry");
    let event: Value = serde_json::from_str(got[0].body().unwrap()).unwrap();
    assert_eq!(event["source"], "puck.webhooks", "{event}");
    assert_eq!(event["detail-type"], "finding.discovered", "{event}");
    assert_eq!(event["detail"]["event_id"], event_id.as_str(), "the detail is the envelope: {event}");
    assert_eq!(event["detail"]["api_version"], "v1", "{event}");
    let delivery = delivery_of(&stack, &id_of(&sub), &event_id).await;
    let logged = wait_for_delivery_status(&stack, &delivery, "succeeded", EVENTUALLY).await;
    assert_eq!(logged["attempts"][0]["url"], bus.as_str(), "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_queue_role_or_bus_is_the_attempts_aws_error_and_the_delivery_retries_until_fixed() {
    let stack = TestStack::start(TestStackOptions::default().backoff(1, 1).max_delivery_attempts(30)).await;
    let account = stack.account_id().to_string();
    let customer = customer_in("111122223333").await;
    let role = customer.create_role(&unique("puck"), SERVICE_ACCOUNT, &account).await;
    // Not created yet: the customer made a typo, or has not made the queue.
    let later = Queue {
        aws_url: format!("https://sqs.us-east-1.amazonaws.com/111122223333/{}", unique("later")),
        local_url: String::new(),
        arn: String::new(),
    };
    let name = later.aws_url.rsplit('/').next().unwrap().to_owned();
    // A role of another account: it cannot see the customer's queue.
    let other = customer_in("999988887777").await;
    let elsewhere = other.create_role(&unique("other"), SERVICE_ACCOUNT, &account).await;
    let real = customer.create_queue(&unique("real")).await;
    let missing_bus = "arn:aws:events:us-east-1:111122223333:event-bus/no-such-bus";
    let subs = [
        json!({"destination": sqs(&later, &role), "events": ["finding.*"]}),
        json!({"destination": sqs(&real, &elsewhere), "events": ["finding.*"]}),
        json!({"destination": {"type": "eventbridge", "event_bus_arn": missing_bus, "role_arn": role}, "events": ["finding.*"]}),
    ];
    let mut ids = Vec::new();
    for body in subs {
        ids.push(id_of(&create_subscription(&stack, body).await));
    }
    let event_id = publish(&stack, "finding.discovered").await;
    let expected = [
        ["NonExistentQueue", "QueueDoesNotExist"],
        ["NonExistentQueue", "QueueDoesNotExist"],
        ["ResourceNotFound", "ResourceNotFound"],
    ];
    let mut deliveries = Vec::new();
    for (sub, codes) in ids.iter().zip(expected) {
        let delivery = delivery_of(&stack, sub, &event_id).await;
        wait_until(EVENTUALLY, "a retried attempt", || async {
            get_delivery(&stack, &delivery).await["attempts"].as_array().is_some_and(|a| a.len() >= 2)
        })
        .await;
        let logged = get_delivery(&stack, &delivery).await;
        assert_eq!(logged["status"], "failed", "retried on the schedule: {logged}");
        let attempt = &logged["attempts"][0];
        let error = attempt["error"].as_str().unwrap_or_default();
        assert!(codes.iter().any(|c| error.contains(c)), "the AWS error code is the attempt's error: {logged}");
        assert!(!error.starts_with("HTTP"), "{logged}");
        assert_eq!(attempt["response_status"], Value::Null, "{logged}");
        deliveries.push(delivery);
    }
    // The customer makes the missing queue: the next scheduled attempt delivers.
    let fixed = customer.create_queue(&name).await;
    assert_eq!(fixed.aws_url, later.aws_url);
    wait_for_delivery_status(&stack, &deliveries[0], "succeeded", EVENTUALLY).await;
    assert_eq!(customer.receive(&fixed, 1, EVENTUALLY).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_with_wait_sends_to_the_queue_at_once() {
    let stack = TestStack::start(TestStackOptions::default()).await;
    let customer = customer_in("111122223333").await;
    let role = customer.create_role(&unique("puck"), SERVICE_ACCOUNT, &stack.account_id().to_string()).await;
    let queue = customer.create_queue(&unique("ping")).await;
    let sub = create_subscription(&stack, json!({"destination": sqs(&queue, &role), "events": ["finding.*"]})).await;
    let (status, answer, _) = stack.post(&format!("{SUBSCRIPTIONS}/{}/test?wait=true", id_of(&sub)), Value::Null).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "succeeded", "{answer}");
    assert_eq!(answer["attempt"]["url"], queue.aws_url.as_str(), "{answer}");
    let got = customer.receive(&queue, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(attributes(&got[0]).get("X-Puck-Event-Type").map(String::as_str), Some("investigation.queued"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_returns_400_naming_the_field_for_a_bad_destination() {
    let stack = TestStack::start(TestStackOptions::default()).await;
    let role = "arn:aws:iam::111122223333:role/puck";
    let queue = "https://sqs.us-east-1.amazonaws.com/111122223333/alerts";
    let good = json!({"type": "sqs", "queue_url": queue, "role_arn": role});
    let cases = [
        (json!({"destination": good, "url": "https://example.com/h", "events": ["*"]}), "url or destination, not both"),
        (json!({"destination": good, "events": ["*"], "format": "slack"}), "format must be raw"),
        (json!({"destination": good, "events": ["*"], "headers": {"X-A": "b"}}), "headers do not apply"),
        (
            json!({"destination": {"type": "sqs", "queue_url": "https://example.com/q", "role_arn": role}, "events": ["*"]}),
            "destination.queue_url must be",
        ),
        (
            json!({"destination": {"type": "sqs", "queue_url": queue, "role_arn": "arn:aws:iam::1:role/x"}, "events": ["*"]}),
            "destination.role_arn must be",
        ),
        (
            json!({"destination": {"type": "eventbridge", "event_bus_arn": queue, "role_arn": role}, "events": ["*"]}),
            "destination.event_bus_arn must be",
        ),
        (json!({"destination": {"type": "sns"}, "events": ["*"]}), "destination.type"),
        (json!({"events": ["*"]}), "url is required"),
    ];
    for (body, needle) in cases {
        assert_error(&stack.post(SUBSCRIPTIONS, body).await, 400, "validation_error", needle);
    }
}
