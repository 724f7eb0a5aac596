//! The ingest Lambda: publishes the events of each message on the ingest queue, as
//! `POST /v1/events` and `POST /v1/events/batch` publish them.
//!
//! Three outcomes per message, and what SQS does with it:
//! - published (or already published, by `event_id`): deleted;
//! - rejected (malformed, unknown account, invalid event): retrying can never help, so the
//!   function sends it to the ingest DLQ itself, with its reason as message attributes, logs the
//!   reason, and lets SQS delete the original. A Lambda cannot move a message to a DLQ; redrive
//!   only happens after `maxReceiveCount` receives, which must stay above 1 so that transient
//!   failures are retried;
//! - a transient failure (DynamoDB or SQS unavailable), or a rejected message that could not be
//!   parked: reported as a batch item failure, so SQS brings it back after the visibility
//!   timeout and, after `maxReceiveCount` receives, redrives it to the same DLQ.

use crate::{process_batch, receive_count};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use puck_core::ports::{RejectedMessage, RejectedMessages};
use puck_core::services::ingest::{ingest, Ingested};
use puck_core::services::Context;
use std::convert::Infallible;
use std::sync::Arc;

/// What the ingest function builds once per container.
pub struct Ingest {
    /// The ports every publish uses.
    pub ctx: Context,
    /// The ingest DLQ, where rejected messages are parked.
    pub rejected: Arc<dyn RejectedMessages>,
}

/// Handles one batch. Never fails as a whole: per-message failures are reported.
pub async fn handle(ingest: &Ingest, event: SqsEvent) -> SqsBatchResponse {
    process_batch(&event, |m| handle_message(ingest, m)).await
}

/// True when the message must be kept (reported as failed, so SQS retries it).
async fn handle_message(state: &Ingest, message: &SqsMessage) -> bool {
    let body = message.body.as_deref().unwrap_or_default();
    let message_id = message.message_id.as_deref().unwrap_or_default();
    let receive_count = receive_count(message);
    match ingest(&state.ctx, body).await {
        Ok(Ingested::Published { account_id, results }) => {
            let deliveries: u64 = results.iter().map(|r| u64::from(r.deliveries)).sum();
            tracing::info!(message_id, account_id = %account_id, events = results.len(), deliveries, "ingest message published");
            false
        }
        Ok(Ingested::Rejected(rejection)) => {
            tracing::warn!(
                message_id,
                kind = rejection.kind.as_str(),
                reason = rejection.reason.as_str(),
                receive_count,
                "ingest message rejected; sent to the ingest DLQ"
            );
            let parked = RejectedMessage {
                body: body.to_owned(),
                kind: rejection.kind.as_str(),
                reason: rejection.reason,
                source_message_id: message.message_id.clone(),
                receive_count,
            };
            match state.rejected.park(&parked).await {
                Ok(()) => false,
                Err(e) => {
                    tracing::error!(message_id, error = %e, "could not send a rejected ingest message to the ingest DLQ; SQS will retry it");
                    true
                }
            }
        }
        Err(e) => {
            tracing::warn!(message_id, error = %e, receive_count, "ingest message failed; SQS will retry it");
            true
        }
    }
}

