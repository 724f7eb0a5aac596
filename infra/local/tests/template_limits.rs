//! What AWS enforces and moto does not (docs/local-stack.md), asserted on template.yaml itself:
//! queue retention and visibility sized for the schedule, alarms that reach someone, limits that
//! protect the account, and deploy details. moto ignores all of these, so only this file would
//! notice a template that deploys but misbehaves.

use puck_local::template::Template;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Template {
    Template::load(&root().join("template.yaml")).expect("template.yaml parses")
}

fn props<'a>(t: &'a Template, logical_id: &str) -> &'a Value {
    t.resources()
        .get(logical_id)
        .unwrap_or_else(|| panic!("no resource {logical_id}"))
        .get("Properties")
        .unwrap_or(&Value::Null)
}

fn param_default(t: &Template, name: &str) -> u64 {
    t.parameter_defaults()[name].parse().unwrap_or_else(|_| panic!("{name} default is not a number"))
}

fn number(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v}"))
}

const SQS_MAX_RETENTION: u64 = 14 * 86_400;
const SQS_MAX_VISIBILITY: u64 = 43_200;

// ---- 2. Retention ----------------------------------------------------------------------------

#[test]
fn both_queues_keep_messages_longer_than_the_longest_schedule() {
    let t = template();
    let max_attempts = t
        .doc_pointer("/Parameters/MaxDeliveryAttempts/MaxValue")
        .map(number)
        .expect("MaxDeliveryAttempts has a MaxValue");
    // Every wait at most 12 h (Retry-After honoured up to the visibility window).
    let longest = (max_attempts - 1) * SQS_MAX_VISIBILITY;
    for queue in ["DeliveryQueue", "DeadLetterQueue", "IngestQueue", "IngestDeadLetterQueue"] {
        let retention = props(&t, queue).get("MessageRetentionPeriod").map(number).unwrap_or(4 * 86_400);
        assert_eq!(
            retention, SQS_MAX_RETENTION,
            "{queue}: retention counts from the first enqueue, also after redrive"
        );
        assert!(
            longest < retention,
            "{queue}: {max_attempts} attempts can take {longest}s, past its retention {retention}s"
        );
    }
    assert!(param_default(&t, "MaxDeliveryAttempts") <= max_attempts);
}

// ---- 4. Alarms -------------------------------------------------------------------------------

#[test]
fn the_alarms_that_matter_exist_and_notify_the_topic() {
    let t = template();
    assert_eq!(t.resource_type("AlarmTopic"), Some("AWS::SNS::Topic"));
    let sub = &t.resources()["AlarmEmailSubscription"];
    assert_eq!(sub["Condition"], "HasAlarmEmail", "the email subscription is optional");
    assert_eq!(sub["Properties"]["Endpoint"], json!({"Ref": "AlarmEmail"}));
    assert_eq!(sub["Properties"]["Protocol"], "email");

    // (alarm, namespace, metric, dimension value it watches)
    let wanted = [
        ("DeadLetterAlarm", "Puck", "DeliveriesDeadLettered", Value::Null),
        ("DispatcherErrorsAlarm", "AWS/Lambda", "Errors", json!({"Ref": "DispatcherFunction"})),
        ("DispatcherThrottlesAlarm", "AWS/Lambda", "Throttles", json!({"Ref": "DispatcherFunction"})),
        ("ApiServerErrorsAlarm", "AWS/ApiGateway", "5xx", json!({"Ref": "Api"})),
        (
            "DeliveryBacklogAlarm",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            json!({"Fn::GetAtt": ["DeliveryQueue", "QueueName"]}),
        ),
        ("SweeperErrorsAlarm", "AWS/Lambda", "Errors", json!({"Ref": "SweeperFunction"})),
        (
            "IngestDeadLetterAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            json!({"Fn::GetAtt": ["IngestDeadLetterQueue", "QueueName"]}),
        ),
    ];
    for (alarm, namespace, metric, dimension) in wanted {
        assert_eq!(t.resource_type(alarm), Some("AWS::CloudWatch::Alarm"), "{alarm}");
        let p = props(&t, alarm);
        assert_eq!((p["Namespace"].as_str(), p["MetricName"].as_str()), (Some(namespace), Some(metric)), "{alarm}");
        if !dimension.is_null() {
            let dims = p["Dimensions"].as_array().unwrap_or_else(|| panic!("{alarm}: no Dimensions"));
            assert!(dims.iter().any(|d| d["Value"] == dimension), "{alarm} does not watch {dimension}");
        }
        assert_eq!(p["AlarmActions"], json!([{"Ref": "AlarmTopic"}]), "{alarm} must notify the topic");
        assert_eq!(p["TreatMissingData"], "notBreaching", "{alarm}");
    }
}

