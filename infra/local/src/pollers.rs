//! Queue pollers and schedules: what the SQS event source mapping and EventBridge do in AWS.
//!
//! A poller receives up to `BatchSize` messages, builds the `SqsEvent` Lambda would deliver, calls
//! the worker and then deletes every message the worker did not report in
//! `batchItemFailures` (`ReportBatchItemFailures`). If the worker panics, or reports an id that
//! is not in the batch, nothing is deleted and the whole batch comes back after the visibility
//! timeout, exactly as with Lambda. Workers are looked up by the template's `Binary` name in
//! [`sqs_worker`] and [`scheduled_worker`].

use crate::provision::LOCAL_REGION;
use crate::template::{Scheduled, SqsConsumer};
use anyhow::{bail, Result};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use puck_core::services::dispatch::Dispatcher;
use puck_core::services::Context;
use puck_workers::ingest::Ingest;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// An SQS-triggered worker, chosen by binary name.
#[derive(Clone)]
pub enum SqsWorker {
    /// `dispatcher`: signs and sends deliveries.
    Dispatcher(Arc<Dispatcher>),
    /// `dead-letter`: hands back dead-lettered deliveries with attempts left, marks the others
    /// `failed_permanent`; `max_attempts` is `MAX_DELIVERY_ATTEMPTS`.
    DeadLetter { ctx: Arc<Context>, max_attempts: u32 },
    /// `ingest`: publishes the events of ingest-queue messages, parking rejected ones.
    Ingest(Arc<Ingest>),
}

impl SqsWorker {
    async fn invoke(&self, event: SqsEvent) -> SqsBatchResponse {
        match self {
            SqsWorker::Dispatcher(d) => puck_workers::dispatcher::handle(d, event).await,
            SqsWorker::DeadLetter { ctx, max_attempts } => {
                puck_workers::dead_letter::handle(ctx, *max_attempts, event).await
            }
            SqsWorker::Ingest(ingest) => puck_workers::ingest::handle(ingest, event).await,
        }
    }
}

/// What the SQS workers are built from, once, as each Lambda container builds its state.
#[derive(Clone)]
pub struct Workers {
    /// The context every function shares.
    pub ctx: Arc<Context>,
    /// The dispatcher (context, HTTP client, retry policy).
    pub dispatcher: Arc<Dispatcher>,
    /// The ingest function's state (context and the ingest DLQ).
    pub ingest: Arc<Ingest>,
}

impl Workers {
    /// The workers over `ctx`, with the sender, retry policy and ingest DLQ from `config`.
    pub async fn build(ctx: &Context, config: &puck_aws::Config) -> Result<Self> {
        let dispatcher = puck_aws::dispatcher_over(ctx.clone(), config).await?;
        let ingest = Ingest { ctx: ctx.clone(), rejected: puck_aws::build_rejected_messages(config).await? };
        Ok(Self { ctx: Arc::new(ctx.clone()), dispatcher: Arc::new(dispatcher), ingest: Arc::new(ingest) })
    }
}

/// The worker registry for SQS event sources: binary name → worker. Unknown names are a startup
/// error, so a function added to the template cannot silently go unpolled.
pub fn sqs_worker(binary: &str, workers: &Workers) -> Result<SqsWorker> {
    Ok(match binary {
        "dispatcher" => SqsWorker::Dispatcher(workers.dispatcher.clone()),
        "dead-letter" => {
            SqsWorker::DeadLetter { ctx: workers.ctx.clone(), max_attempts: workers.dispatcher.policy.max_attempts }
        }
        "ingest" => SqsWorker::Ingest(workers.ingest.clone()),
        other => bail!("no local SQS worker registered for binary {other:?}"),
    })
}

/// A schedule-triggered worker, chosen by binary name.
#[derive(Clone)]
pub enum ScheduledWorker {
    /// `sweeper`: re-enqueues in-flight deliveries more than `grace_secs` past due
    /// (`SWEEP_GRACE_SECONDS`).
    Sweeper { ctx: Arc<Context>, grace_secs: i64 },
}

impl ScheduledWorker {
    /// Runs the worker once with a scheduled event, as EventBridge would. `rule` is the
    /// function's logical id, and the run is an invocation of it ([`crate::invocation`]).
    pub async fn invoke(&self, rule: &str) -> Result<()> {
        crate::invocation::as_function(rule, self.run(rule)).await
    }

    async fn run(&self, rule: &str) -> Result<()> {
        match self {
            ScheduledWorker::Sweeper { ctx, grace_secs } => {
                // The template's sweeper timeout (60 s) is the run's deadline, as in Lambda.
                let deadline_ms = puck_core::time::Timestamp::now().plus_seconds(60).unix_ms();
                puck_workers::sweeper::handle(ctx, *grace_secs, deadline_ms, scheduled_event(rule))
                    .await
                    .map_err(|e| anyhow::anyhow!("sweeper failed: {e}"))?;
            }
        }
        Ok(())
    }
}

/// The worker registry for schedules.
pub fn scheduled_worker(binary: &str, ctx: &Arc<Context>, config: &puck_aws::Config) -> Result<ScheduledWorker> {
    Ok(match binary {
        "sweeper" => ScheduledWorker::Sweeper { ctx: ctx.clone(), grace_secs: config.sweep_grace_seconds },
        other => bail!("no local scheduled worker registered for binary {other:?}"),
    })
}

