//! Publishing from the ingest queue: producers inside AWS send events as SQS messages instead of
//! calling `POST /v1/events`, which takes API Gateway's per-request price off every event.
//!
//! IAM on the queue is the authentication, so a message names its account; the account must
//! exist. Each event is published exactly as the HTTP routes publish it (the same parsing,
//! filters, idempotency per `event_id` and deliveries), through the events service. What this
//! module adds is the one decision the queue needs: a message that can never succeed (malformed,
//! unknown account, invalid event) is [`Ingested::Rejected`] with its reason, so the worker parks
//! it at once instead of letting SQS retry it; a store failure is an `Err`, which SQS retries.

use super::events::{parse_batch, publish_events, NewEvent, Published};
use super::Context;
use crate::error::AppError;
use crate::ids::AccountId;
use serde_json::{Map, Value};

/// Why a message can never be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// Not JSON, not an object, or no valid `account_id`.
    Malformed,
    /// `account_id` names no account.
    UnknownAccount,
    /// An event (or the `events` list) fails the validation of the publish routes.
    InvalidEvent,
}

impl RejectKind {
    /// The kind as logged and stored with the parked message.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Malformed => "malformed",
            RejectKind::UnknownAccount => "unknown_account",
            RejectKind::InvalidEvent => "invalid_event",
        }
    }
}

/// A message that can never be published, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The kind of failure.
    pub kind: RejectKind,
    /// A sentence naming the field where there is one (`events[2].event_type: …`).
    pub reason: String,
}

impl Rejection {
    fn new(kind: RejectKind, reason: impl Into<String>) -> Self {
        Self { kind, reason: reason.into() }
    }
}

/// A parsed message: the account and its events (one, or 1 to 100 from `events`).
#[derive(Debug, Clone, PartialEq)]
pub struct IngestMessage {
    /// The account the events are published for.
    pub account_id: AccountId,
    /// The validated events, in message order.
    pub events: Vec<NewEvent>,
}

impl IngestMessage {
    /// Parses `{"account_id", <one event's fields>}` or `{"account_id", "events": [...]}`; the
    /// event part is read by the publish routes' own parsers, so it is valid exactly when the
    /// same body would be on `POST /v1/events` or `POST /v1/events/batch`.
    pub fn parse(body: &str) -> Result<Self, Rejection> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| Rejection::new(RejectKind::Malformed, format!("message body is not JSON: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(Rejection::new(RejectKind::Malformed, "message body must be a JSON object"));
        };
        let account_id = match map.remove("account_id") {
            None | Some(Value::Null) => {
                return Err(Rejection::new(RejectKind::Malformed, "account_id is required"));
            }
            Some(Value::String(raw)) => AccountId::parse(&raw).map_err(|_| {
                Rejection::new(
                    RejectKind::Malformed,
                    format!(
                        "account_id {} is not an account id (acct_ followed by 26 characters)",
                        crate::validation::quoted(&raw)
                    ),
                )
            })?,
            Some(_) => return Err(Rejection::new(RejectKind::Malformed, "account_id must be a string")),
        };
        let events = parse_events(map).map_err(|e| Rejection::new(RejectKind::InvalidEvent, e.to_string()))?;
        Ok(Self { account_id, events })
    }
}

/// The event part of a message: a batch when it has `events`, else one event.
fn parse_events(rest: Map<String, Value>) -> Result<Vec<NewEvent>, AppError> {
    if rest.contains_key("events") {
        parse_batch(Value::Object(rest))
    } else {
        NewEvent::parse(Value::Object(rest)).map(|e| vec![e])
    }
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    /// Every event is published (or was already, by `event_id`): results in message order.
    Published {
        /// The account the events were published for.
        account_id: AccountId,
        /// One result per event, as `POST /v1/events/batch` answers.
        results: Vec<Published>,
    },
    /// The message can never be published; nothing was.
    Rejected(Rejection),
}

