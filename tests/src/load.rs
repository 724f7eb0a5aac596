//! Load without loss (docs/local-stack.md): publish many events to several subscriptions of one HTTPS
//! receiver that fails a seeded random share of requests, then prove that every delivery ended
//! `succeeded`, that the receiver accepted every (subscription, event_id) pair, and count the
//! duplicates at-least-once allows.
//!
//! Shared by the `puck-load` command (10,000 events by default) and the e2e suite (a small run).

use crate::receiver::test_ca_pem_path;
use crate::{ApiClient, Receiver, Reply, Script};
use futures::StreamExt;
use puck_local::StackOptions;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How big a run is.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Events published (each matches every subscription).
    pub events: usize,
    /// Subscriptions, all to the same receiver (one path each).
    pub subscriptions: usize,
    /// Share of requests the receiver answers `500` (seeded RNG).
    pub failure_rate: f64,
    pub seed: u64,
    /// Publishes in flight at once.
    pub publish_concurrency: usize,
    /// Gives up when no delivery completed for this long.
    pub stall_timeout: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            events: 10_000,
            subscriptions: 3,
            failure_rate: 0.10,
            seed: 5,
            publish_concurrency: 4,
            stall_timeout: Duration::from_secs(120),
        }
    }
}

/// What a run found. [`LoadReport::lost`] is the verdict.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub events: usize,
    pub subscriptions: usize,
    /// Sum of the `deliveries` counts the publishes answered.
    pub expected_deliveries: usize,
    /// Requests the receiver got, and how many of them it failed on purpose.
    pub requests: usize,
    pub injected_failures: usize,
    /// Pairs answered 2xx more than once (at-least-once duplicates), and the extra requests.
    pub duplicate_pairs: usize,
    pub duplicate_requests: usize,
    /// One line per duplicate pair: why it was delivered more than once, from its deliveries'
    /// attempt logs ([`explain_duplicate`]).
    pub duplicate_causes: Vec<String>,
    /// Requests whose `X-Puck-Signature` did not verify with the subscription's secret.
    pub bad_signatures: usize,
    /// (subscription path, event_id) pairs never answered 2xx.
    pub missing_pairs: Vec<(String, String)>,
    /// Deliveries (from the API) not `succeeded`: (id, status).
    pub not_succeeded: Vec<(String, String)>,
    /// Deliveries the delivery log listed (more than expected when a publish timed out after
    /// writing its deliveries and was retried: duplicates, which at-least-once allows), and how
    /// many needed more than one attempt.
    pub listed_deliveries: usize,
    pub retried_deliveries: usize,
    /// Publish responses other than 202 (each retried; publishing is idempotent on event_id).
    pub publish_retries: usize,
    pub publish_secs: f64,
    /// From the first publish until every pair was answered 2xx.
    pub deliver_secs: f64,
    pub total_secs: f64,
}

impl LoadReport {
    /// True when anything was lost or wrong: a pair never delivered, a delivery not
    /// `succeeded`, a count mismatch, or a bad signature.
    pub fn lost(&self) -> bool {
        !self.missing_pairs.is_empty()
            || !self.not_succeeded.is_empty()
            || self.expected_deliveries != self.events * self.subscriptions
            || self.listed_deliveries < self.expected_deliveries
            || self.bad_signatures > 0
    }

    /// A human summary, one figure per line.
    pub fn summary(&self) -> String {
        let per_sec = if self.deliver_secs > 0.0 { self.expected_deliveries as f64 / self.deliver_secs } else { 0.0 };
        format!(
            "events published         {}\n\
             subscriptions            {}\n\
             deliveries expected      {} (listed {})\n\
             receiver requests        {} ({} failed on purpose, {:.1}%)\n\
             deliveries retried       {}\n\
             duplicates               {} pairs, {} extra requests\n\
             bad signatures           {}\n\
             missing pairs            {}\n\
             not succeeded            {}\n\
             publish retries          {}\n\
             publish time             {:.1} s\n\
             all delivered after      {:.1} s ({per_sec:.0} deliveries/s)\n\
             total                    {:.1} s\n\
             verdict                  {}",
            self.events,
            self.subscriptions,
            self.expected_deliveries,
            self.listed_deliveries,
            self.requests,
            self.injected_failures,
            if self.requests > 0 { 100.0 * self.injected_failures as f64 / self.requests as f64 } else { 0.0 },
            self.retried_deliveries,
            self.duplicate_pairs,
            self.duplicate_requests,
            self.bad_signatures,
            self.missing_pairs.len(),
            self.not_succeeded.len(),
            self.publish_retries,
            self.publish_secs,
            self.deliver_secs,
            self.total_secs,
            if self.lost() { "LOSS" } else { "nothing lost" },
        ) + &self.duplicate_causes.iter().map(|c| format!("\nduplicate: {c}")).collect::<String>()
    }
}

