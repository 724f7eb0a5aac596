//! IAM on the local stack: moto authorises every call, so a function missing a grant in
//! template.yaml would fail only in AWS. This drives every route and worker path once, records
//! each function's AWS calls (`puck_e2e::iam`) and checks them against the role the SAM
//! translator expands from template.yaml (RELIABILITY.md).

use crate::support::{create_endpoint, create_subscription, id_of, ENDPOINTS, SUBSCRIPTIONS};
use puck_e2e::customer::CustomerAccount;
use puck_e2e::delivery::{list_all_deliveries, queue_depth, wait_for_delivery_status, wait_for_empty_delivery_queue};
use puck_e2e::iam::{self, Need, Target};
use puck_e2e::{wait_until, Receiver, Script, TestStack, TestStackOptions, EVENTUALLY};
use puck_local::invocation::COLD_START;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Publishes one event of `event_type`; the id of `sub`'s delivery of it.
async fn publish(stack: &TestStack, event_type: &str, sub: &str) -> String {
    let (status, accepted, _) = stack.post("/v1/events", json!({"event_type": event_type, "data": {}})).await;
    assert_eq!(status, 202, "{accepted}");
    let event_id = accepted["event_id"].as_str().unwrap_or_else(|| panic!("no event_id in {accepted}"));
    let log = list_all_deliveries(stack, &format!("subscription_id={sub}")).await;
    let mine = log.iter().find(|d| d["event_id"] == event_id).unwrap_or_else(|| panic!("{log:?}"));
    mine["id"].as_str().unwrap().to_owned()
}

