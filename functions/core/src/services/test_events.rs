//! `POST /v1/webhooks/subscriptions/{id}/test`: a synthetic event sent to one subscription.
//!
//! The event carries the catalog's example `data` of the chosen type (default
//! `investigation.queued`), so the receiver sees a realistic body in the subscription's format.
//! It is delivered through the normal pipeline whatever the subscription's event types, filters
//! and `active`, and appears in the delivery log.

use super::dispatch::Dispatcher;
use super::events::{enqueue_written, pending_delivery};
use super::json_fields::Fields;
use super::subscriptions;
use super::Context;
use crate::backoff::RetryPolicy;
use crate::envelope::Envelope;
use crate::error::AppError;
use crate::ids::EventId;
use crate::model::{Caller, Delivery, StoredEvent};
use crate::validation::EventType;
use serde_json::{json, Value};

/// The type sent when the body names none.
pub const DEFAULT_TEST_EVENT_TYPE: &str = "investigation.queued";

/// The event type a `/test` body asks for: `{"event_type": …}`, or the default for no body
/// (or `null`).
pub fn parse_test_event_type(body: Option<Value>) -> Result<EventType, AppError> {
    let Some(body) = body.filter(|b| !b.is_null()) else {
        return EventType::parse(DEFAULT_TEST_EVENT_TYPE)
            .map_err(|e| AppError::internal("the default test event type", e));
    };
    let fields = Fields::new(body)?;
    fields.deny_unknown(&["event_type"])?;
    EventType::parse(fields.opt_str("event_type")?.unwrap_or(DEFAULT_TEST_EVENT_TYPE)).map_err(AppError::Validation)
}

/// Writes one test delivery. Without `wait` it is enqueued and the answer is `{"delivery_id"}`;
/// with `wait` the attempt is made at once, bypassing the queue, and the answer is
/// `{"delivery_id", "status", "attempt"}` (a refused, failed or timed-out attempt included).
pub async fn send_test_event(
    ctx: &Context,
    caller: &Caller,
    raw_sub_id: &str,
    body: Option<Value>,
    wait: bool,
) -> Result<Value, AppError> {
    let sub = subscriptions::load(ctx, caller, raw_sub_id).await?;
    let event_type = parse_test_event_type(body)?;
    super::limits::check_test(ctx, &caller.account_id).await?;
    let now = ctx.clock.now();
    let envelope = Envelope::new(EventId::generate(), event_type.as_str(), now, (event_type.info().example)());
    // A test event never queues behind a FIFO subscription's line (docs/flow-control.md, "FIFO order").
    let delivery =
        Delivery { fifo: false, ..pending_delivery(&sub, &envelope, None, now, ctx.settings.expires_at(now)) };
    ctx.deliveries.insert_deliveries(std::slice::from_ref(&delivery)).await?;
    // Its record, as a publish writes one: it holds the body and stands for the delivery in the
    // sweeper's look at recent events (its id is new, so it never answers a publish).
    let record = StoredEvent {
        account_id: caller.account_id.clone(),
        event_id: envelope.event_id.clone(),
        event_type: event_type.as_str().to_owned(),
        severity: None,
        tags: Default::default(),
        emitted_at: now,
        delivery_count: 1,
        expires_at: delivery.expires_at,
        publish_token: None,
        deliveries: vec![delivery.id.clone()],
        bodies: StoredEvent::bodies_of(std::slice::from_ref(&delivery)),
    };
    if let Err(e) =
        ctx.deliveries.insert_events(std::slice::from_ref(&record), crate::ports::RecordWrite::EachAlone).await
    {
        // A test event is not a publish: nothing promised it yet, so its delivery is taken back
        // and the request leaves nothing behind (faults::dynamodb_failing_at_any_call_of_any_route_…).
        let _ = ctx.deliveries.remove_deliveries(&caller.account_id, std::slice::from_ref(&delivery.id)).await;
        return Err(e.into());
    }
    if wait {
        let sender = ctx.sender.clone().ok_or_else(|| AppError::bug("no outbound sender in this context"))?;
        let dispatcher = Dispatcher::new(ctx.clone(), sender, RetryPolicy::default());
        let (status, attempt) = dispatcher.attempt_once(&delivery, &sub).await?;
        return Ok(json!({ "delivery_id": delivery.id, "status": status, "attempt": attempt }));
    }
    enqueue_written(ctx, std::slice::from_ref(&delivery)).await;
    tracing::info!(account_id = %caller.account_id, subscription_id = %sub.id, delivery_id = %delivery.id, event_type = event_type.as_str(), "test event queued");
    Ok(json!({ "delivery_id": delivery.id }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{caller, context};

    #[tokio::test]
    async fn sends_the_catalog_example_of_the_chosen_type_in_the_subscription_format() {
        let ctx = context();
        let who = caller();
        let created = subscriptions::create(
            &ctx,
            &who,
            json!({"url": "https://example.com/h", "events": ["agent.*"], "format": "slack"}),
        )
        .await
        .unwrap();
        let id = created["id"].as_str().unwrap();
        let sent =
            send_test_event(&ctx, &who, id, Some(json!({"event_type": "finding.discovered"})), false).await.unwrap();
        let delivery = ctx
            .deliveries
            .get(&who.account_id, &crate::ids::DeliveryId::parse(sent["delivery_id"].as_str().unwrap()).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(delivery.event_type, "finding.discovered");
        let body: Value = serde_json::from_str(&delivery.payload).unwrap();
        assert_eq!(body["text"], "finding.discovered (critical): SQL injection in POST /login on api.acme.example");

        let default = send_test_event(&ctx, &who, id, None, false).await.unwrap();
        let d = ctx
            .deliveries
            .get(&who.account_id, &crate::ids::DeliveryId::parse(default["delivery_id"].as_str().unwrap()).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.event_type, DEFAULT_TEST_EVENT_TYPE);
    }

    #[tokio::test]
    async fn unknown_or_malformed_event_type_is_a_400_naming_the_field() {
        let ctx = context();
        let who = caller();
        let created =
            subscriptions::create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"]})).await.unwrap();
        let id = created["id"].as_str().unwrap();
        for (body, want) in [
            (json!({"event_type": "nope.nope"}), "event_type \"nope.nope\" is not a known event type"),
            (json!({"event_type": 3}), "event_type must be a string"),
            (json!({"other": 1}), "unknown field \"other\""),
        ] {
            match send_test_event(&ctx, &who, id, Some(body.clone()), false).await {
                Err(AppError::Validation(msg)) => assert!(msg.message.starts_with(want), "{body}: {msg}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