/// A (subscription path, event id) pair.
type Pair = (String, String);

/// What the receiver's script records: pairs answered 2xx (with counts), and failures.
#[derive(Default)]
struct Tally {
    accepted: HashMap<(String, String), usize>,
    /// The `x-puck-delivery-id` (attempt id) of every request answered 2xx, and when it came, per pair.
    accepted_attempts: HashMap<Pair, Vec<(String, Instant)>>,
    failures: usize,
    bad_signatures: usize,
}

/// Stack options for a load run against `moto_endpoint`: loopback HTTPS receivers trusted,
/// retries in seconds, `pollers` concurrent dispatcher batches, and 1 s long polls (idle
/// short-polling pollers would spend moto's single CPU on empty receives).
pub fn stack_options(moto_endpoint: &str, pollers: usize) -> StackOptions {
    let mut opts = StackOptions::new(moto_endpoint)
        .env("ALLOW_PRIVATE_TARGETS", "1")
        .env("EXTRA_CA_CERT", test_ca_pem_path().to_string_lossy().into_owned())
        .env("BACKOFF_BASE_SECONDS", "1")
        .env("BACKOFF_MAX_SECONDS", "4")
        // A publish cut off by the handler timeout may leave pending deliveries behind (its retry
        // writes new ones); the sweeper must send those within the run.
        .env("SWEEP_GRACE_SECONDS", "20");
    opts.sweep_interval = Some(Duration::from_secs(10));
    opts.resource_prefix = puck_local::unique_prefix("load");
    opts.poll_interval = Duration::from_secs(1);
    opts.pollers_per_queue = pollers;
    // A batch whose DynamoDB calls stayed throttled past the SDK's retries comes back after the
    // queue's visibility timeout (180 s in the template): seconds here, so a run does not stall.
    // Above the dispatcher's 30 s timeout and its 30 s claim lease, as the template's 180 s is:
    // a batch stopped at its timeout is not received again while it still runs.
    opts.delivery_visibility_timeout_secs = Some(60);
    opts
}

