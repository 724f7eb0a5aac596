//! The performance sections of BENCHMARKS.md: cold starts, latency and throughput, signing.

use super::*;

/// Cold start, where init goes, size and peak memory; `runs` starts per binary.
pub fn cold_md(all: &[BinaryFigures], runs: usize) -> String {
    let mut md = String::new();
    let hello = all.iter().find(|f| f.name == "hello");
    let hello_p50 = hello.and_then(|h| quantile(&h.init_ms(), 0.5));
    let _ = writeln!(md, "## Cold start\n");
    let _ = writeln!(
        md,
        "Each binary from `target/release` is started {} times as a fresh process against a loopback \
         implementation of the Lambda Runtime API (`GET …/invocation/next`, `POST …/response`, `…/error`, \
         `…/init/error`) with the function's configuration (`TABLE_NAME`, `DELIVERY_QUEUE_URL`, \
         `MASTER_KEY_SECRET_ID`, `AWS_ENDPOINT_URL` → moto, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128`, …). \
         **init** = process spawn → first `GET …/next`; **first response** = spawn → first response POST, \
         the first invocation being the function's `events/<binary>.json` sample with a valid API key \
         (dispatcher and dead-letter: an SQS batch with one real pending delivery, sent over HTTPS to the \
         loopback receiver; ingest: `events/ingest.json` for the tenant's account; sweeper: `events/sweeper.json`). The reference is `hello` (`infra/bench/src/bin/hello.rs`): \
         `lambda_runtime` on the same current-thread tokio runtime, same release profile. Goal: every \
         function's init ≤ 1.5× hello's.\n",
        runs
    );
    let _ = writeln!(md, "| function | init p50 ms | init p90 ms | init p50 ÷ hello | first response p50 ms | p90 ms | 1st invocation p50 ms | warm invocation p50 ms | 1st response |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut worst: Option<(String, f64)> = None;
    for f in all {
        let p50 = quantile(&f.init_ms(), 0.5);
        let ratio = match (p50, hello_p50) {
            (Some(a), Some(h)) if h > 0.0 => Some(a / h),
            _ => None,
        };
        if f.name != "hello" {
            if let Some(r) = ratio {
                if worst.as_ref().is_none_or(|(_, w)| r > *w) {
                    worst = Some((f.name.clone(), r));
                }
            }
        }
        let outcomes: BTreeMap<&str, usize> = f.runs.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.outcome.as_str()).or_default() += 1;
            m
        });
        let outcome = outcomes.keys().copied().collect::<Vec<_>>().join(", ");
        let failed = if f.failures.is_empty() { String::new() } else { format!(" ({} runs failed)", f.failures.len()) };
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {outcome}{failed} |",
            f.name,
            if f.name == "hello" { " (reference)" } else { "" },
            fmt_ms(p50),
            fmt_ms(quantile(&f.init_ms(), 0.9)),
            ratio.map_or("n/a".into(), |r| format!("{r:.2}×")),
            fmt_ms(f.q(|r| r.first_response, 0.5)),
            fmt_ms(f.q(|r| r.first_response, 0.9)),
            fmt_ms(f.q(|r| r.first_invocation, 0.5)),
            fmt_ms(f.q(|r| r.warm_invocation, 0.5)),
        );
    }
    for f in all.iter().filter(|f| !f.failures.is_empty()) {
        let _ = writeln!(md, "\n`{}` failures: {}", f.name, f.failures.first().map(String::as_str).unwrap_or_default());
    }
    let _ = writeln!(
        md,
        "\nRoute responses are the API Gateway `statusCode` of the sample event: ids in the samples do not exist \
         in the fresh table, so get/update/delete/replay answer 404 after authenticating and looking the id up \
         (the same calls a found id costs); `inbound-receive`'s sample URL key is unknown (401).\n"
    );

    // Where init goes.
    let _ = writeln!(md, "### Where init goes\n");
    let _ = writeln!(
        md,
        "Every AWS call of the function goes through a timestamping loopback relay to moto. The first call at init is \
         the master key's `GetSecretValue` (read once per container, docs/security.md), so init splits into: spawn → first \
         request byte (runtime, tracing, config, SDK config and clients), the GetSecretValue round trip (moto on \
         loopback), and the rest (keyring derivation, first `GET …/next`).\n"
    );
    let _ = writeln!(md, "| function | init p50 ms | spawn → GetSecretValue sent p50 | GetSecretValue round trip p50 | after it p50 | init − round trip, ÷ hello |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    let mut worst_without: Option<f64> = None;
    for f in all.iter().filter(|f| f.name != "hello") {
        let pre: Vec<f64> = ms(f.runs.iter().filter_map(|r| r.first_aws_request.filter(|t| *t < r.init)));
        let rtt: Vec<f64> = ms(f.runs.iter().filter_map(|r| match (r.first_aws_request, r.first_aws_response) {
            (Some(a), Some(b)) if b < r.init => Some(b - a),
            _ => None,
        }));
        let post: Vec<f64> =
            ms(f.runs.iter().filter_map(|r| r.first_aws_response.filter(|t| *t < r.init).map(|t| r.init - t)));
        let without: Vec<f64> = f
            .runs
            .iter()
            .filter_map(|r| match (r.first_aws_request, r.first_aws_response) {
                (Some(a), Some(b)) if b < r.init => Some((r.init - (b - a)).as_secs_f64() * 1000.0),
                _ => None,
            })
            .collect();
        let ratio = match (quantile(&without, 0.5), hello_p50) {
            (Some(a), Some(h)) if h > 0.0 => Some(a / h),
            _ => None,
        };
        if let Some(r) = ratio {
            worst_without = Some(worst_without.map_or(r, |w: f64| w.max(r)));
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            f.name,
            fmt_ms(quantile(&f.init_ms(), 0.5)),
            fmt_ms(quantile(&pre, 0.5)),
            fmt_ms(quantile(&rtt, 0.5)),
            fmt_ms(quantile(&post, 0.5)),
            ratio.map_or("n/a".into(), |r| format!("{r:.2}×"))
        );
    }
    let verdict = match (&worst, hello_p50) {
        (Some((name, r)), Some(h)) if *r <= 1.5 => format!(
            "**Goal met**: the slowest init ({name}) is {r:.2}× hello's {h:.1} ms."
        ),
        (Some((name, r)), Some(h)) => format!(
            "**Goal not met**: the slowest init ({name}) is {r:.2}× hello's {h:.1} ms (p50). Without the GetSecretValue \
             round trip the worst ratio is {}. The gap is the function's own init before its first `GET …/next`: the \
             tokio runtime and tracing are common to both, so it is building the AWS SDK config and three clients \
             (credentials, endpoint resolver, HTTP connector with rustls roots) and the master-key round trip; \
             in AWS that round trip is a TLS connection to Secrets Manager (typically tens of ms, not moto's loopback \
             figure), which only the design's once-per-container read keeps off the invocations.",
            worst_without.map_or("n/a".into(), |w| format!("{w:.2}×"))
        ),
        _ => "Goal could not be evaluated (no successful runs).".to_owned(),
    };
    let _ = writeln!(md, "\n{verdict}\n");

    // Size and memory.
    let _ = writeln!(md, "## Size and peak memory\n");
    let _ = writeln!(
        md,
        "Size as packaged: the binary is the Lambda's `bootstrap`; zip = `zip -j bootstrap.zip bootstrap` \
         (deflate, what `sam build` uploads). Peak memory = `VmHWM` (peak resident set) from \
         `/proc/<pid>/status` after the warm (second) invocation, the maximum over the {} runs. \
         Goal: fits a 128 MB Lambda with room to spare.\n",
        runs
    );
    let _ = writeln!(md, "| function | bootstrap bytes | zip bytes | peak RSS (max) | share of 128 MB |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    let mut max_hwm: Option<(String, u64)> = None;
    for f in all {
        let hwm = f.hwm();
        if f.name != "hello" {
            if let Some(h) = hwm {
                if max_hwm.as_ref().is_none_or(|(_, m)| h > *m) {
                    max_hwm = Some((f.name.clone(), h));
                }
            }
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            f.name,
            f.size.map_or("n/a".into(), fmt_bytes),
            f.zip.map_or("n/a".into(), fmt_bytes),
            hwm.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            hwm.map_or("n/a".into(), |k| format!("{:.0}%", k as f64 * 1024.0 / 128e6 * 100.0)),
        );
    }
    if let Some((name, h)) = max_hwm {
        let share = h as f64 * 1024.0 / 128e6 * 100.0;
        let _ = writeln!(
            md,
            "\n{} the largest peak is {name} at {:.1} MiB, {share:.0}% of 128 MB.\n",
            if share < 50.0 { "**Goal met**:" } else { "**Goal not met**:" },
            h as f64 / 1024.0
        );
    }
    md
}

/// Latency, throughput beside raw moto, CPU per delivery.
pub fn perf_md(f: &PerfFigures, profile: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Latency and throughput on the local stack\n");
    let _ = writeln!(
        md,
        "Publish = `POST /v1/events` through the in-process API gateway (the real `events-publish` handler); delivery = {POLLERS} \
         concurrent event-source-mapping loops (1 s long polls, batch size from template.yaml) invoking the real dispatcher handler, \
         which POSTs over HTTPS to the loopback receiver. Latency = publish request start → the receiver has the request.\n"
    );
    let _ = writeln!(
        md,
        "**publish → receiver latency** over {} sequential events (1 subscription): p50 **{} ms**, p99 **{} ms** (min {} ms, max {} ms).\n",
        f.latencies_ms.len(),
        fmt_ms(quantile(&f.latencies_ms, 0.5)),
        fmt_ms(quantile(&f.latencies_ms, 0.99)),
        fmt_ms(quantile(&f.latencies_ms, 0.0)),
        fmt_ms(quantile(&f.latencies_ms, 1.0))
    );
    let events = f.bulk_events;
    if events < f.requested_events {
        let _ = writeln!(
            md,
            "The bulk scenario was **scaled down from {} to {events} events** so it fits the {} s budget at the fan-out rate \
             measured just before (moto is a single Python process on a 2-core machine); `--events {} --bulk-budget-secs N` runs it in full.\n",
            f.requested_events,
            f.bulk_budget.as_secs(),
            f.requested_events
        );
    }

    // The raw moto reference: the same useful calls, straight to moto.
    let _ = writeln!(
        md,
        "The reference is moto's own rate for **the same SDK calls**: the calls counted during the scenario (DynamoDB and SQS, \
         minus the empty long polls of idle pollers) replayed straight to moto with uncounted clients and the scenario's batch sizes, \
         one at a time for the sequential scenario and {POLLERS} at a time for the others. \
         \"moto share\" = replay time ÷ scenario time, the part of the wall time that moto alone needs; the rest is our code \
         (handlers, signing, HTTPS, JSON, the SDK) and waiting.\n"
    );
    let _ = writeln!(md, "| scenario | deliveries | wall time s | deliveries/s | same calls straight to moto s | moto-only deliveries/s | moto share |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for (row, replay) in f.rows.iter().zip(&f.replays) {
        let rate = row.deliveries as f64 / row.elapsed.as_secs_f64();
        let moto_rate = row.deliveries as f64 / replay.as_secs_f64();
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | **{:.1}** | {:.2} | {:.1} | {:.0}% |",
            row.label,
            row.deliveries,
            row.elapsed.as_secs_f64(),
            rate,
            replay.as_secs_f64(),
            moto_rate,
            replay.as_secs_f64() / row.elapsed.as_secs_f64() * 100.0
        );
    }
    let _ = writeln!(
        md,
        "\nPublishing the {events} events alone took {:.2} s ({PUBLISH_CONCURRENCY} concurrent publishers).\n",
        f.publish_elapsed.as_secs_f64()
    );
    let retries = f.publish_retries;
    let _ = writeln!(
        md,
        "Publishes answered 500 and retried with the same `event_id` during these scenarios: **{retries}** (the local gateway \
         answers 500 when a handler exceeds the template's 10 s timeout; with moto saturated by the pollers a publish can wait \
         that long for its DynamoDB calls).\n"
    );
    let c = &f.cpu;
    let _ = writeln!(md, "### CPU per delivery\n");
    let _ = writeln!(
        md,
        "CPU seconds (utime + stime from `/proc/<pid>/stat`) over the bulk scenario ({} deliveries, {:.1} s wall): this process — the \
         in-process gateway and the real publish and dispatch handlers, the event-source-mapping loops **and the test receiver**, which \
         shares the process — against moto's process. Built with the **{profile}** profile; the receiver's TLS is included, so our \
         figure is an upper bound.\n",
        c.deliveries, c.wall_s
    );
    let _ = writeln!(md, "| process | CPU s | CPU ms per delivery |\n|---|---:|---:|");
    let _ = writeln!(
        md,
        "| puck-bench (publish + dispatch + receiver) | {} | **{}** |",
        c.ours_s.map_or("n/a".into(), |v| format!("{v:.2}")),
        fmt_ms(c.ours_ms_per_delivery())
    );
    let _ = writeln!(
        md,
        "| moto (reference: the AWS side) | {} | {} |\n",
        c.moto_s.map_or("n/a".into(), |v| format!("{v:.2}")),
        fmt_ms(c.moto_ms_per_delivery())
    );
    let _ = writeln!(
        md,
        "moto runs under waitress with HTTP/1.1 keep-alive and the patches of `infra/local/src/moto_patches.py` (a base-table \
         Query reads its partition only, an index Query one partition of index entries kept up to date from each write; \
         DynamoDB answers written as JSON directly; one DynamoDB request at a time, as DynamoDB makes each call atomic); here \
         one moto process serves DynamoDB, SQS and Secrets Manager (the local stack runs one per service). Its CPU per \
         delivery is Python answering each call: request parsing, expression evaluation and its web framework.\n"
    );
    md
}

/// The signing section.
pub fn signing_md(s: &signing::SigningFigures) -> String {
    println!(
        "signing: delivery_headers {:.2} µs, bare HMAC-SHA256 {:.2} µs",
        s.headers_ns / 1000.0,
        s.hmac_ns / 1000.0
    );
    format!(
        "## Signing\n\n\
         Median of 7 batches × {} iterations (`std::hint::black_box`), {} B envelope, one secret:\n\n\
         | operation | per call | ÷ bare HMAC |\n|---|---:|---:|\n\
         | `puck_core::signing::delivery_headers` (all 10 headers: `X-Puck-Signature` t=,v1= hex + Standard Webhooks `webhook-signature` base64, ids) | {:.2} µs | {:.2}× |\n\
         | bare HMAC-SHA256 of the same bytes (reference) | {:.2} µs | 1.00× |\n\n\
         Two HMACs (one per scheme) are the floor, so ≈2× is the expected ratio; the rest is hex/base64 encoding and the \
         header strings. Either way signing is microseconds against a delivery's milliseconds of network and storage.\n",
        s.iterations,
        s.body_len,
        s.headers_ns / 1000.0,
        s.headers_ns / s.hmac_ns,
        s.hmac_ns / 1000.0
    )
}