/// Every route and worker path, once: the subscription lifecycle, publishing (single and batch),
/// a delivery that succeeds and one dead-lettered then replayed and recovered, inbound endpoints
/// and a receive, an investigation, the sweeper and the reference pages.
async fn drive_every_path(stack: &TestStack) {
    let ok = Receiver::start().await;
    let down = Receiver::start_with(Script::status(500)).await;
    let good = id_of(&create_subscription(stack, json!({"url": ok.url(), "events": ["finding.*"]})).await);
    let bad = id_of(&create_subscription(stack, json!({"url": down.url(), "events": ["chain.confirmed"]})).await);
    // Operational events (dead-lettered) are delivered too: the workers' publish path.
    let ops = json!({"url": ok.url(), "events": ["webhook.delivery.dead_lettered"]});
    let ops = id_of(&create_subscription(stack, ops).await);
    let sub_path = format!("{SUBSCRIPTIONS}/{good}");
    for path in [SUBSCRIPTIONS, sub_path.as_str(), "/v1/webhooks/event-types", "/v1/openapi.json", "/docs", "/console"]
    {
        assert_eq!(stack.get(path).await.0, 200, "GET {path}");
    }
    assert_eq!(stack.get("/no/such/route").await.0, 404);
    // Rate-limited, so its deliveries also take the waiting path (bucket, delayed message).
    let patch = json!({"events": ["finding.*", "investigation.*"], "rate_limit_per_second": 1});
    let (status, body, _) = stack.patch(&sub_path, patch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.post(&format!("{sub_path}/test"), Value::Null).await.0, 202);
    assert_eq!(stack.post(&format!("{sub_path}/test?wait=true"), Value::Null).await.0, 200);

    let delivered = publish(stack, "finding.discovered", &good).await;
    // A FIFO subscription: its delivery goes through the FIFO queue and its event source.
    let fifo = json!({"url": ok.url(), "events": ["agent.registered"], "fifo": true});
    let fifo = id_of(&create_subscription(stack, fifo).await);
    let in_line = publish(stack, "agent.registered", &fifo).await;
    wait_for_delivery_status(stack, &in_line, "succeeded", EVENTUALLY).await;
    let two = ["finding.discovered", "chain.confirmed"].map(|t| json!({"event_type": t, "data": {}}));
    let batch = json!({ "events": two });
    let (status, body, _) = stack.post("/v1/events/batch", batch).await;
    assert_eq!(status, 202, "{body}");
    wait_for_delivery_status(stack, &delivered, "succeeded", EVENTUALLY).await;
    let dead = publish(stack, "chain.confirmed", &bad).await;
    wait_for_delivery_status(stack, &dead, "failed_permanent", EVENTUALLY).await;
    redrive_to_dead_letter_queue(stack, &dead).await;
    let (status, list, _) = stack.get("/v1/webhooks/deliveries").await;
    assert_eq!(status, 200, "{list}");
    let replayed = stack.post(&format!("/v1/webhooks/deliveries/{dead}/replay"), Value::Null).await;
    assert_eq!(replayed.0, 202, "{}", replayed.1);
    wait_for_delivery_status(stack, &dead, "failed_permanent", EVENTUALLY).await;
    let since = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let since = since.format(&time::format_description::well_known::Rfc3339).unwrap();
    let (status, body, _) = stack.post(&format!("{SUBSCRIPTIONS}/{bad}/recover"), json!({"since": since})).await;
    assert_eq!(status, 202, "{body}");

    let (endpoint, receive_path, _) = create_endpoint(stack, json!({"provider": "generic"})).await;
    assert_eq!(stack.get(ENDPOINTS).await.0, 200);
    let (status, inv, _) = stack.anonymous().post(&receive_path, json!({"query": "look at host 7"})).await;
    assert_eq!(status, 202, "{inv}");
    let investigation = format!("/v1/investigations/{}", inv["investigation_id"].as_str().unwrap());
    assert_eq!(stack.get(&investigation).await.0, 200);
    assert_eq!(stack.delete(&format!("{ENDPOINTS}/{}", id_of(&endpoint))).await.0, 204);

    // The ingest queue: one event published, one message that can never be parked in its DLQ.
    let account = stack.account_id().to_string();
    let queued =
        json!({"account_id": account, "event_type": "finding.discovered", "data": {}, "event_id": "iam-ingest-1"});
    for body in [queued.to_string(), "not json".to_owned()] {
        let sent = stack.stack.clients.sqs.send_message().queue_url(&stack.stack.ingest_queue_url).message_body(body);
        sent.send().await.expect("SendMessage to the ingest queue");
    }
    wait_until(EVENTUALLY, "the ingest queue to be drained", || async {
        queue_depth(stack, &stack.stack.ingest_queue_url).await == (0, 0, 0)
    })
    .await;

    // An AWS destination: the dispatcher and `/test?wait=true` each assume the customer's role.
    let aws = aws_destination(stack).await;
    assert_eq!(
        stack.post(&format!("{SUBSCRIPTIONS}/{aws}/test?wait=true"), Value::Null).await.1["status"],
        "succeeded"
    );
    let sent = publish(stack, "agent.registered", &aws).await;
    wait_for_delivery_status(stack, &sent, "succeeded", EVENTUALLY).await;

    stack.stack.run_schedules_now().await.expect("the sweeper runs");
    wait_for_empty_delivery_queue(stack, EVENTUALLY).await;
    assert_eq!(stack.delete(&sub_path).await.0, 204);
    for sub in [bad, ops, aws] {
        assert_eq!(stack.delete(&format!("{SUBSCRIPTIONS}/{sub}")).await.0, 204);
    }
}

/// A subscription delivering to a queue in a customer's account, through their role; its id.
async fn aws_destination(stack: &TestStack) -> String {
    let endpoint = tokio::task::spawn_blocking(puck_e2e::moto::endpoint).await.expect("moto");
    let customer = CustomerAccount::open(&endpoint, "111122223333").await;
    let suffix = puck_local::unique_prefix("iam").replace('_', "-");
    let role = customer.create_role(&format!("puck-{suffix}"), "123456789012", &stack.account_id().to_string()).await;
    let queue = customer.create_queue(&format!("iam-{suffix}")).await;
    let destination = json!({"type": "sqs", "queue_url": queue.aws_url, "role_arn": role});
    id_of(&create_subscription(stack, json!({"destination": destination, "events": ["agent.*"]})).await)
}