/// Runs the load against a started stack through `api` (a key with scopes webhooks:manage and
/// events:publish, of an account with no other subscriptions). `progress` is told about progress now and then.
///
/// # Panics
/// When the API refuses to create the subscriptions.
pub async fn run(api: &ApiClient, opts: &LoadOptions, progress: &(dyn Fn(&str) + Sync)) -> LoadReport {
    let started = Instant::now();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let secrets: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let receiver = {
        let (tally, secrets) = (tally.clone(), secrets.clone());
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let rate = opts.failure_rate.clamp(0.0, 1.0);
        Receiver::start_with(Script::from_fn(move |req, _| {
            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
            let signed = req.header("x-puck-signature").is_some_and(|sig| {
                let secrets = secrets.lock().unwrap_or_else(|p| p.into_inner());
                secrets.get(&req.path).is_some_and(|s| puck_verify::verify_now(sig, &req.body, &[s]).is_ok())
            });
            if !signed {
                t.bad_signatures += 1;
            }
            if rng.gen_bool(rate) {
                t.failures += 1;
                return Reply::status(500);
            }
            let event_id = req.header("x-puck-event-id").unwrap_or_default().to_owned();
            let attempt_id = req.header("x-puck-delivery-id").unwrap_or_default().to_owned();
            *t.accepted.entry((req.path.clone(), event_id.clone())).or_default() += 1;
            t.accepted_attempts.entry((req.path.clone(), event_id)).or_default().push((attempt_id, Instant::now()));
            Reply::status(204)
        }))
        .await
    };

    let mut paths = Vec::new();
    let mut sub_paths = BTreeMap::new();
    for i in 0..opts.subscriptions {
        let path = format!("/load/sub{i}");
        let (status, sub, _) = api
            .post("/v1/webhooks/subscriptions", json!({"url": receiver.url_with_path(&path), "events": ["finding.*"]}))
            .await;
        assert_eq!(status, 201, "create a load subscription: {sub}");
        sub_paths.insert(sub["id"].as_str().unwrap_or_default().to_owned(), path.clone());
        let secret = sub["secret"].as_str().unwrap_or_default().to_owned();
        secrets.lock().unwrap_or_else(|p| p.into_inner()).insert(path.clone(), secret);
        paths.push(path);
    }

    // Publish, bounded concurrency; a non-202 is retried (idempotent on event_id).
    let run_id = puck_local::unique_prefix("load");
    let event_ids: Vec<String> = (0..opts.events).map(|i| format!("{run_id}-{i}")).collect();
    let publish_started = Instant::now();
    let results: Vec<(usize, usize)> = futures::stream::iter(event_ids.iter().enumerate())
        .map(|(i, event_id)| async move {
            let body =
                json!({"event_type": "finding.discovered", "severity": "high", "event_id": event_id, "data": {"n": i}});
            let mut retries = 0;
            loop {
                let (status, resp, _) = api.post("/v1/events", body.clone()).await;
                if status == 202 {
                    if i % 500 == 499 {
                        progress(&format!("published {} events", i + 1));
                    }
                    return (resp["deliveries"].as_u64().unwrap_or(0) as usize, retries);
                }
                retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .buffer_unordered(opts.publish_concurrency.max(1))
        .collect()
        .await;
    let publish_secs = publish_started.elapsed().as_secs_f64();
    let expected_deliveries: usize = results.iter().map(|(n, _)| n).sum();
    let publish_retries: usize = results.iter().map(|(_, r)| r).sum();
    progress(&format!("published {} events in {publish_secs:.1} s ({expected_deliveries} deliveries)", opts.events));

    // Wait until every pair was answered 2xx, or nothing moved for `stall_timeout`.
    let expected_pairs = opts.events * opts.subscriptions;
    let mut last = (0, Instant::now());
    let mut last_report = Instant::now();
    loop {
        let accepted = tally.lock().unwrap_or_else(|p| p.into_inner()).accepted.len();
        if accepted >= expected_pairs {
            break;
        }
        if accepted > last.0 {
            last = (accepted, Instant::now());
        } else if last.1.elapsed() > opts.stall_timeout {
            progress(&format!("no progress for {:?}; stopping at {accepted}/{expected_pairs}", opts.stall_timeout));
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            progress(&format!("{accepted}/{expected_pairs} delivered after {:.0} s", started.elapsed().as_secs_f64()));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let deliver_secs = publish_started.elapsed().as_secs_f64();

    // The delivery log must agree: every delivery `succeeded`, one per pair. The last records
    // may land a moment after the receiver answered, so look again for a little while.
    let mut log = delivery_log(api, &sub_paths).await;
    let settle = Instant::now();
    while (!log.2.is_empty() || log.0 < expected_deliveries) && settle.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        log = delivery_log(api, &sub_paths).await;
    }
    let (listed, retried, not_succeeded) = (log.0, log.1, log.2.clone());
    let (missing, duplicates, twice, failures, bad_signatures) = {
        let t = tally.lock().unwrap_or_else(|p| p.into_inner());
        let mut missing = Vec::new();
        for path in &paths {
            for event_id in &event_ids {
                if !t.accepted.contains_key(&(path.clone(), event_id.clone())) {
                    missing.push((path.clone(), event_id.clone()));
                }
            }
        }
        let duplicates: Vec<usize> = t.accepted.values().filter(|n| **n > 1).map(|n| n - 1).collect();
        let twice: Vec<(Pair, Vec<(String, Instant)>)> =
            t.accepted_attempts.iter().filter(|(_, a)| a.len() > 1).map(|(k, a)| (k.clone(), a.clone())).collect();
        (missing, duplicates, twice, t.failures, t.bad_signatures)
    };
    let mut duplicate_causes = Vec::new();
    for ((path, event_id), accepted) in &twice {
        let deliveries = log.3.get(&(path.clone(), event_id.clone())).cloned().unwrap_or_default();
        let attempt_ids: Vec<String> = accepted.iter().map(|(id, _)| id.clone()).collect();
        let cause = explain_duplicate(api, &deliveries, &attempt_ids).await;
        let first = accepted.iter().map(|(_, at)| *at).min();
        let last = accepted.iter().map(|(_, at)| *at).max();
        let gap = last.zip(first).map_or(0.0, |(l, f)| l.duration_since(f).as_secs_f64());
        duplicate_causes.push(format!("{path} {event_id}: {cause}; the 2xx answers {gap:.1} s apart"));
    }
    LoadReport {
        events: opts.events,
        subscriptions: opts.subscriptions,
        expected_deliveries,
        requests: receiver.requests().len(),
        injected_failures: failures,
        duplicate_pairs: duplicates.len(),
        duplicate_requests: duplicates.iter().sum(),
        duplicate_causes,
        bad_signatures,
        missing_pairs: missing,
        not_succeeded,
        listed_deliveries: listed,
        retried_deliveries: retried,
        publish_retries,
        publish_secs,
        deliver_secs,
        total_secs: started.elapsed().as_secs_f64(),
    }
}

/// What [`delivery_log`] found: count, retried, not succeeded (id, status), and the delivery ids
/// of each (subscription path, event id) pair.
type LogTally = (usize, usize, Vec<(String, String)>, HashMap<(String, String), Vec<String>>);

/// Pages through `GET /v1/webhooks/deliveries` (`sub_paths`: subscription id → receiver path).
async fn delivery_log(api: &ApiClient, sub_paths: &BTreeMap<String, String>) -> LogTally {
    let mut by_pair: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut count = 0;
    let mut retried = 0;
    let mut not_succeeded = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/webhooks/deliveries?limit=100&cursor={c}"),
            None => "/v1/webhooks/deliveries?limit=100".to_owned(),
        };
        let (status, page, _) = api.get(&path).await;
        if status != 200 {
            // A transient 503 under load: ask again.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for d in page["deliveries"].as_array().cloned().unwrap_or_default() {
            let id = d["id"].as_str().unwrap_or_default().to_owned();
            if !seen.insert(id.clone()) {
                continue;
            }
            count += 1;
            let path = sub_paths.get(d["subscription_id"].as_str().unwrap_or_default()).cloned().unwrap_or_default();
            let event_id = d["event_id"].as_str().unwrap_or_default().to_owned();
            by_pair.entry((path, event_id)).or_default().push(id.clone());
            if d["attempt_count"].as_u64().unwrap_or(0) > 1 {
                retried += 1;
            }
            if d["status"] != "succeeded" {
                not_succeeded.push((id, d["status"].as_str().unwrap_or("?").to_owned()));
            }
        }
        match &page["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            _ => break,
        }
    }
    (count, retried, not_succeeded, by_pair)
}

/// Why one (subscription, event) pair reached the receiver answered 2xx more than once, from the
/// attempt ids the receiver accepted and the attempt logs of the pair's deliveries.
pub async fn explain_duplicate(api: &ApiClient, deliveries: &[String], accepted_attempts: &[String]) -> String {
    if deliveries.len() > 1 {
        return format!(
            "{} deliveries for one event: the event was published twice (a publish answered 202 \
             while another copy of it was being written)",
            deliveries.len()
        );
    }
    let Some(id) = deliveries.first() else { return "no delivery in the log for this pair".into() };
    let (status, detail, _) = api.get(&format!("/v1/webhooks/deliveries/{id}")).await;
    if status != 200 {
        return format!("{id}: its detail answered {status}");
    }
    let attempts = detail["attempts"].as_array().cloned().unwrap_or_default();
    let recorded = |attempt_id: &str| attempts.iter().find(|a| a["attempt_id"] == attempt_id);
    let mut why = Vec::new();
    for attempt_id in accepted_attempts {
        match recorded(attempt_id) {
            Some(a) if a["response_status"].as_u64().is_some_and(|s| (200..300).contains(&s)) => {
                why.push(format!("attempt {} succeeded", a["number"]));
            }
            Some(a) => why.push(format!(
                "attempt {} was answered 2xx but recorded as {} ({})",
                a["number"],
                a["response_status"],
                a["error"].as_str().unwrap_or("no error")
            )),
            None => why.push(format!(
                "attempt {attempt_id} was sent but never recorded (its worker stopped or its record failed)"
            )),
        }
    }
    let same_attempt = accepted_attempts.iter().collect::<BTreeSet<_>>().len() < accepted_attempts.len();
    if same_attempt {
        why.push("one attempt id reached the receiver twice (the sender retried a request)".into());
    }
    format!("{id}: {}", why.join("; "))
}
