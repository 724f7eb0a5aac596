//! One port for "send this attempt to its target", whatever the target is.
//!
//! The dispatcher builds one signed [`OutboundRequest`] per attempt and hands it to a
//! [`WebhookSender`]. Its [`Target`] is parsed once, from the subscription, when the request is
//! built: the senders match on it and never parse an address string again (the HTTPS sender's
//! SSRF guard still checks the address a host name resolves to, at connect time).
//! [`TargetSender`] is that sender for every subscription: a [`Target::Aws`] request goes to the
//! [`AwsDestinationSender`] (the customer's SQS queue or EventBridge bus, reached by assuming
//! their role), a [`Target::Https`] one to the HTTPS sender. What AWS answered is turned into the
//! same [`SendOutcome`] an HTTPS receiver's answer becomes, so the retry schedule, the delivery
//! log and the console treat both alike (docs/receiving.md, "AWS destinations").

use crate::destination::AwsDestination;
use crate::model::{Delivery, Subscription};
use crate::ports::{OutboundRequest, SendOutcome, WebhookSender};
use crate::validation::TargetUrl;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;

/// An attempt bound for an AWS queue or event bus instead of an HTTPS receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRoute {
    /// The queue or bus, and the customer's role.
    pub destination: AwsDestination,
    /// STS `ExternalId`: the Puck account id, so the customer's role can be assumed only for
    /// deliveries made for them (the confused-deputy guard their trust policy checks).
    pub external_id: String,
    /// A FIFO queue's message group: the subscription id, so its deliveries keep their order.
    pub message_group_id: String,
    /// A FIFO queue's deduplication id: the event id, stable across retries.
    pub deduplication_id: String,
    /// EventBridge `DetailType`: the event type.
    pub detail_type: String,
}

/// Where one attempt goes, parsed: built from the subscription when the request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An HTTPS receiver: the subscription's `url`, parsed when it was written.
    Https(TargetUrl),
    /// The customer's SQS queue or EventBridge bus, and what a send there needs (boxed: it is
    /// ten times the size of a URL).
    Aws(Box<AwsRoute>),
}

impl Target {
    /// The target of `sub`'s attempt at `delivery`: its AWS destination if it has one, else its
    /// URL; None for a subscription with neither (the API never writes one).
    pub fn of(delivery: &Delivery, sub: &Subscription) -> Option<Self> {
        match (&sub.destination, &sub.url) {
            (Some(destination), _) => Some(Self::Aws(Box::new(AwsRoute {
                destination: destination.clone(),
                external_id: sub.account_id.to_string(),
                message_group_id: sub.id.to_string(),
                deduplication_id: delivery.event_id.to_string(),
                detail_type: delivery.event_type.clone(),
            }))),
            (None, Some(url)) => Some(Self::Https(url.clone())),
            (None, None) => None,
        }
    }

    /// What the attempt's `url` in the delivery log shows: the HTTPS URL, or the queue URL or bus
    /// ARN ([`Subscription::target_address`]).
    pub fn address(&self) -> &str {
        match self {
            Self::Https(url) => url.as_str(),
            Self::Aws(route) => route.destination.address(),
        }
    }
}

/// What AWS made of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsAnswer {
    /// AWS accepted the message or entry.
    Accepted {
        /// The AWS request id, the attempt's response.
        request_id: Option<String>,
    },
    /// AWS answered with an error: throttling, a 5xx, access denied, not found, or a `PutEvents`
    /// entry that failed. Every one is retried on the schedule, so a customer can fix the role.
    Refused {
        /// The AWS error code (e.g. `AccessDenied`, `AWS.SimpleQueueService.NonExistentQueue`),
        /// prefixed `AssumeRole: ` when STS refused the role.
        code: String,
        /// The AWS request id, when AWS gave one.
        request_id: Option<String>,
    },
    /// No answer arrived (timeout, connection failure).
    Unreachable {
        /// Why.
        error: String,
    },
}

/// Sends attempts to AWS destinations. The adapter assumes the route's role with STS (IAM:
/// `sts:AssumeRole` on customer roles, with the `sts:ExternalId` condition); the send itself is
/// made with the customer's credentials, so it needs nothing of the service's own role.
#[async_trait]
pub trait AwsDestinationSender: Send + Sync {
    /// Sends `body` to the route's queue or bus, with `attributes` as SQS message attributes.
    /// Never panics; every failure comes back as an [`AwsAnswer`].
    async fn send(&self, route: &AwsRoute, attributes: &[(String, String)], body: &str) -> AwsAnswer;
}

/// The response header an AWS answer's request id is logged under.
pub const AWS_REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The [`WebhookSender`] of the dispatcher: routes each request to the sender of its target.
pub struct TargetSender {
    https: Arc<dyn WebhookSender>,
    aws: Arc<dyn AwsDestinationSender>,
}

impl TargetSender {
    /// Routes [`Target::Https`] requests to `https` and [`Target::Aws`] ones to `aws`.
    pub fn new(https: Arc<dyn WebhookSender>, aws: Arc<dyn AwsDestinationSender>) -> Self {
        Self { https, aws }
    }
}

#[async_trait]
impl WebhookSender for TargetSender {
    async fn send(&self, request: &OutboundRequest) -> SendOutcome {
        let Target::Aws(route) = &request.target else { return self.https.send(request).await };
        let started = Instant::now();
        let answer = self.aws.send(route, &message_attributes(&request.headers), &request.body).await;
        outcome_of(answer, started.elapsed().as_millis() as u64)
    }
}

/// The wire-format headers an SQS message carries as attributes of the same names: the
/// `X-Puck-*` and `webhook-*` ones (event id, type, delivery id, both signatures, Standard
/// Webhooks), at most SQS's 10 attributes. Attribute names are case-sensitive where header names
/// are not, so each is spelled as docs/receiving.md documents it: `X-Puck-Event-Id`, `webhook-id`.
pub fn message_attributes(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("webhook-") {
                Some((lower, value.clone()))
            } else if lower.starts_with("x-puck-") {
                Some((title_case(&lower), value.clone()))
            } else {
                None
            }
        })
        .take(10)
        .collect()
}

/// `x-puck-signature-256` → `X-Puck-Signature-256`.
fn title_case(name: &str) -> String {
    let words: Vec<String> = name
        .split('-')
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    words.join("-")
}

/// An AWS answer as an attempt outcome: accepted is a 200 whose body is the request id; an AWS
/// error is the attempt's error (its code), retried on the schedule like a receiver's 5xx.
pub fn outcome_of(answer: AwsAnswer, duration_ms: u64) -> SendOutcome {
    let request_id_header =
        |id: &Option<String>| id.iter().map(|id| (AWS_REQUEST_ID_HEADER.to_owned(), id.clone())).collect::<Vec<_>>();
    match answer {
        AwsAnswer::Accepted { request_id } => SendOutcome {
            status: Some(200),
            headers: request_id_header(&request_id),
            body: request_id.unwrap_or_default(),
            duration_ms,
            ..SendOutcome::default()
        },
        AwsAnswer::Refused { code, request_id } => SendOutcome {
            headers: request_id_header(&request_id),
            error: Some(code),
            duration_ms,
            ..SendOutcome::default()
        },
        AwsAnswer::Unreachable { error } => SendOutcome { error: Some(error), duration_ms, ..SendOutcome::default() },
    }
}

#[cfg(test)]
mod tests;
