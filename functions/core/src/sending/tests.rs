use super::*;
use crate::backoff::RetryPolicy;
use crate::model::DeliveryStatus;
use crate::services::dispatch::{classify, Receipt};
use crate::time::Timestamp;
use serde_json::json;
use std::sync::Mutex;

#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

#[async_trait]
impl WebhookSender for Recorded {
    async fn send(&self, request: &OutboundRequest) -> SendOutcome {
        self.0.lock().unwrap().push(format!("https {}", request.target.address()));
        SendOutcome { status: Some(204), ..SendOutcome::default() }
    }
}

#[async_trait]
impl AwsDestinationSender for Recorded {
    async fn send(&self, route: &AwsRoute, attributes: &[(String, String)], body: &str) -> AwsAnswer {
        let names: Vec<&str> = attributes.iter().map(|(k, _)| k.as_str()).collect();
        self.0.lock().unwrap().push(format!("aws {} {} {}", route.destination.address(), names.join(","), body));
        AwsAnswer::Accepted { request_id: Some("req-1".into()) }
    }
}

fn route() -> AwsRoute {
    let raw = json!({"type": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "role_arn": "arn:aws:iam::111122223333:role/r"});
    AwsRoute {
        destination: AwsDestination::parse(&raw).unwrap(),
        external_id: "acct_1".into(),
        message_group_id: "sub_1".into(),
        deduplication_id: "evt_1".into(),
        detail_type: "finding.discovered".into(),
    }
}

#[tokio::test]
async fn a_request_with_an_aws_route_goes_to_aws_and_any_other_over_https() {
    let https = Arc::new(Recorded::default());
    let aws = Arc::new(Recorded::default());
    let sender = TargetSender::new(https.clone(), aws.clone());
    let headers: Vec<(String, String)> = [
        ("Content-Type", "application/json"),
        ("User-Agent", "puck"),
        ("X-Puck-Event-Id", "evt_1"),
        ("webhook-id", "evt_1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = TargetUrl::parse("https://example.com/h").unwrap();
    let mut request = OutboundRequest { target: Target::Https(url), headers, body: "{}".into() };
    assert_eq!(sender.send(&request).await.status, Some(204));
    request.target = Target::Aws(Box::new(route()));
    let outcome = sender.send(&request).await;
    assert_eq!((outcome.status, outcome.body.as_str()), (Some(200), "req-1"));
    assert_eq!(outcome.header(AWS_REQUEST_ID_HEADER), Some("req-1"));
    assert_eq!(*https.0.lock().unwrap(), ["https https://example.com/h"]);
    let sent = aws.0.lock().unwrap();
    assert_eq!(*sent, ["aws https://sqs.us-east-1.amazonaws.com/111122223333/q X-Puck-Event-Id,webhook-id {}"]);
}

#[test]
fn message_attributes_are_the_wire_headers_and_at_most_ten() {
    let mut headers: Vec<(String, String)> =
        vec![("Content-Type".into(), "x".into()), ("User-Agent".into(), "x".into())];
    headers.extend((0..12).map(|i| (format!("X-Puck-H{i}"), "v".to_owned())));
    let attrs = message_attributes(&headers);
    assert_eq!(attrs.len(), 10);
    assert!(attrs.iter().all(|(k, _)| k.starts_with("X-Puck-")));
    let wire: Vec<(String, String)> = ["x-puck-event-id", "x-puck-signature-256", "Webhook-Id", "content-type"]
        .iter()
        .map(|k| (k.to_string(), "v".to_owned()))
        .collect();
    let names: Vec<String> = message_attributes(&wire).into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["X-Puck-Event-Id", "X-Puck-Signature-256", "webhook-id"], "spelled as documented");
}

#[test]
fn an_aws_error_is_the_attempts_error_and_is_retried_on_the_schedule() {
    let policy = RetryPolicy::default();
    let receipt = Receipt { count: 1, received_at: Timestamp(0) };
    for code in ["AccessDenied", "AWS.SimpleQueueService.NonExistentQueue", "ThrottlingException", "InternalFailure"] {
        let outcome = outcome_of(AwsAnswer::Refused { code: code.into(), request_id: Some("r".into()) }, 5);
        assert_eq!(outcome.error.as_deref(), Some(code));
        assert_eq!(outcome.status, None, "never a 2xx, never a 410");
        let verdict = classify(&policy, &outcome, 1, receipt, Timestamp(0));
        assert_eq!(verdict.status, DeliveryStatus::Failed, "{code}");
        assert!(verdict.retry_in_secs.is_some(), "{code} is retried");
    }
    let unreachable = outcome_of(AwsAnswer::Unreachable { error: "timeout".into() }, 5);
    assert_eq!(classify(&policy, &unreachable, 1, receipt, Timestamp(0)).status, DeliveryStatus::Failed);
    let accepted = outcome_of(AwsAnswer::Accepted { request_id: None }, 5);
    assert_eq!(classify(&policy, &accepted, 1, receipt, Timestamp(0)).status, DeliveryStatus::Succeeded);
}

#[test]
fn the_target_is_parsed_from_the_subscription_once_and_logged_as_its_address() {
    let sub = crate::fakes::subscription_for(&["finding.*"]);
    let now = Timestamp(1_700_000_000_000);
    let delivery = crate::model::Delivery {
        id: crate::ids::DeliveryId::generate(1),
        account_id: sub.account_id.clone(),
        subscription_id: sub.id.clone(),
        event_id: crate::ids::EventId::parse("evt_1").unwrap(),
        event_type: "finding.discovered".into(),
        status: DeliveryStatus::Pending,
        attempt_count: 0,
        round_start: 0,
        fifo: false,
        next_attempt_at: None,
        last_response_status: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        expires_at: now,
        payload: "{}".into(),
        attempts: Vec::new(),
    };
    let https = Target::of(&delivery, &sub).unwrap();
    assert_eq!(https, Target::Https(sub.url.clone().unwrap()));
    assert_eq!(https.address(), "https://example.com/hook");
    let destination = route().destination;
    let aws_sub = crate::model::Subscription { url: None, destination: Some(destination.clone()), ..sub.clone() };
    let Some(Target::Aws(aws)) = Target::of(&delivery, &aws_sub) else { panic!("not an AWS target") };
    let aws = *aws;
    assert_eq!(aws.destination, destination);
    assert_eq!((aws.external_id, aws.message_group_id), (sub.account_id.to_string(), sub.id.to_string()));
    assert_eq!((aws.deduplication_id.as_str(), aws.detail_type.as_str()), ("evt_1", "finding.discovered"));
    assert_eq!(Target::of(&delivery, &aws_sub).unwrap().address(), aws_sub.target_address());
    let neither = crate::model::Subscription { url: None, destination: None, ..sub };
    assert_eq!(Target::of(&delivery, &neither), None);
}
