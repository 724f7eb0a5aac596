use super::*;
use serde_json::json;

const ROLE: &str = "arn:aws:iam::111122223333:role/puck-delivery";

fn err(v: Value) -> (String, String) {
    match AwsDestination::parse(&v) {
        Err(AppError::Validation(e)) => (e.field, e.message),
        other => panic!("{v} parsed: {other:?}"),
    }
}

#[test]
fn an_sqs_destination_parses_into_region_account_and_name() {
    let raw = json!({"type": "sqs", "queue_url": "https://sqs.eu-west-1.amazonaws.com/111122223333/alerts.fifo", "role_arn": ROLE});
    let d = AwsDestination::parse(&raw).unwrap();
    let AwsTarget::Sqs(q) = &d.target else { panic!("{d:?}") };
    assert_eq!((q.region.as_str(), q.account.as_str(), q.name.as_str()), ("eu-west-1", "111122223333", "alerts.fifo"));
    assert!(q.is_fifo());
    assert_eq!((d.role.account.as_str(), d.role.name.as_str()), ("111122223333", "puck-delivery"));
    assert_eq!(d.view(), raw, "the view is what the caller gave");
    assert_eq!(d.address(), "https://sqs.eu-west-1.amazonaws.com/111122223333/alerts.fifo");
}

#[test]
fn an_eventbridge_destination_parses_and_round_trips_through_serde() {
    let raw = json!({"type": "eventbridge", "event_bus_arn": "arn:aws:events:us-gov-west-1:111122223333:event-bus/soc/alerts", "role_arn": "arn:aws:iam::444455556666:role/team/a/puck"});
    let d = AwsDestination::parse(&raw).unwrap();
    let AwsTarget::EventBridge(b) = &d.target else { panic!("{d:?}") };
    assert_eq!(
        (b.region.as_str(), b.account.as_str(), b.name.as_str()),
        ("us-gov-west-1", "111122223333", "soc/alerts")
    );
    assert_eq!(d.role.name, "puck");
    let stored = serde_json::to_value(&d).unwrap();
    assert_eq!(serde_json::from_value::<AwsDestination>(stored).unwrap(), d);
    assert!(serde_json::from_value::<AwsDestination>(json!({"type": "sqs"})).is_err(), "a bad record does not parse");
}

#[test]
fn create_returns_400_naming_the_field_for_each_bad_destination() {
    let sqs = |url: &str| json!({"type": "sqs", "queue_url": url, "role_arn": ROLE});
    let cases = [
        (json!("sqs"), "destination", "destination must be an object"),
        (json!({}), "destination.type", "destination.type is required"),
        (json!({"type": "sns"}), "destination.type", "destination.type \"sns\" is not one of sqs or eventbridge"),
        (json!({"type": 1}), "destination.type", "must be a string"),
        (json!({"type": "sqs", "role_arn": ROLE}), "destination.queue_url", "destination.queue_url is required"),
        (sqs("http://sqs.us-east-1.amazonaws.com/111122223333/q"), "destination.queue_url", "must be https://sqs."),
        (sqs("https://sqs.us-east-1.amazonaws.com/1111/q"), "destination.queue_url", "<account>"),
        (sqs("https://sqs.us-east-1.example.com/111122223333/q"), "destination.queue_url", "<region>"),
        (sqs("https://sqs.useast1.amazonaws.com/111122223333/q"), "destination.queue_url", "<region>"),
        (sqs("https://sqs.us-east-1.amazonaws.com/111122223333/a/b"), "destination.queue_url", "<name>"),
        (sqs("https://sqs.us-east-1.amazonaws.com/111122223333/"), "destination.queue_url", "<name>"),
        (
            json!({"type": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "role_arn": "arn:aws:iam::111122223333:user/bob"}),
            "destination.role_arn",
            "destination.role_arn must be arn:aws:iam::<account>:role/<name>",
        ),
        (
            json!({"type": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q"}),
            "destination.role_arn",
            "destination.role_arn is required",
        ),
        (
            json!({"type": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/111122223333/q", "role_arn": ROLE, "event_bus_arn": "x"}),
            "destination.event_bus_arn",
            "unknown field destination.event_bus_arn for type sqs",
        ),
        (
            json!({"type": "eventbridge", "event_bus_arn": "arn:aws:events:us-east-1:111122223333:rule/x", "role_arn": ROLE}),
            "destination.event_bus_arn",
            "destination.event_bus_arn must be arn:aws:events:<region>:<account>:event-bus/<name>",
        ),
        (
            json!({"type": "eventbridge", "event_bus_arn": "arn:aws:events:us-east-1:111122223333:event-bus/", "role_arn": ROLE}),
            "destination.event_bus_arn",
            "event-bus/<name>",
        ),
    ];
    for (raw, field, message) in cases {
        let (f, m) = err(raw.clone());
        assert_eq!(f, field, "{raw}");
        assert!(m.contains(message), "{raw}: {m}");
    }
}
