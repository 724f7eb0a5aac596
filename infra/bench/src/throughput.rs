//! Latency and throughput on the local stack, and moto's own rate for the same calls (the
//! reference), plus the CPU our process and moto spend per delivery in the bulk scenario.
//! Measuring only; [`crate::report::perf_md`] writes the section.

use crate::call_log::{tally, Call};
use crate::cold_starts::sample_data;
use crate::cost_scenarios::take_phase;
use crate::stack::BenchStack;
use crate::stats::{fmt_ms, ms, quantile};
use anyhow::{anyhow, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pollers run concurrently (Lambda's SQS event source mapping starts with five).
pub const POLLERS: usize = 5;
/// Concurrent publishes in the bulk scenario.
pub const PUBLISH_CONCURRENCY: usize = 4;

pub struct Throughput {
    pub label: String,
    pub deliveries: u64,
    pub elapsed: Duration,
    pub calls: Vec<Call>,
}

/// Everything the latency and throughput section reports.
pub struct PerfFigures {
    /// publish → receiver, ms, sequential.
    pub latencies_ms: Vec<f64>,
    pub rows: Vec<Throughput>,
    /// The same calls straight to moto, per row.
    pub replays: Vec<Duration>,
    /// Events of the bulk scenario as run, and as asked for.
    pub bulk_events: usize,
    pub requested_events: usize,
    pub bulk_budget: Duration,
    pub publish_elapsed: Duration,
    pub publish_retries: u64,
    /// CPU of this process and of moto over the bulk scenario.
    pub cpu: crate::cpu::CpuFigures,
}

/// Runs the latency scenario, then 1 → 100 and N → 10 with pollers in the background, and
/// replays each scenario's calls straight to moto as the reference.
pub async fn measure(
    stack: &Arc<BenchStack>,
    latency_events: usize,
    args_events: usize,
    bulk_budget: Duration,
    moto_pid: Option<u32>,
) -> Result<PerfFigures> {
    let mut rows: Vec<Throughput> = Vec::new();
    stack.spawn_pollers(POLLERS);

    // 1 → 1, sequential: latency and the rate with one event in flight.
    let tenant = stack.tenant().await?;
    stack.subscribe(&tenant, 1).await?;
    take_phase(stack);
    let mut latencies = Vec::new();
    let t_all = Instant::now();
    for i in 0..latency_events {
        let id = format!("evt-lat-{i}");
        let t = Instant::now();
        stack.publish(&tenant, &id, &sample_data()).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let arrived = loop {
            if let Some(at) = stack.receiver.arrival_of(&id) {
                break at;
            }
            if Instant::now() > deadline {
                return Err(anyhow!("{id} not delivered within 30 s"));
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        latencies.push(arrived - t);
    }
    rows.push(Throughput {
        label: "1 event → 1 subscription (sequential)".into(),
        deliveries: latency_events as u64,
        elapsed: t_all.elapsed(),
        calls: take_phase(stack).0,
    });
    let lat = ms(latencies);
    println!(
        "latency publish → receiver p50 {} ms p99 {} ms",
        fmt_ms(quantile(&lat, 0.5)),
        fmt_ms(quantile(&lat, 0.99))
    );

    // 1 → 100.
    let tenant = stack.tenant().await?;
    stack.subscribe(&tenant, 100).await?;
    take_phase(stack);
    let before = stack.receiver.count();
    let t = Instant::now();
    let n = stack.publish(&tenant, "evt-fan-100", &sample_data()).await?;
    stack.wait_received(before + n, Duration::from_secs(120)).await?;
    let fan = Throughput {
        label: "1 event → 100 subscriptions".into(),
        deliveries: n,
        elapsed: t.elapsed(),
        calls: take_phase(stack).0,
    };
    let fan_rate = fan.deliveries as f64 / fan.elapsed.as_secs_f64();
    rows.push(fan);

    // N → 10, scaled to the budget from the rate just measured.
    let fit = ((fan_rate * bulk_budget.as_secs_f64()) / 10.0).floor() as usize;
    let events = args_events.min(fit.max(50));
    let tenant = stack.tenant().await?;
    stack.subscribe(&tenant, 10).await?;
    take_phase(stack);
    let before = stack.receiver.count();
    let cpu_start = crate::cpu::Sample::now(moto_pid);
    let t = Instant::now();
    let publish_elapsed = {
        let tenant = tenant.clone();
        let stack2 = stack.clone();
        let results = futures::future::join_all((0..PUBLISH_CONCURRENCY).map(|w| {
            let (stack, tenant) = (stack2.clone(), tenant.clone());
            async move {
                let mut total = 0;
                for i in (w..events).step_by(PUBLISH_CONCURRENCY) {
                    total += stack.publish(&tenant, &format!("evt-bulk-{i}"), &sample_data()).await?;
                }
                Ok::<u64, anyhow::Error>(total)
            }
        }))
        .await;
        let mut total = 0;
        for r in results {
            total += r?;
        }
        if total != events as u64 * 10 {
            return Err(anyhow!("bulk publish created {total} deliveries"));
        }
        t.elapsed()
    };
    stack.wait_received(before + events as u64 * 10, Duration::from_secs(600)).await?;
    let cpu = crate::cpu::Sample::now(moto_pid).since(&cpu_start, events as u64 * 10);
    rows.push(Throughput {
        label: format!("{events} events → 10 subscriptions"),
        deliveries: events as u64 * 10,
        elapsed: t.elapsed(),
        calls: take_phase(stack).0,
    });
    stack.stop_pollers().await;
    take_phase(stack);

    let mut replays = Vec::new();
    for row in &rows {
        let concurrency = if row.label.contains("sequential") { 1 } else { POLLERS };
        let replay = replay_raw(stack, &row.calls, row.deliveries, concurrency).await?;
        println!(
            "throughput {:40} {:.1} deliveries/s (moto-only {:.1})",
            row.label,
            row.deliveries as f64 / row.elapsed.as_secs_f64(),
            row.deliveries as f64 / replay.as_secs_f64()
        );
        replays.push(replay);
    }
    let retries = stack.publish_retries.load(std::sync::atomic::Ordering::SeqCst);
    println!("publish retries after 5xx: {retries}");
    Ok(PerfFigures {
        latencies_ms: lat,
        rows,
        replays,
        bulk_events: events,
        requested_events: args_events,
        bulk_budget,
        publish_elapsed,
        publish_retries: retries,
        cpu,
    })
}

/// Replays the useful DynamoDB/SQS calls of a scenario straight to moto, `concurrency` at a time,
/// with the scenario's average batch sizes (items per BatchWriteItem, messages per SQS batch).
async fn replay_raw(stack: &BenchStack, calls: &[Call], deliveries: u64, concurrency: usize) -> Result<Duration> {
    use aws_sdk_dynamodb::types::{AttributeValue as A, PutRequest, WriteRequest};
    let t = tally(calls);
    let get = |k: &str| t.get(k).copied().unwrap_or(0) as usize;
    let deletes = get("SQS.DeleteMessageBatch");
    let batch_items: usize = calls
        .iter()
        .filter(|c| c.operation == "BatchWriteItem")
        .filter_map(|c| {
            c.body
                .as_ref()?
                .get("RequestItems")?
                .as_object()
                .map(|t| t.values().filter_map(|v| v.as_array().map(Vec::len)).sum::<usize>())
        })
        .sum();
    let items_per_batch = (batch_items / get("DynamoDB.BatchWriteItem").max(1)).clamp(1, 25);
    let per_send = (deliveries as usize).div_ceil(get("SQS.SendMessageBatch").max(1)).clamp(1, 10);
    let per_receive = (deliveries as usize).div_ceil(deletes.max(1)).clamp(1, 10);
    let mut ops: Vec<&'static str> = Vec::new();
    for (label, op) in [
        ("DynamoDB.GetItem", "get"),
        ("DynamoDB.PutItem", "put"),
        ("DynamoDB.UpdateItem", "update"),
        ("DynamoDB.Query", "query"),
        ("DynamoDB.BatchWriteItem", "batch"),
        ("SQS.SendMessageBatch", "send"),
        ("SQS.ChangeMessageVisibility", "visibility"),
    ] {
        ops.extend(std::iter::repeat_n(op, get(label)));
    }
    ops.extend(std::iter::repeat_n("receive_delete", deletes));

    let db = stack.raw.dynamodb.clone();
    let sqs = stack.raw.sqs.clone();
    let table = stack.table.clone();
    let queue = sqs
        .create_queue()
        .queue_name(format!("bench-raw-{}", rand_suffix()))
        .send()
        .await?
        .queue_url
        .ok_or_else(|| anyhow!("no queue url"))?;
    let pad = "x".repeat(400);
    let item = move |sk: String| {
        std::collections::HashMap::from([
            ("pk".to_owned(), A::S("BENCH#raw".into())),
            ("sk".to_owned(), A::S(sk)),
            ("payload".to_owned(), A::S(pad.clone())),
        ])
    };
    db.put_item().table_name(&table).set_item(Some(item("Q#0".into()))).send().await?;
    // Untimed: messages for the replayed receives to find, as the scenario's receives did.
    for _ in 0..deletes {
        let entries: Vec<_> = (0..per_receive)
            .filter_map(|j| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("p{j}"))
                    .message_body(r#"{"account_id":"acct_x","delivery_id":"dlv_x"}"#)
                    .build()
                    .ok()
            })
            .collect();
        sqs.send_message_batch().queue_url(&queue).set_entries(Some(entries)).send().await?;
    }
    let work = Arc::new(std::sync::Mutex::new(ops));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (db, sqs, table, queue, work) = (db.clone(), sqs.clone(), table.clone(), queue.clone(), work.clone());
        let item = item.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            loop {
                let Some(op) = work.lock().expect("work lock").pop() else { break };
                i += 1;
                let key = std::collections::HashMap::from([
                    ("pk".to_owned(), A::S("BENCH#raw".into())),
                    ("sk".to_owned(), A::S("Q#0".into())),
                ]);
                match op {
                    "get" => {
                        db.get_item().table_name(&table).set_key(Some(key)).consistent_read(true).send().await?;
                    }
                    "put" => {
                        db.put_item().table_name(&table).set_item(Some(item(format!("RAW#{w}-{i}")))).send().await?;
                    }
                    "update" => {
                        db.update_item()
                            .table_name(&table)
                            .set_key(Some(key))
                            .update_expression("SET n = :n")
                            .expression_attribute_values(":n", A::N(i.to_string()))
                            .send()
                            .await?;
                    }
                    "query" => {
                        db.query()
                            .table_name(&table)
                            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                            .expression_attribute_values(":pk", A::S("BENCH#raw".into()))
                            .expression_attribute_values(":p", A::S("Q#0".into()))
                            .send()
                            .await?;
                    }
                    "batch" => {
                        let reqs: Vec<WriteRequest> = (0..items_per_batch)
                            .filter_map(|j| {
                                let put = PutRequest::builder()
                                    .set_item(Some(item(format!("RAW#{w}-{i}-{j}"))))
                                    .build()
                                    .ok()?;
                                Some(WriteRequest::builder().put_request(put).build())
                            })
                            .collect();
                        db.batch_write_item().request_items(&table, reqs).send().await?;
                    }
                    "send" => {
                        let entries: Vec<_> = (0..per_send)
                            .filter_map(|j| {
                                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                                    .id(format!("m{j}"))
                                    .message_body(r#"{"account_id":"acct_x","delivery_id":"dlv_x"}"#)
                                    .build()
                                    .ok()
                            })
                            .collect();
                        sqs.send_message_batch().queue_url(&queue).set_entries(Some(entries)).send().await?;
                    }
                    "visibility" => {
                        // Needs a receipt handle: receive one and change it (counted as the one call it stands for).
                        let got = sqs.receive_message().queue_url(&queue).max_number_of_messages(1).send().await?;
                        if let Some(h) = got.messages().first().and_then(|m| m.receipt_handle()) {
                            sqs.change_message_visibility()
                                .queue_url(&queue)
                                .receipt_handle(h)
                                .visibility_timeout(0)
                                .send()
                                .await?;
                        }
                    }
                    _ => {
                        let got = sqs
                            .receive_message()
                            .queue_url(&queue)
                            .max_number_of_messages(per_receive as i32)
                            .send()
                            .await?;
                        let entries: Vec<_> = got
                            .messages()
                            .iter()
                            .enumerate()
                            .filter_map(|(j, m)| {
                                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                                    .id(format!("d{j}"))
                                    .set_receipt_handle(m.receipt_handle.clone())
                                    .build()
                                    .ok()
                            })
                            .collect();
                        if !entries.is_empty() {
                            sqs.delete_message_batch().queue_url(&queue).set_entries(Some(entries)).send().await?;
                        } else {
                            // Keep the call count honest: a delete of nothing is still one request.
                            sqs.get_queue_url().queue_name("bench-missing").send().await.ok();
                        }
                    }
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = t0.elapsed();
    sqs.delete_queue().queue_url(&queue).send().await.ok();
    Ok(elapsed)
}

fn rand_suffix() -> String {
    format!(
        "{:08x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos()
    )
}