/// The ingest function's `main`: the context and the ingest DLQ client built once.
pub fn run() -> Result<(), lambda_runtime::Error> {
    puck_aws::bootstrap::run_events(
        |config| async move {
            Ok(Ingest {
                ctx: puck_aws::build_context(config).await?,
                rejected: puck_aws::build_rejected_messages(config).await?,
            })
        },
        |ingest, event| async move { Ok::<_, Infallible>(handle(ingest, event.payload).await) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use puck_core::fakes::{caller, context_with, Memory};
    use puck_core::ids::{AccountId, ApiKeyId};
    use puck_core::model::ApiKeyRecord;
    use puck_core::ports::{ApiKeyStore, QueueError, StoreError, StoreResult};
    use puck_core::services::{auth, subscriptions};
    use serde_json::{json, Value};
    use std::sync::Mutex;

    /// Remembers what was parked; refuses everything when `up` is false.
    struct Parking {
        up: bool,
        parked: Mutex<Vec<RejectedMessage>>,
    }

    #[async_trait::async_trait]
    impl RejectedMessages for Parking {
        async fn park(&self, message: &RejectedMessage) -> Result<(), QueueError> {
            if !self.up {
                return Err(QueueError("ingest DLQ unreachable".into()));
            }
            self.parked.lock().unwrap().push(message.clone());
            Ok(())
        }
    }

    /// An API key store that is down (DynamoDB throttled past the SDK's retries).
    struct Down;

    #[async_trait::async_trait]
    impl ApiKeyStore for Down {
        async fn find_by_hash(&self, _: &str) -> StoreResult<Option<ApiKeyRecord>> {
            Err(StoreError::Unavailable("throttled".into()))
        }
        async fn insert(&self, _: &ApiKeyRecord) -> StoreResult<()> {
            Err(StoreError::Unavailable("throttled".into()))
        }
        async fn revoke(&self, _: &AccountId, _: &ApiKeyId) -> StoreResult<bool> {
            Err(StoreError::Unavailable("throttled".into()))
        }
        async fn account_exists(&self, _: &AccountId) -> StoreResult<bool> {
            Err(StoreError::Unavailable("throttled".into()))
        }
    }

    /// `events/ingest.json`: one single-event message and one batch of two, for the sample
    /// account `acct_01jtq8k2c4w6j8m1n3p5r7s9tz`.
    fn sample_batch() -> SqsEvent {
        serde_json::from_str(include_str!("../../../events/ingest.json")).unwrap()
    }

    /// The sample batch with its messages' `account_id` set to `account`.
    fn batch_for(account: &AccountId) -> SqsEvent {
        let mut event = sample_batch();
        for record in &mut event.records {
            let mut body: Value = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
            body["account_id"] = json!(account);
            record.body = Some(body.to_string());
        }
        event
    }

    /// An existing account subscribed to every platform event, and the ingest state over it.
    async fn setup(dlq_up: bool) -> (Ingest, Arc<Memory>, Arc<Parking>, AccountId) {
        let mem = Arc::new(Memory::default());
        let ctx = context_with(mem.clone());
        let who = caller();
        auth::issue_api_key(&ctx, &who.account_id, &who.scopes, auth::mint_key(false)).await.unwrap();
        subscriptions::create(&ctx, &who, json!({"url": "https://example.com/h", "events": ["*"]})).await.unwrap();
        let parking = Arc::new(Parking { up: dlq_up, parked: Mutex::new(Vec::new()) });
        (Ingest { ctx, rejected: parking.clone() }, mem, parking, who.account_id)
    }

    fn reported(resp: &SqsBatchResponse) -> Vec<&str> {
        resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test]
    async fn the_sample_batch_publishes_its_three_events_once_each() {
        let (ingest, mem, parking, account) = setup(true).await;
        let batch = batch_for(&account);
        assert!(handle(&ingest, batch.clone()).await.batch_item_failures.is_empty());
        assert_eq!(mem.events.lock().unwrap().len(), 3);
        assert_eq!(mem.queue.lock().unwrap().len(), 3, "one delivery per event to the one subscription");
        // SQS delivers at least once: the same batch again publishes nothing more.
        assert!(handle(&ingest, batch).await.batch_item_failures.is_empty());
        assert_eq!(mem.queue.lock().unwrap().len(), 3);
        assert!(parking.parked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_sample_batch_for_an_unknown_account_is_parked_with_its_reason_and_deleted() {
        let (ingest, mem, parking, _) = setup(true).await;
        let resp = handle(&ingest, sample_batch()).await;
        assert!(resp.batch_item_failures.is_empty(), "parked messages are deleted from the ingest queue");
        let parked = parking.parked.lock().unwrap();
        assert_eq!(parked.len(), 2);
        let sample = sample_batch();
        for (p, record) in parked.iter().zip(&sample.records) {
            assert_eq!(p.kind, "unknown_account");
            assert_eq!(p.reason, "account acct_01jtq8k2c4w6j8m1n3p5r7s9tz does not exist");
            assert_eq!(Some(&p.body), record.body.as_ref(), "the body is kept exactly");
            assert_eq!(p.source_message_id, record.message_id);
        }
        assert_eq!(parked.iter().map(|p| p.receive_count).collect::<Vec<_>>(), [1, 2]);
        assert!(mem.events.lock().unwrap().is_empty() && mem.queue.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn malformed_and_invalid_messages_are_parked_and_the_good_one_beside_them_published() {
        let (ingest, mem, parking, account) = setup(true).await;
        let mut batch = batch_for(&account);
        let good = batch.records[0].clone();
        let mut bad_json = good.clone();
        bad_json.message_id = Some("bad-json".into());
        bad_json.body = Some("{\"account_id\": ".into());
        let mut invalid = good.clone();
        invalid.message_id = Some("invalid".into());
        invalid.body = Some(json!({"account_id": account, "event_type": "finding.discovered"}).to_string());
        batch.records = vec![bad_json, good, invalid];
        assert!(handle(&ingest, batch).await.batch_item_failures.is_empty());
        let parked = parking.parked.lock().unwrap();
        let kinds: Vec<(&str, &str)> =
            parked.iter().map(|p| (p.source_message_id.as_deref().unwrap(), p.kind)).collect();
        assert_eq!(kinds.len(), 2);
        assert!(
            kinds.contains(&("bad-json", "malformed")) && kinds.contains(&("invalid", "invalid_event")),
            "{kinds:?}"
        );
        let invalid_reason = &parked.iter().find(|p| p.kind == "invalid_event").unwrap().reason;
        assert_eq!(invalid_reason, "data is required");
        assert_eq!(mem.events.lock().unwrap().len(), 1, "the good message still published");
    }

    #[tokio::test]
    async fn a_store_outage_is_reported_so_sqs_retries_and_nothing_is_parked() {
        let (mut ingest, mem, parking, account) = setup(true).await;
        ingest.ctx.api_keys = Arc::new(Down);
        let batch = batch_for(&account);
        let ids: Vec<&str> = batch.records.iter().filter_map(|r| r.message_id.as_deref()).collect();
        let resp = handle(&ingest, batch.clone()).await;
        assert_eq!(reported(&resp), ids);
        assert!(parking.parked.lock().unwrap().is_empty(), "a transient failure is never parked");
        assert!(mem.events.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_rejected_message_that_cannot_be_parked_is_kept_for_sqs_to_retry() {
        let (ingest, _, _, _) = setup(false).await;
        let batch = sample_batch();
        let ids: Vec<&str> = batch.records.iter().filter_map(|r| r.message_id.as_deref()).collect();
        assert_eq!(reported(&handle(&ingest, batch.clone()).await), ids);
    }
}