/// Publishes one ingest message. `Err` is a transient failure (a store or the queue unavailable):
/// nothing needs undoing, since a retry publishes only what is missing.
pub async fn ingest(ctx: &Context, body: &str) -> Result<Ingested, AppError> {
    let message = match IngestMessage::parse(body) {
        Ok(m) => m,
        Err(rejection) => return Ok(Ingested::Rejected(rejection)),
    };
    if !ctx.api_keys.account_exists(&message.account_id).await? {
        let reason = format!("account {} does not exist", message.account_id);
        return Ok(Ingested::Rejected(Rejection::new(RejectKind::UnknownAccount, reason)));
    }
    // Over the account's publish rate: an `Err`, so SQS brings the message back later.
    super::limits::check_publish(ctx, &message.account_id, message.events.len()).await?;
    match publish_events(ctx, &message.account_id, message.events).await {
        Ok(results) => Ok(Ingested::Published { account_id: message.account_id, results }),
        // Parsing validated every event; should the publish still refuse one, retrying won't help.
        Err(AppError::Validation(e)) => Ok(Ingested::Rejected(Rejection::new(RejectKind::InvalidEvent, e.message))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{caller, context_with, Memory};
    use crate::services::auth::{issue_api_key, mint_key};
    use crate::services::{events, subscriptions};
    use serde_json::json;
    use std::sync::Arc;

    /// A context whose dev account exists (a key was issued) and has one subscription to
    /// `finding.*`, and the caller of that account.
    async fn setup() -> (Context, Arc<Memory>, crate::model::Caller) {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let who = caller();
        issue_api_key(&ctx, &who.account_id, &who.scopes, mint_key(false)).await.unwrap();
        subscriptions::create(&ctx, &who, json!({"url": "https://a.example/h", "events": ["finding.*"]}))
            .await
            .unwrap();
        (ctx, mem, who)
    }

    fn rejected(outcome: Ingested) -> Rejection {
        match outcome {
            Ingested::Rejected(r) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_event_and_a_batch_publish_as_the_routes_do_and_once_per_event_id() {
        let (ctx, mem, who) = setup().await;
        let single = json!({"account_id": who.account_id, "event_type": "finding.discovered", "data": {"n": 1}, "event_id": "i-1"});
        let got = ingest(&ctx, &single.to_string()).await.unwrap();
        let Ingested::Published { account_id, results } = got else { panic!("{got:?}") };
        assert_eq!(account_id, who.account_id);
        assert_eq!(
            results.iter().map(|r| (r.event_id.to_string(), r.deliveries)).collect::<Vec<_>>(),
            [("i-1".into(), 1)]
        );
        let batch = json!({"account_id": who.account_id, "events": [
            {"event_type": "finding.discovered", "data": {}, "event_id": "i-1"},
            {"event_type": "finding.discovered", "data": {}, "event_id": "i-2"},
            {"event_type": "chain.confirmed", "data": {}},
        ]});
        let Ingested::Published { results, .. } = ingest(&ctx, &batch.to_string()).await.unwrap() else { panic!() };
        let counts: Vec<u32> = results.iter().map(|r| r.deliveries).collect();
        assert_eq!(counts, [1, 1, 0]);
        assert_eq!(mem.queue.lock().unwrap().len(), 2, "i-1 was published once");
        // The HTTP route sees the same events: the same id answers without publishing again.
        let again =
            events::publish(&ctx, &who, json!({"event_type": "finding.discovered", "data": {}, "event_id": "i-2"}))
                .await
                .unwrap();
        assert_eq!(again.deliveries, 1);
        assert_eq!(mem.queue.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn messages_that_can_never_succeed_are_rejected_with_their_reason_and_publish_nothing() {
        let (ctx, mem, who) = setup().await;
        let other = crate::ids::AccountId::generate(2);
        let ok = json!({"event_type": "finding.discovered", "data": {}});
        let cases = [
            ("not json".to_owned(), RejectKind::Malformed, "message body is not JSON"),
            ("[1]".to_owned(), RejectKind::Malformed, "message body must be a JSON object"),
            (
                json!({"event_type": "finding.discovered", "data": {}}).to_string(),
                RejectKind::Malformed,
                "account_id is required",
            ),
            (
                json!({"account_id": 7, "event_type": "x"}).to_string(),
                RejectKind::Malformed,
                "account_id must be a string",
            ),
            (
                json!({"account_id": "acct_nope", "data": {}}).to_string(),
                RejectKind::Malformed,
                "account_id \"acct_nope\" is not",
            ),
            (
                json!({"account_id": other, "event_type": "finding.discovered", "data": {}}).to_string(),
                RejectKind::UnknownAccount,
                "does not exist",
            ),
            (
                json!({"account_id": who.account_id, "event_type": "nope", "data": {}}).to_string(),
                RejectKind::InvalidEvent,
                "event_type \"nope\" is not a known event type",
            ),
            (
                json!({"account_id": who.account_id, "events": [ok.clone(), {"event_type": "finding.discovered"}]})
                    .to_string(),
                RejectKind::InvalidEvent,
                "events[1].data: is required",
            ),
            (
                json!({"account_id": who.account_id, "events": []}).to_string(),
                RejectKind::InvalidEvent,
                "events must hold 1 to 100 events",
            ),
        ];
        for (body, kind, reason) in cases {
            let r = rejected(ingest(&ctx, &body).await.unwrap());
            assert_eq!(r.kind, kind, "{body}: {r:?}");
            assert!(r.reason.contains(reason), "{body}: {r:?}");
        }
        assert!(mem.deliveries.lock().unwrap().is_empty() && mem.queue.lock().unwrap().is_empty());
    }
}