#[test]
fn the_dead_letter_alarm_counts_log_lines_not_a_queue_drained_in_seconds() {
    let t = template();
    // The DLQ's depth is sampled once a minute and the dead-letter function drains it in seconds;
    // both places that fail a delivery for good log "delivery dead-lettered", which is counted.
    let code = [
        std::fs::read_to_string(root().join("functions/core/src/services/dispatch.rs")).unwrap(),
        std::fs::read_to_string(root().join("functions/core/src/services/dead_letter.rs")).unwrap(),
    ];
    for (filter, group) in
        [("DispatcherDeadLetteredMetric", "DispatcherLogGroup"), ("DeadLetterDeadLetteredMetric", "DeadLetterLogGroup")]
    {
        let p = props(&t, filter);
        assert_eq!(p["LogGroupName"], json!({"Ref": group}), "{filter}");
        assert_eq!(p["FilterPattern"], "{ $.message = \"delivery dead-lettered\" }", "{filter}");
        assert_eq!(p["MetricTransformations"][0]["MetricName"], "DeliveriesDeadLettered", "{filter}");
    }
    for source in &code {
        assert!(source.contains("\"delivery dead-lettered\""), "the counted log message is emitted");
    }
}

#[test]
fn a_dashboard_shows_the_pipeline() {
    let t = template();
    assert_eq!(t.resource_type("Dashboard"), Some("AWS::CloudWatch::Dashboard"));
    let body =
        props(&t, "Dashboard")["DashboardBody"]["Fn::Sub"].as_str().expect("DashboardBody is a !Sub string").to_owned();
    for needle in [
        "${DispatcherFunction}",
        "${DeliveryQueue.QueueName}",
        "${Api}",
        "DeliveriesDeadLettered",
        "${Table}",
        "${SweeperFunction}",
    ] {
        assert!(body.contains(needle), "dashboard lacks {needle}");
    }
    // Valid JSON once substituted.
    let substituted = body.replace("${AWS::Region}", "us-east-1").replace("${", "{{");
    serde_json::from_str::<Value>(&substituted.replace("{{", "x")).expect("dashboard body is JSON");
}

// ---- 5. Limits -------------------------------------------------------------------------------

#[test]
fn every_event_source_mapping_caps_its_concurrency() {
    let t = template();
    for (function, event, param) in [
        ("DispatcherFunction", "DeliveryQueue", "DispatcherMaxConcurrency"),
        ("DeadLetterFunction", "DeadLetterQueue", "DeadLetterMaxConcurrency"),
        ("IngestFunction", "IngestQueue", "IngestMaxConcurrency"),
    ] {
        let p = &props(&t, function)["Events"][event]["Properties"];
        assert_eq!(p["ScalingConfig"]["MaximumConcurrency"], json!({"Ref": param}), "{function}");
        assert!(param_default(&t, param) >= 2, "Lambda's minimum MaximumConcurrency is 2");
    }
}

