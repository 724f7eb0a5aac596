//! The delivery queue on SQS, and the ingest DLQ where rejected ingest messages are parked.
//!
//! A job is only the address of a delivery record (`DeliveryJob` as JSON); the record is the
//! truth. Backoff is the visibility timeout of the received message, so a failed attempt is
//! retried by SQS itself and redriven to the DLQ after `maxReceiveCount` receives.
//!
//! IAM: sqs:SendMessage (covers SendMessageBatch) for producers; sqs:ChangeMessageVisibility for
//! the dispatcher (plus what the event source mapping needs: ReceiveMessage, DeleteMessage,
//! GetQueueAttributes).

use crate::fault_gate::FaultGate;
use async_trait::async_trait;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use puck_core::backoff::SQS_MAX_VISIBILITY_SECS;
use puck_core::ports::{DeliveryJob, DeliveryQueue, QueueError, RejectedMessage, RejectedMessages};

/// SQS's SendMessageBatch limit.
const BATCH_SIZE: usize = 10;

/// [`DeliveryQueue`] on SQS.
#[derive(Debug, Clone)]
pub struct SqsDeliveryQueue {
    client: Client,
    queue_url: String,
    /// The FIFO delivery queue, where jobs with a `fifo_group` go (docs/flow-control.md, "FIFO order").
    fifo_queue_url: Option<String>,
    faults: FaultGate,
}

impl SqsDeliveryQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into(), fifo_queue_url: None, faults: FaultGate::default() }
    }

    /// Sets the FIFO delivery queue.
    pub fn with_fifo_queue(mut self, url: Option<String>) -> Self {
        self.fifo_queue_url = url;
        self
    }

    /// The queue a job goes to: the FIFO queue when it has a message group.
    fn url_for(&self, fifo: bool) -> Result<&str, QueueError> {
        if !fifo {
            return Ok(&self.queue_url);
        }
        self.fifo_queue_url.as_deref().ok_or_else(|| QueueError("DELIVERY_FIFO_QUEUE_URL is not set".into()))
    }

    pub(crate) fn with_faults(mut self, faults: FaultGate) -> Self {
        self.faults = faults;
        self
    }

    /// Sends one batch (≤ 10 jobs, all of one queue); returns the indices that failed. A FIFO
    /// job's message group is its subscription and its deduplication id names this send (the
    /// SDK's retry of the same call is deduplicated; a later enqueue, e.g. a replay, is not).
    async fn send_batch(&self, jobs: &[(usize, &DeliveryJob)]) -> Result<Vec<usize>, QueueError> {
        let fifo = jobs.first().is_some_and(|(_, j)| j.fifo_group.is_some());
        let send_id = send_nonce();
        let mut entries = Vec::with_capacity(jobs.len());
        for (i, (_, job)) in jobs.iter().enumerate() {
            let body = serde_json::to_string(job).map_err(|_| QueueError("job could not be serialised".into()))?;
            let mut entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body);
            entry = match &job.fifo_group {
                Some(group) => entry
                    .message_group_id(group.as_str())
                    .message_deduplication_id(format!("{}.{send_id}", job.delivery_id)),
                // Fair queues: on the standard queue the account is the message group, so SQS
                // serves a quiet account's jobs ahead of another account's backlog
                // (docs/flow-control.md).
                None => entry.message_group_id(job.account_id.as_str()),
            };
            entries.push(entry.build().map_err(|_| QueueError("batch entry could not be built".into()))?);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(self.url_for(fifo)?)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessageBatch", &e))?;
        let mut failed = Vec::new();
        for f in out.failed() {
            tracing::warn!(code = f.code(), sender_fault = f.sender_fault(), "sqs batch entry failed");
            if let Some(original) = f.id().parse::<usize>().ok().and_then(|i| jobs.get(i)) {
                failed.push(original.0);
            }
        }
        Ok(failed)
    }
}

/// Names one send: the time in µs and a per-process counter.
fn send_nonce() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    format!("{micros}.{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn sqs_error<E: ProvideErrorMetadata, R>(op: &str, err: &SdkError<E, R>) -> QueueError {
    let code = match err {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("service error").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "dispatch failure".to_owned(),
        _ => "request failed".to_owned(),
    };
    tracing::warn!(operation = op, error_code = %code, "sqs call failed");
    QueueError(format!("sqs {op} failed: {code}"))
}

