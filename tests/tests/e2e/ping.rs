//! `POST …/test?wait=true`: the test attempt made within the request, bypassing the queue, and
//! answered with its result (seed 004's ping): a 200, a 500 and a refused private target, each
//! recorded in the log and never retried.

use crate::support::{assert_error, create_subscription, id_of, SUBSCRIPTIONS};
use puck_core::validation::TargetUrl;
use puck_e2e::{Receiver, Reply, Script, TestStack, TestStackOptions};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_true_answers_the_attempt_of_a_2xx_and_a_5xx_and_records_it_without_retrying() {
    let stack = TestStack::start_default().await;
    let ok = Receiver::start().await;
    let failing = Receiver::start_with(Script::always(Reply::status(500).body("down"))).await;
    for (receiver, status, code) in [(&ok, "succeeded", 200), (&failing, "failed_permanent", 500)] {
        let sub = create_subscription(&stack, json!({"url": receiver.url(), "events": ["agent.*"]})).await;
        let path = format!("{SUBSCRIPTIONS}/{}/test?wait=true", id_of(&sub));
        let (got, answer, _) = stack.post(&path, json!({"event_type": "finding.discovered"})).await;
        assert_eq!(got, 200, "{answer}");
        assert_eq!(answer["status"], status, "{answer}");
        assert_eq!(answer["attempt"]["response_status"], code, "{answer}");
        assert_eq!(answer["attempt"]["number"], 1);
        assert_eq!(answer["attempt"]["url"], receiver.url());
        // The attempt was made before the answer: the receiver already has it, signed.
        let requests = receiver.requests();
        assert_eq!(requests.len(), 1, "one attempt, made within the request");
        assert_eq!(requests[0].header("x-puck-event-type"), Some("finding.discovered"));
        assert_eq!(requests[0].header("x-puck-delivery-id"), answer["attempt"]["attempt_id"].as_str());
        // In the log as answered, with nothing left to retry.
        let (_, d, _) =
            stack.get(&format!("/v1/webhooks/deliveries/{}", answer["delivery_id"].as_str().unwrap())).await;
        assert_eq!(d["status"], status, "{d}");
        assert_eq!(d["attempt_count"], 1);
        assert_eq!(d["next_attempt_at"], Value::Null);
        assert_eq!(d["attempts"][0]["attempt_id"], answer["attempt"]["attempt_id"]);
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(failing.requests().len(), 1, "a failed ping is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_true_to_a_private_target_answers_the_refusal_and_bad_wait_values_are_400() {
    let stack = TestStack::start(TestStackOptions::default().deny_private_targets()).await;
    let receiver = Receiver::start().await;
    let sub =
        create_subscription(&stack, json!({"url": "https://hooks.example.com/puck", "events": ["agent.*"]})).await;
    // Stored before the guard applied: the target is loopback now, refused at send time.
    let id = puck_core::ids::SubscriptionId::parse(&id_of(&sub)).unwrap();
    let mut stored = stack.ctx().subscriptions.get(stack.account_id(), &id).await.unwrap().unwrap();
    stored.url = Some(TargetUrl::parse_with(&receiver.url().replace("127.0.0.1", "localhost"), true).unwrap());
    assert_eq!(
        stack.ctx().subscriptions.update_settings(&stored, stored.version, false).await.unwrap(),
        puck_core::ports::SettingsWrite::Written
    );

    let (got, answer, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test?wait=true"), Value::Null).await;
    assert_eq!(got, 200, "{answer}");
    assert_eq!(answer["status"], "failed_permanent", "{answer}");
    assert_eq!(answer["attempt"]["response_status"], Value::Null);
    let error = answer["attempt"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("blocked"), "{answer}");
    assert!(receiver.requests().is_empty(), "the receiver was never contacted");

    for bad in ["yes", "1", "TRUE", ""] {
        let resp = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test?wait={bad}"), Value::Null).await;
        assert_error(&resp, 400, "validation_error", "wait must be true or false");
    }
    let (got, queued, _) = stack.post(&format!("{SUBSCRIPTIONS}/{id}/test?wait=false"), Value::Null).await;
    assert_eq!((got, queued.get("attempt")), (202, None), "{queued}");
}
