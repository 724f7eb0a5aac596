//! Claims: a worker owns a delivery for one attempt before it sends, in one conditional
//! UpdateItem on the delivery's log item, so two workers never send one delivery at once.
//!
//! The item carries `claim_holder` (an SQS message id), `claim_token` (the attempt id) and
//! `claim_until` (epoch ms, the lease's end) while claimed, and `swept` (epoch ms) once the sweeper
//! re-enqueued it. A claim succeeds while the delivery is in flight, no other holder's lease is
//! running, and its next attempt is due (or it was swept). None of these attributes is projected
//! into an index, so a claim writes the table only. The attempt's record releases the claim and
//! the sweep mark (see `record_attempt`), and a replay clears them.

use super::*;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use puck_core::ports::{Claim, ClaimRequest};

/// The attributes a recorded attempt or a replay removes: the claim and the sweep mark.
pub(super) const CLAIM_ATTRS: &str = "claim_holder, claim_token, claim_until, swept";

/// Why a claim's condition failed, from the item as it was.
fn refusal(old: Option<Item>, request: &ClaimRequest) -> StoreResult<Claim> {
    let Some(old) = old else { return Ok(Claim::Missing) };
    let number = |name: &str| old.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    let delivery = decode(&old)?;
    if !delivery.status.is_in_flight() {
        return Ok(Claim::Finished(delivery));
    }
    let holder = attr_str(&old, "claim_holder");
    if let Some(until) = number("claim_until").filter(|u| *u >= request.now.unix_ms()) {
        if holder != Some(request.holder.as_str()) {
            return Ok(Claim::Held { until: Timestamp(until) });
        }
    }
    match number("due_at") {
        Some(at) if at > request.due_by.unix_ms() => Ok(Claim::NotDue { at: Timestamp(at) }),
        // The item changed between the condition and this read of it: the message is retried.
        _ => Err(StoreError::Unavailable("delivery claim raced another write".into())),
    }
}

impl DynamoDeliveryStore {
    pub(super) async fn claim_delivery(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        request: &ClaimRequest,
    ) -> StoreResult<Claim> {
        self.table.faults.dynamo()?;
        let mut values = HashMap::from([
            (":holder".to_owned(), s(request.holder.as_str())),
            (":token".to_owned(), s(request.token.as_str())),
            (":until".to_owned(), n(request.lease_until.unix_ms())),
            (":now".to_owned(), n(request.now.unix_ms())),
            (":due_by".to_owned(), n(request.due_by.unix_ms())),
        ]);
        let in_flight = status_in(&DeliveryStatus::IN_FLIGHT, &mut values);
        let free = "(attribute_not_exists(claim_until) OR claim_until < :now OR claim_holder = :holder)";
        let due = "(attribute_not_exists(due_at) OR due_at <= :due_by OR attribute_exists(swept))";
        let set = "SET claim_holder = :holder, claim_token = :token, claim_until = :until";
        let res = self
            .conditional_update(account, id, set, format!("{in_flight} AND {free} AND {due}"), values)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => {
                let item = out.attributes.ok_or_else(|| corrupt("delivery", "claim returned no item"))?;
                match self.with_payload(account, &item).await? {
                    Some(d) => Ok(Claim::Claimed(d)),
                    None => self.abandon_unpublished(account, &item, request).await,
                }
            }
            Err(e) if is_condition_failed(&e) => {
                let old = match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) => c.item.clone(),
                    _ => None,
                };
                refusal(old, request)
            }
            Err(e) => Err(unavailable("UpdateItem delivery claim", &e)),
        }
    }

    /// A claimed delivery whose event record does not exist: its publish failed before the
    /// durable point (the producer was answered an error and publishes again), so it is never
    /// sent; it is `abandoned` in the log.
    async fn abandon_unpublished(
        &self,
        account: &AccountId,
        item: &Item,
        request: &ClaimRequest,
    ) -> StoreResult<Claim> {
        let mut d = decode(item)?;
        tracing::warn!(account_id = %account, delivery_id = %d.id, event_id = %d.event_id, "delivery of a publish that never completed; abandoned");
        let change = StatusChange {
            to: DeliveryStatus::Abandoned,
            next_attempt_at: None,
            now: request.now,
            claim: ClaimChange::Release(&request.token),
        };
        let from = DeliveryStatus::IN_FLIGHT;
        self.update_if_status("UpdateItem delivery abandon", account, &d.id, &from, change, None, HashMap::new())
            .await?;
        d.status = DeliveryStatus::Abandoned;
        Ok(Claim::Finished(d))
    }

    pub(super) async fn mark_delivery_swept(
        &self,
        account: &AccountId,
        id: &DeliveryId,
        next_attempt_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.table.faults.dynamo()?;
        let mut values = HashMap::from([
            (":nat".to_owned(), attr(&Some(next_attempt_at))?),
            (":due_pk".to_owned(), s(due_shard(id))),
            (":due_at".to_owned(), n(next_attempt_at.unix_ms())),
            (":swept".to_owned(), n(now.unix_ms())),
        ]);
        let in_flight = status_in(&DeliveryStatus::IN_FLIGHT, &mut values);
        // A fresh delivery has no due entry of its own (its event's stands for it): swept, it
        // gets one, so from now on it is an overdue delivery like any other.
        let set = "SET next_attempt_at = :nat, due_pk = :due_pk, due_at = :due_at, swept = :swept";
        let res = self.conditional_update(account, id, set, in_flight, values).send().await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("UpdateItem delivery swept", &e)),
        }
    }
}