#[test]
fn the_api_stage_is_throttled_and_logs_route_keys_never_paths() {
    let t = template();
    let api = props(&t, "Api");
    assert_eq!(api["DefaultRouteSettings"]["ThrottlingRateLimit"], json!({"Ref": "ApiThrottlingRateLimit"}));
    assert_eq!(api["DefaultRouteSettings"]["ThrottlingBurstLimit"], json!({"Ref": "ApiThrottlingBurstLimit"}));
    let logs = &api["AccessLogSettings"];
    assert_eq!(logs["DestinationArn"], json!({"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}));
    let format = logs["Format"].as_str().expect("access log format");
    serde_json::from_str::<Value>(format).expect("access log format is JSON");
    assert!(format.contains("$context.routeKey"));
    // The inbound receiver's path holds its secret key: no variable that carries the raw path.
    for leak in [
        "$context.path",
        "$context.http.path",
        "$context.resourcePath",
        "$context.requestOverride",
        "$context.authorizer",
    ] {
        assert!(!format.contains(leak), "access log would log {leak}");
    }
    assert_eq!(props(&t, "ApiAccessLogGroup")["RetentionInDays"], json!({"Ref": "LogRetentionDays"}));
}

#[test]
fn every_function_has_a_log_group_with_retention() {
    let t = template();
    assert_eq!(param_default(&t, "LogRetentionDays"), 30);
    let groups: Vec<&Value> = t.resources_of_type("AWS::Logs::LogGroup").map(|(_, r)| &r["Properties"]).collect();
    for (logical_id, _, _) in t.functions().unwrap() {
        let name = json!({"Fn::Sub": format!("/aws/lambda/${{{logical_id}}}")});
        let group = groups.iter().find(|g| g["LogGroupName"] == name);
        let group = group
            .unwrap_or_else(|| panic!("{logical_id} has no AWS::Logs::LogGroup named /aws/lambda/${{{logical_id}}}"));
        assert_eq!(group["RetentionInDays"], json!({"Ref": "LogRetentionDays"}), "{logical_id}");
    }
}

#[test]
fn lambdas_own_log_lines_are_a_parameter_off_by_default() {
    let t = template();
    // Lambda filters levels only in JSON format; START/END/REPORT are INFO, so WARN drops them.
    assert_eq!(t.doc_pointer("/Globals/Function/LoggingConfig/LogFormat"), Some(&json!("JSON")));
    assert_eq!(
        t.doc_pointer("/Globals/Function/LoggingConfig/SystemLogLevel"),
        Some(&json!({"Ref": "PlatformLogLevel"}))
    );
    assert_eq!(t.parameter_defaults()["PlatformLogLevel"], "WARN");
    let allowed = t.doc_pointer("/Parameters/PlatformLogLevel/AllowedValues").expect("allowed values");
    assert_eq!(allowed, &json!(["DEBUG", "INFO", "WARN"]));
}

#[test]
fn tracing_is_a_parameter() {
    let t = template();
    assert_eq!(
        t.doc_pointer("/Globals/Function/Tracing"),
        Some(&json!({"Fn::If": ["TracingEnabled", "Active", "PassThrough"]}))
    );
    assert_eq!(t.parameter_defaults()["EnableTracing"], "false");
}

// ---- 6. The sweeper ----------------------------------------------------------------------------

#[test]
fn the_sweeper_has_time_for_a_batch() {
    let t = template();
    assert!(number(&props(&t, "SweeperFunction")["Timeout"]) >= 60);
}

/// `POST …/test?wait=true` makes its attempt within the request: the function must outlast the
/// attempt timeout, stay under API Gateway's 30 s, and may record the attempt.
#[test]
fn the_test_function_has_time_and_rights_for_an_attempt_within_the_request() {
    let t = template();
    let test = props(&t, "SubscriptionsTestFunction");
    let timeout = number(&test["Timeout"]);
    let attempt: u64 = t.doc["Globals"]["Function"]["Environment"]["Variables"]["DELIVERY_TIMEOUT_SECONDS"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("DELIVERY_TIMEOUT_SECONDS in Globals");
    assert!(
        timeout > attempt && timeout < 30,
        "Timeout {timeout} against the {attempt} s attempt and API Gateway's 30 s"
    );
    let policies = test["Policies"].to_string();
    for action in ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"] {
        assert!(policies.contains(action), "SubscriptionsTestFunction lacks {action}");
    }
}

// ---- 7. Deploy details -----------------------------------------------------------------------

#[test]
fn queues_visibility_timeouts_are_six_times_their_consumers_timeouts() {
    let t = template();
    for (queue, function) in [
        ("DeliveryQueue", "DispatcherFunction"),
        ("DeadLetterQueue", "DeadLetterFunction"),
        ("IngestQueue", "IngestFunction"),
    ] {
        let visibility = number(&props(&t, queue)["VisibilityTimeout"]);
        let timeout = t.timeout_secs(&t.resources()[function]);
        assert!(
            visibility >= 6 * timeout,
            "{queue}: VisibilityTimeout {visibility} < 6 x {function} timeout {timeout}"
        );
    }
}

/// A dispatcher claims a delivery for three attempt timeouts (`Config::claim_lease_seconds`): the
/// claim must outlast any invocation that holds it (else a second worker could send beside a
/// live one), and end well before the message of a worker that died comes back.
#[test]
fn dispatcher_timeouts_fit_the_claim_lease() {
    let t = template();
    let attempt: u64 = t.global_env()["DELIVERY_TIMEOUT_SECONDS"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("DELIVERY_TIMEOUT_SECONDS in Globals");
    let lease = 3 * attempt;
    let dispatcher = t.timeout_secs(&t.resources()["DispatcherFunction"]);
    let visibility = number(&props(&t, "DeliveryQueue")["VisibilityTimeout"]);
    assert!(dispatcher <= lease, "DispatcherFunction timeout {dispatcher} s outlasts the {lease} s claim lease");
    assert!(lease < visibility, "claim lease {lease} s must end before a message comes back ({visibility} s)");
}

/// A Lambda cannot move a message to a DLQ: redrive happens only after `maxReceiveCount`
/// receives. So transient failures get retries (more than one receive), and the ingest function
/// sends a message that can never succeed to the ingest DLQ itself, which it needs the right for.
#[test]
fn the_ingest_queue_retries_transient_failures_and_its_function_may_send_to_its_dlq() {
    let t = template();
    let redrive = &props(&t, "IngestQueue")["RedrivePolicy"];
    assert_eq!(redrive["deadLetterTargetArn"], json!({"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}));
    assert!(number(&redrive["maxReceiveCount"]) > 1, "a transient failure must be retried");
    assert_eq!(t.global_env()["INGEST_DEAD_LETTER_QUEUE_URL"], json!({"Ref": "IngestDeadLetterQueue"}));
    let ingest = props(&t, "IngestFunction");
    let mapping = &ingest["Events"]["IngestQueue"]["Properties"];
    assert_eq!(mapping["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
    let send = ingest["Policies"][0]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == "sqs:SendMessage")
        .expect("the ingest function may send to queues");
    for queue in ["DeliveryQueue", "IngestDeadLetterQueue"] {
        let arn = json!({"Fn::GetAtt": [queue, "Arn"]});
        assert!(send["Resource"].as_array().unwrap().contains(&arn), "IngestFunction may not send to {queue}");
    }
    // Producers of other accounts only when the parameter names them (default: none).
    assert_eq!(t.parameter_defaults()["IngestProducerAccountIds"], "");
    let policy = props(&t, "IngestQueuePolicy");
    assert_eq!(policy["Queues"], json!([{"Ref": "IngestQueue"}]));
    let statements = policy["PolicyDocument"]["Statement"].to_string();
    assert!(statements.contains("HasIngestProducerAccounts") && statements.contains("IngestProducerAccountIds"));
    assert!(t.doc_pointer("/Outputs/IngestQueueUrl/Value").is_some());
}

#[test]
fn the_table_cannot_be_deleted_by_accident_and_the_secret_arn_is_an_output() {
    let t = template();
    assert_eq!(props(&t, "Table")["DeletionProtectionEnabled"], json!(true));
    assert_eq!(t.doc_pointer("/Outputs/MasterKeySecretArn/Value"), Some(&json!({"Ref": "MasterKeySecret"})));
    assert_eq!(t.doc_pointer("/Outputs/AlarmTopicArn/Value"), Some(&json!({"Ref": "AlarmTopic"})));
}

#[test]
fn receiver_urls_follow_the_public_base_url_parameter() {
    let t = template();
    assert_eq!(t.global_env()["PUBLIC_BASE_URL"], json!({"Ref": "PublicBaseUrl"}));
    assert_eq!(t.parameter_defaults()["PublicBaseUrl"], "", "empty: the API's own host");
}

#[test]
fn sam_build_and_sam_deploy_read_the_same_parameters() {
    let text = std::fs::read_to_string(root().join("infra/samconfig.toml")).expect("infra/samconfig.toml");
    // Parameters in [default.global.parameters] reach every command, so the Architecture that
    // `sam build` compiles for (cargo-lambda's target) is the one `sam deploy` declares.
    let global = section(&text, "[default.global.parameters]");
    assert!(global.contains("parameter_overrides") && global.contains("Architecture="), "{global}");
    for command in ["[default.build.parameters]", "[default.deploy.parameters]"] {
        assert!(
            !section(&text, command).contains("parameter_overrides"),
            "{command} must not shadow the global parameters"
        );
    }
    assert!(
        section(&text, "[default.build.parameters]").contains("beta_features = true"),
        "rust-cargolambda is a beta builder"
    );
}

/// The lines of a TOML section, up to the next header.
fn section(text: &str, header: &str) -> String {
    text.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- Flow limits and fairness (docs/flow-control.md) ------------------------------------------

#[test]
fn workers_reserve_the_concurrency_their_event_source_may_use() {
    let t = template();
    let mut reserved = 0;
    for (function, source, param) in [
        ("DispatcherFunction", "DeliveryQueue", "DispatcherMaxConcurrency"),
        ("DeadLetterFunction", "DeadLetterQueue", "DeadLetterMaxConcurrency"),
        ("IngestFunction", "IngestQueue", "IngestMaxConcurrency"),
    ] {
        let p = props(&t, function);
        assert_eq!(p["ReservedConcurrentExecutions"], json!({"Ref": param}), "{function}");
        let max = &p["Events"][source]["Properties"]["ScalingConfig"]["MaximumConcurrency"];
        assert_eq!(max, &json!({"Ref": param}), "{function}: MaximumConcurrency and reserved agree");
        reserved += param_default(&t, param);
    }
    assert_eq!(number(&props(&t, "SweeperFunction")["ReservedConcurrentExecutions"]), 1);
    // Lambda keeps 100 of an account's default 1,000 unreserved.
    assert!(reserved < 900, "reserved {reserved} and the sweeper's 1");
}

#[test]
fn the_receiver_route_and_test_have_throttles_of_their_own_below_the_stage() {
    let t = template();
    let api = props(&t, "Api");
    let stage_rate = param_default(&t, "ApiThrottlingRateLimit");
    for (route, rate, burst) in [
        ("POST /v1/webhooks/incoming/{provider}/{key}", "ReceiverThrottlingRateLimit", "ReceiverThrottlingBurstLimit"),
        ("POST /v1/webhooks/subscriptions/{id}/test", "TestThrottlingRateLimit", "TestThrottlingBurstLimit"),
    ] {
        let settings = &api["RouteSettings"][route];
        assert_eq!(settings["ThrottlingRateLimit"], json!({"Ref": rate}), "{route}");
        assert_eq!(settings["ThrottlingBurstLimit"], json!({"Ref": burst}), "{route}");
        assert!(param_default(&t, rate) < stage_rate, "{route}: a flood there leaves the stage's budget");
        assert!(param_default(&t, rate) <= param_default(&t, burst), "{route}");
    }
    let routes: Vec<String> = t.routes().unwrap().iter().map(|r| r.route_key()).collect();
    for key in api["RouteSettings"].as_object().unwrap().keys() {
        assert!(routes.contains(key), "RouteSettings names {key}, which is not a route");
    }
}

#[test]
fn the_account_and_subscription_limits_are_parameters_passed_as_environment() {
    let t = template();
    let env = t.global_env();
    for (var, param, default) in [
        ("ACCOUNT_PUBLISH_PER_SECOND", "AccountPublishPerSecond", 1000),
        ("ACCOUNT_TESTS_PER_MINUTE", "AccountTestsPerMinute", 30),
        ("ACCOUNT_MAX_SUBSCRIPTIONS", "AccountMaxSubscriptions", 1000),
        ("SUBSCRIPTION_MAX_IN_FLIGHT", "SubscriptionMaxInFlight", 10),
    ] {
        assert_eq!(env[var], json!({"Ref": param}), "{var}");
        assert_eq!(param_default(&t, param), default, "{param}");
        assert!(puck_local::PASSTHROUGH_ENV.contains(&var), "the local stack reads {var} from its environment");
    }
}

// ---- FIFO subscriptions (docs/flow-control.md) -------------------------------------------------

#[test]
fn the_fifo_delivery_queue_is_fifo_with_a_fifo_dlq_read_one_message_at_a_time() {
    let t = template();
    let fifo = props(&t, "DeliveryFifoQueue");
    assert_eq!(fifo["FifoQueue"], json!(true));
    assert_eq!(fifo["ContentBasedDeduplication"], json!(false), "deduplication ids name each send");
    assert_eq!(fifo["DeduplicationScope"], "messageGroup");
    assert_eq!(fifo["FifoThroughputLimit"], "perMessageGroupId", "high throughput: 300 TPS per group, not per queue");
    assert_eq!(number(&fifo["MessageRetentionPeriod"]), SQS_MAX_RETENTION);
    assert_eq!(
        fifo["RedrivePolicy"]["deadLetterTargetArn"],
        json!({"Fn::GetAtt": ["DeliveryFifoDeadLetterQueue", "Arn"]})
    );
    assert_eq!(fifo["RedrivePolicy"]["maxReceiveCount"], json!({"Ref": "MaxDeliveryAttempts"}));
    assert_eq!(props(&t, "DeliveryFifoDeadLetterQueue")["FifoQueue"], json!(true), "a FIFO queue's DLQ must be FIFO");
    let source = &props(&t, "DispatcherFunction")["Events"]["DeliveryFifoQueue"]["Properties"];
    assert_eq!(source["Queue"], json!({"Fn::GetAtt": ["DeliveryFifoQueue", "Arn"]}));
    assert_eq!(number(&source["BatchSize"]), 1, "one delivery per invocation: a wait in line holds nothing else");
    assert!(source.get("MaximumBatchingWindowInSeconds").is_none(), "not allowed on FIFO sources");
    assert_eq!(source["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
    let dlq_source = &props(&t, "DeadLetterFunction")["Events"]["DeliveryFifoDeadLetterQueue"]["Properties"];
    assert_eq!(dlq_source["Queue"], json!({"Fn::GetAtt": ["DeliveryFifoDeadLetterQueue", "Arn"]}));
    let alarm = props(&t, "DeliveryFifoBacklogAlarm");
    assert_eq!(alarm["MetricName"], "ApproximateAgeOfOldestMessage");
    assert!(number(&alarm["Threshold"]) > 3 * 86_400, "past any one delivery's schedule, not a normal held line");
}
