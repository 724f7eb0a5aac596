//! The AWS-destination sender: one SQS message or one EventBridge `PutEvents` entry per attempt,
//! sent with the customer's credentials, obtained by assuming their role.
//!
//! IAM: `sts:AssumeRole` on the customer's role (template.yaml grants it on any role, with the
//! `sts:ExternalId` condition). The `SendMessage` or `PutEvents` call is made as that role, so it
//! needs nothing of the function's own role and is billed to the customer's account.
//!
//! The SDK's own retries are off for these two calls: throttling and 5xx come back at once as the
//! attempt's error and are retried on the delivery's schedule, like a receiver's 5xx, so an
//! attempt stays within the delivery timeout (docs/receiving.md, "AWS destinations").

mod credentials;

use aws_config::{Region, SdkConfig};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use credentials::RoleCredentials;
use puck_core::destination::{AwsTarget, EventBusArn, QueueUrl};
use puck_core::sending::{AwsAnswer, AwsDestinationSender, AwsRoute};
use std::time::Duration;

/// `Source` of every EventBridge entry the service puts.
pub const EVENT_SOURCE: &str = "puck.webhooks";

/// Endpoints of the destination clients; None in AWS (the SDK resolves each region's endpoint).
#[derive(Debug, Clone, Default)]
pub struct DestinationEndpoints {
    /// SQS (`AWS_ENDPOINT_URL_SQS`, else the shared `AWS_ENDPOINT_URL` of the SDK config).
    pub sqs: Option<String>,
}

/// [`AwsDestinationSender`] on the AWS SDK. Build one per container and reuse it: it owns the
/// per-role credential cache.
pub struct AwsDestinations {
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    credentials: RoleCredentials,
}

impl AwsDestinations {
    /// Clients from the shared SDK config (its endpoint when `AWS_ENDPOINT_URL` is set), each send
    /// bounded by `timeout`. `sts` is the service's own STS client (its role's credentials).
    pub fn new(sdk: &SdkConfig, sts: aws_sdk_sts::Client, endpoints: &DestinationEndpoints, timeout: Duration) -> Self {
        let timeouts = TimeoutConfig::builder().operation_timeout(timeout).build();
        let sqs = {
            let mut b = aws_sdk_sqs::config::Builder::from(sdk)
                .retry_config(RetryConfig::disabled())
                .timeout_config(timeouts.clone());
            if let Some(endpoint) = &endpoints.sqs {
                b = b.endpoint_url(endpoint);
            }
            aws_sdk_sqs::Client::from_conf(b.build())
        };
        let events = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(sdk)
                .retry_config(RetryConfig::disabled())
                .timeout_config(timeouts)
                .build(),
        );
        Self { sqs, events, credentials: RoleCredentials::new(sts) }
    }

    async fn send_sqs(
        &self,
        queue: &QueueUrl,
        route: &AwsRoute,
        creds: Creds,
        attrs: &[(String, String)],
        body: &str,
    ) -> AwsAnswer {
        let mut call = self.sqs.send_message().queue_url(queue.as_str()).message_body(body);
        for (name, value) in attrs.iter().filter(|(_, v)| !v.is_empty()) {
            match MessageAttributeValue::builder().data_type("String").string_value(value).build() {
                Ok(attr) => call = call.message_attributes(name, attr),
                Err(e) => return AwsAnswer::Unreachable { error: format!("message attribute {name}: {e}") },
            }
        }
        if queue.is_fifo() {
            call = call.message_group_id(&route.message_group_id).message_deduplication_id(&route.deduplication_id);
        }
        let over = aws_sdk_sqs::config::Builder::default()
            .region(Region::new(queue.region.clone()))
            .credentials_provider(creds);
        match call.customize().config_override(over).send().await {
            Ok(out) => AwsAnswer::Accepted {
                request_id: aws_sdk_sqs::operation::RequestId::request_id(&out).map(str::to_owned),
            },
            Err(e) => refused(e),
        }
    }

    async fn put_event(&self, bus: &EventBusArn, route: &AwsRoute, creds: Creds, body: &str) -> AwsAnswer {
        let entry = PutEventsRequestEntry::builder()
            .source(EVENT_SOURCE)
            .detail_type(&route.detail_type)
            .detail(body)
            .event_bus_name(bus.as_str())
            .build();
        let over = aws_sdk_eventbridge::config::Builder::default()
            .region(Region::new(bus.region.clone()))
            .credentials_provider(creds);
        match self.events.put_events().entries(entry).customize().config_override(over).send().await {
            Ok(out) => {
                let request_id = aws_sdk_eventbridge::operation::RequestId::request_id(&out).map(str::to_owned);
                match out.entries().iter().find(|e| e.error_code().is_some()) {
                    // A 200 with a failed entry is a failure: the event did not reach the bus.
                    Some(failed) => {
                        AwsAnswer::Refused { code: failed.error_code().unwrap_or_default().to_owned(), request_id }
                    }
                    None if out.failed_entry_count() > 0 => {
                        AwsAnswer::Refused { code: "FailedEntry".into(), request_id }
                    }
                    None => AwsAnswer::Accepted { request_id },
                }
            }
            Err(e) => refused(e),
        }
    }
}

type Creds = aws_sdk_sqs::config::Credentials;

/// The sender of a function: its STS client carries the process's SDK interceptors (so the
/// e2e IAM check sees `AssumeRole`); the destination clients do not, as they act as the
/// customer's role, not the function's.
pub fn build(config: &crate::Config, sdk: &SdkConfig) -> AwsDestinations {
    let mut sts = aws_sdk_sts::config::Builder::from(sdk);
    sts.set_interceptors(crate::sdk_interceptors());
    let endpoints = DestinationEndpoints { sqs: config.aws_endpoint_url_sqs.clone() };
    let timeout = Duration::from_secs(config.delivery_timeout_seconds);
    AwsDestinations::new(sdk, aws_sdk_sts::Client::from_conf(sts.build()), &endpoints, timeout)
}

#[async_trait::async_trait]
impl AwsDestinationSender for AwsDestinations {
    async fn send(&self, route: &AwsRoute, attributes: &[(String, String)], body: &str) -> AwsAnswer {
        let creds = match self.credentials.get(&route.destination.role, &route.external_id).await {
            Ok(c) => c,
            Err(answer) => return answer,
        };
        match &route.destination.target {
            AwsTarget::Sqs(queue) => self.send_sqs(queue, route, creds, attributes, body).await,
            AwsTarget::EventBridge(bus) => self.put_event(bus, route, creds, body).await,
        }
    }
}

/// An SDK error as the attempt's answer: AWS's error code when AWS answered, else why no answer
/// came. `prefix` names a call other than the send itself (`AssumeRole: `).
fn answer_of<E, R>(e: SdkError<E, R>, prefix: &str) -> AwsAnswer
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(service) => {
            let meta = service.err().meta();
            let code = meta.code().unwrap_or("UnknownError");
            let request_id = meta.extra("aws_request_id").map(str::to_owned);
            AwsAnswer::Refused { code: format!("{prefix}{code}"), request_id }
        }
        _ => AwsAnswer::Unreachable {
            error: format!("{prefix}{}", aws_smithy_types::error::display::DisplayErrorContext(&e)),
        },
    }
}

fn refused<E, R>(e: SdkError<E, R>) -> AwsAnswer
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    answer_of(e, "")
}