#[async_trait]
impl DeliveryQueue for SqsDeliveryQueue {
    /// Standard and FIFO jobs go in separate batches, each kind in the order given (a FIFO
    /// subscription's line is the order of its sends).
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError> {
        self.faults.sqs_send()?;
        let (fifo, standard): (Vec<_>, Vec<_>) = jobs.iter().enumerate().partition(|(_, j)| j.fifo_group.is_some());
        for chunk in standard.chunks(BATCH_SIZE).chain(fifo.chunks(BATCH_SIZE)) {
            let failed = self.send_batch(chunk).await?;
            if failed.is_empty() {
                continue;
            }
            // One retry of the failed entries; the sweeper covers anything still missing.
            let retry: Vec<(usize, &DeliveryJob)> = failed.iter().map(|&i| (i, &jobs[i])).collect();
            let still = self.send_batch(&retry).await?;
            if !still.is_empty() {
                return Err(QueueError(format!("{} of {} jobs could not be enqueued", still.len(), jobs.len())));
            }
        }
        Ok(())
    }

    /// The caller keeps `delay_secs` inside the 12 h window of the receive (SQS refuses more,
    /// counted from the receive, not from now: `backoff::RetryPolicy::delay_within_window`);
    /// the clamp here only stops an out-of-range value reaching the wire.
    async fn delay(&self, receipt_handle: &str, delay_secs: u32) -> Result<(), QueueError> {
        let secs = delay_secs.min(SQS_MAX_VISIBILITY_SECS);
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sqs_error("ChangeMessageVisibility", &e))?;
        Ok(())
    }

    /// The receipt handle of a message received from the FIFO queue.
    async fn delay_fifo(&self, receipt_handle: &str, delay_secs: u32) -> Result<(), QueueError> {
        let secs = delay_secs.min(SQS_MAX_VISIBILITY_SECS);
        self.client
            .change_message_visibility()
            .queue_url(self.url_for(true)?)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sqs_error("ChangeMessageVisibility", &e))?;
        Ok(())
    }

    /// One SendMessage with `DelaySeconds` (a delivery waiting on its rate limit).
    async fn enqueue_delayed(&self, job: &DeliveryJob, delay_secs: u32) -> Result<(), QueueError> {
        self.faults.sqs_send()?;
        let body = serde_json::to_string(job).map_err(|_| QueueError("job could not be serialised".into()))?;
        let secs = delay_secs.min(puck_core::ports::MAX_ENQUEUE_DELAY_SECS);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(secs).unwrap_or(0))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessage", &e))?;
        Ok(())
    }
}

/// [`RejectedMessages`] on SQS: the ingest DLQ. The body is kept exactly as received; the reason
/// and where it came from travel as message attributes (`reason`, `kind`, `source_message_id`,
/// `receive_count`), which `aws sqs receive-message --message-attribute-names All` shows.
///
/// IAM: sqs:SendMessage on the ingest DLQ.
#[derive(Debug, Clone)]
pub struct SqsRejectedMessages {
    client: Client,
    queue_url: String,
}

impl SqsRejectedMessages {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

/// The longest `reason` attribute sent; validation messages are far shorter, and a long one
/// (e.g. quoting a body) must not push the message over SQS's size limit.
const MAX_REASON_CHARS: usize = 1024;

fn string_attribute(value: impl Into<String>, data_type: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .map_err(|_| QueueError("message attribute could not be built".into()))
}

#[async_trait]
impl RejectedMessages for SqsRejectedMessages {
    async fn park(&self, message: &RejectedMessage) -> Result<(), QueueError> {
        let reason: String = message.reason.chars().take(MAX_REASON_CHARS).collect();
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .message_attributes("reason", string_attribute(reason, "String")?)
            .message_attributes("kind", string_attribute(message.kind, "String")?)
            .message_attributes("receive_count", string_attribute(message.receive_count.to_string(), "Number")?);
        if let Some(id) = &message.source_message_id {
            request = request.message_attributes("source_message_id", string_attribute(id, "String")?);
        }
        request.send().await.map_err(|e| sqs_error("SendMessage ingest DLQ", &e))?;
        Ok(())
    }
}