/// What SQS does with a message past `maxReceiveCount`: moves its body, unchanged, to the DLQ;
/// then waits for the dead-letter function to drain it.
async fn redrive_to_dead_letter_queue(stack: &TestStack, delivery_id: &str) {
    let dlq = stack.stack.dead_letter_queue_url.clone();
    let job = json!({"account_id": stack.account_id().to_string(), "delivery_id": delivery_id});
    let sent = stack.stack.clients.sqs.send_message().queue_url(&dlq).message_body(job.to_string()).send().await;
    sent.expect("send to the DLQ");
    wait_until(EVENTUALLY, "the dead-letter function to drain the DLQ", || async {
        queue_depth(stack, &dlq).await == (0, 0, 0)
    })
    .await;
}

/// The recorded accesses of `stack` as placeholder ARNs, plus what each SQS event source mapping
/// needs of its queue (Lambda polls with the function's role).
fn needs_of(stack: &TestStack, policies: &iam::Policies, recorded: &[iam::Access]) -> BTreeSet<Need> {
    let mut needs = BTreeSet::new();
    for access in recorded {
        if let Target::Unknown(body) = &access.target {
            panic!("{}: {} names no resource the check can read: {body}", access.function, access.action);
        }
        // Other tests' stacks share the process (and so the interceptor): keep this stack's.
        if let Some(arn) = policies.arn_of(&stack.stack.provisioned, &access.target) {
            needs.insert((access.function.to_string(), access.action.clone(), arn));
        }
    }
    let template = puck_local::template::Template::load(&puck_local::moto::repo_root().join("template.yaml"))
        .expect("template.yaml loads");
    let reached: BTreeSet<String> = needs.iter().map(|n: &Need| n.0.clone()).collect();
    for consumer in template.sqs_consumers().expect("sqs consumers") {
        if !reached.contains(&consumer.function) {
            continue;
        }
        let arn = format!("arn:aws:sqs:{}:{}:{}", policies.region, policies.account, consumer.queue);
        for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"] {
            needs.insert((consumer.function.clone(), action.to_owned(), arn.clone()));
        }
    }
    needs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aws_call_is_granted_to_the_function_that_makes_it() {
    let recording = iam::start_recording();
    // No config cache: in AWS every function has its own, so each makes its own reads; a cache
    // shared by all functions here would hide them.
    let opts = TestStackOptions::default()
        .max_delivery_attempts(2)
        .backoff(1, 1)
        .env("CONFIG_CACHE_SECONDS", "0")
        .sweep_interval(Duration::from_secs(3600));
    let stack = TestStack::start(opts).await;
    let template = puck_local::moto::repo_root().join("template.yaml");
    let policies = tokio::task::spawn_blocking(move || iam::load_policies(&template)).await.expect("policies");
    drive_every_path(&stack).await;

    let needs = needs_of(&stack, &policies, &recording.accesses());
    assert!(needs.iter().any(|n| n.0 == COLD_START), "the master key read at cold start was not recorded");
    let report = iam::check(&policies, &needs);
    println!("grants no call used ({}):\n  {}", report.unused.len(), report.unused.join("\n  "));
    assert!(report.denied.is_empty(), "calls the function's role does not allow:\n  {}", report.denied.join("\n  "));
    let unreached: Vec<&String> = policies
        .functions
        .iter()
        .filter(|(f, statements)| !report.reached.contains(*f) && statements.iter().any(|s| s.source == "inline"))
        .map(|(f, _)| f)
        .collect();
    assert!(
        unreached.is_empty(),
        "functions with grants the run never reached (drive them in this test): {unreached:?}"
    );
}