/// An EventBridge "Scheduled Event".
pub fn scheduled_event(rule: &str) -> Value {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    json!({
        "version": "0",
        "id": format!("{:032x}", rand::random::<u128>()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": crate::provision::LOCAL_ACCOUNT_ID,
        "time": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "region": LOCAL_REGION,
        "resources": [format!("arn:aws:events:{LOCAL_REGION}:{}:rule/{rule}", crate::provision::LOCAL_ACCOUNT_ID)],
        "detail": {}
    })
}

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    /// Messages received (the batch size).
    pub messages: usize,
    /// How long the worker ran on them (zero for an empty poll).
    pub worker_time: Duration,
}

/// One SQS event source mapping.
pub struct QueuePoller {
    pub consumer: SqsConsumer,
    pub queue_url: String,
    pub queue_arn: String,
    pub worker: SqsWorker,
    pub sqs: aws_sdk_sqs::Client,
    /// Pause after an empty short poll or an error (see [`QueuePoller::long_polls`]).
    pub poll_interval: Duration,
}

impl QueuePoller {
    /// Polls until the task is aborted.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            tracing::info!(
                function = self.consumer.function.as_str(),
                queue = self.queue_url.as_str(),
                "poller started"
            );
            loop {
                match self.poll_once().await {
                    // A long poll already waited; a short poll pauses before asking again.
                    Ok(0) if !self.long_polls() => tokio::time::sleep(self.poll_interval).await,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(
                            function = self.consumer.function.as_str(),
                            error = format!("{error:#}"),
                            "poll failed"
                        );
                        tokio::time::sleep(self.poll_interval.max(Duration::from_millis(500))).await;
                    }
                }
            }
        })
    }

    /// A `poll_interval` of a second or more switches to 1 s long polls (moto answers them as soon
    /// as a message is sent); shorter intervals short-poll and sleep, for tests.
    fn long_polls(&self) -> bool {
        self.poll_interval >= Duration::from_secs(1)
    }

    /// Receives one batch, invokes the worker and deletes what succeeded; returns the batch size.
    pub async fn poll_once(&self) -> Result<usize> {
        Ok(self.poll_waiting(if self.long_polls() { 1 } else { 0 }).await?.messages)
    }

    /// [`QueuePoller::poll_once`] with an explicit ReceiveMessage wait (seconds), also returning
    /// how long the worker ran (what Lambda bills; the benchmark records it).
    pub async fn poll_waiting(&self, wait_secs: i32) -> Result<Polled> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.consumer.batch_size)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(Polled { messages: 0, worker_time: Duration::ZERO });
        }
        let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records }))?;
        let ids: HashSet<String> = messages.iter().filter_map(|m| m.message_id.clone()).collect();

        let worker = self.worker.clone();
        let function = self.consumer.function.clone();
        let timeout = Duration::from_secs(self.consumer.timeout_secs);
        let as_function = function.clone();
        let invocation =
            tokio::spawn(async move { crate::invocation::as_function(&as_function, worker.invoke(event)).await });
        let abort = invocation.abort_handle();
        let started = Instant::now();
        let outcome = tokio::time::timeout(timeout, invocation).await;
        let polled = Polled { messages: messages.len(), worker_time: started.elapsed() };
        let response = match outcome {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(function = function.as_str(), error = %e, "worker panicked; the batch will be retried");
                return Ok(polled);
            }
            Err(_) => {
                abort.abort();
                tracing::error!(
                    function = function.as_str(),
                    timeout_secs = timeout.as_secs(),
                    "worker timed out; the batch will be retried"
                );
                return Ok(polled);
            }
        };
        let failed: HashSet<String> = if self.consumer.report_batch_item_failures {
            response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
        } else {
            HashSet::new()
        };
        if let Some(bad) = failed.iter().find(|id| !ids.contains(*id)) {
            // Lambda treats an unknown identifier as a failure of the whole batch.
            tracing::error!(
                function = function.as_str(),
                item_identifier = bad.as_str(),
                "unknown batch item failure id; retrying the whole batch"
            );
            return Ok(polled);
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| m.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        tracing::debug!(
            function = function.as_str(),
            received = messages.len(),
            failed = failed.len(),
            "batch processed"
        );
        for chunk in entries.chunks(10) {
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await?;
            for f in out.failed {
                tracing::warn!(
                    function = function.as_str(),
                    id = f.id,
                    code = f.code,
                    "DeleteMessageBatch entry failed"
                );
            }
        }
        Ok(polled)
    }

    fn record(&self, m: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: Map<String, Value> =
            m.attributes.iter().flatten().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect();
        let message_attributes: Map<String, Value> = m
            .message_attributes
            .iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!({
                        "stringValue": v.string_value,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v.data_type,
                    }),
                )
            })
            .collect();
        json!({
            "messageId": m.message_id,
            "receiptHandle": m.receipt_handle,
            "body": m.body,
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": m.md5_of_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": LOCAL_REGION,
        })
    }
}

/// One schedule: runs the worker every `period` (first run one period after start, like a rule).
pub fn spawn_schedule(schedule: Scheduled, worker: ScheduledWorker, period: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(
            function = schedule.function.as_str(),
            period_ms = period.as_millis() as u64,
            "schedule started"
        );
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let w = worker.clone();
            let rule = schedule.function.clone();
            match tokio::spawn(async move { w.invoke(&rule).await }).await {
                Ok(Ok(())) => tracing::debug!(function = schedule.function.as_str(), "scheduled run done"),
                Ok(Err(error)) => tracing::warn!(
                    function = schedule.function.as_str(),
                    error = format!("{error:#}"),
                    "scheduled run failed"
                ),
                Err(e) => tracing::error!(function = schedule.function.as_str(), error = %e, "scheduled run panicked"),
            }
        }
    })
}
